# SPDX-License-Identifier: ISC
# Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
"""Every referral-invitesctl command on PostgreSQL, as on SQLite (issue 21,
step 2): a differential test.

Two fresh databases, a SQLite file and a private PostgreSQL 15
(tests/e2e/pg.py), each with its own config and state directory (where
init makes secret.key), get the same sequence of commands, every one of
referral-invitesctl(8) and its options, refusals included (unknown ids,
duplicates, bad values, usage errors), in the human form and with --json,
bounce with a real delivery report and the events of an app with a
webhook URL.  Each step runs on SQLite then at once on PostgreSQL; their
standard output, standard error and exit status must be the same byte for
byte.  Afterwards every table is read back with sqlite3 and psql and
compared.

What is random by nature differs between the two runs and is captured
where it is printed, never masked by pattern: client, user and key ids,
keys (and their hashes in api_keys), HS256 and webhook secrets, tokens and
event ids.  Each is taken from the step that prints it (see capture() and
the steps that call it), and every value captured is then replaced, in
each engine's output and rows, by the same name, such as <app1>.  Times
are captured the same way, by the step that writes them: each step that
writes starts just after a second begins (tick()), so that no two such
steps share a second and a listing's order by time never falls back to
random ids; a time within the seconds a step ran in (or three days
after, the events' give_up_at) is that step's, <tN> (<tN+3d>).  Times
outside every step's, such as those of the invites the test inserts, stay
as they are.  Invites come from no daemon (it refuses PostgreSQL): the
test inserts the same rows into both with each CLI.
"""

import calendar
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import harness
import pg
import test_bounce

# Its own PostgreSQL beside the stack's SQLite: run once (run.py).
ENGINES = ('sqlite',)

BOUNCE = test_bounce.BOUNCE
HOOK_URL = 'https://hooks.example/in'
# Every table, parents first; the caches too (the triggers move them).
TABLES = ('apps', 'api_keys', 'users', 'invites', 'invite_resends',
          'suppressions', 'idempotency_keys', 'bounces', 'events',
          'cache_generation', 'invite_counts')
# Where SQLite's rowid is a column in PostgreSQL (src/pg_schema.c).
ROWID = ('invites', 'invite_resends', 'events')
ISO_TIME = re.compile(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ')
RETRY = 3 * 86400       # give_up_at: three days after (src/ctl_hook.c)
# The seconds each step that writes ran in: [(first, last)], disjoint.
WINDOWS = []
# Users with ids of the test's own (user add --id).
U1 = '0190a1b2-c3d4-7e5f-8a9b-000000000001'
U2 = '0190a1b2-c3d4-7e5f-8a9b-000000000002'
NO_SUCH = '0190a1b2-c3d4-7e5f-8a9b-0000000000ff'
NO_EVENT = 'msg_' + '0' * 32
# Invites inserted by the test: (id, status, address).
INVITES = (('0190a1b2-c3d4-7e5f-8a9b-100000000001', 'queued',
            'queued@example.net'),
           ('0190a1b2-c3d4-7e5f-8a9b-100000000002', 'failed',
            'failed@example.net'),
           ('0190a1b2-c3d4-7e5f-8a9b-100000000003', 'sent',
            'bounced@example.net'),
           ('0190a1b2-c3d4-7e5f-8a9b-100000000004', 'sent',
            'complainer@example.net'),
           ('0190a1b2-c3d4-7e5f-8a9b-100000000005', 'queued',
            'blocked@example.net'))


class Engine:
    """One database, its config and its state directory; what it printed
    goes through its own substitutions."""

    def __init__(self, name, top, database=None):
        self.name = name
        self.dir = os.path.join(top, name)
        os.makedirs(self.dir)
        self.database = database or os.path.join(self.dir, 'invites.db')
        self.conf = os.path.join(self.dir, 'referral-invites.conf')
        with open(self.conf, 'w') as f:
            f.write('database = %s\nstate_directory = %s\n'
                    'mail_from = %s\nbounce_address = %s\n' % (
                        self.database, self.dir, harness.MAIL_FROM, BOUNCE))
        self.values = {}        # name -> this engine's value

    def run(self, argv, stdin=b''):
        r = subprocess.run([harness.CTL, '-c', self.conf] + argv,
                           input=stdin, capture_output=True, timeout=60,
                           env=dict(os.environ, ORIGINAL_RECIPIENT='',
                                    RECIPIENT=''))
        return r.returncode, r.stdout, r.stderr

    def fill(self, arg):
        """arg with {name} of captured values made this engine's."""
        for name, value in self.values.items():
            arg = arg.replace('{%s}' % name, value)
        return arg

    def subst(self, data):
        """data with every captured value replaced by <name>, longest
        first (no value contains another here, but a JSON string may hold
        the whole of one), and every time a step wrote by its <tN>."""
        text = data.decode('utf-8') if isinstance(data, bytes) else data
        for name, value in sorted(self.values.items(),
                                  key=lambda kv: -len(kv[1])):
            text = text.replace(value, '<%s>' % name)
        return ISO_TIME.sub(step_time, text)

    def secret(self):
        with open(os.path.join(self.dir, 'secret.key'), 'rb') as f:
            return f.read()

    def sql(self, query):
        """(header, rows) of the query on this engine's CLI, as strings,
        NULL as pg.NULL."""
        if self.name == 'postgresql':
            return PG.psql(query)
        r = subprocess.run(['sqlite3', '-csv', '-header', '-nullvalue',
                            pg.NULL, '-cmd', '.timeout 10000',
                            self.database, query],
                           capture_output=True, text=True)
        assert r.returncode == 0, (query, r.stderr)
        rows = list(pg.csv.reader(pg.io.StringIO(r.stdout)))
        return (rows[0], rows[1:]) if rows else ([], [])

    def write(self, query):
        """A statement of the test's own, with this engine's CLI."""
        if self.name == 'postgresql':
            PG.psql(query)
            return
        r = subprocess.run(['sqlite3', '-cmd', '.timeout 10000',
                            self.database, query],
                           capture_output=True, text=True)
        assert r.returncode == 0, (query, r.stderr)


class Pair:
    """The module's "stack": both engines, the PostgreSQL server."""

    def __init__(self):
        self.top = tempfile.mkdtemp(prefix='ri-pgctl-')
        self.pg = pg.Postgres().start()
        self.sqlite = Engine('sqlite', self.top)
        self.postgresql = Engine('postgresql', self.top, self.pg.uri())
        self.engines = (self.sqlite, self.postgresql)
        self.log = []           # what ran: the tail is shown on a failure

    def logs(self, lines=30):
        return '\n'.join(self.log[-lines:])

    def stop(self, keep=False):
        self.pg.stop(keep)
        if keep or os.environ.get('RI_E2E_KEEP') == '1':
            print('kept %s' % self.top, flush=True)
        else:
            shutil.rmtree(self.top, ignore_errors=True)


PG = None


def make_stack():
    global PG
    pair = Pair()
    PG = pair.pg
    return pair


# -- running a step on both ---------------------------------------------------

def tick():
    """Sleep to just after the next second begins: the step that follows
    writes in seconds of its own."""
    now = time.time()
    time.sleep(1 - (now - int(now)) + 0.02)
    return int(time.time())


def step_time(m):
    """A time of the output (a match of ISO_TIME) as the step that wrote
    it, <tN> or <tN+3d>, or as it is."""
    t = calendar.timegm(time.strptime(m.group(0), '%Y-%m-%dT%H:%M:%SZ'))
    for n, (first, last) in enumerate(WINDOWS):
        if first <= t <= last:
            return '<t%d>' % n
        if first <= t - RETRY <= last:
            return '<t%d+3d>' % n
    return m.group(0)


def on_both(pair, argv, stdin, writes, pick=None):
    """argv on both engines, SQLite first; what each printed, raw, and
    substituted: ([(rc, out, err)], [(rc, out', err')]).  pick, given,
    takes from each engine's own output the values it captures."""
    first = tick() if writes else None
    raw, got = [], []
    for e in pair.engines:
        data = stdin(e) if callable(stdin) else (stdin or b'')
        rc, out, err = e.run([e.fill(a) for a in argv], data)
        if pick is not None:
            assert rc == 0, (e.name, argv, err)
            e.values.update(pick(out))
        # The same report on both would compare equal: none at all.
        assert b'runtime error:' not in err and b'Sanitizer' not in err, (
            e.name, argv, err)
        raw.append((rc, out, err))
    if first is not None:
        WINDOWS.append((first, int(time.time())))
    for e, (rc, out, err) in zip(pair.engines, raw):
        got.append((rc, e.subst(out), e.subst(err)))
    pair.log.append('%s -> %r' % (' '.join(argv), got[0]))
    assert got[0] == got[1], (argv, got[0], got[1])
    return raw, got


def same(pair, argv, stdin=None, writes=True, status=None):
    """argv on both engines: exit status, standard output and standard
    error, substituted, the same; status, when given, asserted too.  stdin
    may be a function of the engine.  Returns SQLite's raw result."""
    raw, got = on_both(pair, argv, stdin, writes)
    if status is not None:
        assert got[0][0] == status, (argv, got[0])
    return raw[0]


def capture(pair, argv, name, pick=lambda out: out.decode().strip(),
            writes=True):
    """same(), after the step takes from each engine's own output the
    value it printed (pick) as name (or the names pick returns); the
    comparison then names it."""
    def values(out):
        v = pick(out)
        return {name: v} if isinstance(v, str) else v
    raw, _ = on_both(pair, argv, None, writes, values)
    names = values(raw[0][1])
    # The values differ between engines (or the substitution hid a bug).
    assert len({tuple(e.values[k] for k in names) for e in
                pair.engines}) == 2, (name, names)
    return raw[0][1]


def refused(pair, argv, line, status=1):
    """Refused on both alike, with exactly this line on standard error."""
    rc, out, err = same(pair, argv, writes=False)
    assert (rc, out) == (status, b''), (argv, rc, out, err)
    if status == 1:
        want = 'referral-invitesctl: %s\n' % pair.sqlite.fill(line)
        assert err == want.encode(), (argv, err, want)


def key_values(prefix):
    """pick() of key add --json: the key id, the key and its hash."""
    def pick(out):
        k = json.loads(out)
        return {prefix + 'id': k['id'], prefix: k['key'],
                prefix + 'hash': hashlib.sha256(k['key'].encode())
                .hexdigest()}
    return pick


# -- the tests -------------------------------------------------------------------

def test_pg_ctl_init(pair):
    """init: PostgreSQL says what it did (SQLite prints nothing); both make
    secret.key, mode 0600, and leave it alone when run again."""
    for e in pair.engines:
        rc, out, err = e.run(['init'])
        assert (rc, err) == (0, b''), (e.name, err)
        want = b'' if e.name == 'sqlite' else (
            '%s: schema created (version 2)\n' %
            PG.uri(password='xxxxx')).encode()
        assert out == want, (e.name, out)
        st = os.stat(os.path.join(e.dir, 'secret.key'))
        assert (st.st_mode & 0o777, st.st_size) == (0o600, 32), st
    first = [e.secret() for e in pair.engines]
    assert first[0] != first[1]
    for e in pair.engines:
        assert e.run(['init'])[0] == 0
    assert [e.secret() for e in pair.engines] == first


def test_pg_ctl_apps(pair):
    capture(pair, ['app', 'add', '--name', 'Shop', '--invite-url',
                   'https://shop.example/join'], 'app1')
    capture(pair, ['--json', 'app', 'add', '--name', 'Caf\u00e9 "Q"',
                   '--invite-url', 'https://cafe.example/join', '--sender',
                   'Caf\u00e9 <hello@cafe.example>', '--language', 'fr-CA'],
            'app2', pick=lambda out: json.loads(out)['clientId'])
    same(pair, ['app', 'list'], writes=False, status=0)
    same(pair, ['--json', 'app', 'list'], writes=False, status=0)
    same(pair, ['app', 'show', '{app2}'], writes=False, status=0)
    same(pair, ['app', 'set', '{app1}', '--limit-per-hour', '5',
                '--limit-per-day', '50', '--limit-per-minute', '60',
                '--cooldown', '3600', '--accept-ttl', '86400',
                '--language', 'de', '--redirect-allow',
                'https://shop.example/a/,https://shop.example/b/'], status=0)
    same(pair, ['--json', 'app', 'show', '{app1}'], writes=False, status=0)
    same(pair, ['app', 'set', '{app1}', '--redirect-allow', ''], status=0)
    same(pair, ['app', 'show', '{app1}'], writes=False, status=0)
    refused(pair, ['app', 'show', NO_SUCH], '%s: no such app' % NO_SUCH)
    refused(pair, ['app', 'show', 'nope'], 'nope: not a client id')
    refused(pair, ['app', 'add', '--name', 'X', '--invite-url', 'ftp://x'],
            'invite URL must be an http(s) URL')
    refused(pair, ['app', 'set', '{app1}', '--cooldown', 'soon'],
            'soon: not a number for --cooldown')
    refused(pair, ['app', 'set', '{app1}', '--language', 'xx_YY!'],
            'xx_YY!: not a language tag')
    refused(pair, ['app', 'set', '{app1}'], None, status=2)
    refused(pair, ['app', 'jwt-key', '{app1}', '--alg', 'none'], None,
            status=2)
    capture(pair, ['app', 'jwt-key', '{app2}', '--alg', 'HS256',
                   '--issuer', 'https://cafe.example'], 'hs256')
    capture(pair, ['--json', 'app', 'jwt-key', '{app2}', '--alg', 'HS256'],
            'hs256b', pick=lambda out: json.loads(out)['secret'])
    same(pair, ['--json', 'app', 'show', '{app2}'], writes=False, status=0)


def test_pg_ctl_keys(pair):
    capture(pair, ['--json', 'key', 'add', '{app1}', '--type', 'write'],
            'key1', pick=key_values('key1'))
    capture(pair, ['--json', 'key', 'add', '{app1}', '--type', 'read'],
            'key2', pick=key_values('key2'))
    same(pair, ['key', 'list', '{app1}'], writes=False, status=0)
    same(pair, ['key', 'revoke', '{key1id}'], status=0)
    same(pair, ['--json', 'key', 'list', '{app1}'], writes=False, status=0)
    refused(pair, ['key', 'revoke', '{key1id}'],
            '{key1id}: no such active key')
    refused(pair, ['key', 'add', '{app1}', '--type', 'admin'], None,
            status=2)


def test_pg_ctl_users_and_tokens(pair):
    same(pair, ['user', 'add', '{app1}', '--email', 'Alice@Example.COM',
                '--name', 'Alice', '--id', U1], status=0)
    same(pair, ['--json', 'user', 'add', '{app1}', '--email',
                'bob@example.com', '--id', U2], status=0)
    capture(pair, ['user', 'add', '{app2}', '--email', 'carol@example.com'],
            'user3')
    refused(pair, ['user', 'add', '{app1}', '--email', 'x@example.com',
                   '--id', U1], 'user %s exists' % U1)
    refused(pair, ['user', 'add', '{app1}', '--email', 'alice@example.com'],
            'refused by the database: UNIQUE constraint failed: '
            'users.app_id, users.email')
    refused(pair, ['user', 'add', '{app1}', '--email', 'not-an-address'],
            'not-an-address: not a valid address')
    same(pair, ['user', 'disable', U2], status=0)
    refused(pair, ['user', 'enable', NO_SUCH], '%s: no such user' % NO_SUCH)
    same(pair, ['user', 'list', '{app1}'], writes=False, status=0)
    same(pair, ['--json', 'user', 'list', '{app1}'], writes=False, status=0)
    capture(pair, ['token', '{app1}', U1, '--ttl', '600'], 'token1')
    capture(pair, ['--json', 'token', '{app2}', '{user3}'], 'token2',
            pick=lambda out: json.loads(out)['token'])
    refused(pair, ['token', '{app1}', U2], '%s: the user is disabled' % U2)
    refused(pair, ['token', '{app2}', U1],
            '%s: no such user in app {app2}' % U1)
    refused(pair, ['token', '{app1}', U1, '--ttl', '0'],
            '0: not a TTL in seconds')
    same(pair, ['user', 'enable', U2], status=0)


def insert_invites(pair):
    """INVITES for app1, from U1, each with its own time."""
    for i, (iid, status, addr) in enumerate(INVITES):
        t = '2026-11-2%dT09:30:00Z' % (i + 1)
        for e in pair.engines:
            e.write("INSERT INTO invites (id, app_id, inviter_id, email, "
                    "email_normalized, language_requested, "
                    "language_resolved, status, attempts, last_reply, "
                    "accept_token_hash, next_attempt_at, created_at, "
                    "updated_at, sent_at, metadata) VALUES ('%s', '%s', "
                    "'%s', '%s', '%s', 'en', 'en', '%s', %d, %s, '%s', "
                    "'%s', '%s', '%s', %s, %s)" % (
                        iid, e.values['app1'], U1, addr, addr, status,
                        i, "'550 5.1.1 no'" if status == 'failed' else
                        'NULL', hashlib.sha256(iid.encode()).hexdigest(),
                        t, t, t, "'%s'" % t if status == 'sent' else
                        'NULL', "'{\"k\":\"v\\u00e9\"}'" if i == 0 else
                        'NULL'))


def test_pg_ctl_invites_and_suppressions(pair):
    insert_invites(pair)
    q, f, s, c, b = (x[0] for x in INVITES)
    same(pair, ['invites'], writes=False, status=0)
    same(pair, ['--json', 'invites', '--app', '{app1}', '--status', 'sent'],
         writes=False, status=0)
    same(pair, ['invites', '--since', '2026-11-23'], writes=False, status=0)
    same(pair, ['--json', 'invites', '--since', '2026-11-24T00:00:00Z'],
         writes=False, status=0)
    refused(pair, ['invites', '--status', 'lost'],
            'lost: --status takes queued, sending, sent, failed, canceled, '
            'revoked or hidden')
    refused(pair, ['invites', '--since', '2026-02-31'],
            '2026-02-31: not a valid date')
    same(pair, ['invite', 'show', q], writes=False, status=0)
    same(pair, ['--json', 'invite', 'show', f], writes=False, status=0)
    refused(pair, ['invite', 'show', NO_SUCH], '%s: no such invite' % NO_SUCH)
    refused(pair, ['invite', 'show', 'x'], 'x: not an invite id')
    same(pair, ['invite', 'retry', f], status=0)
    refused(pair, ['invite', 'retry', s], 'invite %s is not failed or '
            'queued' % s)
    same(pair, ['invite', 'cancel', q], status=0)
    refused(pair, ['invite', 'cancel', q], 'invite %s is canceled, not '
            'queued or failed: nothing was done' % q)
    same(pair, ['suppress', 'add', '{app1}', 'Blocked@Example.NET'],
         status=0)
    same(pair, ['suppress', 'add', '{app1}', 'blocked@example.net'],
         status=0)
    same(pair, ['suppress', 'add', '{app1}', 'other@example.net'], status=0)
    refused(pair, ['invite', 'retry', b], 'invite %s: the address is on the '
            'do-not-invite list' % b)
    same(pair, ['suppress', 'list', '{app1}'], writes=False, status=0)
    same(pair, ['suppress', 'remove', '{app1}', 'other@example.net'],
         status=0)
    refused(pair, ['suppress', 'remove', '{app1}', 'other@example.net'],
            'other@example.net is not on the list')
    refused(pair, ['suppress', 'add', '{app1}', 'bad'],
            'bad: not a valid address')
    same(pair, ['--json', 'suppress', 'list', '{app1}'], writes=False,
         status=0)
    same(pair, ['--json', 'invites'], writes=False, status=0)


def test_pg_ctl_webhook_bounce_and_events(pair):
    refused(pair, ['app', 'set', '{app1}', '--webhook-url',
                   'http://hooks.example/in'],
            'http://hooks.example/in: --webhook-url: ' + webhook_why(pair))
    capture(pair, ['app', 'set', '{app1}', '--webhook-url', HOOK_URL],
            'hook1')
    same(pair, ['app', 'set', '{app1}', '--webhook-url', HOOK_URL + '2'],
         status=0)
    capture(pair, ['--json', 'app', 'webhook-secret', '{app1}'], 'hook2',
            pick=lambda out: json.loads(out)['webhookSecret'])
    s, c = INVITES[2][0], INVITES[3][0]

    def failed(e):
        return report(e, 'postfix-failed.eml', s, INVITES[2][2])

    def complaint(e):
        return report(e, 'arf-abuse.eml', c, INVITES[3][2])

    def delayed(e):
        return report(e, 'postfix-delayed.eml', c, INVITES[3][2])

    assert same(pair, ['bounce'], stdin=failed, status=0)[1].startswith(
        b'failed: invite %s, ' % s.encode())
    same(pair, ['bounce', '--recipient', 'nobody@return.test'],
         stdin=complaint, status=0)
    same(pair, ['bounce'], stdin=delayed, status=0)
    # A tag signed with the other engine's secret: forged here.
    same(pair, ['bounce'], stdin=lambda e: report(
        other(pair, e), 'postfix-failed.eml', s, INVITES[2][2]), status=0)
    same(pair, ['bounce'], stdin=b'not a report\n', status=0)
    same(pair, ['suppress', 'list', '{app1}'], writes=False, status=0)
    same(pair, ['invite', 'show', s], writes=False, status=0)
    # The event of the bounce (an app with a webhook URL): its id random.
    capture(pair, ['--json', 'events'], 'event1', writes=False,
            pick=lambda out: {'event%d' % (i + 1): ev['id'] for i, ev in
                              enumerate(json.loads(out))})
    same(pair, ['events'], writes=False, status=0)
    same(pair, ['events', '--app', '{app1}', '--status', 'pending'],
         writes=False, status=0)
    same(pair, ['--json', 'event', 'show', '{event1}'], writes=False,
         status=0)
    same(pair, ['event', 'retry', '{event1}'], status=0)
    same(pair, ['event', 'show', '{event1}'], writes=False, status=0)
    refused(pair, ['event', 'show', NO_EVENT], '%s: no such event' % NO_EVENT)
    refused(pair, ['event', 'retry', 'msg_x'], 'msg_x: not an event id')
    refused(pair, ['events', '--status', 'lost'],
            'lost: --status takes pending, delivered or failed')
    same(pair, ['app', 'set', '{app1}', '--webhook-url', ''], status=0)


def test_pg_ctl_metrics_and_usage(pair):
    """metrics with no daemon running: the database's counts, the pool's
    counters 0, alike; usage errors alike; migrate only from SQLite."""
    # None queued: the age of the oldest would be the second's.
    same(pair, ['invite', 'cancel', INVITES[1][0]], status=0)
    rc, out, _ = same(pair, ['metrics'], writes=False, status=0)
    assert b'referral_invites_invites{status="failed"} 1\n' in out, out
    assert b'referral_invites_suppressions{source="bounce"} 1\n' in out, out
    refused(pair, ['nonsense'], None, status=2)
    refused(pair, ['app'], None, status=2)
    refused(pair, ['app', 'show'], None, status=2)
    refused(pair, ['--json', 'invites', '--bogus', 'x'], None, status=2)
    rc, out, err = pair.postgresql.run(['migrate', '--to', PG.uri()])
    assert (rc, out, err) == (1, b'', (
        'referral-invitesctl: %s: migrate copies a SQLite database (-d '
        'PATH, or the config\'s database) to --to URI\n' %
        PG.uri(password='xxxxx')).encode()), (rc, out, err)


def test_pg_ctl_every_table_the_same(pair):
    """Every table read back with sqlite3 and psql: the same rows, the
    captured values named; events, bounces and the caches included."""
    for t in TABLES:
        seen = []
        for e in pair.engines:
            query = 'SELECT *%s FROM %s' % (
                ', rowid' if t in ROWID and e.name == 'sqlite' else '', t)
            h, rows = e.sql(query)
            if not h:
                # sqlite3 prints no header without a row: its columns.
                h = [r[0] for r in e.sql(
                    "SELECT name FROM pragma_table_info('%s')" % t)[1]]
                h += ['rowid'] if t in ROWID else []
            seen.append((h, sorted([e.subst(v) for v in r] for r in rows)))
        assert seen[0] == seen[1], (t, seen[0], seen[1])
    # Not vacuous: the rows the steps made are there.
    h, rows = pair.postgresql.sql('SELECT verdict FROM bounces ORDER BY id')
    assert rows == [['failed'], ['complaint'], ['delayed'], ['ignored'],
                    ['ignored']], rows
    h, rows = pair.postgresql.sql('SELECT count(*) FROM events')
    assert rows == [['1']], rows


# -- helpers of the bounce steps ------------------------------------------------

def webhook_why(pair):
    """What webhook_url_check says of http without webhook_allow_http,
    read from SQLite (the comparison holds PostgreSQL to it)."""
    rc, out, err = pair.sqlite.run(['app', 'set', pair.sqlite.values['app1'],
                                    '--webhook-url',
                                    'http://hooks.example/in'])
    prefix = b'referral-invitesctl: http://hooks.example/in: --webhook-url: '
    assert rc == 1 and err.startswith(prefix), err
    return err[len(prefix):-1].decode()


def other(pair, e):
    return pair.postgresql if e is pair.sqlite else pair.sqlite


def report(e, name, invite_id, addr):
    """The corpus's report for an invite, its tag signed with e's secret
    (test_bounce.tag_of's computation)."""
    mac = hmac.new(e.secret(), b'bounce\n' + invite_id.encode() + b'\n',
                   hashlib.sha256).hexdigest()
    tag = invite_id.replace('-', '') + mac[:16]
    return test_bounce.report(name, tag, addr)
