# SPDX-License-Identifier: ISC
# Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
"""The pages people see, in a real browser (issue 24, item 4).

Debian's headless Chromium (/usr/bin/chromium, or RI_CHROMIUM), driven by
tests/browser/check.mjs with playwright-core from tests/browser (`npm ci
--prefix tests/browser`, which tests/run-all.sh runs), opens, for every
shipped language (templates/*.optout.html and *.html):

  - the opt-out GET page, through nginx (TLS) and the daemon, at the URL
    of the List-Unsubscribe header of a real invite's mail, with the
    browser's locale (so Accept-Language) set to the language;
  - the HTML part of that invite's mail, as the SMTP server received it,
    written to a file;

each at 375 px (a phone: mobile viewport, touch, 2x) and 1280 px wide,
with JavaScript off.  Asserted: no horizontal scroll (the document is no
wider than the viewport, and the phone's layout viewport is not widened to
fit); the opt-out button and the mail's accept link are visible, inside
the viewport once scrolled into view, at least 44x44 CSS px (the touch
target of Apple's HIG and WCAG 2.5.5: the smallest a thumb hits reliably;
the shipped templates meet it), and document.elementFromPoint at their
centre is the element itself (nothing covers them); the page's lang
attribute, title, the target's label and every fixed phrase of the
language's template, and no English phrase in the other languages.  Then,
with JavaScript off, a mouse click at the centre of each language's
opt-out button sends the form's POST through nginx to the daemon, and the
address is on the do-not-invite list (sqlite3 CLI); the GETs before put no
one there.

Screenshots (PNG, full page) and the mails' HTML are written to
BUILDDIR/tests/browser/screenshots/ (or RI_BROWSER_OUT), emptied first,
for a person to look at: optout-LANG-375.png, mail-LANG-1280.png,
click-LANG-375.png (the page the button's POST answered), mail-LANG.html.

Without node, Chromium or playwright-core the tests fail (CI installs
them: tests/packages.txt, tests/run-all.sh), saying what is missing.
"""

import html
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import uuid

import harness
from harness import App, check, check_error, ok_body, template

# What a browser sees does not depend on the engine, and Chromium is the
# suite's slowest part: once, on SQLite (run.py).
ENGINES = ('sqlite',)
OPTOUT = '/api/v1/referral-invites/opt-out'
BROWSER_DIR = os.path.join(harness.SRCDIR, 'tests', 'browser')
CHECK = os.path.join(BROWSER_DIR, 'check.mjs')
CHROMIUM = os.environ.get('RI_CHROMIUM', '/usr/bin/chromium')
OUTDIR = os.environ.get('RI_BROWSER_OUT') or os.path.join(
    harness.BUILDDIR, 'tests', 'browser', 'screenshots')
VIEWPORTS = [
    {'name': '375', 'width': 375, 'height': 667, 'mobile': True,
     'scale': 2},
    {'name': '1280', 'width': 1280, 'height': 800, 'mobile': False,
     'scale': 1},
]
MIN_TARGET = 44     # CSS px, each way: see the docstring
BUTTON = 'form[method="post"] button[type="submit"]'
ACCEPT = 'a[href^="%s?token="]' % harness.INVITE_URL
# Real-looking names and addresses, of a common length, with no hyphen
# (where a browser may break a line): what a phone must fit.
APP_NAME = 'Acme Project Planner'
INVITER = 'Alexandra Müller-Lüdenscheidt'
INVITER_EMAIL = 'alexandra.lindqvist@examplemail.org'


def languages():
    """The shipped languages: those with an opt-out page, each of which
    has an invite mail too."""
    d = os.path.join(harness.SRCDIR, 'templates')
    langs = sorted(f[:-len('.optout.html')] for f in os.listdir(d)
                   if f.endswith('.optout.html'))
    mails = sorted(f[:-len('.html')] for f in os.listdir(d)
                   if f.endswith('.html') and not f.endswith('.optout.html')
                   and not f.endswith('.optout-done.html'))
    done = sorted(f[:-len('.optout-done.html')] for f in os.listdir(d)
                  if f.endswith('.optout-done.html'))
    assert langs == mails == done and 'en' in langs, (langs, mails, done)
    return langs


def norm(s):
    return ' '.join(s.split())


def phrases(lang, part, values=None):
    """The text of a template's body: each run between tags, 8 characters
    or more, its variables filled from values; with no values, only the
    runs that hold no variable."""
    body = template(lang, part).split('<body', 1)[1]
    out = []
    for run in re.findall(r'>([^<>]+)<', body):
        run = fill(run, values or {})
        if '{{' not in run and len(run) >= 8:
            out.append(run)
    assert out, (lang, part)
    return out


def fill(s, values):
    for k, v in values.items():
        s = s.replace('{{%s}}' % k, v)
    return norm(html.unescape(s))


def done_page(lang, app):
    """The page a click gets: LANG.optout-done.html, the app's name in it
    escaped as the daemon escapes it."""
    return template(lang, 'optout-done.html').replace(
        '{{app_name}}', html.escape(app.name, quote=True))


def title(lang, part, values):
    [t] = re.findall(r'<title>(.*?)</title>', template(lang, part), re.S)
    return fill(t, values)


def label(lang, part):
    """The opt-out button's or the accept link's text in the template."""
    t = template(lang, part)
    if part == 'optout.html':
        found = re.findall(r'<button\b[^>]*>([^<]*)</button>', t)
    else:
        found = re.findall(r'<a href="\{\{accept_url\}\}"[^>]*>([^<{]*)</a>',
                           t)
    assert len(found) == 1, (lang, part, found)
    return norm(html.unescape(found[0]))


def png_size(path):
    with open(path, 'rb') as f:
        head = f.read(24)
    assert head[:8] == b'\x89PNG\r\n\x1a\n' and head[12:16] == b'IHDR', \
        (path, head)
    return struct.unpack('>II', head[16:24])


def browser_missing():
    """What the browser check lacks here, or None."""
    missing = []
    if shutil.which('node') is None:
        missing.append('node (Debian: nodejs)')
    if not os.access(CHROMIUM, os.X_OK):
        missing.append('%s (Debian: chromium)' % CHROMIUM)
    if not os.path.isdir(os.path.join(BROWSER_DIR, 'node_modules',
                                      'playwright-core')):
        missing.append('playwright-core (npm ci --prefix tests/browser)')
    return ', '.join(missing) or None


def run_check(spec):
    """check.mjs on spec; its answer."""
    with tempfile.NamedTemporaryFile('w', suffix='.json') as f:
        json.dump(spec, f)
        f.flush()
        r = subprocess.run(['node', CHECK, f.name], capture_output=True,
                           text=True, timeout=240)
    assert r.returncode == 0, 'check.mjs: exit %d\n%s' % (
        r.returncode, r.stderr[-4000:])
    return json.loads(r.stdout)


def suppressed(stack, app, addr):
    return stack.sql("SELECT email_normalized, source FROM suppressions "
                     "WHERE app_id = '%s' AND email_normalized = '%s'" %
                     (app.client, addr))


# -- one run of the browser for all the tests below ---------------------

RUN = {}


def browser_run(stack):
    """Invites in every language, their mails and opt-out pages in the
    browser, then the clicks: what the tests below look at (done once)."""
    if RUN:
        if 'error' in RUN:
            raise AssertionError('the browser run failed before: %s' %
                                 RUN['error'])
        return RUN
    try:
        _browser_run(stack)
    except Exception as e:
        RUN.clear()
        RUN['error'] = str(e).splitlines()[0] if str(e) else repr(e)
        raise
    return RUN


def _browser_run(stack):
    missing = browser_missing()
    assert missing is None, 'the browser test needs: %s' % missing
    shutil.rmtree(OUTDIR, ignore_errors=True)
    os.makedirs(OUTDIR)
    app = App(stack, name=APP_NAME, unlimited=True)
    app.user_email = INVITER_EMAIL
    app.uid = app.add_user(INVITER_EMAIL, INVITER)
    langs = languages()
    pages, clicks, info = [], [], {}
    for lang in langs:
        addr = 'maximilian.%s@examplemail.org' % uuid.uuid4().hex[:12]
        check(app.invite(addr, lang), 201, ok_body('Invite sent'))
        [m] = stack.mail_for(addr)
        lu = re.sub(r'\s+', '', str(m['List-Unsubscribe']))
        url = re.fullmatch(r'<(https://[^<>]+)>', lu).group(1)
        assert url.startswith(stack.base_url + OPTOUT + '?token='), url
        mail = os.path.join(OUTDIR, 'mail-%s.html' % lang)
        with open(mail, 'w', encoding='utf-8') as f:
            f.write(m.get_body(('html',)).get_content())
        info[lang] = {'addr': addr, 'url': url, 'mail': mail}
        pages.append({'name': 'optout-' + lang, 'url': url, 'locale': lang,
                      'selector': BUTTON})
        pages.append({'name': 'mail-' + lang, 'url': 'file://' + mail,
                      'locale': lang, 'selector': ACCEPT})
        clicks.append({'name': 'click-' + lang, 'url': url, 'locale': lang,
                       'selector': BUTTON, 'viewport': '375'})
    base = {'chromium': CHROMIUM, 'outdir': OUTDIR, 'viewports': VIEWPORTS}
    looked = run_check(dict(base, pages=pages, clicks=[]))
    # Opening the pages opted no one out.
    after_get = {lang: suppressed(stack, app, i['addr'])
                 for lang, i in info.items()}
    posts_before = nginx_posts(stack)
    clicked = run_check(dict(base, pages=[], clicks=clicks))
    RUN.update(app=app, langs=langs, info=info, looked=looked,
               clicked=clicked, after_get=after_get,
               posts_before=posts_before)
    print('# %s: screenshots in %s' % (looked['version'], OUTDIR))


def nginx_posts(stack):
    """The opt-out POSTs in nginx's access log: (token, status)."""
    with open(stack.path('nginx-access.log'), errors='replace') as f:
        return re.findall(r'"POST %s\?token=([A-Za-z0-9_.-]+) HTTP/[\d.]+" '
                          r'(\d{3}) ' % re.escape(OPTOUT), f.read())


def each_page(run):
    for p in run['looked']['pages']:
        lang = p['name'].split('-', 1)[1]
        kind = 'optout.html' if p['name'].startswith('optout-') else 'html'
        yield p, lang, kind, next(v for v in VIEWPORTS
                                  if v['name'] == p['viewport'])


def failures(items):
    assert not items, '\n'.join(items)


# -- the tests ---------------------------------------------------------------

def test_browser_pages_have_no_horizontal_scroll(stack):
    run = browser_run(stack)
    assert run['looked']['scriptsOff'] is True, 'JavaScript was not off'
    seen = set()
    bad = []
    for p, lang, kind, vp in each_page(run):
        seen.add((p['name'], vp['name']))
        what = '%s at %s px' % (p['name'], vp['name'])
        if p['name'].startswith('optout-') and p['status'] != 200:
            bad.append('%s: GET answered %s' % (what, p['status']))
        if p['console']:
            bad.append('%s: console: %s' % (what, p['console']))
        # The phone's layout viewport is the device's width: the page
        # was not zoomed out to make room.
        if p['innerWidth'] != vp['width']:
            bad.append('%s: layout viewport %s px wide' % (
                what, p['innerWidth']))
        if max(p['scrollWidth'], p['bodyScrollWidth']) > vp['width']:
            bad.append('%s: scrolls sideways: scrollWidth %s, body %s; '
                       'sticking out: %s' % (what, p['scrollWidth'],
                                             p['bodyScrollWidth'],
                                             p['wide']))
        w, h = png_size(p['screenshot'])
        if w != vp['width'] * vp['scale'] or h < vp['height'] * vp['scale']:
            bad.append('%s: screenshot %dx%d' % (what, w, h))
    assert len(seen) == 2 * 2 * len(run['langs']), seen
    failures(bad)


def test_browser_button_and_accept_link_tappable(stack):
    run = browser_run(stack)
    bad = []
    for p, lang, kind, vp in each_page(run):
        what = '%s at %s px' % (p['name'], vp['name'])
        # One opt-out button; the accept link twice (the button and the
        # "copy this link" one): the first is the button.
        if p['count'] != (1 if kind == 'optout.html' else 2):
            bad.append('%s: %d targets' % (what, p['count']))
        t = p['target']
        if t is None:
            bad.append('%s: no target' % what)
            continue
        if norm(t['text']) != label(lang, kind):
            bad.append('%s: target says %r, not %r' % (
                what, t['text'], label(lang, kind)))
        if t['display'] == 'none' or t['visibility'] != 'visible' or \
                t['opacity'] != 1:
            bad.append('%s: target hidden: %s' % (what, t))
        if t['left'] < 0 or t['top'] < 0 or t['right'] > t['innerWidth'] \
                or t['bottom'] > t['innerHeight']:
            bad.append('%s: target outside the viewport: %s' % (what, t))
        if t['width'] < MIN_TARGET or t['height'] < MIN_TARGET:
            bad.append('%s: target %.1fx%.1f px, under %dx%d' % (
                what, t['width'], t['height'], MIN_TARGET, MIN_TARGET))
        if not t['hitSelf']:
            bad.append('%s: at the target\'s centre is %s' % (what, t['hit']))
    failures(bad)


def test_browser_pages_in_their_language(stack):
    run = browser_run(stack)
    app = run['app']
    bad = []
    for p, lang, kind, vp in each_page(run):
        what = '%s at %s px' % (p['name'], vp['name'])
        i = run['info'][lang]
        values = {'app_name': app.name, 'inviter_name': INVITER,
                  'inviter_email': app.user_email,
                  'invitee_email': i['addr']}
        if p['lang'] != lang:
            bad.append('%s: <html lang=%r>' % (what, p['lang']))
        if kind == 'optout.html' and p['acceptLanguage'] != lang:
            bad.append('%s: the browser sent Accept-Language %r' % (
                what, p['acceptLanguage']))
        if norm(p['title']) != title(lang, kind, values):
            bad.append('%s: title %r, not %r' % (
                what, p['title'], title(lang, kind, values)))
        text = norm(p['text'])
        for ph in phrases(lang, kind, values):
            if ph not in text:
                bad.append('%s: %r is not on the page' % (what, ph))
        if lang != 'en':
            for ph in phrases('en', kind):
                if ph in text:
                    bad.append('%s: English %r on the page' % (what, ph))
        if '{{' in text or app.name not in text:
            bad.append('%s: text not filled in: %r' % (what, text))
        if kind == 'html' and i['addr'] not in text:
            bad.append('%s: no %s in the mail' % (what, i['addr']))
    failures(bad)


def test_browser_optout_click_without_javascript(stack):
    run = browser_run(stack)
    app, info = run['app'], run['info']
    # The GETs of the pages above changed nothing.
    assert all(v == [] for v in run['after_get'].values()), run['after_get']
    bad = []
    posts = nginx_posts(stack)[len(run['posts_before']):]
    for c in run['clicked']['clicks']:
        lang = c['name'].split('-', 1)[1]
        i = info[lang]
        what = '%s at %s px' % (c['name'], c['viewport'])
        t, post = c['target'], c.get('post')
        if c['get']['status'] != 200 or t is None or not t['hitSelf'] or \
                post is None:
            bad.append('%s: no click: %s' % (what, c))
            continue
        want = {'url': i['url'], 'method': 'POST',
                'contentType': 'application/x-www-form-urlencoded',
                'status': 200, 'response': done_page(lang, app),
                'pageUrl': i['url']}
        got = {k: post[k] for k in want}
        if got != want or post['body'] not in (None, ''):
            bad.append('%s: the form sent/got %s, not %s' % (what, post, want))
        # The answer's page: the browser asks for /favicon.ico (404).
        lines = [ln for ln in c['console']
                 if not ln.endswith('/favicon.ico)')]
        if lines:
            bad.append('%s: console: %s' % (what, lines))
        token = i['url'].split('?token=', 1)[1]
        if posts.count((token, '200')) != 1:
            bad.append('%s: nginx logged %s' % (what, [
                x for x in posts if x[0] == token]))
        if suppressed(stack, app, i['addr']) != [
                {'email_normalized': i['addr'], 'source': 'opt-out'}]:
            bad.append('%s: %s not on the do-not-invite list: %s' % (
                what, i['addr'], stack.sql('SELECT * FROM suppressions')))
        png_size(c['screenshot'])
    assert len(run['clicked']['clicks']) == len(run['langs'])
    assert len(posts) == len(run['langs']), posts
    failures(bad)
    # And the app may no longer invite them.
    for lang, i in info.items():
        check_error(app.invite(i['addr'], lang), 409,
                    'This address does not accept invites')
