# SPDX-License-Identifier: ISC
# Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
"""Bounces that come back later (issue 22): the VERP return path.

With bounce_address set, each invite's envelope sender (MAIL FROM, as the
test's aiosmtpd relay records it) is local+TAG@domain, TAG the invite's id
in hex and the first 8 bytes of an HMAC-SHA-256 of "bounce\\n<id>\\n" with
the server secret (db/secret.key), recomputed here; the From header stays
mail_from.  Without the key the envelope sender is mail_from's address.
"""

import hashlib
import hmac
import re
import subprocess

import harness
from harness import App, check, ok_body, unique

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
