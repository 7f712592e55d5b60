#!/bin/bash
# SPDX-License-Identifier: ISC
# Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
# Run referral-invites locally, as root on Debian 12:
#   https://127.0.0.1:8443  nginx (self-signed TLS) -> referral-invitesd
#   127.0.0.1:2525          tests/smtpd.py, saving mails as files
# Everything lives in /tmp/referral-invites-demo; running it again starts a
# fresh demo.
#
#   ./demo.sh          (re)start the demo
#   ./demo.sh stop     stop it
#
# DEMO_PORT and DEMO_SMTP_PORT choose other ports.
set -eu

SRC=$(cd "$(dirname "$0")" && pwd)
DEMO=/tmp/referral-invites-demo
PORT=${DEMO_PORT:-8443}
SMTP_PORT=${DEMO_SMTP_PORT:-2525}

die() {
	echo "demo.sh: $*" >&2
	exit 1
}

# Stop one process from its pid file, if it is still what we started.
stop_pid() {
	local pidfile=$1 what=$2 pid i
	[ -s "$pidfile" ] || return 0
	pid=$(cat "$pidfile")
	if grep -qa -- "$what" "/proc/$pid/cmdline" 2>/dev/null; then
		kill "$pid" 2>/dev/null || true
		for i in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		kill -9 "$pid" 2>/dev/null || true
	fi
	rm -f "$pidfile"
}

stop_demo() {
	stop_pid "$DEMO/nginx/nginx.pid" nginx
	stop_pid "$DEMO/daemon.pid" referral-invitesd
	stop_pid "$DEMO/smtpd.pid" smtpd.py
}

port_busy() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

wait_until() {
	local what=$1 i
	shift
	for i in $(seq 100); do
		"$@" && return 0
		sleep 0.1
	done
	die "$what did not come up; logs are in $DEMO"
}

# packages all|demo: the names in tests/packages.txt.
# shellcheck source=tests/packages.sh
. "$SRC/tests/packages.sh"

install_packages() {
	local missing="" p
	for p in $(packages demo); do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		    grep -q 'install ok installed' || missing="$missing $p"
	done
	[ -n "$missing" ] || return 0
	echo "== installing:$missing"
	apt-get update
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive apt-get install -y \
	    --no-install-recommends $missing
}

build() {
	echo "== building"
	cd "$SRC"
	if [ ! -f Makefile ]; then
		autoreconf -fi
		./configure
	fi
	make -j2
}

write_config() {
	cat > "$DEMO/referral-invites.conf" <<-EOF
	# referral-invites demo configuration (see referral-invites.conf(5))
	database = $DEMO/db/invites.db
	listen = $DEMO/run/fcgi.sock
	socket_group = www-data
	user = referral-invites
	workers = 4
	templates_dir = $SRC/templates
	mail_from = Demo App <invites@demo.example>
	public_url = https://127.0.0.1:$PORT
	smtp_host = 127.0.0.1
	smtp_port = $SMTP_PORT
	smtp_starttls = off
	log_level = info
	EOF
}

write_nginx_config() {
	local n=$DEMO/nginx
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -days 30 -subj /CN=localhost \
	    -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
	    -keyout "$n/key.pem" -out "$n/cert.pem" 2>/dev/null
	chown www-data "$n/tmp"
	# http.conf as shipped, with the upstream at the demo's socket.
	sed "s#unix:/run/referral-invites/fcgi.sock#unix:$DEMO/run/fcgi.sock#" \
	    "$SRC/nginx/http.conf" > "$n/http.conf"
	# site.conf's TLS server as shipped: its TLS settings and headers,
	# but no HSTS (a browser would pin it on localhost for two years).
	awk '/^server \{/ { n++ }
	    /^\tssl_certificate|Strict-Transport-Security/ { next }
	    n == 2 && /^\t(ssl_|server_tokens|underscores_in|add_header)/' \
	    "$SRC/nginx/site.conf" > "$n/site.conf"
	grep -q '^[[:space:]]*ssl_protocols ' "$n/site.conf" ||
	    die "no TLS settings found in $SRC/nginx/site.conf"
	# The process and connection settings of Debian's nginx.conf, which
	# site.conf is shipped for (a worker a core), with room for 1024
	# connections a worker; keep-alive and timeouts are nginx's defaults,
	# as there.  One worker of 256 connections dropped idle clients past
	# about 250.
	cat > "$n/nginx.conf" <<-EOF
	user www-data;
	worker_processes auto;
	worker_rlimit_nofile 4096;
	pid $n/nginx.pid;
	error_log $DEMO/nginx-error.log;
	events { worker_connections 1024; }
	http {
		sendfile on;
		tcp_nopush on;
		include /etc/nginx/mime.types;
		default_type application/octet-stream;
		access_log $DEMO/nginx-access.log;
		client_body_temp_path $n/tmp/body;
		fastcgi_temp_path $n/tmp/fastcgi;
		proxy_temp_path $n/tmp/proxy;
		scgi_temp_path $n/tmp/scgi;
		uwsgi_temp_path $n/tmp/uwsgi;
		include $n/http.conf;
		server {
			listen 127.0.0.1:$PORT ssl;
			server_name localhost;
			ssl_certificate $n/cert.pem;
			ssl_certificate_key $n/key.pem;
			include $n/site.conf;
			include $SRC/nginx/location.conf;
			location / {
				return 404;
			}
		}
	}
	EOF
}

start_demo() {
	local ctl="$SRC/referral-invitesctl -c $DEMO/referral-invites.conf"
	local cid key uid

	port_busy $PORT && die "port $PORT is in use (set DEMO_PORT)"
	port_busy $SMTP_PORT &&
	    die "port $SMTP_PORT is in use (set DEMO_SMTP_PORT)"
	rm -rf "$DEMO"
	mkdir -m 0755 "$DEMO" "$DEMO/db" "$DEMO/run" "$DEMO/mail" \
	    "$DEMO/nginx" "$DEMO/nginx/tmp"
	id referral-invites >/dev/null 2>&1 ||
	    useradd --system --no-create-home --shell /usr/sbin/nologin \
	    referral-invites

	echo "== setting up $DEMO"
	write_config
	$ctl init
	cid=$($ctl app add --name "Demo App" --invite-url https://app.example/invite)
	key=$($ctl key add "$cid" --type write)
	uid=$($ctl user add "$cid" --email alice@example.org --name Alice)
	chown -R referral-invites "$DEMO/db" "$DEMO/run"
	write_nginx_config

	echo "== starting smtpd, referral-invitesd, nginx"
	setsid /usr/bin/python3 "$SRC/tests/smtpd.py" --port $SMTP_PORT \
	    --maildir "$DEMO/mail" --pidfile "$DEMO/smtpd.pid" \
	    </dev/null >>"$DEMO/smtpd.log" 2>&1 &
	wait_until smtpd port_busy $SMTP_PORT
	"$SRC/referral-invitesd" -t -c "$DEMO/referral-invites.conf"
	setsid "$SRC/referral-invitesd" -d -c "$DEMO/referral-invites.conf" \
	    </dev/null >>"$DEMO/daemon.log" 2>&1 &
	echo $! > "$DEMO/daemon.pid"
	wait_until referral-invitesd test -S "$DEMO/run/fcgi.sock"
	nginx -p "$DEMO/nginx/" -e "$DEMO/nginx-error.log" \
	    -c "$DEMO/nginx/nginx.conf"
	wait_until nginx port_busy $PORT
	# The whole chain answers: no credentials is a 401 from the daemon.
	[ "$(curl -sk -o /dev/null -w '%{http_code}' -X POST \
	    "https://127.0.0.1:$PORT/api/v1/users/$uid/referral-invites")" = 401 ] ||
	    die "the service does not answer as expected; see $DEMO/*.log"

	cat <<-EOF

	referral-invites demo is running on https://127.0.0.1:$PORT
	  app (X-CLIENT-ID)  $cid
	  write key          $key
	  user Alice         $uid

	Send an invite:

	curl -sk -i https://127.0.0.1:$PORT/api/v1/users/$uid/referral-invites \\
	  -H 'Content-Type: application/json' \\
	  -H 'X-API-KEY: $key' -H 'X-API-KEY-TYPE: write' \\
	  -H 'X-CLIENT-ID: $cid' \\
	  -d '{"email":"friend@example.org","language":"de"}'

	The mail lands in $DEMO/mail/ (1.eml, with its envelope in 1.json).
	The invites:  sqlite3 $DEMO/db/invites.db 'SELECT * FROM invites_overview'
	Logs:         $DEMO/daemon.log, nginx-error.log, smtpd.log
	Stop it:      $SRC/demo.sh stop
	EOF
}

[ "$(id -u)" -eq 0 ] || die "run me as root"
case ${1:-start} in
stop)
	stop_demo
	echo "demo stopped"
	;;
start)
	stop_demo
	install_packages
	build
	start_demo
	;;
*)
	echo "usage: $0 [stop]" >&2
	exit 2
	;;
esac
