# SPDX-License-Identifier: ISC
# Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
"""Closing the referral loop, end to end (issue 8, SPEC section 10).

GET /api/v1/users/:userId/referral-invites (newest first, limit, opaque
cursor in a Link header) and POST /api/v1/referral-invites/accept (single
use, per-app expiry), checked for exact statuses, bodies and headers
against the invites table and the mail the invitee received: the accept
token is always taken from the link in a caught mail.
"""

import base64
import calendar
import hashlib
import hmac
import html
import json
import os
import re
import threading
import time
import uuid

import harness

from harness import (App, INVITE_URL, ROUTE, check, check_401, check_error,
                     err_body, ok_body, unique)

ACCEPT = '/api/v1/referral-invites/accept'
LISTED = 'Invites listed'
GONE = 'This invite has expired or was already used'
ISO = re.compile(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ')


# -- helpers -------------------------------------------------------------

# A module that sends quickly: keep nginx's flood guard out of its way.
MODULE_RATE = '100000r/s'


def make_stack():
    return harness.fast_stack(MODULE_RATE)


def dumps(v):
    return json.dumps(v, separators=(',', ':'), ensure_ascii=False)


def listing_body(items):
    return ('{"success":true,"message":"Invites listed","error":null,'
            '"data":%s}' % dumps(items)).encode()


def expires_at(row, ttl=14 * 86400):
    """When the row's token expires: from its creation or last resend,
    its own lifetime or the app's (ttl)."""
    t = time.strptime(row['resent_at'] or row['created_at'],
                      '%Y-%m-%dT%H:%M:%SZ')
    life = row['expires_in'] if row['expires_in'] is not None else ttl
    return time.strftime('%Y-%m-%dT%H:%M:%SZ',
                         time.gmtime(calendar.timegm(t) + life))


def item(row, ttl=14 * 86400):
    """A listing's data object for an invites row, members in order."""
    return {'id': row['id'], 'email': row['email'],
            'language': row['language_requested'], 'status': row['status'],
            'createdAt': row['created_at'], 'sentAt': row['sent_at'],
            'acceptedAt': row['accepted_at'],
            'expiresAt': expires_at(row, ttl),
            'metadata': json.loads(row['metadata']) if row['metadata']
            else None}


def newest_first(stack, app, uid=None):
    """The inviter's invites as the listing must order them."""
    return stack.sql("SELECT * FROM invites WHERE inviter_id = '%s' AND "
                     "app_id = '%s' ORDER BY created_at DESC, rowid DESC" %
                     (uid or app.uid, app.client))


def get_list(app, query='', headers=None, uid=None):
    h = headers if headers is not None else app.headers(key_type='write')
    h = {k: v for k, v in h.items() if k != 'Content-Type'}
    path = ROUTE % (uid or app.uid) + (('?' + query) if query else '')
    return app.stack.request('GET', path, h)


def link_next(app, h, uid, limit):
    """The path of the Link rel="next" header, checked for its form."""
    link = h.get('link')
    assert link, 'no Link header: %r' % h
    m = re.fullmatch(r'<([^<>]+)>; rel="next"', link)
    assert m, link
    prefix = '%s/api/v1/users/%s/referral-invites?limit=%d&cursor=' % (
        app.stack.base_url, uid, limit)
    assert m.group(1).startswith(prefix), (m.group(1), prefix)
    cursor = m.group(1)[len(prefix):]
    assert re.fullmatch(r'[A-Za-z0-9_-]+', cursor), cursor
    return m.group(1)[len(app.stack.base_url):]


def pages(app, limit, headers=None, uid='', between=None):
    """Follow Link from the first page; list of (data, next path)."""
    uid = uid or app.uid
    path = ROUTE % uid + '?limit=%d' % limit
    out = []
    h = headers if headers is not None else app.headers(key_type='write')
    h = {k: v for k, v in h.items() if k != 'Content-Type'}
    while path:
        st, hd, b = resp = app.stack.request('GET', path, h)
        check(resp, 200, b)
        body = json.loads(b)
        assert list(body) == ['success', 'message', 'error', 'data'], b
        assert (body['success'], body['message'], body['error']) == \
            (True, LISTED, None), b
        nxt = link_next(app, hd, uid, limit) if 'link' in hd else None
        out.append((body['data'], nxt))
        path = nxt
        if between and path:
            between(len(out))
        assert len(out) < 50, 'Link never ends'
    return out


def accept_link(stack, addr, invite_url=INVITE_URL):
    """The accept token from the one mail addr received: the link in the
    text part, the same in the HTML part."""
    [m] = stack.mail_for(addr)
    text = m.get_body(('plain',)).get_content()
    sep = '&' if '?' in invite_url else '?'
    pat = re.escape(invite_url + sep + 'token=') + r'([A-Za-z0-9_-]+)'
    found = re.findall(pat, text)
    assert len(set(found)) == 1, (found, text)
    tok = found[0]
    assert len(tok) == 65, tok
    page = html.unescape(m.get_body(('html',)).get_content())
    assert invite_url + sep + 'token=' + tok in page, page
    # Only its hash is stored.
    rows = stack.sql("SELECT accept_token_hash FROM invites WHERE "
                     "email_normalized = '%s'" % addr.lower())
    assert hashlib.sha256(tok.encode()).hexdigest() in \
        [r['accept_token_hash'] for r in rows], rows
    return tok


def accept(app, token, headers=None, raw=None, key=None):
    h = dict(headers if headers is not None else app.headers())
    if key is not None:
        h['Idempotency-Key'] = key
    body = raw if raw is not None else {'token': token}
    return app.stack.request('POST', ACCEPT, h, body)


def accepted_body(row):
    data = {'inviteId': row['id'], 'inviterUserId': row['inviter_id'],
            'email': row['email'], 'acceptedAt': row['accepted_at'],
            'metadata': json.loads(row['metadata']) if row['metadata']
            else None, 'redirectUrl': row['redirect_url']}
    return ('{"success":true,"message":"Invite accepted","error":null,'
            '"data":%s}' % dumps(data)).encode()


def row_of(stack, invite_id):
    [r] = stack.sql("SELECT * FROM invites WHERE id = '%s'" % invite_id)
    return r


def sent_invite(app, addr=None, uid=None):
    addr = addr or unique()
    check(app.invite(addr, uid=uid), 201, ok_body('Invite sent'))
    [r] = [r for r in app.rows() if r['email_normalized'] == addr.lower()]
    return addr, r


def mailed_invite(app):
    """sent_invite(), and the accept token from its mail:
    (address, row, token)."""
    addr, row = sent_invite(app)
    return addr, row, accept_link(app.stack, addr)


def unlimited(app):
    app.stack.ctl('app', 'set', app.client, '--limit-per-hour', '0',
                  '--limit-per-day', '0')


# -- GET: listing --------------------------------------------------------

def test_list_newest_first_exact_objects(stack):
    app = App(stack)
    other = App(stack)
    bob = app.add_user(unique('bob'))
    given = 'Mixed.Case-%s@Example.ORG' % uuid.uuid4().hex[:6]
    check(app.invite('  %s ' % given, 'pt-br'), 201, ok_body('Invite sent'))
    check(app.invite(unique('defer'), 'DE'), 201, ok_body('Invite queued'))
    st, h, b = app.invite(unique('reject'), 'zh-hant-tw')
    assert st == 400, (st, b)
    time.sleep(1.1)      # a later second, too (a fixed wait: a time window)
    check(app.invite(unique(), 'en'), 201, ok_body('Invite sent'))
    # Not this inviter's, not this app's:
    check(app.invite(unique(), uid=bob), 201, ok_body('Invite sent'))
    check(other.invite(unique()), 201, ok_body('Invite sent'))
    rows = newest_first(stack, app)
    assert len(rows) == 4, rows
    assert [r['status'] for r in rows] == ['sent', 'failed', 'queued',
                                           'sent'], rows
    assert rows[3]['email'] == given and rows[3]['language_requested'] == \
        'pt-BR', rows[3]
    expected = listing_body([item(r) for r in rows])
    for key_type in ('write', 'read'):
        hdrs = app.headers(key_type=key_type)
        if key_type == 'read':
            hdrs['X-API-KEY'] = stack.ctl('key', 'add', app.client,
                                          '--type', 'read')
        h = check(get_list(app, headers=hdrs), 200, expected)
        assert 'link' not in h, h
    for r in rows:
        assert ISO.fullmatch(r['created_at']), r
        assert r['accepted_at'] is None
    # The user's own token, by id and as "me".
    for uid in (app.uid, app.uid.upper(), 'me'):
        check(get_list(app, headers=app.bearer(), uid=uid), 200, expected)
    # Bob sees his own one only.
    [brow] = newest_first(stack, app, bob)
    check(get_list(app, uid=bob), 200, listing_body([item(brow)]))


def test_list_empty_and_disabled_user(stack):
    app = App(stack)
    check(get_list(app), 200, listing_body([]))
    sent_invite(app)
    tok = app.bearer()
    stack.ctl('user', 'disable', app.uid)
    rows = newest_first(stack, app)
    # A disabled user may still list.
    check(get_list(app), 200, listing_body([item(r) for r in rows]))
    check(get_list(app, headers=tok, uid='me'), 200,
          listing_body([item(r) for r in rows]))


def test_pagination_with_inserts_between(stack):
    app = App(stack)
    unlimited(app)
    for _ in range(25):
        sent_invite(app)
    original = [item(r) for r in newest_first(stack, app)]
    assert len(original) == 25
    added = []

    def insert(n):
        for _ in range(3 if n == 1 else 2):
            added.append(sent_invite(app)[0])
    got = pages(app, 7, between=insert)
    assert [len(d) for d, _ in got] == [7, 7, 7, 4], \
        [len(d) for d, _ in got]
    assert got[-1][1] is None
    seen = [x for d, _ in got for x in d]
    ids = [x['id'] for x in seen]
    assert len(ids) == len(set(ids)), 'duplicates across pages'
    # Exactly the invites that existed at the first page: no gaps, the
    # ones added while paging are not slipped in, order kept.
    assert seen == original, (seen, original)
    assert len(added) == 7
    # A fresh walk shows all 32, newest first, the added ones on top.
    now = [item(r) for r in newest_first(stack, app)]
    assert len(now) == 32
    assert [x['email'] for x in now[:7]] == added[::-1]
    got = pages(app, 10)
    assert [len(d) for d, _ in got] == [10, 10, 10, 2]
    assert [x for d, _ in got for x in d] == now
    # Exactly full pages: the last one has no Link.
    got = pages(app, 16)
    assert [len(d) for d, _ in got] == [16, 16] and got[-1][1] is None
    # Default limit 20; Link carries limit=20.
    st, h, b = resp = get_list(app)
    check(resp, 200, listing_body(now[:20]))
    nxt = link_next(app, h, app.uid, 20)
    check(stack.request('GET', nxt, {k: v for k, v in app.headers().items()
                                     if k != 'Content-Type'}),
          200, listing_body(now[20:]))
    # 100 at most, in one page.
    h = check(get_list(app, 'limit=100'), 200, listing_body(now))
    assert 'link' not in h
    # Walking with the user's token, via "me", gives the same.
    got = pages(app, 9, headers=app.bearer(), uid='me')
    assert [x for d, _ in got for x in d] == now


def test_list_limit_bounds(stack):
    app = App(stack)
    for _ in range(3):
        sent_invite(app)
    now = [item(r) for r in newest_first(stack, app)]
    for q in ('limit=0', 'limit=101', 'limit=-1', 'limit=abc', 'limit=',
              'limit=1.5', 'limit=1e2', 'limit=%201', 'limit=99999999999'):
        try:
            check_error(get_list(app, q), 400,
                        'limit must be a number from 1 to 100')
        except AssertionError as e:
            raise AssertionError('%s: %s' % (q, e))
    h = check(get_list(app, 'limit=1'), 200, listing_body(now[:1]))
    link_next(app, h, app.uid, 1)
    h = check(get_list(app, 'limit=3'), 200, listing_body(now))
    assert 'link' not in h
    check(get_list(app, 'limit=100'), 200, listing_body(now))


def test_list_bad_cursor(stack):
    app = App(stack)
    for _ in range(3):
        sent_invite(app)
    now = [item(r) for r in newest_first(stack, app)]
    st, h, b = get_list(app, 'limit=1')
    good = link_next(app, h, app.uid, 1).split('cursor=')[1]
    check(get_list(app, 'limit=1&cursor=' + good), 200,
          listing_body(now[1:2]))
    b64 = base64.urlsafe_b64encode
    for c in ('', 'garbage!', 'x', good[:-3], good + '%3D%3D', '%00',
              b64(b'not a cursor at all').decode(),
              b64(b'2026-11-26T04:27:19Z').decode(),
              b64(b'2026-11-26T04:27:19Z -5').decode(),
              b64(b'2026-11-26T04:27:19Z x').decode(),
              'A' * 200):
        try:
            check_error(get_list(app, 'cursor=' + c), 400,
                        'cursor is not valid')
        except AssertionError as e:
            raise AssertionError('cursor %r: %s' % (c, e))


def test_list_credentials(stack):
    app = App(stack)
    other = App(stack)
    bob = app.add_user(unique('bob'))
    sent_invite(app)
    nf = err_body('User not found')
    # Another user's token: 403, by id; "me" is then bob himself.
    check_error(get_list(app, headers=app.bearer(uid=bob)), 403,
                'A token may only act for its own user')
    check(get_list(app, headers=app.bearer(uid=bob), uid='me'), 200,
          listing_body([]))
    # Unknown user, and a user of another app: 404.
    for uid in (str(uuid.uuid4()), other.uid):
        check(get_list(app, uid=uid), 404, nf)
        check(get_list(app, uid=uid, headers={
            'X-API-KEY': stack.ctl('key', 'add', app.client, '--type',
                                   'read'),
            'X-API-KEY-TYPE': 'read', 'X-CLIENT-ID': app.client}), 404, nf)
    check_error(get_list(app, uid='me'), 400,
                'userId is not a valid user id')
    check_error(get_list(app, uid='not-a-uuid'), 400,
                'userId is not a valid user id')
    check_401(get_list(app, headers={}), 'Authentication required')
    check_401(get_list(app, headers=app.headers(key=other.key)),
              'Invalid credentials')
    check_401(get_list(app, headers={'Authorization': 'Bearer x.y.z'}),
              'Invalid credentials', token=True)
    h = app.headers()
    h['Authorization'] = 'Bearer ' + app.token()
    check_error(get_list(app, headers=h), 400,
                'Use either an access token or an API key, not both')
    # Methods: GET and POST on this path.
    for m in ('PUT', 'DELETE', 'PATCH'):
        h = check(stack.request(m, ROUTE % app.uid, app.headers(), b'{}'),
                  405, err_body('Method not allowed'))
        assert {x.strip() for x in h['allow'].split(',')} == \
            {'GET', 'POST'}, h


# -- POST accept ---------------------------------------------------------

def test_full_loop(stack):
    """Issue 8's "must show": invite -> caught mail -> token from the
    mail's link -> accept -> the inviter's listing shows acceptedAt."""
    app = App(stack)
    addr, row, tok = mailed_invite(app)
    assert tok not in json.dumps(stack.sql('SELECT * FROM invites'))
    st, h, b = resp = accept(app, tok)
    row = row_of(stack, row['id'])
    assert ISO.fullmatch(row['accepted_at'] or ''), row
    check(resp, 200, accepted_body(row))
    assert row['status'] == 'sent', row
    data = json.loads(b)['data']
    assert data['inviterUserId'] == app.uid and data['email'] == addr
    # The inviter's listing, by key and by the inviter's token.
    rows = newest_first(stack, app)
    [x] = [item(r) for r in rows]
    assert x['acceptedAt'] == data['acceptedAt'], x
    check(get_list(app), 200, listing_body([x]))
    check(get_list(app, headers=app.bearer(), uid='me'), 200,
          listing_body([x]))
    # Used: 410, and the row stays as it was.
    check_error(accept(app, tok), 410, GONE)
    assert row_of(stack, row['id']) == row
    # The admin's views show the acceptance and the conversion.
    [ov] = stack.sql("SELECT * FROM invites_overview WHERE invite_id = "
                     "'%s'" % row['id'])
    assert ov['accepted'] == row['accepted_at'], ov
    sent_invite(app)
    [conv] = stack.sql("SELECT * FROM invite_counts_by_inviter WHERE "
                       "user_id = '%s'" % app.uid)
    assert (conv['invites'], conv['sent'], conv['accepted']) == (2, 2, 1), \
        conv
    assert float(conv['conversion_percent']) == 50.0, conv
    out = stack.ctl('invites', '--app', app.client)
    [line] = [ln for ln in out.splitlines() if row['id'] in ln]
    assert row['accepted_at'] in line, line


def test_accept_link_with_query_in_invite_url(stack):
    app = App(stack)
    url = 'https://shop.example/join?ref=mail'
    stack.ctl('app', 'set', app.client, '--invite-url', url)
    addr, row = sent_invite(app)
    tok = accept_link(stack, addr, url)
    resp = accept(app, tok)
    check(resp, 200, accepted_body(row_of(stack, row['id'])))


def test_two_concurrent_accepts(stack):
    app = App(stack)
    unlimited(app)
    for _ in range(6):
        addr, row, tok = mailed_invite(app)
        conns = [stack.connection() for _ in range(2)]
        for c in conns:
            c.connect()
        barrier = threading.Barrier(2)
        answers = [None, None]

        def go(i):
            barrier.wait()
            answers[i] = stack.request('POST', ACCEPT, app.headers(),
                                       {'token': tok}, conn=conns[i])
        threads = [threading.Thread(target=go, args=(i,)) for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        for c in conns:
            c.close()
        assert sorted(a[0] for a in answers) == [200, 410], answers
        won = row_of(stack, row['id'])
        for a in answers:
            if a[0] == 200:
                check(a, 200, accepted_body(won))
            else:
                check_error(a, 410, GONE)


def test_expired_token(stack):
    app = App(stack)
    stack.ctl('app', 'set', app.client, '--accept-ttl', '1')
    addr, row, tok = mailed_invite(app)
    time.sleep(2.5)     # a time window: the token's 1 s lifetime
    check_error(accept(app, tok), 410, GONE)
    assert row_of(stack, row['id'])['accepted_at'] is None
    # The lifetime is the app's, counted from the invite's creation: a
    # longer one makes the same token good again.
    stack.ctl('app', 'set', app.client, '--accept-ttl', '3600')
    check(accept(app, tok), 200, accepted_body(row_of(stack, row['id'])))


def derive_accept_token(stack, invite_id):
    """referral-invites(7): the accept token is the invite id's 16 bytes,
    then an HMAC of the id under the server's secret, both base64url
    (checked against a mailed one first)."""
    with open(stack.path('db', 'secret.key'), 'rb') as f:
        secret = f.read()
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b'=').decode()  # noqa
    mac = hmac.new(secret, ('accept\n%s\n' % invite_id).encode(),
                   hashlib.sha256).digest()
    return b64(uuid.UUID(invite_id).bytes) + b64(mac)


def test_canceled_invite_token_is_410(stack):
    app = App(stack)
    addr, row = sent_invite(app)
    mailed = accept_link(stack, addr)
    if derive_accept_token(stack, row['id']) != mailed:
        raise AssertionError('cannot derive accept tokens; test needs '
                             'another way to reach a canceled invite')
    qaddr = unique('defer')
    check(app.invite(qaddr), 201, ok_body('Invite queued'))
    [q] = [r for r in app.rows() if r['email_normalized'] == qaddr]
    tok = derive_accept_token(stack, q['id'])
    assert hashlib.sha256(tok.encode()).hexdigest() == q['accept_token_hash']
    stack.ctl('invite', 'cancel', q['id'])
    check_error(accept(app, tok), 410, GONE)
    assert row_of(stack, q['id'])['accepted_at'] is None


def test_accept_token_mailed_before_schema_2(stack):
    """Tokens of schema 1 were the HMAC alone (43 characters, no id): they
    are still found by their hash, but only for rows of that time (ids
    before version 7), so they never reach a newer invite."""
    app = App(stack)
    addr, row = sent_invite(app)
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b'=').decode()  # noqa
    made = {}
    for kind, iid in (('old', str(uuid.uuid4())),
                      ('new', str(uuid.UUID(row['id'][:14] + '7' +
                                            uuid.uuid4().hex[13:])))):
        tok = b64(os.urandom(32))
        assert len(tok) == 43
        stack.sql(
            "INSERT INTO invites (id, app_id, inviter_id, email,"
            " email_normalized, language_requested, language_resolved,"
            " status, accept_token_hash, next_attempt_at, created_at,"
            " updated_at) SELECT '%s', app_id, inviter_id, '%s', '%s',"
            " language_requested, language_resolved, 'sent', '%s',"
            " next_attempt_at, created_at, updated_at FROM invites"
            " WHERE id = '%s'" % (iid, kind + addr, kind + addr,
                                  hashlib.sha256(tok.encode()).hexdigest(),
                                  row['id']))
        made[kind] = (iid, tok)
    iid, tok = made['new']
    check(accept(app, tok), 404, err_body('Invite not found'))
    assert row_of(stack, iid)['accepted_at'] is None
    iid, tok = made['old']
    r = accept(app, tok)
    check(r, 200, accepted_body(row_of(stack, iid)))
    check_error(accept(app, tok), 410, GONE)


def test_unknown_and_foreign_tokens_404(stack):
    app = App(stack)
    other = App(stack)
    addr, row, tok = mailed_invite(app)
    nf = err_body('Invite not found')
    # Another invite's id with this one's HMAC, and the other way round.
    addr2, row2 = sent_invite(app)
    tok2 = accept_link(stack, addr2)
    for bad in ('A' * 43, 'A' * 65, tok[:-1] + ('A' if tok[-1] != 'A'
                else 'B'), tok[:-1], tok + 'x', 'x', tok.lower() if
                tok.lower() != tok else tok.upper(), tok2[:22] + tok[22:],
                tok[:22] + tok2[22:], tok[22:], tok[:22] + '!' * 43):
        check(accept(app, bad), 404, nf)
    assert row_of(stack, row['id'])['accepted_at'] is None
    assert row_of(stack, row2['id'])['accepted_at'] is None
    # The token of another app's invite is unknown to this app.
    check(accept(other, tok), 404, nf)
    assert row_of(stack, row['id'])['accepted_at'] is None
    check(accept(app, tok), 200, accepted_body(row_of(stack, row['id'])))


def test_accept_credentials(stack):
    app = App(stack)
    addr, row, tok = mailed_invite(app)
    read = stack.ctl('key', 'add', app.client, '--type', 'read')
    check_error(accept(app, tok, headers=app.headers(read, 'read')), 403,
                'This key may not accept invites')
    check_error(accept(app, tok, headers=app.bearer()), 403,
                'This route requires an API key')
    check_401(accept(app, tok, headers={'Content-Type': 'application/json'}),
              'Authentication required')
    check_401(accept(app, tok, headers=app.headers(key=read)),
              'Invalid credentials')
    h = app.headers()
    h['Authorization'] = 'Bearer ' + app.token()
    check_error(accept(app, tok, headers=h), 400,
                'Use either an access token or an API key, not both')
    # Body checks.
    for raw, err in ((b'{}', 'token is required'),
                     (b'{"token":1}', 'token must be a string'),
                     (b'{"token":"a","x":1}',
                      'Unexpected member in request body: x'),
                     (b'[]', 'Request body must be a JSON object'),
                     (b'{', 'Request body is not valid JSON')):
        check_error(accept(app, None, raw=raw), 400, err)
    h = app.headers()
    h['Content-Type'] = 'text/plain'
    check_error(accept(app, tok, headers=h), 415,
                'Content-Type must be application/json')
    h = check(stack.request('GET', ACCEPT, app.headers()), 405,
              err_body('Method not allowed'))
    assert h['allow'] == 'POST', h
    assert row_of(stack, row['id'])['accepted_at'] is None
    check(accept(app, tok), 200, accepted_body(row_of(stack, row['id'])))


def test_accept_idempotency_key(stack):
    app = App(stack)
    addr, row, tok = mailed_invite(app)
    key = 'accept-%s' % uuid.uuid4().hex
    first = accept(app, tok, key=key)
    check(first, 200, accepted_body(row_of(stack, row['id'])))
    # A retry with the key gets the 200 again; without it, 410.  (A
    # fixed wait: a second later, a new acceptance would show in
    # acceptedAt.)
    time.sleep(1.1)
    check(accept(app, tok, key=key), 200, first[2])
    check_error(accept(app, tok), 410, GONE)
    check_error(accept(app, 'B' * 43, key=key), 409,
                'Idempotency-Key was used for a different request')
    check_error(accept(app, tok, key=''), 400, 'Idempotency-Key is not valid')
