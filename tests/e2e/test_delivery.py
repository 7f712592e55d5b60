# SPDX-License-Identifier: ISC
# Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
"""Mail delivery end to end: SPEC section 5, the language rules of section
2, issue 3.

The relay is tests/smtpd.py (aiosmtpd) on loopback: STARTTLS against a test
CA, AUTH right and wrong, a relay that is down and then comes up, 550 and
451 to RCPT, a relay that never greets, kill -9 of the mailer in the middle
of a batch, 200 invites over one SMTP session, a mail in every shipped
language parsed with Python's email package, and hostile app and inviter
names.  The module stack serves the tests that need nothing special;
scenarios that need another config or relay get a stack of their own
(starting one takes well under a second).  Timeouts and retry delays are a
few seconds, so the file runs in under a minute.

tests/smtpd.py supplies --delay-data (a slow relay) and records with each
message the relay's connection number (one number for many messages: one
SMTP session) and the TLS version.  Names are test_delivery_* so that
"run.py -k test_delivery" selects exactly this file.
"""

import concurrent.futures
import html
import html.parser
import http.client
import os
import re
import signal
import time
from datetime import datetime, timezone

import harness
from harness import (INVITE_URL, check, err_body, ok_body, openssl,
                     template, unique, wait_for)

LANGS = ['en', 'de', 'fr', 'es', 'it', 'pt', 'pt-BR', 'nl', 'pl']
MAIL_DOMAIN = 'test.example'        # of harness.MAIL_FROM
OPTOUT_PATH = '/api/v1/referral-invites/opt-out?token='
TOO_MANY = 'Too many invites, try again later'
# The module stack: short SMTP timeout, no per-user or per-app limits (the
# bulk tests send hundreds of invites as one user).
BASE = {'smtp_timeout': '2', 'limit_per_hour': '0', 'limit_per_day': '0',
        'app_limit_per_minute': '0'}


def make_stack():
    return harness.Stack(conf=dict(BASE, delivery_wait='3')).start()


# -- helpers ---------------------------------------------------------------

class App(harness.App):
    """harness.App, and invites sent in bulk."""

    label = 'Delivery App'

    def invite_many(self, addrs, language='en'):
        """POST each address over one connection; nginx's flood guard
        (the daemon's own limits are off here) is waited out."""
        answers = []
        conn = self.stack.connection()
        try:
            for addr in addrs:
                for _ in range(100):
                    try:
                        resp = self.invite(addr, language, conn=conn)
                    except (OSError, http.client.HTTPException):
                        conn.close()
                        conn = self.stack.connection()
                        continue
                    if resp[0] != 429 or resp[2] != err_body(TOO_MANY):
                        break
                    # A fixed wait: nginx's bucket refills with time.
                    time.sleep(0.2)
                answers.append(resp)
        finally:
            conn.close()
        return answers


def rows_for(stack, addrs):
    """The invites of these addresses, as {address: row}."""
    want = [a.lower() for a in addrs]
    rows = stack.sql('SELECT * FROM invites WHERE email_normalized IN (%s)' %
                     ','.join("'%s'" % a for a in want))
    out = {}
    for r in rows:
        assert r['email_normalized'] not in out, ('two rows', r)
        out[r['email_normalized']] = r
    return out


def row(stack, addr):
    rows = rows_for(stack, [addr])
    assert len(rows) == 1, (addr, rows)
    return rows[addr.lower()]


def iso(ts):
    """An ISO 8601 UTC time of the database as a POSIX time."""
    assert re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z', ts), ts
    return datetime.strptime(ts[:19], '%Y-%m-%dT%H:%M:%S').replace(
        tzinfo=timezone.utc).timestamp()


def backoff(r, initial, maximum):
    """A deferred row's next attempt is initial * 2^(attempts-1), capped,
    after its last update (both written in one step; a second may tick)."""
    want = min(initial * 2 ** (r['attempts'] - 1), maximum)
    got = iso(r['next_attempt_at']) - iso(r['updated_at'])
    assert want - 1 <= got <= want, \
        'next attempt %ss after the update, expected %ss: %r' % (got, want, r)


def all_mails(stack):
    return [stack._load_mail(n) for n in stack._mails()]


def mails_by_rcpt(stack):
    out = {}
    for m in all_mails(stack):
        for rcpt in m.envelope['rcpt_tos']:
            out.setdefault(rcpt.lower(), []).append(m)
    return out


def no_mail(stack, addr, wait=0.5):
    got = stack.mail_for(addr, timeout=wait, count=0)
    assert got == [], 'unexpected mail for %s' % addr


def stop_relay(stack):
    stack._terminate('smtpd')
    assert not harness.can_connect(('127.0.0.1', stack.smtp_port))


def restart_relay(stack, args):
    """The relay again, on the same port and maildir, with these options."""
    stop_relay(stack)
    stack.smtpd_args = list(args)
    stack.start_smtpd()


def mailer_pid(stack):
    """The pid of the stack's ri-mailer (a child of its referral-invitesd),
    None unless there is exactly one."""
    pids = harness.children(stack, 'ri-mailer')
    return pids[0] if len(pids) == 1 else None


def with_stack(fn, **kw):
    """Run fn(stack) on a Stack of its own; its logs go with a failure."""
    harness.with_stack(fn, Stack, **kw)


def queued_while_mailer_stopped(s, n, prefix):
    """n invites of an app of their own, to fresh addresses, with the
    mailer stopped: each answer 201 Invite queued, each row queued and
    not tried, no mail yet.  (The mailer's pid, the addresses.)"""
    app = App(s)
    addrs = [unique(prefix) for _ in range(n)]
    pid = wait_for('ri-mailer', lambda: mailer_pid(s), 5)
    with harness.stopped(pid):
        for resp in app.invite_many(addrs):
            check(resp, 201, ok_body('Invite queued'))
        rows = rows_for(s, addrs)
        assert len(rows) == len(addrs) and all(
            (r['status'], r['attempts']) == ('queued', 0)
            for r in rows.values()), rows
        assert s._mails() == []
    return pid, addrs


def make_ca(d, name):
    """A test CA in d: (certificate, key)."""
    cert, key = os.path.join(d, name + '.pem'), os.path.join(d, name + '.key')
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt',
            'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj',
            '/CN=referral-invites e2e %s' % name, '-addext',
            'basicConstraints=critical,CA:TRUE', '-addext',
            'keyUsage=critical,keyCertSign,cRLSign', '-keyout', key,
            '-out', cert)
    os.chmod(cert, 0o644)       # the daemon reads it as its own user
    return cert, key


def make_server_cert(d, ca_cert, ca_key):
    """A certificate for DNS name localhost signed by the CA."""
    cert, key = os.path.join(d, 'relay.pem'), os.path.join(d, 'relay.key')
    csr, ext = os.path.join(d, 'relay.csr'), os.path.join(d, 'relay.ext')
    with open(ext, 'w') as f:
        f.write('subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n'
                'keyUsage=critical,digitalSignature\n'
                'extendedKeyUsage=serverAuth\n')
    openssl('req', '-new', '-newkey', 'ec', '-pkeyopt',
            'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=localhost',
            '-keyout', key, '-out', csr)
    openssl('x509', '-req', '-in', csr, '-CA', ca_cert, '-CAkey', ca_key,
            '-CAcreateserial', '-days', '2', '-extfile', ext, '-out', cert)
    return cert, key


class Stack(harness.Stack):
    """harness.Stack, and with ca=True a relay that requires STARTTLS with
    a certificate for "localhost" issued by a test CA; the daemon trusts
    that CA alone (SSL_CERT_FILE in its environment)."""

    def __init__(self, ca=False, **kw):
        super().__init__(**kw)
        self.ca = ca

    def _prepare_relay(self):
        if self.ca:
            d = self.path('pki')
            os.mkdir(d, 0o755)
            self.ca_cert, ca_key = make_ca(d, 'ca')
            cert, key = make_server_cert(d, self.ca_cert, ca_key)
            self.smtpd_args += ['--starttls-cert', cert, '--starttls-key',
                                key, '--require-starttls']
            self.daemon_env['SSL_CERT_FILE'] = self.ca_cert
            # libesmtp checks DNS names, never IP addresses.
            self.relay_conf.update(smtp_host='localhost',
                                   smtp_starttls='required')
        super()._prepare_relay()


# -- what a mail must look like --------------------------------------------

def render(text, values):
    for k, v in values.items():
        text = text.replace('{{%s}}' % k, v)
    return text


def subject_of(lang, values):
    """The subject line the template gives: one line, controls as spaces."""
    flat = {k: re.sub(r'[\x00-\x1f\x7f\x80-\x9f]', ' ', v)
            for k, v in values.items()}
    return render(template(lang, 'subject').strip(), flat)


def crlf_to_lf(s):
    """Line ends as LF: a MIME body's line break is CRLF whatever the
    template or a value used."""
    return re.sub(r'\r\n?', '\n', s)


def text_of(part):
    return crlf_to_lf(part.get_content())


def raw_head(m):
    return m.raw.split(b'\r\n\r\n', 1)[0]


def header_names(m):
    """Names of the top-level header lines, in order, from the raw bytes."""
    names = []
    for line in raw_head(m).split(b'\r\n'):
        if line[:1] in (b' ', b'\t'):
            continue
        name, colon, _ = line.partition(b':')
        assert colon and re.fullmatch(rb'[A-Za-z0-9-]+', name), \
            'not a header line: %r' % line
        names.append(name.decode().lower())
    return names


def check_head(m):
    """Raw header: ASCII, CRLF only, no stray line."""
    head = raw_head(m)
    assert all(c < 128 for c in head), '8-bit header: %r' % head
    assert b'\n' not in head.replace(b'\r\n', b''), 'bare LF: %r' % head
    assert b'\r' not in head.replace(b'\r\n', b''), 'bare CR: %r' % head
    names = header_names(m)
    for once in ('from', 'to', 'subject', 'date', 'message-id',
                 'mime-version', 'content-type', 'list-unsubscribe',
                 'list-unsubscribe-post'):
        assert names.count(once) == 1, (once, names)
    return names


def check_invite_mail(stack, m, app, addr, lang, invite_id):
    """Everything about one invite mail: envelope, headers, both parts
    rendered from lang's templates with the values the daemon knows.
    Returns (accept_url, optout_url)."""
    assert m.envelope['rcpt_tos'] == [addr], m.envelope
    assert m.envelope['mail_from'] == 'invites@' + MAIL_DOMAIN, m.envelope
    check_head(m)
    assert [a.addr_spec for a in m['To'].addresses] == [addr], m['To']
    assert m['From'].addresses[0].addr_spec == 'invites@' + MAIL_DOMAIN
    assert m['Date'].datetime is not None, m['Date']
    assert abs(m['Date'].datetime.timestamp() - time.time()) < 300, m['Date']
    assert str(m['Message-ID']) == '<invite-%s@%s>' % (invite_id,
                                                       MAIL_DOMAIN), \
        (m['Message-ID'], invite_id)
    assert str(m['MIME-Version']) == '1.0'
    assert m.get_content_type() == 'multipart/alternative', \
        m.get_content_type()
    parts = list(m.iter_parts())
    assert [p.get_content_type() for p in parts] == \
        ['text/plain', 'text/html'], [p.get_content_type() for p in parts]
    for p in parts:
        assert p.get_content_charset() == 'utf-8', p['Content-Type']
    plain, markup = text_of(parts[0]), text_of(parts[1])
    # The links: the app's invite URL with token=, and the opt-out link of
    # List-Unsubscribe (RFC 8058); both parts carry both.
    lu = str(m['List-Unsubscribe']).strip()
    mo = re.fullmatch(r'<(%s%s[A-Za-z0-9._~-]{20,})>' % (
        re.escape(stack.base_url), re.escape(OPTOUT_PATH)), lu)
    assert mo, 'List-Unsubscribe: %r' % lu
    optout = mo.group(1)
    assert str(m['List-Unsubscribe-Post']).strip() == \
        'List-Unsubscribe=One-Click', m['List-Unsubscribe-Post']
    accepts = set(re.findall(re.escape(INVITE_URL) + r'\?token=[A-Za-z0-9_-]+',
                             plain))
    assert len(accepts) == 1, ('accept link in text/plain', plain)
    accept = accepts.pop()
    for name, body in (('text/plain', plain), ('text/html', markup)):
        assert accept in body, (name, 'no accept link', body)
        assert optout in body, (name, 'no opt-out link', body)
        assert '{{' not in body, (name, 'unrendered variable', body)
    assert 'href="%s"' % accept in markup, markup
    assert 'href="%s"' % optout in markup, markup
    values = {'app_name': app.name, 'inviter_name': app.user_name,
              'inviter_email': app.user_email, 'invitee_email': addr,
              'accept_url': accept, 'optout_url': optout}
    assert str(m['Subject']) == subject_of(lang, values), \
        (str(m['Subject']), subject_of(lang, values))
    want = crlf_to_lf(render(template(lang, 'txt'), values))
    assert plain.rstrip('\n') == want.rstrip('\n'), \
        'text/plain differs from %s.txt:\n%s\n---\n%s' % (lang, plain, want)
    want = crlf_to_lf(render(template(lang, 'html'),
                             {k: html_escape(v) for k, v in values.items()}))
    assert html.unescape(markup).rstrip('\n') == \
        html.unescape(want).rstrip('\n'), \
        'text/html differs from %s.html:\n%s\n---\n%s' % (lang, markup, want)
    assert tags(markup) == tags(want), (tags(markup), tags(want))
    return accept, optout


def html_escape(s):
    return html.escape(s, quote=True)


class _Tags(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.seen = []

    def handle_starttag(self, tag, attrs):
        self.seen.append((tag, tuple(a for a, _ in attrs)))

    def handle_endtag(self, tag):
        self.seen.append(('/' + tag, ()))


def tags(markup):
    """The element structure of an HTML document: what injected markup
    would change."""
    p = _Tags()
    p.feed(markup)
    p.close()
    return p.seen


# -- 1. STARTTLS with a test CA, AUTH --------------------------------------

def test_delivery_starttls_required_test_ca_and_auth(stack):
    def run(s):
        app = App(s)
        addr = unique()
        check(app.invite(addr), 201, ok_body('Invite sent'))
        r = row(s, addr)
        assert (r['status'], r['attempts']) == ('sent', 1), r
        assert r['last_reply'].startswith('250 '), r
        [m] = s.mail_for(addr)
        env = m.envelope
        assert env['tls'] is True and env['auth'] == 'invites', env
        # libesmtp misreads TLS 1.3 session tickets: the mailer caps at 1.2.
        assert env['tls_version'] == 'TLSv1.2', env
        check_invite_mail(s, m, app, addr, 'en', r['id'])

        # The CA is what makes it work: a daemon that trusts another CA
        # must not send (the invite waits for a relay it can trust).
        s.stop_daemon()
        other, _ = make_ca(s.path('pki'), 'other-ca')
        s.daemon_env['SSL_CERT_FILE'] = other
        s.start_daemon()
        addr = unique('untrusted')
        check(app.invite(addr), 201, ok_body('Invite queued'))
        r = wait_for('the untrusted relay\'s invite back in the queue',
                  lambda: (lambda r: r if r['status'] == 'queued' and
                           r['last_reply'] else None)(row(s, addr)), 10)
        assert r['attempts'] >= 1 and not r['last_reply'].startswith('2'), r
        assert r['sent_at'] is None, r
        no_mail(s, addr)
    with_stack(run, ca=True, smtp_auth='invites:s3cret-pw',
               conf=dict(BASE, delivery_wait='3', smtp_timeout='3'))


def test_delivery_auth_wrong_password_stays_queued_and_warns(stack):
    def run(s):
        app = App(s)
        addr = unique()
        t0 = time.monotonic()
        check(app.invite(addr), 201, ok_body('Invite queued'))
        assert time.monotonic() - t0 < 2 + 1
        r = wait_for('the refused invite back in the queue',
                  lambda: (lambda r: r if r['status'] == 'queued' and
                           r['last_reply'] else None)(row(s, addr)), 5)
        # retry_initial is an hour: exactly the one attempt.
        assert r['attempts'] == 1 and r['sent_at'] is None, r
        assert re.match(r'53[05] 5\.7\.\d+ .*auth', r['last_reply'], re.I), \
            'last_reply does not say AUTH failed: %r' % r
        backoff(r, 3600, 3600)
        no_mail(s, addr)
        log = harness.tail(s.path('daemon.log'), 400)
        assert re.search(r'SMTP auth\w* failed.*53[05].*smtp_password_file',
                         log, re.I), \
            'no loud warning about the refused password:\n' + log
    # Over STARTTLS with the test CA: the relay offers AUTH only then, so a
    # 53x reply also shows that TLS itself worked.
    with_stack(run, ca=True, smtp_auth='invites:right', smtp_password='wrong',
               conf=dict(BASE, delivery_wait='2', smtp_timeout='3',
                         retry_initial='3600'))


# -- 2. relay down, then up ------------------------------------------------

def test_delivery_relay_down_then_up_delivers_every_invite(stack):
    def run(s):
        stop_relay(s)
        apps = [App(s), App(s)]
        jobs = [(apps[i % 2], unique('outage')) for i in range(8)]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda j: j[0].invite(j[1]), jobs))
        for resp in answers:
            check(resp, 201, ok_body('Invite queued'))
        addrs = [a for _, a in jobs]

        def all_deferred():
            rows = rows_for(s, addrs)
            if len(rows) == 8 and all(r['status'] == 'queued' and
                                      r['attempts'] >= 1 and
                                      r['last_reply'] for r in
                                      rows.values()):
                return rows
        rows = wait_for('every invite tried and deferred', all_deferred, 5)
        for r in rows.values():
            assert r['sent_at'] is None, r
            backoff(r, 1, 2)
        # The mailer keeps trying while the relay is down: every invite
        # is tried again within 2.5 s (retry_max 2).
        wait_for('every invite tried again', lambda: all(
            r['status'] in ('queued', 'sending') and r['attempts'] >= 2
            for r in rows_for(s, addrs).values()), 2.5)
        assert s._mails() == []

        s.start_smtpd()
        wait_for('every invite sent', lambda: all(
            r['status'] == 'sent' for r in rows_for(s, addrs).values()), 10)
        # A fixed wait, for what must not come: a duplicate would
        # arrive now.
        time.sleep(1)
        by = mails_by_rcpt(s)
        assert sorted(by) == sorted(addrs), (sorted(by), sorted(addrs))
        for addr in addrs:
            assert len(by[addr]) == 1, (addr, len(by[addr]))
        for r in rows_for(s, addrs).values():
            assert r['last_reply'].startswith('250 ') and r['sent_at'], r
            [m] = by[r['email_normalized']]
            assert str(m['Message-ID']) == '<invite-%s@%s>' % (
                r['id'], MAIL_DOMAIN), (m['Message-ID'], r)
    with_stack(run, conf=dict(BASE, delivery_wait='1', retry_initial='1',
                              retry_max='2'))


# -- 3. 550 and 451 to RCPT ------------------------------------------------

def test_delivery_recipient_refused_550(stack):
    app = App(stack)
    addr = unique('reject')
    reply = '550 5.1.1 <%s>: Recipient address rejected' % addr
    t0 = time.monotonic()
    check(app.invite(addr), 400, err_body(reply))
    assert time.monotonic() - t0 < 3, 'the 400 waited for delivery_wait'
    r = row(stack, addr)
    assert (r['status'], r['attempts'], r['last_reply'], r['sent_at']) == \
        ('failed', 1, reply, None), r
    sup = stack.sql("SELECT * FROM suppressions WHERE email_normalized = "
                    "'%s'" % addr)
    assert [(x['app_id'], x['source']) for x in sup] == \
        [(r['app_id'], 'bounce')], sup
    before = stack.sql('SELECT count(*) AS n FROM invites')
    check(app.invite(addr), 409,
          err_body('This address does not accept invites'))
    check(app.invite(addr.upper()), 409,
          err_body('This address does not accept invites'))
    assert stack.sql('SELECT count(*) AS n FROM invites') == before
    # A bounce is not an opt-out of every app: another app may invite.
    other = App(stack)
    check(other.invite(addr), 400, err_body(reply))
    no_mail(stack, addr)


def test_delivery_bounce_listed_before_the_400(stack):
    """The 400 says the address was refused for good: by then it must be on
    the do-not-invite list, and no crash may take it off.  A trigger makes
    the list's insert take about a second (a slow disk); the mailer is
    killed right after the 400."""
    app = App(stack)
    addr = unique('reject-slow')
    reply = '550 5.1.1 <%s>: Recipient address rejected' % addr
    query = "SELECT source FROM suppressions WHERE email_normalized = '%s'" \
        % addr
    mailer = wait_for('ri-mailer', lambda: mailer_pid(stack), 5)
    if stack.pgdb is None:
        stack.sql('CREATE TABLE e2e_slow (x INTEGER);'
                  'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1'
                  ' FROM c WHERE x < 300) INSERT INTO e2e_slow SELECT x'
                  ' FROM c; CREATE TRIGGER e2e_slow_bounce BEFORE INSERT ON'
                  ' suppressions BEGIN SELECT sum(a.x * b.x + c.x) FROM'
                  ' e2e_slow a, e2e_slow b, e2e_slow c; END;')
        drop = 'DROP TRIGGER e2e_slow_bounce; DROP TABLE e2e_slow'
    else:
        stack.sql("CREATE FUNCTION e2e_slow() RETURNS trigger LANGUAGE"
                  " plpgsql AS $$BEGIN PERFORM pg_sleep(1); RETURN NEW;"
                  " END$$; CREATE TRIGGER e2e_slow_bounce BEFORE INSERT ON"
                  " suppressions FOR EACH ROW EXECUTE FUNCTION e2e_slow()")
        drop = 'DROP TRIGGER e2e_slow_bounce ON suppressions;' \
            ' DROP FUNCTION e2e_slow'
    try:
        check(app.invite(addr), 400, err_body(reply))
        listed = stack.sql(query)
        os.kill(mailer, signal.SIGKILL)
        wait_for('a new ri-mailer', lambda: (
            lambda p: p if p not in (None, mailer) else None)(
                mailer_pid(stack)), 10)
    finally:
        stack.sql(drop)
    after = stack.sql(query)
    again = app.invite(addr)
    r = row(stack, addr)
    assert (r['status'], r['last_reply']) == ('failed', reply), r
    assert (listed, after) == ([{'source': 'bounce'}],) * 2, \
        'do-not-invite list right after the 400: %r, after kill -9 of the ' \
        'mailer: %r; the next invite: %d %r' % (listed, after, again[0],
                                                 again[2])
    check(again, 409, err_body('This address does not accept invites'))


def test_delivery_recipient_deferred_451_then_accepted(stack):
    def run(s):
        app = App(s)
        addr = unique('defer')
        t0, wall = time.monotonic(), time.time()
        h = check(app.invite(addr), 201, ok_body('Invite queued'))
        took = time.monotonic() - t0
        r = row(s, addr)
        assert took < 1 + 1, took
        assert (r['status'], r['attempts'], r['sent_at']) == \
            ('queued', 1, None), r
        assert r['last_reply'] == \
            '451 4.3.0 <%s>: Try again later' % addr, r
        assert r['request_id'] == h['x-request-id'], r
        backoff(r, 4, 4)
        assert abs(iso(r['next_attempt_at']) - (wall + 4)) <= 2, (wall, r)
        assert s.sql("SELECT * FROM suppressions WHERE email_normalized = "
                     "'%s'" % addr) == []
        no_mail(s, addr, 0.2)
        # The relay takes it now; the retry comes retry_initial later.
        restart_relay(s, [])
        r = wait_for('the deferred invite sent', lambda: (
            lambda r: r if r['status'] == 'sent' else None)(row(s, addr)),
            4 + 4)
        assert r['attempts'] == 2 and r['last_reply'].startswith('250 '), r
        assert iso(r['sent_at']) >= iso(r['created_at']) + 3, r
        [m] = s.mail_for(addr)
        check_invite_mail(s, m, app, addr, 'en', r['id'])
    with_stack(run, smtpd_args=['--defer-rcpt', '^defer-'],
               conf=dict(BASE, delivery_wait='1', retry_initial='4',
                         retry_max='4'))


def test_delivery_deferred_until_retry_give_up(stack):
    def run(s):
        app = App(s)
        addr = unique('defer')
        check(app.invite(addr), 201, ok_body('Invite queued'))
        seen = {}

        def failed():
            r = row(s, addr)
            if r['status'] == 'queued':
                seen[r['attempts']] = r
            return r if r['status'] == 'failed' else None
        r = wait_for('the invite given up', failed, 10, interval=0.02)
        # Attempts at 0, 1 and 3 s (1 s doubling, capped at 2 s); the one
        # at 3 s, or already the one at 1 s when the whole seconds of the
        # times fall that way, is past retry_give_up (2 s from creation).
        assert r['attempts'] in (2, 3) and r['sent_at'] is None, (r, seen)
        assert r['last_reply'] == '451 4.3.0 <%s>: Try again later' % addr, r
        assert 1 <= iso(r['updated_at']) - iso(r['created_at']) <= 4, r
        assert set(seen) <= {1, 2} and max(seen, default=r['attempts'] - 1) \
            == r['attempts'] - 1, \
            (r, seen)
        for q in seen.values():
            backoff(q, 1, 2)
        no_mail(s, addr, 0.2)
    with_stack(run, smtpd_args=['--defer-rcpt', '^defer-'],
               conf=dict(BASE, delivery_wait='1', retry_initial='1',
                         retry_max='2', retry_give_up='2'))


# -- 4. a greeting that never comes ----------------------------------------

def test_delivery_silent_relay_mailer_gives_up_http_answers(stack):
    def run(s):
        app = App(s)
        addr = unique('silent')
        t0 = time.monotonic()
        check(app.invite(addr), 201, ok_body('Invite queued'))
        took = time.monotonic() - t0
        assert took < 1 + 1, 'the request took %.1fs' % took
        # The mailer is stuck in the greeting; workers still answer.
        t1 = time.monotonic()
        check(app.invite('not-an-address'), 400,
              err_body('email is not a valid address'))
        assert time.monotonic() - t1 < 1, 'a worker is stuck'
        addr2 = unique('silent')
        t1 = time.monotonic()
        check(app.invite(addr2), 201, ok_body('Invite queued'))
        assert time.monotonic() - t1 < 1 + 1, 'a worker is stuck'

        def gave_up():
            r = row(s, addr)
            return r if r['status'] == 'queued' and r['last_reply'] else None
        r = wait_for('the mailer gives up on the silent relay', gave_up, 6,
                     interval=0.02)
        gave = time.monotonic() - t0
        assert gave < 2 + 1, 'the mailer waited %.1fs (smtp_timeout 2)' % gave
        assert r['attempts'] == 1 and r['sent_at'] is None, r
        assert not r['last_reply'].startswith('2'), r
        backoff(r, 60, 60)
        # The second one gets its own session and its own timeout.
        r2 = wait_for('the second invite given up', lambda: (
            lambda r: r if r['status'] == 'queued' and r['last_reply']
            else None)(row(s, addr2)), 2 + 3)
        assert r2['attempts'] == 1, r2
    with_stack(run, smtpd_args=['--no-greeting'],
               conf=dict(BASE, delivery_wait='1', smtp_timeout='2',
                         retry_initial='60'))


# -- 5. kill -9 of the mailer in the middle of a batch ---------------------

def test_delivery_kill_mailer_mid_batch_loses_nothing(stack):
    def run(s):
        n = 100
        # Stopped while the invites are stored, so that it claims them
        # all at once: one batch of n over one session.
        old, addrs = queued_while_mailer_stopped(s, n, 'batch')
        wait_for('20 mails', lambda: len(s._mails()) >= 20, 20, interval=0.01)
        os.kill(old, signal.SIGKILL)
        at_kill = len(s._mails())
        assert at_kill < n, 'the batch was over before the kill'
        new = wait_for('a new ri-mailer', lambda: (
            lambda p: p if p not in (None, old) else None)(mailer_pid(s)), 10)
        assert new != old
        wait_for('every invite sent', lambda: all(
            r['status'] == 'sent' for r in rows_for(s, addrs).values()), 40,
            interval=0.2)
        # A fixed wait, for what must not come: a late duplicate would
        # arrive now.
        time.sleep(1)
        by = mails_by_rcpt(s)
        assert sorted(by) == sorted(addrs), 'lost: %r, extra: %r' % (
            sorted(set(addrs) - set(by)), sorted(set(by) - set(addrs)))
        twice = [a for a in addrs if len(by[a]) > 1]
        assert len(twice) <= 1 and all(len(by[a]) == 2 for a in twice), \
            'sent more than once: %r' % {a: len(by[a]) for a in twice}
        rows = rows_for(s, addrs)
        for a, r in rows.items():
            assert r['attempts'] in (1, 2) and r['sent_at'], r
            for m in by[a]:
                assert str(m['Message-ID']) == '<invite-%s@%s>' % (
                    r['id'], MAIL_DOMAIN), (m['Message-ID'], r)
        # Those delivered before the kill were marked at once (attempt 1);
        # the rest were sent again by the new mailer.
        first = sum(1 for r in rows.values() if r['attempts'] == 1)
        assert at_kill - 1 <= first <= at_kill + 1, (at_kill, first)
        log = harness.tail(s.path('daemon.log'), 2000)
        assert re.search(r'\bsignal 9\b', log), log
        print('    kill -9 after %d of %d mails; sent twice: %r' % (
            at_kill, n, twice))
    # One session: at most the one mail in flight is sent twice.
    with_stack(run, smtpd_args=['--delay-data', '0.05'],
               conf=dict(BASE, delivery_wait='0', retry_initial='1',
                         retry_max='2', smtp_timeout='3', smtp_sessions='1'))


# -- 6. 200 invites over one SMTP session ----------------------------------

def test_delivery_200_invites_over_one_session(stack):
    def run(s):
        n = 200
        pid, addrs = queued_while_mailer_stopped(s, n, 'many')
        t0 = time.monotonic()
        s.wait_mail(n, timeout=60)
        took = time.monotonic() - t0
        wait_for('every invite marked sent', lambda: all(
            r['status'] == 'sent' for r in rows_for(s, addrs).values()), 10,
            interval=0.2)
        time.sleep(0.5)     # a fixed wait: a duplicate would arrive now
        mails = all_mails(s)
        rcpts = sorted(r.lower() for m in mails
                       for r in m.envelope['rcpt_tos'])
        assert rcpts == sorted(addrs), 'not exactly one mail per invite'
        conns = {m.envelope['connection'] for m in mails}
        assert len(conns) == 1, \
            '%d invites came over %d connections' % (n, len(conns))
        assert all(r['attempts'] == 1 for r in rows_for(s, addrs).values())
        assert mailer_pid(s) == pid, 'the mailer was restarted'
        print('    %d mails over one session in %.1fs' % (n, took))
    with_stack(run, conf=dict(BASE, delivery_wait='0', smtp_timeout='5',
                              smtp_sessions='1'))


def proc_nice(pid, tid=None):
    """A process's (or one of its threads') nice value, from its stat."""
    path = '/proc/%d/stat' % pid if tid is None else \
        '/proc/%d/task/%d/stat' % (pid, tid)
    with open(path) as f:
        return int(f.read().rsplit(')', 1)[1].split()[16])


def nices(stack):
    """The daemon's nice value, the mailer's main thread's, the set of its
    other threads' (the SMTP sessions) and each other child kind's."""
    daemon = stack.procs['daemon'].pid
    mailer = wait_for('ri-mailer', lambda: mailer_pid(stack), 5)
    sessions = [proc_nice(mailer, int(t))
                for t in os.listdir('/proc/%d/task' % mailer)
                if int(t) != mailer]
    kinds = {}
    for p in harness.children(stack):
        if p != mailer:
            with open('/proc/%d/comm' % p) as f:
                kinds.setdefault(f.read().strip(), set()).add(proc_nice(p))
    return proc_nice(daemon), proc_nice(mailer), sorted(sessions), kinds


def test_delivery_mailer_priority_follows_delivery_wait(stack):
    """With a delivery_wait the verdict is part of the answer: the mailer
    runs at the pool's priority.  With delivery_wait 0 its 4 SMTP
    sessions (smtp_sessions) run ten nice levels below (at most 19) and
    send with what the pool leaves, while its keeper, which holds the
    write lock in its transactions, stays at the pool's.  The webhook
    process, which no answer waits for, always runs below."""
    from test_resilience import own_stack
    base, mailer, sessions, kinds = nices(stack)
    assert (mailer, sessions) == (base, [base] * 4), (base, mailer, sessions)
    assert kinds == {'ri-worker': {base}, 'ri-writer': {base},
                     'ri-webhooks': {min(base + 10, 19)}}, kinds
    s = own_stack({'delivery_wait': '0'})
    try:
        low = min(base + 10, 19)
        base, mailer, sessions, kinds = wait_for(
            'the sessions lowered', lambda: (lambda n: n if len(n[2]) == 4
                                             and n[2][0] == low else None)(
                nices(s)), 5)
        assert (mailer, sessions) == (base, [low] * 4), (base, mailer,
                                                         sessions)
        assert kinds == {'ri-worker': {base}, 'ri-writer': {base},
                         'ri-webhooks': {low}}, kinds
    finally:
        s.stop()


# -- 7. every language renders ---------------------------------------------

def test_delivery_every_language_renders(stack):
    app = App(stack, name='Café Ŵorld ✓', inviter_name='Zoë Łęcka')
    for lang in LANGS:
        addr = unique('lang-' + lang.lower())
        check(app.invite(addr, lang), 201, ok_body('Invite sent'))
        r = row(stack, addr)
        assert (r['language_requested'], r['language_resolved'],
                r['status']) == (lang, lang, 'sent'), r
        [m] = stack.mail_for(addr)
        try:
            check_invite_mail(stack, m, app, addr, lang, r['id'])
        except AssertionError as e:
            raise AssertionError('language %s: %s' % (lang, e))
        # Non-ASCII subject: RFC 2047 encoded words in the raw header.
        assert re.search(rb'\r\nSubject: [^\r]*=\?utf-8\?[bq]\?',
                         b'\r\n' + raw_head(m), re.I), raw_head(m)


def test_delivery_language_resolution(stack):
    plain = App(stack)
    polish = App(stack, language='pl')
    cases = [(plain, 'DE', 'de', 'de'), (plain, 'AT', 'at', 'de'),
             (plain, 'BR', 'br', 'pt-BR'), (plain, 'pt-br', 'pt-BR', 'pt-BR'),
             (plain, 'PT-PT', 'pt-PT', 'pt'), (plain, 'de-CH', 'de-CH', 'de'),
             (plain, 'xx', 'xx', 'en'), (polish, 'xx', 'xx', 'pl'),
             (polish, 'FR', 'fr', 'fr'), (polish, 'es-419', 'es-419', 'es')]
    for app, given, requested, resolved in cases:
        addr = unique('resolve')
        check(app.invite(addr, given), 201, ok_body('Invite sent'))
        r = row(stack, addr)
        assert (r['language_requested'], r['language_resolved']) == \
            (requested, resolved), (given, requested, resolved, r)
        [m] = stack.mail_for(addr)
        try:
            check_invite_mail(stack, m, app, addr, resolved, r['id'])
        except AssertionError as e:
            raise AssertionError('language %r: %s' % (given, e))


# -- 8. names that try to add headers or markup ----------------------------

def sql_text(s):
    """s as an SQL expression, whatever characters it holds."""
    if harness.ENGINE == 'postgresql':
        return "convert_from('\\x%s'::bytea, 'UTF8')" % \
            s.encode('utf-8').hex()
    return "CAST(X'%s' AS TEXT)" % s.encode('utf-8').hex()


def test_delivery_hostile_names_escaped_and_never_a_header(stack):
    base = App(stack)
    addr = unique()
    check(base.invite(addr), 201, ok_body('Invite sent'))
    baseline = header_names(stack.mail_for(addr)[0])

    hostile = [
        ('Ácme "Quoted" <b>Bold</b> & \'Co\' ✓',
         'Zoë <i>"Q"</i> & <script>x</script> Ñ'),
        ('Evil\r\nBcc: victim@example.org', 'Mallory\r\nX-Injected: yes'),
        ('Fold\r\n Subject: second', 'Bare\nLF: header\rCR: too'),
    ]
    for app_name, inviter_name in hostile:
        where = 'names %r / %r' % (app_name, inviter_name)
        app = App(stack, name=app_name if '\n' not in app_name else None,
                  inviter_name=inviter_name if '\n' not in inviter_name
                  else 'placeholder')
        # referral-invitesctl refuses control characters; a name written
        # with the sqlite3 CLI must still not reach a header.
        if app.name != app_name:
            r = stack.ctl_run('app', 'add', '--name', app_name,
                              '--invite-url', INVITE_URL)
            assert r.returncode == 1 and r.stderr.strip(), (where, r)
            stack.sql("UPDATE apps SET name = %s WHERE id = '%s'" % (
                sql_text(app_name), app.client))
            app.name = app_name
        if app.user_name != inviter_name:
            r = stack.ctl_run('user', 'add', app.client, '--email',
                              unique('hostile'), '--name', inviter_name)
            assert r.returncode == 1 and r.stderr.strip(), (where, r)
            stack.sql("UPDATE users SET name = %s WHERE id = '%s'" % (
                sql_text(inviter_name), app.uid))
            app.user_name = inviter_name
        assert stack.sql("SELECT a.name AS a, u.name AS u FROM apps a, users"
                         " u WHERE a.id = '%s' AND u.id = '%s'" % (
                             app.client, app.uid)) == \
            [{'a': app_name, 'u': inviter_name}], where
        addr = unique('target')
        check(app.invite(addr), 201, ok_body('Invite sent'))
        r = row(stack, addr)
        [m] = stack.mail_for(addr)
        assert header_names(m) == baseline, (where, header_names(m), baseline)
        assert m['Bcc'] is None and m['X-Injected'] is None, where
        assert m.envelope['rcpt_tos'] == [addr], (where, m.envelope)
        try:
            check_invite_mail(stack, m, app, addr, 'en', r['id'])
        except AssertionError as e:
            raise AssertionError('%s: %s' % (where, e))
        markup = m.get_body(('html',)).get_content()
        for bad in ('<b>', '<i>', '<script>', '"Q"', '& <'):
            assert bad not in markup, (where, bad, markup)
    assert stack.mail_for('victim@example.org', timeout=0.5, count=0) == []
