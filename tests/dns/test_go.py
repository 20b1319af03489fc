#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 5, item 2 (Go): a Go program built CGO_ENABLED=0 (resolve.go,
net.Resolver{PreferGo: true}, run with GODEBUG=netdns=go) in the test
cgroup resolves a name through a real dnsmasq in a network namespace; Go's
own resolver sends the queries (A and AAAA in parallel, each from its own
connected UDP socket), no libc involved. The connection it then makes
still gets the name, via "packet", source "same-process"; the getaddrinfo
counters do not move. Skipped (77) with the reason printed when Go is not
installed or cannot build offline."""
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dnsharness import RESOLVE_GO, Skip, check_static_case, run_cases  # noqa: E402


def test_go_pure_resolver(env):
    go = shutil.which("go")
    if not go:
        raise Skip("no Go toolchain (apt-get install golang-go)")
    exe = os.path.join(env.tmp, "resolve-go")
    home = os.path.join(env.tmp, "gohome")
    os.makedirs(home)
    goenv = dict(os.environ, HOME=home, GOCACHE=os.path.join(home, "cache"),
                 GOPATH=os.path.join(home, "path"), GOPROXY="off", GOFLAGS="-mod=mod",
                 GO111MODULE="auto", CGO_ENABLED="0")
    r = env.run([go, "build", "-o", exe, RESOLVE_GO], env=goenv, timeout=300)
    if r.returncode != 0:
        raise Skip("go build (CGO_ENABLED=0, offline) failed: %s" % r.stderr.strip()[-500:])
    cl = env.start()
    ns = env.new_netns()
    ns.dnsmasq("--host-record=static.example.test,127.0.0.5",
               "--host-record=real.example.test,127.0.0.6",
               "--cname=alias.example.test,real.example.test")
    godebug = {"GODEBUG": "netdns=go"}
    check_static_case(env, cl, ns, exe, "Go pure resolver", extra_env=godebug)
    check_static_case(env, cl, ns, exe, "Go pure resolver CNAME", name="alias.example.test",
                      ip="127.0.0.6", chain=["alias.example.test", "real.example.test"],
                      extra_env=godebug)


run_cases([test_go_pure_resolver], "go")
