# SPDX-License-Identifier: ISC
# Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
"""The admin's side (issue 4): referral-invitesctl and the sqlite3 CLI.

Every command of referral-invitesctl(8) with its table and --json output,
exit statuses 0, 1 (one line on standard error, nothing changed) and 2
(usage), secrets printed once and stored only hashed (the database file,
its WAL and a .dump are searched for them), the views of
referral-invites(7) read with "sqlite3 -box" without any secret column,
times in ISO 8601 UTC, a long read transaction in the sqlite3 CLI that
never blocks the service, and the man pages' own walk-through as a shell
script.  All functions are named test_admin_* so that
"run.py -k test_admin" selects exactly this module.
"""

import calendar
import concurrent.futures
import datetime
import hashlib
import hmac
import json
import os
import pwd
import queue
import re
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
import uuid

import harness
from harness import (b64url, check, daemon_log, err_body, ok_body,
                     openssl, openssl_sign, reload_and_wait, snapshot,
                     unb64url, unique, wait_for)

ISO = re.compile(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ')
UUID = re.compile(r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-'
                  r'[0-9a-f]{12}')
KEY = re.compile(r'[A-Za-z0-9_-]{43}')
SECRET_COLUMN = re.compile(r'hash|token|secret|jwt|key|password', re.I)
TABLES = harness.TABLES
VIEWS = {
    'invites_overview': ['invite_id', 'app', 'inviter', 'invitee',
                         'language', 'status', 'attempts', 'created', 'sent',
                         'accepted'],
    'invite_counts_by_app': ['app_id', 'app', 'invites', 'sent', 'failed',
                             'accepted'],
    'invite_counts_by_inviter': ['user_id', 'inviter', 'app', 'invites',
                                 'sent', 'accepted', 'conversion_percent'],
    'delivery_failures': ['invite_id', 'app', 'invitee', 'status',
                          'attempts', 'last_reply', 'last_attempt'],
}
INVITES_COLUMNS = ['id', 'app', 'inviter', 'invitee', 'language', 'status',
                   'attempts', 'created_at', 'sent_at', 'accepted_at']
SHOW_INVITE_COLUMNS = ['id', 'app_id', 'inviter_id', 'email',
                       'email_normalized', 'language_requested',
                       'language_resolved', 'status', 'attempts',
                       'last_reply', 'request_id', 'created_at',
                       'updated_at', 'sent_at', 'accepted_at',
                       'next_attempt_at', 'revoked_at', 'expires_in',
                       'metadata', 'redirect_url', 'resends', 'resent_at']
APP_SHOW_COLUMNS = ['id', 'name', 'invite_url', 'sender', 'language',
                    'jwt_alg', 'jwt_issuer', 'accept_ttl', 'limit_per_hour',
                    'limit_per_day', 'limit_per_minute', 'cooldown',
                    'created_at', 'updated_at', 'redirect_allow',
                    'webhook_url']
APP_LIST_COLUMNS = ['id', 'name', 'invite_url', 'sender', 'language',
                    'jwt_alg', 'created_at']
VIEW_TIMES = {'invites_overview': ('created', 'sent', 'accepted'),
              'delivery_failures': ('last_attempt',)}
# Every secret the tool printed, for test_admin_secrets_never_stored.
SECRETS = []
T0 = time.time()


# -- running the tool ------------------------------------------------------

def run_ctl(stack, *args):
    return subprocess.run([harness.CTL, '-c', stack.conf] + list(args),
                          capture_output=True, text=True)


def ok(stack, *args):
    """Exit 0 and nothing on standard error; standard output."""
    r = run_ctl(stack, *args)
    assert (r.returncode, r.stderr) == (0, ''), \
        'ctl %s: exit %d: %r' % (' '.join(args), r.returncode, r.stderr)
    return r.stdout


def ok_quiet(stack, *args):
    """A command that changes something and creates nothing: no output."""
    out = ok(stack, *args)
    assert out == '', ('ctl %s printed %r' % (' '.join(args), out))


def created(stack, *args):
    """A command that creates something: the value alone on one line."""
    out = ok(stack, *args)
    assert out.endswith('\n') and out.count('\n') == 1, out
    return out.strip()


def as_json(stack, *args):
    out = ok(stack, '--json', *args)
    try:
        return json.loads(out)
    except ValueError as e:
        raise AssertionError('ctl --json %s: %s: %r' % (' '.join(args), e,
                                                         out))


def due_now(r):
    """A retried invite: queued and due now, or already taken by the
    mailer, which looks every 1.25 s on PostgreSQL (its claim's lease
    is then its next_attempt_at; what the try did is checked after)."""
    if r['attempts'] == 2:
        assert r['status'] in ('sending', 'queued', 'failed'), r
        return
    assert (r['status'], r['attempts']) == ('queued', 1), r
    assert iso_seconds(r['next_attempt_at']) <= time.time() + 1, r


def rejected(stack, args, codes):
    """ctl args: an exit status in codes, nothing printed, nothing
    changed; (the CompletedProcess, what to call it)."""
    before = snapshot(stack)
    r = run_ctl(stack, *args)
    what = 'ctl %s' % ' '.join(args)
    assert r.returncode in codes, '%s: exit %d (%r %r)' % (
        what, r.returncode, r.stdout, r.stderr)
    assert r.stdout == '', (what, r.stdout)
    assert snapshot(stack) == before, '%s changed the database' % what
    return r, what


def refused(stack, *args, reason=None):
    """Exit 1, one line on standard error, nothing printed or changed."""
    r, what = rejected(stack, args, (1,))
    assert r.stderr.endswith('\n') and r.stderr.count('\n') == 1, \
        (what, r.stderr)
    assert r.stderr.startswith('referral-invitesctl: ') and \
        len(r.stderr.strip()) > len('referral-invitesctl: '), (what, r.stderr)
    if reason:
        assert re.search(reason, r.stderr, re.I), (what, r.stderr)
    return r.stderr


def usage_error(stack, *args):
    """Exit 2 and the usage on standard error; nothing changed."""
    r, what = rejected(stack, args, (2,))
    assert 'usage: referral-invitesctl' in r.stderr, (what, r.stderr)


def not_accepted(stack, *args):
    """An invalid value: refused (1) or a usage error (2), never 0."""
    r, what = rejected(stack, args, (1, 2))
    assert r.stderr.strip(), (what, r.stdout, r.stderr)


def table(out):
    """A listing for people: (header names, rows of cells)."""
    lines = out.rstrip('\n').split('\n')
    split = lambda line: re.split(r' {2,}', line.strip())  # noqa: E731
    return split(lines[0]), [split(line) for line in lines[1:]]


def as_service(argv):
    """argv run as the daemon's user, as the man pages do."""
    if os.geteuid() == 0:
        argv = [harness.service_ctl() if a == harness.CTL else a
                for a in argv]
        return ['runuser', '-u', harness.DAEMON_USER, '--'] + argv
    return argv


# -- HTTP --------------------------------------------------------------

def request(stack, method, path, headers=None, body=None):
    harness.pace()                  # under nginx's rate, whatever thread
    return stack.request(method, path, headers, body)


class App(harness.App):
    """An app made with the tool, each step's output checked: a write
    key and one user, no limits; its invites paced under nginx's rate."""

    label = 'Admin App'

    def __init__(self, stack, **opts):
        super().__init__(stack, name=opts.get('name'),
                         invite_url=opts.get('invite_url',
                                             'https://app.example/join'),
                         inviter_name='Ada Admin', unlimited=True)
        assert UUID.fullmatch(self.client), self.client

    def ctl(self, *args):
        """What the tool printed, checked: nothing for a change, one
        line for what it creates (a secret for a key or a token)."""
        if args[:2] == ('app', 'set'):
            return ok_quiet(self.stack, *args)
        out = created(self.stack, *args)
        if args[0] in ('key', 'token'):
            SECRETS.append(out)
        return out

    def invite(self, addr=None, headers=None, uid=None):
        harness.pace()
        return super().invite(addr, headers=headers, uid=uid)


def jwt(alg, claims, sign):
    head = '%s.%s' % (b64url(json.dumps({'alg': alg, 'typ': 'JWT'}).encode()),
                      b64url(json.dumps(claims).encode()))
    return head + '.' + b64url(sign(head.encode()))


def der_to_raw(der):
    """An ECDSA DER signature as the 64-byte R || S of JWS."""
    assert der[0] == 0x30, der
    i = 2 if der[1] < 0x80 else 3
    out = b''
    for _ in range(2):
        assert der[i] == 0x02, der
        n = der[i + 1]
        out += der[i + 2:i + 2 + n].lstrip(b'\x00').rjust(32, b'\x00')
        i += 2 + n
    return out


def claims(app, **kw):
    now = int(time.time())
    c = {'aud': app.client, 'sub': app.uid, 'iat': now, 'exp': now + 600}
    c.update(kw)
    return c


def invite_row(stack, iid):
    [r] = stack.sql("SELECT * FROM invites WHERE id = '%s'" % iid)
    return r


def utc_today(days=0):
    return (datetime.datetime.now(datetime.timezone.utc) +
            datetime.timedelta(days=days)).strftime('%Y-%m-%d')


def iso_seconds(s):
    return calendar.timegm(time.strptime(s, '%Y-%m-%dT%H:%M:%SZ'))


# == init and the schema ==================================================

def schema_of(con):
    return sorted(con.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_schema").fetchall(),
        key=repr)


def test_admin_init_migrates_schema_1(stack):
    """A database of schema 1 (tests/e2e/schema-v1.sql) with rows in every
    status: init brings it to the current schema, exactly the one a fresh
    init makes, and keeps every row with its row id (list cursors)."""
    d = tempfile.mkdtemp(prefix='ri-migrate-')
    try:
        old, fresh = os.path.join(d, 'old.db'), os.path.join(d, 'fresh.db')
        here = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(here, 'schema-v1.sql')) as f:
            v1 = f.read()
        con = sqlite3.connect(old)
        con.executescript(v1)
        con.execute('PRAGMA user_version = 1')
        app, user = str(uuid.uuid4()), str(uuid.uuid4())
        t = '2026-01-02T03:04:05Z'
        con.execute("INSERT INTO apps (id, name, invite_url, created_at,"
                    " updated_at) VALUES (?, 'Old', 'https://o.example/j',"
                    " ?, ?)", (app, t, t))
        con.execute("INSERT INTO users (id, app_id, email, created_at)"
                    " VALUES (?, ?, 'u@o.example', ?)", (user, app, t))
        for rowid, status in ((3, 'queued'), (7, 'sending'), (8, 'sent'),
                              (20, 'failed'), (21, 'canceled')):
            con.execute(
                "INSERT INTO invites (rowid, id, app_id, inviter_id, email,"
                " email_normalized, language_requested, language_resolved,"
                " status, attempts, accept_token_hash, next_attempt_at,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'en',"
                " 'en', ?, 1, ?, ?, ?, ?)",
                (rowid, str(uuid.uuid4()), app, user, 'I%d@o.example' %
                 rowid, 'i%d@o.example' % rowid, status,
                 hashlib.sha256(b'%d' % rowid).hexdigest(), t, t, t))
        # One invite of ten minutes ago: inside the hour's and the day's
        # windows, which migration 4 counts.
        recent = time.strftime('%Y-%m-%dT%H:%M:%SZ',
                               time.gmtime(time.time() - 600))
        con.execute(
            "INSERT INTO invites (rowid, id, app_id, inviter_id, email,"
            " email_normalized, language_requested, language_resolved,"
            " status, attempts, accept_token_hash, next_attempt_at,"
            " created_at, updated_at) VALUES (22, ?, ?, ?, 'r@o.example',"
            " 'r@o.example', 'en', 'en', 'sent', 1, ?, ?, ?, ?)",
            (str(uuid.uuid4()), app, user, hashlib.sha256(b'22').hexdigest(),
             recent, recent, recent))
        con.commit()
        before = con.execute("SELECT rowid, * FROM invites ORDER BY rowid"
                             ).fetchall()
        overview = con.execute("SELECT * FROM invites_overview").fetchall()
        con.close()

        def ctl_d(path, *args):
            flags = [a for a in args if a == '--json']
            return subprocess.run([harness.CTL, '-d', path] + flags + [
                a for a in args if a != '--json'], capture_output=True,
                text=True)
        for db in (old, fresh):
            r = ctl_d(db, 'init')
            assert (r.returncode, r.stdout, r.stderr) == (0, '', ''), r
        con = sqlite3.connect(old)
        con2 = sqlite3.connect(fresh)
        try:
            version = con2.execute('PRAGMA user_version').fetchone()[0]
            assert version == 7, version
            assert con.execute('PRAGMA user_version').fetchone()[0] == 7
            assert sorted(con.execute(
                'SELECT kind, id, n FROM invite_counts').fetchall()) == \
                [('day', user, 1), ('hour', user, 1)]
            assert schema_of(con) == schema_of(con2)
            # Schema 5 appended columns: the old ones are as they were.
            assert [r[:len(before[0])] for r in con.execute(
                "SELECT rowid, * FROM invites ORDER BY rowid")] == before
            assert con.execute("SELECT * FROM invites_overview"
                               ).fetchall() == overview
            assert con.execute('PRAGMA integrity_check').fetchall() == \
                [('ok',)]
            assert con.execute('PRAGMA foreign_key_check').fetchall() == []
            idx = {n for (n,) in con.execute(
                "SELECT name FROM sqlite_schema WHERE type = 'index'"
                " AND tbl_name = 'invites'")}
            assert idx == {'sqlite_autoindex_invites_1',
                           'invites_by_inviter', 'invites_by_address',
                           'invites_by_app', 'invites_due',
                           'invites_sending', 'invites_by_old_token'}, idx
            trig = {n for (n,) in con.execute(
                "SELECT name FROM sqlite_schema WHERE type = 'trigger'")}
            assert trig == {'%s_%s' % (t, op) for t in
                            ('apps', 'api_keys', 'users') for op in
                            ('INSERT', 'UPDATE', 'DELETE')} | {
                'events_invite_status', 'events_invite_accepted',
                'events_opted_out'}, trig
            assert con.execute('SELECT id, n FROM cache_generation'
                               ).fetchall() == [(1, 1)]
        finally:
            con.close()
            con2.close()
        # Migrated once; a second init changes nothing.
        r = ctl_d(old, 'init')
        assert (r.returncode, r.stdout, r.stderr) == (0, '', ''), r
        r = ctl_d(old, 'invites', '--json')
        assert r.returncode == 0 and len(json.loads(r.stdout)) == 6, r
    finally:
        shutil.rmtree(d)


@harness.sqlite_only
def test_admin_init_is_idempotent_and_keeps_the_secret(stack):
    secret = os.path.join(os.path.dirname(stack.db), 'secret.key')
    with open(secret, 'rb') as f:
        key_before = f.read()
    st_before = os.stat(secret)
    version = stack.sql('PRAGMA user_version')[0]['user_version']
    app = App(stack)
    # As the service's user, as the man page says.
    for _ in range(2):
        r = subprocess.run(as_service([harness.CTL, '-c', stack.conf,
                                       'init']), capture_output=True,
                           text=True)
        assert (r.returncode, r.stdout, r.stderr) == (0, '', ''), r
    with open(secret, 'rb') as f:
        assert f.read() == key_before, 'init replaced secret.key'
    st = os.stat(secret)
    assert len(key_before) == 32, len(key_before)
    assert st.st_mode & 0o777 == 0o600, oct(st.st_mode)
    assert (st.st_uid, st.st_ino) == (st_before.st_uid, st_before.st_ino)
    if os.geteuid() == 0:
        uid = pwd.getpwnam(harness.DAEMON_USER).pw_uid
        for p in (stack.db, secret, stack.db + '-wal', stack.db + '-shm'):
            assert os.stat(p).st_uid == uid, (p, os.stat(p).st_uid)
    assert stack.sql('PRAGMA user_version')[0]['user_version'] == version
    assert version >= 1, version
    assert as_json(stack, 'app', 'show', app.client)['name'] == app.name

    d = tempfile.mkdtemp(prefix='ri-admin-')
    try:
        db = os.path.join(d, 'fresh.db')

        def ctl_d(path, *args):
            return subprocess.run([harness.CTL, '-d', path] + list(args),
                                  capture_output=True, text=True)
        r = ctl_d(db, 'init')
        assert (r.returncode, r.stdout, r.stderr) == (0, '', ''), r
        fresh_secret = os.path.join(d, 'secret.key')
        assert os.stat(fresh_secret).st_mode & 0o777 == 0o600
        assert os.path.getsize(fresh_secret) == 32
        with open(fresh_secret, 'rb') as f:
            assert f.read() != key_before, 'the secret is not random'
        con = sqlite3.connect(db)
        try:
            assert con.execute('PRAGMA journal_mode').fetchone()[0] == 'wal'
            assert con.execute('PRAGMA user_version').fetchone()[0] == \
                version
            names = {n for (n,) in con.execute(
                "SELECT name FROM sqlite_master WHERE type IN "
                "('table', 'view')")}
        finally:
            con.close()
        assert set(TABLES) | set(VIEWS) <= names, names
        r = ctl_d(db, 'init')
        assert (r.returncode, r.stdout, r.stderr) == (0, '', ''), r
        # Every other command refuses a database without the schema ...
        empty = os.path.join(d, 'empty.db')
        r = ctl_d(empty, 'app', 'list')
        assert r.returncode == 1 and r.stderr.count('\n') == 1 and \
            'init' in r.stderr, r
        # ... and init refuses a schema newer than itself.
        newer = os.path.join(d, 'newer.db')
        shutil.copy(db, newer)
        con = sqlite3.connect(newer)
        con.execute('PRAGMA user_version = %d' % (version + 1))
        con.commit()
        con.close()
        for args in (('init',), ('app', 'list')):
            r = ctl_d(newer, *args)
            assert r.returncode == 1 and r.stdout == '' and \
                r.stderr.count('\n') == 1, (args, r)
        r = subprocess.run([harness.CTL, '-c', stack.conf, '-d', db,
                            'app', 'list'], capture_output=True, text=True)
        assert r.returncode == 2 and 'usage:' in r.stderr, r
        r = subprocess.run([harness.CTL, '-c', os.path.join(d, 'none.conf'),
                            'app', 'list'], capture_output=True, text=True)
        assert r.returncode == 1 and r.stderr.count('\n') == 1, r
    finally:
        shutil.rmtree(d, ignore_errors=True)


@harness.sqlite_only
def test_admin_init_again_as_root(stack):
    """Run as root on an installed database (an upgrade's postinst does),
    init hands the files to the owner of the database's directory and
    succeeds, changing nothing else."""
    if os.geteuid() != 0:
        return
    secret = os.path.join(os.path.dirname(stack.db), 'secret.key')
    with open(secret, 'rb') as f:
        key_before = f.read()
    before = snapshot(stack)
    for _ in range(2):
        r = run_ctl(stack, 'init')
        assert (r.returncode, r.stdout, r.stderr) == (0, '', ''), r
    uid = pwd.getpwnam(harness.DAEMON_USER).pw_uid
    for p in (stack.db, stack.db + '-wal', stack.db + '-shm', secret):
        # The -wal and -shm files exist only while a connection is open.
        if p == stack.db or p == secret or os.path.exists(p):
            assert os.stat(p).st_uid == uid, (p, os.stat(p).st_uid)
    assert os.stat(secret).st_mode & 0o777 == 0o600
    with open(secret, 'rb') as f:
        assert f.read() == key_before
    assert not os.path.exists(os.path.join(os.path.dirname(
        os.path.dirname(stack.db)), 'secret.key'))
    assert snapshot(stack) == before


# == exit statuses ==========================================================

def test_admin_usage_errors_exit_2(stack):
    app = App(stack)
    iid = str(uuid.uuid4())
    for args in ([], ['bogus'], ['app'], ['app', 'bogus'], ['app', 'add'],
                 ['app', 'add', '--name', 'X'],
                 ['app', 'add', '--invite-url', 'https://x.example/'],
                 ['app', 'list', 'extra'], ['app', 'show'],
                 ['app', 'show', app.client, 'extra'],
                 ['app', 'set', app.client],
                 ['app', 'jwt-key', app.client],
                 ['app', 'jwt-key', app.client, '--alg', 'RS256'],
                 ['app', 'jwt-key', app.client, '--alg', 'PS256',
                  '--public-key', '/dev/null'],
                 ['key', 'add', app.client],
                 ['key', 'add', app.client, '--type', 'admin'],
                 ['key', 'list'], ['key', 'revoke'],
                 ['user', 'add', app.client],
                 ['user', 'list'], ['user', 'disable'],
                 ['token', app.client], ['token'],
                 ['invites', 'extra'], ['invite', 'show'],
                 ['invite', 'frob', iid], ['invite'],
                 ['suppress', 'add', app.client],
                 ['suppress', 'list', app.client, 'a@example.org'],
                 ['suppress', 'remove', app.client],
                 ['--bogus', 'app', 'list'], ['app', 'list', '--bogus'],
                 ['-h'], ['--help']):
        usage_error(stack, *args)


def test_admin_refusals_exit_1_with_one_line(stack):
    app = App(stack)
    other = App(stack)
    nobody = str(uuid.uuid4())
    for args, reason in (
            (('app', 'show', nobody), 'no such app'),
            (('app', 'show', 'not-a-uuid'), None),
            (('app', 'add', '--name', 'X', '--invite-url', 'ftp://x.example/'),
             None),
            (('app', 'add', '--name', 'X', '--invite-url',
              'https://x.example/a b'), None),
            (('app', 'add', '--name', '', '--invite-url',
              'https://x.example/'), None),
            (('app', 'add', '--name', 'a\nb', '--invite-url',
              'https://x.example/'), None),
            (('app', 'add', '--name', 'X', '--invite-url',
              'https://x.example/', '--sender', 'not an address'), None),
            (('app', 'add', '--name', 'X', '--invite-url',
              'https://x.example/', '--language', 'english'), None),
            (('app', 'set', app.client, '--limit-per-hour', '-1'), None),
            (('app', 'set', app.client, '--cooldown', '1000000001'), None),
            (('app', 'set', app.client, '--accept-ttl', 'soon'), None),
            (('app', 'set', nobody, '--name', 'X'), None),
            (('key', 'add', nobody, '--type', 'write'), None),
            (('key', 'list', nobody), None),
            (('key', 'revoke', 'key_000000000000'), None),
            (('user', 'add', app.client, '--email', 'not-an-address'), None),
            (('user', 'add', app.client, '--email', app.user_email.upper()),
             None),
            (('user', 'add', other.client, '--email', unique(), '--id',
              app.uid), None),
            (('user', 'add', app.client, '--email', unique(), '--id',
              'not-a-uuid'), None),
            (('user', 'list', nobody), None),
            (('user', 'disable', nobody), None),
            (('user', 'enable', 'not-a-uuid'), None),
            (('token', app.client, nobody), None),
            (('token', app.client, other.uid), None),
            (('token', app.client, app.uid, '--ttl', '0'), None),
            (('token', app.client, app.uid, '--ttl', '31536001'), None),
            (('invite', 'show', nobody), None),
            (('invite', 'retry', nobody), None),
            (('invite', 'cancel', 'not-a-uuid'), None),
            (('suppress', 'add', app.client, 'not-an-address'), None),
            (('suppress', 'remove', app.client, unique()), None),
            (('suppress', 'list', nobody), None),
            (('invites', '--app', 'not-a-uuid'), None)):
        refused(stack, *args, reason=reason)


def test_admin_invalid_listing_filters_are_refused(stack):
    """--status names one of five states and --since is a date: anything
    else is an invalid value, not an empty listing."""
    for args in (('invites', '--status', 'bogus'),
                 ('invites', '--status', 'SENT'),
                 ('invites', '--since', 'yesterday'),
                 ('invites', '--since', '2026-13-45'),
                 ('invites', '--since', "2026-01-01' OR 1=1 --")):
        not_accepted(stack, *args)


# == apps ====================================================================

def test_admin_app_add_list_show_set(stack):
    name = 'Shop \u00c9lan %d' % time.time_ns()
    client = created(stack, 'app', 'add', '--name', name, '--invite-url',
                     'https://shop.example/join', '--sender',
                     'Shop <invites@shop.example>', '--language', 'pt-br')
    assert UUID.fullmatch(client), client
    j = as_json(stack, 'app', 'add', '--name', name + ' 2', '--invite-url',
                'https://shop.example/join2')
    assert list(j) == ['clientId'] and UUID.fullmatch(j['clientId']), j
    second = j['clientId']
    show = as_json(stack, 'app', 'show', client)
    assert list(show) == APP_SHOW_COLUMNS, list(show)
    assert (show['id'], show['name'], show['invite_url'], show['sender'],
            show['language'], show['jwt_alg'], show['jwt_issuer'],
            show['accept_ttl'], show['limit_per_hour'], show['cooldown']) == \
        (client, name, 'https://shop.example/join',
         'Shop <invites@shop.example>', 'pt-BR', 'HS256', None, None, None,
         None), show
    assert ISO.fullmatch(show['created_at']) and \
        show['updated_at'] == show['created_at'], show
    assert as_json(stack, 'app', 'show', client.upper()) == show
    head, rows = table(ok(stack, 'app', 'show', client))
    assert head == APP_SHOW_COLUMNS and len(rows) == 1, (head, rows)
    listed = as_json(stack, 'app', 'list')
    assert isinstance(listed, list) and all(list(a) == APP_LIST_COLUMNS
                                            for a in listed), listed
    mine = {a['id']: a for a in listed}
    assert mine[second]['sender'] is None and \
        mine[second]['language'] is None, mine[second]
    assert mine[client]['name'] == name, mine[client]
    head, rows = table(ok(stack, 'app', 'list'))
    assert head == APP_LIST_COLUMNS, head
    assert [r for r in rows if r[0] == second][0][3:5] == ['-', '-'], rows
    # A time window: times are to the second, and updated_at must come
    # out later than created_at.
    time.sleep(1.1)
    for opt, value, column, expect in (
            ('--name', 'Renamed', 'name', 'Renamed'),
            ('--invite-url', 'http://shop.example/j?a=1', 'invite_url',
             'http://shop.example/j?a=1'),
            ('--sender', 'noreply@shop.example', 'sender',
             'noreply@shop.example'),
            ('--language', 'DE', 'language', 'de'),
            ('--accept-ttl', '86400', 'accept_ttl', 86400),
            ('--limit-per-hour', '7', 'limit_per_hour', 7),
            ('--limit-per-day', '70', 'limit_per_day', 70),
            ('--limit-per-minute', '0', 'limit_per_minute', 0),
            ('--cooldown', '1000000000', 'cooldown', 1000000000)):
        ok_quiet(stack, 'app', 'set', client, opt, value)
        now = as_json(stack, 'app', 'show', client)
        assert now[column] == expect, (opt, now)
    assert now['updated_at'] > now['created_at'], now
    assert now['name'] == 'Renamed' and now['limit_per_hour'] == 7, now
    # A change takes effect with the next request.
    app = App(stack)
    addr = unique()
    check(app.invite(addr), 201, ok_body())
    check(app.invite(addr), 409, err_body('This address was invited '
                                          'recently'))
    ok_quiet(stack, 'app', 'set', app.client, '--cooldown', '0')
    check(app.invite(addr), 201, ok_body())


# == token keys ===========================================================

def test_admin_app_jwt_key(stack):
    app = App(stack)
    d = stack.path('admin-keys')
    os.makedirs(d, exist_ok=True)
    k = lambda name: os.path.join(d, name)  # noqa: E731
    openssl('genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048',
            '-out', k('rsa.pem'))
    openssl('pkey', '-in', k('rsa.pem'), '-pubout', '-out', k('rsa.pub'))
    openssl('genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024',
            '-out', k('rsa1024.pem'))
    openssl('pkey', '-in', k('rsa1024.pem'), '-pubout', '-out',
            k('rsa1024.pub'))
    openssl('genpkey', '-algorithm', 'EC', '-pkeyopt',
            'ec_paramgen_curve:P-256', '-out', k('ec.pem'))
    openssl('pkey', '-in', k('ec.pem'), '-pubout', '-out', k('ec.pub'))
    openssl('genpkey', '-algorithm', 'EC', '-pkeyopt',
            'ec_paramgen_curve:P-384', '-out', k('ec384.pem'))
    openssl('pkey', '-in', k('ec384.pem'), '-pubout', '-out', k('ec384.pub'))
    with open(k('garbage.pem'), 'w') as f:
        f.write('-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n'
                '-----END PUBLIC KEY-----\n')
    open(k('empty.pem'), 'w').close()
    with open(k('rsa.pub')) as f:
        pub = f.read()
    with open(k('huge.pem'), 'w') as f:
        f.write('x' * 70000 + '\n' + pub)
    old_token = app.token()
    check(app.invite(headers=app.bearer(token=old_token)), 201, ok_body())
    show = as_json(stack, 'app', 'show', app.client)

    # Bad key files: exit 1, the app unchanged.
    for alg, path in (('RS256', k('missing.pem')), ('RS256', k('empty.pem')),
                      ('RS256', k('garbage.pem')), ('RS256', k('rsa.pem')),
                      ('RS256', k('rsa1024.pub')), ('RS256', k('ec.pub')),
                      ('ES256', k('rsa.pub')), ('ES256', k('ec384.pub')),
                      ('RS256', k('huge.pem')), ('RS256', d)):
        refused(stack, 'app', 'jwt-key', app.client, '--alg', alg,
                '--public-key', path)
    assert as_json(stack, 'app', 'show', app.client) == show

    # RS256 with an issuer: the IdP's tokens work, the old HS256 ones not.
    ok_quiet(stack, 'app', 'jwt-key', app.client, '--alg', 'RS256',
             '--public-key', k('rsa.pub'), '--issuer', 'https://idp.example/')
    show = as_json(stack, 'app', 'show', app.client)
    assert (show['jwt_alg'], show['jwt_issuer']) == \
        ('RS256', 'https://idp.example/'), show
    assert 'BEGIN' not in ok(stack, 'app', 'show', app.client)
    rs = lambda data: openssl_sign(k('rsa.pem'), data)  # noqa: E731
    tok = jwt('RS256', claims(app, iss='https://idp.example/'), rs)
    check(app.invite(headers=app.bearer(token=tok)), 201, ok_body())
    check(app.invite(headers=app.bearer(token=jwt('RS256', claims(app), rs))),
          401, err_body('Invalid credentials'), 'no iss')
    check(app.invite(headers=app.bearer(token=old_token)), 401,
          err_body('Invalid credentials'), 'HS256 token of before')
    refused(stack, 'token', app.client, app.uid, reason='RS256')

    # ES256: a P-256 key, signatures as R || S.
    ok_quiet(stack, 'app', 'jwt-key', app.client, '--alg', 'ES256',
             '--public-key', k('ec.pub'))
    show = as_json(stack, 'app', 'show', app.client)
    assert (show['jwt_alg'], show['jwt_issuer']) == ('ES256', None), show
    es = lambda data: der_to_raw(openssl_sign(k('ec.pem'), data))  # noqa
    check(app.invite(headers=app.bearer(token=jwt('ES256', claims(app), es))),
          201, ok_body())
    check(app.invite(headers=app.bearer(token=tok)), 401,
          err_body('Invalid credentials'), 'RS256 token after ES256')
    der = lambda data: openssl_sign(k('ec.pem'), data)  # noqa: E731
    check(app.invite(headers=app.bearer(token=jwt('ES256', claims(app), der))),
          401, err_body('Invalid credentials'), 'DER signature')
    refused(stack, 'token', app.client, app.uid, reason='ES256')

    # HS256: a new secret, printed once; the one before stops working.
    first = created(stack, 'app', 'jwt-key', app.client, '--alg', 'HS256')
    assert KEY.fullmatch(first), first
    SECRETS.append(first)
    hs = lambda secret: (lambda data: hmac.new(  # noqa: E731
        unb64url(secret), data, hashlib.sha256).digest())
    own = jwt('HS256', claims(app), hs(first))
    check(app.invite(headers=app.bearer(token=own)), 201, ok_body())
    j = as_json(stack, 'app', 'jwt-key', app.client, '--alg', 'HS256',
                '--issuer', 'https://self.example/')
    assert list(j) == ['secret'] and KEY.fullmatch(j['secret']) and \
        j['secret'] != first, j
    SECRETS.append(j['secret'])
    check(app.invite(headers=app.bearer(token=own)), 401,
          err_body('Invalid credentials'), 'previous HS256 secret')
    check(app.invite(headers=app.bearer(token=jwt('HS256', claims(
        app, iss='https://self.example/'), hs(j['secret'])))), 201,
        ok_body())
    minted = app.token()
    assert json.loads(unb64url(minted.split('.')[1]))['iss'] == \
        'https://self.example/', minted
    check(app.invite(headers=app.bearer(token=minted)), 201, ok_body())
    show = as_json(stack, 'app', 'show', app.client)
    assert (show['jwt_alg'], show['jwt_issuer']) == \
        ('HS256', 'https://self.example/'), show


# == API keys ================================================================

def test_admin_keys_add_list_revoke(stack):
    app = App(stack)
    read = created(stack, 'key', 'add', app.client, '--type', 'read')
    j = as_json(stack, 'key', 'add', app.client, '--type', 'write')
    SECRETS.extend([read, j['key']])
    assert KEY.fullmatch(read) and KEY.fullmatch(app.key), (read, app.key)
    assert list(j) == ['id', 'type', 'key'], j
    assert re.fullmatch(r'key_[0-9a-f]{12}', j['id']) and \
        j['type'] == 'write' and KEY.fullmatch(j['key']), j
    keys = as_json(stack, 'key', 'list', app.client)
    assert all(list(x) == ['id', 'type', 'created_at', 'revoked_at']
               for x in keys), keys
    assert sorted(x['type'] for x in keys) == ['read', 'write', 'write']
    assert all(ISO.fullmatch(x['created_at']) and x['revoked_at'] is None
               and re.fullmatch(r'key_[0-9a-f]{12}', x['id'])
               for x in keys), keys
    assert [x['type'] for x in keys if x['id'] == j['id']] == ['write']
    text = ok(stack, 'key', 'list', app.client)
    head, rows = table(text)
    assert head == ['id', 'type', 'created_at', 'revoked_at'], head
    assert [r[0] for r in rows] == [x['id'] for x in keys], rows
    for secret in (app.key, read, j['key']):
        assert secret not in text, 'key list shows a key'
    # Only the SHA-256 of each key is stored.
    hashes = {r['id']: r['key_hash'] for r in stack.sql(
        "SELECT id, key_hash FROM api_keys WHERE app_id = '%s'" % app.client)}
    assert hashes[j['id']] == hashlib.sha256(j['key'].encode()).hexdigest()
    # The new key works, until it is revoked.
    check(app.invite(headers=app.headers(j['key'])), 201, ok_body())
    ok_quiet(stack, 'key', 'revoke', j['id'])
    resp = app.invite(headers=app.headers(j['key']))
    h = check(resp, 401, err_body('Invalid credentials'), 'revoked key')
    assert h.get('www-authenticate') == 'Bearer realm="referral-invites"', h
    keys = {x['id']: x for x in as_json(stack, 'key', 'list', app.client)}
    assert ISO.fullmatch(keys[j['id']]['revoked_at'] or ''), keys
    assert [x['revoked_at'] for i, x in keys.items() if i != j['id']] == \
        [None, None], keys
    refused(stack, 'key', 'revoke', j['id'])
    check(app.invite(), 201, ok_body())     # the other key still works


def burst(app, headers, n=12):
    """n invites at once, so that every worker of the pool takes some."""
    with concurrent.futures.ThreadPoolExecutor(6) as ex:
        return list(ex.map(lambda _: app.invite(headers=headers), range(n)))


def test_admin_changes_reach_every_worker_at_once(stack):
    """Workers cache keys, apps and users (referral-invitesd(8)); a change
    made with the tool holds for the very next request, whichever worker
    takes it: a revoked key, a disabled user, a new HS256 secret."""
    app = App(stack)
    j = as_json(stack, 'key', 'add', app.client, '--type', 'write')
    SECRETS.append(j['key'])
    tok = app.token()
    for r in burst(app, app.headers(j['key'])) + \
            burst(app, app.bearer(token=tok)):
        check(r, 201, ok_body(), 'warming the workers')
    ok_quiet(stack, 'user', 'disable', app.uid)
    for r in burst(app, app.headers(j['key'])) + \
            burst(app, app.bearer(token=tok)):
        check(r, 403, err_body('The inviting user is disabled'))
    ok_quiet(stack, 'user', 'enable', app.uid)
    for r in burst(app, app.headers(j['key'])):
        check(r, 201, ok_body())
    ok_quiet(stack, 'key', 'revoke', j['id'])
    for r in burst(app, app.headers(j['key'])):
        h = check(r, 401, err_body('Invalid credentials'), 'revoked key')
        assert h.get('www-authenticate') == \
            'Bearer realm="referral-invites"', h
    SECRETS.append(created(stack, 'app', 'jwt-key', app.client, '--alg',
                           'HS256'))
    for r in burst(app, app.bearer(token=tok)):
        check(r, 401, err_body('Invalid credentials'), 'old HS256 secret')
    for r in burst(app, app.bearer(token=app.token())):
        check(r, 201, ok_body())


# == users ================================================================

def test_admin_users_add_list_disable_enable(stack):
    app = App(stack)
    given = str(uuid.uuid4()).upper()
    bob = created(stack, 'user', 'add', app.client, '--email',
                  'Bob.Mixed@Example.ORG', '--id', given)
    assert bob == given.lower(), bob
    j = as_json(stack, 'user', 'add', app.client, '--email', unique('carol'))
    assert list(j) == ['userId'] and UUID.fullmatch(j['userId']), j
    listed = as_json(stack, 'user', 'list', app.client)
    assert all(list(u) == ['id', 'email', 'name', 'active', 'created_at']
               for u in listed), listed
    users = {u['id']: u for u in listed}
    assert sorted(users) == sorted([app.uid, bob, j['userId']]), listed
    assert users[bob]['email'] == 'bob.mixed@example.org', users
    assert (users[app.uid]['name'], users[bob]['name']) == \
        ('Ada Admin', None), users
    assert all(u['active'] == 1 and ISO.fullmatch(u['created_at'])
               for u in listed), listed
    head, rows = table(ok(stack, 'user', 'list', app.client))
    assert head == ['id', 'email', 'name', 'active', 'created_at'], head
    assert [r[2] for r in rows if r[0] == bob] == ['-'], rows
    # Disabled: no invites (403), no tokens; enabled again: both work.
    tok = app.token()
    ok_quiet(stack, 'user', 'disable', app.uid.upper())
    active = lambda: {u['id']: u['active'] for u in as_json(  # noqa
        stack, 'user', 'list', app.client)}
    assert active() == {app.uid: 0, bob: 1, j['userId']: 1}
    check(app.invite(), 403, err_body('The inviting user is disabled'))
    check(app.invite(headers=app.bearer(token=tok)), 403,
          err_body('The inviting user is disabled'))
    refused(stack, 'token', app.client, app.uid, reason='disabled')
    ok_quiet(stack, 'user', 'enable', app.uid)
    assert active() == {app.uid: 1, bob: 1, j['userId']: 1}
    check(app.invite(), 201, ok_body())
    check(app.invite(headers=app.bearer(token=tok)), 201, ok_body())
    # The user's address is no invitee of the app.
    check(app.invite('BOB.mixed@example.org'), 409,
          err_body('This address already belongs to a user'))


# == tokens ================================================================

def test_admin_token(stack):
    app = App(stack)
    other = App(stack)
    tok = app.token()
    parts = tok.split('.')
    assert len(parts) == 3, tok
    assert json.loads(unb64url(parts[0])) == {'alg': 'HS256', 'typ': 'JWT'}
    c = json.loads(unb64url(parts[1]))
    assert (c['iss'], c['aud'], c['sub']) == \
        ('referral-invites', app.client, app.uid), c
    assert c['exp'] - c['iat'] == 3600 and abs(c['iat'] - time.time()) < 60
    c = json.loads(unb64url(app.token(None, '--ttl', '120').split('.')[1]))
    assert c['exp'] - c['iat'] == 120, c
    j = as_json(stack, 'token', app.client, app.uid.upper())
    assert list(j) == ['token'] and j['token'].count('.') == 2, j
    SECRETS.append(j['token'])
    check(app.invite(headers=app.bearer(token=tok)), 201, ok_body())
    check(app.invite(headers=app.bearer(token=j['token']), uid='me'), 201,
          ok_body())
    refused(stack, 'token', app.client, other.uid)
    refused(stack, 'token', other.client, app.uid)


# == invites: list, show, retry, cancel ===================================

def test_admin_invites_show_retry_cancel(stack):
    app = App(stack)
    s_addr, f_addr, q_addr = unique('sent'), 'reject-' + unique(), \
        'defer-' + unique()
    check(app.invite(s_addr), 201, ok_body())
    # A time window: the sent one is the oldest, a second (the times'
    # unit) before the others, and --since tells them apart.
    time.sleep(1.1)
    queued = {}
    t = threading.Thread(target=lambda: queued.update(
        resp=app.invite(q_addr)))
    t.start()
    resp = app.invite(f_addr)
    check(resp, 400, err_body('550 5.1.1 <%s>: Recipient address rejected'
                              % f_addr))
    t.join(30)
    check(queued['resp'], 201, ok_body('Invite queued'))
    rows = {r['email']: r for r in stack.sql(
        "SELECT * FROM invites WHERE app_id = '%s'" % app.client)}
    s_id, f_id, q_id = (rows[a]['id'] for a in (s_addr, f_addr, q_addr))

    listed = as_json(stack, 'invites', '--app', app.client)
    assert all(list(r) == INVITES_COLUMNS for r in listed), listed
    assert [r['id'] for r in listed][-1] == s_id, listed
    assert {r['id'] for r in listed} == {s_id, f_id, q_id}, listed
    assert [r['created_at'] for r in listed] == sorted(
        (r['created_at'] for r in listed), reverse=True), 'not newest first'
    by_id = {r['id']: r for r in listed}
    assert (by_id[s_id]['app'], by_id[s_id]['inviter'],
            by_id[s_id]['invitee'], by_id[s_id]['language'],
            by_id[s_id]['status'], by_id[s_id]['attempts']) == \
        (app.name, app.user_email, s_addr, 'en', 'sent', 1), by_id[s_id]
    assert ISO.fullmatch(by_id[s_id]['sent_at'] or ''), by_id[s_id]
    assert (by_id[f_id]['status'], by_id[q_id]['status']) == \
        ('failed', 'queued'), listed
    head, trows = table(ok(stack, 'invites', '--app', app.client))
    assert head == INVITES_COLUMNS and len(trows) == 3, (head, trows)
    for status, expect in (('failed', [f_id]), ('queued', [q_id]),
                           ('sent', [s_id]), ('canceled', [])):
        got = as_json(stack, 'invites', '--app', app.client, '--status',
                      status)
        assert [r['id'] for r in got] == expect, (status, got)
    since = min(rows[f_addr]['created_at'], rows[q_addr]['created_at'])
    for value, expect in ((utc_today(), {s_id, f_id, q_id}),
                          (utc_today(1), set()),
                          (since, {f_id, q_id}),
                          ('2099-01-01T00:00:00Z', set())):
        got = as_json(stack, 'invites', '--app', app.client, '--since',
                      value)
        assert {r['id'] for r in got} == expect, (value, got)
    got = as_json(stack, 'invites', '--app', app.client, '--status',
                  'failed', '--since', utc_today())
    assert [r['id'] for r in got] == [f_id], got
    assert any(r['id'] == s_id for r in as_json(stack, 'invites'))

    shown = as_json(stack, 'invite', 'show', f_id.upper())
    assert list(shown) == SHOW_INVITE_COLUMNS, list(shown)
    assert (shown['id'], shown['app_id'], shown['inviter_id'],
            shown['email'], shown['email_normalized'], shown['status'],
            shown['attempts']) == (f_id, app.client, app.uid, f_addr,
                                   f_addr, 'failed', 1), shown
    assert shown['last_reply'].startswith('550 5.1.1'), shown
    assert re.fullmatch(r'[0-9a-f]{32}', shown['request_id']), shown
    head, trows = table(ok(stack, 'invite', 'show', f_id))
    assert head == SHOW_INVITE_COLUMNS and len(trows) == 1, head

    # The bounce put the address on the list: retry is refused until an
    # admin takes it off.
    sup = as_json(stack, 'suppress', 'list', app.client)
    assert [(x['email'], x['source']) for x in sup] == [(f_addr, 'bounce')]
    refused(stack, 'invite', 'retry', f_id, reason='do-not-invite')
    ok_quiet(stack, 'suppress', 'remove', app.client, f_addr)
    ok_quiet(stack, 'invite', 'retry', f_id)
    due_now(invite_row(stack, f_id))
    ok_quiet(stack, 'invite', 'retry', q_id)
    due_now(invite_row(stack, q_id))
    # Any request wakes the mailer, which sends every due invite.
    check(app.invite(), 201, ok_body())
    wait_for('retried invites attempted', lambda: (
        invite_row(stack, f_id)['attempts'] == 2 and
        invite_row(stack, q_id)['attempts'] == 2), 15)
    r = wait_for('failed again', lambda: (
        invite_row(stack, f_id)['status'] == 'failed' and
        invite_row(stack, f_id)), 15)
    assert r['last_reply'].startswith('550'), r
    r = invite_row(stack, q_id)
    assert (r['status'], r['last_reply'][:3]) == ('queued', '451'), r
    fails = {x['invite_id']: x for x in stack.sql(
        'SELECT * FROM delivery_failures')}
    assert (fails[f_id]['status'], fails[f_id]['attempts']) == \
        ('failed', 2) and fails[f_id]['last_reply'].startswith('550'), fails
    assert (fails[q_id]['status'], fails[q_id]['attempts']) == \
        ('queued', 2), fails
    assert s_id not in fails

    # Cancel: queued and failed ones, never a sent or canceled one.
    ok_quiet(stack, 'invite', 'cancel', q_id)
    assert invite_row(stack, q_id)['status'] == 'canceled'
    refused(stack, 'invite', 'cancel', q_id)
    refused(stack, 'invite', 'retry', q_id)
    refused(stack, 'invite', 'cancel', s_id)
    refused(stack, 'invite', 'retry', s_id)
    assert invite_row(stack, s_id)['status'] == 'sent'
    ok_quiet(stack, 'invite', 'cancel', f_id)
    got = as_json(stack, 'invites', '--app', app.client, '--status',
                  'canceled')
    assert {r['id'] for r in got} == {q_id, f_id}, got


def test_admin_invite_cancel_says_its_state(stack):
    """invite cancel on an invite it may not cancel: exit 1 and one line
    naming the invite's state and saying nothing was done (before:
    "is being sent or was sent" for a revoked or hidden one too).  A
    stack of its own, with hide_existing_users for a hidden invite."""
    def run(s):
        app = App(s)
        member = unique('member')
        app.add_user(member, 'Mia Member')
        ids = {}
        # The SMTP server defers defer-* addresses: that one stays queued.
        for name, addr, said in (
                ('sent', unique('sent'), 'Invite sent'),
                ('revoked', unique('revoked'), 'Invite sent'),
                ('canceled', 'defer-' + unique(), 'Invite queued')):
            check(app.invite(addr), 201, ok_body(said))
            [ids[name]] = [r['id'] for r in app.rows() if r['email'] == addr]
        h = {k: v for k, v in app.headers().items() if k != 'Content-Type'}
        st, _, body = s.request('DELETE', harness.ROUTE % app.uid + '/' +
                                ids['revoked'], h)
        assert st == 200, (st, body)
        ok_quiet(s, 'invite', 'cancel', ids['canceled'])
        # Hidden: it answers as one of the worker's last real invites did.
        resp = app.invite(member, headers=app.bearer())
        assert resp[2] in (ok_body(), ok_body('Invite queued')), resp
        check(resp, 201, resp[2])
        [ids['hidden']] = [r['id'] for r in app.rows()
                           if r['email'] == member]
        for state, iid in sorted(ids.items()):
            assert invite_row(s, iid)['status'] == state, (state, iid)
            err = refused(s, 'invite', 'cancel', iid)
            assert err == ('referral-invitesctl: invite %s is %s, not '
                           'queued or failed: nothing was done\n'
                           % (iid, state)), err
            assert invite_row(s, iid)['status'] == state, (state, iid)
    harness.with_stack(run, conf={'hide_existing_users': 'yes'})


# == the do-not-invite list ===============================================

def test_admin_suppress_add_remove_list(stack):
    app = App(stack)
    q_addr = 'defer-' + unique()
    check(app.invite(q_addr), 201, ok_body('Invite queued'))
    addr = unique('optout')
    ok_quiet(stack, 'suppress', 'add', app.client, addr.upper())
    # A time window: the list is newest first, to the second.
    time.sleep(1.1)
    ok_quiet(stack, 'suppress', 'add', app.client, q_addr)
    sup = as_json(stack, 'suppress', 'list', app.client)
    assert all(list(x) == ['email', 'source', 'created_at'] for x in sup)
    assert [(x['email'], x['source']) for x in sup] == \
        [(q_addr, 'admin'), (addr, 'admin')], sup
    assert all(ISO.fullmatch(x['created_at']) for x in sup), sup
    # Adding it again changes nothing.
    ok_quiet(stack, 'suppress', 'add', app.client, addr)
    assert as_json(stack, 'suppress', 'list', app.client) == sup
    head, rows = table(ok(stack, 'suppress', 'list', app.client))
    assert head == ['email', 'source', 'created_at'] and \
        [r[0] for r in rows] == [q_addr, addr], rows
    # Its queued invite was canceled; new invites are refused.
    [r] = stack.sql("SELECT status FROM invites WHERE email = '%s'" % q_addr)
    assert r['status'] == 'canceled', r
    check(app.invite(addr), 409, err_body('This address does not accept '
                                          'invites'))
    other = App(stack)
    check(other.invite(addr), 201, ok_body())       # per app
    ok_quiet(stack, 'suppress', 'remove', app.client, addr)
    refused(stack, 'suppress', 'remove', app.client, addr)
    assert [x['email'] for x in as_json(stack, 'suppress', 'list',
                                        app.client)] == [q_addr]
    check(app.invite(addr), 201, ok_body())


# == the views, for sqlite3 ===============================================

def sqlite_box(stack, query):
    r = subprocess.run(as_service(['sqlite3', '-readonly', '-box', stack.db,
                                   query]), capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr == '', (query, r)
    return r.stdout


@harness.sqlite_only
def test_admin_views_readable_without_secrets(stack):
    app = App(stack)
    a1, a2, bad = unique(), unique(), 'reject-' + unique()
    check(app.invite(a1), 201, ok_body())
    check(app.invite(a2), 201, ok_body())
    assert app.invite(bad)[0] == 400
    for view, columns in VIEWS.items():
        r = subprocess.run(['sqlite3', '-json', stack.db,
                            'SELECT name FROM pragma_table_info(%r)' % view],
                           capture_output=True, text=True)
        names = [c['name'] for c in json.loads(r.stdout)]
        assert names == columns, (view, names)
        assert not [n for n in names if SECRET_COLUMN.search(n)], names
        out = sqlite_box(stack, 'SELECT * FROM %s' % view)
        lines = out.splitlines()
        assert lines[0].startswith('\u250c') and \
            lines[-1].startswith('\u2514'), out[:300]
        assert re.split(r'\s*\u2502\s*', lines[1].strip('\u2502 ')) == \
            columns, lines[1]
    out = sqlite_box(stack, "SELECT invite_id, app, invitee, status, created "
                            "FROM invites_overview WHERE app = '%s'"
                            % app.name)
    for addr in (a1, a2, bad):
        assert addr in out, (addr, out)
    ov = stack.sql("SELECT * FROM invites_overview WHERE app = '%s'"
                   % app.name)
    assert [r['created'] for r in ov] == sorted(
        (r['created'] for r in ov), reverse=True), 'not newest first'
    assert {(r['invitee'], r['inviter'], r['language'], r['status'])
            for r in ov} == {(a1, app.user_email, 'en', 'sent'),
                             (a2, app.user_email, 'en', 'sent'),
                             (bad, app.user_email, 'en', 'failed')}, ov
    [c] = stack.sql("SELECT * FROM invite_counts_by_app WHERE app_id = '%s'"
                    % app.client)
    assert c == {'app_id': app.client, 'app': app.name, 'invites': 3,
                 'sent': 2, 'failed': 1, 'accepted': 0}, c
    # An accepted invite counts for the inviter.
    [m] = stack.mail_for(a1)
    tok = re.search(r'[?&]token=([A-Za-z0-9_-]{65})',
                    m.get_body(('plain',)).get_content()).group(1)
    st, _, b = request(stack, 'POST', '/api/v1/referral-invites/accept',
                       app.headers(), {'token': tok})
    assert st == 200, (st, b)
    [c] = stack.sql("SELECT * FROM invite_counts_by_inviter "
                    "WHERE user_id = '%s'" % app.uid)
    assert c == {'user_id': app.uid, 'inviter': app.user_email,
                 'app': app.name, 'invites': 3, 'sent': 2, 'accepted': 1,
                 'conversion_percent': 33.3}, c
    [f] = stack.sql("SELECT * FROM delivery_failures WHERE invitee = '%s'"
                    % bad)
    assert (f['app'], f['status'], f['attempts']) == (app.name, 'failed', 1)
    assert f['last_reply'].startswith('550 5.1.1'), f
    # No hash, key or token in any view, whatever the column is called.
    hashes = [r['key_hash'] for r in stack.sql(
        'SELECT key_hash FROM api_keys')] + [r['accept_token_hash'] for r in
                                             stack.sql('SELECT accept_token_'
                                                       'hash FROM invites')]
    for view in VIEWS:
        text = json.dumps(stack.sql('SELECT * FROM %s' % view))
        for secret in hashes + SECRETS + [tok]:
            assert secret not in text, (view, secret[:10])


def test_admin_times_are_iso_8601_utc(stack):
    App(stack)
    low, high = T0 - 300, time.time() + 300
    for t in TABLES + tuple(VIEWS):
        for row in stack.sql('SELECT * FROM %s' % t):
            for col, v in row.items():
                if not (col.endswith('_at') or col in VIEW_TIMES.get(t, ())):
                    continue
                if v is None:
                    continue
                assert isinstance(v, str) and ISO.fullmatch(v), (t, col, v)
                top = high + 4000 if col == 'next_attempt_at' else high
                assert low <= iso_seconds(v) <= top, (t, col, v)
    for args in (('app', 'list'), ('invites',)):
        for row in as_json(stack, *args):
            for col, v in row.items():
                if col.endswith('_at') and v is not None:
                    assert ISO.fullmatch(v), (args, col, v)


# == reading with the CLI never blocks the service ========================

@harness.sqlite_only
def test_admin_cli_read_never_blocks_the_service(stack):
    """A read transaction held open in the sqlite3 CLI while ~100 invites
    arrive: every one is answered 201 "Invite sent" at once."""
    app = App(stack)
    reader = subprocess.Popen(as_service(['sqlite3', '-readonly', stack.db]),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in reader.stdout],
                     daemon=True).start()

    def ask(sql, n=1):
        reader.stdin.write(sql)
        reader.stdin.flush()
        try:
            return [int(lines.get(timeout=10)) for _ in range(n)]
        except queue.Empty:
            raise AssertionError('sqlite3 does not answer %r' % sql)
    try:
        n_view, n0 = ask('BEGIN;\nSELECT count(*) FROM invites_overview;\n'
                         'SELECT count(*) FROM invites;\n', 2)

        def one(i):
            t0 = time.monotonic()
            resp = app.invite(unique('load%d' % i))
            return resp, time.monotonic() - t0
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(one, range(100)))
        slow = [(r[0], round(t, 2)) for r, t in results if t > 3]
        assert not slow, 'answers beyond 3 s while a reader waits: %r' % slow
        bad = [r for r, _ in results if r[0] != 201]
        assert not bad, bad[:3]
        sent = sum(1 for r, _ in results if r[2] == ok_body())
        assert sent == 100, '%d of 100 "Invite sent"' % sent
        # The reader's transaction was open throughout: it still sees the
        # database as it was.
        assert ask('SELECT count(*) FROM invites;\n') == [n0]
        assert ask('COMMIT;\nSELECT count(*) FROM invites;\n') == [n0 + 100]
        assert n_view <= n0
    finally:
        reader.stdin.close()
        reader.wait(10)
    assert reader.returncode == 0, reader.stderr.read()
    rows = app.stack.sql("SELECT status, count(*) AS n FROM invites WHERE "
                         "app_id = '%s' GROUP BY status" % app.client)
    assert rows == [{'status': 'sent', 'n': 100}], rows


# == secrets: printed once, never stored ==================================

@harness.sqlite_only
def test_admin_secrets_never_stored_in_clear(stack):
    app = App(stack)
    j = as_json(stack, 'key', 'add', app.client, '--type', 'read')
    SECRETS.append(j['key'])
    secret = created(stack, 'app', 'jwt-key', app.client, '--alg', 'HS256')
    SECRETS.append(secret)
    app.token()
    assert len(SECRETS) > 10, SECRETS
    with open(os.path.join(os.path.dirname(stack.db), 'secret.key'),
              'rb') as f:
        server = f.read()
    dump = subprocess.run(['sqlite3', '-readonly', stack.db, '.dump'],
                          capture_output=True, check=True).stdout
    blobs = {'.dump': dump}
    for sfx in ('', '-wal'):
        if os.path.exists(stack.db + sfx):
            with open(stack.db + sfx, 'rb') as f:
                blobs['invites.db' + sfx] = f.read()
    # The right database: the hashes of the keys are in it.
    assert hashlib.sha256(j['key'].encode()).hexdigest().encode() in dump
    needles = [s.encode() for s in SECRETS]
    needles += [unb64url(s) for s in SECRETS if KEY.fullmatch(s)]
    needles += [server, server.hex().encode(), b64url(server).encode()]
    for name, blob in blobs.items():
        for n in needles:
            assert n not in blob, '%s holds a secret: %r' % (name, n[:12])
    # The tool's listings never show one either.
    out = ''.join(ok(stack, *a) for a in (
        ('app', 'list'), ('app', 'show', app.client),
        ('key', 'list', app.client), ('user', 'list', app.client),
        ('invites',)))
    for s in SECRETS:
        assert s not in out, s[:10]


# == the man pages' walk-through ===========================================

WALKTHROUGH = r'''
set -eu
ctl() { %(runas)s "$CTL" -c "$CONF" "$@"; }
post() {  # path, curl options: the body, then the status on a line
	path=$1; shift
	curl -sk -o - -w '\n%%{http_code}\n' "$@" "$BASE$path"
}
ctl init
APP=$(ctl app add --name "$NAME" \
    --invite-url https://shop.example.org/join \
    --sender 'Example Shop <invites@shop.example.org>' --language de)
KEY=$(ctl key add "$APP" --type write)
ALICE=$(ctl user add "$APP" --email "$ALICE_ADDR" --name Alice)
TOKEN=$(ctl token "$APP" "$ALICE")
echo "== IDS"
echo "APP $APP"
echo "KEY $KEY"
echo "TOKEN $TOKEN"
echo "ALICE $ALICE"
echo "== BY-KEY"
post /api/v1/users/$ALICE/referral-invites \
    -H "X-API-KEY: $KEY" -H 'X-API-KEY-TYPE: write' \
    -H "X-CLIENT-ID: $APP" -H 'Content-Type: application/json' \
    -H 'Idempotency-Key: 5b0a8f3e-invite-1' \
    -d "{\"email\":\"$FRIEND\",\"language\":\"de\"}"
echo "== BY-TOKEN"
post /api/v1/users/me/referral-invites -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' \
    -d "{\"email\":\"$BOUNCE\",\"language\":\"pt-br\"}"
echo "== FAILURES"
ctl invites --app "$APP" --status failed --since "$TODAY"
FAILED=$(ctl --json invites --app "$APP" --status failed |
    python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
echo "== SHOW"
ctl invite show "$FAILED"
echo "== SUPPRESSED"
ctl suppress list "$APP"
ctl suppress remove "$APP" "$BOUNCE"
ctl invite retry "$FAILED"
echo "== RETRIED"
ctl --json invite show "$FAILED"
echo "== BOX"
%(runas)s sqlite3 -readonly -box "$DB" \
    "SELECT invite_id, app, invitee, status, created
     FROM invites_overview LIMIT 10"
'''


@harness.sqlite_only
def test_admin_man_page_walkthrough(stack):
    """What referral-invitesctl(8) and referral-invites(7) tell an admin
    to type: an app, a key, a user, a token, invites by key and by token,
    the failures listed and one retried, invites_overview in sqlite3."""
    runas = 'runuser -u %s --' % harness.DAEMON_USER \
        if os.geteuid() == 0 else ''
    name = 'Example Shop %d' % time.time_ns()
    env = dict(os.environ, CONF=stack.conf, BASE=stack.base_url,
               DB=stack.db, CTL=harness.service_ctl(), NAME=name,
               ALICE_ADDR=unique('alice'), FRIEND=unique('friend'),
               BOUNCE='reject-' + unique(), TODAY=utc_today())
    # invites_overview is newest first, to the second: let this walk's
    # invites be the newest, so that "LIMIT 10" shows them (a fixed wait:
    # a time window).
    time.sleep(1.1)
    r = subprocess.run(['bash', '-c', WALKTHROUGH % {'runas': runas}],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0 and r.stderr == '', (r.returncode, r.stderr,
                                                  r.stdout)
    parts = re.split(r'^== (\S+)\n', r.stdout, flags=re.M)
    out = dict(zip(parts[1::2], parts[2::2]))
    assert list(out) == ['IDS', 'BY-KEY', 'BY-TOKEN', 'FAILURES', 'SHOW',
                         'SUPPRESSED', 'RETRIED', 'BOX'], r.stdout
    vals = dict(re.findall(r'^(APP|KEY|TOKEN|ALICE) (\S+)$', out['IDS'],
                           re.M))
    SECRETS.extend([vals['KEY'], vals['TOKEN']])
    assert UUID.fullmatch(vals['APP']) and KEY.fullmatch(vals['KEY']) and \
        UUID.fullmatch(vals['ALICE']), vals
    assert out['BY-KEY'] == ok_body().decode() + '\n201\n', out['BY-KEY']
    reply = '550 5.1.1 <%s>: Recipient address rejected' % env['BOUNCE']
    assert out['BY-TOKEN'] == err_body(reply).decode() + '\n400\n', \
        out['BY-TOKEN']
    # The failure listed, shown, its bounce lifted and retried.
    head, rows = table(out['FAILURES'])
    assert head == INVITES_COLUMNS and len(rows) == 1, out['FAILURES']
    failed = rows[0][0]
    assert UUID.fullmatch(failed) and rows[0][3] == env['BOUNCE'] and \
        rows[0][5] == 'failed', rows
    head, rows = table(out['SHOW'])
    assert head == SHOW_INVITE_COLUMNS and rows[0][0] == failed, out['SHOW']
    head, rows = table(out['SUPPRESSED'])
    assert rows == [[env['BOUNCE'], 'bounce', rows[0][2]]], out['SUPPRESSED']
    shown = json.loads(out['RETRIED'])
    assert (shown['id'], shown['email'], shown['language_requested']) == \
        (failed, env['BOUNCE'], 'pt-BR'), shown
    assert shown['status'] in ('queued', 'sending', 'failed'), shown
    box = out['BOX']
    assert box.startswith('\u250c') and 'invite_id' in box and \
        env['FRIEND'] in box and env['BOUNCE'] in box and name in box, box
    # What the service stored for that walk.
    rows = stack.sql("SELECT * FROM invites WHERE app_id = '%s'"
                     % vals['APP'])
    assert {(r['email'], r['language_requested'], r['inviter_id'])
            for r in rows} == {(env['FRIEND'], 'de', vals['ALICE']),
                               (env['BOUNCE'], 'pt-BR', vals['ALICE'])}, rows
    # Files the tool touched stay the service's.
    if os.geteuid() == 0:
        uid = pwd.getpwnam(harness.DAEMON_USER).pw_uid
        for sfx in ('', '-wal', '-shm'):
            assert os.stat(stack.db + sfx).st_uid == uid, sfx


def config_check(stack, extra):
    """referral-invitesd -t on the stack's configuration with extra lines
    after it: the exit status, stderr, and the path of the file."""
    path = stack.path('check.conf')
    with open(stack.conf) as f:
        text = f.read()
    with open(path, 'w') as f:
        f.write(text + extra)
    r = subprocess.run([harness.DAEMON, '-t', '-c', path],
                       capture_output=True, text=True, env=stack.daemon_env)
    return r.returncode, r.stderr, path, len(text.splitlines())


def test_config_check_refuses_unknown_keys_and_bad_values(stack):
    """-t accepts the running configuration, names the line of an unknown
    key, and holds delivery_wait to 0-20 s (with the writer's 10 s, an
    answer stays within nginx's 30 s fastcgi_read_timeout)."""
    ok = 'referral-invitesd: configuration OK\n'
    rc, err, path, n = config_check(stack, '')
    assert (rc, err) == (0, ok), err
    rc, err, path, n = config_check(stack, 'frobnicate = 1\n')
    assert (rc, err) == (1, 'referral-invitesd: %s:%d: unknown key '
                         '"frobnicate"\n' % (path, n + 1)), err
    for v in ('0', '20'):
        rc, err, path, n = config_check(stack, 'delivery_wait = %s\n' % v)
        assert (rc, err) == (0, ok), (v, err)
    for v in ('21', '-1', '3s', ''):
        rc, err, path, n = config_check(stack, 'delivery_wait = %s\n' % v)
        assert (rc, err) == (1, 'referral-invitesd: %s:%d: bad value for '
                             'delivery_wait: expected an integer from 0 to '
                             '20\n' % (path, n + 1)), (v, err)


URL_FORM = 'expected https://host[:port][/path]'
URL_HOST = ('expected a host name, IPv4 address or [IPv6 address] after '
            '//')
URL_PORT = 'expected a port from 1 to 65535 after the host'
URL_PATH = 'expected a path of letters, digits, %XX and -._~!$&()*+,;=:@/ only'
HELO = ('expected a host name such as mail.example.org or an address '
        'literal such as [192.0.2.1]')
HELO_LITERAL = ('expected an address literal such as [192.0.2.1] or '
                '[IPv6:2001:db8::1]')
LISTEN_FORM = 'expected an absolute path or host:port'
LISTEN_PORT = 'expected a port from 1 to 65535 after the last colon'
LISTEN_HOST = 'expected a host name or IP address before the port'
NAME = 'expected a name without white space or control characters'

# Each refused on the line after the stack's configuration, with its reason.
BAD_VALUES = [
    ('public_url', 'https://127.0.0.1:9443/a b', URL_PATH),
    ('public_url', 'https://', URL_HOST),
    ('public_url', 'https://h.example:99999', URL_PORT),
    ('public_url', 'https://h.example:0/', URL_PORT),
    ('public_url', 'https://h.example/a"b', URL_PATH),
    ('public_url', 'https://h.example/<b>', URL_PATH),
    ('public_url', 'https://h.example/a?b', URL_PATH),
    ('public_url', 'https://user@h.example', URL_HOST),
    ('public_url', 'ftp://h.example', URL_FORM),
    ('public_url', 'https://' + 'a' * 248, 'expected at most 255 bytes'),
    ('smtp_helo', '', HELO),
    ('smtp_helo', 'my host', HELO),
    ('smtp_helo', 'mail_1.example', HELO),
    ('smtp_helo', '127.0.0.1',
     'expected an address in brackets, such as [127.0.0.1]'),
    ('smtp_helo', '[127.0.0.256]', HELO_LITERAL),
    ('smtp_host', '', 'expected a host name or IPv4 address'),
    ('smtp_host', 'smtp.example.org:587',
     'expected a host name or IPv4 address'),
    ('listen', 'nohostport', LISTEN_FORM),
    ('listen', 'run/fcgi.sock', LISTEN_FORM),
    ('listen', '127.0.0.1:99999', LISTEN_PORT),
    ('listen', '127.0.0.1:0', LISTEN_PORT),
    ('listen', ':9000', LISTEN_HOST),
    ('listen', '/' + 'a' * 107,
     'expected a socket path of at most 107 bytes'),
    ('user', '', NAME),
    ('user', 'no body', NAME),
    ('socket_group', '', NAME),
    ('smtp_user', '', 'expected UTF-8 text without control characters'),
    ('smtp_user', 'a\x01b', 'expected UTF-8 text without control '
     'characters'),
    ('templates_dir', 'templates', 'expected an absolute path'),
    ('database', 'invites.db',
     'expected an absolute path or a postgresql:// URI'),
    # A PostgreSQL URI libpq cannot parse (issue 21); its password
    # never shown, not even where libpq quotes the bad part.
    ('database', 'postgresql://ri@db.example/ri?nosuch=1',
     'not a PostgreSQL connection URI: invalid URI query parameter: '
     '"nosuch"'),
    ('database', 'postgres://ri:s%zzcret@db.example/ri',
     'not a PostgreSQL connection URI: invalid percent-encoded token: '
     '"xxxxx"'),
    ('mail_from', 'invites at example.org', 'expected Name <addr> or addr'),
    ('default_language', 'en_US',
     'expected a language tag such as en or pt-BR'),
    ('workers', '0', 'expected an integer from 1 to 256'),
    ('workers', '257', 'expected an integer from 1 to 256'),
    ('smtp_port', '65536', 'expected an integer from 1 to 65535'),
    ('max_body', '63', 'expected an integer from 64 to 1048576'),
    ('socket_mode', '0888', 'expected 1 to 4 octal digits, such as 0660'),
    ('synchronous', 'off', 'expected full or normal'),
    ('smtp_starttls', 'yes', 'expected off, opportunistic or required'),
    ('log_level', 'verbose', 'expected debug, info, warning or error'),
]

# Forms the daemon takes (-t only reads them: nothing binds or connects).
GOOD_VALUES = [
    ('public_url', 'https://invites.example.org/'),
    ('public_url', 'http://127.0.0.1:8080/referral-invites'),
    ('public_url', 'https://[::1]:9443/a%20b/~x'),
    ('smtp_helo', 'mail.example.org'),
    ('smtp_helo', '[192.0.2.1]'),
    ('smtp_helo', '[IPv6:2001:db8::1]'),
    ('smtp_host', 'smtp.example.org'),
    ('listen', '127.0.0.1:9000'),
    ('listen', '::1:9000'),
    ('listen', '/' + 'a' * 106),
    ('smtp_user', 'invites@example.org'),
    ('workers', '256'),
    ('smtp_port', '1'),
]


def test_config_check_names_the_line_and_what_is_wrong(stack):
    """Every value is checked where it is read: -t exits 1 naming the file,
    the line, the key and what is wrong; the accepted forms pass."""
    ok = 'referral-invitesd: configuration OK\n'
    for key, value, why in BAD_VALUES:
        rc, err, path, n = config_check(stack, '# a comment\n%s = %s\n' %
                                        (key, value))
        assert (rc, err) == (1, 'referral-invitesd: %s:%d: bad value for '
                             '%s: %s\n' % (path, n + 2, key, why)), \
            (key, value, err)
    for key, value in GOOD_VALUES:
        rc, err, path, n = config_check(stack, '%s = %s\n' % (key, value))
        assert (rc, err) == (0, ok), (key, value, err)


def test_config_check_accounts_exist(stack):
    """user, and socket_group for a socket the daemon creates, must name
    accounts of this system; a TCP socket has no group."""
    ok = 'referral-invitesd: configuration OK\n'
    rc, err, path, n = config_check(stack, 'user = nosuchuser\n')
    assert (rc, err) == (1, 'referral-invitesd: %s: bad value for user: '
                         'no such user "nosuchuser"\n' % path), err
    rc, err, path, n = config_check(stack, 'socket_group = nosuchgroup\n')
    assert (rc, err) == (1, 'referral-invitesd: %s: bad value for '
                         'socket_group: no such group "nosuchgroup"\n' %
                         path), err
    rc, err, path, n = config_check(stack, 'socket_group = nosuchgroup\n'
                                    'listen = 127.0.0.1:9000\n')
    assert (rc, err) == (0, ok), err


def test_config_reload_refuses_a_bad_value(stack):
    """SIGHUP with a value -t refuses keeps the running configuration and
    logs the same reason; the mail still carries the old public_url, and
    the file put back reloads (its accounts are not refused by the
    confined supervisor)."""
    app = App(stack)        # referral-invitesctl refuses the file too
    with open(stack.conf) as f:
        text = f.read()
    n = len(text.splitlines())
    try:
        with open(stack.conf, 'w') as f:
            f.write(text + 'public_url = https://127.0.0.1:9443/a b\n')
        reload_and_wait(stack, 'reload refused, the running configuration '
                        'stays: %s:%d: bad value for public_url: %s' %
                        (stack.conf, n + 1, URL_PATH))
        addr = unique()
        check(app.invite(addr), 201, ok_body(), 'invite after refusal')
        m = stack.mail_for(addr)[0]
        lu = str(m['List-Unsubscribe']).strip()
        assert lu.startswith('<%s/api/v1/referral-invites/opt-out?token='
                             % stack.base_url), lu
    finally:
        with open(stack.conf, 'w') as f:
            f.write(text)
    refused_before = daemon_log(stack).count('reload refused')
    reload_and_wait(stack)
    assert daemon_log(stack).count('reload refused') == refused_before, \
        daemon_log(stack)[-2000:]
