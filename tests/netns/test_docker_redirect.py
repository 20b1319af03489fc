#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 14, "Show it": a container on a Docker bridge network behind an
nftables redirect, looked up the way a transparent proxy would.

The private dockerd of ../docker/test_docker.py (DockerTest: data root,
exec root, socket, containerd namespace and cgroup parent unique to this
run, --iptables=false; connpid-loader attached to the cgroup parent, queryd
with --docker-socket; here also --bridge=none, so it never makes or
touches docker0 and may run beside another dockerd) runs two busybox
containers on a bridge network of this run (cpn-net: bridge cpn<PID>br,
subnet 10.78.X.0/24; not the host network), each running
`sport-connect 40405 198.51.100.7 80` (a static helper of this suite, as
busybox nc ignores -p when it connects):
the same source port, the same destination, so the same seed key, from two
network namespaces with two addresses. This test's own nftables table
(cpn<PID>_dk, ip nat prerouting) redirects that traffic arriving on the bridge
to a listener on the host, which accepts, reads SO_ORIGINAL_DST and the
peer address, and asks queryd {dst, dport: the original destination; sport,
src: the peer}. Checks: each answer is the sport-connect process of the container that
made the connection (pid in its cgroup, cgroup path and container.id);
by "netns" too; the bare lookup lists both containers (flow + candidates).

Teardown: the table, the containers and the network are deleted, then
DockerTest's cleanup (dockerd, shims, mounts, pins, cgroups in every
hierarchy), then the bridge if still there; anything left fails the test."""
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "docker"))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import harness  # noqa: E402
from harness import Client, Skip, check, check_eq, log  # noqa: E402
import test_docker  # noqa: E402

harness.set_log_name("docker_redirect")

ORIG_DST, ORIG_PORT = "198.51.100.7", 80
NETWORK = "cpn-net"
IMAGE = "local/cpn-connect"
COMM = "sport-connect"
CLIENT_SPORT = 40405
SO_ORIGINAL_DST = 80


def original_dst(conn):
    raw = conn.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    port, = struct.unpack("!H", raw[2:4])
    return socket.inet_ntoa(raw[4:8]), port


class RedirectTest(test_docker.DockerTest):
    def __init__(self):
        super().__init__()
        self.table = "cpn%d_dk" % os.getpid()
        self.table_made = False
        self.bridge = "cpn%dbr" % os.getpid()
        self.subnet = None   # preflight picks one no route uses yet
        self.made_bridge = False

    def preflight(self):
        """DockerTest's, but another dockerd's docker0 is no obstacle: this
        one runs with --bridge=none and its own bridge network."""
        real_exists = test_docker.link_exists
        test_docker.link_exists = lambda name: False if name == "docker0" else real_exists(name)
        try:
            super().preflight()
        finally:
            test_docker.link_exists = real_exists
        if not shutil.which("nft"):
            raise Skip("nft not installed (apt-get install nftables)")
        self.helper = os.path.join(os.environ.get("CONNPID_BUILD_DIR", ""), "tests", "netns", "sport-connect")
        if not os.access(self.helper, os.X_OK):
            raise Skip("%s not built (it needs static linking: libc6-dev's libc.a)" % self.helper)
        if test_docker.link_exists(self.bridge):
            raise Skip("a link %s already exists" % self.bridge)
        self.subnet = self.free_subnet()

    def free_subnet(self):
        """10.78.X.0/24 with no route on this host (another run's bridge)."""
        r = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True, text=True,
                           timeout=30)
        check(r.returncode == 0, "ip route show failed", r.stderr)
        used = r.stdout
        for i in range(250):
            x = (os.getpid() + i) % 250 + 1
            if "10.78.%d." % x not in used:
                return "10.78.%d.0/24" % x
        raise Skip("no free 10.78.X.0/24 subnet for the bridge network")

    def setup(self):
        """DockerTest.setup with --bridge=none, then a user-defined bridge
        network on a bridge and subnet of this run."""
        real_popen = subprocess.Popen

        def popen(args, *a, **kw):
            if args and args[0] == self.dockerd_bin:
                args = list(args) + ["--bridge=none"]
            return real_popen(args, *a, **kw)
        # DockerTest builds dockerd's arguments inside setup(): add ours as
        # it starts. Its made_docker0 must never stay set (cleanup would
        # delete a docker0 that belongs to someone else's dockerd).
        subprocess.Popen = popen
        try:
            super().setup()
        finally:
            subprocess.Popen = real_popen
            self.made_docker0 = False
        self.docker("network", "create", "--driver", "bridge", "--subnet", self.subnet,
                    "-o", "com.docker.network.bridge.name=" + self.bridge, NETWORK)
        self.made_bridge = True
        # busybox plus the static sport-connect (busybox nc ignores -p when
        # it connects)
        self.import_image(IMAGE, ("sh", "sleep"), [(self.helper, "bin/sport-connect")])

    def lookup(self, what, timeout=5.0, **members):
        req = {"op": "lookup", "proto": "tcp"}
        req.update(members)
        deadline = time.monotonic() + timeout
        while True:
            with Client(self.sock_q) as c:
                ans = c.request(req)
            check(ans.get("ok") is True, "%s: lookup %r answered an error" % (what, members), json.dumps(ans))
            if ans.get("found"):
                return ans
            check(time.monotonic() < deadline, "%s: %r not found" % (what, members), json.dumps(ans),
                  self.queryd_log())
            time.sleep(0.1)

    def add_redirect(self, port):
        script = ("table ip %s {\n chain pre {\n  type nat hook prerouting priority dstnat; policy accept;\n"
                  "  iifname \"%s\" ip daddr %s tcp dport %d redirect to :%d\n }\n}\n"
                  % (self.table, self.bridge, ORIG_DST, ORIG_PORT, port))
        self.table_made = True
        r = subprocess.run(["nft", "-f", "-"], input=script, capture_output=True, text=True, timeout=30)
        if r.returncode != 0 and ("Could not process rule" in r.stderr or "No such file" in r.stderr):
            raise Skip("nftables nat/redirect unavailable in this kernel: %s" % r.stderr.strip())
        check(r.returncode == 0, "nft -f failed", r.stderr, script)

    def container(self, name):
        r = self.docker("run", "-d", "--name", name, "--network", NETWORK, "--stop-timeout", "1",
                        IMAGE, "sport-connect", str(CLIENT_SPORT), ORIG_DST, str(ORIG_PORT), "60")
        cid = r.stdout.decode().strip()
        insp = json.loads(self.docker("inspect", cid).stdout)[0]
        check_eq(insp["HostConfig"]["NetworkMode"], NETWORK, name + " network mode (a bridge network)")
        ip = insp["NetworkSettings"]["Networks"][NETWORK]["IPAddress"]
        pid = insp["State"]["Pid"]
        return {"name": name, "id": cid, "ip": ip, "netns": os.stat("/proc/%d/ns/net" % pid).st_ino,
                "cgroup": self.cg_parent + "/" + cid, "cgdir": os.path.join(self.cg_dir, cid)}

    def check_owner(self, f, ct, what):
        check_eq(f.get("cgroup"), ct["cgroup"], what + ": cgroup (the container's)")
        check_eq((f.get("container") or {}).get("id"), ct["id"], what + ": container.id")
        check_eq(f.get("comm"), COMM, what + ": comm")
        check(f.get("pid") in test_docker.read_pids(os.path.join(ct["cgdir"], "cgroup.procs")),
              what + ": pid %r is in the container's cgroup" % f.get("pid"))
        check_eq((f.get("src"), f.get("sport"), f.get("dst"), f.get("dport")),
                 (ct["ip"], CLIENT_SPORT, ORIG_DST, ORIG_PORT), what + ": flow key")
        check_eq(f.get("netns"), ct["netns"], what + ": netns")

    def run(self):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("0.0.0.0", 0))
        self.listener.listen(16)
        self.listener.settimeout(20)
        port = self.listener.getsockname()[1]
        self.add_redirect(port)
        log("bridge %s (%s), transparent listener on 0.0.0.0:%d, nft table ip %s"
            % (self.bridge, self.subnet, port, self.table))
        cts = [self.container("cpn-a"), self.container("cpn-b")]
        check(cts[0]["ip"] != cts[1]["ip"], "two container addresses", cts)
        by_ip = {c["ip"]: c for c in cts}
        seen = []
        for _ in cts:
            conn, peer = self.listener.accept()
            self.conns.append(conn)
            orig = original_dst(conn)
            log("accepted %s:%d, SO_ORIGINAL_DST %s:%d" % (peer + orig))
            check_eq(orig, (ORIG_DST, ORIG_PORT), "SO_ORIGINAL_DST")
            check(peer[0] in by_ip, "peer %s is one of the containers" % peer[0], cts)
            seen.append((peer, orig))
        check_eq(sorted(p[0] for p, _ in seen), sorted(by_ip), "both containers connected")
        check_eq({p[1] for p, _ in seen}, {CLIENT_SPORT}, "both used the same source port")

        pids = {}
        for peer, orig in seen:   # exactly what a transparent proxy knows
            ct = by_ip[peer[0]]
            ans = self.lookup("proxy lookup " + ct["name"], dst=orig[0], dport=orig[1], sport=peer[1],
                              src=peer[0])
            self.check_owner(ans["flow"], ct, "proxy lookup " + ct["name"])
            check("candidates" not in ans, "proxy lookup %s: unique" % ct["name"], json.dumps(ans)[:2000])
            pids[ct["id"]] = ans["flow"]["pid"]
            ans = self.lookup("netns lookup " + ct["name"], dst=orig[0], dport=orig[1], sport=peer[1],
                              netns=ct["netns"])
            self.check_owner(ans["flow"], ct, "netns lookup " + ct["name"])
        log("2/2 proxy lookups named the right container")
        ans = self.lookup("bare lookup", dst=ORIG_DST, dport=ORIG_PORT, sport=CLIENT_SPORT)
        flows = [ans["flow"]] + ans.get("candidates", [])
        check(sorted(f.get("pid") for f in flows) == sorted(pids.values()),
              "bare lookup: both containers' processes in flow + candidates", json.dumps(ans)[:3000])
        log("bare lookup: flow pid %d, candidates %s" % (ans["flow"]["pid"],
                                                         [c.get("pid") for c in ans.get("candidates", [])]))

    def cleanup(self):
        problems = []
        if self.table_made:
            r = subprocess.run(["nft", "delete", "table", "ip", self.table], capture_output=True, text=True,
                               timeout=30)
            if r.returncode != 0 and "No such file" not in r.stderr:
                problems.append("nft delete table ip %s: %s" % (self.table, r.stderr.strip()))
        if self.made_bridge and self.dockerd and self.dockerd.poll() is None:
            self.docker("rm", "-f", "cpn-a", "cpn-b", check_rc=False, timeout=60)
            self.docker("network", "rm", NETWORK, check_rc=False, timeout=60)
        if self.queryd and self.queryd.poll() is None:   # a clean exit, no sanitizer report
            self.queryd.terminate()
            try:
                rc = self.queryd.wait(timeout=10)
            except subprocess.TimeoutExpired:
                rc = "timeout"
            text = self.queryd_log()
            if rc != 0 or "Sanitizer" in text or "runtime error:" in text:
                problems.append("queryd exit %r on SIGTERM; %s" % (rc, text))
        problems += super().cleanup() or []
        if self.made_bridge and test_docker.link_exists(self.bridge):
            r = subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, text=True, timeout=30)
            if r.returncode != 0:
                problems.append("ip link del %s: %s" % (self.bridge, r.stderr.strip()))
        r = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, timeout=30)
        if self.table in r.stdout.split():
            problems.append("nft table %s left" % self.table)
        return problems


def main():
    harness.run_test_object(RedirectTest)


if __name__ == "__main__":
    main()
