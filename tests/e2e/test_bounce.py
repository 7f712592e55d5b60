# SPDX-License-Identifier: ISC
# Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
"""Bounces that come back later (issue 22): the VERP return path, and
referral-invitesctl bounce reading the reports.

With bounce_address set, each invite's envelope sender (MAIL FROM, as the
test's aiosmtpd relay records it) is local+TAG@domain, TAG the invite's id
in hex and the first 8 bytes of an HMAC-SHA-256 of "bounce\\n<id>\\n" with
the server secret (db/secret.key), recomputed here; the From header stays
mail_from.  Without the key the envelope sender is mail_from's address.

The reports piped into referral-invitesctl bounce are the unit corpus's
(tests/unit/dsn/), their tag and addresses replaced by those of a real
invite of the test; what the command did is read back with sqlite3, and
the next invite's answer.
"""

import hashlib
import hmac
import os
import re
import subprocess

import harness
from harness import App, check, check_error, ok_body, unique

BOUNCE = 'bounces@return.test'


def make_stack():
    return harness.Stack(conf={'bounce_address': BOUNCE}).start()


def tag_of(stack, invite_id):
    with open(stack.path('db', 'secret.key'), 'rb') as f:
        secret = f.read()
    assert len(secret) == 32, len(secret)
    mac = hmac.new(secret, b'bounce\n' + invite_id.encode() + b'\n',
                   hashlib.sha256).hexdigest()
    return invite_id.replace('-', '') + mac[:16]


MAIL_FROM_ADDR = re.search(r'<(.*)>', harness.MAIL_FROM).group(1)


def test_bounce_envelope_sender_names_the_invite(stack):
    app = App(stack)
    senders = []
    for _ in range(2):
        addr = unique('verp')
        check(app.invite(addr), 201, ok_body('Invite sent'))
        [m] = stack.mail_for(addr)
        [r] = [x for x in app.rows() if x['email_normalized'] == addr]
        want = 'bounces+%s@return.test' % tag_of(stack, r['id'])
        assert m.envelope['mail_from'] == want, (m.envelope, want)
        # The visible sender is mail_from, as without the key.
        assert str(m['From']) == harness.MAIL_FROM, m['From']
        senders.append(want)
    assert senders[0] != senders[1]


def test_bounce_without_the_key_the_sender_is_mail_from(_stack):
    stack = harness.Stack().start()
    try:
        app = App(stack)
        addr = unique('plain')
        check(app.invite(addr), 201, ok_body('Invite sent'))
        [m] = stack.mail_for(addr)
        assert m.envelope['mail_from'] == MAIL_FROM_ADDR, m.envelope
    finally:
        stack.stop()


def test_bounce_address_refused_with_its_line(stack):
    """-t names the file, the line and the reason for each bad value."""
    path = stack.path('check.conf')
    with open(stack.conf) as f:
        text = f.read()
    n = len(text.splitlines()) + 1
    for value, why in (
            ('bounces+x@return.test', "the local part must not contain '+'"),
            ('abcdefghijklmnop@return.test',
             'the local part may have at most 15 characters'),
            ('Bounces <b@return.test>',
             'expected an address such as bounces@example.org')):
        with open(path, 'w') as f:
            f.write(text + 'bounce_address = %s\n' % value)
        r = subprocess.run([harness.DAEMON, '-t', '-c', path],
                           capture_output=True, text=True,
                           env=stack.daemon_env)
        assert (r.returncode, r.stderr) == (
            1, 'referral-invitesd: %s:%d: bad value for bounce_address: '
            '%s\n' % (path, n, why)), (value, r.stderr)


# -- referral-invitesctl bounce ----------------------------------------------

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..',
                      'unit', 'dsn')
CORPUS_TAG = {'postfix-failed.eml':
              '0190a1b2c3d47e5f8a9b0c1d2e3f4a5b0426dffffec5fe5f',
              'postfix-delayed.eml':
              '0190a1b2c3d47e5f8a9b0c1d2e3f4a5cf67793f4022236ee',
              'arf-abuse.eml':
              '0190a1b2c3d47e5f8a9b0c1d2e3f4a5b0426dffffec5fe5f'}
CORPUS_RCPT = {'postfix-failed.eml': ('nobody@example.net',
                                      'Nobody@example.net'),
               'postfix-delayed.eml': ('slow@example.net',),
               'arf-abuse.eml': ('complainer@isp.example',)}
SUPPRESSED = 'This address does not accept invites'


def report(name, tag, addr):
    """A corpus report rewritten for one invite: its tag, its address and
    this stack's bounce domain."""
    with open(os.path.join(CORPUS, name), 'rb') as f:
        raw = f.read().decode('utf-8')
    raw = raw.replace(CORPUS_TAG[name] + '@example.org',
                      tag + '@return.test')
    for a in CORPUS_RCPT[name]:
        raw = raw.replace(a, addr)
    return raw.encode('utf-8')


def bounce(stack, msg, *args, env=None):
    e = dict(os.environ)
    e.pop('ORIGINAL_RECIPIENT', None)
    e.pop('RECIPIENT', None)
    e.update(env or {})
    return subprocess.run([harness.CTL, '-c', stack.conf, 'bounce'] +
                          list(args), input=msg, capture_output=True, env=e)


def sent_invite(stack, app):
    addr = unique('bounced')
    check(app.invite(addr), 201, ok_body('Invite sent'))
    stack.mail_for(addr)
    [r] = [x for x in app.rows() if x['email_normalized'] == addr]
    return addr, r['id'], tag_of(stack, r['id'])


def bounces_of(stack, invite_id=None):
    where = "WHERE invite_id = '%s'" % invite_id if invite_id else \
        'WHERE invite_id IS NULL'
    return stack.sql('SELECT verdict, invite_id, recipient, status, '
                     'diagnostic, reason FROM bounces %s ORDER BY id' % where)


def state(stack):
    return (stack.sql('SELECT id, status, last_reply, updated_at FROM '
                      'invites ORDER BY id'),
            stack.sql('SELECT * FROM suppressions ORDER BY app_id, '
                      'email_normalized'))


def test_bounce_failed_marks_the_invite_and_lists_the_address(stack):
    app = App(stack)
    addr, iid, tag = sent_invite(stack, app)
    r = bounce(stack, report('postfix-failed.eml', tag, addr),
               '--recipient', 'bounces+%s@return.test' % tag)
    assert (r.returncode, r.stderr) == (0, b''), r
    assert r.stdout == ('failed: invite %s, %s 5.1.1\n' %
                        (iid, addr)).encode(), r.stdout
    [row] = stack.sql("SELECT status, last_reply FROM invites WHERE id = "
                      "'%s'" % iid)
    assert row['status'] == 'failed', row
    assert row['last_reply'].startswith('bounced: 5.1.1 550 5.1.1 <'), row
    [b] = bounces_of(stack, iid)
    assert (b['verdict'], b['recipient'], b['status'], b['reason']) == \
        ('failed', addr, '5.1.1', None), b
    [sup] = stack.sql("SELECT source FROM suppressions WHERE "
                      "email_normalized = '%s'" % addr)
    assert sup['source'] == 'bounce', sup
    check_error(app.invite(addr), 409, SUPPRESSED)
    # The same report again: recorded, nothing else changes.
    before = state(stack)
    r = bounce(stack, report('postfix-failed.eml', tag, addr),
               '--recipient', 'bounces+%s@return.test' % tag)
    assert r.returncode == 0, r
    assert state(stack) == before
    assert len(bounces_of(stack, iid)) == 2


def test_bounce_tag_from_the_environment_or_the_report(stack):
    """Postfix's local(8) sets ORIGINAL_RECIPIENT; without any recipient
    the report's own X-Postfix-Sender names the invite."""
    app = App(stack)
    for env in ({'ORIGINAL_RECIPIENT': None}, None):
        addr, iid, tag = sent_invite(stack, app)
        if env:
            env = {'ORIGINAL_RECIPIENT': 'bounces+%s@return.test' % tag}
        r = bounce(stack, report('postfix-failed.eml', tag, addr), env=env)
        assert r.returncode == 0, r
        assert r.stdout.startswith(b'failed: invite ' + iid.encode()), r
        check_error(app.invite(addr), 409, SUPPRESSED)


def test_bounce_forged_or_foreign_changes_nothing(stack):
    app = App(stack)
    addr, iid, tag = sent_invite(stack, app)
    other, oid, otag = sent_invite(stack, app)
    forged = tag[:40] + ('0' if tag[40] != '0' else '1') + tag[41:]
    cases = (
        # A tag whose HMAC does not hold.
        (report('postfix-failed.eml', forged, addr), forged,
         'tag not valid'),
        # A real tag, but the report is about another address.
        (report('postfix-failed.eml', otag, addr), otag,
         'report about another address'),
        # Not a report at all.
        (b'From: someone@spam.example\nSubject: cheap\n\nbuy\n', tag,
         'not a delivery report'))
    for msg, t, why in cases:
        before = state(stack)
        r = bounce(stack, msg, '--recipient', 'bounces+%s@return.test' % t)
        assert (r.returncode, r.stdout) == (0, ('ignored: %s\n' % why)
                                            .encode()), (why, r)
        assert state(stack) == before, why
    assert [b['reason'] for b in bounces_of(stack, oid)] == \
        ['report about another address']
    assert [b['reason'] for b in bounces_of(stack)][-2:] == \
        ['tag not valid', 'not a delivery report']
    # Not listed: the next invite meets only the cooldown.
    check_error(app.invite(addr), 409, 'This address was invited recently')


def test_bounce_complaint_and_delay(stack):
    app = App(stack)
    addr, iid, tag = sent_invite(stack, app)
    r = bounce(stack, report('postfix-delayed.eml', tag, addr),
               '--recipient', 'bounces+%s@return.test' % tag)
    assert r.returncode == 0, r
    assert r.stdout.startswith(b'delayed: invite ' + iid.encode()), r
    [row] = stack.sql("SELECT status FROM invites WHERE id = '%s'" % iid)
    assert row['status'] == 'sent'
    assert stack.sql("SELECT * FROM suppressions WHERE email_normalized "
                     "= '%s'" % addr) == []
    r = bounce(stack, report('arf-abuse.eml', tag, addr))
    assert r.returncode == 0, r
    assert r.stdout.startswith(b'complaint: invite ' + iid.encode()), r
    [sup] = stack.sql("SELECT source FROM suppressions WHERE "
                      "email_normalized = '%s'" % addr)
    assert sup['source'] == 'complaint', sup
    [row] = stack.sql("SELECT status FROM invites WHERE id = '%s'" % iid)
    assert row['status'] == 'sent'
    assert [b['verdict'] for b in bounces_of(stack, iid)] == \
        ['delayed', 'complaint']
    check_error(app.invite(addr), 409, SUPPRESSED)


def test_bounce_maildir(stack):
    """Each message of new/ read (its Delivered-To naming the invite) and
    moved to cur/ as seen; a second run reads nothing again."""
    app = App(stack)
    md = stack.path('Maildir')
    for sub in ('new', 'cur', 'tmp'):
        os.makedirs(os.path.join(md, sub))
    ids = []
    for i in range(2):
        addr, iid, tag = sent_invite(stack, app)
        ids.append(iid)
        msg = ('Delivered-To: bounces+%s@return.test\n' % tag).encode() + \
            report('postfix-failed.eml', tag, addr)
        with open(os.path.join(md, 'new', 'm%d' % i), 'wb') as f:
            f.write(msg)
    r = bounce(stack, b'', '--maildir', md)
    assert r.returncode == 0, r
    assert sorted(r.stdout.decode().splitlines()) == sorted(
        'failed: invite %s, %s 5.1.1' % (iid, row['email_normalized'])
        for iid in ids for row in stack.sql(
            "SELECT email_normalized FROM invites WHERE id = '%s'" % iid))
    assert os.listdir(os.path.join(md, 'new')) == []
    assert sorted(os.listdir(os.path.join(md, 'cur'))) == \
        ['m0:2,S', 'm1:2,S']
    r = bounce(stack, b'', '--maildir', md)
    assert (r.returncode, r.stdout) == (0, b''), r
    for iid in ids:
        assert [b['verdict'] for b in bounces_of(stack, iid)] == ['failed']


def test_bounce_needs_bounce_address(_stack):
    stack = harness.Stack().start()
    try:
        r = bounce(stack, b'x')
        assert (r.returncode, r.stderr) == (
            75, b'referral-invitesctl: bounce needs bounce_address in the '
            b'configuration\n'), r
    finally:
        stack.stop()
