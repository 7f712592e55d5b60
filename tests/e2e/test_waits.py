# SPDX-License-Identifier: ISC
# Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
"""Nothing a request waits for blocks a worker (issue 19).

A request waiting for the mailer's verdict is parked: its worker serves
other requests meanwhile, the mailer tells the verdict over a channel,
and a slow relay slows only the mail.  The mailer keeps smtp_sessions
SMTP sessions at once.
"""

import os
import signal
import statistics
import threading
import time

import harness

from harness import (App, ROUTE, check, children, err_body, in_parallel,
                     ok_body, unique)
from test_resilience import (mails_by_address, no_limits, own_stack,
                             wait_all_mailed)


def make_stack():
    return harness.fast_stack('100000r/s')


def timed(fn):
    t0 = time.monotonic()
    out = fn()
    return time.monotonic() - t0, out


def listing(stack, app):
    st, _, body = stack.request('GET', ROUTE % app.uid, app.headers())
    assert st == 200, (st, body)
    return body


def test_stopped_mailer_one_worker_still_serves(stack):
    """One worker, the mailer stopped, delivery_wait 3: five invites wait
    for a verdict that never comes, and the listing is answered
    meanwhile by that same worker; the invites are "Invite queued" once
    their wait is over."""
    s = own_stack({'workers': '1', 'delivery_wait': '3'})
    try:
        app = App(s)
        other = App(s)
        [mailer] = children(s, 'ri-mailer')
        with harness.stopped(mailer):
            addrs = [unique('parked') for _ in range(5)]
            t0 = time.monotonic()
            result = {}
            ts = [threading.Thread(target=lambda a=a: result.update(
                {a: (app.invite(a), time.monotonic() - t0)}))
                for a in addrs]
            for t in ts:
                t.start()
            harness.wait_for('5 stored', lambda: len(app.rows()) == 5, 10)
            took = [timed(lambda: listing(s, other))[0] for _ in range(5)]
            for t in ts:
                t.join(30)
        # Served while the five waited, not after them.
        assert max(took) < 1.5, took
        for a in addrs:
            resp, after = result[a]
            check(resp, 201, ok_body('Invite queued'))
            assert after >= 2.5, (a, after)
        wait_all_mailed(s, addrs)
    finally:
        s.stop()


def test_slow_relay_never_slows_the_listing(stack):
    """A relay that takes 1 s a message, the shipped delivery_wait, 32
    clients inviting: a concurrent listing is answered well under a
    second, every invite gets 201 and its one mail."""
    s = own_stack({'delivery_wait': '3'},
                  smtpd_args=harness.SMTPD_ARGS + ['--delay-data', '1'])
    try:
        app = App(s)
        no_limits(s, app)
        other = App(s)
        addrs = [unique('slow') for _ in range(64)]
        took = []
        stop = threading.Event()

        def lister():
            while not stop.is_set() and len(took) < 20:
                took.append(timed(lambda: listing(s, other))[0])
                time.sleep(0.1)     # the point: a listing now and then
        lt = threading.Thread(target=lister)
        lt.start()
        try:
            answers = in_parallel([lambda a=a: app.invite(a)
                                   for a in addrs[:32]])
            answers += in_parallel([lambda a=a: app.invite(a)
                                    for a in addrs[32:]])
        finally:
            stop.set()
            lt.join(30)
        for resp in answers:
            assert resp[0] == 201 and resp[2] in (
                ok_body('Invite sent'), ok_body('Invite queued')), resp
        assert len(took) >= 5, took
        assert statistics.median(took) < 0.5 and max(took) < 2, took
        wait_all_mailed(s, addrs, timeout=60)
        counts = mails_by_address(s)
        assert [counts[a] for a in addrs] == [1] * len(addrs)
    finally:
        s.stop()


def test_mailer_killed_while_requests_are_parked(stack):
    """kill -9 of the mailer while eight requests wait for its verdict:
    each is answered, each 201 has its row, and the new mailer sends
    each mail once."""
    s = own_stack({'delivery_wait': '4'})
    try:
        app = App(s)
        no_limits(s, app)
        [mailer] = children(s, 'ri-mailer')
        os.kill(mailer, signal.SIGSTOP)
        addrs = [unique('killed') for _ in range(8)]
        result = {}
        ts = [threading.Thread(target=lambda a=a: result.update(
            {a: app.invite(a)})) for a in addrs]
        for t in ts:
            t.start()
        harness.wait_for('8 stored', lambda: len(app.rows()) == 8, 10)
        os.kill(mailer, signal.SIGKILL)
        for t in ts:
            t.join(30)
        # The new mailer may send them within the wait: either answer.
        for a in addrs:
            assert result[a][2] in (ok_body(), ok_body('Invite queued')), \
                result[a]
            check(result[a], 201, result[a][2])
        assert sorted(r['email'] for r in app.rows()) == sorted(addrs)
        wait_all_mailed(s, addrs, timeout=30)
        time.sleep(1)   # a fixed wait: a second mail would arrive now
        counts = mails_by_address(s)
        assert [counts[a] for a in addrs] == [1] * 8, counts
    finally:
        s.stop()


def sessions_used(sessions):
    """Eight invites stored while the mailer is stopped, then a relay of
    1 s a message: (most messages in DATA at once, connections)."""
    s = own_stack({'delivery_wait': '0', 'smtp_sessions': str(sessions)},
                  smtpd_args=harness.SMTPD_ARGS + ['--delay-data', '1'])
    try:
        app = App(s)
        no_limits(s, app)
        [mailer] = children(s, 'ri-mailer')
        addrs = [unique('session') for _ in range(8)]
        with harness.stopped(mailer):
            for a in addrs:
                check(app.invite(a), 201, ok_body('Invite queued'))
        mails = s.wait_mail(8, timeout=30)
        assert sorted(r for m in mails for r in m.envelope['rcpt_tos']) == \
            sorted(addrs)
        return (max(m.envelope['concurrent'] for m in mails),
                len({m.envelope['connection'] for m in mails}))
    finally:
        s.stop()


def test_smtp_sessions_send_at_once(stack):
    most, conns = sessions_used(4)
    assert most == 4 and conns >= 4, (most, conns)
    assert sessions_used(1) == (1, 1)



def test_open_connection_carries_what_comes_due(stack):
    """One SMTP session, the shipped delivery_wait: invites sent one
    after another while the connection is open go over that one
    connection, each "Invite sent" at once; a refused address in the
    middle is answered 400 with the relay's reply at once, not "queued"
    after the wait, and the connection goes on; after more than a second
    with nothing due it is closed, and the next invite opens another."""
    s = own_stack({'delivery_wait': '3', 'smtp_sessions': '1'},
                  smtpd_args=harness.SMTPD_ARGS + ['--reject-rcpt',
                                                   '^<?refused'])
    try:
        app = App(s)
        no_limits(s, app)
        addrs = [unique('open') for _ in range(6)]
        refused = unique('refused')
        for a in addrs[:3]:
            took, resp = timed(lambda: app.invite(a))
            check(resp, 201, ok_body('Invite sent'))
            assert took < 1, (a, took)
        took, resp = timed(lambda: app.invite(refused))
        check(resp, 400, err_body('550 5.1.1 <%s>: Recipient address '
                                  'rejected' % refused))
        assert took < 1, took
        for a in addrs[3:5]:
            check(app.invite(a), 201, ok_body('Invite sent'))
        mails = s.wait_mail(5, timeout=10)
        first = {m.envelope['rcpt_tos'][0]: m.envelope['connection']
                 for m in mails}
        assert sorted(first) == sorted(addrs[:5]), first
        assert len(set(first.values())) == 1, first
        time.sleep(2)       # past the second a connection stays idle
        check(app.invite(addrs[5]), 201, ok_body('Invite sent'))
        mails = s.wait_mail(6, timeout=10)
        last = [m.envelope['connection'] for m in mails
                if m.envelope['rcpt_tos'] == [addrs[5]]]
        # (The mailer's probe of the relay is a connection too.)
        assert len(last) == 1 and last[0] > max(first.values()), \
            (last, first)
    finally:
        s.stop()
