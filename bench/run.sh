#!/bin/bash
# bench/run.sh: measure the invite route against nginx answering by itself,
# in the same run on the same machine, and print the ratios.
#
#   bench/run.sh                  # 10 s per step, 1/16/64 connections, 3 rounds
#   BENCH_SECONDS=5 BENCH_WORKERS=16 BENCH_SYNC=full bench/run.sh
#   BENCH_CONNECTIONS="16 64" BENCH_NODRAIN=1 bench/run.sh  # no mailer step
#   BENCH_ROUNDS=1 bench/run.sh   # one round: each step once
#
# Everything binds 127.0.0.1 or unix sockets under a temp dir and stops at
# the end.  Rate limits are raised for the run; delivery_wait is 0 so the
# numbers are the HTTP side's; the mailer drains into an SMTP sink beside.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
secs=${BENCH_SECONDS:-10}
workers=${BENCH_WORKERS:-4}
sync=${BENCH_SYNC:-full}
conns=${BENCH_CONNECTIONS:-"1 16 64"}
rounds=${BENCH_ROUNDS:-3}
py=/usr/bin/python3

need() { command -v "$1" >/dev/null || { echo "bench: $1 missing (apt-get install $2)"; exit 1; }; }
need wrk wrk; need nginx nginx-light; need sqlite3 sqlite3
[ -x "$top/referral-invitesd" ] || (cd "$top" && { [ -f Makefile ] || { autoreconf -fi && ./configure; }; } && make -j2) >/dev/null

dir=$(mktemp -d /tmp/ri-bench.XXXXXX); chmod 755 "$dir"
pids=()
cleanup() {
	[ -f "$dir/nginx.pid" ] && kill "$(cat "$dir/nginx.pid")" 2>/dev/null || true
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ -n "${BENCH_KEEP:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT

port() { $py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
p_base=$(port); p_svc=$(port); p_smtp=$(port)
user=nobody; [ "$(id -u)" = 0 ] && { id referral-invites >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin referral-invites; user=referral-invites; }

cat > "$dir/conf" <<CONF
database = $dir/db/invites.db
listen = $dir/fcgi.sock
user = $user
workers = $workers
synchronous = $sync
templates_dir = $top/templates
mail_from = Bench <bench@bench.example>
public_url = https://127.0.0.1:$p_svc
smtp_host = 127.0.0.1
smtp_port = $p_smtp
smtp_starttls = off
delivery_wait = 0
limit_per_hour = 1000
limit_per_day = 10000
app_limit_per_minute = 0
log_level = warning
CONF
mkdir "$dir/db"
ctl="$top/referral-invitesctl -c $dir/conf"
$ctl init
client=$($ctl app add --name Bench --invite-url https://bench.example/i)
key=$($ctl key add "$client" --type write)
uid=$($ctl user add "$client" --email inviter@bench.example)
# Many inviters, as in real traffic: per-inviter limits stay on and cheap.
nusers=${BENCH_USERS:-2000}
sqlite3 "$dir/db/invites.db" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL
    SELECT i + 1 FROM n WHERE i < $nusers), u(id, i) AS (SELECT lower(
    hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' ||
    substr(hex(randomblob(2)), 2) || '-a' || substr(hex(randomblob(2)), 2)
    || '-' || hex(randomblob(6))), i FROM n)
    INSERT INTO users (id, app_id, email, created_at) SELECT id, '$client',
    'inviter' || i || '@bench.example', '2026-01-01T00:00:00Z' FROM u"
sqlite3 "$dir/db/invites.db" "SELECT id FROM users" > "$dir/users"
[ "$(id -u)" = 0 ] && chown -R "$user" "$dir/db"

$py -c "
import asyncio, sys
from aiosmtpd.controller import Controller
class Sink:
    async def handle_DATA(self, server, session, envelope):
        return '250 OK'
c = Controller(Sink(), hostname='127.0.0.1', port=$p_smtp)
c.start()
import signal; signal.sigwait({signal.SIGTERM, signal.SIGINT})
c.stop()
" & pids+=($!)

"$top/referral-invitesd" -d -c "$dir/conf" 2>"$dir/daemon.log" & pids+=($!)
daemon=$!
cat > "$dir/nginx.conf" <<NGX
worker_processes 1;
user www-data;
pid $dir/nginx.pid;
error_log $dir/nginx.err;
events { worker_connections 1024; }
http {
	include /etc/nginx/mime.types;
	access_log off;
	client_body_temp_path $dir/body; fastcgi_temp_path $dir/fcgi;
	upstream referral_invites { server unix:$dir/fcgi.sock; keepalive 64; }
	# An empty key is never counted: the flood guard stays out of the way.
	limit_req_zone "" zone=referral_invites:1m rate=1r/s;
	server {
		listen 127.0.0.1:$p_base;
		location / { return 201 '{"success":true,"message":"Invite sent","error":null,"data":null}'; }
	}
	server {
		listen 127.0.0.1:$p_svc;
		include $top/nginx/location.conf;
	}
}
NGX
nginx -c "$dir/nginx.conf"
# The WAL's largest size over the run, sampled twice a second.
while :; do
	w=$(stat -c %s "$dir/db/invites.db-wal" 2>/dev/null || echo 0)
	[ "$w" -gt "$(cat "$dir/walmax" 2>/dev/null || echo 0)" ] && echo "$w" > "$dir/walmax"
	sleep 0.5
done & pids+=($!)
for i in $(seq 50); do [ -S "$dir/fcgi.sock" ] && break; sleep 0.1; done
sleep 0.5
mailer=$(pgrep -P "$daemon" -x ri-mailer)
[ "${BENCH_MAILER:-run}" = stop ] && kill -STOP "$mailer"

run() { # name url script conns
	wrk -t"$(( $4 < 2 ? 1 : 2 ))" -c"$4" -d"${secs}s" -s "$top/bench/$3" "$2" 2>&1 | sed -n 's/^BENCH //p'
}
export BENCH_USERS_FILE=$dir/users BENCH_KEY=$key BENCH_CLIENT=$client
echo "referral-invites bench: $(nproc) cores, workers=$workers, synchronous=$sync, ${secs}s per step, $rounds rounds, $nusers inviters"
printf '%-6s %-5s %-10s %10s %9s %9s %8s %7s\n' conns round target req/s p50_ms p99_ms ratio errors
# Each round measures nginx alone, the route and the hop one after the
# other; the machine's load moves between rounds, so each ratio is taken
# within its round and the median round is what a run reports.
median() { tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{ v[NR] = $1 }
    END { print NR % 2 ? v[(NR + 1) / 2] : v[NR / 2] }'; }
for c in $conns; do
	if [ -n "${BENCH_INVITE_ONLY:-}" ]; then
		run svc "http://127.0.0.1:$p_svc/" invite.lua "$c"
		continue
	fi
	got=""
	for r in $(seq "$rounds"); do
		base=$(run base "http://127.0.0.1:$p_base/api/v1/users/$uid/referral-invites" plain.lua "$c")
		svc=$(run svc "http://127.0.0.1:$p_svc/" invite.lua "$c")
		# The FastCGI hop alone: a route the daemon answers 405
		# without touching the database.
		hop=$(BENCH_METHOD=GET run hop "http://127.0.0.1:$p_svc/api/v1/referral-invites/accept" plain.lua "$c" | sed 's/non2xx=[0-9]*/non2xx=0/')
		b_rps=$(sed 's/.*rps=\([0-9]*\).*/\1/' <<<"$base")
		for line in "nginx:$base" "fcgi-hop:$hop" "invite:$svc"; do
			name=${line%%:*}; l=${line#*:}
			rps=$(sed 's/.*rps=\([0-9]*\).*/\1/' <<<"$l")
			p50=$(sed 's/.*p50_ms=\([0-9.]*\).*/\1/' <<<"$l")
			p99=$(sed 's/.*p99_ms=\([0-9.]*\).*/\1/' <<<"$l")
			err=$(sed 's/.*errors=\([0-9]*\) non2xx=\([0-9]*\).*/\1+\2/' <<<"$l")
			ratio=$(awk -v a="$rps" -v b="$b_rps" 'BEGIN { printf "%.3f", b ? a / b : 0 }')
			printf '%-6s %-5s %-10s %10s %9s %9s %8s %7s\n' "$c" "$r" "$name" "$rps" "$p50" "$p99" "$ratio" "$err"
			[ "$name" = invite ] && got="$got $ratio"
		done
	done
	printf '%-6s %-5s %-10s %s\n' "$c" median invite "ratio $(median <<<"$got") (rounds:$got)"
done

# Peak memory: the largest worker's, the writer's and the mailer's.
echo
for p in $(pgrep -P "$daemon"); do
	echo "$(cat /proc/$p/comm) $p $(awk '/VmHWM/ {print $2}' /proc/$p/status)"
done | sort -k1,1 -k3,3nr | awk -v n="$workers" '$1 != last {
	printf "%-10s pid %-7s peak RSS %6s kB%s\n", $1, $2, $3,
	    $1 == "ri-worker" ? "   (the largest of the " n " workers)" : ""
	last = $1 }'
echo "WAL peak: $(( $(cat "$dir/walmax" 2>/dev/null || echo 0) / 1048576 )) MiB"
stored=$(sqlite3 "$dir/db/invites.db" "select count(*) from invites")
echo "invites stored: $stored"

[ -n "${BENCH_NODRAIN:-}" ] && exit 0

# The mailer alone: what it sends once the HTTP steps are over, timed
# from then until the queue is empty (at most 120 s).  Its batches are
# sessions of up to 1,000 messages.
[ "${BENCH_MAILER:-run}" = stop ] && kill -CONT "$mailer"
q="select count(*) from invites where status in ('queued','sending')"
s0=$(sqlite3 "$dir/db/invites.db" "select count(*) from invites where status = 'sent'")
t0=$(date +%s.%N)
deadline=$((SECONDS + 120))
while [ "$(sqlite3 "$dir/db/invites.db" "$q")" != 0 ] && [ $SECONDS -lt $deadline ]; do sleep 0.5; done
t1=$(date +%s.%N)
s1=$(sqlite3 "$dir/db/invites.db" "select count(*) from invites where status = 'sent'")
left=$(sqlite3 "$dir/db/invites.db" "$q")
awk -v n=$((s1 - s0)) -v a="$t0" -v b="$t1" -v l="$left" -v all="$s1" 'BEGIN {
	printf "mailer: %d sent in %.1fs after the HTTP steps = %d messages/s (%d sent in all, %d left unsent)\n", n, b - a, (b > a ? n / (b - a) : 0), all, l }'
