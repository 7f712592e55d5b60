# SPDX-License-Identifier: ISC
# Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
"""Several nodes, one PostgreSQL: two daemons behind one nginx.

The module's stack is a small cluster on this host: one private
PostgreSQL 15 (tests/e2e/pg.py), node A and node B (each its own
referral-invitesd with its own config, unix socket, state_directory and
SMTP catcher; the same database URI, the same secret.key, claim_lease =
5) and one nginx.  nginx's balancing port is the shipped http.conf with
the upstream's one server line made two (node A's socket and node B's)
and the shipped location.conf unchanged; two more ports each include a
copy of location.conf whose fastcgi_pass names an upstream of one node
only, so that a test can talk to node A or to node B.  The access log
says which upstream answered each request id.

What it shows, every answer's status and body exact, rows counted with
psql, mails counted per address over both catchers:

  1. both nodes serve one database: an invite through each port is one
     row and one mail, a token the tool signed with node A's secret.key
     passes on node B;
  2. a burst of 2,000 invites over 32 keep-alive connections through the
     balancing port: 2,000 201s, 2,000 rows, one mail per address, and
     both nodes served a share;
  3. an inviter's hourly limit of 20 under 40 concurrent invites, half
     through each node: exactly 20 201s and 20 rows, 20 429s;
  4. one address on both nodes at once (a threading.Barrier), 10
     addresses: one 201 and one 409 each, one row each;
  5. node B killed with SIGKILL (supervisor and every child) in the
     middle of a burst while its mailer holds claims it cannot finish
     (its relay holds every message in DATA): node A answers every
     request of its own port with 201, the balancing port answers 201 or
     nginx's 502 for a request that went to node B; every stored invite
     is mailed exactly once (node B's claims after their lease, by node
     A), none is left 'queued' or 'sending', and no address got two
     mails.

Not shown yet (issue 21): an invite stored by one node whose mail the
other node's mailer sent within delivery_wait is answered "Invite
queued", since a worker hears only its own node's mailer.

Named test_pg_nodes_* ("-k test_pg_nodes"); its own PostgreSQL beside
the suite's engine: run once (ENGINES).
"""

import collections
import glob
import http.client
import json
import os
import re
import shutil
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import harness
from harness import (App, ROUTE, check, err_body, ok_body, unique,
                     wait_for)
import pg
from test_limits import RECENT, check_429
from test_ops import HEALTH, check_health

# Its own PostgreSQL beside the stack's engine: run once (run.py).
ENGINES = ('sqlite',)

# nginx's flood guard out of the way: the daemons' limits are measured.
RATE = '100000r/s'
SENT = (ok_body('Invite sent'), ok_body('Invite queued'))
# What nginx answers for a request its upstream did not answer
# (location.conf's @referral_invites_502).
BAD_GATEWAY = err_body('Service unavailable')
CLAIM_LEASE = 5
NODE_UPSTREAM = 'ri_node_%s'
# Both nodes' config beyond harness's: the shipped delivery_wait.
NODE_CONF = {'delivery_wait': '3'}


# -- the cluster -------------------------------------------------------------

class NodeB(harness.Stack):
    """Node B: a daemon, its config, socket, state_directory and SMTP
    catcher, on node A's database (harness's PostgreSQL settings:
    database, state_directory and claim_lease = 5) with node A's
    secret.key, and no nginx of its own."""

    def __init__(self, pgdb, public_url, secret):
        super().__init__(conf=dict(NODE_CONF, public_url=public_url))
        self.pgdb = pgdb
        self.secret = secret

    def start(self, prepare=None):
        try:
            self._prepare()
            # init made a key of its own here: node A's replaces it.
            key = self.path('db', 'secret.key')
            shutil.copyfile(self.secret, key)
            os.chmod(key, 0o600)
            if self.root:
                shutil.chown(key, self.user)
            self.start_smtpd()
            self.start_daemon()
        except BaseException:
            self.stop(keep=True)
            raise
        return self

    def _write_nginx_conf(self):
        pass        # the cluster's nginx is node A's

    def stop(self, keep=False):
        self.pgdb = None        # node A's, stopped with node A
        super().stop(keep)


class Cluster(harness.Stack):
    """Node A (this stack: its daemon, config, socket, state_directory,
    SMTP catcher), node B (self.b), one nginx with three ports and one
    PostgreSQL, stopped together.  self.port balances over both nodes,
    self.node_port['a'] and ['b'] reach one node each."""

    def __init__(self):
        super().__init__(conf=dict(NODE_CONF))
        self.b = None
        self.node_port = {}

    def start(self, prepare=None):
        self.pgdb = pg.Postgres().start()
        # The daemons' account reaches the socket, not the cluster.
        os.chmod(self.pgdb.dir, 0o711)

        def nodes(s):
            s.b = NodeB(s.pgdb, s.base_url, s.path('db', 'secret.key'))
            s.b.start()
            s._write_cluster_nginx_conf()
        return super().start(nodes)

    def _write_nginx_conf(self):
        pass        # written once node B's socket exists (start)

    def _write_cluster_nginx_conf(self):
        """harness's nginx.conf with both nodes in the shipped upstream,
        and a port and an upstream for each node alone."""
        d = self.path('nginx')
        socks = {'a': self.socket, 'b': self.b.socket}
        shipped = os.path.join(harness.SRCDIR, 'nginx', 'location.conf')
        with open(shipped) as f:
            location = f.read()
        servers = [(self.port, shipped)]
        upstreams = []
        for node in ('a', 'b'):
            text, n = re.subn(r'\bfastcgi_pass referral_invites;',
                              'fastcgi_pass %s;' % (NODE_UPSTREAM % node),
                              location)
            if n == 0:
                raise harness.StackError('nginx/location.conf: no '
                                         'fastcgi_pass referral_invites')
            path = os.path.join(d, 'location-%s.conf' % node)
            with open(path, 'w') as f:
                f.write(text)
            self.node_port[node] = harness.free_port()
            servers.append((self.node_port[node], path))
            upstreams.append('upstream %s { server unix:%s; keepalive 32; }'
                             % (NODE_UPSTREAM % node, socks[node]))
        # Which node answered on which port, in harness's log format.
        self.write_nginx_conf(
            sockets=[socks['a'], socks['b']], rate=RATE, servers=servers,
            http_extra=upstreams, connections=512,
            log_extra=' $server_port $upstream_addr $upstream_status')

    def start_nginx(self):
        super().start_nginx()
        for node in ('a', 'b'):
            wait_for('nginx on node %s\'s port' % node,
                     lambda: harness.can_connect(
                         ('127.0.0.1', self.node_port[node])), 10)

    def stop(self, keep=False):
        self._terminate('nginx')
        if self.b is not None:
            self.b.stop(keep)
        super().stop(keep)

    def logs(self, lines=30):
        out = super().logs(lines)
        if self.b is not None and self.b.dir is not None:
            out += '\n=== node B\n' + self.b.logs(lines)
        return out

    def nodes(self):
        return {'a': self, 'b': self.b}


def make_stack():
    return Cluster().start()


# -- talking to one port -----------------------------------------------------

def connect(stack, port, timeout=60):
    return http.client.HTTPSConnection('127.0.0.1', port, timeout=timeout,
                                       context=stack.ssl_context())


def port_of(stack, via):
    """via: '' (the balancing port), 'a' or 'b' (one node's)."""
    return stack.port if via == '' else stack.node_port[via]


def invite(stack, app, addr, via='', conn=None, headers=None, uid=None):
    """POST one invite of addr through via's port: (status, headers,
    body, when it was sent, when it was answered) (time.time())."""
    own = conn is None
    if own:
        conn = connect(stack, port_of(stack, via))
    t0 = time.time()
    try:
        r = stack.request('POST', ROUTE % (uid or app.uid),
                          headers or app.headers(),
                          {'email': addr, 'language': 'en'}, conn=conn)
    finally:
        if own:
            conn.close()
    return r + (t0, time.time())


def health(stack, via):
    c = connect(stack, port_of(stack, via))
    try:
        return stack.request('GET', HEALTH, conn=c)
    finally:
        c.close()


def check_created(resp, what=''):
    assert resp[0] == 201 and resp[2] in SENT, (what, resp[:3])
    return check(resp[:3], 201, resp[2], what)


class Pool:
    """Threads that each keep one HTTPS keep-alive connection to one
    port (one that failed is made again for the thread's next request)."""

    def __init__(self, stack, threads, via=''):
        self.stack, self.port = stack, port_of(stack, via)
        self.local = threading.local()
        self.threads = threads
        self.conns = []
        self.lock = threading.Lock()

    def _one(self, job):
        app, addr = job
        c = getattr(self.local, 'conn', None)
        if c is None:
            c = self.local.conn = connect(self.stack, self.port)
            with self.lock:
                self.conns.append(c)
        try:
            return invite(self.stack, app, addr, conn=c)
        except (OSError, http.client.HTTPException) as e:
            c.close()
            self.local.conn = None
            return (None, {}, repr(e).encode(), 0, time.time())

    def run(self, jobs):
        """Answers to jobs (app, address), in order."""
        try:
            with ThreadPoolExecutor(self.threads) as ex:
                return list(ex.map(self._one, jobs))
        finally:
            for c in self.conns:
                c.close()


# -- what the nodes did ------------------------------------------------------

_ACCESS = re.compile(r'"(\S+) (\S+) [^"]*" (\d{3}) \d+ ([0-9a-f]{32}) '
                     r'\S+ (\d+) (\S+) (\S+)$')


def access_log(stack, rids):
    """{request id: (port, status, upstream address)} of nginx's log,
    once it names every one of rids (nginx writes a request's line after
    its answer)."""
    def read():
        out = {}
        with open(stack.path('nginx-access.log'), errors='replace') as f:
            for line in f:
                m = _ACCESS.search(line.rstrip('\n'))
                if m:
                    out[m.group(4)] = (int(m.group(5)), int(m.group(3)),
                                       m.group(6))
        return out if set(rids) <= set(out) else None
    return wait_for('%d requests in the access log' % len(rids), read, 10,
                    interval=0.1)


def node_of(stack, upstream):
    """'a' or 'b' for an upstream address of the access log."""
    for name, node in stack.nodes().items():
        if upstream == 'unix:' + node.socket:
            return name
    raise AssertionError('upstream %r is neither node' % upstream)


def stored_by(stack, node):
    """Request ids of the invites a node's daemon log says it stored."""
    with open(node.path('daemon.log'), errors='replace') as f:
        return set(re.findall(r'request ([0-9a-f]{32}): invite \S+ stored',
                              f.read()))


def mails(stack):
    """[(address, node, mtime)] of every message both catchers hold."""
    out = []
    for name, node in stack.nodes().items():
        for path in glob.glob(os.path.join(node.maildir, '*.json')):
            with open(path) as f:
                env = json.load(f)
            for rcpt in env['rcpt_tos']:
                out.append((rcpt.lower(), name, os.path.getmtime(path)))
    return out


def mail_count(stack):
    return collections.Counter(a for a, _, _ in mails(stack))


def rows_of(stack, app):
    return stack.sql("SELECT email, status, attempts, request_id FROM "
                     "invites WHERE app_id = '%s' ORDER BY email" %
                     app.pk())


def statuses_of(stack, app):
    return {r['status']: r['n'] for r in stack.sql(
        "SELECT status, count(*) AS n FROM invites WHERE app_id = '%s' "
        "GROUP BY status" % app.pk())}


def wait_all_sent(stack, app, n, timeout):
    """Until the app's n rows are all 'sent'."""
    wait_for('%d invites sent' % n,
             lambda: statuses_of(stack, app) == {'sent': n}, timeout,
             interval=0.2)


def limited_app(stack, per_hour, per_day=None, per_minute=None):
    app = App(stack)
    stack.ctl('app', 'set', app.client, '--limit-per-hour', str(per_hour),
              '--limit-per-day', str(per_day or per_hour),
              '--limit-per-minute', str(per_minute or 600))
    return app


def tally(answers):
    return dict(collections.Counter(r[0] for r in answers))


# -- 1. two nodes, one database -----------------------------------------------

def test_pg_nodes_two_nodes_one_database(stack):
    """Each node its own config, socket and state_directory, the same URI
    and secret.key; both answer health through their own port; an invite
    through either node's port, and through the balancing one, is one row
    and one mail; a token signed with node A's secret passes on node B."""
    a, b = stack, stack.b
    confs = {}
    for name, node in stack.nodes().items():
        with open(node.conf) as f:
            confs[name] = dict(line.split(' = ', 1) for line in
                               f.read().splitlines() if ' = ' in line)
    assert confs['a']['database'] == confs['b']['database'] == \
        stack.pgdb.uri(), confs
    assert confs['a']['claim_lease'] == confs['b']['claim_lease'] == '5'
    assert (confs['a']['listen'], confs['b']['listen']) == (a.socket,
                                                            b.socket)
    assert a.socket != b.socket
    assert (confs['a']['state_directory'], confs['b']['state_directory']) \
        == (a.path('db'), b.path('db'))
    keys = []
    for node in (a, b):
        path = node.path('db', 'secret.key')
        st = os.stat(path)
        assert st.st_mode & 0o777 == 0o600, oct(st.st_mode)
        if node.root:
            assert st.st_uid == harness.pwd.getpwnam(
                harness.DAEMON_USER).pw_uid
        with open(path, 'rb') as f:
            keys.append(f.read())
    assert keys[0] == keys[1] and len(keys[0]) > 0
    for name, node in stack.nodes().items():
        assert node.procs['daemon'].poll() is None, name
        # The socket answers before the supervisor has forked them all.
        wait_for('node %s: 4 workers' % name,
                 lambda: len(harness.children(node, 'ri-worker')) == 4, 20)
        # The socket answers before the writer and mailer are ready.
        wait_for('node %s healthy' % name,
                 lambda: health(stack, name)[0] == 200, 20)
        check_health(health(stack, name))
    assert stack.sql('SELECT count(*) AS n FROM invites') == [{'n': 0}]

    app = App(stack)
    addrs = {via: unique('node%s' % (via or 'ab')) for via in ('a', 'b', '')}
    seen = {}
    for via, addr in addrs.items():
        r = invite(stack, app, addr, via)
        h = check_created(r, via)
        seen[h['x-request-id']] = via
    # The token of the tool (node A's config, node A's secret.key).
    tok = unique('token')
    r = invite(stack, app, tok, 'b', headers=app.bearer(), uid='me')
    h = check_created(r, 'token on node B')
    seen[h['x-request-id']] = 'b'
    log = access_log(stack, seen)
    for rid, via in seen.items():
        port, status, upstream = log[rid]
        assert (port, status) == (port_of(stack, via), 201), log[rid]
        if via:
            assert node_of(stack, upstream) == via, log[rid]
    assert set(seen) <= stored_by(stack, a) | stored_by(stack, b)
    for rid, via in seen.items():
        if via:
            assert rid in stored_by(stack, stack.nodes()[via]), (rid, via)
    everyone = sorted(list(addrs.values()) + [tok])
    rows = rows_of(stack, app)
    assert [r['email'] for r in rows] == everyone, rows
    assert sorted(r['request_id'] for r in rows) == sorted(seen), rows
    wait_all_sent(stack, app, 4, 20)
    wait_for('4 mails', lambda: len(mails(stack)) >= 4, 10)
    assert mail_count(stack) == {x: 1 for x in everyone}, mail_count(stack)


# -- 2. a burst of 2,000 -----------------------------------------------------

BURST = 2000
CONNECTIONS = 32


def test_pg_nodes_burst_of_2000(stack):
    """2,000 invites, 32 keep-alive connections, the balancing port: each
    a 201, each one row and one mail, both nodes served a share."""
    app = limited_app(stack, BURST, BURST, BURST)
    before = mail_count(stack)
    addrs = [unique('burst') for _ in range(BURST)]
    t0 = time.time()
    answers = Pool(stack, CONNECTIONS).run([(app, x) for x in addrs])
    secs = time.time() - t0
    assert tally(answers) == {201: BURST}, tally(answers)
    rids = {}
    for x, r in zip(addrs, answers):
        rids[check_created(r, x)['x-request-id']] = x
    queued = sum(r[2] == ok_body('Invite queued') for r in answers)
    rows = rows_of(stack, app)
    assert len(rows) == BURST, len(rows)
    assert [r['email'] for r in rows] == sorted(addrs)
    assert {r['request_id']: r['email'] for r in rows} == rids
    # Which node served each (nginx's access log), and what its own log
    # says it stored.
    log = access_log(stack, rids)
    served = collections.Counter(node_of(stack, log[rid][2])
                                 for rid in rids)
    assert served['a'] + served['b'] == BURST, served
    assert served['a'] > 0 and served['b'] > 0, served
    for name, node in stack.nodes().items():
        mine = {rid for rid in rids if node_of(stack, log[rid][2]) == name}
        assert mine == stored_by(stack, node) & set(rids), name
    wait_all_sent(stack, app, BURST, 60)
    wait_for('%d mails' % BURST, lambda: sum(
        (mail_count(stack) - before).values()) >= BURST, 30, interval=0.5)
    got = mail_count(stack) - before
    assert got == {x: 1 for x in addrs}, [
        (x, n) for x, n in got.items() if n != 1 or x not in rids.values()]
    by_node = collections.Counter(n for x, n, _ in mails(stack)
                                  if x in got)
    print('# burst: %d in %.1fs, nodes served %s, mailed by %s, %d '
          '"Invite queued"' % (BURST, secs, dict(served), dict(by_node),
                               queued), flush=True)


# -- 3. one inviter's hourly limit across nodes ------------------------------

def test_pg_nodes_hourly_limit_is_exact_across_nodes(stack):
    """An inviter with a limit of 20 an hour, 40 invites at once, 20
    through each node's port: exactly 20 201s, 20 429s, 20 rows."""
    app = limited_app(stack, 20, 100, 600)
    addrs = [unique('limit') for _ in range(40)]
    vias = ['a', 'b'] * 20
    go = threading.Barrier(40)
    conns = [connect(stack, port_of(stack, v)) for v in vias]

    def one(i):
        go.wait(10)
        return invite(stack, app, addrs[i], vias[i], conn=conns[i])
    try:
        t0 = time.time()
        answers = harness.in_parallel([lambda i=i: one(i)
                                       for i in range(40)], 60)
    finally:
        for c in conns:
            c.close()
    assert all(isinstance(r, tuple) for r in answers), answers
    assert tally(answers) == {201: 20, 429: 20}, tally(answers)
    created = sorted(x for x, r in zip(addrs, answers) if r[0] == 201)
    for x, r in zip(addrs, answers):
        if r[0] == 201:
            check_created(r, x)
    rows = rows_of(stack, app)
    assert [r['email'] for r in rows] == created, rows
    oldest = stack.sql("SELECT min(created_at) AS t FROM invites WHERE "
                       "app_id = '%s'" % app.pk())[0]['t']
    for x, r in zip(addrs, answers):
        if r[0] == 429:
            check_429(r[:3], 3600, oldest, since=t0)
    split = collections.Counter(v for v, r in zip(vias, answers)
                                if r[0] == 201)
    wait_all_sent(stack, app, 20, 30)
    # A fixed wait, for what must not come: a refused address's mail.
    time.sleep(1)
    got = mail_count(stack)
    assert {x: got[x] for x in addrs} == \
        {x: int(x in created) for x in addrs}, got
    print('# limit: 201s through node A %d, node B %d' % (
        split['a'], split['b']), flush=True)


# -- 4. one address on both nodes at once ------------------------------------

PAIRS = 10


def test_pg_nodes_same_address_on_both_nodes(stack):
    """The same address through node A and node B at the same moment
    (one Barrier releases all), 10 addresses: one 201 and one 409 (the
    cooldown's) for each, one row each."""
    app = limited_app(stack, 100, 100, 600)
    addrs = [unique('both') for _ in range(PAIRS)]
    jobs = [(x, via) for x in addrs for via in 'ab']
    conns = [connect(stack, port_of(stack, via)) for _, via in jobs]
    for c in conns:
        c.connect()     # TLS done before the barrier
    go = threading.Barrier(len(jobs))

    def one(i):
        go.wait(10)
        return invite(stack, app, jobs[i][0], jobs[i][1], conn=conns[i])
    try:
        answers = harness.in_parallel([lambda i=i: one(i)
                                       for i in range(len(jobs))], 60)
    finally:
        for c in conns:
            c.close()
    assert all(isinstance(r, tuple) for r in answers), answers
    winners = collections.Counter()
    for k, addr in enumerate(addrs):
        ra, rb = answers[2 * k], answers[2 * k + 1]
        assert sorted([ra[0], rb[0]]) == [201, 409], (addr, ra, rb)
        won, lost = (ra, rb) if ra[0] == 201 else (rb, ra)
        winners['a' if won is ra else 'b'] += 1
        check_created(won, addr)
        check(lost[:3], 409, err_body(RECENT), addr)
    rows = rows_of(stack, app)
    assert [r['email'] for r in rows] == sorted(addrs), rows
    wait_all_sent(stack, app, PAIRS, 30)
    got = mail_count(stack)
    assert {x: got[x] for x in addrs} == {x: 1 for x in addrs}, got
    print('# same address: node A won %d, node B %d' % (
        winners['a'], winners['b']), flush=True)


# -- the answer of an invite the other node's mailer sent --------------------

def test_pg_nodes_invite_sent_by_the_other_node_answers_sent(stack):
    """SPEC 5: "Invite sent" when the SMTP server accepted the mail within
    the wait.  The mailers share one queue, so an invite stored by node
    B is often claimed and sent by node A's mailer at once; the worker
    on node B must still answer "Invite sent", not "Invite queued" at
    the end of delivery_wait: its mailer hears the verdict the other
    recorded (db_verdicts_heard) and tells the worker."""
    app = limited_app(stack, 500, 500, 600)
    sent, wrong, crossed = 0, [], 0
    # Rounds of 20 at once through the balancing port until at least 5
    # invites were mailed by the node that did not store them (how many
    # cross is the mailers' race), 5 rounds at most.
    for _ in range(5):
        addrs = [unique('verdict') for _ in range(20)]
        answers = Pool(stack, 20).run([(app, x) for x in addrs])
        assert tally(answers) == {201: 20}, tally(answers)
        sent += 20
        wait_all_sent(stack, app, sent, 30)
        log = access_log(stack, [r[1]['x-request-id'] for r in answers])
        when = {x: (n, t) for x, n, t in mails(stack)}
        for x, r in zip(addrs, answers):
            check_created(r, x)
            mailer, stored_at = when[x]
            served = node_of(stack, log[r[1]['x-request-id']][2])
            crossed += mailer != served
            # Accepted by the relay (its file written) well before the
            # answer: "Invite sent".
            if stored_at < r[4] - 0.5 and r[2] != ok_body('Invite sent'):
                wrong.append('%s: stored by node %s, mailed by node %s '
                             '%.2fs after the request, answered %.2fs '
                             'after it: %s' % (
                                 x, served, mailer, stored_at - r[3],
                                 r[4] - r[3], r[2].decode()))
        if crossed >= 5:
            break
    assert crossed > 0, 'no invite was mailed by the other node'
    assert not wrong, '%d of %d answers "Invite queued" for a mail sent ' \
        'within the wait (%d mailed by the other node):\n%s' % (
            len(wrong), sent, crossed, '\n'.join(wrong))


# -- 5. one node killed mid-burst --------------------------------------------

def alive(pid):
    """pid runs (a zombie does not)."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().split(') ')[1][0] != 'Z'
    except (OSError, IndexError):
        return False


def kill_node(node):
    """SIGKILL to the node's supervisor and every child (its process
    group: the daemon runs in a session of its own); reaped."""
    sup = node.procs['daemon']
    kids = harness.children(node)
    assert kids, 'node B has no children'
    os.killpg(sup.pid, signal.SIGKILL)
    for pid in kids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    sup.wait(10)
    wait_for('node B\'s children gone',
             lambda: not any(alive(p) for p in kids), 10)
    return kids


def smtp_sessions(node):
    """TCP connections established to the node's SMTP catcher."""
    out = harness.subprocess.run(
        ['ss', '-tnH', 'state', 'established', '( sport = :%d )' %
         node.smtp_port], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_pg_nodes_node_killed_mid_burst(stack):
    """Node B killed (-9, all its processes) while a burst runs through
    the balancing port and node A's own, its mailer holding claims it
    cannot finish: node A answers everything, nginx's 502 only for what
    went to node B, and every stored invite is mailed exactly once."""
    a, b = stack, stack.b
    app = limited_app(stack, 5000, 5000, 5000)
    # Node B's relay holds every message in its DATA phase for longer
    # than this test: node B's claims are claims not sent.  (The catcher
    # drops a message whose client went away: nothing of it is stored.)
    # It is restarted so once node B's mailer has let its last connection
    # go (it keeps one open for a second with nothing to send).
    wait_for('node B\'s relay idle', lambda: not smtp_sessions(b), 10)
    b._terminate('smtpd')
    b.smtpd_args += ['--delay-data', '120']
    b.start_smtpd()
    mails_before = mail_count(stack)
    log_before = len(harness.daemon_log(a))
    b_before = len(glob.glob(os.path.join(b.maildir, '*.json')))
    n_bal, n_a = 300, 200
    bal = [unique('kill') for _ in range(n_bal)]
    own = [unique('killa') for _ in range(n_a)]
    out = {}
    t_kill = [None]

    def burst(name, via, addrs, threads):
        out[name] = Pool(stack, threads, via).run([(app, x) for x in addrs])

    ts = [threading.Thread(target=burst, args=('bal', '', bal, 16)),
          threading.Thread(target=burst, args=('a', 'a', own, 8))]
    for t in ts:
        t.start()
    try:
        # Node B's mailer has claimed invites it is trying to send.
        wait_for('node B holding claims', lambda: stack.sql(
            "SELECT count(*) AS n FROM invites WHERE status = 'sending' "
            "AND app_id = '%s'" % app.pk())[0]['n'] >= 3, 30)
        # A fixed wait: more of the burst in flight on node B.
        time.sleep(0.5)
        t_kill[0] = time.time()
        kill_node(b)
    finally:
        for t in ts:
            t.join(120)
    assert not any(t.is_alive() for t in ts)
    t_end = time.time()
    log = access_log(stack, [r[1]['x-request-id'] for r in
                             out['bal'] + out['a'] if r[0] is not None])

    # Node A's own port: every answer a 201.
    assert tally(out['a']) == {201: n_a}, tally(out['a'])
    for x, r in zip(own, out['a']):
        check_created(r, x)
    # The balancing port: a 201 from either node, or nginx's 502 for a
    # request it gave node B (in flight when it died, or sent to its dead
    # socket before nginx marked it failed).
    st = tally(out['bal'])
    assert set(st) <= {201, 502}, st
    after = collections.Counter()
    for x, r in zip(bal, out['bal']):
        if r[0] == 201:
            h = check_created(r, x)
        else:
            h = check(r[:3], 502, BAD_GATEWAY, x)
        port, status, upstream = log[h['x-request-id']]
        assert (port, status) == (stack.port, r[0]), log[h['x-request-id']]
        node = node_of(stack, upstream.split(',')[0].strip())
        if r[0] == 502:
            assert node == 'b', (x, log[h['x-request-id']])
        if r[3] > t_kill[0]:
            after[(node, r[0])] += 1
            if node == 'a':
                assert r[0] == 201, r
    for x, r in zip(own, out['a']):
        assert node_of(stack, log[r[1]['x-request-id']][2]) == 'a'
    # Sent after the kill through the balancing port, to node B: only
    # nginx's passive check finding it dead (max_fails 1, fail_timeout
    # 10 s: one try per 10 s).
    assert after[('b', 201)] == 0, after
    assert after[('b', 502)] <= 1 + int((t_end - t_kill[0]) / 10), after

    # Every stored invite mailed exactly once, node B's claims by node A
    # once their lease lapsed; none left queued or sending.
    created = {x for x, r in zip(bal + own, out['bal'] + out['a'])
               if r[0] == 201}
    rows = rows_of(stack, app)
    stored = {r['email'] for r in rows}
    assert created <= stored, created - stored
    assert stored <= set(bal + own), stored - set(bal + own)
    wait_all_sent(stack, app, len(rows), 30)
    wait_for('%d mails' % len(rows), lambda: sum(
        (mail_count(stack) - mails_before).values()) >= len(rows), 10)
    time.sleep(1)       # a fixed wait, for a second mail that must not come
    got = mail_count(stack) - mails_before
    assert {x: got[x] for x in bal + own} == \
        {x: int(x in stored) for x in bal + own}, \
        [(x, got[x]) for x in bal + own if got[x] != int(x in stored)]
    # Node B's relay stored nothing of this test's; node B's claims were
    # queued again by node A's mailer (its log) and sent by it.
    assert len(glob.glob(os.path.join(b.maildir, '*.json'))) == b_before
    # Node B's claims in flight at the kill: each sent again once, by
    # node A, after its lease.
    rows = rows_of(stack, app)      # as they ended, not as they were
    retried = [r for r in rows if r['attempts'] == 2]
    assert retried and all(r['attempts'] in (1, 2) for r in rows), rows
    lapsed = sum(int(n) for n in re.findall(
        r'mailer: (\d+) claimed invites whose lease lapsed \(their mailer '
        r'died or stalled past claim_lease\) are queued again',
        harness.daemon_log(a)[log_before:]))
    assert lapsed == len(retried), (lapsed, len(retried))
    print('# kill: balancing port %s (after the kill %s), node A\'s port '
          '%s, %d stored, %d of node B\'s claims sent by node A' % (
              st, dict(after), tally(out['a']), len(rows), len(retried)),
          flush=True)
