#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 5, item 2 (musl): a statically linked musl program (resolve.c,
`musl-gcc -static`) in the test cgroup resolves a name through a real
dnsmasq in a network namespace; musl's own stub resolver sends the
queries, so no glibc uprobe can see it. The connection it then makes
still gets the name, via "packet", source "same-process"; the getaddrinfo
counters do not move. Also a CNAME through musl: the chain comes back."""
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dnsharness import RESOLVE_C, Skip, check, check_static_case, run_cases  # noqa: E402


def test_musl_static(env):
    musl = shutil.which("musl-gcc")
    if not musl:
        raise Skip("no musl-gcc (apt-get install musl-tools)")
    exe = os.path.join(env.tmp, "resolve-musl")
    r = env.run([musl, "-static", "-O2", "-Wall", "-o", exe, RESOLVE_C])
    check(r.returncode == 0, "musl-gcc -static failed", r.stderr)
    r = env.run(["file", exe]) if shutil.which("file") else None
    check(r is None or "statically linked" in r.stdout, "resolve-musl is not static", r and r.stdout)
    cl = env.start()
    ns = env.new_netns()
    ns.dnsmasq("--host-record=static.example.test,127.0.0.5",
               "--host-record=real.example.test,127.0.0.6",
               "--cname=alias.example.test,real.example.test")
    check_static_case(env, cl, ns, exe, "musl static")
    check_static_case(env, cl, ns, exe, "musl static CNAME", name="alias.example.test",
                      ip="127.0.0.6", chain=["alias.example.test", "real.example.test"])


run_cases([test_musl_static], "musl")
