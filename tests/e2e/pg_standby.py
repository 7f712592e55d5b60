# SPDX-License-Identifier: ISC
# Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
"""A PostgreSQL 15 primary and its streaming standby, for a failover test.

Pair().start() makes two private servers the way pg.Postgres makes one:
a temporary directory each, owned by the server's account, with the unix
socket in it and nothing on TCP, and fsync off.  Both use Debian's
binaries.

    primary   pg.Postgres's cluster, role "ri" and database "ri", with
              wal_level = replica, max_wal_senders, restart_after_crash =
              off (a crash takes it down, see crash()) and a pg_hba.conf
              line that lets its account replicate over the socket (peer)
    standby   pg_basebackup -R -X stream of the primary into a directory
              of its own: standby.signal, and primary_conninfo naming the
              primary's socket.  cluster_name = ri_standby is the
              application_name its WAL receiver gives the primary

Then start() makes the replication synchronous, as the docs tell admins
to: synchronous_commit = on, and the primary's synchronous_standby_names
names the standby, so that a commit is acknowledged only once the
standby has its WAL on disk.  That setting is made with ALTER SYSTEM
after the base backup, so the standby's copy of the configuration never
has it: once promoted, it does not wait for a standby of its own.
start() returns once pg_stat_replication says the standby streams and
is "sync".

uri() names both sockets in one libpq URI with target_session_attrs =
read-write, so libpq connects to whichever host is the primary.
Primary.pause_sender() stops the WAL sender (SIGSTOP): the standby falls
behind, and every synchronous commit waits.  stop_primary() crashes the
primary: the stopped WAL sender is killed (SIGKILL), so what it held
never reaches the standby, and the postmaster takes every backend down
with it; pg_ctl stop -m immediate makes sure it is down.  promote()
promotes the standby (pg_ctl promote, then until pg_is_in_recovery()
is false).  stop() stops what still runs and removes both directories.
"""

import atexit
import os
import signal
import tempfile
import urllib.parse

import harness
import pg

STANDBY_NAME = 'ri_standby'


def server_options(sockdir, *more):
    """pg_ctl -o: the socket in sockdir only, no TCP, fsync off (the test
    crashes servers, never the machine), commits synchronous."""
    opts = ["-c listen_addresses=''", "-c unix_socket_directories='%s'" %
            sockdir, '-c fsync=off', '-c synchronous_commit=on']
    return ' '.join(opts + list(more))


class Primary(pg.Postgres):
    """pg.Postgres that a standby may stream from."""

    prefix = 'ri-pg-primary-'

    def __init__(self):
        super().__init__()
        self.paused = None      # the WAL sender's pid, while SIGSTOPped

    def _own_dir(self):
        self.dir = tempfile.mkdtemp(prefix=self.prefix)
        os.chmod(self.dir, 0o700)
        if os.geteuid() == 0:
            os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)
        self.data = os.path.join(self.dir, 'data')
        self.log = os.path.join(self.dir, 'postgres.log')

    def _start(self):
        self._own_dir()
        self._run([pg.bin_path('initdb'), '-D', self.data, '-U',
                   self.user.pw_name, '--auth-local=peer',
                   '--auth-host=reject', '-E', 'UTF8', '--locale=C.UTF-8'])
        with open(os.path.join(self.data, 'pg_hba.conf'), 'w') as f:
            f.write('local all %s scram-sha-256\n' % pg.ROLE)
            f.write('local all all peer\n')
            # "all" does not cover replication: it needs a line of its own.
            f.write('local replication %s peer\n' % self.user.pw_name)
        self._run([pg.bin_path('pg_ctl'), '-D', self.data, '-l', self.log,
                   '-w', '-t', '30', '-o', server_options(
                       self.dir, '-c wal_level=replica',
                       '-c max_wal_senders=4', '-c wal_keep_size=64MB',
                       '-c restart_after_crash=off'), 'start'])
        self.running = True
        self.admin_psql("CREATE ROLE %s LOGIN PASSWORD '%s'" %
                        (pg.ROLE, pg.PASSWORD))
        self.admin_psql('CREATE DATABASE %s OWNER %s' % (pg.DATABASE,
                                                         pg.ROLE))

    def query(self, sql):
        """One value, as the cluster's superuser (psql -At)."""
        return self._run([pg.bin_path('psql'), '-X', '-q', '-A', '-t', '-v',
                          'ON_ERROR_STOP=1', '-h', self.dir, '-d',
                          'postgres', '-c', sql]).stdout.strip()

    def pause_sender(self):
        """SIGSTOP the WAL sender: nothing more reaches the standby, and
        every synchronous commit waits for it."""
        self.paused = int(self.query('SELECT pid FROM pg_stat_replication'))
        os.kill(self.paused, signal.SIGSTOP)

    def crash(self):
        """Down at once.  With the WAL sender paused, it is killed
        (SIGKILL) and never sends what it holds; the postmaster then
        takes every backend down (restart_after_crash = off), as in a
        crash.  pg_ctl stop -m immediate makes sure (every backend dies
        at once, with no shutdown checkpoint), then the postmaster is
        waited for."""
        if self.paused:
            os.kill(self.paused, signal.SIGKILL)
            self.paused = None
        self._run([pg.bin_path('pg_ctl'), '-D', self.data, '-m',
                   'immediate', '-w', '-t', '30', 'stop'], check=False)
        harness.wait_for('the primary down', lambda: not os.path.exists(
            os.path.join(self.data, 'postmaster.pid')), 30, log=self.log)
        self.running = False

    def stop(self, keep=False):
        if self.paused:
            os.kill(self.paused, signal.SIGCONT)
            self.paused = None
        super().stop(keep)


class Standby(Primary):
    """A streaming hot standby of primary, made by pg_basebackup -R."""

    prefix = 'ri-pg-standby-'

    def __init__(self, primary):
        super().__init__()
        self.primary = primary
        self.user = primary.user

    def _start(self):
        self._own_dir()
        self._run([pg.bin_path('pg_basebackup'), '-h', self.primary.dir,
                   '-U', self.user.pw_name, '-D', self.data, '-R',
                   '-X', 'stream', '-c', 'fast', '--no-sync'])
        assert os.path.exists(os.path.join(self.data, 'standby.signal'))
        # The primary's synchronous_standby_names is set after the backup
        # (Pair.start).  It is set to '' here as well, so that the new
        # primary never waits for a standby it does not have.
        self._run([pg.bin_path('pg_ctl'), '-D', self.data, '-l', self.log,
                   '-w', '-t', '30', '-o', server_options(
                       self.dir, '-c hot_standby=on',
                       '-c cluster_name=%s' % STANDBY_NAME,
                       "-c synchronous_standby_names=''"), 'start'])
        self.running = True

    def in_recovery(self):
        return self.query('SELECT pg_is_in_recovery()') == 't'

    def promote(self, timeout=30):
        """pg_ctl promote, then until the server says it is a primary."""
        self._run([pg.bin_path('pg_ctl'), '-D', self.data, '-w', '-t',
                   str(timeout), 'promote'])
        harness.wait_for('the standby promoted', lambda: not
                         self.in_recovery(), timeout, log=self.log,
                         interval=0.05)


class Pair:
    """A primary and its synchronous streaming standby."""

    def __init__(self):
        self.primary = Primary()
        self.standby = None

    def start(self, timeout=30):
        try:
            self.primary.start()
            self.standby = Standby(self.primary).start()
            self.primary.admin_psql("ALTER SYSTEM SET "
                                    "synchronous_standby_names = '%s'" %
                                    STANDBY_NAME)
            self.primary.query('SELECT pg_reload_conf()')
            harness.wait_for('the standby streaming, synchronous',
                             self.synchronous, timeout,
                             log=self.standby.log, interval=0.1)
            for s in (self.primary, self.standby):
                # The daemon's account may reach the socket, not the data.
                os.chmod(s.dir, 0o711)
        except BaseException:
            self.stop(keep=True)
            raise
        atexit.register(self.stop)
        return self

    def synchronous(self):
        """The primary's view: the standby streams and is "sync"."""
        return self.primary.query(
            "SELECT application_name || ' ' || state || ' ' || sync_state "
            "FROM pg_stat_replication") == '%s streaming sync' % STANDBY_NAME

    def uri(self, password=pg.PASSWORD):
        """postgresql://ri:PW@/ri?host=/PRIMARY,/STANDBY&
        target_session_attrs=read-write: libpq tries the hosts in order
        and keeps the first that takes writes."""
        hosts = ','.join(urllib.parse.quote(s.dir, safe='/')
                         for s in (self.primary, self.standby))
        return 'postgresql://%s:%s@/%s?host=%s&target_session_attrs=' \
            'read-write' % (pg.ROLE, urllib.parse.quote(password, safe=''),
                            pg.DATABASE, hosts)

    def stop_primary(self):
        self.primary.crash()

    def promote(self, timeout=30):
        self.standby.promote(timeout)

    def stop(self, keep=False):
        if self.standby is not None:
            self.standby.stop(keep)
        self.primary.stop(keep)
