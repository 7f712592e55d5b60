# SPDX-License-Identifier: ISC
# Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
"""The invitee's way out, end to end (issue 10, SPEC section 12, RFC 8058).

Every opt-out URL used here is taken from a caught mail's List-Unsubscribe
header.  Checked: the headers and the visible links of the mail, a POST
exactly as a mailbox provider sends it, the GET page (which never changes
anything), the do-not-invite list and the canceled queued invites (read
with the sqlite3 CLI and `referral-invitesctl suppress list`), and tokens
that were tampered with or belong to another app.
"""

import base64
import html
import json
import re
import time

import harness
from harness import (App, ISO_UTC, check, check_error, err_body, ok_body,
                     template, unique)

OPTOUT = '/api/v1/referral-invites/opt-out'
DONE = 'You will not receive invites from this app again'
BAD = 'This opt-out link is not valid'
SUPPRESSED = 'This address does not accept invites'
ONE_CLICK = {'Content-Type': 'application/x-www-form-urlencoded'}
HTML_CT = 'text/html; charset=utf-8'


def make_stack():
    # Queued invites below wait out delivery_wait with the mailer stopped.
    return harness.Stack(conf={'delivery_wait': '2'}).start()


# -- helpers -------------------------------------------------------------

def unsubscribe_url(stack, addr, count=1):
    """The List-Unsubscribe URL of the newest mail to addr, checked."""
    m = stack.mail_for(addr, count=count)[-1]
    lu = re.sub(r'\s+', '', str(m['List-Unsubscribe']))
    mt = re.fullmatch(r'<(https://[^<>]+)>', lu)
    assert mt, m['List-Unsubscribe']
    url = mt.group(1)
    assert url.startswith(stack.base_url + OPTOUT + '?token='), url
    assert str(m['List-Unsubscribe-Post']).strip() == \
        'List-Unsubscribe=One-Click', m['List-Unsubscribe-Post']
    return url


def path_of(stack, url):
    assert url.startswith(stack.base_url), url
    return url[len(stack.base_url):]


def token_of(url):
    return url.split('?token=', 1)[1]


def one_click(stack, url, body=b'List-Unsubscribe=One-Click', headers=None):
    """A POST as RFC 8058 has mailbox providers send it: no credentials,
    form-encoded body, nothing else."""
    h = dict(ONE_CLICK if headers is None else headers)
    return stack.request('POST', path_of(stack, url), h, body)


def get_page(stack, url, lang=None):
    h = {'Accept-Language': lang} if lang else {}
    return stack.request('GET', path_of(stack, url), h)


def suppressions(stack, app=None):
    q = 'SELECT * FROM suppressions'
    if app is not None:
        q += " WHERE app_id = '%s'" % app.client
    return stack.sql(q + ' ORDER BY app_id, email_normalized')


def state(stack):
    """Everything an opt-out may change."""
    return (suppressions(stack),
            stack.sql('SELECT id, status, updated_at FROM invites '
                      'ORDER BY id'))


def mailer_stopped(stack):
    """SIGSTOP this stack's mailer (never another stack's) for a with
    block."""
    pids = harness.children(stack, 'ri-mailer')
    assert len(pids) == 1, pids
    return harness.stopped(pids[0])


def invited(stack, app, addr=None):
    """One invite sent to addr (a fresh address by default): (addr, the
    opt-out URL of its mail)."""
    addr = addr or unique()
    check(app.invite(addr), 201, ok_body('Invite sent'))
    return addr, unsubscribe_url(stack, addr)


def row(app, addr, status=None):
    rows = [r for r in app.rows() if r['email_normalized'] == addr.lower()
            and (status is None or r['status'] == status)]
    return rows


def b64(s):
    return base64.urlsafe_b64encode(s.encode()).rstrip(b'=').decode()


def render(lang, part, values):
    """A template with its variables filled in the way the daemon does
    for HTML (escaped); other {{names}} stay as they are."""
    out = template(lang, part).lstrip('\ufeff')
    for k, v in values.items():
        out = out.replace('{{%s}}' % k, html.escape(v, quote=True)
                          if part.endswith('html') else v)
    return out


def check_page(resp, app, addr, url, lang):
    st, h, b = resp
    assert st == 200, (st, b)
    assert h.get('content-type') == HTML_CT, h
    assert re.fullmatch(r'[0-9a-f]{32}', h.get('x-request-id', '')), h
    page = b.decode('utf-8')
    expected = render(lang, 'optout.html', {'app_name': app.name,
                                            'invitee_email': addr.lower(),
                                            'optout_url': url})
    assert page == expected, 'page differs from %s.optout.html:\n%s' % (
        lang, page)
    forms = re.findall(r'<form\b[^>]*>', page, re.I)
    assert len(forms) == 1, forms
    assert re.search(r'\bmethod="post"', forms[0], re.I), forms
    assert 'action="%s"' % html.escape(url) in forms[0], forms
    assert len(re.findall(r'<button\b', page, re.I)) == 1, page
    return page


# -- the mail ------------------------------------------------------------

def test_mail_headers_and_visible_links(stack):
    app = App(stack)
    for lang in ('en', 'de'):
        addr = 'Opt.Out-%s@Example.ORG' % unique()[7:19]
        check(app.invite(addr, lang), 201, ok_body('Invite sent'))
        [m] = stack.mail_for(addr)
        url = unsubscribe_url(stack, addr)
        tok = token_of(url)
        # app id . base64url(normalised address) . 43-character HMAC
        parts = tok.split('.')
        assert len(parts) == 3, tok
        assert parts[0] == app.client, tok
        assert parts[1] == b64(addr.lower()), tok
        assert re.fullmatch(r'[A-Za-z0-9_-]{43}', parts[2]), tok
        # Exactly one of each header, the raw header in RFC 8058's form.
        head = m.raw.split(b'\r\n\r\n', 1)[0].decode('ascii')
        unfolded = re.sub(r'\r\n[ \t]+', ' ', head)
        lines = unfolded.split('\r\n')
        lu = [ln for ln in lines if ln.lower().startswith(
            'list-unsubscribe:')]
        lup = [ln for ln in lines if ln.lower().startswith(
            'list-unsubscribe-post:')]
        assert len(lu) == 1 and len(lup) == 1, lines
        assert re.fullmatch(r'List-Unsubscribe: ?<%s>' % re.escape(url),
                            lu[0]), lu
        assert lup[0] == 'List-Unsubscribe-Post: List-Unsubscribe=One-Click'
        # The visible link, in the mail's language, in both parts.
        values = {'app_name': app.name, 'optout_url': url}
        text = m.get_body(('plain',)).get_content()
        [tline] = [ln for ln in template(lang, 'txt').splitlines()
                   if '{{optout_url}}' in ln]
        for k, v in values.items():
            tline = tline.replace('{{%s}}' % k, v)
        assert tline in text.splitlines(), (tline, text)
        page = m.get_body(('html',)).get_content()
        [hline] = [ln for ln in template(lang, 'html').splitlines()
                   if '{{optout_url}}' in ln]
        for k, v in values.items():
            hline = hline.replace('{{%s}}' % k, html.escape(v))
        assert hline.strip() in page, (hline, page)


# -- POST, the one-click way ---------------------------------------------

def test_one_click_cancels_queued_and_refuses_next(stack):
    """Issue 10's "must show": the List-Unsubscribe URL from a caught mail,
    POSTed as a mailbox provider does; the next invite is 409 and the
    address's queued invites are canceled."""
    app = App(stack)
    other = App(stack)
    stack.ctl('app', 'set', app.client, '--cooldown', '0')
    carol = app.add_user(unique('carol'))
    addr, url = invited(stack, app, unique('optout'))
    with mailer_stopped(stack):
        # Two more invites of that address wait in the queue, and one of
        # another app; one of another address of the app too.
        check(app.invite(addr), 201, ok_body('Invite queued'))
        check(app.invite(addr, uid=carol), 201, ok_body('Invite queued'))
        check(other.invite(addr), 201, ok_body('Invite queued'))
        bystander = unique('bystander')
        check(app.invite(bystander), 201, ok_body('Invite queued'))
        assert len(row(app, addr, 'queued')) == 2, app.rows()
        # A link scanner's GET changes nothing.
        before = state(stack)
        check_page(get_page(stack, url), app, addr, url, 'en')
        assert state(stack) == before
        t0 = time.time()
        resp = one_click(stack, url)
        check(resp, 200, ok_body(DONE))
        assert 'set-cookie' not in resp[1], resp[1]
        [sup] = suppressions(stack, app)
        assert (sup['email_normalized'], sup['source']) == \
            (addr, 'opt-out'), sup
        assert ISO_UTC.fullmatch(sup['created_at']), sup
        assert abs(time.mktime(time.strptime(
            sup['created_at'], '%Y-%m-%dT%H:%M:%SZ')) - time.mktime(
            time.gmtime(t0))) <= 2, sup
        statuses = sorted(r['status'] for r in row(app, addr))
        assert statuses == ['canceled', 'canceled', 'sent'], app.rows()
        # Not the other app's, not the other address.
        assert [r['status'] for r in row(other, addr)] == ['queued']
        assert [r['status'] for r in row(app, bystander)] == ['queued']
        # The next invite: 409, by key, by token, by another inviter.
        snap = app.snapshot()
        check_error(app.invite(addr), 409, SUPPRESSED, app, snap)
        check_error(app.invite(addr.upper(), uid=carol), 409, SUPPRESSED,
                    app, snap)
        check_error(app.invite(addr, headers=app.bearer(), uid='me'), 409,
                    SUPPRESSED, app, snap)
        # Repeating is harmless.
        before = state(stack)
        check(one_click(stack, url), 200, ok_body(DONE))
        assert state(stack) == before
    # The mailer runs again: the canceled invites are never sent, the
    # others are.
    stack.mail_for(bystander, timeout=15)
    assert len(stack.mail_for(addr, count=2, timeout=15)) == 2
    # A fixed wait, for what must not come: a canceled invite's mail
    # would arrive now.
    time.sleep(1.5)
    assert len(stack.mail_for(addr, count=0, timeout=0)) == 2
    assert sorted(r['status'] for r in row(app, addr)) == \
        ['canceled', 'canceled', 'sent']
    # The other app may still invite the address.
    check(other.invite(unique()), 201, ok_body('Invite sent'))


def test_post_body_and_content_type_are_ignored(stack):
    app = App(stack)
    variants = [(b'List-Unsubscribe=One-Click', ONE_CLICK),
                (b'', {}),
                (b'', {'Content-Type': 'text/plain'}),
                (b'{"x":1}', {'Content-Type': 'application/json'}),
                (b'anything at all', {'Content-Type':
                                      'multipart/form-data; boundary=x'})]
    for body, headers in variants:
        addr, url = invited(stack, app)
        try:
            check(one_click(stack, url, body, headers), 200, ok_body(DONE))
        except AssertionError as e:
            raise AssertionError('%r %r: %s' % (body, headers, e))
        assert [s['source'] for s in suppressions(stack, app)
                if s['email_normalized'] == addr] == ['opt-out']
        check_error(app.invite(addr), 409, SUPPRESSED)


def test_optout_then_suppress_remove(stack):
    app = App(stack)
    stack.ctl('app', 'set', app.client, '--cooldown', '0')
    addr, url = invited(stack, app)
    check(one_click(stack, url), 200, ok_body(DONE))
    check_error(app.invite(addr), 409, SUPPRESSED)
    stack.ctl('suppress', 'remove', app.client, addr)
    assert suppressions(stack, app) == []
    check(app.invite(addr), 201, ok_body('Invite sent'))
    # The link never expires: the old one still works.
    check(one_click(stack, url), 200, ok_body(DONE))
    check_error(app.invite(addr), 409, SUPPRESSED)


def test_listed_another_way_is_canceled_as_it_comes_due(stack):
    """An address put on the list by no opt-out (a bounce, or an admin's
    sqlite3 INSERT) while its invite waits: the mailer cancels that invite
    when it comes due and never sends it; the queued invite beside it, of
    another address, is sent in the same round."""
    app = App(stack)
    addr, keep = unique('late'), unique('beside')
    with mailer_stopped(stack):
        check(app.invite(addr), 201, ok_body('Invite queued'))
        check(app.invite(keep), 201, ok_body('Invite queued'))
        [r] = row(app, addr)
        stack.sql("INSERT INTO suppressions (app_id, email_normalized, "
                  "source, created_at) VALUES ('%s', '%s', 'admin', "
                  "'2026-01-01T00:00:00Z')" % (r['app_id'], addr.lower()))
        assert [r['status'] for r in row(app, addr)] == ['queued']
    stack.mail_for(keep, timeout=15)
    [r] = row(app, addr)
    assert (r['status'], r['last_reply']) == \
        ('canceled', 'address on the do-not-invite list'), r
    assert [x['status'] for x in row(app, keep)] == ['sent']
    assert stack.mail_for(addr, count=0, timeout=0) == []


# -- GET, the page -------------------------------------------------------

def test_get_page_never_changes_state(stack):
    app = App(stack)
    stack.ctl('app', 'set', app.client, '--cooldown', '0')
    addr, url = invited(stack, app)
    before = state(stack)
    for lang, tpl in ((None, 'en'), ('de-DE,de;q=0.9,en;q=0.8', 'de'),
                      ('fr', 'fr'), ('pt-br', 'pt-BR'), ('xx', 'en'),
                      ('*', 'en')):
        try:
            check_page(get_page(stack, url, lang), app, addr, url, tpl)
        except AssertionError as e:
            raise AssertionError('Accept-Language %r: %s' % (lang, e))
    st, h, b = stack.request('HEAD', path_of(stack, url))
    assert (st, h.get('allow'), b) == (405, 'GET, POST', b''), (st, h, b)
    assert state(stack) == before
    # Still invitable: nothing was recorded.
    check(app.invite(addr), 201, ok_body('Invite sent'))
    # The app's default language is used without Accept-Language.
    stack.ctl('app', 'set', app.client, '--language', 'de')
    check_page(get_page(stack, url), app, addr, url, 'de')
    assert suppressions(stack, app) == []


def test_browser_post_gets_the_done_page_in_its_language(stack):
    """The page's button, clicked in a browser (Accept: text/html), gets
    LANG.optout-done.html in the reader's language with the page headers;
    one-click and API POSTs keep the envelope."""
    app = App(stack, name='Caf\u00e9 <Ltd> & "Co"')
    for lang, tpl in (('de-DE,de;q=0.9', 'de'), ('pt-br', 'pt-BR'),
                      (None, 'en')):
        addr, url = invited(stack, app)
        h = {'Content-Type': 'application/x-www-form-urlencoded',
             'Accept': 'text/html,application/xhtml+xml,application/xml;'
                       'q=0.9,*/*;q=0.8'}
        if lang:
            h['Accept-Language'] = lang
        st, hh, b = one_click(stack, url, b'', h)
        assert st == 200, (st, b)
        assert hh.get('content-type') == HTML_CT, hh
        assert hh.get('x-frame-options') == 'DENY', hh
        assert "default-src 'none'" in hh.get('content-security-policy',
                                               ''), hh
        want = render(tpl, 'optout-done.html', {'app_name': app.name})
        assert b.decode('utf-8') == want, (tpl, b)
        assert '&lt;Ltd&gt; &amp; &quot;Co&quot;' in want, want
        assert suppressions(stack, app)[-1:] != []
    # Without text/html in Accept: the envelope, as before.
    addr, url = invited(stack, app)
    check(one_click(stack, url, headers={
        'Content-Type': 'application/x-www-form-urlencoded',
        'Accept': 'application/json'}), 200,
        ok_body('You will not receive invites from this app again'))


def test_opt_out_methods(stack):
    app = App(stack)
    addr, url = invited(stack, app)
    before = state(stack)
    for m in ('PUT', 'DELETE', 'PATCH'):
        h = check(stack.request(m, path_of(stack, url), ONE_CLICK,
                                b'List-Unsubscribe=One-Click'),
                  405, err_body('Method not allowed'))
        assert {x.strip() for x in h['allow'].split(',')} == \
            {'GET', 'POST'}, h
    assert state(stack) == before


# -- bad tokens ----------------------------------------------------------

def test_tampered_and_foreign_tokens(stack):
    app = App(stack)
    other = App(stack)
    addr, url = invited(stack, app)
    tok = token_of(url)
    appid, enc, sig = tok.split('.')
    flip = sig[:-1] + ('A' if sig[-1] != 'A' else 'B')
    # The other app's own link for the same address.
    check(other.invite(addr), 201, ok_body('Invite sent'))
    other_url = unsubscribe_url(stack, addr, count=2)
    osig = token_of(other_url).split('.')[2]
    base = stack.base_url + OPTOUT
    bad = {
        'signature changed': '%s.%s.%s' % (appid, enc, flip),
        'signature cut': '%s.%s.%s' % (appid, enc, sig[:-1]),
        'signature lower-cased': '%s.%s.%s' % (appid, enc, sig.lower())
        if sig.lower() != sig else '%s.%s.%s' % (appid, enc, sig.upper()),
        'address changed': '%s.%s.%s' % (appid, b64(unique()), sig),
        'address upper-case': '%s.%s.%s' % (appid, b64(addr.upper()), sig),
        'foreign app, this signature': '%s.%s.%s' % (other.client, enc,
                                                     sig),
        'this app, foreign signature': '%s.%s.%s' % (appid, enc, osig),
        'unknown app': '%s.%s.%s' % ('0' * 8 + appid[8:], enc, sig),
        'no signature': '%s.%s' % (appid, enc),
        'garbage': 'garbage',
        'empty': '',
        'extra part': tok + '.x',
        'percent-encoded': tok.replace('.', '%2E'),
    }
    urls = {k: base + '?token=' + v for k, v in bad.items()}
    urls['no token'] = base
    urls['other parameter'] = base + '?t=' + tok
    before = state(stack)
    for what, u in urls.items():
        try:
            check(one_click(stack, u), 400, err_body(BAD))
            st, h, b = get_page(stack, u)
            assert st == 400 and h.get('content-type') == HTML_CT, (st, h)
            assert b'<form' not in b.lower() and b'not valid' in b, b
            assert app.client.encode() not in b and \
                addr.encode() not in b, b
        except AssertionError as e:
            raise AssertionError('%s: %s' % (what, e))
    assert state(stack) == before
    # Both real links still work, each for its own app only.
    check(one_click(stack, other_url), 200, ok_body(DONE))
    assert [s['app_id'] for s in suppressions(stack)
            if s['email_normalized'] == addr] == [other.client]
    check(one_click(stack, url), 200, ok_body(DONE))
    assert sorted(s['app_id'] for s in suppressions(stack)
                  if s['email_normalized'] == addr) == \
        sorted([app.client, other.client])


# -- the admin's view ----------------------------------------------------

def test_suppress_list_shows_source_and_time(stack):
    app = App(stack)
    admin = unique('admin')
    stack.ctl('suppress', 'add', app.client, admin)
    time.sleep(1.1)     # a time window: newest first, to the second
    bounced = unique('reject')
    st, h, b = app.invite(bounced)
    assert st == 400 and b'550' in b, (st, b)
    time.sleep(1.1)     # a time window: newest first, to the second
    opted = unique('opted')
    check(app.invite(opted), 201, ok_body('Invite sent'))
    check(one_click(stack, unsubscribe_url(stack, opted)), 200,
          ok_body(DONE))
    rows = {s['email_normalized']: s for s in suppressions(stack, app)}
    assert {k: v['source'] for k, v in rows.items()} == \
        {admin: 'admin', bounced: 'bounce', opted: 'opt-out'}, rows
    # --json: newest first, address, source, time.
    out = json.loads(stack.ctl('--json', 'suppress', 'list', app.client))
    assert [(e['email'], e['source'], e['created_at']) for e in out] == \
        [(a, rows[a]['source'], rows[a]['created_at'])
         for a in (opted, bounced, admin)], out
    # The text form: one line per address with source and time.
    lines = stack.ctl('suppress', 'list', app.client).splitlines()
    body = [ln.split() for ln in lines if '@' in ln]
    assert body == [[a, rows[a]['source'], rows[a]['created_at']]
                    for a in (opted, bounced, admin)], lines
    for a in (admin, bounced, opted):
        check_error(app.invite(a), 409, SUPPRESSED)
