#!/usr/bin/python3
# SPDX-License-Identifier: ISC
# Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
"""Run the end-to-end tests: tests/e2e/test_*.py.

Each module gets one stack: its make_stack() if it defines one, else
harness.Stack().start().  Every function named test_* is called, in the
order of the file, with that stack as its only argument; an exception is a
failure.  Prints PASS/FAIL per test (a failure with its traceback and the
log tails) and ends with the line "N passed, N failed".

    /usr/bin/python3 tests/e2e/run.py [-k SUBSTRING] [-x] [--skip M[,M]]
                                      [-j JOBS] [--engines E[,E]] [MODULE ...]

--skip leaves out whole modules (test_browser) or single tests
(test_limits.test_cooldown), on one engine with its name
(test_hide[postgresql]); .ci/run uses it for the second, sanitizer
build.  -j runs that many modules at once, each in its own process with
its own stack (its own directory, ports and daemon), and prints a module's
lines together when it ends; most tests spend their time waiting for a
clock or a daemon, so two at a time halve the suite's time on two cores.
Named modules run alone, in the same process.

--engines runs the suite on each engine (issue 21): sqlite, a file, and
postgresql, a private PostgreSQL 15 per stack (harness.ENGINE); a
module's lines name it test_x on SQLite and test_x[postgresql] on
PostgreSQL.  The default is RI_E2E_DB's engine, else sqlite.
"""

import argparse
import importlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True      # no __pycache__ in the source tree

import harness  # noqa: E402


FAILED = []   # labels of the tests that failed, in the order they did


def tests_of(module, pattern):
    fns = [f for name, f in vars(module).items()
           if name.startswith('test_') and callable(f) and
           getattr(f, '__module__', None) == module.__name__]
    fns.sort(key=lambda f: f.__code__.co_firstlineno)
    return [f for f in fns if pattern is None or pattern in f.__name__]


def shown_name(name):
    """A module as PASS and FAIL lines name it: test_x, or on PostgreSQL
    test_x[postgresql], so that the two runs of one suite stay apart."""
    return name if harness.ENGINE == 'sqlite' else '%s[%s]' % (
        name, harness.ENGINE)


def run_module(name, pattern, stop_first, skip=()):
    module = importlib.import_module(name)
    # A module that makes its own PostgreSQL (test_pg_*) runs once, in
    # the suite's SQLite run: ENGINES says so.
    if harness.ENGINE not in getattr(module, 'ENGINES', harness.ENGINES):
        print('# %s: not run with RI_E2E_DB=%s (it runs with %s)' % (
            name, harness.ENGINE, ', '.join(module.ENGINES)), flush=True)
        return 0, 0
    shown = shown_name(name)
    if shown in skip:
        return 0, 0
    fns = [f for f in tests_of(module, pattern)
           if '%s.%s' % (name, f.__name__) not in skip and
           '%s.%s' % (shown, f.__name__) not in skip]
    if not fns:
        return 0, 0
    passed = failed = 0
    t0 = time.monotonic()
    try:
        make = getattr(module, 'make_stack', None)
        stack = make() if make else harness.Stack().start()
    except Exception:
        msg = traceback.format_exc()
        for f in fns:
            FAILED.append('%s.%s' % (shown, f.__name__))
            print('FAIL %s.%s (stack did not start)' % (shown, f.__name__))
        print(msg, flush=True)
        return 0, len(fns)
    keep = False
    try:
        for f in fns:
            label = '%s.%s' % (shown, f.__name__)
            start = time.monotonic()
            try:
                f(stack)
            except harness.Skipped as e:
                print('SKIP %s (%s)' % (label, e), flush=True)
            except Exception:
                failed += 1
                keep = True
                FAILED.append(label)
                print('FAIL %s' % label)
                print(traceback.format_exc().rstrip())
                print(stack.logs(), flush=True)
                if stop_first:
                    break
            else:
                passed += 1
                print('PASS %s (%.1fs)' % (label, time.monotonic() - start),
                      flush=True)
    finally:
        stack.stop(keep=keep)
    print('# %s: %d passed, %d failed in %.0fs' % (
        shown, passed, failed, time.monotonic() - t0), flush=True)
    return passed, failed


# Started first when -j is above 1, the slowest first, so that no long
# module is left to run alone at the end (times of a normal build on two
# cores; any module not named here follows in name order).
SLOW_FIRST = ('test_invite', 'test_limits', 'test_resilience', 'test_life',
              'test_webhook', 'test_delivery', 'test_browser', 'test_waits')


def run_parallel(names, engines, args, jobs):
    """Each module on each engine in a child run.py (RI_E2E_DB), at most
    jobs at once; a child's output is printed whole when it ends.
    Returns (passed, failed)."""
    order = [(n, e) for n in SLOW_FIRST if n in names for e in engines] + \
        [(n, e) for n in names if n not in SLOW_FIRST for e in engines]
    base = [sys.executable, os.path.abspath(__file__)]
    if args.pattern is not None:
        base += ['-k', args.pattern]
    if args.skip:
        base += ['--skip', args.skip, '--quiet-skip']
    if args.x:
        base += ['-x']
    running = []
    passed = failed = 0
    while order or running:
        while order and len(running) < jobs:
            name, engine = order.pop(0)
            out = tempfile.TemporaryFile(mode='w+')
            env = dict(os.environ, RI_E2E_DB=engine)
            running.append((name, engine, out, subprocess.Popen(
                base + [name], stdout=out, stderr=subprocess.STDOUT,
                env=env)))
        time.sleep(0.2)
        for item in list(running):
            name, engine, out, proc = item
            if proc.poll() is None:
                continue
            running.remove(item)
            out.seek(0)
            text = out.read()
            out.close()
            lines = text.rstrip('\n').split('\n')
            last = lines[-1].split() if lines else []
            # A summary counts only with the exit status it implies: a
            # child that died after printing it (a crash at exit) fails.
            if (len(last) == 4 and last[1] == 'passed,' and
                    last[3] == 'failed' and last[0].isdigit() and
                    last[2].isdigit() and proc.returncode ==
                    (1 if int(last[2]) else 0)):
                print('\n'.join(l for l in lines[:-1]
                                if not l.startswith('# failed: ')),
                      flush=True)
                FAILED.extend(l[len('# failed: '):] for l in lines
                              if l.startswith('# failed: '))
                passed += int(last[0])
                failed += int(last[2])
            else:
                print(text, end='')
                print('FAIL %s[%s] (no summary, exit %d)' % (
                    name, engine, proc.returncode), flush=True)
                FAILED.append('%s[%s] (no summary)' % (name, engine))
                failed += 1
            if failed and args.x:
                # SIGINT: KeyboardInterrupt in the child, so that its
                # stack.stop() still runs (SIGTERM would skip it).
                for _, _, o, p in running:
                    p.send_signal(signal.SIGINT)
                    p.wait()
                    o.close()
                return passed, failed
    return passed, failed


def main():
    p = argparse.ArgumentParser()
    p.add_argument('-k', dest='pattern', help='run tests whose name '
                   'contains this substring')
    p.add_argument('-x', action='store_true', help='stop at first failure')
    p.add_argument('--skip', default='', help='modules or tests to leave '
                   'out, comma-separated (test_browser,test_limits.'
                   'test_cooldown)')
    p.add_argument('--quiet-skip', action='store_true',
                   help=argparse.SUPPRESS)
    p.add_argument('-j', dest='jobs', type=int, default=1,
                   help='modules run at once (default 1)')
    p.add_argument('--engines', default=harness.ENGINE,
                   help='run the suite on each of these, comma-separated: '
                   'sqlite, postgresql (default: RI_E2E_DB, else sqlite)')
    p.add_argument('modules', nargs='*', help='run only these modules')
    args = p.parse_args()
    skip = set(filter(None, args.skip.split(',')))
    names = sorted(f[:-3] for f in os.listdir(HERE)
                   if f.startswith('test_') and f.endswith('.py'))
    for m in args.modules:
        if m not in names:
            p.error('no module %s' % m)
    for s in sorted(skip):
        mod, _, fn = s.partition('.')
        # test_x[postgresql]: on that engine only.
        mod, _, engine = mod.partition('[')
        if engine and engine.rstrip(']') not in harness.ENGINES:
            p.error('--skip: no engine %s' % engine.rstrip(']'))
        if mod not in names or (fn and not callable(getattr(
                importlib.import_module(mod), fn, None))):
            p.error('--skip: no module or test %s' % s)
        if not args.quiet_skip:
            print('# %s: skipped (--skip)' % s)
    names = [n for n in (args.modules or names) if n not in skip]
    engines = args.engines.split(',')
    for e in engines:
        if e not in harness.ENGINES:
            p.error('--engines: sqlite or postgresql, not %s' % e)
    passed = failed = 0
    if args.jobs > 1 and len(names) * len(engines) > 1:
        passed, failed = run_parallel(names, engines, args, args.jobs)
    else:
        for engine in engines:
            harness.ENGINE = engine
            for name in names:
                p_, f_ = run_module(name, args.pattern, args.x, skip)
                passed += p_
                failed += f_
                if failed and args.x:
                    break
            if failed and args.x:
                break
    for r in harness.REPORTS:
        print('FAIL sanitizer/valgrind report: %s' % r)
    failed += len(harness.REPORTS)
    # The failures named again last, so that a log cut to its tail (a CI
    # summary) still says which tests failed.
    for name in FAILED:
        print('# failed: %s' % name)
    print('%d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
