#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 6, item 2: processes in cgroups named like a systemd service, a
Kubernetes pod container (systemd driver, containerd), a podman container,
a user-session app scope, and user-made cgroups named like a container
(issue 12, item 14: no container) connect; the lookup names unit / slice /
pod_uid / container {id, runtime} from the real cgroup path.

The loader attaches to the test cgroup; the named cgroups are created below
it and inherit the attachments. Each workload enters its leaf cgroup before
exec, makes a TCP connection and a connected UDP flow, and stays alive."""
import os
import secrets
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from identharness import check, log, main  # noqa: E402


def shapes():
    pod_uid = str(uuid.uuid4())
    kube_cid = secrets.token_hex(32)
    podman_cid = secrets.token_hex(32)
    fake_cid = secrets.token_hex(32)
    pod_slice = "kubepods-burstable-pod%s.slice" % pod_uid.replace("-", "_")
    return [
        # (name, path below the test cgroup, expected identity fields)
        ("systemd", "system.slice/nginx.service",
         {"unit": "nginx.service", "slice": "system.slice", "user_unit": None,
          "pod_uid": None, "container": None}),
        ("kube", "kubepods.slice/kubepods-burstable.slice/%s/cri-containerd-%s.scope"
         % (pod_slice, kube_cid),
         {"unit": None, "slice": pod_slice, "user_unit": None, "pod_uid": pod_uid,
          "container": {"id": kube_cid, "runtime": "containerd"}}),
        ("podman", "machine.slice/libpod-%s.scope" % podman_cid,
         {"unit": None, "slice": "machine.slice", "user_unit": None, "pod_uid": None,
          "container": {"id": podman_cid, "runtime": "podman"}}),
        ("user-app", "user.slice/user-1000.slice/user@1000.service/app.slice/"
         "app-org.example.Editor-4242.scope",
         {"unit": "app-org.example.Editor-4242.scope", "slice": "app.slice",
          "user_unit": "user@1000.service", "pod_uid": None, "container": None}),
        # Issue 12, item 14: container-shaped names where a user names
        # cgroups (user.slice, a delegated sub-tree) are no container
        ("user-docker", "user.slice/user-1000.slice/user@1000.service/app.slice/docker-%s.scope"
         % fake_cid,
         {"unit": "docker-%s.scope" % fake_cid, "slice": "app.slice",
          "user_unit": "user@1000.service", "pod_uid": None, "container": None}),
        ("user-kube", "user.slice/user-1000.slice/user@1000.service/kubepods/pod%s/%s"
         % (pod_uid, fake_cid),
         {"unit": None, "slice": "user-1000.slice", "user_unit": "user@1000.service",
          "pod_uid": None, "container": None}),
    ]


def test(env):
    lport, uport, cl = env.start()
    failures = []
    for name, rel, want in shapes():
        cgdir = env.subcgroup(rel)
        cgroup_id = os.stat(cgdir).st_ino
        cgroup_path = "/" + os.path.relpath(cgdir, env.mount)
        w = env.workload(cgdir, comm="id-" + name)
        t = w.cmd({"cmd": "tcp", "host": "127.0.0.1", "port": lport})
        u = w.cmd({"cmd": "udpc", "host": "127.0.0.1", "port": uport})
        for proto, c, dport in (("tcp", t, lport), ("udp", u, uport)):
            f = cl.lookup(proto, "127.0.0.1", c["sport"], dport)
            got = {k: f.get(k) for k in want}
            got_base = (f.get("pid"), f.get("comm"), f.get("cgroup_id"), f.get("cgroup"))
            want_base = (w.pid, "id-" + name, cgroup_id, cgroup_path)
            if got_base != want_base:
                failures.append("%s/%s: (pid, comm, cgroup_id, cgroup) = %r, want %r"
                                % (name, proto, got_base, want_base))
            if got != want:
                failures.append("%s/%s: identity %r, want %r" % (name, proto, got, want))
            else:
                log("%s/%s: ok %r" % (name, proto, got))
    check(not failures, "wrong identity from cgroup paths", *failures)


if __name__ == "__main__":
    main(test, "cgnames")
