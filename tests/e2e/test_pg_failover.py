# SPDX-License-Identifier: ISC
# Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
"""A PostgreSQL failover in the middle of a burst of invites.

The daemon stores in a PostgreSQL 15 primary that streams to a hot
standby made by pg_basebackup (tests/e2e/pg_standby.py).  Replication is
synchronous: the primary's synchronous_standby_names names the standby
and synchronous_commit = on.  That is the setup the docs tell admins to
use, so that no commit the daemon was told of is lost with the primary.
The daemon's database URI names both unix sockets with
target_session_attrs=read-write.

8 connections send 300 invites of distinct addresses.  While they do,
the standby falls behind: the primary's WAL sender is stopped (SIGSTOP)
for LAG seconds, so every commit waits for the standby.  Then the
primary crashes: the WAL sender is killed, never sending what it held,
and the primary goes down with it (pg_ctl stop -m immediate makes sure).
The service runs WINDOW seconds with no primary at all (libpq refuses
the standby because it is not read-write), and then the standby is
promoted.  Were replication asynchronous, the invites committed during
the lag would be answered 201 and then be missing on the new primary
(tried by hand: 34 of 283 were).  Synchronous, they wait and are 503s.
What that shows:

  - every answer is a 201 with the SPEC's body ("Invite sent" or "Invite
    queued"), or a 503 with the SPEC's busy body and a Retry-After of
    digits.  Never a 500, never a dropped connection, never an answer
    later than DEADLINE seconds;
  - after the switch invites succeed again: the burst ends on a run of
    RUN_AFTER consecutive 201s, and the daemon logs that it connected
    again;
  - on the new primary (psql on the promoted standby) every 201'd
    address has exactly one invite.  A 503'd address has none or one:
    one when its commit's WAL reached the standby but the standby's
    acknowledgement never got back to the writer (the WAL sender was
    stopped, then the primary died).  The counts are printed;
  - health (GET /api/v1/referral-invites/health) is 200 again, with the
    database, the writer and the mailer up.  The mailer works again:
    every 201'd address of the burst, and one invited after it, gets its
    mail.  The invites queued during the failover are sent from the new
    primary's queue;
  - the connections made again keep the daemon's session settings.  With
    the write lock held by a psql on the new primary, an invite is a 503
    after lock_timeout (5 s), as before the failover, and it is not
    stored behind the 503's back once the lock is free.

The module has its own pair of servers beside the stack's, so it runs
once (ENGINES).  Every test is named test_pg_failover_*.
"""

import collections
import json
import os
import queue
import re
import shutil
import tempfile
import threading
import time

import harness
from harness import App, check, err_body, ok_body, unique, wait_for
import pg
import pg_standby
import test_ops

ENGINES = ('sqlite',)

RATE = '100000r/s'          # keeps nginx's flood guard out of the burst
INVITES = 300
CONNECTIONS = 8
PACE = 0.2                  # seconds a connection waits between invites
BEFORE = 60                 # answers before the primary is stopped
LAG = 1.0                   # seconds the standby lags before the stop
WINDOW = 2.0                # seconds with no primary at all
DEADLINE = 35               # seconds an answer may take at most
BURST_MAX = 90              # seconds the burst may take (60 on a busy machine)
RUN_AFTER = 30              # consecutive 201s the burst must end on
MAIL_WAIT = 20              # seconds the mails of the 201s may take
LOCK_TIMEOUT = 5            # src/db.c BUSY_TIMEOUT_MS, in seconds
BUSY = err_body('Service is busy, try again later')
SENT, QUEUED = ok_body('Invite sent'), ok_body('Invite queued')
RECONNECTED = 'database: connected again'

# What the burst leaves for the tests after it (they run in file order).
BURST = {}


class FailoverStack(harness.Stack):
    """The module's stack and its pair of servers, stopped together."""

    def stop(self, keep=False):
        super().stop(keep)
        self.pair.stop(keep)
        if not keep and os.environ.get('RI_E2E_KEEP') != '1':
            shutil.rmtree(self.state, ignore_errors=True)


def make_stack():
    pair = pg_standby.Pair().start()
    state = tempfile.mkdtemp(prefix='ri-e2e-state-')
    os.chmod(state, 0o755)
    s = FailoverStack(conf={
        'database': pair.uri(), 'state_directory': state,
        # A dead mailer's claims lapse within the test's waits (60 s
        # shipped), as the harness sets it for PostgreSQL.
        'claim_lease': '5',
        # An invite whose mail waits answers "Invite queued" after 2 s,
        # not 5, so that a burst behind a stalled mailer still ends
        # within BURST_MAX.
        'delivery_wait': '2'})
    s.pair, s.state = pair, state

    def own_state(stack):
        # referral-invitesctl init made secret.key there as root.
        if stack.root:
            harness.chown_tree(state, stack.user)
    saved, harness.TEST_RATE = harness.TEST_RATE, RATE
    try:
        s.start(own_state)          # on failure it stops the pair too
    finally:
        harness.TEST_RATE = saved
    try:
        test_ops.wait_health(s, 200, 15)
    except BaseException:
        s.stop(keep=True)
        raise
    return s


# -- reading the servers and the answers -------------------------------------

def rows_by_address(server, client):
    """{email_normalized: number of invites} of the app client on server.
    This uses psql on that server's own socket, not the two-host URI."""
    _, rows = server.psql("SELECT email_normalized, count(*) FROM invites "
                          "WHERE app_id = '%s' GROUP BY 1" % client)
    return {addr: int(n) for addr, n in rows}


def daemon_sessions(server):
    """Backends of the role "ri" on server: the daemon's connections."""
    return int(server.query("SELECT count(*) FROM pg_stat_activity "
                            "WHERE usename = '%s'" % pg.ROLE))


def burst_app(stack):
    """An app whose limits a burst of INVITES never meets."""
    app = App(stack)
    stack.ctl('app', 'set', app.client, '--limit-per-hour', '100000',
              '--limit-per-day', '100000', '--limit-per-minute', '100000')
    return app


def answer_kind(r):
    """'201', '503', or a description of the answer (its status, body and
    Retry-After), or of why there was none."""
    if r['error'] is not None:
        return 'no answer: %s' % r['error']
    st, h, body = r['resp']
    if st == 201 and body in (SENT, QUEUED):
        check(r['resp'], 201, body)
        return '201'
    if st == 503 and body == BUSY and re.fullmatch(
            r'[0-9]+', h.get('retry-after', '')):
        check(r['resp'], 503, BUSY)
        return '503'
    return '%d %r retry-after=%r' % (st, body, h.get('retry-after'))


def mailed(stack):
    """Every envelope recipient that smtpd received, lower-cased."""
    got = set()
    for n in stack._mails():
        got.update(a.lower() for a in stack._load_mail(n).envelope['rcpt_tos'])
    return got


# -- the tests ---------------------------------------------------------------

def test_pg_failover_the_daemon_writes_to_the_primary_synchronously(stack):
    """Before the failover: the URI names both sockets, the standby is the
    primary's synchronous standby, and the daemon's sessions are all on
    the primary.  An invite's row is on the primary at its 201, and on
    the standby moments later."""
    pair = stack.pair
    uri = pair.uri()
    assert re.fullmatch(r'postgresql://ri:[^@/]+@/ri\?host=/[^,&]+,/[^,&]+'
                        r'&target_session_attrs=read-write', uri), uri
    assert pair.synchronous(), pair.primary.query(
        'SELECT application_name, state, sync_state FROM pg_stat_replication')
    assert pair.primary.query('SHOW synchronous_commit') == 'on'
    assert pair.standby.in_recovery()
    # The writer, the mailer, the webhooks and the workers.
    assert daemon_sessions(pair.primary) >= 3, daemon_sessions(pair.primary)
    assert daemon_sessions(pair.standby) == 0, daemon_sessions(pair.standby)
    app = burst_app(stack)
    addr = unique('failover-first')
    r = app.invite(addr)
    check(r, 201, r[2] if r[2] in (SENT, QUEUED) else SENT)
    assert rows_by_address(pair.primary, app.client) == {addr: 1}
    # The standby had flushed it to disk before the commit was
    # acknowledged. It shows there once replayed.
    wait_for('the invite on the standby', lambda: rows_by_address(
        pair.standby, app.client) == {addr: 1}, 5)


def test_pg_failover_burst_answers_201_or_503_and_recovers(stack):
    """The primary stopped and the standby promoted mid-burst: every
    answer is a 201 or a 503 with Retry-After, within DEADLINE, and the
    burst ends on a run of 201s."""
    app = burst_app(stack)
    addrs = [unique('failover') for _ in range(INVITES)]
    todo = queue.Queue()
    for i in range(INVITES):
        todo.put(i)
    results = [None] * INVITES
    done = [0]
    lock = threading.Lock()
    stop_by = time.monotonic() + BURST_MAX

    def client():
        conn = stack.connection(DEADLINE)
        try:
            while time.monotonic() < stop_by:
                try:
                    i = todo.get_nowait()
                except queue.Empty:
                    return
                t0 = time.monotonic()
                resp = err = None
                try:
                    resp = app.invite(addrs[i], conn=conn)
                except Exception as e:  # noqa: BLE001 - recorded, asserted
                    err = repr(e)
                    conn.close()
                    conn = stack.connection(DEADLINE)
                results[i] = dict(addr=addrs[i], sent=t0, resp=resp,
                                  took=time.monotonic() - t0, error=err)
                with lock:
                    done[0] += 1
                time.sleep(PACE)
        finally:
            conn.close()

    reconnected = harness.log_count(stack, RECONNECTED)
    threads = [threading.Thread(target=client) for _ in range(CONNECTIONS)]
    t_start = time.monotonic()
    for t in threads:
        t.start()
    try:
        wait_for('%d answers' % BEFORE, lambda: done[0] >= BEFORE, 60)
        stack.pair.primary.pause_sender()
        time.sleep(LAG)
        t_stop = time.monotonic()
        stack.pair.stop_primary()
        time.sleep(WINDOW)
        t_promote = time.monotonic()
        stack.pair.promote()
        t_promoted = time.monotonic()
    finally:
        for t in threads:
            t.join(BURST_MAX + DEADLINE)
    assert not any(t.is_alive() for t in threads), 'the burst hangs'
    got = [r for r in results if r is not None]
    BURST.update(app=app, results=got)
    kinds = collections.Counter(answer_kind(r) for r in got)
    timeline = 'answers %s; primary stopped at %.1fs, promoted at ' \
        '%.1f-%.1fs, burst over at %.1fs' % (
            dict(kinds), t_stop - t_start, t_promote - t_start,
            t_promoted - t_start, max(r['sent'] + r['took'] for r in got) -
            t_start)
    print('# failover: %s' % timeline, flush=True)
    # Every finding at once: a failover test that stops at its first
    # says too little about the others.
    found = []
    if len(got) != INVITES:
        found.append('%d of %d sent in %ds' % (len(got), INVITES, BURST_MAX))
    bad = [(round(r['sent'] - t_start, 2), r['addr'], answer_kind(r))
           for r in got if answer_kind(r) not in ('201', '503')]
    if bad:
        found.append('not a 201 nor a 503 with Retry-After (%d), the first: '
                     '%s' % (len(bad), bad[:5]))
    slow = [(r['addr'], round(r['took'], 1)) for r in got
            if r['took'] > DEADLINE]
    if slow:
        found.append('answered after %ds: %s' % (DEADLINE, slow[:5]))
    # The failover came mid-burst: invites were sent before, in and after.
    if sum(r['sent'] < t_stop for r in got) < BEFORE:
        found.append('fewer than %d sent before the stop' % BEFORE)
    if not any(t_stop <= r['sent'] < t_promoted for r in got):
        found.append('none sent while there was no primary')
    after = sorted((r for r in got if r['sent'] >= t_promoted),
                   key=lambda r: r['sent'])
    run = 0
    for r in reversed(after):
        if answer_kind(r) != '201':
            break
        run += 1
    if run < RUN_AFTER:
        found.append('the burst ends on %d consecutive 201s (%d sent after '
                     'the promotion), not %d' % (run, len(after), RUN_AFTER))
    if harness.log_count(stack, RECONNECTED) <= reconnected:
        found.append('no "%s" in the log' % RECONNECTED)
    assert not found, '\n'.join(found + [timeline])


def test_pg_failover_no_201_lacks_its_row_on_the_new_primary(stack):
    """psql on the promoted standby: one invite per 201'd address, none or
    one per 503'd address, and none for an address that was never
    sent."""
    if not BURST:
        raise AssertionError('the burst did not run')
    pair, app = stack.pair, BURST['app']
    assert not pair.standby.in_recovery()
    rows = rows_by_address(pair.standby, app.client)
    by_kind = collections.defaultdict(list)
    for r in BURST['results']:
        by_kind[answer_kind(r)].append(r['addr'])
    ok, busy = by_kind['201'], by_kind['503']
    lacking = [(a, rows.get(a, 0)) for a in ok if rows.get(a, 0) != 1]
    assert not lacking, '201s without exactly one row on the new primary ' \
        '(%d of %d): %s' % (len(lacking), len(ok), lacking[:10])
    assert all(rows.get(a, 0) in (0, 1) for a in busy), \
        [(a, rows[a]) for a in busy if rows.get(a, 0) > 1]
    stored = [a for a in busy if rows.get(a) == 1]
    print('# failover: %d 201s, each with its row on the new primary; %d '
          '503s, %d of them with a row (committed on the standby, the '
          'answer lost with the primary), %d without' % (
              len(ok), len(busy), len(stored), len(busy) - len(stored)),
          flush=True)
    sent = set(r['addr'] for r in BURST['results'])
    assert set(rows) <= sent, set(rows) - sent


def test_pg_failover_health_and_mail_after_the_switch(stack):
    """Health is 200 again, every part up.  The mailer sends again: each
    201'd address of the burst, and one invited after it, gets its mail,
    the queued ones from the new primary's queue.  Then nothing is left
    queued."""
    resp = test_ops.wait_health(stack, 200, 15)
    check(resp, 200, resp[2])
    body = json.loads(resp[2])
    assert (body['success'], body['message'], body['error']) == \
        (True, 'Healthy', None), body
    assert (body['data']['database'], body['data']['writer'],
            body['data']['mailer']) == ('up', 'up', 'up'), body
    if not BURST:
        raise AssertionError('the burst did not run')
    app = BURST['app']
    addr = unique('failover-after')
    r = app.invite(addr)
    check(r, 201, r[2] if r[2] in (SENT, QUEUED) else SENT)
    ok = set(r['addr'] for r in BURST['results'] if answer_kind(r) == '201')
    ok.add(addr)
    try:
        wait_for('a mail for every 201', lambda: not ok - mailed(stack),
                 MAIL_WAIT, interval=0.5)
    except harness.WaitTimeout:
        left = ok - mailed(stack)
        _, rows = stack.pair.standby.psql(
            "SELECT status, count(*) FROM invites WHERE app_id = '%s' "
            "GROUP BY 1 ORDER BY 1" % app.client)
        raise AssertionError(
            '%d of %d 201s without a mail after %ds (the invite after the '
            'switch %s), e.g. %s; their app\'s invites on the new primary '
            'by status: %s' % (
                len(left), len(ok), MAIL_WAIT, 'too' if addr in left else
                'not', sorted(left)[:3], dict(rows))) from None
    # The last verdicts are recorded moments after their mails arrive.
    wait_for('health with nothing queued', lambda: test_ops.health(
        stack)[2] == test_ops.health_body(), 10)
    test_ops.check_health(test_ops.health(stack))


def test_pg_failover_reconnected_sessions_keep_lock_timeout(stack):
    """Every daemon connection is a new one after the switch.  While a
    psql on the new primary holds the write lock, an invite must be a
    503 after lock_timeout, as it was before the failover (pg_open's SET
    lock_timeout, on the new session too), and must not be stored once
    the lock is free."""
    server = stack.pair.standby
    app = burst_app(stack)
    addr = unique('failover-locked')
    held = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' " \
        "AND objid = %d AND granted" % (harness.PG_WRITE_LOCK & 0xffffffff)
    with harness.pg_write_locked(server.uri(),
                                 lambda: server.query(held) == '1'):
        t0 = time.monotonic()
        resp = app.invite(addr)
        took = time.monotonic() - t0
    found = []
    if resp[0] != 503 or resp[2] != BUSY:
        found.append('answer %d %r, not the busy 503' % (resp[0], resp[2]))
    else:
        h = check(resp, 503, BUSY)
        assert re.fullmatch(r'[0-9]+', h.get('retry-after', '')), h
    if not LOCK_TIMEOUT - 1 <= took <= LOCK_TIMEOUT + 3:
        found.append('answered after %.1fs, not after lock_timeout (%ds): '
                     'the writer waited for as long as the worker would' %
                     (took, LOCK_TIMEOUT))
    # If the writer still waited, it has the lock now: give its commit a
    # moment to show.
    try:
        rows = wait_for("the 503'd invite stored", lambda: rows_by_address(
            server, app.client), 3, interval=0.2)
    except harness.WaitTimeout:
        rows = {}
    if rows:
        found.append("the 503'd invite was stored once the lock was free: "
                     "%s" % rows)
    assert not found, '\n'.join(found)
