# SPDX-License-Identifier: ISC
# Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
"""hide_existing_users, end to end (issue 24, item 3).

With the key on, an invite sent with a user's access token to a user of
the app or to an address on its do-not-invite list must look, to that
token's holder, exactly like an invite to a new address: status, body
bytes and headers, the time it takes (the order of magnitude of a relay's
round trip, never instant, never the whole delivery_wait), its
Idempotency-Key replay, the limits and the cooldown it counts against,
and the inviter's own list.  No mail may go out for it: it is stored as
a row with status "hidden" and the reason in last_reply, read back here
with the sqlite3 CLI.  A server key still gets SPEC's 409, and with the
key off everything is as before.  Every comparison is made against a
real invite sent in the same test.
"""

import calendar
import json
import subprocess
import time
import uuid

import harness
from harness import App, ROUTE, check, check_error, ok_body, unique

MEMBER = 'This address already belongs to a user'
SUPPRESSED = 'This address does not accept invites'
RECENT = 'This address was invited recently'
TOO_MANY = 'Too many invites, try again later'
IDEM_OTHER = 'Idempotency-Key was used for a different request'
WHY_MEMBER = 'not mailed: the address belongs to a user of the app'
WHY_LISTED = "not mailed: the address is on the app's do-not-invite list"
# What differs between any two answers: the request's own id and the time.
OWN = ('x-request-id', 'date')
# The shipped delivery_wait: a real invite waits for the relay's verdict.
WAIT = '3'
# Shorter than the whole delivery_wait, with room for a loaded machine.
LONG = 2.9
# The slow relay's time for each message (smtpd.py --delay-data).
RELAY_S = 1.2
# How long a mail that must not come is waited for, once the real
# invite sent after it has been delivered.
NO_MAIL_S = 2.0


def make_stack():
    return harness.fast_stack(conf={'hide_existing_users': 'yes',
                                    'delivery_wait': WAIT,
                                    'resend_interval': '0'})


# -- helpers -------------------------------------------------------------

def token_headers(app, uid=None, key=None):
    h = app.bearer(uid)
    if key is not None:
        h['Idempotency-Key'] = key
    return h


def key_headers(app, key=None):
    h = app.headers()
    if key is not None:
        h['Idempotency-Key'] = key
    return h


def epoch(iso):
    return calendar.timegm(time.strptime(iso, '%Y-%m-%dT%H:%M:%SZ'))


def timed(fn):
    t = time.monotonic()
    resp = fn()
    return resp, time.monotonic() - t


def same_answer(resp, real, what):
    """resp is real's status, body and headers, but for the request's own
    id and date."""
    h = check(resp, real[0], real[2], what)
    hr = {k: v for k, v in real[1].items() if k not in OWN}
    hh = {k: v for k, v in h.items() if k not in OWN}
    assert hh == hr, '%s: headers\n%r\nreal invite\'s\n%r' % (what, hh, hr)
    assert h['x-request-id'] != real[1]['x-request-id'], what
    return h


def member_and_listed(app):
    """A user of app and an address on its do-not-invite list."""
    bob = unique('bob')
    app.add_user(bob, 'Bob Member')
    listed = unique('dni')
    app.ctl('suppress', 'add', app.client, listed)
    return bob, listed


def row_for(app, addr):
    rows = [r for r in app.rows() if r['email_normalized'] == addr.lower()]
    return rows


def no_mail_for(stack, addrs, real):
    """After real's mail has come, none for addrs for NO_MAIL_S: what the
    mailer would have sent them comes in that time."""
    stack.mail_for(real, timeout=10)
    deadline = time.monotonic() + NO_MAIL_S
    while True:
        for a in addrs:
            got = stack.mail_for(a, timeout=0, count=0)
            assert got == [], 'mail for hidden %s: %r' % (a, got)
        if time.monotonic() >= deadline:
            return
        time.sleep(0.05)


def listed(app, key=False):
    """The inviter's list, by address, as the token's holder (or with
    key, the app's server) reads it."""
    path, h = (ROUTE % app.uid, app.headers()) if key else \
        (ROUTE % 'me', app.bearer())
    st, _, b = app.stack.request('GET', path, h)
    assert st == 200, (st, b)
    return {d['email']: d for d in json.loads(b)['data']}


# -- the token's view ------------------------------------------------------

def test_hide_member_and_listed_look_like_a_new_address(stack):
    """Bytes and headers of a real invite; rows stored hidden with their
    reason; no mail; listed to the inviter as sent; admins see the truth
    in the view and in referral-invitesctl invites."""
    app = App(stack, unlimited=True)
    bob, dni = member_and_listed(app)
    real = app.invite(unique('real'), headers=token_headers(app), uid='me')
    check(real, 201, ok_body('Invite sent'))
    # The member as given in another case and with spaces, the listed
    # address as given.
    asked = {'member': ' %s ' % bob.upper(), 'listed': dni}
    for what, addr in asked.items():
        resp = app.invite(addr, headers=token_headers(app), uid='me')
        same_answer(resp, real, what)
    last = unique('last')
    check(app.invite(last, headers=token_headers(app)), 201,
          ok_body('Invite sent'))
    no_mail_for(stack, [bob, dni], last)

    [rb], [rd] = row_for(app, bob), row_for(app, dni)
    for r, why, given in ((rb, WHY_MEMBER, bob.upper()), (rd, WHY_LISTED,
                                                          dni)):
        assert (r['status'], r['last_reply'], r['attempts'], r['sent_at'],
                r['accepted_at'], r['email'], r['inviter_id']) == \
            ('hidden', why, 0, None, None, given, app.uid), r
        assert len(r['accept_token_hash']) == 64, r
        # updated_at: when its answer came, as a real one's sent_at.
        assert r['next_attempt_at'] == r['created_at'], r
        assert 0 <= epoch(r['updated_at']) - epoch(r['created_at']) <= 1, r
    assert {r['status'] for r in app.rows()} == {'hidden', 'sent'}
    assert len(app.rows()) == 4

    # The inviter's list: as sent, sentAt when the answer came.
    seen = listed(app)
    [mine] = [d for d in seen.values() if d['email'].startswith('real')]
    life = epoch(mine['expiresAt']) - epoch(mine['createdAt'])
    for r in (rb, rd):
        d = seen[r['email']]
        assert list(d) == list(mine), (d, mine)
        assert d == {'id': r['id'], 'email': r['email'], 'language': 'en',
                     'status': 'sent', 'createdAt': r['created_at'],
                     'sentAt': r['updated_at'], 'acceptedAt': None,
                     'expiresAt': time.strftime(
                         '%Y-%m-%dT%H:%M:%SZ', time.gmtime(
                             epoch(r['created_at']) + life)),
                     'metadata': None}, d
    assert {d['status'] for d in seen.values()} == {'sent'}
    # A server key's list says the same (the app may show it).
    assert listed(app, key=True) == seen

    # The admin's truth.
    ov = stack.sql("SELECT invitee, status FROM invites_overview WHERE "
                   "app = '%s' AND status = 'hidden' ORDER BY invitee" %
                   app.name)
    assert ov == sorted([{'invitee': bob.upper(), 'status': 'hidden'},
                         {'invitee': dni, 'status': 'hidden'}],
                        key=lambda o: o['invitee']), ov
    out = json.loads(stack.ctl('--json', 'invites', '--app', app.client,
                               '--status', 'hidden'))
    assert sorted(o['id'] for o in out) == sorted([rb['id'], rd['id']]), out
    # Never retried or canceled by an admin: the row is inert.
    r = stack.ctl_run('invite', 'retry', rb['id'])
    assert r.returncode == 1, r
    assert row_for(app, bob) == [rb]


def resend(app, invite_id, headers, uid='me'):
    h = {k: v for k, v in headers.items() if k != 'Content-Type'}
    return app.stack.request('POST', ROUTE % uid + '/' + invite_id +
                             '/resend', h)


def test_hide_resend_looks_like_a_real_resend(stack):
    """A token's resend of a hidden invite, and of a real one whose
    address has since become a user's, answers as a real resend does and
    mails nothing; the rows say hidden with the reason, the resend is
    logged as any; a server key gets the truth (409)."""
    app = App(stack, unlimited=True)
    bob, _ = member_and_listed(app)
    tok = token_headers(app)
    mine, carol = unique('real'), unique('carol')
    check(app.invite(mine, headers=tok, uid='me'), 201,
          ok_body('Invite sent'))
    check(app.invite(carol, headers=tok, uid='me'), 201,
          ok_body('Invite sent'))
    stack.mail_for(carol)
    real_new = app.invite(unique('real2'), headers=tok, uid='me')
    check(real_new, 201, ok_body('Invite sent'))
    same_answer(app.invite(bob, headers=tok, uid='me'), real_new, 'bob')
    [rm], [rb], [rc] = row_for(app, mine), row_for(app, bob), \
        row_for(app, carol)
    real = resend(app, rm['id'], tok)
    check(real, 200, ok_body('Invite sent'))
    stack.mail_for(mine, count=2)
    app.add_user(carol, 'Carol Now')
    for what, r in (('hidden', rb), ('now a user', rc)):
        same_answer(resend(app, r['id'], tok), real, what)
    last = unique('last')
    check(app.invite(last, headers=tok, uid='me'), 201,
          ok_body('Invite sent'))
    no_mail_for(stack, [bob], last)
    assert len(stack.mail_for(carol, count=0, timeout=0)) == 1
    for r in (rb, rc):
        [now] = stack.sql("SELECT status, last_reply, resends FROM invites "
                          "WHERE id = '%s'" % r['id'])
        assert now == {'status': 'hidden', 'last_reply': WHY_MEMBER,
                       'resends': 1}, now
        [log] = stack.sql("SELECT count(*) AS n FROM invite_resends WHERE "
                          "invite_id = '%s'" % r['id'])
        assert log['n'] == 1, log
    # Listed to the inviter as sent, like the real one.
    seen = listed(app)
    assert seen[carol]['status'] == seen[rb['email']]['status'] == 'sent'
    # A server key is told the truth.
    check_error(resend(app, rb['id'], app.headers(), app.uid), 409, MEMBER)


def test_hide_server_key_still_gets_409(stack):
    app = App(stack, unlimited=True)
    bob, dni = member_and_listed(app)
    before = app.snapshot()
    check_error(app.invite(bob), 409, MEMBER, app, before)
    check_error(app.invite(dni), 409, SUPPRESSED, app, before)
    # Also after the token's hidden invite (membership comes before the
    # cooldown for a key).
    check(app.invite(bob, headers=token_headers(app)), 201,
          ok_body('Invite sent'))
    before = app.snapshot()
    check_error(app.invite(bob), 409, MEMBER, app, before)


def test_hide_idempotency_key_replays_like_a_real_invite(stack):
    app = App(stack, unlimited=True)
    bob, dni = member_and_listed(app)
    for what, addr in (('real', unique('real')), ('member', bob),
                       ('listed', dni)):
        key = 'k-%s' % uuid.uuid4()
        first = app.invite(addr, headers=token_headers(app, key=key))
        check(first, 201, ok_body('Invite sent'), what)
        rows = app.rows()
        for _ in range(2):
            again = app.invite(addr, headers=token_headers(app, key=key))
            same_answer(again, first, what + ' replayed')
        assert app.rows() == rows, what
        before = app.snapshot()
        check_error(app.invite(unique(), headers=token_headers(app, key=key)),
                    409, IDEM_OTHER, app, before, what)
    assert [r['status'] for r in row_for(app, bob) + row_for(app, dni)] == \
        ['hidden', 'hidden']


def test_hide_cooldown_like_a_new_address(stack):
    """A second token invite within the cooldown: 409 "invited recently"
    for the member and the listed address, as for a new address, from
    the same inviter or another."""
    app = App(stack, unlimited=True)
    bob, dni = member_and_listed(app)
    carol = app.add_user(unique('carol'), 'Carol')
    new = unique('new')
    for addr in (new, bob, dni):
        check(app.invite(addr, headers=token_headers(app)), 201,
              ok_body('Invite sent'), addr)
    before = app.snapshot()
    for uid in (app.uid, carol):
        for addr in (new, bob, dni):
            check_error(app.invite(addr, uid=uid,
                                   headers=token_headers(app, uid)),
                        409, RECENT, app, before, addr)


def test_hide_counts_against_the_limits_like_a_real_invite(stack):
    """Two inviters, an hourly limit of 3: one sends three real invites,
    the other two hidden ones and a real one; each gets its fourth 429
    with the same Retry-After, and an over-limit hidden invite is a 429
    too."""
    app = App(stack)
    app.ctl('app', 'set', app.client, '--limit-per-hour', '3',
            '--limit-per-day', '0', '--limit-per-minute', '0')
    bob, dni = member_and_listed(app)
    dave = app.add_user(unique('dave'), 'Dave')
    plain = [unique('p') for _ in range(3)]
    mixed = [bob, dni, unique('m')]
    answers = {}
    for uid, addrs in ((app.uid, plain), (dave, mixed)):
        for a in addrs:
            check(app.invite(a, uid=uid, headers=token_headers(app, uid)),
                  201, ok_body('Invite sent'), a)
        before = app.snapshot()
        answers[uid] = app.invite(unique('over'), uid=uid,
                                  headers=token_headers(app, uid))
        check_error(answers[uid], 429, TOO_MANY, app, before)
    ra = [int(answers[u][1]['retry-after']) for u in (app.uid, dave)]
    assert 3590 <= min(ra) and max(ra) <= 3600 and \
        abs(ra[0] - ra[1]) <= 2, ra
    # Past the limit, a member is refused as a new address is.
    other = unique('bob2')
    app.add_user(other)
    before = app.snapshot()
    check_error(app.invite(other, uid=dave, headers=token_headers(app, dave)),
                429, TOO_MANY, app, before)
    assert len(row_for(app, bob)) == len(row_for(app, dni)) == 1


def test_hide_config_is_checked(stack):
    """referral-invitesd -t refuses a value other than yes or no."""
    conf = stack.path('bad.conf')
    with open(stack.conf) as f:
        text = f.read()
    with open(conf, 'w') as f:
        f.write(text.replace('hide_existing_users = yes',
                             'hide_existing_users = on'))
    r = subprocess.run([harness.DAEMON, '-t', '-c', conf],
                       capture_output=True, text=True)
    assert r.returncode == 1, r
    assert 'hide_existing_users' in r.stderr + r.stdout, r
    assert 'expected no or yes' in r.stderr + r.stdout, r


# -- with the key off, and timing -------------------------------------------

def test_hide_off_is_as_before(stack):
    """Default (no): the token gets SPEC's 409s and nothing is stored."""
    def run(s):
        app = App(s, unlimited=True)
        bob, dni = member_and_listed(app)
        before = app.snapshot()
        for h in (token_headers(app), app.headers()):
            check_error(app.invite(bob, headers=h), 409, MEMBER, app, before)
            check_error(app.invite(dni, headers=h), 409, SUPPRESSED, app,
                        before)
        check(app.invite(unique(), headers=token_headers(app)), 201,
              ok_body('Invite sent'))
        assert s.sql("SELECT count(*) AS n FROM invites WHERE status = "
                     "'hidden'") == [{'n': 0}]
    harness.with_stack(run, conf={'delivery_wait': WAIT})


def test_hide_takes_as_long_as_a_real_invite(stack):
    """One worker and a relay that takes 1.2 s for each message: a hidden
    invite answers in about the time the real one before it took, not at
    once and not after the whole delivery_wait, and the inviter's list
    says it was sent that much later, as it says of a real one; after
    eight deferred real invites it answers "Invite queued" as they did,
    after eight sent ones "Invite sent" again."""
    def run(s):
        app = App(s, unlimited=True)
        bob, dni = member_and_listed(app)
        first = unique('real')
        real, t_real = timed(lambda: app.invite(
            first, headers=token_headers(app)))
        check(real, 201, ok_body('Invite sent'))
        assert RELAY_S <= t_real < LONG, t_real
        for addr in (bob, dni):
            resp, t = timed(lambda: app.invite(
                addr, headers=token_headers(app)))
            same_answer(resp, real, addr)
            # The relay's 1.2 s, varied by a fifth: never instant, and
            # never the whole delivery_wait (3 s).
            assert 0.75 * RELAY_S <= t < LONG, (addr, t, t_real)
        # Sent a second or two after they were made, real or hidden.
        seen = listed(app)
        for addr in (first, bob, dni):
            d = seen[addr]
            assert d['status'] == 'sent', d
            assert 1 <= epoch(d['sentAt']) - epoch(d['createdAt']) <= 2, d
        for _ in range(8):
            check(app.invite(unique('defer-'), headers=token_headers(app)),
                  201, ok_body('Invite queued'))
        bob2 = unique('bob')
        app.add_user(bob2)
        queued, t = timed(lambda: app.invite(bob2,
                                             headers=token_headers(app)))
        check(queued, 201, ok_body('Invite queued'))
        assert t < LONG, t
        last = None
        for _ in range(8):
            last = unique('sent')
            check(app.invite(last, headers=token_headers(app)), 201,
                  ok_body('Invite sent'))
        bob3 = unique('bob')
        app.add_user(bob3)
        resp, t = timed(lambda: app.invite(bob3, headers=token_headers(app)))
        check(resp, 201, ok_body('Invite sent'))
        assert 0.75 * RELAY_S <= t < LONG, t
        no_mail_for(s, [bob, dni, bob2, bob3], last)
        assert [r['status'] for a in (bob, dni, bob2, bob3)
                for r in row_for(app, a)] == ['hidden'] * 4
    harness.with_stack(run, conf={'hide_existing_users': 'yes',
                                  'delivery_wait': WAIT, 'workers': '1'},
                       smtpd_args=harness.SMTPD_ARGS +
                       ['--delay-data', str(RELAY_S)])


def test_hide_without_delivery_wait_answers_queued_at_once(stack):
    """delivery_wait = 0: every invite is "Invite queued" at once, the
    hidden ones too."""
    def run(s):
        app = App(s, unlimited=True)
        bob, dni = member_and_listed(app)
        real = app.invite(unique(), headers=token_headers(app))
        check(real, 201, ok_body('Invite queued'))
        for addr in (bob, dni):
            same_answer(app.invite(addr, headers=token_headers(app)), real,
                        addr)
        assert [r['status'] for a in (bob, dni)
                for r in row_for(app, a)] == ['hidden'] * 2
    harness.with_stack(run, conf={'hide_existing_users': 'yes',
                                  'delivery_wait': '0'})
