# SPDX-License-Identifier: ISC
# Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
"""Operating the service (issue 24): health and Prometheus metrics.

Health: the exact 200 body on a running stack; 503 with Retry-After and
the part that is down when the mailer or the writer is stopped (SIGSTOP:
a process that does not beat for METRICS_STALE = 10 s is down, as a hung
one is), when the mailer is dead and not yet restarted (the supervisor
stopped, so that it cannot restart it), and when the database cannot be
read (its file overwritten, on a stack of its own).  No credentials, no
flood guard.

Metrics: the text exposition format 0.0.4 parsed strictly (HELP and TYPE
before each family's samples, counters ending in _total, no sample twice),
exact deltas after a known sequence of requests, counters that survive a
worker killed with SIGKILL, referral-invitesctl metrics giving the same
numbers, and nginx refusing the path to an address its allow lines do not
name.  All test traffic is loopback: that refusal is checked from
127.0.0.2, which is loopback but not 127.0.0.1, through the shipped
location.conf unchanged.
"""

import json
import os
import re
import signal
import threading
import time

import harness
from harness import (App, JSON_CT, check, err_body, ok_body, unique,
                     wait_for)

HEALTH = '/api/v1/referral-invites/health'
METRICS = '/api/v1/referral-invites/metrics'
INVITES = '/api/v1/users/:userId/referral-invites'
METRICS_CT = 'text/plain; version=0.0.4; charset=utf-8'
STALE = 10          # metrics.h METRICS_STALE


def make_stack():
    s = harness.Stack().start()
    ready(s)
    return s


def ready(stack):
    """Until the writer, the mailer and the webhooks have beaten once:
    the socket answers before they are ready, and health says so."""
    wait_for('health 200', lambda: stack.request('GET', HEALTH)[0] == 200,
             10, interval=0.05)
    wait_for('webhooks up', lambda: val(scrape(stack), 'referral_invites_up',
                                        part='webhooks') == 1, 10,
             interval=0.05)


# -- health ------------------------------------------------------------------

def health_body(db='up', writer='up', mailer='up', oldest=None):
    data = ('{"database":"%s","writer":"%s","mailer":"%s",'
            '"oldestQueuedSeconds":%s}' % (
                db, writer, mailer, 'null' if oldest is None else oldest))
    down = [n for n, v in (('database', db), ('writer', writer),
                           ('mailer', mailer)) if v == 'down']
    if not down:
        return ('{"success":true,"message":"Healthy","error":null,'
                '"data":%s}' % data).encode()
    return ('{"success":false,"error":"Unhealthy: %s","message":null,'
            '"data":%s}' % (' '.join(down), data)).encode()


def health(stack, headers=None, conn=None):
    return stack.request('GET', HEALTH, headers, conn=conn)


def check_health(resp, **parts):
    status = 503 if 'down' in parts.values() else 200
    h = check(resp, status, health_body(**parts))
    assert h.get('retry-after') == ('5' if status == 503 else None), h
    return h


def wait_health(stack, status, timeout):
    """Poll health until it answers status; the answer."""
    return wait_for('health %d' % status, lambda: (lambda r: r if r[0] ==
                    status else None)(health(stack)), timeout,
                    interval=0.2)


def oldest_queued(stack):
    """The age of the oldest queued invite as the sqlite3 CLI (or psql)
    sees it."""
    if stack.pgdb is not None:
        return stack.sql("SELECT floor(extract(epoch FROM now() - "
                         "min(created_at)::timestamptz))::bigint AS age "
                         "FROM invites WHERE status = 'queued'")[0]['age']
    r = stack.sql("SELECT CAST(strftime('%s', 'now') AS INTEGER) - "
                  "unixepoch(min(created_at)) AS age FROM invites "
                  "WHERE status = 'queued'")
    return r[0]['age']


def test_health_up_exact_body(stack):
    check_health(health(stack))


def test_health_needs_no_credentials_and_ignores_them(stack):
    app = App(stack)
    for h in ({}, {'Authorization': 'Bearer not-a-token'},
              app.headers(key='wrong'), app.headers()):
        check_health(health(stack, h))
    # Only GET: the route table's 405, in the envelope.
    h = check(stack.request('POST', HEALTH, {}, b''), 405,
              err_body('Method not allowed'))
    assert h.get('allow') == 'GET', h


def burst(stack, method, path, n=100, threads=4):
    """threads connections sending n requests each, back to back; the
    answers."""
    def one():
        conn = stack.connection()
        try:
            return [stack.request(method, path, {}, conn=conn)
                    for _ in range(n)]
        finally:
            conn.close()
    out = []
    for r in harness.in_parallel([one] * threads):
        assert isinstance(r, list), r
        out += r
    return out


def test_health_is_not_behind_the_flood_guard(stack):
    """400 requests at once: far beyond the guard's burst of 40 at
    100 r/s, which the same burst meets on a guarded route (so that this
    test can fail)."""
    guarded = burst(stack, 'POST', '/api/v1/referral-invites/accept')
    assert 429 in [r[0] for r in guarded], [r[0] for r in guarded]
    time.sleep(1)   # a fixed wait: nginx's bucket refills with time
    for r in burst(stack, 'GET', HEALTH):
        check_health(r)


def test_health_503_while_the_mailer_is_stopped(stack):
    """SIGSTOP is not death, but a mailer that does not beat for STALE
    seconds is down: the balancer hears 503 about 10 s after the stop,
    not at once, and 200 again once it runs.  The invite sent meanwhile
    waits in the queue, and health tells its age."""
    app = App(stack)
    [pid] = harness.children(stack, 'ri-mailer')
    with harness.stopped(pid):
        t0 = time.monotonic()
        check(app.invite(), 201, ok_body('Invite queued'))
        st, h, b = wait_health(stack, 503, STALE + 5)
        assert time.monotonic() - t0 >= STALE - 2, time.monotonic() - t0
        age = json.loads(b)['data']['oldestQueuedSeconds']
        assert isinstance(age, int) and age >= 3, b
        assert abs(age - oldest_queued(stack)) <= 1, (age, b)
        check_health((st, h, b), mailer='down', oldest=age)
    wait_health(stack, 200, 5)
    # The mailer sends what waited: the queue is empty again.
    wait_for('queue empty', lambda: health(stack)[2] == health_body(), 10)


def test_health_503_while_the_writer_is_stopped(stack):
    [pid] = harness.children(stack, 'ri-writer')
    with harness.stopped(pid):
        check_health(health(stack))     # stopped, not yet stale
        check_health(wait_health(stack, 503, STALE + 5), writer='down')
    check_health(wait_health(stack, 200, 5))


def test_health_503_while_the_mailer_is_dead(stack):
    """A dead mailer is down until the supervisor starts another; with
    the supervisor stopped it cannot, so the gap lasts."""
    sup = stack.procs['daemon'].pid
    [pid] = harness.children(stack, 'ri-mailer')
    with harness.stopped(sup):
        os.kill(pid, signal.SIGKILL)
        check_health(wait_health(stack, 503, STALE + 5), mailer='down')
    check_health(wait_health(stack, 200, 10))
    assert harness.children(stack, 'ri-mailer') != [pid]


@harness.sqlite_only
def test_health_503_when_the_database_cannot_be_read(stack):
    """On a stack of its own (the module's stays as it is): the WAL
    copied back, then the database's first page overwritten, as a broken
    disk would."""
    def run(s):
        ready(s)
        check_health(health(s))
        r = s.sql('PRAGMA wal_checkpoint(TRUNCATE)')
        assert list(r[0].values())[0] == 0, r
        with open(s.db, 'r+b') as f:
            f.write(b'\0' * 100)
        check_health(health(s), db='down')
    harness.with_stack(run)


# -- metrics -----------------------------------------------------------------

SAMPLE = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\d+)')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="([^"\\\n]*)"')


def parse(text):
    """The samples of an exposition, {(name, ((label, value), ...)): n},
    checked line by line against the format (version 0.0.4)."""
    assert text.endswith('\n') and '\n\n' not in text, text
    helps, types, samples, family = set(), set(), {}, None
    for line in text[:-1].split('\n'):
        if line.startswith('# HELP '):
            name, text_ = line[7:].split(' ', 1)
            assert name not in helps and text_, line
            helps.add(name)
            family = None
        elif line.startswith('# TYPE '):
            name, kind = line[7:].split(' ')
            assert name in helps and name not in types, line
            assert kind in ('counter', 'gauge'), line
            assert (kind == 'counter') == name.endswith('_total'), line
            assert name.startswith('referral_invites_'), line
            types.add(name)
            family = name
        else:
            m = SAMPLE.fullmatch(line)
            assert m and m.group(1) == family, line
            labels = ()
            if m.group(2) is not None:
                labels = tuple(LABEL.findall(m.group(2)))
                assert ','.join('%s="%s"' % p for p in labels) == \
                    m.group(2), line
            key = (m.group(1), labels)
            assert key not in samples, line
            samples[key] = int(m.group(3))
    assert helps == types, (helps, types)
    return samples


def scrape(stack):
    st, h, b = wait_for('a scrape', lambda: (lambda r: r if r[0] == 200
                        else None)(stack.request('GET', METRICS)), 10)
    assert h.get('content-type') == METRICS_CT, h
    assert h.get('cache-control') == 'no-store', h
    return parse(b.decode())


def val(samples, name, **labels):
    """A sample's value; 0 when the series is absent (a request counter
    is printed only once it moved)."""
    key = (name, tuple(labels.items()))
    if name != 'referral_invites_http_requests_total':
        assert key in samples, (key, sorted(samples))
    return samples.get(key, 0)


def req(samples, method, route, status):
    return val(samples, 'referral_invites_http_requests_total',
               method=method, route=route, status=str(status))


def delta(a, b, name, **labels):
    return val(b, name, **labels) - val(a, name, **labels)


def test_metrics_every_family_with_help_and_type(stack):
    s = scrape(stack)
    names = {k[0] for k in s}
    for n in ('up', 'start_time_seconds', 'invites', 'queue_depth',
              'queue_oldest_age_seconds', 'suppressions',
              'smtp_replies_total', 'deliveries_total', 'retries_total',
              'rate_limited_total', 'restarts_total', 'db_busy_waits_total',
              'db_busy_timeouts_total', 'webhook_attempts_total'):
        assert 'referral_invites_' + n in names, n
    for part in ('database', 'writer', 'mailer', 'webhooks'):
        assert val(s, 'referral_invites_up', part=part) == 1
    assert abs(val(s, 'referral_invites_start_time_seconds') -
               time.time()) < 3600
    for c in ('2xx', '4xx', '5xx'):
        val(s, 'referral_invites_smtp_replies_total', **{'class': c})
    for lim in ('inviter_hour', 'inviter_day', 'app_minute'):
        val(s, 'referral_invites_rate_limited_total', limit=lim)


def test_webhooks_stopped_are_down_in_metrics_not_in_health(stack):
    """The webhooks process beats like the writer and the mailer: stopped,
    it is down in the metrics STALE seconds later and up again once it
    runs.  Health stays 200 all along (invites do not need it)."""
    [pid] = harness.children(stack, 'ri-webhooks')
    up = lambda: val(scrape(stack), 'referral_invites_up', part='webhooks')
    assert up() == 1
    with harness.stopped(pid):
        t0 = time.monotonic()
        wait_for('webhooks down', lambda: up() == 0, STALE + 5,
                 interval=0.2)
        assert time.monotonic() - t0 >= STALE - 2, time.monotonic() - t0
        check_health(health(stack))
    wait_for('webhooks up', lambda: up() == 1, 5, interval=0.2)
    check_health(health(stack))


def test_metrics_count_what_the_requests_did(stack):
    """3 invites sent and a fourth refused by the hourly limit of 3; one
    refused for good by the relay (5xx: failed, and the address listed
    as a bounce), one deferred (4xx: a retry, left queued), an address
    listed by an admin, a 405; each counter moves by exactly that."""
    limited = App(stack)
    limited.ctl('app', 'set', limited.client, '--limit-per-hour', '3')
    other = App(stack, unlimited=True)
    a = scrape(stack)
    for _ in range(3):
        check(limited.invite(), 201, ok_body())
    st, h, _ = limited.invite()
    assert st == 429 and h.get('retry-after'), (st, h)
    rejected = unique('reject')
    st, _, b = other.invite(rejected)
    assert st == 400, (st, b)
    check(other.invite(unique('defer')), 201, ok_body('Invite queued'))
    other.ctl('suppress', 'add', other.client, unique('listed'))
    check(stack.request('DELETE', '/api/v1/referral-invites/accept'), 405,
          err_body('Method not allowed'))
    b_ = scrape(stack)
    assert req(b_, 'POST', INVITES, 201) - req(a, 'POST', INVITES, 201) == 4
    assert req(b_, 'POST', INVITES, 429) - req(a, 'POST', INVITES, 429) == 1
    assert req(b_, 'POST', INVITES, 400) - req(a, 'POST', INVITES, 400) == 1
    assert req(b_, 'other', 'other', 405) - req(a, 'other', 'other', 405) == 1
    # The first scrape's own request: counted once it was answered.
    assert req(b_, 'GET', '/api/v1/referral-invites/metrics', 200) - \
        req(a, 'GET', '/api/v1/referral-invites/metrics', 200) == 1
    expect = [
        ('rate_limited_total', {'limit': 'inviter_hour'}, 1),
        ('rate_limited_total', {'limit': 'inviter_day'}, 0),
        ('rate_limited_total', {'limit': 'app_minute'}, 0),
        ('smtp_replies_total', {'class': '2xx'}, 3),
        ('smtp_replies_total', {'class': '4xx'}, 1),
        ('smtp_replies_total', {'class': '5xx'}, 1),
        ('deliveries_total', {'result': 'sent'}, 3),
        ('deliveries_total', {'result': 'failed'}, 1),
        ('retries_total', {}, 1),
        ('invites', {'status': 'sent'}, 3),
        ('invites', {'status': 'failed'}, 1),
        ('invites', {'status': 'queued'}, 1),
        ('queue_depth', {}, 1),
        ('suppressions', {'source': 'bounce'}, 1),
        ('suppressions', {'source': 'admin'}, 1),
        ('suppressions', {'source': 'opt-out'}, 0),
        ('restarts_total', {'process': 'worker'}, 0),
        ('db_busy_timeouts_total', {}, 0),
    ]
    got = [(n, l, delta(a, b_, 'referral_invites_' + n, **l))
           for n, l, _ in expect]
    assert got == expect, got
    # And the database says the same.
    n = stack.sql("SELECT count(*) AS n FROM invites WHERE status = "
                  "'queued'")[0]['n']
    assert val(b_, 'referral_invites_queue_depth') == n
    assert abs(val(b_, 'referral_invites_queue_oldest_age_seconds') -
               oldest_queued(stack)) <= 1


def test_metrics_count_busy_waits(stack):
    """A write lock held from outside: the writer waits for it."""
    app = App(stack)
    a = scrape(stack)
    got = []
    t = threading.Thread(target=lambda: got.append(app.invite()))
    try:
        with stack.write_locked():
            t.start()
            # Well within the busy timeout (5 s): no SQLITE_BUSY.
            wait_for('a busy wait', lambda: delta(
                a, scrape(stack),
                'referral_invites_db_busy_waits_total') >= 1, 3)
    finally:
        t.join(30)
    check(got[0], 201, ok_body())
    b = scrape(stack)
    assert delta(a, b, 'referral_invites_db_busy_waits_total') >= 1
    assert delta(a, b, 'referral_invites_db_busy_timeouts_total') == 0


def test_metrics_survive_a_worker_killed(stack):
    app = App(stack)
    check(app.invite(), 201, ok_body())
    a = scrape(stack)
    workers = harness.children(stack, 'ri-worker')
    os.kill(workers[0], signal.SIGKILL)
    wait_for('a new worker', lambda: len(harness.children(
        stack, 'ri-worker')) == len(workers) and workers[0] not in
        harness.children(stack, 'ri-worker'), 10)
    b = scrape(stack)
    assert delta(a, b, 'referral_invites_restarts_total',
                 process='worker') == 1
    for k, v in a.items():
        if k[0].endswith('_total'):
            assert b.get(k, 0) >= v, (k, v, b.get(k))
    assert req(b, 'POST', INVITES, 201) == req(a, 'POST', INVITES, 201) > 0
    assert delta(a, b, 'referral_invites_deliveries_total',
                 result='sent') == 0
    assert val(b, 'referral_invites_deliveries_total', result='sent') >= 1


def test_ctl_metrics_prints_the_same(stack):
    """What the textfile collector reads: the scrape's numbers (the
    scrape's own request aside, counted once answered)."""
    scrape(stack)
    r = stack.ctl_run('metrics')
    assert r.returncode == 0 and r.stderr == '', r
    c = parse(r.stdout)
    b = scrape(stack)
    age = 'referral_invites_queue_oldest_age_seconds'
    assert abs(c.pop((age, ())) - b.pop((age, ()))) <= 1
    assert c == b, set(c.items()) ^ set(b.items())
    # Its counters: the running pool's, read from DATABASE.metrics.
    assert req(c, 'POST', INVITES, 201) > 0


def test_metrics_refused_from_an_address_not_allowed(stack):
    """The shipped location.conf: metrics from 127.0.0.1 only (and ::1);
    a request from 127.0.0.2 gets nginx's 403 in the envelope, health
    answers it as any other."""
    conn = stack.connection()
    conn.source_address = ('127.0.0.2', 0)
    try:
        h = check(stack.request('GET', METRICS, conn=conn), 403,
                  err_body('Forbidden'))
        assert h.get('content-type') == JSON_CT
        # (An invite deferred above may be queued: its age varies.)
        st, h, b = health(stack, conn=conn)
        assert st == 200 and json.loads(b)['message'] == 'Healthy', b
    finally:
        conn.close()
    assert scrape(stack)
    # The rule itself, as shipped.
    with open(os.path.join(harness.SRCDIR, 'nginx', 'location.conf')) as f:
        conf = f.read()
    block = re.search(r'location = /api/v1/referral-invites/metrics \{'
                      r'([^}]*)\}', conf).group(1)
    rules = re.findall(r'^\s*((?:allow|deny) [^;]*);', block, re.M)
    assert rules == ['allow 127.0.0.1', 'allow ::1', 'deny all'], rules
    hblock = re.search(r'location = /api/v1/referral-invites/health \{'
                       r'([^}]*)\}', conf).group(1)
    assert not re.search(r'^\s*(allow|deny|limit_req)\b', hblock, re.M)
