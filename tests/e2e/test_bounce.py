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
import pwd
import re
import shutil
import signal
import smtplib
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


def bounce(stack, msg, *args, env=None, conf=None):
    e = dict(os.environ)
    e.pop('ORIGINAL_RECIPIENT', None)
    e.pop('RECIPIENT', None)
    e.update(env or {})
    return subprocess.run([harness.CTL, '-c', conf or stack.conf,
                           'bounce'] + list(args), input=msg,
                          capture_output=True, env=e)


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


@harness.sqlite_only
def test_bounce_cannot_start_asks_to_try_again(stack):
    """A config or a database the command cannot open (an MTA that runs
    it as another user than the daemon's) is 75 as well: the MTA keeps
    the report and tries again, where 1 would bounce it to its sender,
    <>, that is to no one.  Other commands still exit 1."""
    with open(stack.conf) as f:
        text = f.read()
    line = 'database = %s\n' % stack.db
    assert line in text, text
    db = stack.path('nowhere', 'invites.db')
    conf = stack.path('elsewhere.conf')
    with open(conf, 'w') as f:
        f.write(text.replace(line, 'database = %s\n' % db))
    missing = stack.path('missing.conf')
    msg = report('postfix-failed.eml', 'x', 'nobody@example.net')
    for c, why in ((missing, '%s: No such file or directory' % missing),
                   (conf, '%s: cannot open the database' % db)):
        r = bounce(stack, msg, conf=c)
        assert (r.returncode, r.stdout) == (75, b''), (c, r)
        assert r.stderr.endswith(
            ('referral-invitesctl: %s\n' % why).encode()), (c, r.stderr)
    r = subprocess.run([harness.CTL, '-c', missing, 'init'],
                       capture_output=True)
    assert r.returncode == 1, r


# -- a real MTA: Postfix makes the bounce and hands it to the command -------
#
# The daemon sends through a private Postfix instance (its own
# config_directory, queue_directory and data_directory in the stack's temp
# dir, smtpd on a free port of 127.0.0.1) that relays to the stack's
# smtpd.py, which refuses "reject-..." at RCPT with 550 5.1.1.  Postfix then
# writes the DSN to the envelope sender, bounces+TAG@return.test, and
# delivers it, return.test being its mydestination, with recipient_delimiter
# = + and one of the two ways of referral-invites(7) BOUNCES:
#
# - a pipe(8) transport, a transport map naming bounces@return.test and
#   local_recipient_maps with that map in it, without which smtpd(8)
#   refuses the reports another host sends
#   (test_bounce_postfix_later_report_by_smtp).  pipe(8) refuses to run a
#   command as root, so it runs as the daemon's user (user=);
# - or local(8) and an alias, in an alias file of db/ (as BOUNCES has it
#   in /var/lib/referral-invites) that the daemon's user owns: local(8)
#   runs the command as the alias database's owner, and as default_privs
#   (nobody) when root owns it (test_bounce_postfix_alias_...).  The
#   default local_recipient_maps has $alias_maps in it.
#
# The daemon's user owns db/ (the database and secret.key, mode 0750 here
# as the Debian package makes /var/lib/referral-invites) and may read the
# config (0644) and the copy of referral-invitesctl that
# harness.service_ctl() makes.  Needs root: a Postfix instance starts as
# root and drops to mail_owner.

POSTFIX = '/usr/sbin/postfix'
POSTFIX_TIMEOUT = 60

PF_MASTER = '''\
smtp      inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
'''

PF_PIPE = '''\
ri-bounce unix  -       n       n       -       -       pipe
  flags=q user={user}
  argv={ctl} -c {conf} bounce --recipient ${{recipient}}
'''

# The command of BOUNCES' alias line, with the test's binary and config.
PF_ALIAS_CMD = '{ctl} -c {conf} bounce'


class Postfix:
    """A private Postfix instance in the stack's postfix/: smtpd on
    127.0.0.1:port, mail for domain handed to the ri-bounce pipe (or,
    with aliases, to local(8) and the alias file of that path, which
    write_aliases makes), the rest relayed to 127.0.0.1:relay_port."""

    def __init__(self, stack, domain, port, relay_port, aliases=None):
        self.dir = stack.path('postfix')
        self.conf_dir = os.path.join(self.dir, 'etc')
        self.log = os.path.join(self.dir, 'maillog')
        self.port = port
        self.aliases = aliases
        self.alias_cmd = PF_ALIAS_CMD.format(ctl=harness.service_ctl(),
                                             conf=stack.conf)
        for sub in ('etc', 'spool', 'data'):
            os.makedirs(os.path.join(self.dir, sub), 0o755)
        # master.lock and the caches, written by mail_owner.
        shutil.chown(os.path.join(self.dir, 'data'), 'postfix')
        main = {
            'compatibility_level': '3.6',
            'queue_directory': os.path.join(self.dir, 'spool'),
            'data_directory': os.path.join(self.dir, 'data'),
            'maillog_file': self.log,
            'maillog_file_prefixes': self.dir,
            'myhostname': 'mta.return.test',
            'mydomain': 'return.test',
            'myorigin': '$myhostname',
            'inet_interfaces': '127.0.0.1',
            'inet_protocols': 'ipv4',
            'mynetworks': '127.0.0.0/8',
            'mydestination': domain,
            'relayhost': '[127.0.0.1]:%d' % relay_port,
            'recipient_delimiter': '+',
            'smtp_tls_security_level': 'none',
            'smtpd_tls_security_level': 'none',
            'biff': 'no',
            'smtp_connect_timeout': '10s',
            'queue_run_delay': '5s', 'minimal_backoff_time': '5s',
            'maximal_backoff_time': '10s',
            'delay_warning_time': '0',
        }
        master = PF_MASTER.replace('smtp      inet',
                                   '127.0.0.1:%d inet' % port, 1)
        if aliases:
            # BOUNCES has hash:/etc/aliases first, not this instance's.
            main['alias_maps'] = main['alias_database'] = 'hash:' + aliases
        else:
            # The lines of referral-invites(7).  No /etc/aliases here: an
            # alias map that does not exist would defer every recipient.
            main.update({
                'transport_maps': 'hash:' + os.path.join(self.conf_dir,
                                                         'transport'),
                'alias_maps': '', 'alias_database': '',
                'local_recipient_maps':
                    'proxy:unix:passwd.byname $alias_maps $transport_maps'})
            master += PF_PIPE.format(user=stack.user,
                                     ctl=harness.service_ctl(),
                                     conf=stack.conf)
        with open(os.path.join(self.conf_dir, 'main.cf'), 'w') as f:
            for k, v in main.items():
                f.write('%s = %s\n' % (k, v))
        with open(os.path.join(self.conf_dir, 'master.cf'), 'w') as f:
            f.write(master)
        if not aliases:
            with open(os.path.join(self.conf_dir, 'transport'), 'w') as f:
                f.write('bounces@%s ri-bounce:\n' % domain)
            subprocess.run(['postmap', '-c', self.conf_dir, 'hash:' +
                            os.path.join(self.conf_dir, 'transport')],
                           check=True, timeout=POSTFIX_TIMEOUT)

    def write_aliases(self, owner):
        """The alias file, owned by owner, and its .db, which postalias
        makes as that owner (it leaves root for a file root does not
        own).  Made aside and renamed over the old ones, which the new
        owner may not write: local(8) notices the old .db gone, and
        never finds none."""
        new = self.aliases + '.new'
        with open(new, 'w') as f:
            f.write('bounces: "|%s"\n' % self.alias_cmd)
        shutil.chown(new, owner)
        subprocess.run(['postalias', '-c', self.conf_dir, 'hash:' + new],
                       check=True, timeout=POSTFIX_TIMEOUT)
        uid = pwd.getpwnam(owner).pw_uid
        st = os.stat(new + '.db')
        assert st.st_uid == uid, (owner, st)
        os.rename(new + '.db', self.aliases + '.db')
        os.rename(new, self.aliases)

    def run(self, *args):
        return subprocess.run([POSTFIX, '-c', self.conf_dir] + list(args),
                              capture_output=True, text=True,
                              timeout=POSTFIX_TIMEOUT)

    def start(self):
        r = self.run('start')
        if r.returncode != 0:
            raise harness.StackError('postfix start: exit %d: %s%s\n%s' % (
                r.returncode, r.stdout, r.stderr, self.tail()))
        harness.wait_for('postfix smtpd', lambda: harness.can_connect(
            ('127.0.0.1', self.port)), 20, log=self.log)
        return self

    def flush(self):
        """Try the deferred mail now (postqueue -f)."""
        subprocess.run(['postqueue', '-c', self.conf_dir, '-f'],
                       check=True, capture_output=True,
                       timeout=POSTFIX_TIMEOUT)

    def stop(self):
        """postfix stop; kill the master if it is still there."""
        try:
            self.run('stop')
        except subprocess.TimeoutExpired:
            pass
        pidfile = os.path.join(self.dir, 'spool', 'pid', 'master.pid')
        try:
            with open(pidfile) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return
        try:
            harness.wait_for('postfix master to exit',
                             lambda: not os.path.exists('/proc/%d' % pid),
                             10)
        except harness.WaitTimeout:
            os.kill(pid, signal.SIGKILL)

    def tail(self, lines=40):
        return harness.tail(self.log, lines)

    def wait_log(self, pattern, timeout=POSTFIX_TIMEOUT):
        """The maillog once a line matches pattern."""
        def found():
            text = harness.tail(self.log, 10000)
            return text if re.search(pattern, text) else None
        try:
            return harness.wait_for('maillog: ' + pattern, found, timeout)
        except harness.WaitTimeout:
            raise AssertionError('no %r in the maillog:\n%s' % (
                pattern, self.tail()))


def postfix_stack(alias_owner=None):
    """A stack whose daemon sends to a Postfix instance, and that instance;
    the caller stops both.  With alias_owner, the bounces go to local(8)
    and db/aliases, owned by alias_owner, instead of the pipe."""
    if not os.access(POSTFIX, os.X_OK) or os.geteuid() != 0:
        raise AssertionError('needs root and Debian\'s postfix package '
                             '(tests/packages.txt)')
    pf_port = harness.free_port()
    stack = harness.Stack(conf={'bounce_address': BOUNCE,
                                'smtp_port': str(pf_port)}).start()
    pf = None
    try:
        # As the Debian package makes /var/lib/referral-invites.
        os.chmod(stack.path('db'), 0o750)
        pf = Postfix(stack, 'return.test', pf_port, stack.smtp_port,
                     aliases=alias_owner and stack.path('db', 'aliases'))
        if alias_owner:
            pf.write_aliases(alias_owner)
        pf.start()
    except BaseException:
        if pf:
            pf.stop()
        stack.stop(keep=True)
        raise
    return stack, pf


def refused_invite(stack, app):
    """An invite Postfix takes (the refusal comes later, by mail) and its
    relay refuses: the address, the invite's id and the tagged envelope
    sender that Postfix writes the DSN to."""
    addr = unique('reject-pf')
    check(app.invite(addr), 201, ok_body('Invite sent'))
    [r] = [x for x in app.rows() if x['email_normalized'] == addr]
    return addr, r['id'], 'bounces+%s@return.test' % tag_of(stack, r['id'])


def wait_failed(stack, pf, iid):
    """The invite's status and last_reply once a bounce failed it."""
    def failed():
        [row] = stack.sql("SELECT status, last_reply FROM invites "
                          "WHERE id = '%s'" % iid)
        return row if row['status'] == 'failed' else None
    try:
        return harness.wait_for('the bounce applied', failed,
                                POSTFIX_TIMEOUT)
    except harness.WaitTimeout:
        raise AssertionError('no bounce applied; maillog:\n' + pf.tail())


def check_refused_and_listed(stack, app, pf, addr, iid, sender):
    """What the refused invite's DSN did: its diagnostic in last_reply,
    one bounces row, the address listed (source bounce) and 409 next;
    smtpd.py never got the invite, Postfix logged the refusal and the
    notification from the tagged sender."""
    row = wait_failed(stack, pf, iid)
    assert row['last_reply'].startswith('bounced: 5.1.1 '), row
    assert '550 5.1.1 <%s>: Recipient address rejected' % addr in \
        row['last_reply'], row
    assert stack.mail_for(addr, timeout=0, count=0) == []
    log = pf.wait_log(r'from=<%s>' % re.escape(sender))
    relay = r'127\.0\.0\.1\[127\.0\.0\.1\]:%d' % stack.smtp_port
    assert re.search(r'to=<%s>, relay=%s, .*dsn=5\.1\.1, '
                     r'status=bounced' % (re.escape(addr), relay),
                     log), log
    assert 'sender non-delivery notification' in log, log
    [b] = bounces_of(stack, iid)
    assert (b['verdict'], b['recipient'], b['status'], b['reason']) == \
        ('failed', addr, '5.1.1', None), b
    [sup] = stack.sql("SELECT source FROM suppressions WHERE "
                      "email_normalized = '%s'" % addr)
    assert sup['source'] == 'bounce', sup
    check_error(app.invite(addr), 409, SUPPRESSED)


def report_session(pf, tag):
    """An SMTP session with Postfix's smtpd as another host's, after MAIL
    FROM:<>: another local part with the tag is refused at RCPT, the
    tagged bounce address taken.  The caller closes it."""
    s = smtplib.SMTP('127.0.0.1', pf.port, timeout=30)
    try:
        s.ehlo('relay.example.net')
        s.mail('<>')
        code, msg = s.rcpt('returns+%s@return.test' % tag)
        assert code == 550, (code, msg)
        assert b'User unknown in local recipient table' in msg, msg
        code, msg = s.rcpt('bounces+%s@return.test' % tag)
        assert code == 250, (code, msg)
    except BaseException:
        s.close()
        raise
    return s


def test_bounce_postfix_refused_rcpt_comes_back_and_lists(_stack):
    stack, pf = postfix_stack()
    ok = False
    try:
        app = App(stack)
        addr, iid, sender = refused_invite(stack, app)
        check_refused_and_listed(stack, app, pf, addr, iid, sender)
        # Postfix piped the report to the command, which said what it
        # did.
        pf.wait_log(r'to=<%s>, relay=ri-bounce, .*status=sent '
                    r'\(delivered via ri-bounce service \(failed: '
                    r'invite %s, %s 5\.1\.1\)\)' % (
                        re.escape(sender), iid, re.escape(addr)))
        ok = True
    finally:
        pf.stop()
        stack.stop(keep=not ok)


def test_bounce_postfix_later_report_by_smtp(_stack):
    """A relay that accepted the invite sends its report later, from
    another host: Postfix's smtpd takes it for the tagged address (and
    only for bounces@, the local_recipient_maps line) and pipes it on."""
    stack, pf = postfix_stack()
    ok = False
    try:
        app = App(stack)
        addr = unique('later')
        check(app.invite(addr), 201, ok_body('Invite sent'))
        # Relayed as it was sent: the tagged envelope sender.
        [m] = stack.mail_for(addr, timeout=POSTFIX_TIMEOUT)
        [r] = [x for x in app.rows() if x['email_normalized'] == addr]
        iid, tag = r['id'], tag_of(stack, r['id'])
        sender = 'bounces+%s@return.test' % tag
        assert m.envelope['mail_from'] == sender, m.envelope
        with report_session(pf, tag) as s:
            code, msg = s.data(report('postfix-failed.eml', tag, addr))
            assert code == 250, (code, msg)
        pf.wait_log(r'to=<%s>, relay=ri-bounce, .*status=sent '
                    r'\(delivered via ri-bounce service \(failed: '
                    r'invite %s, %s 5\.1\.1\)\)' % (
                        re.escape(sender), iid, re.escape(addr)))
        [row] = stack.sql("SELECT status, last_reply FROM invites WHERE "
                          "id = '%s'" % iid)
        assert row['status'] == 'failed', row
        assert row['last_reply'].startswith('bounced: 5.1.1 550 5.1.1 <'), \
            row
        [sup] = stack.sql("SELECT source FROM suppressions WHERE "
                          "email_normalized = '%s'" % addr)
        assert sup['source'] == 'bounce', sup
        check_error(app.invite(addr), 409, SUPPRESSED)
        ok = True
    finally:
        pf.stop()
        stack.stop(keep=not ok)


@harness.sqlite_only
def test_bounce_postfix_alias_runs_as_the_alias_files_owner(_stack):
    """BOUNCES' other way: local(8) runs the alias's command.  While root
    owns the alias database, as it does /etc/aliases, the command runs as
    default_privs (nobody), who cannot open the database: it exits 75 and
    the report waits in the queue, nothing changed.  Once the daemon's
    user owns it (postalias as that user), the next try delivers it: the
    tag from ORIGINAL_RECIPIENT or the report, the invite failed and the
    address listed.  smtpd knows the address by the default
    local_recipient_maps."""
    stack, pf = postfix_stack(alias_owner='root')
    ok = False
    try:
        app = App(stack)
        addr, iid, sender = refused_invite(stack, app)
        pf.wait_log(r'to=<%s>, relay=local, .*status=deferred \(temporary '
                    r'failure\. Command output: .*referral-invitesctl: '
                    r'%s: cannot open the database' % (
                        re.escape(sender), re.escape(stack.db)))
        [row] = stack.sql("SELECT status FROM invites WHERE id = '%s'" %
                          iid)
        assert row['status'] == 'sent', row
        assert bounces_of(stack, iid) == []
        assert stack.sql('SELECT * FROM suppressions') == []
        pf.write_aliases(stack.user)
        pf.flush()
        check_refused_and_listed(stack, app, pf, addr, iid, sender)
        pf.wait_log(r'to=<%s>, relay=local, .*status=sent \(delivered to '
                    r'command: %s\)' % (re.escape(sender),
                                        re.escape(pf.alias_cmd)))
        with report_session(pf, tag_of(stack, iid)):
            pass
        ok = True
    finally:
        pf.stop()
        stack.stop(keep=not ok)
