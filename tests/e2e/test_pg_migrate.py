# SPDX-License-Identifier: ISC
# Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
"""PostgreSQL, its first step (issue 21): the schema, init and migrate.

The stack's SQLite database is filled through the real service with
every kind of row (apps with and without a webhook URL, read, write and
revoked keys, active and disabled users, invites sent, queued, failed,
canceled, revoked, accepted, resent, hidden and with metadata, the
do-not-invite list from an admin, an opt-out and a bounce, an
Idempotency-Key's answer, a bounce report, webhook events delivered to a
receiver here).  "referral-invitesctl migrate --to URI" copies it into a
private PostgreSQL 15 (tests/e2e/pg.py); every table and every view is
then read back with the sqlite3 CLI and with psql and compared.  Then:
migrate again copies nothing, init again changes nothing (pg_dump),
foreign tables, malformed URIs, an unreachable server and a wrong
password are refused with one line and exit 1, the password of a URI
never appears in anything printed, and a copy served by the daemon on
PostgreSQL answers as the SQLite one did.  All functions are named test_pg_* ("-k test_pg").
"""

import json
import os
import re
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import harness
from harness import App, check, ok_body, unique, wait_for
import pg
import test_bounce
from test_hostile import accept_token
from test_life import resend, revoke
from test_limits import check_429
from test_optout import unsubscribe_url
from test_webhook import Receiver

# Its own PostgreSQL beside the stack's SQLite: run once (run.py).
ENGINES = ('sqlite',)

RECEIVER_PORT = harness.free_port()
HOOK_URL = 'http://127.0.0.1:%d/hooks' % RECEIVER_PORT
ACCEPT = '/api/v1/referral-invites/accept'
PREFIXES = 'https://app.example/welcome/'
# The tables migrate copies, parents first, as it prints them; the
# caches (cache_generation, invite_counts) are not copied.
COPIED = ('apps', 'api_keys', 'users', 'invites', 'invite_resends',
          'suppressions', 'idempotency_keys', 'bounces', 'events')
CACHES = ('cache_generation', 'invite_counts')
# Where SQLite's rowid is a column in PostgreSQL (src/pg_schema.c).
ROWID = ('invites', 'invite_resends', 'events')
VIEWS = ('invites_overview', 'invite_counts_by_app',
         'invite_counts_by_inviter', 'delivery_failures')
# Everything referral-invitesctl printed here: no password in any of it.
PRINTED = []


class PgStack(harness.Stack):
    """The module's stack, its webhook receiver and its PostgreSQL,
    stopped together."""

    def stop(self, keep=False):
        super().stop(keep)
        self.receiver.stop()
        self.pg.stop(keep)


def make_stack():
    """Its own nginx flood guard out of the way, as harness.fast_stack."""
    s = PgStack(conf={'webhook_ports': str(RECEIVER_PORT),
                      'webhook_allow_http': 'yes',
                      'bounce_address': test_bounce.BOUNCE,
                      'hide_existing_users': 'yes',
                      'resend_interval': '1'})
    # Also on 127.0.0.1: the daemon serves it over TCP (then_serve).
    s.receiver, s.pg = Receiver(RECEIVER_PORT), pg.Postgres(
        tcp_port=harness.free_port())
    try:
        s.receiver.start()
        s.pg.start()
        saved, harness.TEST_RATE = harness.TEST_RATE, '100000r/s'
        try:
            return s.start()
        finally:
            harness.TEST_RATE = saved
    except BaseException:
        s.receiver.stop()
        s.pg.stop()
        raise


# -- running the tool --------------------------------------------------------

def ctl(stack, *args, conf=None):
    """referral-invitesctl -c CONF ARGS, or with -d URI a config of the
    URI alone, whose state_directory (init makes secret.key there) is the
    stack's pg-node/: -d would name the default, /var/lib/referral-invites,
    which is not the test's."""
    if args[0] == '-d':
        conf = pg_conf(stack, args[1])
        args = args[2:]
    argv = [harness.CTL, '-c', conf or stack.conf] + list(args)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    PRINTED.append(r.stdout + r.stderr)
    assert_no_password(r.stdout + r.stderr)
    return r


def pg_conf(stack, uri, name='pg-d.conf'):
    """A config naming uri, its state directory the stack's pg-node/."""
    node = stack.path('pg-node')
    os.makedirs(node, exist_ok=True)
    conf = stack.path(name)
    with open(conf, 'w') as f:
        f.write('database = %s\nstate_directory = %s\n' % (uri, node))
    return conf


def refused(r, reason):
    """Exit 1, nothing on standard output, one line naming reason."""
    assert (r.returncode, r.stdout) == (1, ''), r
    assert r.stderr.count('\n') == 1 and r.stderr.startswith(
        'referral-invitesctl: '), r.stderr
    assert reason in r.stderr, (reason, r.stderr)


def assert_no_password(text):
    for form in (pg.PASSWORD, pg.urllib.parse.quote(pg.PASSWORD, safe=''),
                 'pw-S3cret'):
        assert form not in text, text


def shown(stack, **kw):
    """A URI as the tool prints it: the password replaced."""
    return stack.pg.uri(password='xxxxx', **kw)


# -- reading both databases --------------------------------------------------

def sqlite_rows(stack, sql, db=None):
    """(header, rows) of the sqlite3 CLI's CSV output, NULL as pg.NULL."""
    r = subprocess.run(['sqlite3', '-csv', '-header', '-nullvalue', pg.NULL,
                        '-cmd', '.timeout 10000', db or stack.db, sql],
                       capture_output=True, text=True)
    assert r.returncode == 0, (sql, r.stderr)
    rows = list(pg.csv.reader(pg.io.StringIO(r.stdout)))
    return rows[0], rows[1:]


def both(stack, sqlite_sql, pg_sql=None):
    """The same query read with each CLI: ((header, sorted rows), ...).
    Rows sorted, since row order is the engine's where no ORDER BY says
    it (and ties in one are ordered by each its own way).  No value is
    normalised: both print integers in decimal and text as stored, SQLite's
    real and PostgreSQL's numeric of conversion_percent alike (50.0), and
    NULL as the one marker each is given (-nullvalue, -P null)."""
    h1, r1 = sqlite_rows(stack, sqlite_sql)
    h2, r2 = stack.pg.psql(pg_sql or sqlite_sql)
    return (h1, sorted(r1)), (h2, sorted(r2))


def table_query(t):
    """Every column of t: SQLite's rowid too where PostgreSQL has it."""
    return 'SELECT *%s FROM %s' % (', rowid' if t in ROWID else '', t)


def pg_snapshot(stack):
    """All of the PostgreSQL database: schema and rows (pg_dump)."""
    r = subprocess.run([pg.bin_path('pg_dump'), '--no-owner', '-d',
                        stack.pg.uri()], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # Less pg_dump's random \restrict key (15.14 and later).
    return [line for line in r.stdout.splitlines()
            if not line.startswith(('\\restrict ', '\\unrestrict '))]


def count(stack, table):
    return stack.sql('SELECT count(*) AS n FROM %s' % table)[0]['n']


# -- filling SQLite through the service --------------------------------------

def invite(app, addr, status=201, body=None, headers=None):
    b = {'email': addr, 'language': 'en'}
    b.update(body or {})
    r = app.invite(headers=headers, body=b)
    assert r[0] == status, r
    return r


def row_of(app, addr):
    [r] = [x for x in app.rows() if x['email_normalized'] == addr.lower()]
    return r


def fill(stack):
    """Every kind of row, through the service and the tool."""
    hooked = App(stack)
    hooked.ctl('app', 'set', hooked.client, '--webhook-url', HOOK_URL,
               '--redirect-allow', PREFIXES)
    plain = App(stack, language='de', sender='Plain <plain@test.example>')
    plain.ctl('key', 'add', plain.client, '--type', 'read')
    before = key_ids(plain)
    plain.ctl('key', 'add', plain.client, '--type', 'write')
    [kid] = key_ids(plain) - before
    plain.ctl('key', 'revoke', kid)
    off = plain.add_user(unique('disabled'), 'Dis Abled')
    plain.ctl('user', 'disable', off)
    for app in (hooked, plain):
        sent = unique('sent')
        check(app.invite(sent), 201, ok_body('Invite sent'))
        queued = unique('defer-queued')
        check(app.invite(queued), 201, ok_body('Invite queued'))
        invite(app, unique('reject-failed'), 400)
        cancel = unique('defer-cancel')
        check(app.invite(cancel), 201, ok_body('Invite queued'))
        app.ctl('invite', 'cancel', row_of(app, cancel)['id'])
        # Revoked, accepted, resent.
        rev = unique('revoked')
        check(app.invite(rev), 201, ok_body('Invite sent'))
        assert revoke(app, row_of(app, rev)['id'])[0] == 200
        acc = unique('accepted')
        invite(app, acc, body={'metadata': {'plan': 'pro', 'q': '"x"\n'},
                               'expiresInDays': 3} if app is hooked else {})
        tok = accept_token(stack, acc)
        r = stack.request('POST', ACCEPT, app.headers(), {'token': tok})
        assert r[0] == 200, r
        again = unique('resent')
        check(app.invite(again), 201, ok_body('Invite sent'))
        last = time.time()
        wait_for('the resend interval', lambda: time.time() > last + 1.5, 5)
        assert resend(app, row_of(app, again)['id'])[0] == 200
        stack.mail_for(again, count=2)
        # The do-not-invite list: an admin's, an opt-out, a bounce.
        app.ctl('suppress', 'add', app.client, unique('listed'))
        out = unique('optout')
        check(app.invite(out), 201, ok_body('Invite sent'))
        r = stack.request('POST', unsubscribe_url(stack, out)[
            len(stack.base_url):], {})
        assert r[0] == 200, r
        bounced, iid, tag = test_bounce.sent_invite(stack, app)
        r = test_bounce.bounce(stack, test_bounce.report(
            'postfix-failed.eml', tag, bounced), '--recipient',
            'bounces+%s@return.test' % tag)
        assert r.returncode == 0, r
        # An Idempotency-Key's answer; an invite hidden from a token.
        h = app.headers()
        h['Idempotency-Key'] = 'pg-%s' % app.client[:8]
        check(app.invite(unique('idem'), headers=h), 201,
              ok_body('Invite sent'))
        member = unique('member')
        app.add_user(member)
        # Answered as a new one would be: sent or queued, by the wait.
        r = app.invite(member, headers=app.bearer())
        assert r[:1] == (201,) and r[2] in (ok_body('Invite sent'),
                                            ok_body('Invite queued')), r
    # A report that names no invite: a row of bounces all the same.
    r = test_bounce.bounce(stack, b'Subject: hello\r\n\r\nnot a report\r\n')
    assert r.returncode == 0, r
    wait_for('every event delivered', lambda: stack.sql(
        "SELECT count(*) AS n FROM events WHERE status <> 'delivered'")[0][
        'n'] == 0 and count(stack, 'events') > 0, 30)
    return hooked, plain


def key_ids(app):
    return {k['id'] for k in json.loads(app.ctl('--json', 'key', 'list',
                                                app.client))}


_FILLED = []


def filled(stack):
    """fill() once for the module, whichever test needs it first."""
    if not _FILLED:
        _FILLED.append(fill(stack))
    return _FILLED[0]


def check_filled(stack):
    """Every kind of row is there to be copied."""
    statuses = {r['status'] for r in stack.sql(
        'SELECT DISTINCT status FROM invites')}
    assert statuses == {'sent', 'queued', 'failed', 'canceled', 'revoked',
                        'hidden'}, statuses
    assert stack.sql('SELECT count(*) AS n FROM invites WHERE accepted_at '
                     'IS NOT NULL AND metadata IS NOT NULL')[0]['n'] == 1
    sources = {r['source'] for r in stack.sql(
        'SELECT DISTINCT source FROM suppressions')}
    assert sources == {'admin', 'opt-out', 'bounce'}, sources
    types = {r['type'] for r in stack.sql('SELECT DISTINCT type FROM events')}
    assert types == {'invite.sent', 'invite.failed', 'invite.revoked',
                     'invite.accepted', 'invite.opted_out',
                     'invite.bounced'}, types
    assert stack.sql('SELECT count(*) AS n FROM apps WHERE webhook_url IS '
                     'NULL')[0]['n'] >= 1
    assert stack.sql('SELECT count(*) AS n FROM api_keys WHERE revoked_at IS '
                     'NOT NULL')[0]['n'] == 1
    assert stack.sql('SELECT count(*) AS n FROM users WHERE active = 0')[0][
        'n'] == 1
    for t in ('invite_resends', 'idempotency_keys', 'bounces'):
        assert count(stack, t) >= 2, t


# -- tests -------------------------------------------------------------------

def test_pg_migrate_copies_every_row(stack):
    """Every table's rows, every column, and every view the same in psql
    as in sqlite3; the output says what was copied, table by table."""
    filled(stack)
    check_filled(stack)
    counts = {t: count(stack, t) for t in COPIED}
    r = ctl(stack, 'migrate', '--to', stack.pg.uri())
    assert (r.returncode, r.stderr) == (0, ''), r
    want = ['%s: schema created (version 2)' % shown(stack)]
    want += ['%s: %d copied, 0 already there' % (t, counts[t])
             for t in COPIED]
    want.append('%d rows copied from %s to %s' % (
        sum(counts.values()), stack.db, shown(stack)))
    assert r.stdout == '\n'.join(want) + '\n', r.stdout
    for t in COPIED:
        (h1, r1), (h2, r2) = both(stack, table_query(t), 'SELECT * FROM ' + t)
        assert h1 == h2, (t, h1, h2)
        assert r1 == r2 and len(r1) == counts[t], (t, r1, r2)
    for v in VIEWS:
        (h1, r1), (h2, r2) = both(stack, 'SELECT * FROM ' + v)
        assert (h1, r1) == (h2, r2), (v, h1, r1, h2, r2)
        assert r1, v
    # The caches are not copied: PostgreSQL keeps its own, and counts
    # the limits' windows again from the invites and the resends (a
    # resend counts as an invite does; all of this hour).
    _, rows = stack.pg.psql("SELECT kind, sum(n) FROM invite_counts"
                            " GROUP BY kind ORDER BY kind")
    n = str(counts['invites'] + counts['invite_resends'])
    assert rows[:2] == [['day', n], ['hour', n]], rows
    # The tables of both schemas, and nothing else in PostgreSQL.
    names = {r['name'] for r in stack.sql(
        "SELECT name FROM sqlite_schema WHERE type IN ('table', 'view')")}
    assert names == set(COPIED) | set(CACHES) | set(VIEWS), names
    got = {r[0] for r in stack.pg.psql(
        "SELECT table_name FROM information_schema.tables WHERE "
        "table_schema = 'public'")[1]}
    assert got == names | {'referral_invites_schema'}, got


def test_pg_copied_identities_continue_past_the_rows(stack):
    """bounces.id and the rowid columns number new rows after the
    copied ones."""
    for t, col in (('bounces', 'id'), ('invites', 'rowid'),
                   ('events', 'rowid'), ('invite_resends', 'rowid')):
        top = stack.sql('SELECT max(%s) AS m FROM %s' % (col, t))[0]['m']
        [[nxt]] = stack.pg.psql(
            "SELECT nextval(pg_get_serial_sequence('%s', '%s'))" %
            (t, col))[1]
        assert int(nxt) == top + 1, (t, nxt, top)


def test_pg_migrate_again_copies_nothing(stack):
    """A second run copies nothing, says so and changes nothing; an
    ANALYZE run by an admin (its sqlite_stat1 table) is no table to
    copy."""
    stack.sql('ANALYZE')
    assert stack.sql("SELECT count(*) AS n FROM sqlite_schema "
                     "WHERE name = 'sqlite_stat1'") == [{'n': 1}]
    before = pg_snapshot(stack)
    r = ctl(stack, 'migrate', '--to', stack.pg.uri())
    assert (r.returncode, r.stderr) == (0, ''), r
    want = ['%s: 0 copied, %d already there' % (t, count(stack, t))
            for t in COPIED]
    want.append('nothing copied: every row of %s was already in %s' % (
        stack.db, shown(stack)))
    assert r.stdout == '\n'.join(want) + '\n', r.stdout
    # The sequences were consumed above: compare what pg_dump shows.
    assert pg_snapshot(stack) == before
    r = ctl(stack, '--json', 'migrate', '--to', stack.pg.uri())
    assert (r.returncode, r.stderr) == (0, ''), r
    assert json.loads(r.stdout) == [
        {'table': t, 'copied': 0, 'alreadyThere': count(stack, t)}
        for t in COPIED], r.stdout
    assert r.stdout.count('\n') == 1, r.stdout


def test_pg_migrate_new_rows_only(stack):
    """Rows made since are copied, those already there are left alone,
    whatever changed in them since (the tool says which were which)."""
    app = App(stack)
    check(app.invite(unique()), 201, ok_body('Invite sent'))
    old = stack.pg.psql("SELECT status, updated_at FROM invites "
                        "WHERE status = 'queued' ORDER BY id")[1]
    stack.ctl('invite', 'cancel', stack.sql(
        "SELECT id FROM invites WHERE status = 'queued' LIMIT 1")[0]['id'])
    r = ctl(stack, 'migrate', '--to', stack.pg.uri())
    assert r.returncode == 0, r
    lines = dict(line.split(': ', 1) for line in r.stdout.splitlines()[:-1])
    assert lines['apps'] == '1 copied, %d already there' % (
        count(stack, 'apps') - 1), lines
    assert lines['users'] == '1 copied, %d already there' % (
        count(stack, 'users') - 1), lines
    assert lines['invites'] == '1 copied, %d already there' % (
        count(stack, 'invites') - 1), lines
    assert stack.pg.psql("SELECT status, updated_at FROM invites "
                         "WHERE status = 'queued' ORDER BY id")[1] == old


# The same changes, in the same SQL, made in each engine: each one's
# triggers write the events and move the cache generation.
CHANGES = [
    "UPDATE apps SET webhook_url = 'https://hooks.example/x'",
    "UPDATE invites SET status = 'sent', updated_at = '2026-12-24T10:00:00Z'"
    " WHERE status = 'queued'",
    "UPDATE invites SET status = 'failed', last_reply = '550 \"no\" \u00e9"
    "\n\tx', updated_at = '2026-12-24T10:01:02Z' WHERE status = 'canceled'",
    "UPDATE invites SET status = 'failed', last_reply = 'bounced: 5.1.1',"
    " updated_at = '2026-12-31T23:59:59Z' WHERE status = 'hidden'",
    "UPDATE invites SET status = 'failed', last_reply = NULL,"
    " updated_at = '2026-12-24T10:03:00Z' WHERE email LIKE 'idem-%'",
    "UPDATE invites SET accepted_at = '2026-12-24T11:00:00Z'"
    " WHERE accepted_at IS NULL AND email LIKE 'resent-%'",
    "UPDATE invites SET status = 'revoked', updated_at ="
    " '2026-12-24T12:00:00Z' WHERE email LIKE 'sent-%'",
    "INSERT INTO suppressions (app_id, email_normalized, source, created_at)"
    " SELECT app_id, email_normalized, 'opt-out', '2026-12-24T13:00:00Z'"
    " FROM invites WHERE email LIKE 'sent-%' ON CONFLICT DO NOTHING",
    "INSERT INTO suppressions (app_id, email_normalized, source, created_at)"
    " SELECT id, 'nobody@example.org', 'opt-out', '2026-12-24T14:00:00Z'"
    " FROM apps WHERE true",
    "UPDATE users SET name = 'Renamed'",
]
NEW_EVENTS = ("SELECT app_id, type, invite_id, payload, status, attempts, "
              "next_attempt_at, give_up_at, last_reply, created_at, "
              "delivered_at, length(id) AS id_length FROM events "
              "WHERE created_at >= '2026-12-24'")


def test_pg_triggers_make_the_same_events(stack):
    """The PL/pgSQL triggers write the same events, payloads byte for
    byte, as SQLite's, and move the cache generation as often."""
    filled(stack)
    copy = stack.path('copy.db')
    r = subprocess.run(['sqlite3', stack.db, '.backup %s' % copy],
                       capture_output=True, text=True)
    assert r.returncode == 0, r
    stack.pg.admin_psql('CREATE DATABASE trig OWNER ri')
    uri = stack.pg.uri(database='trig')
    r = ctl(stack, '-d', copy, 'migrate', '--to', uri)
    assert r.returncode == 0, r
    lite = lambda sql: sqlite_rows(stack, sql, copy)  # noqa: E731
    gen = 'SELECT n FROM cache_generation'
    g1, g2 = int(lite(gen)[1][0][0]), int(stack.pg.psql(gen, uri)[1][0][0])
    for sql in CHANGES:
        r = subprocess.run(['sqlite3', copy, sql], capture_output=True,
                           text=True)
        assert (r.returncode, r.stderr) == (0, ''), (sql, r)
        stack.pg.psql(sql, uri)
    h1, r1 = lite(NEW_EVENTS)
    h2, r2 = stack.pg.psql(NEW_EVENTS, uri)
    assert (h1, sorted(r1)) == (h2, sorted(r2)), (
        h1, h2, [r for r in r1 if r not in r2], [r for r in r2 if r not in r1])
    types = sorted({row[1] for row in r1})
    assert types == ['invite.accepted', 'invite.bounced', 'invite.failed',
                     'invite.opted_out', 'invite.revoked', 'invite.sent'], \
        types
    assert {row[-1] for row in r1} == {'36'}, r1
    assert any('"reason":"550 \\"no\\" \u00e9\\n\\tx"' in row[3]
               for row in r1), r1
    assert any('"id":null' in row[3] for row in r1), r1
    d1 = int(lite(gen)[1][0][0]) - g1
    d2 = int(stack.pg.psql(gen, uri)[1][0][0]) - g2
    assert d1 == d2 == count(stack, 'apps') + count(stack, 'users'), (d1, d2)


def test_pg_migrate_while_the_service_writes(stack):
    """A run while invites arrive copies one consistent picture of the
    live database (parents with their rows, or PostgreSQL's foreign keys
    would refuse it); a run after the burst copies the rest."""
    stack.pg.admin_psql('CREATE DATABASE live OWNER ri')
    uri = stack.pg.uri(database='live')
    app = App(stack, unlimited=True)
    done = threading.Event()

    def burst():
        n = 0
        while not done.is_set() and n < 200:
            check(app.invite(unique('live')), 201, ok_body('Invite sent'))
            n += 1
        return n
    t = ThreadPoolExecutor(1)
    sent = t.submit(burst)
    wait_for('invites arriving', lambda: len(app.rows()) >= 5, 30)
    first = ctl(stack, 'migrate', '--to', uri)
    done.set()
    n = sent.result(60)
    t.shutdown()
    assert first.returncode == 0, first
    for _ in range(3):
        check(app.invite(unique('after')), 201, ok_body('Invite sent'))
    assert len(app.rows()) == n + 3, (n, len(app.rows()))
    second = ctl(stack, '--json', 'migrate', '--to', uri)
    assert second.returncode == 0, second
    runs = [dict(line.split(': ', 1) for line in first.stdout.splitlines()
                 if ' copied, ' in line),
            {t['table']: '%d copied, %d already there' % (
                t['copied'], t['alreadyThere'])
             for t in json.loads(second.stdout)}]
    copied = [int(r['invites'].split()[0]) for r in runs]
    assert sum(copied) == count(stack, 'invites') and copied[1] >= 3, \
        (copied, runs)
    assert stack.pg.psql('SELECT id FROM invites ORDER BY id', uri)[1] == \
        [[r['id']] for r in stack.sql('SELECT id FROM invites ORDER BY id')]


def test_pg_init_again_changes_nothing(stack):
    before = pg_snapshot(stack)
    r = ctl(stack, '-d', stack.pg.uri(), 'init')
    assert (r.returncode, r.stderr) == (0, ''), r
    assert r.stdout == '%s: schema version 2 is current, nothing ' \
        'changed\n' % shown(stack), r.stdout
    r = ctl(stack, '-d', stack.pg.uri(), '--json', 'init')
    assert (r.returncode, r.stderr, r.stdout) == (
        0, '', '{"from":2,"version":2}\n'), r
    assert pg_snapshot(stack) == before


def test_pg_init_creates_the_schema_in_one_transaction(stack):
    """init on an empty database creates all of it; a database that has
    tables of its own is refused by init and migrate, and left as it
    was."""
    stack.pg.admin_psql('CREATE DATABASE fresh OWNER ri')
    uri = stack.pg.uri(database='fresh')
    r = ctl(stack, '-d', uri, 'init')
    assert (r.returncode, r.stderr, r.stdout) == (
        0, '', '%s: schema created (version 2)\n' %
        shown(stack, database='fresh')), r
    assert stack.pg.psql('SELECT version, secret_check FROM '
                         'referral_invites_schema', uri)[1] == [['2', pg.NULL]]
    assert stack.pg.psql('SELECT count(*) FROM apps', uri)[1] == [['0']]
    stack.pg.admin_psql('CREATE DATABASE other OWNER ri')
    uri = stack.pg.uri(database='other')
    stack.pg.psql('CREATE TABLE mine (x integer)', uri)
    for args in (('-d', uri, 'init'), ('migrate', '--to', uri)):
        r = ctl(stack, *args)
        refused(r, 'schema public has tables but no referral_invites_schema:'
                ' not this program\'s database')
    assert stack.pg.psql("SELECT table_name FROM information_schema.tables "
                         "WHERE table_schema = 'public'", uri)[1] == \
        [['mine']]
    # A statement refused half-way: nothing of the schema is left.
    stack.pg.admin_psql('CREATE DATABASE clash OWNER ri')
    uri = stack.pg.uri(database='clash')
    stack.pg.psql("CREATE FUNCTION events_add(text, text, text, text, text)"
                  " RETURNS void LANGUAGE sql AS ''", uri)
    r = ctl(stack, '-d', uri, 'init')
    refused(r, 'migration to version 1: PostgreSQL: ERROR:  function '
            '"events_add" already exists with same argument types')
    assert stack.pg.psql("SELECT count(*) FROM information_schema.tables "
                         "WHERE table_schema = 'public'", uri)[1] == [['0']]


def test_pg_bad_uri_unreachable_server_wrong_password(stack):
    """One line each, exit 1, the password never shown."""
    r = ctl(stack, 'migrate', '--to', stack.pg.uri() + '&nosuch=1')
    refused(r, '--to: not a PostgreSQL connection URI: invalid URI query '
            'parameter: "nosuch"')
    # Its '/' and '?' not percent-encoded, libpq quotes a piece of it.
    r = ctl(stack, 'migrate', '--to', 'postgresql://ri:%s@/ri?nosuch=1' %
            pg.PASSWORD)
    refused(r, '--to: not a PostgreSQL connection URI: invalid URI query '
            'parameter: "xxxxx"')
    r = ctl(stack, 'migrate', '--to', 'postgresql://ri:pw-S3cret%zz@/ri')
    assert r.stderr == 'referral-invitesctl: --to: not a PostgreSQL ' \
        'connection URI: invalid percent-encoded token: "xxxxx"\n', r.stderr
    missing = stack.path('no-server')
    password = pg.urllib.parse.quote(pg.PASSWORD, safe='')
    uri = 'postgresql://ri:%s@/ri?host=%s' % (password, missing)
    r = ctl(stack, 'migrate', '--to', uri)
    refused(r, 'postgresql://ri:xxxxx@/ri?host=%s: connection to server on '
            'socket "%s/.s.PGSQL.5432" failed: No such file or directory' %
            (missing, missing))
    port = harness.free_port()
    r = ctl(stack, '-d', 'postgres://ri:%s@127.0.0.1:%d/ri' % (
        password, port), 'init')
    refused(r, 'postgres://ri:xxxxx@127.0.0.1:%d/ri: connection to server at'
            ' "127.0.0.1", port %d failed: Connection refused' % (port, port))
    r = ctl(stack, 'migrate', '--to', stack.pg.uri(password='pw-S3cretX'))
    refused(r, 'password authentication failed for user "ri"')
    r = ctl(stack, 'migrate', '--to', '/tmp/x.db')
    refused(r, '--to: expected postgresql:// or postgres://')
    r = ctl(stack, 'migrate')
    assert (r.returncode, r.stdout) == (2, ''), r
    assert r.stderr.startswith('referral-invitesctl: migrate needs --to '
                               'URI\n'), r.stderr


def test_pg_commands_work_on_postgresql(stack):
    """What migrate copied reads the same with the ctl on either database
    (issue 21, step 2: test_pg_ctl runs every command on both); migrate
    names SQLite as its source."""
    conf = pg_conf(stack, stack.pg.uri(), 'pg.conf')
    r = ctl(stack, 'init', conf=conf)
    assert (r.returncode, r.stderr) == (0, ''), r
    app = App(stack)
    r = ctl(stack, 'migrate', '--to', stack.pg.uri())
    assert (r.returncode, r.stderr) == (0, ''), r
    for args in (('app', 'list'), ('--json', 'app', 'show', app.client),
                 ('user', 'list', app.client), ('suppress', 'list',
                                                app.client)):
        want, got = ctl(stack, *args), ctl(stack, *args, conf=conf)
        assert (got.returncode, got.stderr) == (0, ''), got
        assert (got.stdout, want.returncode) == (want.stdout, 0), (args,
                                                                   got, want)
    r = ctl(stack, 'migrate', '--to', stack.pg.uri(), conf=conf)
    refused(r, '%s: migrate copies a SQLite database' % shown(stack))


def listing(app, token=False):
    """GET the app's inviter's invites: status and body."""
    h = app.bearer() if token else app.headers()
    h = {k: v for k, v in h.items() if k.lower() != 'content-type'}
    st, _, body = app.stack.request('GET', harness.ROUTE % app.uid, h)
    return st, body


def test_pg_migrate_then_serve(stack):
    """A live SQLite database moved to PostgreSQL, then the daemon on it,
    over TCP: the same users, keys and tokens and listings, byte for
    byte, and a new invite stored there and mailed; an inviter who
    reached the hourly limit on SQLite is still at it (the limits'
    counters are counted again from the invites copied)."""
    hooked, plain = filled(stack)
    apps = (hooked, plain)
    limited = App(stack)
    stack.ctl('app', 'set', limited.client, '--limit-per-hour', '2',
              '--limit-per-day', '0', '--limit-per-minute', '600')
    for _ in range(2):
        invite(limited, unique('limited'))
    oldest = min(r['created_at'] for r in limited.rows())
    before = [listing(a) for a in apps] + [listing(a, True) for a in apps]
    assert all(st == 200 for st, _ in before), before
    stack.pg.admin_psql('CREATE DATABASE serve OWNER %s' % pg.ROLE)
    uri = stack.pg.uri(database='serve')
    r = ctl(stack, 'migrate', '--to', uri)
    assert r.returncode == 0, r
    node = stack.path('serve-node')
    os.makedirs(node)
    # The node's secret, beside the SQLite file until now: HS256 tokens
    # and opt-out links stay valid.
    with open(stack.path('db', 'secret.key'), 'rb') as f:
        secret = f.read()
    with open(os.path.join(node, 'secret.key'), 'wb') as f:
        f.write(secret)
    os.chmod(os.path.join(node, 'secret.key'), 0o600)
    if stack.root:
        harness.chown_tree(node, stack.user)
        os.chmod(stack.pg.dir, 0o711)
    stack.stop_daemon()
    # Over TCP, as from another host: Landlock lets every process of
    # the daemon connect to the URI's port, and no other.
    stack.write_conf(database=stack.pg.tcp_uri('serve'),
                     state_directory=node)
    try:
        stack.start_daemon()
        after = [listing(a) for a in apps] + [listing(a, True)
                                              for a in apps]
        assert after == before, (before, after)
        check_429(limited.invite(unique('limited')), 3600, oldest)
        addr = unique('served')
        check(hooked.invite(addr), 201, ok_body('Invite sent'))
        [m] = stack.mail_for(addr)
        _, rows = stack.pg.psql("SELECT status FROM invites WHERE email = "
                                "'%s'" % addr, uri=uri)
        assert rows == [['sent']], rows
        # The first node recorded its secret's fingerprint; a node with
        # another secret.key is refused at start, with one line.
        _, rows = stack.pg.psql('SELECT length(secret_check) FROM '
                                'referral_invites_schema', uri=uri)
        assert rows == [['64']], rows
        stack.stop_daemon()
        with open(os.path.join(node, 'secret.key'), 'wb') as f:
            f.write(bytes(32))
        r = subprocess.run([harness.DAEMON, '-d', '-c', stack.conf],
                           capture_output=True, text=True, timeout=60,
                           env=stack.daemon_env)
        assert r.returncode == 1, r
        assert re.search(
            r'\nreferral-invitesd\[\d+\]: %s/secret\.key: not the server '
            r'secret of the other nodes of this database: copy theirs '
            r'here\n\Z' % re.escape(node), r.stderr), r.stderr
        with open(os.path.join(node, 'secret.key'), 'wb') as f:
            f.write(secret)
    finally:
        stack.stop_daemon()
        stack.write_conf(database=stack.db, state_directory=None)
        stack.start_daemon()
    check(hooked.invite(unique()), 201, ok_body('Invite sent'))


def test_pg_password_never_printed(stack):
    """In all the tool printed in this module, in the stack's logs."""
    assert len(PRINTED) >= 10, len(PRINTED)
    for text in PRINTED:
        assert_no_password(text)
    for name in os.listdir(stack.dir):
        if name.endswith('.log'):
            with open(stack.path(name), errors='replace') as f:
                assert_no_password(f.read())
    assert re.search('xxxxx', ''.join(PRINTED))
