# SPDX-License-Identifier: ISC
# Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
"""What a crash, an edit or a full disk must not break (issue 25).

Each test builds the stack it needs: an Idempotency-Key whose first
request died with its worker; a reload after the config, a template and
the SMTP password file were replaced by rename, as editors and config
tools do; a checkout in a directory only root may enter; the supervisor
killed with kill -9 in the middle of a burst; the database on a disk that
fills up.  Counts of answers, rows and mails are asserted exactly.
"""

import json
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid

import harness

from harness import (App, ROUTE, check, children, log_count, ok_body,
                     reload_and_wait, unique, wait_log)

RATE = '100000r/s'
BUSY = ('{"success":false,"error":"A request with this Idempotency-Key is '
        'in progress","message":null,"data":null}').encode()


def make_stack():
    return harness.fast_stack(RATE)


def own_stack(conf=None, prepare=None, **kw):
    """A stack of its own; prepare(stack) runs after its files exist and
    before anything starts."""
    return harness.fast_stack(RATE, prepare, conf=conf, **kw)


def no_limits(stack, app):
    stack.ctl('app', 'set', app.client, '--limit-per-hour', '0',
              '--limit-per-day', '0', '--limit-per-minute', '0',
              '--cooldown', '0')


def alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().split(') ')[1][0] != 'Z'
    except OSError:
        return False


def mails_by_address(stack):
    out = {}
    for n in stack._mails():
        for rcpt in stack._load_mail(n).envelope['rcpt_tos']:
            out[rcpt.lower()] = out.get(rcpt.lower(), 0) + 1
    return out


def wait_all_mailed(stack, addrs, timeout=30):
    harness.wait_for('a mail for each of %d addresses' % len(addrs),
                     lambda: set(addrs) <= set(mails_by_address(stack)),
                     timeout)


# -- 1. An Idempotency-Key whose request died ------------------------------

def keyed(app, key):
    h = app.headers()
    h['Idempotency-Key'] = key
    return h


def replay_until_answered(app, addr, key, timeout=40):
    """Send the request again, as a client does after a 502, until it is
    no longer "in progress"; that answer."""
    deadline = time.monotonic() + timeout
    while True:
        resp = app.invite(addr, headers=keyed(app, key))
        if resp[2] != BUSY:
            return resp
        assert resp[0] == 409 and resp[1].get('retry-after') == '1', resp
        assert time.monotonic() < deadline, 'still in progress: %s' % addr
        time.sleep(1)       # a time window: the answer's Retry-After


def kill_workers_during(stack, app, n, stop):
    """n keyed invites at once (fewer than the workers: a worker holds
    one while it waits) while the process named stop is stopped; every
    worker killed with kill -9 while they wait.  (addr, key, answer)
    for each."""
    addrs = [unique('idem') for _ in range(n)]
    keys = ['crash-%s' % uuid.uuid4().hex for _ in range(n)]
    [pid] = children(stack, stop)
    stored = log_count(stack, 'stored (app %s,' % app.client)
    with harness.stopped(pid):
        results = {}

        def one(a, k):
            try:
                results[a] = app.invite(a, headers=keyed(app, k))
            except OSError:     # closed without an answer
                results[a] = (0, {}, b'')
        fns = [lambda a=a, k=k: one(a, k) for a, k in zip(addrs, keys)]
        if stop == 'ri-writer':
            # Each sent to the writer, where it waits.
            ts = harness.at_stopped_writer(stack, fns)
        else:
            ts = [threading.Thread(target=fn) for fn in fns]
            for t in ts:
                t.start()
        # Claimed and, with the mailer stopped, stored.
        harness.wait_for('%d claims' % n, lambda: stack.sql(
            "SELECT count(*) AS n FROM idempotency_keys WHERE key IN (%s)"
            % ','.join("'%s'" % k for k in keys))[0]['n'] == n, 10)
        if stop == 'ri-mailer':
            harness.wait_for('%d stored' % n,
                             lambda: len(app.rows()) == n, 10)
            # Each worker has its invite's stored answer and waits for
            # the verdict.
            wait_log(stack, 'stored (app %s,' % app.client, stored + n, 10)
        for w in children(stack, 'ri-worker'):
            os.kill(w, signal.SIGKILL)
        for t in ts:
            t.join(30)
    return [(a, k, results[a]) for a, k in zip(addrs, keys)]


def check_exactly_once(stack, app, runs, stored):
    """Each request, replayed after its worker died, gets a 201 and
    leaves exactly one row and one mail.  stored: the invites were
    stored before the workers died, and the replay answers for them."""
    for addr, key, first in runs:
        assert first[0] in (0, 502), (addr, first)
        again = replay_until_answered(app, addr, key)
        if stored:
            check(again, 201, ok_body('Invite queued'))
        else:
            assert again[2] in (ok_body('Invite queued'), ok_body()), again
            check(again, 201, again[2])
        # And from then on the same bytes.
        check(app.invite(addr, headers=keyed(app, key)), 201, again[2])
    addrs = [a for a, _, _ in runs]
    rows = [r['email'] for r in app.rows()]
    assert sorted(rows) == sorted(addrs), rows
    wait_all_mailed(stack, addrs)
    time.sleep(1)       # a fixed wait: a second mail would arrive now
    counts = mails_by_address(stack)
    assert [counts[a] for a in addrs] == [1] * len(addrs), counts


def workers_killed_while_waiting(delivery_wait, stop):
    """Three keyed invites on a stack of their own, their workers killed
    while stop is stopped; each replay ends in one invite."""
    s = own_stack({'delivery_wait': delivery_wait})
    try:
        app = App(s)
        no_limits(s, app)
        runs = kill_workers_during(s, app, 3, stop)
        check_exactly_once(s, app, runs, stop == 'ri-mailer')
    finally:
        s.stop()


def test_idempotency_key_after_its_worker_died_with_the_invite_stored(stack):
    """The mailer stopped: each request has stored its invite and waits
    for the verdict when its worker is killed.  The replay answers for
    that invite (before: "in progress" for a minute, then a second
    invite and a second mail)."""
    workers_killed_while_waiting('10', 'ri-mailer')


def test_idempotency_key_after_its_worker_died_before_the_commit(stack):
    """The writer stopped: each request holds its claim and waits for the
    writer when its worker is killed.  Whatever the writer then does with
    the invites it was sent (stores them, or skips them as too late),
    each replay ends in one invite."""
    workers_killed_while_waiting('3', 'ri-writer')


def test_idempotency_key_binds_only_a_well_formed_request(stack):
    """A 415 (or a 400 for the body) is not stored under the key: the
    fixed request acts, and then replays."""
    app = App(stack)
    addr = unique()
    key = 'fix-%s' % uuid.uuid4().hex
    h = keyed(app, key)
    h['Content-Type'] = 'text/plain'
    st, _, body = app.invite(addr, headers=h)
    assert (st, json.loads(body)['error']) == (
        415, 'Content-Type must be application/json'), body
    st, _, body = app.invite(None, headers=keyed(app, key), body='{"email":')
    assert st == 400, body
    check(app.invite(addr, headers=keyed(app, key)), 201, ok_body())
    check(app.invite(addr, headers=keyed(app, key)), 201, ok_body())
    assert [r['email'] for r in app.rows()] == [addr]
    assert len(stack.mail_for(addr)) == 1


def test_idempotency_keys_through_a_worker_killed_mid_burst(stack):
    """The issue's reproduction: 1,000 invites with distinct keys over 32
    connections, one worker killed with kill -9 once a quarter are
    answered.  Each request that got no 201 is replayed with its key
    until answered: every address ends with a 201, exactly one row and
    exactly one mail (before: a second row and a second mail).  The SMTP
    server takes 50 ms a message, so the killed worker holds requests
    whose invites are stored and whose verdicts are awaited."""
    s = own_stack(smtpd_args=['--delay-data', '0.05'])
    try:
        app = App(s)
        no_limits(s, app)
        keys = {}

        def headers(addr):
            keys[addr] = 'burst-%s' % uuid.uuid4().hex
            return keyed(app, keys[addr])
        victim = children(s, 'ri-worker')[0]
        answers = burst(s, app, 1000, 32, headers=headers,
                        during=lambda: os.kill(victim, signal.SIGKILL))
        assert not alive(victim)
        sent, queued = ok_body('Invite sent'), ok_body('Invite queued')
        first = [a for a, st, b in answers if st == 201]
        assert all(b in (sent, queued) for a, st, b in answers if st == 201)
        lost = [a for a, st, b in answers if st != 201]
        assert all(st in (0, 502) for a, st, b in answers if st != 201), \
            [(st, b) for a, st, b in answers if st != 201][:5]
        assert len(first) + len(lost) == 1000
        # The killed worker held requests: some got no answer.
        assert lost, 'the kill cost no request'
        print('%d answered 201, %d replayed' % (len(first), len(lost)))
        for a in lost:
            again = replay_until_answered(app, a, keys[a])
            assert again[0] == 201 and again[2] in (sent, queued), again
            check(app.invite(a, headers=keyed(app, keys[a])), 201,
                  again[2])
        # A replay of a request answered the first time gets its bytes.
        for a, st, b in answers[:50]:
            if st == 201:
                check(app.invite(a, headers=keyed(app, keys[a])), 201, b)
        addrs = [a for a, _, _ in answers]
        rows = [r['email'] for r in app.rows()]
        assert len(rows) == 1000 and sorted(rows) == sorted(addrs), \
            (len(rows), len(set(rows)))
        wait_all_mailed(s, addrs, timeout=60)
        time.sleep(1)   # a fixed wait: a second mail would arrive now
        counts = mails_by_address(s)
        assert sorted(counts) == sorted(addrs)
        twice = [a for a in addrs if counts[a] != 1]
        assert not twice, twice
        assert len(s._mails()) == 1000
    finally:
        s.stop()


# -- 2. Reload after files were replaced -----------------------------------

def replace_file(path, text, mode=0o644, owner=None):
    """Write a new file beside path and rename it over path."""
    tmp = path + '.new'
    with open(tmp, 'w') as f:
        f.write(text)
    os.chmod(tmp, mode)
    if owner:
        shutil.chown(tmp, owner)
    os.rename(tmp, path)


def copy_templates(stack, where):
    os.makedirs(os.path.dirname(where), exist_ok=True)
    shutil.copytree(os.path.join(harness.SRCDIR, 'templates'), where)
    stack.overrides['templates_dir'] = where
    stack.write_conf()


def subject_of(stack, addr):
    [m] = stack.mail_for(addr)
    return str(m['Subject'])


def test_reload_after_config_template_and_password_replaced(stack):
    def prepare(s):
        copy_templates(s, s.path('tmpl', 'templates'))
    s = own_stack(prepare=prepare, smtp_auth='relay:s3cret')
    try:
        app = App(s)
        a1 = unique()
        check(app.invite(a1), 201, ok_body())
        old_subject = subject_of(s, a1)
        # The config, by rename: a new sender.
        s.overrides['mail_from'] = 'Renamed <renamed@test.example>'
        s.write_conf()
        with open(s.conf) as f:
            text = f.read()
        replace_file(s.conf, text)
        # A template, by rename.
        subj = os.path.join(s.overrides['templates_dir'], 'en.subject')
        replace_file(subj, 'Renamed subject for {{invitee_email}}\n')
        # The password file, by rename (same password, mode 0600).
        pw = s.relay_conf['smtp_password_file']
        replace_file(pw, 's3cret\n', 0o600, s.user)
        reload_and_wait(s, pool=True)
        assert log_count(s, 'reload refused') == 0
        a2 = unique()
        check(app.invite(a2), 201, ok_body())
        [m] = s.mail_for(a2)
        assert str(m['Subject']) == 'Renamed subject for %s' % a2, \
            (old_subject, str(m['Subject']))
        assert 'renamed@test.example' in str(m['From']), m['From']
        # Again: the rule is on the directories, not on the first inodes.
        replace_file(subj, 'Second subject\n')
        replace_file(s.conf, text)
        reload_and_wait(s, pool=True)
        a3 = unique()
        check(app.invite(a3), 201, ok_body())
        assert subject_of(s, a3) == 'Second subject'
    finally:
        s.stop()


def test_refused_reload_is_an_error_and_changes_nothing(stack):
    s = own_stack()
    try:
        app = App(s)
        with open(s.conf) as f:
            good = f.read()
        lines = good.count('\n')
        replace_file(s.conf, good + 'no_such_key = 1\n')
        os.kill(s.procs['daemon'].pid, signal.SIGHUP)
        wait_log(s, 'reload refused, the running configuration stays: '
                 '%s:%d: unknown key "no_such_key"' % (s.conf, lines + 1))
        a = unique()
        check(app.invite(a), 201, ok_body())
        replace_file(s.conf, good)
        reload_and_wait(s, pool=True)
        check(app.invite(unique()), 201, ok_body())
    finally:
        s.stop()


def test_reload_keeps_the_ports_landlock_allows(stack):
    """smtp_port and webhook_ports are fixed at the start, since Landlock
    lets the pool connect to those ports only: a reload that changes them
    says so and keeps the old ones, and mail still goes out."""
    s = own_stack()
    try:
        app = App(s)
        s.write_conf(smtp_port=str(harness.free_port()),
                     webhook_ports='8443')
        reload_and_wait(s, pool=True)
        wait_log(s, 'reload: database, listen, user, workers, smtp_port '
                 'and webhook_ports change only with a restart')
        a = unique()
        check(app.invite(a), 201, ok_body())
        s.mail_for(a)
    finally:
        s.stop()


# -- 3. A checkout only root may enter -------------------------------------

def test_templates_and_config_behind_a_root_only_directory(stack):
    """As a checkout in /root: the config and the templates sit below a
    directory of mode 0700 that the daemon's user cannot enter.  The
    daemon starts, mails, and reloads after a template is replaced."""
    if os.geteuid() != 0:
        return

    def prepare(s):
        private = s.path('private')
        os.mkdir(private, 0o700)
        copy_templates(s, os.path.join(private, 'checkout', 'templates'))
        old = s.conf
        s.conf = os.path.join(private, 'checkout', 'referral-invites.conf')
        s.write_conf()
        os.unlink(old)
    s = own_stack(prepare=prepare)
    try:
        app = App(s)
        a = unique()
        check(app.invite(a), 201, ok_body())
        assert s.mail_for(a)
        subj = os.path.join(s.overrides['templates_dir'], 'en.subject')
        replace_file(subj, 'Private subject\n')
        reload_and_wait(s, pool=True)
        b = unique()
        check(app.invite(b), 201, ok_body())
        assert subject_of(s, b) == 'Private subject'
    finally:
        s.stop()


def test_unreachable_database_names_path_user_and_fix(stack):
    if os.geteuid() != 0:
        return
    s = harness.Stack()
    s._prepare()
    try:
        private = s.path('private')
        os.mkdir(private, 0o700)
        os.rename(s.path('db'), os.path.join(private, 'db'))
        s.overrides['database'] = os.path.join(private, 'db', 'invites.db')
        s.write_conf()
        r = subprocess.run([harness.DAEMON, '-d', '-c', s.conf],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 1, r
        msg = ('%s: not reachable as user %s' %
               (os.path.join(private, 'db'), s.user))
        assert msg in r.stderr, r.stderr
        assert 'chmod' in r.stderr, r.stderr
    finally:
        s.stop()


# -- 4. The supervisor killed ----------------------------------------------

def burst(stack, app, n, threads, during=None, headers=None):
    """n invites over threads connections; during() runs once a quarter
    of them are answered; headers(addr), when given, the request's
    headers.  [(addr, status, body)]."""
    addrs = [unique('burst') for _ in range(n)]
    out = []
    lock = threading.Lock()
    fired = threading.Event()

    def worker(mine):
        conn = stack.connection(timeout=30)
        for a in mine:
            try:
                st, _, body = stack.request('POST', ROUTE % app.uid,
                                            headers(a) if headers
                                            else app.headers(),
                                            {'email': a, 'language': 'en'},
                                            conn=conn)
            except Exception:  # noqa: BLE001 - the connection went away
                conn.close()
                conn = stack.connection(timeout=30)
                st, body = 0, b''
            with lock:
                out.append((a, st, body))
                if during and len(out) >= n // 4 and not fired.is_set():
                    fired.set()
                    during()
        conn.close()
    harness.in_parallel([lambda i=i: worker(addrs[i::threads])
                         for i in range(threads)])
    return out


def test_supervisor_killed_mid_burst(stack):
    """kill -9 of the supervisor: its children finish what they do and
    exit; a new daemon waits for them, then serves; every 201 has its
    row and exactly one mail."""
    s = own_stack({'delivery_wait': '0'})
    try:
        app = App(s)
        no_limits(s, app)
        kids = children(s)
        assert len(kids) == 7, kids     # 4 workers, writer, mailer, webhooks
        sup = s.procs['daemon']
        answers = burst(s, app, 400, 16,
                        during=lambda: os.kill(sup.pid, signal.SIGKILL))
        sup.wait(10)
        harness.wait_for('the orphaned children to exit',
                         lambda: not any(alive(p) for p in kids), 35)
        ok = [a for a, st, b in answers if st == 201]
        assert ok and len(ok) < 400, len(ok)
        assert all(b == ok_body('Invite queued')
                   for a, st, b in answers if st == 201)
        del s.procs['daemon']
        s.start_daemon()
        after = [unique('after') for _ in range(20)]
        for a in after:
            check(app.invite(a), 201, ok_body('Invite queued'))
        rows = {r['email']: r for r in app.rows()}
        assert set(ok + after) <= set(rows), 'a 201 without its row'
        # Every row, answered or not, is mailed exactly once.
        wait_all_mailed(s, list(rows))
        time.sleep(1)   # a fixed wait: a second mail would arrive now
        counts = mails_by_address(s)
        twice = [a for a in rows if counts.get(a) != 1]
        assert not twice, twice
    finally:
        s.stop()


# -- 5. A full disk ----------------------------------------------------------

@harness.sqlite_only
def test_full_disk_never_mails_twice(stack):
    """The database on a 2 MiB tmpfs: a burst fills it; every verdict
    the mailer could not record is recorded once there is room again,
    and no address gets a second mail, not even after a reload."""
    if os.geteuid() != 0:
        return
    mnt = None

    def prepare(s):
        nonlocal mnt
        mnt = s.path('small')
        os.mkdir(mnt)
        subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=2m,mode=0755',
                        'tmpfs', mnt], check=True)
        db = os.path.join(mnt, 'invites.db')
        s.db = db
        s.write_conf(database=db)
        s.ctl('init')
        harness.chown_tree(mnt, s.user)
    s = own_stack({'delivery_wait': '0', 'log_level': 'info'},
                  prepare=prepare)
    try:
        app = App(s)
        no_limits(s, app)
        answers = []
        for _ in range(8):
            answers += burst(s, app, 100, 8)
            if log_count(s, 'cannot record') > 0:
                break
        statuses = sorted({st for _, st, _ in answers})
        assert 500 in statuses, statuses
        assert log_count(s, '(is its disk full?)') > 0
        assert log_count(s, 'cannot record') > 0, 'no verdict was refused'
        subprocess.run(['mount', '-o', 'remount,size=64m', mnt], check=True)
        wait_log(s, 'recorded at last')
        harness.wait_for('no row left sending', lambda: not s.sql(
            "SELECT id FROM invites WHERE status = 'sending'"), 30)
        reload_and_wait(s)
        # A fixed wait, for what must not come: the new mailer would have
        # found rows left sending by now.
        time.sleep(2)
        assert log_count(s, 'left sending by a crash') == 0
        rows = [r['email'] for r in app.rows()]
        ok = [a for a, st, _ in answers if st == 201]
        assert set(ok) <= set(rows)
        wait_all_mailed(s, rows)
        time.sleep(1)   # a fixed wait: a second mail would arrive now
        counts = mails_by_address(s)
        assert [a for a in rows if counts[a] != 1] == []
    finally:
        s.stop()
        if mnt:
            subprocess.run(['umount', '-l', mnt])
