# SPDX-License-Identifier: ISC
# Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
"""End-to-end harness: the real daemon behind real nginx, a real SMTP server.

Stack().start() builds, in a fresh temporary directory (mode 0755, so the
daemon's user and nginx's www-data can traverse it):

    referral-invites.conf   the daemon's config (defaults below + overrides)
    db/                     invites.db and secret.key, owned by the daemon user
    run/fcgi.sock           the daemon's FastCGI socket
    mail/<n>.eml, <n>.json  what tests/smtpd.py received
    nginx/                  nginx.conf, certificate, temp paths
    *.log                   daemon, smtpd, nginx logs (kept when a test fails)

nginx includes <srcdir>/nginx/location.conf unchanged; the http-context part
is <srcdir>/nginx/http.conf with the upstream pointed at the temp socket and
the limit_req rate raised to TEST_RATE (the suite is faster than one client
should be; test_nginx_rate_limit still meets the limit).

Only the standard library is used here; smtpd.py runs under /usr/bin/python3
because Debian's python3-aiosmtpd is importable from there only.

Below the Stack, what the test modules share: App (an app, its write key
and an inviter), the answer bodies and checks every route answers with
(ok_body, err_body, check, ...), unique addresses, and ways to wait for
the daemon's processes, its log and its channels (wait_for and friends)
rather than for a fixed time.

Environment: BUILDDIR (the binaries, default /work/main), SRCDIR (templates,
nginx/, tests/; default: this file's tree), RI_E2E_KEEP=1 keeps the temp dir.
"""

import atexit
import base64
import contextlib
import email
import email.policy
import glob
import grp
import http.client
import json
import os
import pwd
import re
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import tempfile
import threading
import time
import uuid

SRCDIR = os.path.abspath(os.environ.get('SRCDIR') or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..'))
BUILDDIR = os.path.abspath(os.environ.get('BUILDDIR') or SRCDIR)
DAEMON = os.path.join(BUILDDIR, 'referral-invitesd')
CTL = os.path.join(BUILDDIR, 'referral-invitesctl')
PYTHON = '/usr/bin/python3'
DAEMON_USER = 'referral-invites'
REAL_SOCKET = 'unix:/run/referral-invites/fcgi.sock'
MAIL_FROM = 'Referral Invites Test <invites@test.example>'
# The suite sends faster than the shipped per-address rate; only the
# flood test should meet nginx's limit.
TEST_RATE = '100r/s'
SMTPD_ARGS = ['--reject-rcpt', '^reject-', '--defer-rcpt', '^defer-']


@contextlib.contextmanager
def pg_write_locked(uri, held):
    """The advisory lock every write transaction takes (src/db.c,
    PG_WRITE_LOCK) held by a psql of its own on uri for the with block;
    held() says when it is granted.  Statements from a pipe: the lock is
    held until ROLLBACK is written (a backend asleep would keep it past
    its client's end)."""
    p = subprocess.Popen([
        '%s/psql' % os.environ.get('PG_BIN', '/usr/lib/postgresql/15/bin'),
        '-X', '-q', '-d', uri], stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    try:
        p.stdin.write('BEGIN;\nSELECT pg_advisory_xact_lock(%d);\n' %
                      PG_WRITE_LOCK)
        p.stdin.flush()
        wait_for('the write lock', held, 10, p)
        yield
    finally:
        try:
            p.stdin.write('ROLLBACK;\n')
            p.stdin.close()
        except OSError:
            pass
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


class StackError(Exception):
    pass


class WaitTimeout(StackError, AssertionError):
    """What wait_for() raises when its condition is not met in time: a
    stack that did not start, or a test that failed."""


def fast_stack(rate='100000r/s', prepare=None, **kw):
    """A stack (Stack(**kw), started) whose nginx flood guard never meets
    its bursts."""
    global TEST_RATE
    saved, TEST_RATE = TEST_RATE, rate
    try:
        return Stack(**kw).start(prepare)
    finally:
        TEST_RATE = saved


# RI_DAEMON_WRAPPER runs the daemon under a tool, e.g.
#   RI_DAEMON_WRAPPER="valgrind --trace-children=yes --leak-check=full"
# and reports of sanitizers or valgrind in any stack's logs are
# collected here; run.py counts each as a failure.
WRAPPER = os.environ.get('RI_DAEMON_WRAPPER', '').split()
REPORTS = []

# The engine every stack stores in (issue 21): "sqlite" (a file, the
# default) or "postgresql" (a private PostgreSQL 15 per stack,
# tests/e2e/pg.py), from RI_E2E_DB.  stack.sql() and snapshot() read
# either; a test that is about SQLite's file itself says so with
# @sqlite_only: on PostgreSQL run.py prints it as SKIP, neither passed
# nor failed.
ENGINE = os.environ.get('RI_E2E_DB', 'sqlite')
ENGINES = ('sqlite', 'postgresql')
PG_WRITE_LOCK = 7204526166      # src/db.c
# What the stack's psql session echoes after each statement's output.
PSQL_END = '--ri-e2e-psql-end--'
if ENGINE not in ('sqlite', 'postgresql'):
    raise SystemExit('RI_E2E_DB: sqlite or postgresql, not %s' % ENGINE)


class Skipped(Exception):
    """Raised by a test that does not apply to this run (run.py)."""


def sqlite_only(fn):
    """A test of SQLite's own file (its WAL, its permissions, a corrupt
    file, the sqlite3 CLI): skipped on PostgreSQL."""
    def run(*args, **kw):
        if ENGINE != 'sqlite':
            raise Skipped('SQLite only')
        return fn(*args, **kw)
    run.__name__ = fn.__name__
    run.__module__ = fn.__module__
    run.__doc__ = fn.__doc__
    run.__code__ = run.__code__.replace(
        co_firstlineno=fn.__code__.co_firstlineno)
    return run
_REPORT_RE = re.compile(r'ERROR: (AddressSanitizer|LeakSanitizer)|'
                        r'runtime error:|ERROR SUMMARY: [1-9]|'
                        r'definitely lost: [1-9]')


def scan_reports(directory):
    """Sanitizer or valgrind findings in the logs of one stack."""
    found = []
    for log in glob.glob(os.path.join(directory, '*.log')) + \
            glob.glob(os.path.join(directory, 'db', '*.log')):
        try:
            with open(log, errors='replace') as f:
                for line in f:
                    if _REPORT_RE.search(line):
                        found.append('%s: %s' % (log, line.rstrip()))
        except OSError:
            pass
    return found


def free_port():
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_for(what, check, timeout, proc=None, log=None, interval=0.05):
    """Poll check() every interval seconds until it returns something
    true, and return that; check() is called once more when the timeout
    is over, then WaitTimeout is raised.  Fail early when proc has
    exited."""
    deadline = time.monotonic() + timeout
    while True:
        v = check()
        if v:
            return v
        if proc is not None and proc.poll() is not None:
            raise StackError('%s exited with %s\n%s' % (
                what, proc.returncode, tail(log)))
        if time.monotonic() >= deadline:
            raise WaitTimeout('%s not ready after %ss\n%s' % (
                what, timeout, tail(log)))
        time.sleep(interval)


def tail(path, lines=40):
    if not path or not os.path.exists(path):
        return ''
    with open(path, 'rb') as f:
        data = f.read().decode('utf-8', 'replace').splitlines()
    return '\n'.join(data[-lines:])


def can_connect(addr):
    family = socket.AF_UNIX if isinstance(addr, str) else socket.AF_INET
    with socket.socket(family) as s:
        s.settimeout(1)
        try:
            s.connect(addr)
            return True
        except OSError:
            return False


def make_cert(cert, key, san):
    """A self-signed P-256 certificate for CN=localhost."""
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                    'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
                    '-subj', '/CN=localhost', '-addext',
                    'subjectAltName=' + san, '-keyout', key, '-out', cert],
                   check=True, capture_output=True)


_SERVICE_CTL = []


def service_ctl():
    """referral-invitesctl where the daemon's user may run it: as root, a
    copy in a temporary directory of mode 0755, since the build tree may
    sit below a directory only root enters (a checkout in /root)."""
    if os.geteuid() != 0:
        return CTL
    if not _SERVICE_CTL:
        d = tempfile.mkdtemp(prefix='ri-e2e-bin-')
        os.chmod(d, 0o755)
        shutil.copy2(CTL, d)
        atexit.register(shutil.rmtree, d, True)
        _SERVICE_CTL.append(os.path.join(d, os.path.basename(CTL)))
    return _SERVICE_CTL[0]


def ensure_daemon_user():
    try:
        pwd.getpwnam(DAEMON_USER)
    except KeyError:
        subprocess.run(['useradd', '--system', '--no-create-home',
                        '--shell', '/usr/sbin/nologin', DAEMON_USER],
                       check=True)


def chown_tree(path, user, group=None):
    for root, dirs, files in os.walk(path):
        for name in [root] + [os.path.join(root, f) for f in files]:
            shutil.chown(name, user, group)


class Stack:
    """One daemon + nginx + smtpd, for one test module."""

    def __init__(self, conf=None, smtpd_args=None, smtp_tls=False,
                 smtp_auth=None, smtp_password=None):
        """conf: config overrides (None removes a key); smtpd_args: extra
        smtpd.py options; smtp_tls: the relay requires STARTTLS with a
        certificate for "localhost" that the daemon trusts through
        SSL_CERT_FILE; smtp_auth: "USER:PASS" the relay requires, given
        to the daemon as smtp_user and smtp_password_file (with
        smtp_password instead of PASS when given)."""
        self.overrides = dict(conf or {})
        self.smtpd_args = list(SMTPD_ARGS if smtpd_args is None
                               else smtpd_args)
        self.smtp_tls = smtp_tls
        self.smtp_auth = smtp_auth
        self.smtp_password = smtp_password
        self.relay_conf = {}
        self.daemon_env = dict(os.environ)
        self.root = os.geteuid() == 0
        self.procs = {}
        self.dir = None
        self.pgdb = None
        self.psql_proc = None
        self.psql_lock = threading.Lock()   # tests read from threads too

    # -- start and stop ------------------------------------------------

    def start(self, prepare=None):
        """Start everything; on failure stop what started and raise.
        prepare(stack) runs once the files exist, before anything starts."""
        try:
            self._prepare()
            if prepare:
                prepare(self)
            self.start_smtpd()
            self.start_daemon()
            self.start_nginx()
        except BaseException:
            self.stop(keep=True)
            raise
        return self

    def _prepare(self):
        for binary in (DAEMON, CTL):
            if not os.access(binary, os.X_OK):
                raise StackError('%s is missing: build first' % binary)
        self.dir = tempfile.mkdtemp(prefix='ri-e2e-')
        os.chmod(self.dir, 0o755)
        for sub in ('db', 'run', 'mail', 'nginx', 'nginx/tmp'):
            os.mkdir(os.path.join(self.dir, sub), 0o755)
        self.conf = self.path('referral-invites.conf')
        self.db = self.path('db', 'invites.db')
        self.socket = self.path('run', 'fcgi.sock')
        self.maildir = self.path('mail')
        self.smtp_port = free_port()
        self.port = free_port()
        self.base_url = 'https://127.0.0.1:%d' % self.port
        if self.root:
            ensure_daemon_user()
            self.user, self.group = DAEMON_USER, 'www-data'
        else:
            self.user = pwd.getpwuid(os.geteuid()).pw_name
            self.group = grp.getgrgid(os.getegid()).gr_name
        self._prepare_relay()
        if ENGINE == 'postgresql':
            import pg
            self.pgdb = pg.Postgres().start()
            # The daemon's account reaches the socket, not the cluster.
            os.chmod(self.pgdb.dir, 0o711)
        self.write_conf()
        self.ctl('init')
        if self.root:
            chown_tree(self.path('db'), self.user)
            chown_tree(self.path('run'), self.user)
        self._write_nginx_conf()

    def _prepare_relay(self):
        if self.smtp_tls:
            cert, key = self.path('smtpd-cert.pem'), self.path('smtpd-key.pem')
            make_cert(cert, key, 'DNS:localhost')
            self.smtpd_args += ['--starttls-cert', cert, '--starttls-key', key,
                                '--require-starttls']
            self.daemon_env['SSL_CERT_FILE'] = cert
            # libesmtp checks DNS names only, never IP addresses.
            self.relay_conf.update(smtp_host='localhost',
                                   smtp_starttls='required')
        if self.smtp_auth:
            user, password = self.smtp_auth.split(':', 1)
            pw = self.path('smtp-password')
            with open(pw, 'w') as f:
                f.write((self.smtp_password or password) + '\n')
            os.chmod(pw, 0o600)
            if self.root:
                shutil.chown(pw, self.user)
            self.smtpd_args += ['--auth', self.smtp_auth]
            self.relay_conf.update(smtp_user=user, smtp_password_file=pw)

    def write_conf(self, **more):
        """(Re)write the daemon config: defaults, overrides, then more."""
        self.overrides.update(more)
        conf = {
            'database': self.db,
            'listen': self.socket,
            'socket_group': self.group,
            'user': self.user,
            'workers': '4',
            'templates_dir': os.path.join(SRCDIR, 'templates'),
            'mail_from': MAIL_FROM,
            'public_url': self.base_url,
            'smtp_host': '127.0.0.1',
            'smtp_port': str(self.smtp_port),
            'smtp_starttls': 'off',
            'delivery_wait': '5',
            # A deferred invite must not be retried while a test runs.
            'retry_initial': '3600',
            'log_level': 'debug',
        }
        if self.pgdb is not None:
            # A dead mailer's claims within a test's waits (60 s shipped).
            conf.update(database=self.pgdb.uri(),
                        state_directory=self.path('db'), claim_lease='5')
        conf.update(self.relay_conf)
        conf.update(self.overrides)
        with open(self.conf, 'w') as f:
            f.write('# written by tests/e2e/harness.py\n')
            for k, v in conf.items():
                if v is not None:
                    f.write('%s = %s\n' % (k, v))

    def _write_nginx_conf(self):
        self.write_nginx_conf()

    def write_nginx_conf(self, sockets=None, rate=None, servers=None,
                         http_extra=(), log_extra='', connections=256):
        """nginx.conf: the shipped http.conf, its upstream on sockets (the
        daemon's by default), its flood guard at rate (TEST_RATE by
        default, read when called: fast_stack sets it), http_extra's
        lines, and a TLS server on 127.0.0.1 for each (port, location
        file) of servers (the stack's port and the shipped location.conf
        by default); log_extra ends each access log line."""
        d = self.path('nginx')
        make_cert(os.path.join(d, 'cert.pem'), os.path.join(d, 'key.pem'),
                  'IP:127.0.0.1,DNS:localhost')
        with open(os.path.join(SRCDIR, 'nginx', 'http.conf')) as f:
            http_conf = f.read()
        line = 'server %s;' % REAL_SOCKET
        if http_conf.count(line) != 1:
            raise StackError('nginx/http.conf: no "%s"' % line)
        http_conf = http_conf.replace(line, '\n\t'.join(
            'server unix:%s;' % sock for sock in sockets or [self.socket]))
        http_conf, n = re.subn(r'\brate=\d+r/[sm]\b',
                               'rate=' + (rate or TEST_RATE), http_conf)
        if n != 1:
            raise StackError('nginx/http.conf: no limit_req_zone rate')
        tmp = os.path.join(d, 'tmp')
        if self.root:
            shutil.chown(tmp, 'www-data')
        lines = []
        if self.root:
            lines.append('user www-data;')
        lines += [
            'daemon off;',
            'worker_processes 1;',
            'pid %s/nginx.pid;' % d,
            'error_log %s info;' % self.path('nginx-error.log'),
            'events { worker_connections %d; }' % connections,
            'http {',
            'include /etc/nginx/mime.types;',
            'default_type application/octet-stream;',
            "log_format ri '$remote_addr [$time_local] \"$request\" $status "
            "$body_bytes_sent $request_id $request_time%s';" % log_extra,
            'access_log %s ri;' % self.path('nginx-access.log'),
        ]
        for kind in ('client_body', 'fastcgi', 'proxy', 'scgi', 'uwsgi'):
            lines.append('%s_temp_path %s/%s;' % (kind, tmp, kind))
        lines.append(http_conf)
        lines += list(http_extra)
        for port, location in servers or [(self.port, os.path.join(
                SRCDIR, 'nginx', 'location.conf'))]:
            lines += [
                'server {',
                'listen 127.0.0.1:%d ssl;' % port,
                'server_name localhost;',
                'ssl_certificate %s/cert.pem;' % d,
                'ssl_certificate_key %s/key.pem;' % d,
                'include %s;' % location,
                '}',
            ]
        lines.append('}')
        self.nginx_conf = os.path.join(d, 'nginx.conf')
        with open(self.nginx_conf, 'w') as f:
            f.write('\n'.join(lines) + '\n')

    def _spawn(self, name, argv, log, env=None):
        f = open(self.path(log), 'ab')
        try:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f,
                                 stderr=subprocess.STDOUT, env=env,
                                 start_new_session=True)
        finally:
            f.close()
        self.procs[name] = p
        return p

    def start_smtpd(self):
        argv = [PYTHON, os.path.join(SRCDIR, 'tests', 'smtpd.py'),
                '--port', str(self.smtp_port), '--maildir', self.maildir,
                '--pidfile', self.path('smtpd.pid')] + list(self.smtpd_args)
        p = self._spawn('smtpd', argv, 'smtpd.log')
        wait_for('smtpd', lambda: can_connect(('127.0.0.1', self.smtp_port)),
                 10, p, self.path('smtpd.log'))

    def start_daemon(self):
        """Check the config with -t, then run the daemon in the foreground."""
        r = subprocess.run([DAEMON, '-t', '-c', self.conf],
                           capture_output=True, text=True,
                           env=self.daemon_env)
        if r.returncode != 0:
            raise StackError('referral-invitesd -t failed (%d): %s%s' % (
                r.returncode, r.stdout, r.stderr))
        argv = [DAEMON, '-d', '-c', self.conf]
        if WRAPPER:
            # The database directory: the one the confined daemon may
            # still write to when valgrind opens a forked child's log.
            argv = WRAPPER + ['--log-file=%s' % self.path(
                'db', 'valgrind.%p.log')] + argv \
                if 'valgrind' in WRAPPER[0] else WRAPPER + argv
        p = self._spawn('daemon', argv, 'daemon.log', self.daemon_env)
        wait_for('referral-invitesd', lambda: can_connect(self.socket), 15,
                 p, self.path('daemon.log'))

    def stop_daemon(self):
        self._terminate('daemon')

    def start_nginx(self):
        argv = ['nginx', '-p', self.path('nginx') + '/',
                '-e', self.path('nginx-error.log'), '-c', self.nginx_conf]
        r = subprocess.run(argv + ['-t'], capture_output=True, text=True)
        if r.returncode != 0:
            raise StackError('nginx -t failed:\n' + r.stderr)
        p = self._spawn('nginx', argv, 'nginx-stderr.log')
        wait_for('nginx', lambda: can_connect(('127.0.0.1', self.port)), 10,
                 p, self.path('nginx-error.log'))

    def _terminate(self, name, grace=10):
        p = self.procs.pop(name, None)
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            # Our own session: the daemon's workers die with it.
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()

    def stop(self, keep=False):
        """Stop everything; keep the temp dir (and say so) when asked."""
        for name in ('nginx', 'daemon', 'smtpd'):
            self._terminate(name)
        with self.psql_lock:
            self._psql_close()
        if self.pgdb is not None:
            self.pgdb.stop(keep)
            self.pgdb = None
        if self.dir is None:
            return
        found = scan_reports(self.dir)
        if found:
            REPORTS.extend(found)
            keep = True
        if keep or os.environ.get('RI_E2E_KEEP') == '1':
            print('kept %s' % self.dir, flush=True)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def logs(self, lines=30):
        """Tails of the logs, for a failure report."""
        out = []
        for name in ('daemon.log', 'nginx-error.log', 'smtpd.log'):
            t = tail(self.path(name), lines) if self.dir else ''
            if t:
                out.append('--- %s (last %d lines)\n%s' % (name, lines, t))
        return '\n'.join(out)

    # -- helpers for tests ---------------------------------------------

    def ctl_run(self, *args, input=None):
        """referral-invitesctl -c CONF ARGS; the CompletedProcess (text)."""
        return subprocess.run([CTL, '-c', self.conf] + list(args),
                              capture_output=True, text=True, input=input)

    def ctl(self, *args):
        """referral-invitesctl -c CONF ARGS; its stdout, stripped."""
        r = self.ctl_run(*args)
        if r.returncode != 0:
            raise StackError('referral-invitesctl %s: exit %d: %s' % (
                ' '.join(args), r.returncode, r.stderr.strip()))
        return r.stdout.strip()

    def ssl_context(self):
        return ssl._create_unverified_context()

    def connection(self, timeout=60):
        return http.client.HTTPSConnection('127.0.0.1', self.port,
                                           timeout=timeout,
                                           context=self.ssl_context())

    def request(self, method, path, headers=None, body=None, timeout=60,
                conn=None):
        """One HTTPS request; (status, {lower-case name: value}, bytes).

        body may be bytes, str (sent as UTF-8) or any other JSON value
        (serialised).  Repeated headers are joined with ", ".
        """
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode('utf-8')
        own = conn is None
        if own:
            conn = self.connection(timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
            hdrs = {}
            for k, v in r.getheaders():
                k = k.lower()
                hdrs[k] = hdrs[k] + ', ' + v if k in hdrs else v
            return r.status, hdrs, data
        finally:
            if own:
                conn.close()

    def sql(self, query):
        """Rows (dicts) of one query run with the sqlite3 CLI, or with
        psql on PostgreSQL (a SELECT's rows as json_agg makes them: the
        same numbers and strings as sqlite3 -json)."""
        if self.pgdb is not None:
            return self._psql(query)
        r = subprocess.run(['sqlite3', '-json', '-cmd', '.timeout 10000',
                            self.db, query], capture_output=True, text=True)
        if r.returncode != 0:
            raise StackError('sqlite3: %s: %s' % (query, r.stderr.strip()))
        return json.loads(r.stdout) if r.stdout.strip() else []

    @contextlib.contextmanager
    def write_locked(self):
        """Hold the database's write lock meanwhile, as another writer
        would: SQLite's BEGIN IMMEDIATE, or on PostgreSQL the advisory
        lock every write transaction takes (src/db.c, PG_WRITE_LOCK) in
        a psql of its own."""
        if self.pgdb is None:
            db = sqlite3.connect(self.db, isolation_level=None, timeout=10)
            try:
                db.execute('BEGIN IMMEDIATE')
                yield
                db.execute('ROLLBACK')
            finally:
                db.close()
            return
        with pg_write_locked(self.pgdb.uri(), lambda: self.sql(
                "SELECT 1 AS n FROM pg_locks WHERE locktype = 'advisory'"
                " AND granted AND objid = %d" % (PG_WRITE_LOCK & 0xffffffff))):
            yield

    def _psql(self, query):
        q = query.strip().rstrip(';')
        if re.match(r'(?is)\s*(select|with)\b', q):
            q = 'SELECT coalesce(json_agg(r), \'[]\') FROM (%s) AS r' % q
        if ';' in q:
            out = self._psql_once(query, q)
        else:
            with self.psql_lock:
                out = self._psql_session(query, q)
        out = out.strip()
        return json.loads(out) if out.startswith('[') else []

    def _psql_argv(self):
        return ['%s/psql' % os.environ.get(
            'PG_BIN', '/usr/lib/postgresql/15/bin'), '-X', '-q', '-A', '-t',
            '-d', self.pgdb.uri()]

    def _psql_once(self, query, q):
        """q in a psql of its own (several statements: one transaction,
        as -c sends them)."""
        r = subprocess.run(self._psql_argv() + ['-v', 'ON_ERROR_STOP=1',
                                                '-c', q],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise StackError('psql: %s: %s' % (query, r.stderr.strip()))
        return r.stdout

    def _psql_session(self, query, q):
        """q (one statement) in the stack's psql session: one psql and
        one server connection for all, where a psql each cost a backend
        and a password exchange, most of a PostgreSQL module's CPU.  When
        the server dropped the session (a restart: psql exits), a new
        session tries once more."""
        for attempt in (1, 2):
            if self.psql_proc is None:
                self.psql_proc = subprocess.Popen(
                    self._psql_argv(), stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                    text=True, bufsize=1)
            lines, ended = [], False
            try:
                self.psql_proc.stdin.write('%s;\n\\echo %s\n' % (
                    q, PSQL_END))
                self.psql_proc.stdin.flush()
                for line in self.psql_proc.stdout:
                    if line.rstrip('\n') == PSQL_END:
                        ended = True
                        break
                    lines.append(line)
            except BrokenPipeError:
                pass
            out = ''.join(lines)
            if ended:
                if re.search(r'^(psql:\S*: )?(ERROR|FATAL):', out, re.M):
                    raise StackError('psql: %s: %s' % (query, out.strip()))
                # NOTICE and WARNING lines come before the rows.
                return ''.join(l for l in lines if not re.match(
                    r'(psql:\S*: )?(NOTICE|WARNING|DETAIL|HINT):', l))
            self._psql_close()
            if attempt == 2:
                raise StackError('psql: %s: %s' % (
                    query, out.strip() or 'psql exited'))
        raise AssertionError('not reached')

    def _psql_close(self):
        if self.psql_proc is not None:
            try:
                self.psql_proc.stdin.close()
            except OSError:
                pass
            self.psql_proc.kill()
            self.psql_proc.wait()
            self.psql_proc.stdout.close()
            self.psql_proc = None

    def _mails(self):
        names = glob.glob(os.path.join(self.maildir, '*.json'))
        return sorted(int(os.path.basename(n)[:-5]) for n in names)

    def _load_mail(self, n):
        base = os.path.join(self.maildir, str(n))
        with open(base + '.eml', 'rb') as f:
            raw = f.read()
        with open(base + '.json') as f:
            env = json.load(f)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        msg.raw = raw
        msg.envelope = env
        return msg

    def wait_mail(self, n, timeout=10):
        """All received messages once there are at least n of them."""
        wait_for('%d mail(s)' % n, lambda: len(self._mails()) >= n, timeout)
        return [self._load_mail(i) for i in self._mails()]

    def mail_for(self, rcpt, timeout=10, count=1):
        """Messages whose envelope recipients include rcpt (waits for
        count of them); [] after timeout when count is 0."""
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in map(self._load_mail, self._mails())
                     if rcpt.lower() in
                     [r.lower() for r in m.envelope['rcpt_tos']]]
            if len(found) >= count and count > 0:
                return found
            if time.monotonic() >= deadline:
                if count > 0:
                    raise StackError('no mail for %s after %ss' %
                                     (rcpt, timeout))
                return found
            time.sleep(0.05)


# == what the test modules share ==========================================

ROUTE = '/api/v1/users/%s/referral-invites'
INVITE_URL = 'https://app.example/invite'
JSON_CT = 'application/json; charset=utf-8'
WWW_AUTH = 'Bearer realm="referral-invites"'
WWW_AUTH_TOKEN = 'Bearer realm="referral-invites", error="invalid_token"'
ISO_UTC = re.compile(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z')
# The tables a request or the tool writes to: what snapshot() compares.
TABLES = ('apps', 'api_keys', 'users', 'invites', 'suppressions',
          'idempotency_keys')
RELOADED = 'configuration and templates reloaded'


def unique(prefix='friend'):
    """An address no test used before."""
    return '%s-%s@example.org' % (prefix, uuid.uuid4().hex[:12])


# -- answers and their checks ----------------------------------------------

def ok_body(message='Invite sent'):
    return ('{"success":true,"message":%s,"error":null,"data":null}' %
            json.dumps(message)).encode()


def err_body(error):
    return ('{"success":false,"error":%s,"message":null,"data":null}' %
            json.dumps(error, ensure_ascii=False)).encode()


def check(resp, status, body, what=''):
    """Exact status and body, and the headers every answer carries."""
    st, h, b = resp
    assert (st, b) == (status, body), \
        '%sexpected %d %r\n     got %d %r' % (
            what + '\n' if what else '', status, body, st, b)
    assert h.get('content-type') == JSON_CT, (what, h)
    assert h.get('cache-control') == 'no-store', (what, h)
    assert re.fullmatch(r'[0-9a-f]{32}', h.get('x-request-id', '')), \
        (what, h)
    return h


def check_error(resp, status, error, app=None, before=None, what=''):
    """An error answer that left the invites table as it was (when app
    and its snapshot() before are given)."""
    h = check(resp, status, err_body(error), what)
    if app is not None:
        assert app.snapshot() == before, 'invites table changed'
    return h


def check_401(resp, error='Invalid credentials', token=False, what=''):
    h = check(resp, 401, err_body(error), what)
    assert h.get('www-authenticate') == (WWW_AUTH_TOKEN if token
                                         else WWW_AUTH), (what, h)
    return h


def template(lang, part):
    """A shipped template, e.g. template('de', 'subject')."""
    path = os.path.join(SRCDIR, 'templates', '%s.%s' % (lang, part))
    with open(path, encoding='utf-8') as f:
        return f.read()


# -- the database ------------------------------------------------------------

def count_invites(stack):
    return stack.sql('SELECT count(*) AS n FROM invites')[0]['n']


def row_id(stack, table, public_id):
    """The id of the row of table that carries public_id in some column."""
    for row in stack.sql('SELECT * FROM %s' % table):
        if any(isinstance(v, str) and v.lower() == public_id.lower()
               for v in row.values()):
            return row['id']
    raise AssertionError('%s has no row for %s' % (table, public_id))


def snapshot(stack):
    """Every row of every table: what "nothing is written" compares."""
    if stack.pgdb is not None:
        # One psql for all: many tests take two snapshots per request.
        return stack.sql('SELECT %s' % ', '.join(
            "(SELECT coalesce(json_agg(t ORDER BY t::text), '[]') FROM %s"
            " AS t) AS %s" % (t, t) for t in TABLES))[0]
    db = sqlite3.connect('file:%s?mode=ro' % stack.db, uri=True, timeout=10)
    try:
        return {t: db.execute('SELECT * FROM %s ORDER BY rowid' % t)
                .fetchall() for t in TABLES}
    finally:
        db.close()


# -- tokens ------------------------------------------------------------------

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode()


def unb64url(s):
    return base64.urlsafe_b64decode(s + '=' * (-len(s) % 4))


def openssl(*args):
    subprocess.run(['openssl'] + list(args), check=True, capture_output=True)


def openssl_sign(keyfile, data):
    """openssl's SHA-256 signature of data: RS256's with an RSA key, the
    DER form of ES256's with an EC key."""
    return subprocess.run(['openssl', 'dgst', '-sha256', '-sign', keyfile],
                          input=data, capture_output=True,
                          check=True).stdout


# -- an app, a key and an inviter --------------------------------------------

class App:
    """A fresh app with a write key and one active user (the inviter).

    name, invite_url, language and sender are the app's, inviter_name the
    user's; unlimited turns the app's hourly, daily and per-minute limits
    off.  Everything is made by referral-invitesctl through ctl(), which
    a module may override to check more of what the tool prints."""

    label = 'Test App'      # of the names made up: "Test App 7"
    made = [0]

    def __init__(self, stack, name=None, invite_url=INVITE_URL,
                 language=None, sender=None, inviter_name='Alice Inviter',
                 unlimited=False):
        App.made[0] += 1
        self.stack = stack
        self.name = name or '%s %d' % (self.label, App.made[0])
        args = ['app', 'add', '--name', self.name, '--invite-url', invite_url]
        if language:
            args += ['--language', language]
        if sender:
            args += ['--sender', sender]
        self.sender = sender
        self.client = self.ctl(*args)
        assert re.fullmatch(r'[0-9a-f-]{36}', self.client), self.client
        if unlimited:
            self.ctl('app', 'set', self.client, '--limit-per-hour', '0',
                     '--limit-per-day', '0', '--limit-per-minute', '0')
        self.key = self.ctl('key', 'add', self.client, '--type', 'write')
        assert len(self.key) >= 43, self.key
        self.user_email = unique('inviter')
        self.user_name = inviter_name
        self.uid = self.add_user(self.user_email, inviter_name)

    def ctl(self, *args):
        """referral-invitesctl ARGS: its output, stripped."""
        return self.stack.ctl(*args)

    def add_user(self, addr, name='Bob'):
        uid = self.ctl('user', 'add', self.client, '--email', addr,
                       '--name', name)
        assert re.fullmatch(r'[0-9a-f-]{36}', uid), uid
        return uid

    def headers(self, key=None, key_type='write', client=None):
        return {'Content-Type': 'application/json',
                'X-API-KEY': key or self.key,
                'X-API-KEY-TYPE': key_type,
                'X-CLIENT-ID': client or self.client}

    def token(self, uid=None, *extra):
        return self.ctl('token', self.client, uid or self.uid, *extra)

    def bearer(self, uid=None, scheme='Bearer', header='Authorization',
               token=None):
        """Headers with token, or with a fresh token for uid."""
        return {'Content-Type': 'application/json',
                header: '%s %s' % (scheme, self.token(uid) if token is None
                                   else token)}

    def invite(self, addr=None, language='en', headers=None, uid=None,
               body=None, conn=None):
        """POST an invite (of a fresh address unless addr or body is
        given) with this app's key or headers."""
        if body is None:
            body = {'email': unique() if addr is None else addr,
                    'language': language}
        h = self.headers() if headers is None else headers
        return self.stack.request('POST', ROUTE % (uid or self.uid), h, body,
                                  conn=conn)

    def pk(self):
        return row_id(self.stack, 'apps', self.client)

    def rows(self):
        """This app's invites, in full."""
        ids = "'%s','%s'" % (self.client, self.pk())
        return self.stack.sql('SELECT * FROM invites WHERE app_id IN (%s) '
                              'ORDER BY id' % ids)

    def snapshot(self):
        return (self.rows(), count_invites(self.stack))


# -- pacing, threads, stacks of a test's own ---------------------------------

_pace = threading.Lock()
_last = [0.0]


def pace():
    """Stay under the suite's nginx rate (TEST_RATE, 100 r/s): at most
    ~66 requests a second, whatever the thread.  A fixed wait: nginx's
    bucket refills with time, and nothing tells how full it is."""
    with _pace:
        wait = _last[0] + 0.015 - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        _last[0] = time.monotonic()


def in_parallel(fns, timeout=120):
    """Run each fn in a thread of its own; their results (or the
    exception each raised), in order."""
    out = [None] * len(fns)

    def run(i):
        try:
            out[i] = fns[i]()
        except Exception as e:  # noqa: BLE001 - the caller looks
            out[i] = e
    ts = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout)
    return out


def with_stack(fn, cls=None, lines=60, **kw):
    """Run fn(stack) on a stack of its own, cls(**kw) (a Stack by
    default); its logs go with a failure."""
    s = (cls or Stack)(**kw).start()
    failed = True
    try:
        fn(s)
        failed = False
    except Exception as e:
        raise AssertionError('%s\n%s' % (e, s.logs(lines))) from e
    finally:
        s.stop(keep=failed)


# -- the daemon's processes, log and channels --------------------------------

def children(stack, name=None):
    """pids of the daemon's children (of one name: ri-worker, ...)."""
    argv = ['pgrep', '-P', str(stack.procs['daemon'].pid)]
    if name:
        argv += ['-x', name]
    r = subprocess.run(argv, capture_output=True, text=True)
    return [int(p) for p in r.stdout.split()]


@contextlib.contextmanager
def stopped(pid):
    """The process pid stopped (SIGSTOP) for the with block."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGCONT)


def daemon_log(stack):
    with open(stack.path('daemon.log'), errors='replace') as f:
        return f.read()


def log_count(stack, text):
    return daemon_log(stack).count(text)


def wait_log(stack, text, n=1, timeout=20):
    """Until the daemon's log holds text n times."""
    wait_for('%r x%d in the daemon log' % (text, n),
             lambda: log_count(stack, text) >= n, timeout)


def reload_and_wait(stack, line=RELOADED, timeout=20, pool=False):
    """SIGHUP the daemon and wait for one more log line holding line.
    pool: wait also until every child is one the reload started (the
    line comes when the old ones are told to stop; a request sent
    before the new writer and mailer run waits for them)."""
    old = set(children(stack))
    n = log_count(stack, line)
    os.kill(stack.procs['daemon'].pid, signal.SIGHUP)
    wait_log(stack, line, n + 1, timeout)
    if pool:
        wait_for('the pool the reload started', lambda: not (
            set(children(stack)) & old) and all(
            children(stack, k) for k in ('ri-writer', 'ri-mailer')),
            timeout)


def writer_backlog(stack):
    """Bytes that wait on the writer's channels (SOCK_SEQPACKET, one per
    worker): every invite a worker sent and a stopped writer has not
    read adds one message, all of one size."""
    pids = children(stack, 'ri-writer')
    out = subprocess.run(['ss', '-xpH'], capture_output=True, text=True,
                         check=True).stdout
    total = 0
    for line in out.splitlines():
        f = line.split()
        # Netid State Recv-Q Send-Q ... users:(("ri-writer",pid=N,fd=M),...)
        if f and f[0] == 'u_seq' and any(
                '("ri-writer",pid=%d,' % p in line for p in pids):
            total += int(f[2])
    return total


def at_stopped_writer(stack, fns, timeout=10):
    """With the writer stopped: start each fn, which sends one invite, in
    a thread of its own, the next once this one's invite waits on the
    writer's channel (so they reach the writer in this order).  The
    threads."""
    ts = []
    for fn in fns:
        before = writer_backlog(stack)
        t = threading.Thread(target=fn)
        t.start()
        ts.append(t)
        wait_for('invite %d at the stopped writer' % len(ts),
                 lambda: writer_backlog(stack) > before, timeout)
    return ts
