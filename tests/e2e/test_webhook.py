# SPDX-License-Identifier: ISC
# Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
"""Webhooks, end to end (issue 23, item 4).

A small real HTTP receiver on a loopback port takes the events; the
daemon's webhook process delivers them from the outbox (the events
table, read back with sqlite3).  Every signature is checked with the
shell recipe of referral-invites(7), read from the man page itself; the
receiver goes down, answers 500, hangs, redirects; the delivering
process is killed with SIGKILL mid-try.  Nothing is lost, and each event
is delivered with the id, body and signature it was stored with.
"""

import calendar
import http.server
import json
import os
import re
import signal
import ssl
import subprocess
import tempfile
import threading
import time

import harness
from harness import App, ROUTE, check, ok_body, unique, wait_for
import test_bounce
import test_ops
from test_hostile import accept_token
from test_optout import unsubscribe_url as optout_url

ACCEPT = '/api/v1/referral-invites/accept'
RECEIVER_PORT = harness.free_port()
OTHER_PORT = harness.free_port()
TLS_PORT = harness.free_port()
MAN7 = os.path.join(harness.SRCDIR, 'man', 'referral-invites.7')


class Receiver:
    """An HTTP server on 127.0.0.1 that records each POST.  mode: 'ok'
    (204), 'fail' (500), 'hang' (answers 204 after hang seconds),
    'redirect' (302 to another receiver), 'big' (200 with 1 MiB)."""

    def __init__(self, port, tls=None):
        self.port = port
        self.tls = tls          # (cert, key): https
        self.got = []
        self.mode = 'ok'
        self.hang = 0
        self.lock = threading.Lock()
        self.server = None

    def start(self):
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get('Content-Length', '0'))
                body = self.rfile.read(n)
                with rec.lock:
                    rec.got.append((self.path, dict(self.headers), body))
                    mode = rec.mode
                if mode == 'hang':
                    time.sleep(rec.hang)
                if mode == 'fail':
                    self.send_response(500)
                    self.send_header('Content-Length', '4')
                    self.end_headers()
                    self.wfile.write(b'nope')
                elif mode == 'redirect':
                    self.send_response(302)
                    self.send_header('Location', 'http://127.0.0.1:%d/'
                                     % OTHER_PORT)
                    self.send_header('Content-Length', '0')
                    self.end_headers()
                elif mode == 'big':
                    self.send_response(200)
                    self.send_header('Content-Length', str(1 << 20))
                    self.end_headers()
                    try:
                        self.wfile.write(b'x' * (1 << 20))
                    except OSError:
                        pass        # the daemon stops reading at 4 KiB
                else:
                    self.send_response(204)
                    self.end_headers()

            def log_message(self, *args):
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.server = http.server.ThreadingHTTPServer(
            ('127.0.0.1', self.port), Handler)
        self.server.daemon_threads = True
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.tls)
            self.server.socket = ctx.wrap_socket(self.server.socket,
                                                 server_side=True)
        threading.Thread(target=self.server.serve_forever,
                         daemon=True).start()

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def of(self, event_id):
        with self.lock:
            return [g for g in self.got
                    if g[1].get('webhook-id') == event_id]


RECEIVER = Receiver(RECEIVER_PORT)
URL = 'http://127.0.0.1:%d/hooks' % RECEIVER_PORT


def make_stack():
    RECEIVER.start()
    return harness.fast_stack(conf={
        'webhook_ports': '%d,%d,%d' % (RECEIVER_PORT, OTHER_PORT, TLS_PORT),
        'webhook_allow_http': 'yes',
        'bounce_address': test_bounce.BOUNCE,
        'resend_interval': '1'})


# -- helpers -------------------------------------------------------------

def hooked_app(stack):
    """An app with this module's receiver as its webhook; its secret."""
    app = App(stack)
    secret = app.ctl('app', 'set', app.client, '--webhook-url', URL)
    assert re.fullmatch(r'whsec_[A-Za-z0-9+/]{43}=', secret), secret
    return app, secret


def events(stack, app, etype=None):
    q = "SELECT * FROM events WHERE app_id = '%s'" % app.client
    if etype:
        q += " AND type = '%s'" % etype
    return stack.sql(q + ' ORDER BY created_at, rowid')


def delivered(stack, app, etype, n=1, timeout=20):
    """The app's events of etype once n of them are delivered."""
    def done():
        rows = events(stack, app, etype)
        ok = [r for r in rows if r['status'] == 'delivered']
        return rows if len(ok) >= n else None
    return wait_for('%d %s delivered' % (n, etype), done, timeout)


def recipe():
    """The verification snippet of referral-invites(7), as written."""
    with open(MAN7) as f:
        text = f.read()
    m = re.search(r'^\.\\" webhook-verify\n\.Bd -literal[^\n]*\n(.*?)^\.Ed$',
                  text, re.M | re.S)
    assert m, 'no webhook-verify block in ' + MAN7
    return m.group(1)


def verify(secret, headers, body, shell='sh'):
    """Run the documented recipe on one delivery: its output and status."""
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, 'body'), 'wb') as f:
            f.write(body)
        env = dict(os.environ, WEBHOOK_SECRET=secret,
                   ID=headers['webhook-id'], TS=headers['webhook-timestamp'],
                   SIG=headers['webhook-signature'])
        r = subprocess.run([shell, '-c', recipe()], cwd=d, env=env,
                           capture_output=True, text=True)
        assert os.listdir(d) == ['body'], os.listdir(d)
        return r.stdout.strip(), r.returncode


def check_delivery(stack, app, secret, row, data):
    """The one delivery of event row: its headers, the body it was
    stored with, the signature by the recipe, the data members."""
    [(path, h, body)] = RECEIVER.of(row['id'])
    assert path == '/hooks', path
    assert h['Content-Type'] == 'application/json', h
    assert h['User-Agent'].startswith('referral-invites/'), h
    assert re.fullmatch(r'\d{10}', h['webhook-timestamp']), h
    assert abs(int(h['webhook-timestamp']) - time.time()) < 60, h
    assert body == row['payload'].encode(), (body, row['payload'])
    assert verify(secret, h, body) == ('verified', 0), verify(secret, h, body)
    doc = json.loads(body)
    assert doc == {'type': row['type'], 'timestamp': row['created_at'],
                   'data': data}, doc
    assert re.fullmatch(r'msg_[0-9a-f]{32}', row['id']), row
    assert (row['status'], row['attempts']) == ('delivered', 1), row


def tried(stack, app):
    """The app's one event once a try of it is recorded."""
    return wait_for('a try recorded', lambda: [
        r for r in events(stack, app) if r['last_reply'] is not None], 20)


def invite_id(app, addr):
    [r] = [x for x in app.rows() if x['email_normalized'] == addr]
    return r['id']


def sent(stack, app, addr=None):
    addr = addr or unique()
    check(app.invite(addr), 201, ok_body('Invite sent'))
    return addr, invite_id(app, addr)


def hooks_pid(stack):
    [pid] = wait_for('ri-webhooks', lambda: harness.children(
        stack, 'ri-webhooks'), 10)
    return pid


def iso(s):
    return calendar.timegm(time.strptime(s, '%Y-%m-%dT%H:%M:%SZ'))


def data_of(app, iid, addr, **more):
    d = {'id': iid, 'appId': app.client, 'userId': app.uid, 'email': addr}
    d.update(more)
    return d


# -- tests ---------------------------------------------------------------

def test_webhook_every_event_once_signed(stack):
    app, secret = hooked_app(stack)
    # invite.sent
    addr, iid = sent(stack, app)
    [row] = delivered(stack, app, 'invite.sent')
    check_delivery(stack, app, secret, row, data_of(app, iid, addr))
    assert row['invite_id'] == iid, row
    # invite.accepted, with the accept token of the mail
    token = accept_token(stack, addr)
    st, _, _ = stack.request('POST', ACCEPT, app.headers(), {'token': token})
    assert st == 200, st
    [row] = delivered(stack, app, 'invite.accepted')
    check_delivery(stack, app, secret, row, data_of(app, iid, addr))
    # invite.revoked
    addr2, iid2 = sent(stack, app)
    h = {k: v for k, v in app.headers().items() if k != 'Content-Type'}
    st, _, _ = stack.request('DELETE', (ROUTE % app.uid) + '/' + iid2, h)
    assert st == 200, st
    [row] = delivered(stack, app, 'invite.revoked')
    check_delivery(stack, app, secret, row, data_of(app, iid2, addr2))
    # invite.failed: the relay refuses the address for good
    addr3 = unique('reject')
    st, _, body = app.invite(addr3)
    assert st == 400, (st, body)     # the relay's 550 (test_delivery)
    iid3 = invite_id(app, addr3)
    [row] = delivered(stack, app, 'invite.failed')
    [inv] = stack.sql("SELECT last_reply FROM invites WHERE id = '%s'" % iid3)
    check_delivery(stack, app, secret, row,
                   data_of(app, iid3, addr3, reason=inv['last_reply']))
    # invite.opted_out: the one-click POST of the mail's List-Unsubscribe
    addr4, iid4 = sent(stack, app)
    url = optout_url(stack, addr4)
    st, _, _ = stack.request('POST', url[len(stack.base_url):],
                             {'Content-Type':
                              'application/x-www-form-urlencoded'},
                             b'List-Unsubscribe=One-Click')
    assert st == 200, st
    [row] = delivered(stack, app, 'invite.opted_out')
    check_delivery(stack, app, secret, row, data_of(app, iid4, addr4))
    # invite.bounced: a delivery report for a sent invite
    addr5, iid5 = sent(stack, app)
    msg = test_bounce.report('postfix-failed.eml',
                             test_bounce.tag_of(stack, iid5), addr5)
    r = test_bounce.bounce(stack, msg)
    assert r.returncode == 0, r
    [row] = delivered(stack, app, 'invite.bounced')
    [inv] = stack.sql("SELECT last_reply FROM invites WHERE id = '%s'" % iid5)
    assert inv['last_reply'].startswith('bounced: 5.1.1'), inv
    check_delivery(stack, app, secret, row,
                   data_of(app, iid5, addr5, reason=inv['last_reply']))
    # Each event once: sent x4 (one each), nothing else.
    types = sorted(r['type'] for r in events(stack, app))
    assert types == sorted(['invite.sent'] * 4 + [
        'invite.accepted', 'invite.revoked', 'invite.failed',
        'invite.opted_out', 'invite.bounced']), types
    wait_for('all delivered', lambda: all(
        r['status'] == 'delivered' for r in events(stack, app)), 20)
    for r in events(stack, app):
        assert len(RECEIVER.of(r['id'])) == 1, r


def test_webhook_app_without_url_gets_no_events(stack):
    app = App(stack)
    sent(stack, app)
    assert events(stack, app) == []
    # Taken away: what was pending fails, nothing new is written.
    app2, _ = hooked_app(stack)
    RECEIVER.mode = 'fail'
    try:
        sent(stack, app2)
        wait_for('a failed try', lambda: [
            r for r in events(stack, app2) if r['attempts'] >= 1], 20)
        assert app2.ctl('app', 'set', app2.client, '--webhook-url', '') == ''
        [row] = wait_for('failed', lambda: [
            r for r in events(stack, app2) if r['status'] == 'failed'], 20)
        assert row['last_reply'] == 'the app has no webhook URL', row
        sent(stack, app2)
        assert len(events(stack, app2)) == 1
    finally:
        RECEIVER.mode = 'ok'


def test_webhook_receiver_down_then_back_nothing_lost(stack):
    app, secret = hooked_app(stack)
    RECEIVER.stop()
    try:
        addr, iid = sent(stack, app)
        [row] = tried(stack, app)
        assert row['status'] == 'pending', row
        assert 'onnect' in row['last_reply'], row
        assert RECEIVER.of(row['id']) == []
    finally:
        RECEIVER.start()
    [row] = delivered(stack, app, 'invite.sent', timeout=30)
    assert row['attempts'] >= 2, row
    [(_, h, body)] = RECEIVER.of(row['id'])
    assert body == row['payload'].encode()
    assert verify(secret, h, body) == ('verified', 0)


def test_webhook_500_is_retried_with_backoff(stack):
    app, secret = hooked_app(stack)
    before = test_ops.scrape(stack)
    RECEIVER.mode = 'fail'
    try:
        sent(stack, app)
        [row] = tried(stack, app)
        assert (row['status'], row['last_reply']) == \
            ('pending', 'HTTP 500 nope'), row
        # The next try is 5 s after the first failed (webhook_backoff).
        t1 = iso(row['next_attempt_at'])
        assert 3 <= t1 - time.time() <= 6, (row, time.time())
    finally:
        RECEIVER.mode = 'ok'
    [row] = delivered(stack, app, 'invite.sent', timeout=20)
    assert row['attempts'] == 2, row
    assert len(RECEIVER.of(row['id'])) == 2
    # Counted: one try retried, one delivered, none failed for good.
    after = test_ops.scrape(stack)
    name = 'referral_invites_webhook_attempts_total'
    assert [test_ops.delta(before, after, name, result=r) for r in
            ('retried', 'delivered', 'failed')] == [1, 1, 0]


def test_webhook_kill_9_mid_try_nothing_lost(stack):
    app, secret = hooked_app(stack)
    RECEIVER.mode, RECEIVER.hang = 'hang', 30
    try:
        sent(stack, app)
        [row] = wait_for('a try under way', lambda: [
            r for r in events(stack, app) if r['attempts'] >= 1], 20)
        wait_for('the request at the receiver', lambda:
                 RECEIVER.of(row['id']), 10)
        os.kill(hooks_pid(stack), signal.SIGKILL)
    finally:
        RECEIVER.mode = 'ok'
    # The lease (15 s) runs out; the restarted process tries again.
    [row] = delivered(stack, app, 'invite.sent', timeout=40)
    assert row['attempts'] == 2, row
    got = RECEIVER.of(row['id'])
    assert len(got) == 2 and got[0][2] == got[1][2], got
    assert verify(secret, got[1][1], got[1][2]) == ('verified', 0)


def test_webhook_redirect_not_followed_big_answer_cut(stack):
    app, _ = hooked_app(stack)
    other = Receiver(OTHER_PORT)
    other.start()
    RECEIVER.mode = 'redirect'
    try:
        sent(stack, app)
        [row] = tried(stack, app)
        assert (row['status'], row['last_reply']) == \
            ('pending', 'HTTP 302'), row
        assert other.got == []
    finally:
        RECEIVER.mode = 'ok'
        other.stop()
    delivered(stack, app, 'invite.sent', timeout=20)
    app2, _ = hooked_app(stack)
    RECEIVER.mode = 'big'
    try:
        sent(stack, app2)
        [row] = delivered(stack, app2, 'invite.sent')
        assert (row['attempts'], row['last_reply']) == (1, 'HTTP 200 ' +
                                                         'x' * 200), row
    finally:
        RECEIVER.mode = 'ok'


def test_webhook_urls_refused_with_reason(stack):
    app = App(stack)
    for url, why in [
            ('ftp://127.0.0.1:%d/' % RECEIVER_PORT, 'not https'),
            ('http://example.org:%d/' % RECEIVER_PORT,
             'http only to a loopback address'),
            ('https://127.0.0.1/', 'port 443 is not in webhook_ports'),
            ('http://u:p@127.0.0.1:%d/' % RECEIVER_PORT,
             'a user name or password in it'),
            ('http://127.0.0.1:%d/#x' % RECEIVER_PORT,
             'a fragment (#) in it'),
            ('http://127.0.0.1:%d/ x' % RECEIVER_PORT,
             'not printable ASCII without spaces'),
            ('hooks', 'not an absolute URL')]:
        r = stack.ctl_run('app', 'set', app.client, '--webhook-url', url)
        assert (r.returncode, r.stdout, r.stderr) == (
            1, '', 'referral-invitesctl: %s: --webhook-url: %s\n' % (
                url, why)), (url, r)
    [a] = stack.sql("SELECT webhook_url, webhook_generation FROM apps "
                    "WHERE id = '%s'" % app.client)
    assert a == {'webhook_url': None, 'webhook_generation': 0}, a


def test_webhook_secret_rotated_and_events_retried_by_ctl(stack):
    app, old = hooked_app(stack)
    # Setting the URL again keeps the secret: nothing printed.
    assert app.ctl('app', 'set', app.client, '--webhook-url', URL) == ''
    new = app.ctl('app', 'webhook-secret', app.client)
    assert new != old and new.startswith('whsec_'), (old, new)
    addr, iid = sent(stack, app)
    [row] = delivered(stack, app, 'invite.sent')
    [(_, h, body)] = RECEIVER.of(row['id'])
    assert verify(new, h, body) == ('verified', 0)
    assert verify(old, h, body)[1] != 0
    # events lists it; event retry sends it once more, same id and body.
    out = stack.ctl('--json', 'events', '--app', app.client)
    [listed] = json.loads(out)
    assert (listed['id'], listed['type'], listed['invite_id'],
            listed['status']) == (row['id'], 'invite.sent', iid,
                                  'delivered'), listed
    assert stack.ctl('event', 'retry', row['id']) == ''
    wait_for('delivered again', lambda: len(RECEIVER.of(row['id'])) == 2, 20)
    got = RECEIVER.of(row['id'])
    assert got[1][2] == body, got
    [row2] = delivered(stack, app, 'invite.sent')
    assert row2['attempts'] == 1, row2
    r = stack.ctl_run('event', 'retry', 'msg_' + '0' * 32)
    assert (r.returncode, r.stderr) == (
        1, 'referral-invitesctl: msg_%s: no such event\n' % ('0' * 32)), r
    r = stack.ctl_run('events', '--status', 'sent')
    assert (r.returncode, r.stderr) == (
        1, 'referral-invitesctl: sent: --status takes pending, delivered '
        'or failed\n'), r


def test_webhook_https_certificate_is_verified(stack):
    """A receiver whose certificate no CA of the system signed is never
    sent the event: the try fails on the certificate and is retried."""
    d = tempfile.mkdtemp(dir=stack.dir)
    cert, key = os.path.join(d, 'cert.pem'), os.path.join(d, 'key.pem')
    harness.make_cert(cert, key, 'IP:127.0.0.1')
    tls = Receiver(TLS_PORT, (cert, key))
    tls.start()
    try:
        app = App(stack)
        app.ctl('app', 'set', app.client, '--webhook-url',
                'https://127.0.0.1:%d/hooks' % TLS_PORT)
        sent(stack, app)
        [row] = tried(stack, app)
        assert row['status'] == 'pending', row
        assert 'certificate' in row['last_reply'], row
        assert tls.got == []
    finally:
        tls.stop()


def test_webhook_recipe_refuses_forgeries(stack):
    """The documented check, under dash and bash: a good delivery passes;
    a bare "v1," with an empty or broken secret, a timestamp that is not
    digits (never evaluated: no command in it runs), an old timestamp, a
    changed body or id all fail."""
    app, secret = hooked_app(stack)
    sent(stack, app)
    [row] = delivered(stack, app, 'invite.sent')
    [(_, h, body)] = RECEIVER.of(row['id'])
    for shell in ('sh', 'bash'):
        assert verify(secret, h, body, shell) == ('verified', 0), shell
        bad = [('', dict(h, **{'webhook-signature': 'v1,'}), body),
               ('whsec_!!', dict(h, **{'webhook-signature': 'v1,'}), body),
               (secret, dict(h, **{'webhook-timestamp':
                                   'x[$(touch pwned)]'}), body),
               (secret, dict(h, **{'webhook-timestamp':
                                   str(int(h['webhook-timestamp']) - 600)}),
                body),
               (secret, h, body + b' '),
               (secret, dict(h, **{'webhook-id': 'msg_' + '0' * 32}), body)]
        for sec, hh, bb in bad:
            out, rc = verify(sec, hh, bb, shell)
            assert (out, rc != 0) == ('', True), (shell, sec, hh, out, rc)


def test_webhook_refused_url_changes_nothing_else(stack):
    app = App(stack)
    r = stack.ctl_run('app', 'set', app.client, '--name', 'Renamed',
                      '--webhook-url', 'ftp://127.0.0.1/')
    assert r.returncode == 1, r
    [a] = stack.sql("SELECT name, webhook_url, webhook_generation FROM apps "
                    "WHERE id = '%s'" % app.client)
    assert a == {'name': app.name, 'webhook_url': None,
                 'webhook_generation': 0}, a


def test_webhook_done_events_purged_after_30_days(stack):
    """At its start (and hourly) the webhook process deletes delivered and
    failed events older than 30 days; pending ones stay."""
    app, _ = hooked_app(stack)
    old = '2000-01-01T00:00:00Z'
    for i, status in enumerate(('delivered', 'failed', 'pending')):
        stack.sql("INSERT INTO events (id, app_id, type, payload, status, "
                  "next_attempt_at, give_up_at, created_at) VALUES "
                  "('msg_%032d', '%s', 'invite.sent', '{}', '%s', "
                  "'2999-01-01T00:00:00Z', '2000-01-04T00:00:00Z', '%s')"
                  % (i, app.client, status, old))
    os.kill(hooks_pid(stack), signal.SIGKILL)
    wait_for('purged', lambda: [r['status'] for r in events(stack, app)]
             == ['pending'], 20)
