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

--skip leaves out whole modules (test_browser) or single tests
(test_limits.test_cooldown); .ci/run uses it for the second, sanitizer
build.
"""

import argparse
import importlib
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True      # no __pycache__ in the source tree

import harness  # noqa: E402


def tests_of(module, pattern):
    fns = [f for name, f in vars(module).items()
           if name.startswith('test_') and callable(f) and
           getattr(f, '__module__', None) == module.__name__]
    fns.sort(key=lambda f: f.__code__.co_firstlineno)
    return [f for f in fns if pattern is None or pattern in f.__name__]


def run_module(name, pattern, stop_first, skip=()):
    module = importlib.import_module(name)
    fns = [f for f in tests_of(module, pattern)
           if '%s.%s' % (name, f.__name__) not in skip]
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
            print('FAIL %s.%s (stack did not start)' % (name, f.__name__))
        print(msg, flush=True)
        return 0, len(fns)
    keep = False
    try:
        for f in fns:
            label = '%s.%s' % (name, f.__name__)
            start = time.monotonic()
            try:
                f(stack)
            except Exception:
                failed += 1
                keep = True
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
        name, passed, failed, time.monotonic() - t0), flush=True)
    return passed, failed


def main():
    p = argparse.ArgumentParser()
    p.add_argument('-k', dest='pattern', help='run tests whose name '
                   'contains this substring')
    p.add_argument('-x', action='store_true', help='stop at first failure')
    p.add_argument('--skip', default='', help='modules or tests to leave '
                   'out, comma-separated (test_browser,test_limits.'
                   'test_cooldown)')
    args = p.parse_args()
    skip = set(filter(None, args.skip.split(',')))
    names = sorted(f[:-3] for f in os.listdir(HERE)
                   if f.startswith('test_') and f.endswith('.py'))
    for s in sorted(skip):
        mod, _, fn = s.partition('.')
        if mod not in names or (fn and not callable(getattr(
                importlib.import_module(mod), fn, None))):
            p.error('--skip: no module or test %s' % s)
        print('# %s: skipped (--skip)' % s)
    names = [n for n in names if n not in skip]
    passed = failed = 0
    for name in names:
        p_, f_ = run_module(name, args.pattern, args.x, skip)
        passed += p_
        failed += f_
        if failed and args.x:
            break
    for r in harness.REPORTS:
        print('FAIL sanitizer/valgrind report: %s' % r)
    failed += len(harness.REPORTS)
    print('%d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
