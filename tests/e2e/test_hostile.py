# SPDX-License-Identifier: ISC
# Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
"""Hostile input, end to end through real nginx (issue 6, item 4).

CR/LF/NUL and other control bytes in every credential header and JSON
field, malformed UTF-8, oversized and slow bodies, header floods, JSON
nesting bombs, numbers where strings belong, forged and confused JWTs,
path traversal in :userId, cross-app access (BOLA) and log injection.
Each gets the right 4xx (or what nginx itself answers before the daemon
sees the request), nothing is written to the database, no worker dies,
and every line of the daemon's log is one genuine, escaped line.

Requests with raw control bytes cannot go through http.client (it refuses
them), so this module speaks HTTP/1.1 over TLS itself (raw_request).  All
functions are named test_hostile_* so that "run.py -k test_hostile"
selects exactly this module.
"""

import hashlib
import hmac
import json
import os
import re
import select
import socket
import subprocess
import threading
import time
import uuid

import harness
from harness import (INVITE_URL, JSON_CT, ROUTE, TABLES, b64url, check,
                     check_401, err_body, ok_body, openssl_sign, snapshot,
                     unb64url, unique)

# A pid no process can have (above the kernel's PID_MAX_LIMIT).
FORGED_PID = '9999999'
LOG_LINE = re.compile(rb'referral-invitesd\[(\d+)\]: [^\x00-\x1f\x7f]*')


# -- HTTP over TLS, byte for byte ----------------------------------------

def tls_socket(stack, timeout=30):
    harness.pace()
    ctx = stack.ssl_context()
    s = socket.create_connection(('127.0.0.1', stack.port), timeout=timeout)
    s = ctx.wrap_socket(s)
    s.settimeout(timeout)
    return s


def read_all(s):
    """The answer: up to EOF, or as soon as Content-Length is met."""
    data = b''
    while True:
        if b'\r\n\r\n' in data:
            head, body = data.split(b'\r\n\r\n', 1)
            m = re.search(rb'(?im)^content-length:\s*(\d+)', head)
            if m and len(body) >= int(m.group(1)):
                return data
        try:
            d = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not d:
            break
        data += d
    return data


def parse_response(data):
    """(status, {lower-case name: value}, body) of one raw answer."""
    assert b'\r\n\r\n' in data, 'no complete answer: %r' % data[:300]
    head, body = data.split(b'\r\n\r\n', 1)
    lines = head.decode('latin-1').split('\r\n')
    m = re.match(r'HTTP/1\.[01] (\d{3})', lines[0])
    assert m, lines[0]
    hdrs = {}
    for line in lines[1:]:
        k, v = line.split(':', 1)
        k, v = k.strip().lower(), v.strip()
        hdrs[k] = hdrs[k] + ', ' + v if k in hdrs else v
    if 'content-length' in hdrs:
        body = body[:int(hdrs['content-length'])]
    return int(m.group(1)), hdrs, body


def b(s):
    return s if isinstance(s, bytes) else s.encode('utf-8')


def build(method, path, headers, body=None, length=None):
    """Request bytes: headers is a list of (name, value) or raw lines."""
    out = [b'%s %s HTTP/1.1' % (b(method), b(path)), b'Host: localhost',
           b'Connection: close']
    for h in headers:
        out.append(h if isinstance(h, bytes) else b(h[0]) + b': ' + b(h[1]))
    if body is not None or length is not None:
        out.append(b'Content-Length: %d' % (len(body) if length is None
                                            else length))
    return b'\r\n'.join(out) + b'\r\n\r\n' + (body or b'')


def raw_request(stack, data, timeout=30):
    """Send data, read the answer (nginx may answer before all is sent)."""
    s = tls_socket(stack, timeout)
    try:
        send_until_answered(s, (data[i:i + 16384]
                                for i in range(0, len(data), 16384)))
        return parse_response(read_all(s))
    finally:
        s.close()


def send_until_answered(s, chunks):
    """Send chunks until done or until an answer is waiting: nginx
    refuses big requests early and closes, which is the point."""
    for c in chunks:
        if s.pending() or select.select([s], [], [], 0)[0]:
            return
        try:
            s.sendall(c)
        except OSError:
            return


def post(stack, path, headers, body, **kw):
    return raw_request(stack, build('POST', path, headers, b(body)), **kw)


# -- checks ----------------------------------------------------------------

def check_nginx_html(resp, statuses, what=''):
    """An answer nginx made itself before any location: its HTML page."""
    st, h, bd = resp
    assert st in statuses, '%s: got %d %r' % (what, st, bd[:200])
    assert h.get('content-type') == 'text/html', (what, h)
    assert b'<center>nginx' in bd, (what, bd)


def assert_unchanged(stack, before, what=''):
    after = snapshot(stack)
    for t in TABLES:
        assert after[t] == before[t], '%s: table %s changed:\n%r\n->\n%r' % (
            what, t, before[t][-3:], after[t][-3:])


def log_size(stack):
    return os.path.getsize(stack.path('daemon.log'))


def log_since(stack, offset):
    with open(stack.path('daemon.log'), 'rb') as f:
        f.seek(offset)
        return f.read()


def assert_no_crash(stack, offset):
    """No worker died since offset and the daemon still runs."""
    new = log_since(stack, offset)
    assert not re.search(rb'\bdied\b|killing', new), new
    p = stack.procs.get('daemon')
    assert p is not None and p.poll() is None, 'daemon is gone'


# -- fixtures ------------------------------------------------------------

class App(harness.App):
    """harness.App with a read key too and no limits, that speaks raw
    HTTP (headers as lists of (name, value) or raw lines)."""

    label = 'Hostile App'

    def __init__(self, stack, invite_url=INVITE_URL):
        # The suite sends more than an inviter's hourly share.
        super().__init__(stack, invite_url=invite_url,
                         inviter_name='Hostile User', unlimited=True)
        self.read_key = self.ctl('key', 'add', self.client, '--type',
                                 'read')

    def key_headers(self, key=None, key_type='write', client=None):
        return list(self.headers(key, key_type, client).items())

    def bearer_headers(self, token):
        return list(self.bearer(token=token).items())

    def invite(self, addr=None, headers=None, uid=None, body=None):
        if body is None:
            body = json.dumps({'email': addr or unique(), 'language': 'en'})
        return post(self.stack, ROUTE % (uid or self.uid),
                    self.key_headers() if headers is None else headers,
                    body)

    def rows(self):
        return self.stack.sql("SELECT * FROM invites WHERE app_id = '%s' "
                              "ORDER BY rowid" % self.client)


def sent(app, addr, resp, what=''):
    """201 Invite sent, and exactly one row for addr by app's user."""
    check(resp, 201, ok_body(), what)
    rows = [r for r in app.rows() if r['email_normalized'] == addr.lower()]
    assert len(rows) == 1, (what, rows)
    assert rows[0]['inviter_id'] == app.uid, (what, rows[0])
    return rows[0]


# -- JWTs, signed here ---------------------------------------------------

def compact(header, claims):
    h = header if isinstance(header, bytes) else \
        json.dumps(header, separators=(',', ':')).encode()
    c = claims if isinstance(claims, bytes) else \
        json.dumps(claims, separators=(',', ':')).encode()
    return '%s.%s' % (b64url(h), b64url(c))


def sign_hs256(secret, data):
    return hmac.new(secret, data, hashlib.sha256).digest()


def jwt(header, claims, signer):
    head = compact(header, claims)
    return head + '.' + b64url(signer(head.encode()))


def gen_rsa(prefix):
    priv, pub = prefix + '-priv.pem', prefix + '-pub.pem'
    subprocess.run(['openssl', 'genpkey', '-algorithm', 'RSA', '-pkeyopt',
                    'rsa_keygen_bits:2048', '-out', priv], check=True,
                   capture_output=True)
    subprocess.run(['openssl', 'pkey', '-in', priv, '-pubout', '-out', pub],
                   check=True, capture_output=True)
    return priv, pub


_rsa = {}


def rs256_app(stack):
    """An app that verifies RS256 tokens of its "identity provider", and
    an attacker's unrelated RSA key; made once per stack."""
    if stack.dir not in _rsa:
        d = stack.path('jwt')
        os.makedirs(d, exist_ok=True)
        priv, pub = gen_rsa(os.path.join(d, 'idp'))
        evil_priv, evil_pub = gen_rsa(os.path.join(d, 'evil'))
        app = App(stack)
        stack.ctl('app', 'jwt-key', app.client, '--alg', 'RS256',
                  '--public-key', pub, '--issuer', 'https://idp.example/')
        app.priv, app.pub = priv, pub
        app.evil_priv, app.evil_pub = evil_priv, evil_pub
        _rsa[stack.dir] = app
    return _rsa[stack.dir]


def claims_for(app, **kw):
    now = int(time.time())
    c = {'iss': 'https://idp.example/', 'aud': app.client, 'sub': app.uid,
         'iat': now, 'exp': now + 600}
    for k, v in kw.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


RS256 = {'alg': 'RS256', 'typ': 'JWT'}


# == control bytes in every header ========================================

# What the daemon sees for each header when its value carries a byte it
# passes on; nginx refuses a bare CR and a NUL itself, and a LF ends the
# header line there (the rest, without a colon, is dropped as invalid).
NGINX_REFUSES = (b'\r', b'\x00', b'\x00\r')
SPLITS = (b'\n', b'\r\n')
PASSED = (b'\x1b', b'\x01', b'\x7f', b'\x1b[2J', b'\xc0\xaf', b'\xff', b'\t')


def header_cases(app, tok):
    """(name, valid value, expected answer for a spoiled value)."""
    return [('X-API-KEY', app.key, 'key'),
            ('X-CLIENT-ID', app.client, 'key'),
            ('X-API-KEY-TYPE', 'write', 'key'),
            ('Authorization', 'Bearer ' + tok, 'token'),
            ('Authentication', 'Bearer ' + tok, 'token'),
            ('Idempotency-Key', 'idem-' + uuid.uuid4().hex, 'idem'),
            ('Content-Type', 'application/json', 'ctype')]


def headers_with(app, tok, name, value):
    if name in ('Authorization', 'Authentication'):
        hs = [('Content-Type', 'application/json')]
    else:
        hs = app.key_headers()
    hs = [h for h in hs if h[0] != name]
    return hs + [b(name) + b': ' + value]


def expect_spoiled(resp, kind, what):
    if kind == 'key':
        check_401(resp, what=what)
    elif kind == 'token':
        check_401(resp, token=True, what=what)
    elif kind == 'idem':
        check(resp, 400, err_body('Idempotency-Key is not valid'), what)
    else:
        check(resp, 415, err_body('Content-Type must be application/json'),
              what)


def test_hostile_control_bytes_in_headers(stack):
    app = App(stack)
    tok = app.token()
    before = snapshot(stack)
    for name, value, kind in header_cases(app, tok):
        v = b(value)
        mid = len(v) // 2 if not v.startswith(b'Bearer ') else \
            7 + (len(v) - 7) // 2
        for bad in NGINX_REFUSES + SPLITS + PASSED:
            what = '%s with %r' % (name, bad)
            if bad in SPLITS and kind == 'idem':
                # Any prefix of a key is a key: spoil it from the start.
                spoiled = bad + v
            elif bad in SPLITS and kind == 'ctype':
                spoiled = b'application/' + bad + b'json'
            else:
                spoiled = v[:mid] + bad + v[mid:]
            resp = post(stack, ROUTE % app.uid,
                        headers_with(app, tok, name, spoiled),
                        json.dumps({'email': unique(), 'language': 'en'}))
            if bad in NGINX_REFUSES:
                check_nginx_html(resp, (400,), what)
            else:
                expect_spoiled(resp, kind, what)
    assert_unchanged(stack, before, 'control bytes in headers')
    # The same headers, unspoiled, work: the cases above could fail.
    addr = unique()
    sent(app, addr, app.invite(addr, headers=app.key_headers() + [
        ('Idempotency-Key', 'idem-' + uuid.uuid4().hex)]))
    addr = unique()
    sent(app, addr, app.invite(addr, headers=app.bearer_headers(tok)))


def test_hostile_oversized_header_values(stack):
    app = App(stack)
    before = snapshot(stack)
    check_401(app.invite(headers=app.key_headers(key='A' * 7000)))
    check_401(app.invite(headers=app.key_headers(client='A' * 7000)))
    check_401(app.invite(headers=app.bearer_headers('e' * 7000)), token=True)
    tok = app.token()
    head, payload, sig = tok.split('.')
    padded = '%s.%s.%s' % (head, payload + 'A' * 7000, sig)
    check_401(app.invite(headers=app.bearer_headers(padded)), token=True)
    check(app.invite(headers=app.key_headers() + [
        ('Idempotency-Key', 'k' * 256)]), 400,
        err_body('Idempotency-Key is not valid'))
    # Beyond nginx's header buffers: nginx's own 400 page.
    check_nginx_html(app.invite(headers=app.bearer_headers('e' * 9000)),
                     (400, 431, 494))
    assert_unchanged(stack, before, 'oversized header values')


# == control bytes in every JSON field =====================================

FIELD_ERROR = {'email': 'email is not a valid address',
               'language': 'language is not a valid language tag'}


def test_hostile_control_bytes_in_json_fields(stack):
    app = App(stack)
    good = {'email': 'friend@example.org', 'language': 'en'}
    before = snapshot(stack)
    for field in ('email', 'language'):
        v = good[field].encode()
        mid = 2 if field == 'email' else 1
        cases = []
        for raw in (b'\r', b'\n', b'\r\n', b'\x1b', b'\x01', b'\x1f'):
            cases.append((v[:mid] + raw + v[mid:],
                          'Request body is not valid JSON'))
        cases.append((v[:mid] + b'\x00' + v[mid:],
                      'Request body contains a NUL character'))
        cases.append((v + b'\x00', 'Request body contains a NUL character'))
        cases.append((v[:mid] + b'\\u0000' + v[mid:],
                      'Request body contains a NUL character'))
        # DEL is no control character to JSON; the validators refuse it.
        cases.append((v[:mid] + b'\x7f' + v[mid:], FIELD_ERROR[field]))
        for esc in (b'\\r', b'\\n', b'\\r\\n', b'\\u000d\\u000a',
                    b'\\u001b', b'\\u001b[2J', b'\\u007f', b'\\u2028',
                    b'\\t', b'\\b', b'\\f', b'\\u0085'):
            cases.append((v[:mid] + esc + v[mid:], FIELD_ERROR[field]))
            # Trailing: only spaces and tabs are trimmed around an email.
            if esc != b'\\t':
                cases.append((v + esc, FIELD_ERROR[field]))
        for value, error in cases:
            doc = dict(good)
            body = json.dumps(doc).encode().replace(
                b'"%s"' % good[field].encode(), b'"' + value + b'"')
            resp = app.invite(body=body)
            check(resp, 400, err_body(error), '%s = %r' % (field, value))
    # Header injection through the address never reaches a mail.
    check(app.invite(body=b'{"email":"friend@example.org\\r\\nBcc: '
                          b'victim@example.org","language":"en"}'),
          400, err_body(FIELD_ERROR['email']))
    assert_unchanged(stack, before, 'control bytes in JSON fields')
    assert stack.mail_for('victim@example.org', timeout=0.2, count=0) == []


# == malformed UTF-8 ========================================================

BAD_UTF8 = [
    b'\xc0\xaf',                # overlong "/"
    b'\xc1\xbf',                # overlong
    b'\xe0\x80\xaf',            # overlong, 3 bytes
    b'\xf0\x80\x80\xaf',        # overlong, 4 bytes
    b'\xed\xa0\x80',            # UTF-16 surrogate D800
    b'\xed\xbf\xbf',            # surrogate DFFF
    b'\xf4\x90\x80\x80',        # above U+10FFFF
    b'\xf5\x80\x80\x80',        # lead byte F5
    b'\x80',                    # lone continuation
    b'\xbf',                    # lone continuation
    b'\xc3',                    # truncated sequence
    b'\xe2\x82',                # truncated sequence
    b'\xfe', b'\xff',           # never in UTF-8
    b'\xf8\x88\x80\x80\x80',    # old 5-byte form
]


def test_hostile_malformed_utf8(stack):
    app = App(stack)
    before = snapshot(stack)
    for seq in BAD_UTF8:
        for body in (b'{"email":"fr' + seq + b'iend@example.org",'
                     b'"language":"en"}',
                     b'{"email":"friend@example.org","language":"e' + seq +
                     b'"}',
                     b'{"email":"friend@example.org","language":"en","' +
                     seq + b'":"x"}',
                     b'{"email":"friend@example.org","language":"en"}' + seq,
                     b'{"email":"friend@example.org","language":"en"' + seq +
                     b'}'):
            check(app.invite(body=body), 400,
                  err_body('Request body is not valid UTF-8'), repr(body))
    # Overlong forms in the headers and the path are refused too.
    check_401(app.invite(headers=app.key_headers(
        key=b'\xc0\xaf\xc0\xaf' + app.key.encode())))
    check(post(stack, ROUTE % ('%C0%AF' + app.uid[2:]), app.key_headers(),
               json.dumps({'email': unique(), 'language': 'en'})),
          400, err_body('userId is not a valid user id'))
    # An escaped lone surrogate is no character either.
    check(app.invite(body=b'{"email":"\\ud800@example.org","language":"en"}'),
          400, err_body('Request body is not valid JSON'))
    # Valid 4-byte UTF-8 passes the UTF-8 check (and fails as an address).
    check(app.invite(body='{"email":"\U0001F600@example.org",'
                          '"language":"en"}'.encode()),
          400, err_body('email is not a valid address'))
    assert_unchanged(stack, before, 'malformed UTF-8')


def test_hostile_member_name_cut_on_a_character_boundary(stack):
    """The error names the member, cut to 32 bytes: never inside a UTF-8
    sequence (or the answer itself is not UTF-8, nor JSON), and never
    shorter than the longest whole-character prefix that fits."""
    app = App(stack)
    before = snapshot(stack)
    e = '\u00e9'
    smile = '\U0001F600'
    for name, shown in (('x' + e * 20, 'x' + e * 15),       # cut in é
                        ('xx' + e * 20, 'xx' + e * 15),     # cut after é
                        ('x' * 30 + e, 'x' * 30 + e),       # 32: no cut
                        ('x' * 31 + e, 'x' * 31),
                        ('x' * 28 + smile * 3, 'x' * 28 + smile),
                        ('x' * 29 + smile, 'x' * 29),
                        ('x' * 40, 'x' * 32)):
        resp = app.invite(body=json.dumps({'email': unique(),
                                           'language': 'en', name: 'y'},
                                          ensure_ascii=False))
        st, h, bd = resp
        try:
            doc = json.loads(bd.decode('utf-8'))
        except ValueError as err:
            raise AssertionError('name %r: answer is not UTF-8 JSON (%s): '
                                 '%r' % (name, err, bd))
        assert st == 400, (name, st, bd)
        check(resp, 400, err_body('Unexpected member in request body: ' +
                                  shown), 'name %r (%d bytes)' % (
                                      name, len(name.encode())))
        assert doc['error'].endswith(shown)
    assert_unchanged(stack, before, 'member name')


# == sizes: 10 MB bodies, slow bodies, 10,000 headers =====================

def big_body_answer(stack, head, chunks):
    s = tls_socket(stack, 30)
    try:
        s.sendall(head)
        send_until_answered(s, chunks)
        return parse_response(read_all(s))
    finally:
        s.close()


def test_hostile_ten_megabyte_body(stack):
    app = App(stack)
    before = snapshot(stack)
    off = log_size(stack)
    n = 10 * 1024 * 1024
    hs = app.key_headers()
    head = build('POST', ROUTE % app.uid, hs, length=n)
    t0 = time.monotonic()
    resp = big_body_answer(stack, head, (b'x' * 65536 for _ in
                                         range(n // 65536)))
    check(resp, 413, err_body('Request body is too large'), 'Content-Length')
    # The same without a length: chunked, refused once past the limit.
    head = build('POST', ROUTE % app.uid, hs + [('Transfer-Encoding',
                                                 'chunked')])
    chunk = b'10000\r\n' + b'x' * 65536 + b'\r\n'
    resp = big_body_answer(stack, head, [chunk] * (n // 65536) +
                           [b'0\r\n\r\n'])
    check(resp, 413, err_body('Request body is too large'), 'chunked')
    assert time.monotonic() - t0 < 30
    assert_unchanged(stack, before, '10 MB body')
    assert_no_crash(stack, off)
    addr = unique()
    sent(app, addr, app.invite(addr))


def test_hostile_slow_bodies_pin_no_worker(stack):
    """Twice as many stalled bodies as workers, and a body trickled a
    byte at a time: nginx buffers bodies, so other requests are answered
    at once meanwhile."""
    app = App(stack)
    off = log_size(stack)
    n_before = len(app.rows())
    hs = app.key_headers()
    stalled = []
    try:
        for i in range(8):
            s = tls_socket(stack, 30)
            s.sendall(build('POST', ROUTE % app.uid, hs, length=200) +
                      b'{"email":"stalled-%d@' % i)
            stalled.append(s)
        # Headers that never end: a slowloris of the header kind.
        s = tls_socket(stack, 30)
        s.sendall(b'POST ' + (ROUTE % app.uid).encode() +
                  b' HTTP/1.1\r\nHost: localhost\r\nX-API-KEY: ')
        stalled.append(s)
        trickled = unique('trickled')
        body = json.dumps({'email': trickled, 'language': 'en'}).encode()
        ts = tls_socket(stack, 30)
        ts.sendall(build('POST', ROUTE % app.uid, hs, length=len(body)))
        result = {}

        def trickle():
            try:
                for i in range(len(body)):
                    ts.sendall(body[i:i + 1])
                    result['sent'] = i + 1
                    time.sleep(0.05)    # the point: a byte at a time
                result['resp'] = parse_response(read_all(ts))
            except Exception as e:      # reported below
                result['error'] = e
        t = threading.Thread(target=trickle, daemon=True)
        t.start()
        harness.wait_for('the trickle under way',
                         lambda: result.get('sent') or 'error' in result, 10)
        fast = []
        for _ in range(6):
            addr = unique('meanwhile')
            t0 = time.monotonic()
            resp = app.invite(addr)
            took = time.monotonic() - t0
            check(resp, 201, ok_body())
            assert took < 3, 'answer took %.1fs while bodies stall' % took
            fast.append(addr)
        assert t.is_alive(), 'the trickle ended too early to prove anything'
        t.join(20)
        assert 'error' not in result, result
        check(result['resp'], 201, ok_body(), 'trickled body')
    finally:
        for s in stalled:
            s.close()
        ts.close()
    rows = app.rows()[n_before:]
    assert sorted(r['email'] for r in rows) == sorted(fast + [trickled]), \
        rows
    assert not any(r['email'].startswith('stalled-') for r in app.rows())
    assert_no_crash(stack, off)


def test_hostile_ten_thousand_headers(stack):
    app = App(stack)
    before = snapshot(stack)
    off = log_size(stack)
    flood = [b'X-Flood-%d: v' % i for i in range(10000)]
    resp = post(stack, ROUTE % app.uid, app.key_headers() + flood,
                json.dumps({'email': unique(), 'language': 'en'}))
    check_nginx_html(resp, (400, 431, 494), '10,000 headers')
    # As many as nginx lets through reach the daemon, which copes.
    many = [b'X-Many-%d: v' % i for i in range(600)]
    addr = unique()
    sent(app, addr, post(stack, ROUTE % app.uid, app.key_headers() + many,
                         json.dumps({'email': addr, 'language': 'en'})))
    before = snapshot(stack)
    check_401(post(stack, ROUTE % app.uid, many + [
        ('Content-Type', 'application/json'), ('X-API-KEY', 'k' * 40),
        ('X-API-KEY-TYPE', 'write'), ('X-CLIENT-ID', app.client)],
        json.dumps({'email': unique(), 'language': 'en'})))
    assert_unchanged(stack, before, 'many headers')
    assert_no_crash(stack, off)
    addr = unique()
    sent(app, addr, app.invite(addr))


# == JSON: nesting bombs and numbers ======================================

def test_hostile_nesting_bombs(stack):
    app = App(stack)
    before = snapshot(stack)
    nested = err_body('Request body is nested too deeply')
    # 10,000 levels do not fit in max_body: nginx refuses them unread.
    check(app.invite(body=b'[' * 10000 + b']' * 10000), 413,
          err_body('Request body is too large'), '10000 levels')
    check(app.invite(body=b'{"email":' + b'[' * 10000), 413,
          err_body('Request body is too large'), '10000 open')
    # The deepest bombs that fit are refused by depth, not parsed.
    for body in (b'{"email":' + b'[' * 4080 + b']' * 4080 +
                 b',"language":"en"}',
                 b'{"email":' + b'[' * 8150,
                 b'{"a":' * 1300 + b'1' + b'}' * 1300,
                 b'[' * 8190,
                 b'{"email":"a@example.org","language":"en","x":' +
                 b'{"y":' * 1000 + b'0' + b'}' * 1000 + b'}'):
        assert len(body) <= 8192, len(body)
        check(app.invite(body=body), 400, nested, repr(body[:30]))
    # The boundary: depth 4 is parsed, 5 is not.
    check(app.invite(body=b'{"email":[[["x"]]],"language":"en"}'), 400,
          err_body('email must be a string'))
    check(app.invite(body=b'{"email":[[[["x"]]]],"language":"en"}'), 400,
          nested)
    # Brackets inside strings are text, not depth.
    check(app.invite(body=json.dumps({'email': '[[[[[[{{{{{{@example.org',
                                      'language': 'en'})), 400,
          err_body('email is not a valid address'))
    assert_unchanged(stack, before, 'nesting bombs')


def test_hostile_numbers_where_strings_belong(stack):
    app = App(stack)
    before = snapshot(stack)
    for field in ('email', 'language'):
        other = {'email': '"friend@example.org"', 'language': '"en"'}
        for num in (b'12345678901234567890', b'1e999999', b'-1e999999',
                    b'-0', b'0', b'1.5e-400', b'9' * 8000,
                    b'123456789012345678901234567890.5e+308', b'true',
                    b'null', b'{}', b'[]'):
            doc = dict(other)
            doc[field] = num.decode()
            body = ('{"email":%s,"language":%s}' % (doc['email'],
                                                   doc['language'])).encode()
            check(app.invite(body=body), 400,
                  err_body('%s must be a string' % field),
                  '%s = %r' % (field, num[:30]))
        for num in (b'NaN', b'Infinity', b'-Infinity', b'0x10', b'.5',
                    b'+1', b'1e', b'--1', b'-', b'1e+'):
            doc = dict(other)
            doc[field] = num.decode()
            body = ('{"email":%s,"language":%s}' % (doc['email'],
                                                   doc['language'])).encode()
            check(app.invite(body=body), 400,
                  err_body('Request body is not valid JSON'),
                  '%s = %r' % (field, num))
    check(app.invite(body=b'{"email":"friend@example.org","language":"en",'
                          b'"n":1e999999}'), 400,
          err_body('Unexpected member in request body: n'))
    check(app.invite(body=b'12345678901234567890'), 400,
          err_body('Request body must be a JSON object'))
    assert_unchanged(stack, before, 'numbers')


# == JWTs ===================================================================

def bad_token(app, token, what):
    resp = app.invite(headers=app.bearer_headers(token))
    try:
        check_401(resp, token=True, what=what)
    except AssertionError as e:
        raise AssertionError('token %s: %s' % (what, e))


def test_hostile_jwt_rs256_forgeries(stack):
    app = rs256_app(stack)
    rs = lambda data: openssl_sign(app.priv, data)        # noqa: E731
    evil = lambda data: openssl_sign(app.evil_priv, data)  # noqa: E731
    with open(app.pub, 'rb') as f:
        pem = f.read()
    der = subprocess.run(['openssl', 'pkey', '-pubin', '-in', app.pub,
                          '-outform', 'DER'], capture_output=True,
                         check=True).stdout
    now = int(time.time())
    good = jwt(RS256, claims_for(app), rs)
    # The positive control: a genuine token of the identity provider.
    addr = unique()
    sent(app, addr, app.invite(addr, headers=app.bearer_headers(good)),
         'genuine RS256')
    # kid, jku, jwk and x5u name no key: with the right signature they
    # change nothing ...
    for extra in ({'kid': '../../etc/passwd'}, {'kid': "' OR 1=1 --"},
                  {'jku': 'https://evil.example/jwks.json'},
                  {'x5u': 'https://evil.example/cert.pem'}):
        addr = unique()
        tok = jwt(dict(RS256, **extra), claims_for(app), rs)
        sent(app, addr, app.invite(addr, headers=app.bearer_headers(tok)),
             'header %r' % extra)
    # ... within the 60 s leeway a token still counts ...
    for kw in ({'exp': now - 30}, {'nbf': now + 30}, {'iat': now + 30},
               {'aud': [str(uuid.uuid4()), app.client]}):
        addr = unique()
        tok = jwt(RS256, claims_for(app, **kw), rs)
        sent(app, addr, app.invite(addr, headers=app.bearer_headers(tok)),
             'claims %r' % kw)
    # ... and everything else is 401 invalid_token, with nothing written.
    with open(app.evil_pub) as f:
        evil_pem = f.read()
    head, payload, sig = good.split('.')
    mid = len(sig) // 2
    flipped = sig[:mid] + ('A' if sig[mid] != 'A' else 'B') + sig[mid + 1:]
    victim = app.add_user(unique('victim'))
    before = snapshot(stack)
    cases = {
        'alg none, no signature': compact({'alg': 'none', 'typ': 'JWT'},
                                          claims_for(app)) + '.',
        'alg none, genuine signature': compact(
            {'alg': 'none'}, claims_for(app)) + '.' + sig,
        'alg None': compact({'alg': 'None'}, claims_for(app)) + '.',
        'alg NONE': compact({'alg': 'NONE'}, claims_for(app)) + '.',
        'alg rs256 (case)': jwt({'alg': 'rs256'}, claims_for(app), rs),
        'HS256 keyed with the public key PEM': jwt(
            {'alg': 'HS256', 'typ': 'JWT'}, claims_for(app),
            lambda d: sign_hs256(pem, d)),
        'HS256 keyed with the PEM, no newline': jwt(
            {'alg': 'HS256'}, claims_for(app),
            lambda d: sign_hs256(pem.strip(), d)),
        'HS256 keyed with the DER key': jwt(
            {'alg': 'HS256'}, claims_for(app),
            lambda d: sign_hs256(der, d)),
        'ES256 header, RSA signature': jwt({'alg': 'ES256'},
                                           claims_for(app), rs),
        'signed by another RSA key': jwt(RS256, claims_for(app), evil),
        'kid ../../etc/passwd, another key': jwt(
            dict(RS256, kid='../../etc/passwd'), claims_for(app), evil),
        'embedded jwk of another key': jwt(
            dict(RS256, jwk={'kty': 'RSA', 'pem': evil_pem}),
            claims_for(app), evil),
        'jku to another key': jwt(
            dict(RS256, jku='https://evil.example/jwks.json'),
            claims_for(app), evil),
        'crit header': jwt(dict(RS256, crit=['exp']), claims_for(app), rs),
        'tampered signature': '%s.%s.%s' % (head, payload, flipped),
        'tampered payload': '%s.%s.%s' % (
            head, b64url(json.dumps(claims_for(app, sub=victim)).encode()),
            sig),
        'signature cut': '%s.%s.%s' % (head, payload, sig[:-10]),
        'signature empty': '%s.%s.' % (head, payload),
        'no signature part': '%s.%s' % (head, payload),
        'four parts': good + '.' + sig,
        'no exp': jwt(RS256, claims_for(app, exp=None), rs),
        'expired past the leeway': jwt(RS256, claims_for(
            app, exp=now - 120, iat=now - 700), rs),
        'exp as a string': jwt(RS256, claims_for(app, exp=str(now + 600)),
                               rs),
        'exp absurdly far': jwt(RS256, claims_for(app, exp=1e20), rs),
        'exp negative': jwt(RS256, claims_for(app, exp=-1), rs),
        'nbf in the future': jwt(RS256, claims_for(app, nbf=now + 300), rs),
        'iat in the future': jwt(RS256, claims_for(app, iat=now + 300), rs),
        'no aud': jwt(RS256, claims_for(app, aud=None), rs),
        'aud array without the app': jwt(RS256, claims_for(
            app, aud=[str(uuid.uuid4()), 'referral-invites']), rs),
        'aud empty array': jwt(RS256, claims_for(app, aud=[]), rs),
        'aud array of numbers': jwt(RS256, claims_for(app, aud=[1, 2]), rs),
        'aud object': jwt(RS256, claims_for(app, aud={'id': app.client}),
                          rs),
        'no sub': jwt(RS256, claims_for(app, sub=None), rs),
        'sub ../../etc/passwd': jwt(RS256, claims_for(
            app, sub='../../etc/passwd'), rs),
        'sub a number': jwt(RS256, claims_for(app, sub=12345), rs),
        'wrong iss': jwt(RS256, claims_for(
            app, iss='https://evil.example/'), rs),
        'no iss': jwt(RS256, claims_for(app, iss=None), rs),
        'header not JSON': b64url(b'{"alg":"RS256"') + '.' + payload + '.' +
        sig,
        'payload not JSON': head + '.' + b64url(b'not json') + '.' + sig,
        'payload a JSON array': jwt(RS256, b'[1,2]', rs),
        'not base64url': '%s.%s.%s' % (head, payload.replace('e', '*'), sig),
        'garbage': 'garbage',
        'control bytes': good[:20] + '\x1b\x01' + good[20:],
    }
    for what, tok in cases.items():
        bad_token(app, tok, what)
    assert_unchanged(stack, before, 'RS256 forgeries')


def test_hostile_jwt_hs256_confusion(stack):
    """An app with the built-in HS256 secret refuses RS256 tokens and
    tokens keyed with anything but its own derived secret."""
    app = App(stack)
    rsa = rs256_app(stack)
    with open(os.path.join(os.path.dirname(stack.db), 'secret.key'),
              'rb') as f:
        server_secret = f.read()
    with open(rsa.pub, 'rb') as f:
        pem = f.read()
    good = app.token()
    claims = json.loads(unb64url(good.split('.')[1]))
    before = snapshot(stack)
    cases = {
        'RS256 for an HS256 app': jwt(RS256, claims,
                                      lambda d: openssl_sign(rsa.priv, d)),
        'HS256 keyed with the server secret itself': jwt(
            {'alg': 'HS256', 'typ': 'JWT'}, claims,
            lambda d: sign_hs256(server_secret, d)),
        'HS256 keyed with an empty secret': jwt(
            {'alg': 'HS256'}, claims, lambda d: sign_hs256(b'', d)),
        'HS256 keyed with a public key': jwt(
            {'alg': 'HS256'}, claims, lambda d: sign_hs256(pem, d)),
        'HS256 keyed with the client id': jwt(
            {'alg': 'HS256'}, claims,
            lambda d: sign_hs256(app.client.encode(), d)),
        'alg none': compact({'alg': 'none'}, claims) + '.',
    }
    for what, tok in cases.items():
        bad_token(app, tok, what)
    assert_unchanged(stack, before, 'HS256 confusion')
    addr = unique()
    sent(app, addr, app.invite(addr, headers=app.bearer_headers(good)))


# == path traversal in :userId ============================================

def test_hostile_path_traversal_in_user_id(stack):
    app = App(stack)
    other = App(stack)
    hs = app.key_headers()
    body = lambda: json.dumps({'email': unique(), 'language': 'en'})  # noqa
    before = snapshot(stack)
    nf = err_body('Not found')
    bad_id = err_body('userId is not a valid user id')
    for path, status, error in (
            ('/api/v1/users/..%2F..%2Fx/referral-invites', 404, nf),
            ('/api/v1/users/%2e%2e/referral-invites', 404, nf),
            ('/api/v1/users/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd/referral-invites',
             404, nf),
            ('/api/v1/users/%s/referral-invites/..' % app.uid, 404, nf),
            ('/api/v1/users/%s/referral-invites%%2F' % app.uid, 404, nf),
            ('/api/v1/users/%s%%2F..%%2F..%%2F..%%2Fapi%%2Fv1%%2Fusers%%2F'
             'x/referral-invites' % app.uid, 404, nf),
            ('/api/v1/users/..%5C..%5Cetc/referral-invites', 400, bad_id),
            ('/api/v1/users/%252e%252e%252f/referral-invites', 400, bad_id),
            ('/api/v1/users/%s%%20/referral-invites' % app.uid, 400, bad_id),
            ('/api/v1/users/%s;x/referral-invites' % app.uid, 400, bad_id),
            ('/api/v1/users/%s%%0d%%0aX-Evil:%%201/referral-invites' %
             app.uid, 400, bad_id),
            ('/api/v1/users/%%EF%%BC%%90%s/referral-invites' % app.uid[1:],
             400, bad_id),
            ('/api/v1/users/%s/referral-invites' % ('a' * 37), 400, bad_id),
            ('/api/v1/users/%s/referral-invites' % (app.uid * 3), 400,
             bad_id)):
        check(post(stack, path, hs, body()), status, error, path)
    # Very long ids: malformed (400) or an unknown path (404), never more.
    for n in (127, 128, 200, 1000, 5000):
        resp = post(stack, ROUTE % ('a' * n), hs, body())
        assert resp[0] in (400, 404), (n, resp)
        check(resp, resp[0], bad_id if resp[0] == 400 else nf, 'id %d' % n)
    # Past nginx's request line buffer: its own 414 page.
    check_nginx_html(post(stack, ROUTE % ('a' * 9000), hs, body()),
                     (414, 400), 'id 9000')
    # A NUL in the path never passes nginx.
    check_nginx_html(post(stack, ROUTE % (app.uid + '%00'), hs, body()),
                     (400,), 'NUL')
    # A path that nginx normalises onto another app's user is that user:
    # not found for this app.
    for path in ('/api/v1/users/%s%%2F..%%2F%s/referral-invites' % (
            app.uid, other.uid),
            '/api/v1/users/%s/../%s/referral-invites' % (app.uid, other.uid),
            '/api/v1/users//%s/referral-invites' % other.uid):
        check(post(stack, path, hs, body()), 404,
              err_body('User not found'), path)
    assert_unchanged(stack, before, 'path traversal')
    # nginx merges slashes and resolves dot segments before the daemon
    # sees DOCUMENT_URI: such a path is the route itself, for its user.
    for path in ('/api/v1/users//%s/referral-invites' % app.uid,
                 '/api/v1/users/x/../%s/referral-invites' % app.uid,
                 '/api/v1/users/%s%%2Freferral-invites' % app.uid):
        addr = unique()
        sent(app, addr, post(stack, path, hs, json.dumps(
            {'email': addr, 'language': 'en'})), path)


# == BOLA: one app's credentials against another app's users ==============

def accept_token(stack, addr):
    [m] = stack.mail_for(addr)
    text = m.get_body(('plain',)).get_content()
    found = re.search(r'[?&]token=([A-Za-z0-9_-]{65})', text)
    assert found, text
    return found.group(1)


def test_hostile_bola(stack):
    a = App(stack)
    bb = App(stack, invite_url='https://b.example/join')
    b_addr = unique('b-invitee')
    sent(bb, b_addr, bb.invite(b_addr))
    b_token = accept_token(stack, b_addr)
    before = snapshot(stack)
    body = lambda: json.dumps({'email': unique(), 'language': 'en'})  # noqa
    # A's write key, A's client id, B's user: not a user of A.
    check(post(stack, ROUTE % bb.uid, a.key_headers(), body()), 404,
          err_body('User not found'))
    check(post(stack, ROUTE % bb.uid.upper(), a.key_headers(), body()), 404,
          err_body('User not found'))
    # A's key presented as B's: the key is not B's.
    check_401(post(stack, ROUTE % bb.uid, a.key_headers(client=bb.client),
                   body()))
    check_401(post(stack, ROUTE % a.uid, bb.key_headers(client=a.client),
                   body()))
    # A's read key cannot write, and cannot list B's user's invites.
    check(post(stack, ROUTE % bb.uid, a.key_headers(a.read_key, 'read'),
               body()), 403, err_body('This key may not create invites'))
    resp = raw_request(stack, build('GET', ROUTE % bb.uid,
                                    a.key_headers(a.read_key, 'read')))
    check(resp, 404, err_body('User not found'))
    assert b_addr.encode() not in resp[2]
    # A's token (A's user) for B's user: a token acts for its own user.
    tok = a.token()
    check(post(stack, ROUTE % bb.uid, a.bearer_headers(tok), body()), 403,
          err_body('A token may only act for its own user'))
    # A's token with its subject or audience changed to B's: the
    # signature no longer verifies.
    head, payload, sig = tok.split('.')
    claims = json.loads(unb64url(payload))
    for forged in (dict(claims, sub=bb.uid),
                   dict(claims, aud=[bb.client, a.client]),
                   dict(claims, aud=bb.client)):
        bad = '%s.%s.%s' % (head, b64url(json.dumps(forged).encode()), sig)
        check_401(post(stack, ROUTE % 'me', a.bearer_headers(bad), body()),
                  token=True)
    # B's accept token is unknown to A.
    check(post(stack, '/api/v1/referral-invites/accept', a.key_headers(),
               json.dumps({'token': b_token})), 404,
          err_body('Invite not found'))
    assert_unchanged(stack, before, 'BOLA')
    # Positive controls: each credential works for its own app.
    addr = unique()
    sent(a, addr, a.invite(addr))
    st, h, bd = post(stack, '/api/v1/referral-invites/accept',
                     bb.key_headers(), json.dumps({'token': b_token}))
    assert st == 200, (st, bd)
    assert json.loads(bd)['data']['email'] == b_addr, bd


def test_hostile_bola_with_a_token_for_a_foreign_user(stack):
    """An HS256 app that mints its own tokens signs one whose subject is
    another app's user: it verifies, acts in the signing app, and that
    user is not found there (404), with "me" or the id."""
    a = App(stack)
    bb = App(stack)
    secret = stack.ctl('app', 'jwt-key', a.client, '--alg', 'HS256')
    key = unb64url(secret)
    assert len(key) == 32, secret
    now = int(time.time())
    claims = {'iss': 'referral-invites', 'aud': a.client, 'sub': bb.uid,
              'iat': now, 'exp': now + 600}
    tok = jwt({'alg': 'HS256', 'typ': 'JWT'}, claims,
              lambda d: sign_hs256(key, d))
    before = snapshot(stack)
    body = lambda: json.dumps({'email': unique(), 'language': 'en'})  # noqa
    check(post(stack, ROUTE % 'me', a.bearer_headers(tok), body()), 404,
          err_body('User not found'))
    check(post(stack, ROUTE % bb.uid, a.bearer_headers(tok), body()), 404,
          err_body('User not found'))
    # Claiming B's audience does not borrow B's key.
    tok_b = jwt({'alg': 'HS256'}, dict(claims, aud=bb.client),
                lambda d: sign_hs256(key, d))
    check_401(post(stack, ROUTE % 'me', a.bearer_headers(tok_b), body()),
              token=True)
    tok_both = jwt({'alg': 'HS256'}, dict(claims, aud=[bb.client,
                                                       a.client]),
                   lambda d: sign_hs256(key, d))
    check(post(stack, ROUTE % bb.uid, a.bearer_headers(tok_both), body()),
          404, err_body('User not found'))
    assert_unchanged(stack, before, 'foreign user token')
    # The positive control: the same secret for A's own user works.
    own = jwt({'alg': 'HS256', 'typ': 'JWT'}, dict(claims, sub=a.uid),
              lambda d: sign_hs256(key, d))
    addr = unique()
    sent(a, addr, a.invite(addr, headers=a.bearer_headers(own), uid='me'))


# == log injection ==========================================================

MARK = 'FORGED-LINE'
FORGE = '\r\nreferral-invitesd[%s]: %s\x1b[2K' % (FORGED_PID, MARK)


def check_log(data, what):
    """Every line genuine: the daemon's prefix, no raw control byte, no
    forged line."""
    assert data.endswith(b'\n') or not data, (what, data[-200:])
    for line in data.split(b'\n')[:-1]:
        m = LOG_LINE.fullmatch(line)
        assert m, '%s: malformed log line %r' % (what, line[:300])
        assert m.group(1) != FORGED_PID.encode(), (what, line)
        msg = line.split(b']: ', 1)[1]
        assert not msg.startswith(MARK.encode()), (what, line)


def test_hostile_log_injection(stack):
    app = rs256_app(stack)
    hs = app.key_headers()
    off = log_size(stack)
    forge = FORGE.encode()
    esc = forge.replace(b'\r\n', b'\x1b\x1b')   # what passes nginx
    lf = b'x\nreferral-invitesd[' + FORGED_PID.encode() + b']: ' + \
        MARK.encode()                           # nginx drops the 2nd line
    body = lambda: json.dumps({'email': unique(), 'language': 'en'})  # noqa
    rs = lambda data: openssl_sign(app.priv, data)        # noqa: E731
    without = lambda name: [h for h in hs if h[0] != name]  # noqa: E731
    before = snapshot(stack)
    # Refused: through the path, the credentials, the body, the token.
    check(post(stack, ROUTE % ('%0d%0areferral-invitesd[' + FORGED_PID +
                               ']:%20' + MARK + '%1b'), hs, body()),
          400, err_body('userId is not a valid user id'), 'path')
    for name in ('X-API-KEY', 'X-CLIENT-ID', 'X-API-KEY-TYPE'):
        for value in (b'x' + esc, lf):
            check_401(post(stack, ROUTE % app.uid, without(name) +
                           [b(name) + b': ' + value], body()), what=name)
    check(post(stack, ROUTE % app.uid, hs + [b'Idempotency-Key: x' + esc],
               body()), 400, err_body('Idempotency-Key is not valid'))
    for field in ('email', 'language'):
        doc = {'email': unique(), 'language': 'en'}
        doc[field] = doc[field] + FORGE
        check(post(stack, ROUTE % app.uid, hs, json.dumps(doc)), 400,
              err_body(FIELD_ERROR[field]), field)
    st, h, bd = post(stack, ROUTE % app.uid, hs, json.dumps(
        {'email': unique(), 'language': 'en', FORGE: 1}))
    assert st == 400 and h.get('content-type') == JSON_CT, (st, h, bd)
    assert json.loads(bd)['error'] == \
        'Unexpected member in request body: ' + \
        FORGE.encode()[:32].decode(), bd
    for kw in ({'sub': FORGE}, {'iss': FORGE}, {'aud': [FORGE]},
               {'exp': 1}, {'aud': FORGE}):
        tok = jwt(dict(RS256, kid=FORGE), claims_for(app, **kw), rs)
        check_401(post(stack, ROUTE % 'me', app.bearer_headers(tok),
                       body()), token=True, what=repr(kw))
    check_401(post(stack, ROUTE % 'me', app.bearer_headers(
        jwt({'alg': FORGE}, claims_for(app), rs)), body()), token=True,
        what='alg')
    check_401(post(stack, ROUTE % 'me', [('Content-Type', 'application/json'),
                                         b'Authorization: Bearer x' + esc],
                   body()), token=True, what='Authorization')
    assert_unchanged(stack, before, 'log injection')
    # Harmless headers carrying the same bytes: served, and the request
    # id is nginx's own, whatever the client sent.
    for name in ('X-Request-Id', 'Request-Id', 'User-Agent',
                 'X-Forwarded-For', 'Idempotency-Key'):
        for value in (b'x' + esc, lf):
            if name == 'Idempotency-Key' and value != lf:
                continue
            addr = unique()
            resp = post(stack, ROUTE % app.uid, without(name) +
                        [b(name) + b': ' + value],
                        json.dumps({'email': addr, 'language': 'en'}))
            row = sent(app, addr, resp, name)
            assert row['request_id'] == resp[1]['x-request-id'], row
    # A stored invite and the relay's refusal of an address are logged.
    rejected = 'reject-' + unique()
    check(app.invite(rejected), 400, err_body(
        '550 5.1.1 <%s>: Recipient address rejected' % rejected))

    def logged():
        new = log_since(stack, off)
        if all(re.search(x, new) for x in (rb'stored', rb'refused: 550',
                                           rb'token issuer mismatch')):
            return new
    new = harness.wait_for('the invite, the refusal and the token logged',
                           logged, 10, log=stack.path('daemon.log'))
    check_log(new, 'log injection')


def test_hostile_log_is_well_formed(stack):
    """The whole daemon log of this module: genuine lines only, and no
    worker died whatever it was sent."""
    # A fixed wait, for what must not come: a late malformed line would
    # be written now.
    time.sleep(0.5)
    with open(stack.path('daemon.log'), 'rb') as f:
        data = f.read()
    check_log(data, 'daemon.log')
    assert not re.search(rb'\bdied\b|killing', data), \
        re.findall(rb'.*(?:died|killing).*', data)[:5]
