# SPDX-License-Identifier: ISC
# Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
"""A private PostgreSQL 15 for a test module (issue 21).

Postgres().start() makes, in a fresh temporary directory owned by an
unprivileged account (initdb refuses root: "postgres" from Debian's
package, else the daemon's test user, else whoever runs the tests):

    data/          the cluster (initdb), fsync off: a test's, not a site's
    .s.PGSQL.5432  the only way in: listen_addresses = '', the unix
                   socket in this directory (mode 0700), nothing on TCP
    postgres.log   the server's log

with a role "ri" that logs in by password (scram-sha-256) owning a
database "ri"; the cluster's own superuser (the account) comes in by
peer trust over the socket.  stop() stops the server (pg_ctl stop -m
fast) and removes the directory; an atexit hook does it for a module
that forgot.  uri() names the database, with or without the password,
for referral-invitesctl; psql() runs the psql CLI on it.

Only the standard library; the binaries are Debian's postgresql-15 in
/usr/lib/postgresql/15/bin (PG_BIN overrides).
"""

import atexit
import csv
import io
import os
import pwd
import shutil
import subprocess
import tempfile
import urllib.parse

import harness

PG_BIN = os.environ.get('PG_BIN', '/usr/lib/postgresql/15/bin')
ROLE, DATABASE = 'ri', 'ri'
# Characters that need percent-encoding in a URI, so that the password's
# redaction is tested on the form an admin would write.
PASSWORD = 'pw-S3cret/x?y'
NULL = '<NULL>'


def bin_path(name):
    return os.path.join(PG_BIN, name)


def account():
    """The unprivileged account the server runs as."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    for name in ('postgres', harness.DAEMON_USER):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
    harness.ensure_daemon_user()
    return pwd.getpwnam(harness.DAEMON_USER)


class Postgres:
    """One cluster, one server, for one module."""

    def __init__(self, tcp_port=None):
        """tcp_port: also listen on 127.0.0.1 there (the role "ri" by
        password), as a database on another host is reached."""
        self.tcp_port = tcp_port
        self.dir = None
        self.user = account()
        self.running = False

    def _run(self, argv, check=True, **kw):
        """argv as the server's account (from root: its uid, gid and no
        other groups)."""
        if os.geteuid() == 0:
            kw.update(user=self.user.pw_uid, group=self.user.pw_gid,
                      extra_groups=[])
        r = subprocess.run(argv, capture_output=True, text=True,
                           cwd=self.dir, **kw)
        if check and r.returncode != 0:
            raise harness.StackError('%s: exit %d: %s%s' % (
                ' '.join(argv), r.returncode, r.stdout, r.stderr))
        return r

    def start(self):
        try:
            self._start()
        except BaseException:
            self.stop(keep=True)
            raise
        atexit.register(self.stop)
        return self

    def _start(self):
        self.dir = tempfile.mkdtemp(prefix='ri-pg-')
        os.chmod(self.dir, 0o700)
        if os.geteuid() == 0:
            os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)
        self.data = os.path.join(self.dir, 'data')
        self.log = os.path.join(self.dir, 'postgres.log')
        self._run([bin_path('initdb'), '-D', self.data, '-U',
                   self.user.pw_name, '--auth-local=peer',
                   '--auth-host=reject', '-E', 'UTF8', '--locale=C.UTF-8'])
        with open(os.path.join(self.data, 'pg_hba.conf'), 'w') as f:
            f.write('local all %s scram-sha-256\n' % ROLE)
            f.write('local all all peer\n')
            if self.tcp_port:
                f.write('host all %s 127.0.0.1/32 scram-sha-256\n' % ROLE)
        # With a port of its own, the socket is .s.PGSQL.<port> too.
        listen = "listen_addresses='127.0.0.1' -c port=%d" % \
            self.tcp_port if self.tcp_port else "listen_addresses=''"
        self._run([bin_path('pg_ctl'), '-D', self.data, '-l', self.log,
                   '-w', '-t', '30', '-o',
                   "-c %s -c unix_socket_directories='%s'"
                   " -c fsync=off -c synchronous_commit=off" % (
                       listen, self.dir),
                   'start'])
        self.running = True
        self.admin_psql("CREATE ROLE %s LOGIN PASSWORD '%s'" %
                        (ROLE, PASSWORD))
        self.admin_psql('CREATE DATABASE %s OWNER %s' % (DATABASE, ROLE))

    def stop(self, keep=False):
        if self.running:
            self._run([bin_path('pg_ctl'), '-D', self.data, '-m', 'fast',
                       '-w', '-t', '30', 'stop'], check=False)
            self.running = False
        if self.dir and not keep and os.environ.get('RI_E2E_KEEP') != '1':
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    # -- for tests ---------------------------------------------------------

    def uri(self, password=PASSWORD, database=DATABASE, role=ROLE):
        """postgresql://ROLE:PASSWORD@/DATABASE?host=DIR (no password when
        password is None)."""
        auth = role
        if password is not None:
            auth += ':' + urllib.parse.quote(password, safe='')
        return 'postgresql://%s@/%s?host=%s%s' % (
            auth, database, urllib.parse.quote(self.dir, safe='/'),
            '&port=%d' % self.tcp_port if self.tcp_port else '')

    def tcp_uri(self, database=DATABASE):
        """The database over TCP on 127.0.0.1 (tcp_port), password in."""
        return 'postgresql://%s:%s@127.0.0.1:%d/%s' % (
            ROLE, urllib.parse.quote(PASSWORD, safe=''), self.tcp_port,
            database)

    def admin_psql(self, sql, database='postgres'):
        """sql as the cluster's superuser; psql's output."""
        return self._run([bin_path('psql'), '-X', '-q', '-v',
                          'ON_ERROR_STOP=1', '-h', self.dir, '-p',
                          str(self.tcp_port or 5432), '-d', database,
                          '-c', sql]).stdout

    def psql(self, sql, uri=None):
        """Rows of one query read with the psql CLI on uri (the "ri"
        database by default), as lists of strings, NULL as NULL (CSV
        output: what psql prints, quoting aside)."""
        r = subprocess.run([bin_path('psql'), '-X', '-q', '-v',
                            'ON_ERROR_STOP=1', '--csv', '-P',
                            'null=' + NULL, '-d', uri or self.uri(),
                            '-c', sql], capture_output=True, text=True)
        if r.returncode != 0:
            raise harness.StackError('psql: %s: %s' % (sql, r.stderr))
        rows = list(csv.reader(io.StringIO(r.stdout))) or [[]]
        return rows[0], rows[1:]
