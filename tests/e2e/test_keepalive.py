# SPDX-License-Identifier: ISC
# Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
"""nginx's kept FastCGI connections (issue 7): reused, never a stall.

nginx keeps its connections to the pool open (keepalive in http.conf,
fastcgi_keep_conn on in location.conf).  Checked here: requests reuse one
connection; more connections than workers never leave a request waiting
on a connection no worker watches; a request on a connection of a worker
that waits for the mailer, or for a stalled writer, is served by another
worker meanwhile; and a
reload, which replaces every worker, hands the connections over so that
no request in flight is lost.
"""

import os
import re
import signal
import subprocess
import threading
import time

import harness

from harness import App, ROUTE, ok_body, unique
from test_loop import listing_body

MODULE_RATE = '100000r/s'


def make_stack():
    return harness.fast_stack(MODULE_RATE)


def pool_connections(stack):
    """The server ends of the connections to the FastCGI socket: inodes."""
    r = subprocess.run(['ss', '-xH', 'state', 'connected'],
                       capture_output=True, text=True, check=True)
    ends = []
    for line in r.stdout.splitlines():
        f = line.split()
        # Netid Recv-Q Send-Q Local Port Peer Port (state filtered away)
        if stack.socket in f:
            ends.append(f[f.index(stack.socket) + 1])
    return sorted(ends)


def list_ok(stack, app, conn=None):
    st, _, body = stack.request('GET', ROUTE % app.uid, app.headers(),
                                conn=conn)
    return st, body


def concurrently(stack, n, fn):
    """fn(conn) in n threads at once, each over a TLS connection of its
    own made beforehand (so that the requests overlap); the results
    (or the exception each raised)."""
    go = threading.Barrier(n)

    def run():
        conn = stack.connection()
        try:
            conn.connect()
            go.wait()
            return fn(conn)
        finally:
            conn.close()
    return harness.in_parallel([run] * n, timeout=90)


def started(conf):
    """A stack of its own with these config overrides."""
    return harness.fast_stack(MODULE_RATE, conf=conf)


def test_one_kept_connection_serves_requests_in_turn(stack):
    app = App(stack)
    # The stack's start probed the socket: that connection gone, the
    # pool has none.
    harness.wait_for('no connection to the pool', lambda:
                     pool_connections(stack) == [], 10)
    seen = set()
    for _ in range(20):
        assert list_ok(stack, app) == (200, listing_body([]))
        ends = pool_connections(stack)
        assert ends, 'no connection stayed open after the answer'
        seen.update(ends)
    # Requests one at a time: nginx takes the same idle connection each
    # time (the app's creation through the CLI opened none).
    assert len(seen) == 1, seen


def test_unread_body_never_reaches_the_next_request(stack):
    """A 405 answered without reading its 8 KB body: the body is drained,
    and the next request on the same kept connection is itself."""
    app = App(stack)
    assert list_ok(stack, app) == (200, listing_body([]))
    before = pool_connections(stack)
    assert len(before) == 1, before
    for _ in range(3):
        st, hdrs, body = stack.request(
            'PUT', ROUTE % app.uid, app.headers(),
            '{"email":"a@b.example","pad":"%s"}' % ('p' * 8100))
        assert (st, hdrs.get('allow')) == (405, 'GET, POST'), (st, hdrs)
        assert list_ok(stack, app) == (200, listing_body([]))
    assert pool_connections(stack) == before


def test_more_connections_than_workers(stack):
    """One worker, 16 connections at once: it watches all of them."""
    with_one = started({'workers': '1'})
    try:
        app = App(with_one)
        for _ in range(3):
            got = concurrently(with_one, 16,
                               lambda c: list_ok(with_one, app, c))
            assert got == [(200, listing_body([]))] * 16, got
        assert len(pool_connections(with_one)) >= 2
        n = 20
        got = concurrently(with_one, n, lambda c: with_one.request(
            'POST', ROUTE % app.uid, app.headers(),
            {'email': unique(), 'language': 'en'}, conn=c))
        assert [(st, b) for st, _, b in got] == \
            [(201, ok_body())] * n, got
        assert len(app.rows()) == n
    finally:
        with_one.stop()


def child(stack, name):
    """The pid of the daemon's process called name (ri-mailer, ...)."""
    return harness.children(stack, name)[0]


def others_answered_meanwhile(stack, app, pid, what, started_waiting):
    """With pid stopped, an invite waits for it (what); three rounds of 24
    overlapping requests are all answered while it still waits, and then
    it ends 201."""
    with harness.stopped(pid):
        first = {}
        t = threading.Thread(target=lambda: first.update(
            r=app.invite(unique())))
        t.start()
        started_waiting()
        for _ in range(3):
            got = concurrently(stack, 24, lambda c: list_ok(stack, app, c))
            assert t.is_alive(), 'a request waited for the ' + what
            assert len(got) == 24 and all(
                g[0] == 200 for g in got), got
    t.join(30)
    st, _, body = first['r']
    assert st == 201, (st, body)
    assert len(app.rows()) == 1


def test_no_request_waits_behind_a_delivery(stack):
    app = App(stack)
    # Many idle connections, spread over the four workers.
    assert concurrently(stack, 32, lambda c: list_ok(stack, app, c)) == \
        [(200, listing_body([]))] * 32

    def stored():
        # Stored, its worker waits for the stopped mailer (delivery_wait
        # 5 s).
        harness.wait_for('the invite stored', app.rows, 4, interval=0.02)
        assert len(app.rows()) == 1
    others_answered_meanwhile(stack, app, child(stack, 'ri-mailer'),
                              'delivery', stored)


def test_no_request_waits_behind_a_stalled_writer(stack):
    """Two workers: the one waiting for the writer holds about half of 32
    connections, and requests on them go to the other."""
    two = started({'workers': '2'})
    try:
        app = App(two)
        assert concurrently(two, 32, lambda c: list_ok(two, app, c)) == \
            [(200, listing_body([]))] * 32
        # Its worker waits for the stopped writer (at most 10 s).
        others_answered_meanwhile(
            two, app, child(two, 'ri-writer'), 'writer',
            lambda: harness.wait_for('the invite at the writer', lambda:
                                     harness.writer_backlog(two), 10))
    finally:
        two.stop()


def test_reload_under_load_loses_no_request(stack):
    app = App(stack)
    stop = threading.Event()
    results = []

    def client(i):
        n = 0
        while not stop.is_set() and n < 2000:
            n += 1
            try:
                r = list_ok(stack, app)
            except Exception as e:  # noqa: BLE001 - counted below
                r = repr(e)
            results.append(r)
        return n
    ts = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in ts:
        t.start()

    def answered(n):
        """Until n more answers came (the load goes on)."""
        want = len(results) + n
        harness.wait_for('%d more answers' % n,
                         lambda: len(results) >= want, 30)
    try:
        answered(40)
        for _ in range(3):
            old = harness.children(stack, 'ri-worker')
            os.kill(stack.procs['daemon'].pid, signal.SIGHUP)
            harness.wait_for('four new workers', lambda: (
                lambda now: len(now) == 4 and not set(now) & set(old))(
                    harness.children(stack, 'ri-worker')), 10)
            # The new workers under the same load, before the next reload.
            answered(40)
    finally:
        stop.set()
        for t in ts:
            t.join(60)
    bad = [r for r in results if r != (200, listing_body([]))]
    assert len(results) > 100 and not bad, (len(results), bad[:5])
    log = open(stack.path('daemon.log'), 'rb').read()
    assert not re.search(rb'cannot hand|died', log), log[-2000:]


def parked_stack():
    """One worker, no delivery_wait: invites wait for the writer parked."""
    return started({'workers': '1', 'delivery_wait': '0'})


def invites_in_threads(stack, app, addrs):
    """With the writer stopped, app.invite(addr) for each addr, each in a
    thread of its own, in turn, each once the one before waits at the
    writer; the threads and a dict that gets each answer under its
    address."""
    got = {}
    ts = harness.at_stopped_writer(stack, [
        lambda a=a: got.update({a: app.invite(a)}) for a in addrs])
    return ts, got


def test_parked_invites_never_hold_up_the_worker(stack):
    """One worker, the writer stopped: seven invites wait for it, parked,
    while the same worker answers three rounds of 8 listings on other
    connections, and an eighth, of the first one's address, parks too;
    then each gets its own verdict (the eighth refused by the
    cooldown)."""
    one = parked_stack()
    try:
        app = App(one)
        addrs = [unique() for _ in range(7)]
        with harness.stopped(child(one, 'ri-writer')):
            ts, got = invites_in_threads(one, app, addrs)
            for _ in range(3):
                lists = concurrently(one, 8, lambda c: list_ok(one, app, c))
                assert all(t.is_alive() for t in ts), got
                assert lists == [(200, listing_body([]))] * 8, lists
            again = {}
            [t] = harness.at_stopped_writer(one, [lambda: again.update(
                r=app.invite(addrs[0]))])
            assert t.is_alive() and app.rows() == []
        for x in ts + [t]:
            x.join(30)
        for a in addrs:
            st, _, body = got[a]
            assert (st, body) == (201, ok_body('Invite queued')), got[a]
        st, _, body = again['r']
        assert st == 409, (st, body)
        assert body == (b'{"success":false,"error":"This address was '
                        b'invited recently","message":null,"data":null}')
        assert sorted(r['email'] for r in app.rows()) == sorted(addrs)
    finally:
        one.stop()


def test_parked_invite_writer_stuck_is_503_and_stores_nothing(stack):
    """Parked invites whose writer does not answer within 10 s: each is
    answered 503 with Retry-After, and none is stored when the writer
    comes back; the worker served listings all along."""
    one = parked_stack()
    try:
        app = App(one)
        with harness.stopped(child(one, 'ri-writer')):
            t0 = time.monotonic()
            ts, got = invites_in_threads(one, app,
                                         [unique() for _ in range(3)])
            assert list_ok(one, app) == (200, listing_body([]))
            for t in ts:
                t.join(30)
            waited = time.monotonic() - t0
        # The writer, back, skips the three and says so: only then could
        # a late store have landed.
        harness.wait_log(one, 'came too late', 3, 10)
        assert 9 < waited < 20, waited
        for st, hdrs, body in got.values():
            assert (st, body) == (503, b'{"success":false,"error":"Service '
                                  b'is busy, try again later","message":'
                                  b'null,"data":null}'), (st, body)
            assert re.fullmatch(r'[1-9][0-9]*', hdrs.get('retry-after', ''))
        assert len(got) == 3 and app.rows() == []
        log = harness.tail(one.path('daemon.log'), 8000)
        assert log.count('came too late') == 3, log
        addr = unique()
        st, _, body = app.invite(addr)
        assert (st, body) == (201, ok_body('Invite queued'))
        assert [r['email'] for r in app.rows()] == [addr]
    finally:
        one.stop()


def test_reload_answers_parked_invites_first(stack):
    """A reload while four invites wait for a stopped writer: the old
    worker answers them once the writer is back, then hands its
    connections over; every one is stored and answered 201."""
    one = parked_stack()
    try:
        app = App(one)
        old = child(one, 'ri-worker')
        addrs = [unique() for _ in range(4)]
        with harness.stopped(child(one, 'ri-writer')):
            ts, got = invites_in_threads(one, app, addrs)
            harness.reload_and_wait(one)
            # A fixed wait, for what must not come: had the stopping
            # worker dropped the parked invites, they would be answered
            # by now.
            time.sleep(1)
            assert all(t.is_alive() for t in ts), got
        for t in ts:
            t.join(30)
        assert {a: got[a][0::2] for a in addrs} == \
            {a: (201, ok_body('Invite queued')) for a in addrs}, got
        assert sorted(r['email'] for r in app.rows()) == sorted(addrs)
        harness.wait_for('the new worker', lambda: (
            lambda w: w and w[0] != old)(harness.children(one, 'ri-worker')),
            10)
        # The new worker serves the connections handed over.
        st, body = list_ok(one, app)
        assert st == 200 and all(a.encode() in body for a in addrs), body
        log = open(one.path('daemon.log'), 'rb').read()
        assert not re.search(rb'cannot hand|died', log), log[-2000:]
    finally:
        one.stop()
