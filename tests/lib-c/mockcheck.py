# SPDX-License-Identifier: GPL-2.0-or-later
"""Checks of the tests against a MOCK daemon (test_ctl_scope.py,
tests/squid/test_helper_src.py): each prints "ok:" or "FAIL:" and
counts, so that one run names every failing check; exit_status() ends
the test (0 all passed, 1 any failed)."""
import os
import tempfile

failures = 0


def binary(var):
    """The program the environment variable var names; None, the skip
    said, when it is not built."""
    path = os.environ.get(var, "")
    if not path or not os.path.exists(path):
        print("SKIP: %s is not built" % var)
        return None
    return path


def check(cond, what, detail=""):
    global failures
    if cond:
        print("ok: %s" % what)
    else:
        failures += 1
        print("FAIL: %s %s" % (what, detail))


def exit_status():
    print("FAIL: %d" % failures if failures else "PASS")
    return 1 if failures else 0


def run(var, prefix, scenarios):
    """The test: scenarios(tmp) in a private temporary folder, then the
    exit status; 77 (skipped) when var names no built program."""
    if not binary(var):
        return 77
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        scenarios(tmp)
    return exit_status()
