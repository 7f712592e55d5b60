#!/bin/bash
# SPDX-License-Identifier: ISC
# Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
# bench/run.sh: measure the invite route against nginx answering by itself,
# in the same run on the same machine, and print the ratios.
#
#   bench/run.sh                  # 10 s per step, 1/16/64 connections, 3 rounds
#   BENCH_SECONDS=5 BENCH_WORKERS=16 BENCH_SYNC=full bench/run.sh
#   BENCH_CONNECTIONS="16 64" BENCH_NODRAIN=1 bench/run.sh  # no mailer steps
#   BENCH_ROUNDS=1 bench/run.sh   # one round: each step once
#   BENCH_WAIT=0 bench/run.sh     # delivery_wait 0: the HTTP side's numbers
#   BENCH_SMTP_DELAY_MS=200 BENCH_SESSIONS=4 bench/run.sh  # a slow relay
#   BENCH_LIMITS=1e9 bench/run.sh # every rate limit checked, never reached
#   BENCH_DB=postgresql bench/run.sh               # the same on PostgreSQL 15
#   BENCH_DB=postgresql BENCH_NODES=2 bench/run.sh # two nodes, one database
#
# BENCH_DB=postgresql (default sqlite): the database is a private
# PostgreSQL 15 cluster the script makes in its temp dir (initdb from
# PG_BIN, default /usr/lib/postgresql/15/bin; as Debian's "postgres"
# account when run as root), on a unix socket only, with a site's
# durability (fsync, synchronous_commit and full_page_writes on,
# shared_buffers 128MB), a role with a password owning one database; it
# is stopped and removed at the end.  Where the SQLite run reads its file
# with sqlite3, this one uses psql; the WAL peak is SQLite's (n/a here).
# BENCH_NODES=N (default 1; more needs PostgreSQL): N daemons, each with
# its own config, socket and state_directory (secret.key copied from the
# first), all on the one database, behind the one nginx whose upstream
# lists every socket; the mailer-alone step wakes each node's mailer (one
# invite to each, through a server of its own), the peak RSS lines are
# per node, and a last line per node says how many invites it stored and
# how many its mailer sent.
#
# The configuration is the shipped one (delivery_wait, smtp_sessions and
# synchronous at the daemon's defaults, the mailer sending into an SMTP
# sink beside), except that the per-inviter limits are raised and the
# per-app one is off: the steps store more invites an hour than 20 each of
# BENCH_USERS inviters may send.  Everything binds 127.0.0.1 or unix
# sockets under a temp dir and stops at the end.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
secs=${BENCH_SECONDS:-10}
workers=${BENCH_WORKERS:-4}
sync=${BENCH_SYNC:-full}
conns=${BENCH_CONNECTIONS:-"1 16 64"}
rounds=${BENCH_ROUNDS:-3}
delay=${BENCH_SMTP_DELAY_MS:-0}
# The sink stands for a relay on another host.  Here it shares the cores:
# with delivery_wait 0 it runs at the nice the mailer takes then (10), so
# that like the mailer it gets what answering leaves; with a wait, the
# verdict is part of the answer and both run at the pool's.
if [ "${BENCH_WAIT:-3}" = 0 ]; then sink_nice=${BENCH_SINK_NICE:-10}; else sink_nice=${BENCH_SINK_NICE:-0}; fi
py=/usr/bin/python3
db=${BENCH_DB:-sqlite}
nodes=${BENCH_NODES:-1}
pg_bin=${PG_BIN:-/usr/lib/postgresql/15/bin}
case $db in sqlite | postgresql) ;; *) echo "bench: BENCH_DB is sqlite or postgresql"; exit 1 ;; esac
case $nodes in '' | *[!0-9]* | 0*) echo "bench: BENCH_NODES is a number of nodes, 1 or more"; exit 1 ;; esac
[ "$nodes" = 1 ] || [ "$db" = postgresql ] || { echo "bench: BENCH_NODES=$nodes needs BENCH_DB=postgresql (nodes cannot share a SQLite file)"; exit 1; }

need() { command -v "$1" >/dev/null || { echo "bench: $1 missing (apt-get install $2)"; exit 1; }; }
need wrk wrk; need nginx nginx-light; need curl curl
if [ "$db" = sqlite ]; then
	need sqlite3 sqlite3
else
	for b in initdb pg_ctl psql; do
		[ -x "$pg_bin/$b" ] || { echo "bench: $pg_bin/$b missing (apt-get install postgresql-15, or set PG_BIN)"; exit 1; }
	done
fi
[ -x "$top/referral-invitesd" ] || (cd "$top" && { [ -f Makefile ] || { autoreconf -fi && ./configure; }; } && make -j2) >/dev/null
case ${BENCH_LIMITS:-} in
'') lh=1000 ld=10000 lm=0 ;;
1e9) lh=1000000000 ld=$lh lm=$lh ;;
*[!0-9]*) echo "bench: BENCH_LIMITS is a number (or 1e9)"; exit 1 ;;
*) lh=$BENCH_LIMITS ld=$lh lm=$lh ;;
esac
case $delay in *[!0-9]*) echo "bench: BENCH_SMTP_DELAY_MS is milliseconds"; exit 1 ;; esac

dir=$(mktemp -d /tmp/ri-bench.XXXXXX); chmod 755 "$dir"
pids=()
pg_up=""
cleanup() {
	[ -f "$dir/nginx.pid" ] && kill "$(cat "$dir/nginx.pid")" 2>/dev/null || true
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ -z "$pg_up" ] || as_pg "$pg_bin/pg_ctl" -D "$pgdir/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
	[ -n "${BENCH_KEEP:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT

port() { $py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
p_base=$(port); p_svc=$(port); p_smtp=$(port)
user=nobody; [ "$(id -u)" = 0 ] && { id referral-invites >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin referral-invites; user=referral-invites; }

# PostgreSQL: the cluster in $dir/pg (0711: the daemon's account reaches
# the socket there, not the data), its superuser the account it runs as,
# let in by peer over the socket; the daemons' role by password.
pgdir=$dir/pg
as_pg() { # argv, as the cluster's account, in its directory
	if [ "$(id -u)" = 0 ]; then
		(cd "$pgdir" && setpriv --reuid="$pg_acct" --regid="$(id -g "$pg_acct")" --clear-groups -- "$@")
	else
		(cd "$pgdir" && "$@")
	fi
}
if [ "$db" = postgresql ]; then
	pg_acct=$(id -un)
	[ "$(id -u)" = 0 ] && { id postgres >/dev/null 2>&1 && pg_acct=postgres || pg_acct=$user; }
	mkdir "$pgdir"
	[ "$(id -u)" = 0 ] && chown "$pg_acct:" "$pgdir"
	chmod 711 "$pgdir"
	as_pg "$pg_bin/initdb" -D "$pgdir/data" -U "$pg_acct" --auth-local=peer \
	    --auth-host=reject -E UTF8 --locale=C.UTF-8 --no-sync >"$pgdir/initdb.log" 2>&1 ||
	    { cat "$pgdir/initdb.log"; exit 1; }
	printf 'local all ri scram-sha-256\nlocal all all peer\n' > "$pgdir/data/pg_hba.conf"
	# A site's durability, not the tests' fsync = off.  Each node holds a
	# connection per worker, two for the writer and a few more.
	cat >> "$pgdir/data/postgresql.conf" <<PGCONF
listen_addresses = ''
unix_socket_directories = '$pgdir'
fsync = on
synchronous_commit = on
full_page_writes = on
shared_buffers = 128MB
max_connections = $((nodes * (workers + 8) > 80 ? nodes * (workers + 8) + 20 : 100))
PGCONF
	pg_up=1
	as_pg "$pg_bin/pg_ctl" -D "$pgdir/data" -l "$pgdir/postgres.log" -w -t 30 start >/dev/null ||
	    { cat "$pgdir/postgres.log"; exit 1; }
	pgpw=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
	as_pg "$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$pgdir" -d postgres \
	    -c "CREATE ROLE ri LOGIN PASSWORD '$pgpw'" -c "CREATE DATABASE ri OWNER ri"
	database="postgresql://ri:$pgpw@/ri?host=$pgdir"
else
	database=$dir/db/invites.db
fi

cat > "$dir/conf" <<CONF
database = $database
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
limit_per_hour = $lh
limit_per_day = $ld
app_limit_per_minute = $lm
log_level = warning
CONF
[ "$db" = postgresql ] && echo "state_directory = $dir/db" >> "$dir/conf"
[ -n "${BENCH_WAIT:-}" ] && echo "delivery_wait = $BENCH_WAIT" >> "$dir/conf"
mkdir "$dir/db"
ctl="$top/referral-invitesctl -c $dir/conf"
# (On PostgreSQL init says which database it made the schema in.)
if [ "$db" = sqlite ]; then $ctl init; else $ctl init >/dev/null; fi
# smtp_sessions only where the daemon knows the key (-t refuses others).
sessions=unsupported
{ cat "$dir/conf"; echo "smtp_sessions = 4"; } > "$dir/conf.t"
if "$top/referral-invitesd" -t -c "$dir/conf.t" 2>/dev/null; then
	sessions=default
	[ -n "${BENCH_SESSIONS:-}" ] && { echo "smtp_sessions = $BENCH_SESSIONS" >> "$dir/conf"; sessions=$BENCH_SESSIONS; }
elif [ -n "${BENCH_SESSIONS:-}" ]; then
	echo "bench: this daemon has no smtp_sessions: BENCH_SESSIONS ignored"
fi
"$top/referral-invitesd" -t -c "$dir/conf" 2>/dev/null || { "$top/referral-invitesd" -t -c "$dir/conf"; exit 1; }
# The other nodes: node 1's config but for the socket and state_directory,
# each in $dir/nodeN with its own copy of node 1's secret.key.
confs=("$dir/conf") socks=("$dir/fcgi.sock") logs=("$dir/daemon.log")
for n in $(seq 2 "$nodes"); do
	nd=$dir/node$n
	mkdir -p "$nd/state"
	cp -p "$dir/db/secret.key" "$nd/state/"
	sed -e "s|^listen = .*|listen = $nd/fcgi.sock|" \
	    -e "s|^state_directory = .*|state_directory = $nd/state|" "$dir/conf" > "$nd/conf"
	[ "$(id -u)" = 0 ] && chown -R "$user" "$nd/state"
	confs+=("$nd/conf") socks+=("$nd/fcgi.sock") logs+=("$nd/daemon.log")
done
# The database, read and written beside the daemons: sqlite3 on the
# SQLite file, psql on PostgreSQL (rows unaligned, columns split by |).
q() { # SQL
	if [ "$db" = sqlite ]; then
		sqlite3 -cmd ".timeout 10000" "$dir/db/invites.db" "$1"
	else
		"$pg_bin/psql" -X -q -A -t -F '|' -v ON_ERROR_STOP=1 -d "$database" -c "$1"
	fi
}
client=$($ctl app add --name Bench --invite-url https://bench.example/i)
key=$($ctl key add "$client" --type write)
uid=$($ctl user add "$client" --email inviter@bench.example)
# Many inviters, as in real traffic: per-inviter limits stay on and cheap.
nusers=${BENCH_USERS:-2000}
if [ "$db" = sqlite ]; then
	q "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL
	    SELECT i + 1 FROM n WHERE i < $nusers), u(id, i) AS (SELECT lower(
	    hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' ||
	    substr(hex(randomblob(2)), 2) || '-a' || substr(hex(randomblob(2)), 2)
	    || '-' || hex(randomblob(6))), i FROM n)
	    INSERT INTO users (id, app_id, email, created_at) SELECT id, '$client',
	    'inviter' || i || '@bench.example', '2026-01-01T00:00:00Z' FROM u"
else
	q "INSERT INTO users (id, app_id, email, created_at) SELECT
	    gen_random_uuid()::text, '$client', 'inviter' || i || '@bench.example',
	    '2026-01-01T00:00:00Z' FROM generate_series(1, $nusers) AS i"
fi
q "SELECT id FROM users" > "$dir/users"
[ "$(id -u)" = 0 ] && chown -R "$user" "$dir/db"

# The SMTP sink: takes every message, after BENCH_SMTP_DELAY_MS at the
# end of DATA (a slow relay).
nice -n "$sink_nice" $py -c "
import asyncio, sys
from aiosmtpd.controller import Controller
delay = $delay / 1000
class Sink:
    async def handle_DATA(self, server, session, envelope):
        if delay:
            await asyncio.sleep(delay)
        return '250 OK'
# A fixed name: aiosmtpd would look its host's name up per connection.
c = Controller(Sink(), hostname='127.0.0.1', port=$p_smtp,
               server_hostname='bench.test')
c.start()
import signal; signal.sigwait({signal.SIGTERM, signal.SIGINT})
c.stop()
" & pids+=($!)

daemons=()
for n in $(seq "$nodes"); do
	"$top/referral-invitesd" -d -c "${confs[n - 1]}" 2>"${logs[n - 1]}" & pids+=($!)
	daemons+=($!)
done
# With several nodes each has a server of its own as well (a port, no
# route's settings), through which the mailer-alone step wakes that
# node's mailer; a single node is woken through the route's server.
ups="" wakes="" wake_ports=()
for n in $(seq "$nodes"); do
	ups="$ups server unix:${socks[n - 1]};"
	[ "$nodes" = 1 ] && break
	wake_ports+=("$(port)")
	wakes="$wakes
	server {
		listen 127.0.0.1:${wake_ports[n - 1]};
		location / {
			fastcgi_param REQUEST_METHOD \$request_method;
			fastcgi_param REQUEST_URI \$request_uri;
			fastcgi_param DOCUMENT_URI \$document_uri;
			fastcgi_param QUERY_STRING \$query_string;
			fastcgi_param CONTENT_TYPE \$content_type;
			fastcgi_param CONTENT_LENGTH \$content_length;
			fastcgi_param REQUEST_ID \$request_id;
			fastcgi_pass unix:${socks[n - 1]};
		}
	}"
done
[ "$nodes" = 1 ] && wake_ports=("$p_svc")
cat > "$dir/nginx.conf" <<NGX
worker_processes auto;
user www-data;
pid $dir/nginx.pid;
error_log $dir/nginx.err info;
events { worker_connections 1024; }
http {
	include /etc/nginx/mime.types;
	# As a site runs it: every request logged (buffered, as Debian's is not;
	# the file is removed with the temp dir).
	access_log $dir/access.log combined buffer=64k;
	client_body_temp_path $dir/body; fastcgi_temp_path $dir/fcgi;
	upstream referral_invites {$ups keepalive 64; }
	# An empty key is never counted: the flood guard stays out of the way.
	limit_req_zone "" zone=referral_invites:1m rate=1r/s;
	server {
		listen 127.0.0.1:$p_base;
		location / { return 201 '{"success":true,"message":"Invite sent","error":null,"data":null}'; }
	}
	server {
		listen 127.0.0.1:$p_svc;
		include $top/nginx/location.conf;
	}$wakes
}
NGX
nginx -c "$dir/nginx.conf"
# The WAL's largest size over the run, sampled twice a second (SQLite's
# file; PostgreSQL's WAL is the server's).
if [ "$db" = sqlite ]; then
	while :; do
		w=$(stat -c %s "$dir/db/invites.db-wal" 2>/dev/null || echo 0)
		[ "$w" -gt "$(cat "$dir/walmax" 2>/dev/null || echo 0)" ] && echo "$w" > "$dir/walmax"
		sleep 0.5
	done & pids+=($!)
fi
for s in "${socks[@]}"; do
	for i in $(seq 50); do [ -S "$s" ] && break; sleep 0.1; done
done
sleep 0.5
mailers=()
for d in "${daemons[@]}"; do
	m=$(pgrep -P "$d" -x ri-mailer || true)
	[ -n "$m" ] && mailers+=("$m")
done

field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }
echo "referral-invites bench: $(nproc) cores, db=$db, nodes=$nodes, workers=$workers, synchronous=$sync, ${secs}s per step, $rounds rounds, $nusers inviters"
echo "delivery_wait=${BENCH_WAIT:-default} smtp_sessions=$sessions smtp_delay_ms=$delay sink_nice=$sink_nice limits: $lh/h $ld/day per inviter, $lm/min per app"
[ "$db" = postgresql ] && echo "postgresql $(q "SELECT concat_ws(' ', current_setting('server_version'),
    'fsync=' || current_setting('fsync'), 'synchronous_commit=' || current_setting('synchronous_commit'),
    'full_page_writes=' || current_setting('full_page_writes'), 'shared_buffers=' || current_setting('shared_buffers'),
    'max_connections=' || current_setting('max_connections'))"), unix socket only"

median() { tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{ v[NR] = $1 }
    END { print NR % 2 ? v[(NR + 1) / 2] : v[NR / 2] }'; }
# One measurement of the mailer alone: its messages/s into rate.
mailer_alone() { # round
	lo=$(q "SELECT coalesce(max(rowid), 0) FROM invites")
	# The same rows on either: an id as a v4 UUID, a token hash of 64 hex
	# digits, two days old.
	local cols="id, app_id, inviter_id, email, email_normalized,
	    language_requested, language_resolved, status, request_id,
	    accept_token_hash, next_attempt_at, created_at, updated_at"
	if [ "$db" = sqlite ]; then
		q "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n
		    WHERE i < $mn), t(ts) AS (SELECT strftime('%Y-%m-%dT%H:%M:%SZ',
		    'now', '-2 days'))
		    INSERT INTO invites ($cols)
		    SELECT lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) ||
		    '-4' || substr(hex(randomblob(2)), 2) || '-a' ||
		    substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6))),
		    '$client', '$uid', 'mailer$1-' || i || '@bench.example',
		    'mailer$1-' || i || '@bench.example', 'de', 'de', 'queued',
		    'bench-mailer', lower(hex(randomblob(32))), '2000-01-01T00:00:00Z',
		    ts, ts FROM n, t"
	else
		q "WITH t(ts) AS (SELECT to_char(now() AT TIME ZONE 'UTC' -
		    interval '2 days', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))
		    INSERT INTO invites ($cols)
		    SELECT gen_random_uuid()::text,
		    '$client', '$uid', 'mailer$1-' || i || '@bench.example',
		    'mailer$1-' || i || '@bench.example', 'de', 'de', 'queued',
		    'bench-mailer', encode(sha256(gen_random_uuid()::text::bytea), 'hex'),
		    '2000-01-01T00:00:00Z', ts, ts FROM generate_series(1, $mn) AS i, t"
	fi
	hi=$(q "SELECT max(rowid) FROM invites")
	# One invite through the route wakes the mailer now rather than at
	# its next look for due retries; with several nodes, one to each
	# node's own server wakes each node's.
	local wake=() n sfx=""
	for n in $(seq "$nodes"); do
		[ "$nodes" = 1 ] || sfx=-n$n
		curl -s -o /dev/null -X POST -H "Content-Type: application/json" \
		    -H "X-API-KEY: $key" -H "X-CLIENT-ID: $client" -H "X-API-KEY-TYPE: write" \
		    -d "{\"email\":\"wake$1$sfx@bench.example\",\"language\":\"de\"}" \
		    "http://127.0.0.1:${wake_ports[n - 1]}/api/v1/users/$uid/referral-invites" & wake+=($!)
	done
	mq="SELECT sum(CASE WHEN status <> 'queued' THEN 1 ELSE 0 END),
	    sum(CASE WHEN status = 'sent' THEN 1 ELSE 0 END)
	    FROM invites WHERE rowid > $lo AND rowid <= $hi"
	bound=$((secs * 6 > 60 ? secs * 6 : 60))
	t0="" t1="" sent=0 limit=$((SECONDS + 15))
	while [ $SECONDS -lt "$limit" ]; do
		IFS='|' read -r claimed sent <<<"$(q "$mq")"
		now=$(date +%s.%N)
		if [ -z "$t0" ] && [ "${claimed:-0}" -gt 0 ]; then t0=$now; limit=$((SECONDS + bound)); fi
		[ "${sent:-0}" -ge "$mn" ] && { t1=$now; break; }
		sleep 0.1
	done
	t1=${t1:-$(date +%s.%N)}
	local cancel="UPDATE invites SET status = 'canceled' WHERE rowid > $lo AND rowid <= $hi AND status = 'queued'"
	if [ "$db" = sqlite ]; then
		left=$(q "$cancel; SELECT changes()")
	else
		left=$(q "WITH c AS ($cancel RETURNING 1) SELECT count(*) FROM c")
	fi
	wait "${wake[@]}" || true
	rate=$(awk -v n="${sent:-0}" -v a="${t0:-$t1}" -v b="$t1" 'BEGIN { printf "%.1f", (b > a ? n / (b - a) : 0) }')
	awk -v n="${sent:-0}" -v a="${t0:-$t1}" -v b="$t1" -v m="$mn" -v r="$rate" -v l="$left" 'BEGIN {
		printf "mailer alone: %d of %d sent in %.1fs = %.1f messages/s (%d canceled unsent)\n", n, m, b - a, r, l }'
}

# The mailer alone, before any HTTP load: N due invites written straight
# into the database, timed from the mailer's first claim until all are
# sent (at most max(6 x BENCH_SECONDS, 60) s), BENCH_MAILER_RUNS times
# (3), the median taken: one run of a few seconds moves with the
# machine's load.  N is what the sessions could send in BENCH_SECONDS
# with the sink's delay (1,000 a second without one).  They are two
# days old: no inviter's limit counts them.
mailer_rate=0
if [ -z "${BENCH_NODRAIN:-}" ]; then
	if [ "$delay" -gt 0 ]; then
		case $sessions in unsupported) k=1 ;; default) k=4 ;; *) k=$sessions ;; esac
		mn=$((secs * 1000 * k / delay))
	else
		mn=$((secs * 1000))
	fi
	[ "$mn" -lt 10 ] && mn=10
	rates=""
	for i in $(seq "${BENCH_MAILER_RUNS:-3}"); do
		mailer_alone "$i"
		rates="$rates $rate"
	done
	mailer_rate=$(median <<<"$rates")
	echo "mailer alone: median $mailer_rate messages/s (runs:$rates)"
fi
[ "${BENCH_MAILER:-run}" = stop ] && kill -STOP "${mailers[@]}"

# wrk gives up on a request after 2 s by default, and an invite may wait
# delivery_wait for its verdict: count an answer that late as an answer.
tmo=$((${BENCH_WAIT:-3} + 5))
run() { # name url script conns
	wrk -t"$(( $4 < 2 ? 1 : 2 ))" -c"$4" -d"${secs}s" --timeout "${tmo}s" -s "$top/bench/$3" "$2" 2>&1 | sed -n 's/^BENCH //p'
}
share() { # "Invite sent" of the 201 answers, in per cent
	awk -v s="$(field sent "$1")" -v q="$(field queued "$1")" 'BEGIN {
		if (s + q > 0) printf "%.1f", 100 * s / (s + q); else print "-" }'
}
row() { # conns round target line ratio sent%
	printf '%-6s %-5s %-10s %10s %9s %9s %8s %7s %6s\n' "$1" "$2" "$3" \
	    "$(field rps "$4")" "$(field p50_ms "$4")" "$(field p99_ms "$4")" "$5" \
	    "$(field errors "$4")+$(field non2xx "$4")" "$6"
}
export BENCH_USERS_FILE=$dir/users BENCH_KEY=$key BENCH_CLIENT=$client
printf '%-6s %-5s %-10s %10s %9s %9s %8s %7s %6s\n' conns round target req/s p50_ms p99_ms ratio errors sent%
# Each round measures nginx alone, the hop and the route one after the
# other (the route last: invites still waiting for a verdict when wrk
# stops would slow the next step); the machine's load moves between
# rounds, so each ratio is taken within its round and the median round is
# what a run reports.
# The invite rate set against the mailer's: at 64 connections, else at
# the largest count run.
top_c="" top_rps=0
pick() { [ "$top_c" = 64 ] || { [ -n "$top_c" ] && [ "$1" != 64 ] && [ "$1" -lt "$top_c" ]; } || top_c=$1 top_rps=$2; }
for c in $conns; do
	if [ -n "${BENCH_INVITE_ONLY:-}" ]; then
		svc=$(run svc "http://127.0.0.1:$p_svc/" invite.lua "$c")
		row "$c" 1 invite "$svc" - "$(share "$svc")"
		pick "$c" "$(field rps "$svc")"
		continue
	fi
	got="" rpss=""
	for r in $(seq "$rounds"); do
		base=$(run base "http://127.0.0.1:$p_base/api/v1/users/$uid/referral-invites" plain.lua "$c")
		# The FastCGI hop alone: a route the daemon answers 405
		# without touching the database.
		hop=$(BENCH_METHOD=GET run hop "http://127.0.0.1:$p_svc/api/v1/referral-invites/accept" plain.lua "$c" | sed 's/non2xx=[0-9]*/non2xx=0/')
		svc=$(run svc "http://127.0.0.1:$p_svc/" invite.lua "$c")
		b_rps=$(field rps "$base")
		for line in "nginx:$base" "fcgi-hop:$hop" "invite:$svc"; do
			name=${line%%:*}; l=${line#*:}
			ratio=$(awk -v a="$(field rps "$l")" -v b="$b_rps" 'BEGIN { printf "%.3f", b ? a / b : 0 }')
			row "$c" "$r" "$name" "$l" "$ratio" "$([ "$name" = invite ] && share "$l" || echo -)"
		done
		got="$got $(awk -v a="$(field rps "$svc")" -v b="$b_rps" 'BEGIN { printf "%.3f", b ? a / b : 0 }')"
		rpss="$rpss $(field rps "$svc")"
	done
	pick "$c" "$(median <<<"$rpss")"
	printf '%-6s %-5s %-10s %s\n' "$c" median invite "ratio $(median <<<"$got") (rounds:$got) req/s $(median <<<"$rpss")"
done

# Listing while inviting: one connection lists an inviter's invites while
# 32 connections invite, for the same seconds; behind a slow relay, once
# the last step's invites have had their delivery_wait.
if [ -z "${BENCH_INVITE_ONLY:-}" ]; then
	[ "$delay" = 0 ] || sleep $((${BENCH_WAIT:-3} + 1))
	lister=$(sed -n 2p "$dir/users")
	run svc "http://127.0.0.1:$p_svc/" invite.lua 32 > "$dir/busy" & busy=$!
	list=$(run list "http://127.0.0.1:$p_svc/api/v1/users/$lister/referral-invites" list.lua 1)
	wait "$busy"
	row 32 busy invite "$(cat "$dir/busy")" - "$(share "$(cat "$dir/busy")")"
	row 1 busy list "$list" - -
fi

# Peak memory: the largest worker's, the writer's and the mailer's (with
# several nodes, each node's, the line ending in its number).
echo
for n in $(seq "$nodes"); do
	for p in $(pgrep -P "${daemons[n - 1]}"); do
		echo "$(cat "/proc/$p/comm") $p $(awk '/VmHWM/ {print $2}' "/proc/$p/status")"
	done | sort -k1,1 -k3,3nr | awk -v n="$workers" -v node="$([ "$nodes" = 1 ] || echo "   [node $n]")" '$1 != last {
		printf "%-10s pid %-7s peak RSS %6s kB%s%s\n", $1, $2, $3,
		    $1 == "ri-worker" ? "   (the largest of the " n " workers)" : "", node
		last = $1 }'
done
if [ "$db" = sqlite ]; then
	echo "WAL peak: $(( $(cat "$dir/walmax" 2>/dev/null || echo 0) / 1048576 )) MiB"
else
	echo "WAL peak: n/a"
fi
stored=$(q "select count(*) from invites")
echo "invites stored: $stored"
# With several nodes, the share each took: the invites it stored (its
# 201 answers) and its mailer's sent verdicts, from its metrics.
node_lines() {
	[ "$nodes" = 1 ] && return
	for n in $(seq "$nodes"); do
		"$top/referral-invitesctl" -c "${confs[n - 1]}" metrics | awk -v n="$n" '
		    /^referral_invites_http_requests_total\{method="POST",route="\/api\/v1\/users\/:userId\/referral-invites",status="201"\}/ { s = $2 }
		    /^referral_invites_deliveries_total\{result="sent"\}/ { d = $2 }
		    END { printf "node %d: %d invites stored through it, %d sent by its mailer\n", n, s, d }'
	done
}

[ -n "${BENCH_NODRAIN:-}" ] && { node_lines; exit 0; }
awk -v c="$top_c" -v a="$top_rps" -v b="$mailer_rate" 'BEGIN {
	printf "invites/s at %s connections / mailer alone: %.3f (%d / %.1f)\n", c, b ? a / b : 0, a, b }'

# The mailer after the HTTP steps: what it still has to send, timed from
# then until the queue is empty (at most 120 s).
[ "${BENCH_MAILER:-run}" = stop ] && kill -CONT "${mailers[@]}"
pending="select count(*) from invites where status in ('queued','sending')"
s0=$(q "select count(*) from invites where status = 'sent'")
t0=$(date +%s.%N)
deadline=$((SECONDS + 120))
while [ "$(q "$pending")" != 0 ] && [ $SECONDS -lt $deadline ]; do sleep 0.5; done
t1=$(date +%s.%N)
s1=$(q "select count(*) from invites where status = 'sent'")
left=$(q "$pending")
awk -v n=$((s1 - s0)) -v a="$t0" -v b="$t1" -v l="$left" -v all="$s1" 'BEGIN {
	printf "mailer: %d sent in %.1fs after the HTTP steps = %d messages/s (%d sent in all, %d left unsent)\n", n, b - a, (b > a ? n / (b - a) : 0), all, l }'
node_lines
