# SPDX-License-Identifier: ISC
# Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
"""The invite's life for apps, end to end (issue 23, items 1 to 3).

DELETE /api/v1/users/:userId/referral-invites/:inviteId (revoke), POST
.../:inviteId/resend (a new mail, a new accept token), and the POST's
optional members expiresInDays, metadata and redirectUrl.  Checked for
exact statuses, bodies and headers, against the invites and
invite_resends tables (sqlite3 CLI), `referral-invitesctl`, and the mail
the invitee received: accept tokens are taken from the caught mails'
links, or derived as referral-invites(7) says for invites never mailed.
"""

import base64
import calendar
import hashlib
import hmac
import json
import re
import threading
import time
import uuid

import harness
from harness import (App, INVITE_URL, ROUTE, check, check_error, ok_body,
                     unique, wait_for)

ACCEPT = '/api/v1/referral-invites/accept'
GONE = 'This invite has expired or was already used'
REVOKED = 'Invite revoked'
NOT_FOUND = 'Invite not found'
ACCEPTED_409 = 'This invite was already accepted'
TOO_SOON = 'This invite was sent recently, try again later'
INTERVAL = 2            # the module's resend_interval, seconds
DAY = 86400


def make_stack():
    # Sends quickly (nginx's flood guard out of the way); a short resend
    # interval, so that resends need not wait an hour.
    return harness.fast_stack(conf={'resend_interval': str(INTERVAL)})


# -- helpers -------------------------------------------------------------

def dumps(v):
    return json.dumps(v, separators=(',', ':'), ensure_ascii=False)


def life_path(app, invite_id, uid=None, resend=False):
    return (ROUTE % (uid or app.uid)) + '/' + invite_id + \
        ('/resend' if resend else '')


def no_ct(h):
    return {k: v for k, v in h.items() if k != 'Content-Type'}


def revoke(app, invite_id, headers=None, uid=None):
    h = no_ct(headers if headers is not None else app.headers())
    return app.stack.request('DELETE', life_path(app, invite_id, uid), h)


def resend(app, invite_id, headers=None, uid=None, body=None, key=None):
    h = dict(headers if headers is not None else app.headers())
    if body is None:
        h = no_ct(h)
    if key is not None:
        h['Idempotency-Key'] = key
    return app.stack.request('POST', life_path(app, invite_id, uid, True), h,
                             body)


def accept(app, token):
    return app.stack.request('POST', ACCEPT, app.headers(), {'token': token})


def row_of(stack, invite_id):
    [r] = stack.sql("SELECT * FROM invites WHERE id = '%s'" % invite_id)
    return r


def row_for(app, addr):
    [r] = [r for r in app.rows() if r['email_normalized'] == addr.lower()]
    return r


def resends_of(stack, invite_id):
    return stack.sql("SELECT * FROM invite_resends WHERE invite_id = '%s' "
                     "ORDER BY rowid" % invite_id)


def tokens(stack, addr, count=1):
    """The accept tokens of the mails addr received, oldest first (waits
    for count of them): one link in the text part, the same in HTML."""
    out = []
    for m in stack.mail_for(addr, count=count):
        text = m.get_body(('plain',)).get_content()
        found = set(re.findall(re.escape(INVITE_URL + '?token=') +
                               r'([A-Za-z0-9_-]+)', text))
        assert len(found) == 1, text
        out.append(found.pop())
    assert len(out) == count, out
    return out


def derive_token(stack, invite_id):
    """referral-invites(7): the invite id's 16 bytes, then an HMAC of
    "accept", the id (and, after a resend, the resend's number) under the
    server's secret, both base64url.  Generation 0 here."""
    with open(stack.path('db', 'secret.key'), 'rb') as f:
        secret = f.read()
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b'=').decode()  # noqa
    mac = hmac.new(secret, ('accept\n%s\n' % invite_id).encode(),
                   hashlib.sha256).digest()
    return b64(uuid.UUID(invite_id).bytes) + b64(mac)


def sha(tok):
    return hashlib.sha256(tok.encode()).hexdigest()


def sent_invite(app, addr=None, body=None):
    """An invite sent (its mail caught): (address, row, token)."""
    addr = addr or unique()
    b = dict(body or {}, email=addr, language='en')
    check(app.invite(body=b), 201, ok_body('Invite sent'))
    [tok] = tokens(app.stack, addr)
    return addr, row_for(app, addr), tok


def epoch(t):
    return calendar.timegm(time.strptime(t, '%Y-%m-%dT%H:%M:%SZ'))


def iso(t):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(t))


def wait_interval(row):
    """Until the resend interval after the row's last mail has passed, on
    the daemon's clock too: time(2), which glibc reads from the kernel's
    coarse clock, can be a tick (a few ms) behind time.time()."""
    last = epoch(row['resent_at'] or row['created_at'])
    wait_for('the resend interval',
             lambda: time.time() >= last + INTERVAL + 0.05, INTERVAL + 2)


def listing(app, uid=None):
    st, h, b = app.stack.request('GET', ROUTE % (uid or app.uid),
                                 no_ct(app.headers()))
    assert st == 200, (st, b)
    return json.loads(b)['data']


def accepted_body(row):
    """The accept answer for the row: metadata exactly as stored."""
    data = dumps({'inviteId': row['id'], 'inviterUserId': row['inviter_id'],
                  'email': row['email'], 'acceptedAt': row['accepted_at']})
    return ('{"success":true,"message":"Invite accepted","error":null,'
            '"data":%s,"metadata":%s,"redirectUrl":%s}}' % (
                data[:-1], row['metadata'] or 'null',
                dumps(row['redirect_url']))).encode()


def mailer_pid(stack):
    pids = harness.children(stack, 'ri-mailer')
    return pids[0] if len(pids) == 1 else None


def ctl_show(stack, invite_id):
    return json.loads(stack.ctl('--json', 'invite', 'show', invite_id))


# == revoke ===============================================================

def test_revoke_before_sending(stack):
    """A queued invite revoked while the mailer is stopped is never sent;
    a control invite queued with it is; the revoked one's token is 410."""
    app = App(stack)
    gone, control = unique('revoked'), unique('control')
    pid = wait_for('ri-mailer', lambda: mailer_pid(stack), 5)
    with harness.stopped(pid):
        check(app.invite(gone), 201, ok_body('Invite queued'))
        row = row_for(app, gone)
        assert (row['status'], row['attempts']) == ('queued', 0), row
        check(revoke(app, row['id']), 200, ok_body(REVOKED))
        check(app.invite(control), 201, ok_body('Invite queued'))
    # The mailer sends every due row at once: after the control's mail,
    # a bounded while more for the revoked one, which must not come.
    stack.mail_for(control)
    assert stack.mail_for(gone, timeout=2, count=0) == []
    r = row_of(stack, row['id'])
    assert (r['status'], r['attempts'], r['sent_at']) == \
        ('revoked', 0, None), r
    assert harness.ISO_UTC.fullmatch(r['revoked_at']), r
    assert r['updated_at'] == r['revoked_at'], r
    check_error(accept(app, derive_token(stack, row['id'])), 410, GONE)
    assert row_of(stack, row['id'])['accepted_at'] is None


def test_revoke_after_sending(stack):
    """A sent invite revoked: 200, its mailed token 410, the listing,
    the views and the tool show it; revoking again is 200 and changes
    nothing."""
    app = App(stack)
    addr, row, tok = sent_invite(app)
    check(revoke(app, row['id']), 200, ok_body(REVOKED))
    after = row_of(stack, row['id'])
    assert (after['status'], after['sent_at']) == ('revoked', row['sent_at'])
    check_error(accept(app, tok), 410, GONE)
    # Again: harmless, the first revoke's time stays.
    check(revoke(app, row['id']), 200, ok_body(REVOKED))
    assert row_of(stack, row['id']) == after
    [item] = [i for i in listing(app) if i['id'] == row['id']]
    assert item['status'] == 'revoked', item
    [v] = stack.sql("SELECT status FROM invites_overview WHERE "
                    "invite_id = '%s'" % row['id'])
    assert v['status'] == 'revoked', v
    show = ctl_show(stack, row['id'])
    assert (show['status'], show['revoked_at']) == \
        ('revoked', after['revoked_at']), show
    listed = json.loads(stack.ctl('--json', 'invites', '--app', app.client,
                                  '--status', 'revoked'))
    assert [i['id'] for i in listed] == [row['id']], listed
    assert stack.ctl_run('invites', '--status', 'revokd').returncode == 1


def test_revoke_with_token(stack):
    """The inviter's own token may revoke (also as "me"); another user's
    token may not act for the inviter; a read key may not revoke."""
    app = App(stack)
    _, row, _ = sent_invite(app)
    other = app.add_user(unique('other'))
    check_error(revoke(app, row['id'], app.bearer(other)), 403,
                'A token may only act for its own user')
    check_error(revoke(app, row['id'], app.headers(
        key=app.ctl('key', 'add', app.client, '--type', 'read'),
        key_type='read')), 403, 'This key may not change invites')
    assert row_of(stack, row['id'])['status'] == 'sent'
    check(revoke(app, row['id'], app.bearer(), uid='me'), 200,
          ok_body(REVOKED))
    assert row_of(stack, row['id'])['status'] == 'revoked'


def test_revoke_not_found(stack):
    """404 without telling why: unknown id, another inviter's invite,
    another app's; 400 for a malformed inviteId or userId.  Nothing
    changes."""
    app, app2 = App(stack), App(stack)
    _, row, _ = sent_invite(app)
    other = app.add_user(unique('other'))
    before = harness.snapshot(stack)
    check_error(revoke(app, str(uuid.uuid4())), 404, NOT_FOUND)
    check_error(revoke(app, row['id'], uid=other), 404, NOT_FOUND)
    check_error(revoke(app, row['id'], app.bearer(other), uid=other), 404,
                NOT_FOUND)
    check_error(revoke(app2, row['id']), 404, NOT_FOUND)
    check_error(revoke(app2, row['id'], uid=app.uid), 404, 'User not found')
    check_error(revoke(app, row['id'].upper()[:-1] + 'x'), 400,
                'inviteId is not a valid invite id')
    check_error(revoke(app, row['id'], uid='nope'), 400,
                'userId is not a valid user id')
    assert harness.snapshot(stack) == before
    # Any case names the invite (UUIDs are case-insensitive).
    check(revoke(app, row['id'].upper()), 200, ok_body(REVOKED))


def test_revoke_accepted(stack):
    app = App(stack)
    _, row, tok = sent_invite(app)
    check(accept(app, tok), 200, accepted_body(row_of(stack, row['id'])))
    before = row_of(stack, row['id'])
    check_error(revoke(app, row['id']), 409, ACCEPTED_409)
    assert row_of(stack, row['id']) == before


def test_revoke_methods(stack):
    """The invite's path serves DELETE only; resend's POST only."""
    app = App(stack)
    path = life_path(app, str(uuid.uuid4()))
    st, h, b = stack.request('GET', path, no_ct(app.headers()))
    assert (st, h.get('allow')) == (405, 'DELETE'), (st, h, b)
    st, h, b = stack.request('GET', path + '/resend', no_ct(app.headers()))
    assert (st, h.get('allow')) == (405, 'POST'), (st, h, b)
    st, h, b = stack.request('DELETE', path + '/other', no_ct(app.headers()))
    assert st == 404, (st, b)


# == expiresInDays, metadata, redirectUrl ===================================

PREFIXES = 'https://app.example/welcome/,https://app.example/start?'


def test_options_round_trip(stack):
    """metadata and redirectUrl come back on accept, expiresAt and
    metadata in the listing; the tool shows them."""
    app = App(stack)
    app.ctl('app', 'set', app.client, '--redirect-allow', PREFIXES)
    meta = {'plan': 'pro', 'ref': 'tw \u2603 "q"\n', '': ''}
    url = 'https://app.example/welcome/step-2?x=1'
    addr, row, tok = sent_invite(app, body={
        'metadata': meta, 'redirectUrl': url, 'expiresInDays': 7})
    stored = '{"plan":"pro","ref":"tw \u2603 \\"q\\"\\u000a","":""}'
    assert (row['metadata'], row['redirect_url'], row['expires_in']) == \
        (stored, url, 7 * DAY), row
    [item] = [i for i in listing(app) if i['id'] == row['id']]
    assert list(item) == ['id', 'email', 'language', 'status', 'createdAt',
                          'sentAt', 'acceptedAt', 'expiresAt', 'metadata']
    assert item['expiresAt'] == iso(epoch(row['created_at']) + 7 * DAY)
    assert item['metadata'] == meta, item
    # Byte for byte, as stored.
    st, h, b = stack.request('GET', ROUTE % app.uid, no_ct(app.headers()))
    assert (',"metadata":%s}' % stored).encode() in b, b
    st, h, b = resp = accept(app, tok)
    check(resp, 200, accepted_body(row_of(stack, row['id'])))
    assert b.endswith((',"metadata":%s,"redirectUrl":%s}}' % (
        stored, json.dumps(url))).encode()), b
    show = ctl_show(stack, row['id'])
    assert (show['metadata'], show['redirect_url'], show['expires_in']) == \
        (stored, url, 7 * DAY), show
    # Without them: null, and the app's lifetime (14 days by default).
    addr, row, tok = sent_invite(app)
    [item] = [i for i in listing(app) if i['id'] == row['id']]
    assert (item['metadata'], item['expiresAt']) == \
        (None, iso(epoch(row['created_at']) + 14 * DAY)), item
    st, h, b = accept(app, tok)
    assert st == 200 and b.endswith(b',"metadata":null,"redirectUrl":null}}')


def test_expires_in_days(stack):
    """An invite's own lifetime beats the app's, both ways: with the app's
    at 1 s, one of expiresInDays 1 still accepts after 2 s; one made to
    look 1 day and 5 s old (its created_at moved back in the file) is
    410 whatever the app's; the listing's expiresAt follows both."""
    app = App(stack)
    app.ctl('app', 'set', app.client, '--accept-ttl', '1')
    _, own, own_tok = sent_invite(app, body={'expiresInDays': 1})
    _, short, short_tok = sent_invite(app)
    items = {i['id']: i for i in listing(app)}
    assert items[own['id']]['expiresAt'] == iso(epoch(own['created_at']) +
                                                DAY)
    assert items[short['id']]['expiresAt'] == \
        iso(epoch(short['created_at']) + 1)
    wait_for('the app TTL', lambda: time.time() >= epoch(
        short['created_at']) + 2.5, 5)
    check_error(accept(app, short_tok), 410, GONE)
    check(accept(app, own_tok), 200, accepted_body(row_of(stack, own['id'])))
    app.ctl('app', 'set', app.client, '--accept-ttl', str(30 * DAY))
    _, old, old_tok = sent_invite(app, body={'expiresInDays': 1})
    moved = iso(epoch(old['created_at']) - DAY - 5)
    stack.sql("UPDATE invites SET created_at = '%s' WHERE id = '%s'" %
              (moved, old['id']))
    check_error(accept(app, old_tok), 410, GONE)
    _, young, young_tok = sent_invite(app, body={'expiresInDays': 1})
    stack.sql("UPDATE invites SET created_at = '%s' WHERE id = '%s'" %
              (iso(epoch(young['created_at']) - DAY + 60), young['id']))
    check(accept(app, young_tok), 200,
          accepted_body(row_of(stack, young['id'])))


def bad_bodies():
    """(members, error): each a 400 naming the member."""
    days = 'expiresInDays must be a whole number from 1 to 30'
    obj = 'metadata must be a JSON object'
    vals = 'metadata values must be strings'
    url = 'redirectUrl is not an allowed URL'
    many = {'k%d' % i: 'v' for i in range(17)}
    out = [('"expiresInDays":%s' % v, days) for v in (
        '0', '31', '-1', '1.5', '"7"', 'null', 'true', '[]', '{}', '1e9',
        '30.000001')]
    out += [('"metadata":%s' % v, obj) for v in ('"x"', '1', 'null', '[]',
                                                   'true')]
    out += [('"metadata":%s' % v, vals) for v in (
        '{"a":1}', '{"a":null}', '{"a":{"b":"c"}}', '{"a":["b"]}',
        '{"a":"b","c":false}')]
    out += [('"metadata":%s' % dumps(many),
             'metadata may have at most 16 members'),
            ('"metadata":{"a":"1","a":"2"}', 'metadata has a duplicate member'),
            ('"metadata":{"k":"%s"}' % ('x' * 1017),
             'metadata must be at most 1024 bytes'),
            ('"metadata":{"k":"%s\\n"}' % ('x' * 1011),
             'metadata must be at most 1024 bytes'),
            ('"metadata":{},"metadata":{}',
             'Duplicate member in request body: metadata'),
            ('"expiresInDays":1,"expiresInDays":1',
             'Duplicate member in request body: expiresInDays'),
            ('"redirectUrl":1', 'redirectUrl must be a string'),
            ('"redirectUrl":null', 'redirectUrl must be a string'),
            ('"expiresInDay":1',
             'Unexpected member in request body: expiresInDay'),
            ('"Metadata":{}', 'Unexpected member in request body: Metadata')]
    out += [('"redirectUrl":%s' % json.dumps(v), url) for v in (
        'https://app.example/welcome', 'https://app.example/other/',
        'https://app.example.evil/welcome/', 'http://app.example/welcome/',
        'https://app.example/welcome/ x', 'https://app.example/welcome/\t',
        'https://app.example/welcome/\u00e9', '',
        'https://app.example/welcome/' + 'x' * 2021)]
    return out


def test_bad_members(stack):
    """Every bad value of each new member: 400 with its exact message,
    nothing stored, no mail."""
    app = App(stack)
    app.ctl('app', 'set', app.client, '--redirect-allow', PREFIXES)
    before = harness.snapshot(stack)
    mails = len(stack._mails())
    for members, error in bad_bodies():
        addr = unique()
        raw = '{"email":"%s","language":"en",%s}' % (addr, members)
        check_error(app.invite(body=raw.encode()), 400, error,
                    what=members[:80])
    assert harness.snapshot(stack) == before
    assert len(stack._mails()) == mails
    # The limits themselves pass: 16 members, 1024 bytes, 30 days, the
    # longest URL.
    sixteen = {'k%02d' % i: 'v' for i in range(16)}
    big = {'k': 'x' * 1016}
    assert len(dumps(big)) == 1024
    for extra in ({'metadata': sixteen}, {'metadata': big},
                  {'expiresInDays': 30},
                  {'redirectUrl': 'https://app.example/welcome/' +
                   'x' * 2020},
                  {'redirectUrl': 'https://app.example/start?ref=1'}):
        sent_invite(app, body=extra)


def test_redirect_without_prefixes(stack):
    """An app that allows none: any redirectUrl is a 400."""
    app = App(stack)
    check_error(app.invite(body={'email': unique(), 'language': 'en',
                                 'redirectUrl': 'https://app.example/'}),
                400, 'redirectUrl is not an allowed URL')
    # A body check: it binds no Idempotency-Key, the fixed body acts.
    h = dict(app.headers(), **{'Idempotency-Key': 'redirect-1'})
    addr = unique()
    check_error(app.invite(headers=h, body={
        'email': addr, 'language': 'en',
        'redirectUrl': 'https://elsewhere.example/'}), 400,
        'redirectUrl is not an allowed URL')
    check(app.invite(headers=h, body={'email': addr, 'language': 'en'}),
          201, ok_body('Invite sent'))
    app.ctl('app', 'set', app.client, '--redirect-allow',
            'https://app.example/')
    sent_invite(app, body={'redirectUrl': 'https://app.example/'})
    app.ctl('app', 'set', app.client, '--redirect-allow', '')
    check_error(app.invite(body={'email': unique(), 'language': 'en',
                                 'redirectUrl': 'https://app.example/'}),
                400, 'redirectUrl is not an allowed URL')


def test_ctl_redirect_allow(stack):
    app = App(stack)
    for bad in ('https://app.example', 'ftp://app.example/',
                'https://app.example/,', ',https://app.example/',
                'https://a.example/,,https://b.example/',
                'https://app.example/a b', 'https:///x'):
        r = stack.ctl_run('app', 'set', app.client, '--redirect-allow', bad)
        assert r.returncode == 1 and r.stdout == '', (bad, r)
        assert '--redirect-allow' in r.stderr, (bad, r.stderr)
    show = json.loads(stack.ctl('--json', 'app', 'show', app.client))
    assert show['redirect_allow'] is None, show
    app.ctl('app', 'set', app.client, '--redirect-allow', PREFIXES)
    show = json.loads(stack.ctl('--json', 'app', 'show', app.client))
    assert show['redirect_allow'] == PREFIXES, show


# == resend ===============================================================

def test_resend_then_accept(stack):
    """A resend mails a new link: the old token is 410, the new one 200;
    the mails differ in token and Message-ID."""
    app = App(stack)
    addr, row, old = sent_invite(app)
    wait_interval(row)
    check(resend(app, row['id']), 200, ok_body('Invite sent'))
    first, second = stack.mail_for(addr, count=2)
    t1, t2 = tokens(stack, addr, count=2)
    assert t1 == old and t2 != old, (t1, t2)
    assert first['Message-ID'] != second['Message-ID'], \
        (first['Message-ID'], second['Message-ID'])
    assert str(second['Message-ID']).startswith('<invite-%s.1@' % row['id'])
    r = row_of(stack, row['id'])
    assert (r['status'], r['resends'], r['attempts'],
            r['accept_token_hash']) == ('sent', 1, 1, sha(t2)), r
    assert r['resent_at'] >= row['created_at'] and r['sent_at'] >= \
        r['resent_at'], r
    [log] = resends_of(stack, row['id'])
    assert (log['replaced_token_hash'], log['inviter_id'], log['app_id']) \
        == (sha(old), app.uid, app.client), log
    check_error(accept(app, old), 410, GONE)
    assert row_of(stack, row['id'])['accepted_at'] is None
    check(accept(app, t2), 200, accepted_body(row_of(stack, row['id'])))
    check_error(accept(app, old), 410, GONE)
    # With a token: as the POST; then accepted is 409.
    check_error(resend(app, row['id'], app.bearer(), uid='me'), 409,
                ACCEPTED_409)


def test_resend_twice(stack):
    """Each resend has its own token; every replaced one is 410."""
    app = App(stack)
    addr, row, t0 = sent_invite(app)
    for n in (1, 2):
        wait_interval(row_of(stack, row['id']))
        check(resend(app, row['id']), 200, ok_body('Invite sent'))
    ts = tokens(stack, addr, count=3)
    assert len(set(ts)) == 3, ts
    assert row_of(stack, row['id'])['resends'] == 2
    for t in ts[:2]:
        check_error(accept(app, t), 410, GONE)
    check(accept(app, ts[2]), 200, accepted_body(row_of(stack, row['id'])))


def test_resend_conflicts(stack):
    """409 for revoked, accepted, an address that is now a user's or on
    the do-not-invite list; 404 unknown or another's; 400 for a body
    with members.  Nothing changes, no mail."""
    app = App(stack)
    _, revoked, _ = sent_invite(app)
    check(revoke(app, revoked['id']), 200, ok_body(REVOKED))
    _, acc, acc_tok = sent_invite(app)
    check(accept(app, acc_tok), 200, accepted_body(row_of(stack, acc['id'])))
    member, joined, _ = sent_invite(app)
    app.add_user(member)
    listed, optout, _ = sent_invite(app)
    app.ctl('suppress', 'add', app.client, listed)
    other = app.add_user(unique('other'))
    for r in (revoked, acc, joined, optout):
        wait_interval(r)
    before = harness.snapshot(stack)
    mails = len(stack._mails())
    check_error(resend(app, revoked['id']), 409, 'This invite was revoked')
    check_error(resend(app, acc['id']), 409, ACCEPTED_409)
    check_error(resend(app, joined['id']), 409,
                'This address already belongs to a user')
    check_error(resend(app, optout['id']), 409,
                'This address does not accept invites')
    check_error(resend(app, str(uuid.uuid4())), 404, NOT_FOUND)
    check_error(resend(app, joined['id'], uid=other), 404, NOT_FOUND)
    check_error(resend(app, joined['id'], body={'x': '1'}), 400,
                'Unexpected member in request body: x')
    check_error(resend(app, joined['id'], body=b'[]'), 400,
                'Request body must be a JSON object')
    check_error(resend(app, 'x' * 36), 400,
                'inviteId is not a valid invite id')
    assert harness.snapshot(stack) == before
    assert stack.sql('SELECT count(*) AS n FROM invite_resends WHERE '
                     "app_id = '%s'" % app.client) == [{'n': 0}]
    assert len(stack._mails()) == mails
    # An empty JSON object is no body at all.
    _, fine, _ = sent_invite(app)
    wait_interval(fine)
    check(resend(app, fine['id'], body={}), 200, ok_body('Invite sent'))


def test_resend_queued(stack):
    """With the mailer stopped the answer is "Invite queued" after
    delivery_wait (200); the mail goes out once it runs again, with the
    new token."""
    app = App(stack)
    addr, row, old = sent_invite(app)
    wait_interval(row)
    pid = wait_for('ri-mailer', lambda: mailer_pid(stack), 5)
    with harness.stopped(pid):
        check(resend(app, row['id']), 200, ok_body('Invite queued'))
        r = row_of(stack, row['id'])
        assert (r['status'], r['attempts'], r['resends']) == \
            ('queued', 0, 1), r
    t1, t2 = tokens(stack, addr, count=2)
    assert (t1, sha(t2)) == (old, row_of(stack, row['id'])
                             ['accept_token_hash'])


def test_resend_counted_against_limits(stack):
    """A resend takes a slot of the inviter's hourly limit as an invite
    does: with a limit of 2, an invite and its resend use it up."""
    app = App(stack)
    app.ctl('app', 'set', app.client, '--limit-per-hour', '2')
    addr, row, _ = sent_invite(app)
    wait_interval(row)
    check(resend(app, row['id']), 200, ok_body('Invite sent'))
    r = row_of(stack, row['id'])
    t0 = int(time.time())
    resp = app.invite()
    h = check_error(resp, 429, 'Too many invites, try again later')
    # The oldest of the two (the invite) leaves the hour first.
    want = epoch(row['created_at']) + 3600
    assert want - int(time.time()) <= int(h['retry-after']) <= want - t0, h
    wait_interval(r)
    before = harness.snapshot(stack)
    h = check_error(resend(app, row['id']), 429,
                    'Too many invites, try again later')
    assert int(h['retry-after']) <= want - t0, h
    assert harness.snapshot(stack) == before


def test_resend_idempotency_key(stack):
    """The same key replays the first answer byte for byte and resends
    once; on another invite's path it is a 409."""
    app = App(stack)
    addr, row, _ = sent_invite(app)
    _, row2, _ = sent_invite(app)
    wait_interval(row)
    wait_interval(row2)
    first = resend(app, row['id'], key='resend-1')
    check(first, 200, ok_body('Invite sent'))
    stack.mail_for(addr, count=2)
    wait_interval(row_of(stack, row['id']))
    again = resend(app, row['id'], key='resend-1')
    check(again, 200, ok_body('Invite sent'))
    assert row_of(stack, row['id'])['resends'] == 1
    assert len(resends_of(stack, row['id'])) == 1
    assert len(stack.mail_for(addr, timeout=1, count=0)) == 2
    [k] = stack.sql("SELECT status, response FROM idempotency_keys WHERE "
                    "key = 'resend-1' AND app_id = '%s'" % app.client)
    assert k == {'status': 200, 'response': ok_body('Invite sent').decode()}
    check_error(resend(app, row2['id'], key='resend-1'), 409,
                'Idempotency-Key was used for a different request')
    assert row_of(stack, row2['id'])['resends'] == 0


def test_resend_idempotency_key_in_progress(stack):
    """The same resend with the same key while the first waits for its
    verdict (the mailer stopped): it waits for the first answer and gets
    it; one resend, one more mail.  A different request with the key
    meanwhile is the 409 at once."""
    app = App(stack)
    addr, row, _ = sent_invite(app)
    wait_interval(row)
    key = 'resend-slow-%s' % uuid.uuid4().hex
    out = {}

    def one(name):
        out[name] = resend(app, row['id'], key=key)
    [mailer] = harness.children(stack, 'ri-mailer')
    with harness.stopped(mailer):
        t1 = threading.Thread(target=one, args=('first',))
        t1.start()
        harness.wait_for('the resend stored',
                         lambda: resends_of(stack, row['id']), 4)
        t2 = threading.Thread(target=one, args=('again',))
        t2.start()
        check_error(resend(app, row['id'], key=key, body={}), 409,
                    'Idempotency-Key was used for a different request')
        t1.join(30)
        t2.join(30)
    check(out['first'], 200, ok_body('Invite queued'))
    check(out['again'], 200, ok_body('Invite queued'))
    assert row_of(stack, row['id'])['resends'] == 1
    assert len(resends_of(stack, row['id'])) == 1
    stack.mail_for(addr, count=2)
    assert len(stack.mail_for(addr, timeout=1, count=0)) == 2


def test_resend_interval_default(stack):
    """resend_interval defaults to an hour: a resend right after the
    invite is 429 with Retry-After the seconds left, exactly."""
    def run(s):
        app = App(s)
        _, row, _ = sent_invite(app)
        before = harness.snapshot(s)
        t0 = int(time.time())
        resp = resend(app, row['id'])
        t1 = int(time.time())
        h = check_error(resp, 429, TOO_SOON)
        left = epoch(row['created_at']) + 3600
        assert left - t1 <= int(h['retry-after']) <= left - t0, \
            (h, left - t1, left - t0)
        assert harness.snapshot(s) == before
        assert resends_of(s, row['id']) == []
    harness.with_stack(run)


def test_revoke_while_sending(stack):
    """The window: an invite the mailer has claimed ('sending', here held
    in a slow DATA) is revoked at once, 200; that mail still arrives, its
    link already 410, and the mailer's verdict leaves the row revoked."""
    def run(s):
        app = App(s)
        addr = unique('sending')
        check(app.invite(addr), 201, ok_body('Invite queued'))
        row = row_for(app, addr)
        wait_for('sending', lambda: row_of(s, row['id'])['status'] ==
                 'sending', 10)
        check(revoke(app, row['id']), 200, ok_body(REVOKED))
        [tok] = tokens(s, addr)
        harness.wait_log(s, 'invite %s: sent:' % row['id'])
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            r = row_of(s, row['id'])
            assert (r['status'], r['sent_at']) == ('revoked', None), r
            time.sleep(0.2)
        check_error(accept(app, tok), 410, GONE)
    harness.with_stack(run, smtpd_args=harness.SMTPD_ARGS +
                       ['--delay-data', '3'], conf={'delivery_wait': '0'})
