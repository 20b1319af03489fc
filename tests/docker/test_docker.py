#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 6, item 1, against a real dockerd.

A private dockerd (data root, exec root, socket, containerd namespace and
cgroup parent all unique to this run; ../shared/PEERS.md "A Docker
engine (real)") runs a busybox-static container that connects to a listener
on the host through the docker0 bridge (no NAT: --iptables=false). The
loader is attached to the cgroup parent only; connpid-queryd talks to this
dockerd's socket. Checks:

  1. `connpidctl --json lookup` of the container's flow names the container:
     id (from the cgroup path), runtime docker, docker "ok", name, image,
     compose project (a label).
  2. `docker rename`: within 2 s the answer carries the new name.
  3. dockerd stopped: the lookup still answers (comm, pid, container id) and
     says container.docker == "unavailable", with no name or image; still so
     after queryd's reconnect timer has fired.

Everything this test creates is removed in a finally block, by pid and by
name: containers, dockerd (pidfile), leftover containerd/shims (matched by
this run's exec root or containerd namespace), processes left in the cgroup
parent, mounts under the temp dir, docker0, the cgroup parent in every
hierarchy, the pins, the temp dir. Exit codes: 0 pass, 1 fail, 77 skip.
"""
import ctypes
import http.client
import io
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tarfile
import tempfile
import time

IMAGE = "local/busybox"
APPLETS = ("sh", "nc", "sleep", "cat")
COMPOSE = "cpt-proj"


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import Interrupted, Skip, binary, cgroup2_mount, check, check_eq, log, mounts  # noqa: E402,F401
from harness import cmdline_of as cmdline, pid_alive  # noqa: E402

harness.set_log_name("docker")


def elf_is_static(path):
    """True when the ELF file has no PT_INTERP (no dynamic loader needed)."""
    with open(path, "rb") as f:
        hdr = f.read(64)
        if hdr[:4] != b"\x7fELF":
            return False
        is64 = hdr[4] == 2
        end = "<" if hdr[5] == 1 else ">"
        if is64:
            phoff, = struct.unpack(end + "Q", hdr[32:40])
            phentsize, phnum = struct.unpack(end + "HH", hdr[54:58])
        else:
            phoff, = struct.unpack(end + "I", hdr[28:32])
            phentsize, phnum = struct.unpack(end + "HH", hdr[42:46])
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            p_type, = struct.unpack(end + "I", f.read(4))
            if p_type == 3:  # PT_INTERP
                return False
    return True


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=5):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


def docker_ping(sock_path):
    try:
        c = UnixHTTPConnection(sock_path, timeout=2)
        c.request("GET", "/_ping")
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status == 200 and body.strip() == b"OK"
    except (OSError, http.client.HTTPException):
        return False


def read_pids(path):
    try:
        with open(path) as f:
            return [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        return []


def wait_gone(pids, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(pid_alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


def link_exists(name):
    return os.path.exists("/sys/class/net/" + name)


class DockerTest:
    def __init__(self):
        uniq = "%d-%04x" % (os.getpid(), random.getrandbits(16))
        self.cg_parent = "/connpid-test-docker-" + uniq
        self.ns = "cpt-" + uniq
        self.pin_dir = "/sys/fs/bpf/cpd-" + uniq
        self.cg2 = cgroup2_mount()
        self.cg_dir = (self.cg2 or "") + self.cg_parent
        self.tmp = None
        self.dockerd = None
        self.queryd = None
        self.listener = None
        self.conns = []
        self.loaded = False
        self.made_docker0 = False
        # Host paths dockerd 20.10 and the runc shim create outside the data
        # and exec roots: removed afterwards if this run made them.
        self.host_files = ["/etc/docker/key.json"]
        self.host_dirs = ["/etc/docker", "/run/docker/plugins", "/run/docker",
                          "/run/containerd/s", "/run/containerd"]
        self.host_existed = {p for p in self.host_files + self.host_dirs if os.path.lexists(p)}

    # --- tools ---------------------------------------------------------------

    def import_image(self, image, applets, extra=()):
        """docker import of an image without a registry: busybox-static as
        /bin/busybox, /bin/APPLET links to it, extra (path, name in the
        image) files."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            d = tarfile.TarInfo("bin")
            d.type, d.mode = tarfile.DIRTYPE, 0o755
            t.addfile(d)
            t.add(self.busybox, arcname="bin/busybox")
            for path, name in extra:
                t.add(path, arcname=name)
            for a in applets:
                ln = tarfile.TarInfo("bin/" + a)
                ln.type, ln.linkname = tarfile.SYMTYPE, "busybox"
                t.addfile(ln)
        self.docker("import", "-", image, input=buf.getvalue(), timeout=120)

    def docker(self, *args, timeout=60, check_rc=True, **kw):
        env = dict(os.environ, DOCKER_CONFIG=os.path.join(self.tmp, "cli"))
        env.pop("DOCKER_HOST", None)
        env.pop("DOCKER_CONTEXT", None)
        r = subprocess.run([self.docker_cli, "-H", "unix://" + self.sock_docker] + list(args),
                           capture_output=True, timeout=timeout, env=env, **kw)
        if check_rc:
            check(r.returncode == 0, "docker %s failed (rc %d)" % (" ".join(args), r.returncode),
                  r.stderr.decode(errors="replace").strip(), self.dockerd_log())
        return r

    def dockerd_log(self):
        try:
            with open(os.path.join(self.tmp, "log"), errors="replace") as f:
                return "dockerd log tail:\n" + f.read()[-3000:]
        except (OSError, TypeError):
            return ""

    def queryd_log(self):
        try:
            with open(os.path.join(self.tmp, "queryd.log"), errors="replace") as f:
                return "queryd log tail:\n" + f.read()[-3000:]
        except (OSError, TypeError):
            return ""

    def ctl_lookup(self, dst, sport, dport):
        r = subprocess.run([binary("CONNPIDCTL"), "--socket", self.sock_q, "--json", "lookup",
                            dst, str(sport), str(dport)], capture_output=True, text=True, timeout=30)
        try:
            ans = json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else None
        except ValueError:
            ans = None
        check(ans is not None, "connpidctl lookup printed no JSON (rc %d)" % r.returncode,
              r.stdout, r.stderr, self.queryd_log())
        return r.returncode, ans

    # --- setup ---------------------------------------------------------------

    def preflight(self):
        if os.geteuid() != 0:
            raise Skip("needs root (bpf, cgroups, dockerd)")
        if not os.path.exists("/sys/kernel/btf/vmlinux"):
            raise Skip("no BTF at /sys/kernel/btf/vmlinux")
        if not self.cg2:
            raise Skip("no cgroup2 mount in /proc/self/mountinfo")
        for v in ("CONNPID_LOADER", "CONNPID_QUERYD", "CONNPIDCTL"):
            binary(v)
        self.dockerd_bin = shutil.which("dockerd") or shutil.which("dockerd", path="/usr/sbin:/sbin")
        if not self.dockerd_bin:
            raise Skip("dockerd not installed (apt-get install docker.io; tests/install-deps.sh)")
        self.docker_cli = shutil.which("docker")
        if not self.docker_cli:
            raise Skip("docker CLI not installed (apt-get install docker.io)")
        self.busybox = None
        for p in (shutil.which("busybox"), "/bin/busybox", "/usr/bin/busybox"):
            if p and os.path.exists(p):
                self.busybox = os.path.realpath(p)
                break
        if not self.busybox:
            raise Skip("busybox not installed (apt-get install busybox-static)")
        if not elf_is_static(self.busybox):
            raise Skip("%s is dynamically linked: the image needs busybox-static" % self.busybox)
        if link_exists("docker0"):
            raise Skip("a docker0 link already exists (another dockerd?): not touching it")

    def setup(self):
        # short path: containerd's sockets live under the exec root
        self.tmp = tempfile.mkdtemp(prefix="cpd-", dir="/tmp")
        self.sock_docker = os.path.join(self.tmp, "docker.sock")
        self.sock_q = os.path.join(self.tmp, "q.sock")
        os.mkdir(os.path.join(self.tmp, "cli"))
        cfg = os.path.join(self.tmp, "daemon.json")
        with open(cfg, "w") as f:
            f.write("{}\n")   # never the host's /etc/docker/daemon.json
        log("tmp %s cgroup parent %s pins %s ns %s" % (self.tmp, self.cg_parent, self.pin_dir, self.ns))
        os.mkdir(self.cg_dir)

        # 1. dockerd, as in PEERS.md, with everything private to this run
        args = [self.dockerd_bin, "--config-file=" + cfg,
                "--data-root=" + os.path.join(self.tmp, "data"),
                "--exec-root=" + os.path.join(self.tmp, "exec"),
                "--pidfile=" + os.path.join(self.tmp, "pid"),
                "-H", "unix://" + self.sock_docker,
                "--containerd-namespace=" + self.ns,
                "--containerd-plugins-namespace=" + self.ns + "-p",
                "--storage-driver=vfs",
                "--iptables=false", "--ip-forward=false", "--ip-masq=false",
                "--exec-opt", "native.cgroupdriver=cgroupfs",
                "--cgroup-parent=" + self.cg_parent]
        self.made_docker0 = True   # docker0 did not exist (preflight): ours from here on
        logf = open(os.path.join(self.tmp, "log"), "wb")
        self.dockerd = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        logf.close()
        deadline = time.monotonic() + 60
        while not docker_ping(self.sock_docker):
            check(self.dockerd.poll() is None, "dockerd exited (rc %r)" % self.dockerd.returncode,
                  self.dockerd_log())
            check(time.monotonic() < deadline, "dockerd not answering /_ping after 60 s", self.dockerd_log())
            time.sleep(0.1)
        log("dockerd up, pid", self.dockerd.pid)

        # 2. an image without a registry: busybox-static
        self.import_image(IMAGE, APPLETS)

        # 3. connpid on the cgroup parent only
        r = subprocess.run([binary("CONNPID_LOADER"), "--pin-dir", self.pin_dir, "--cgroup", self.cg_dir],
                           capture_output=True, text=True, timeout=60)
        self.loaded = True
        check(r.returncode == 0, "connpid-loader failed (rc %d)" % r.returncode, r.stderr)
        qlog = open(os.path.join(self.tmp, "queryd.log"), "wb")
        self.queryd = subprocess.Popen([binary("CONNPID_QUERYD"), "--pin-dir", self.pin_dir,
                                        "--socket", self.sock_q, "--no-store",
                                        "--docker-socket", self.sock_docker],
                                       stdout=qlog, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        qlog.close()
        deadline = time.monotonic() + 15
        while True:
            check(self.queryd.poll() is None, "queryd exited (rc %r)" % self.queryd.returncode, self.queryd_log())
            r = subprocess.run([binary("CONNPIDCTL"), "--socket", self.sock_q, "ping"],
                               capture_output=True, text=True, timeout=10)
            if r.returncode == 0:
                break
            check(time.monotonic() < deadline, "queryd not answering ping after 15 s", r.stderr, self.queryd_log())
            time.sleep(0.05)
        log("queryd up, pid", self.queryd.pid)

    # --- the test ------------------------------------------------------------

    def bridge_ip(self):
        r = subprocess.run(["ip", "-j", "-4", "addr", "show", "dev", "docker0"],
                           capture_output=True, text=True, timeout=10)
        check(r.returncode == 0, "ip addr show docker0 failed", r.stderr)
        for link in json.loads(r.stdout or "[]"):
            for a in link.get("addr_info", []):
                if a.get("family") == "inet":
                    return a["local"]
        raise AssertionError("docker0 has no IPv4 address: %s" % r.stdout)

    def wait_answer(self, what, dst, sport, dport, done, timeout, allowed_states):
        """Poll the lookup until done(flow); every answer on the way must be
        found-or-not-yet-indexed and have a docker state in allowed_states."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            rc, ans = self.ctl_lookup(dst, sport, dport)
            flow = ans.get("flow") if ans.get("found") else None
            cont = (flow or {}).get("container") or {}
            state = cont.get("docker")
            seen.append((rc, ans.get("found"), state, cont.get("name")))
            if flow is not None:
                check(rc == 0, "%s: found, but connpidctl exited %d" % (what, rc), ans)
                check(state in allowed_states, "%s: container.docker %r not in %r" % (what, state, allowed_states),
                      json.dumps(ans))
                if done(flow):
                    log("%s: after %d answer(s): %s" % (what, len(seen), seen[-3:]))
                    return flow
            else:
                check(ans.get("ok") is True and rc == 1,
                      "%s: lookup failed rather than answering found/not found (rc %d)" % (what, rc), ans)
            check(time.monotonic() < deadline, "%s: not done after %.1f s" % (what, timeout),
                  "answers (rc, found, docker, name): %s" % seen[-10:], json.dumps(ans), self.queryd_log())
            time.sleep(0.1)

    def run(self):
        gw = self.bridge_ip()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("0.0.0.0", 0))
        self.listener.listen(16)
        self.listener.settimeout(20)
        port = self.listener.getsockname()[1]
        log("bridge %s, host listener on 0.0.0.0:%d" % (gw, port))

        r = self.docker("run", "-d", "--name", "web1", "--label", "com.docker.compose.project=" + COMPOSE,
                        "--stop-timeout", "1", IMAGE, "sh", "-c", "nc %s %d & sleep 60" % (gw, port))
        cid = r.stdout.decode().strip()
        check(len(cid) == 64 and all(c in "0123456789abcdef" for c in cid), "docker run printed no id", cid)
        cont_cg = os.path.join(self.cg_dir, cid)
        check(os.path.isdir(cont_cg), "container cgroup %s missing in the cgroup2 hierarchy" % cont_cg)
        insp = json.loads(self.docker("inspect", cid).stdout)[0]
        cip = insp["NetworkSettings"]["IPAddress"]

        conn, peer = self.listener.accept()
        self.conns.append(conn)
        log("container %s (%s) connected from %s:%d" % (cid[:12], cip, peer[0], peer[1]))
        check_eq(peer[0], cip, "peer address (no NAT: the container's own address)")
        sport = peer[1]

        # 1. the answer names the container
        f = self.wait_answer("first answer", gw, sport, port,
                             lambda fl: (fl.get("container") or {}).get("docker") == "ok", 10,
                             ("pending", "ok"))
        check_eq((f["proto"], f["dst"], f["sport"], f["dport"]), ("tcp", gw, sport, port), "flow key")
        check_eq(f["comm"], "nc", "comm")
        check_eq(f.get("cgroup"), self.cg_parent + "/" + cid, "cgroup path")
        c = f["container"]
        check_eq(c.get("id"), cid, "container.id")
        check_eq(c.get("runtime"), "docker", "container.runtime")
        check_eq(c.get("name"), "web1", "container.name")
        check_eq(c.get("image"), IMAGE, "container.image")
        check_eq(c.get("compose_project"), COMPOSE, "container.compose_project")
        pid, comm = f["pid"], f["comm"]

        # 2. renamed: the next answer (within 2 s) has the new name
        self.docker("rename", "web1", "web2")
        t0 = time.monotonic()
        f = self.wait_answer("after rename", gw, sport, port,
                             lambda fl: (fl.get("container") or {}).get("name") == "web2", 2, ("ok",))
        log("new name after %.2f s" % (time.monotonic() - t0))
        c = f["container"]
        check_eq((c.get("id"), c.get("image"), c.get("compose_project")), (cid, IMAGE, COMPOSE),
                 "container id/image/compose after rename")

        # 3. Docker stopped (as `systemctl stop docker` would)
        dpid = self.dockerd_pid()
        os.kill(dpid, signal.SIGTERM)
        try:
            self.dockerd.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError("dockerd did not stop within 30 s of SIGTERM\n" + self.dockerd_log())
        log("dockerd stopped (rc %r)" % self.dockerd.returncode)
        check(not docker_ping(self.sock_docker), "Docker still answers after stopping")

        def no_docker(fl):
            c = fl.get("container") or {}
            return c.get("docker") == "unavailable"
        for what, wait_first in (("docker stopped", 0), ("docker stopped, after queryd's retry", 2.5)):
            time.sleep(wait_first)
            f = self.wait_answer(what, gw, sport, port, no_docker, 3, ("ok", "unavailable"))
            check_eq((f["pid"], f["comm"], f["sport"], f["dport"]), (pid, comm, sport, port),
                     "%s: flow still answered" % what)
            c = f.get("container")
            check(isinstance(c, dict), "%s: container object gone" % what, json.dumps(f))
            check_eq((c.get("id"), c.get("runtime")), (cid, "docker"), "%s: container id/runtime" % what)
            for k in ("name", "image", "compose_project"):
                check(k not in c or c[k] is None, "%s: container.%s still given without Docker" % (what, k),
                      json.dumps(c))
        check(self.queryd.poll() is None, "queryd died", self.queryd_log())

    # --- cleanup -------------------------------------------------------------

    def dockerd_pid(self):
        pids = read_pids(os.path.join(self.tmp, "pid")) if self.tmp else []
        if pids and pid_alive(pids[0]) and self.tmp in cmdline(pids[0]):
            return pids[0]
        return self.dockerd.pid

    def cgroup_dirs(self):
        """This run's cgroup parent in every hierarchy, deepest first."""
        out = []
        for mp, fs in mounts():
            if fs not in ("cgroup", "cgroup2"):
                continue
            top = mp + self.cg_parent
            if not os.path.isdir(top):
                continue
            for d, _, _ in os.walk(top, topdown=False):
                out.append(d)
        return out

    def our_processes(self):
        """Leftovers of this run: containerd and shims (exec root, data root
        or namespace in their command line), anything in our cgroups."""
        me = os.getpid()
        pids = set()
        for d in self.cgroup_dirs():
            pids.update(read_pids(os.path.join(d, "cgroup.procs")))
        for e in os.listdir("/proc"):
            if not e.isdigit() or int(e) == me:
                continue
            cl = cmdline(int(e))
            if (self.tmp and self.tmp + "/" in cl) or (" " + self.ns + " " in " " + cl + " "):
                pids.add(int(e))
        pids.discard(me)
        return sorted(p for p in pids if pid_alive(p))

    def cleanup(self):
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        problems = []

        def step(what, fn):
            try:
                fn()
            except Exception as e:
                problems.append("%s: %s" % (what, e))

        def stop_containers():
            if self.dockerd and self.dockerd.poll() is None and docker_ping(self.sock_docker):
                r = self.docker("ps", "-aq", check_rc=False, timeout=30)
                ids = r.stdout.decode().split()
                if ids:
                    self.docker("rm", "-f", *ids, check_rc=False, timeout=60)

        def stop_dockerd():
            if not self.dockerd:
                return
            if self.dockerd.poll() is None:
                pid = self.dockerd_pid()
                os.kill(pid, signal.SIGTERM)
                try:
                    self.dockerd.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.kill(self.dockerd.pid, signal.SIGKILL)
                    self.dockerd.wait(timeout=10)

        def stop_queryd():
            if self.queryd and self.queryd.poll() is None:
                self.queryd.terminate()
                try:
                    self.queryd.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.queryd.kill()
                    self.queryd.wait(timeout=10)

        def kill_leftovers():
            for attempt in range(3):
                pids = self.our_processes()
                if not pids:
                    return
                log("cleanup: killing leftovers %s" % ["%d:%s" % (p, cmdline(p)[:60]) for p in pids])
                for p in pids:
                    try:
                        os.kill(p, signal.SIGKILL)
                    except OSError:
                        pass
                wait_gone(pids, 5)
            left = self.our_processes()
            if left:
                raise RuntimeError("processes left: %s" % left)

        def unmount_tmp():
            if not self.tmp:
                return
            libc = ctypes.CDLL(None, use_errno=True)
            for _ in range(3):
                mps = [mp for mp, _ in mounts() if mp == self.tmp or mp.startswith(self.tmp + "/")]
                if not mps:
                    return
                for mp in reversed(mps):
                    if libc.umount2(mp.encode(), 2) != 0:   # MNT_DETACH
                        log("cleanup: umount %s: %s" % (mp, os.strerror(ctypes.get_errno())))
            raise RuntimeError("mounts left under %s" % self.tmp)

        def del_docker0():
            if not self.made_docker0 or not link_exists("docker0"):
                return
            r = subprocess.run(["ip", "-j", "link", "show", "master", "docker0"],
                               capture_output=True, text=True, timeout=10)
            for l in json.loads(r.stdout or "[]") if r.returncode == 0 else []:
                subprocess.run(["ip", "link", "del", l["ifname"]], capture_output=True, timeout=10)
            r = subprocess.run(["ip", "link", "del", "docker0"], capture_output=True, text=True, timeout=10)
            if r.returncode != 0 and link_exists("docker0"):
                raise RuntimeError("ip link del docker0: " + r.stderr.strip())

        def unload():
            if self.loaded or os.path.isdir(self.pin_dir):
                r = subprocess.run([os.environ.get("CONNPID_LOADER", "connpid-loader"), "--unload",
                                    "--pin-dir", self.pin_dir], capture_output=True, text=True, timeout=60)
                if r.returncode != 0:
                    raise RuntimeError("unload failed: " + r.stderr.strip())
            if os.path.isdir(self.pin_dir):
                os.rmdir(self.pin_dir)

        def rmdir_cgroups():
            for _ in range(100):
                left = []
                for d in self.cgroup_dirs():
                    for p in read_pids(os.path.join(d, "cgroup.procs")):
                        try:
                            os.kill(p, signal.SIGKILL)
                        except OSError:
                            pass
                    try:
                        os.rmdir(d)
                    except OSError:
                        left.append(d)
                if not left:
                    return
                time.sleep(0.05)
            raise RuntimeError("cgroup dirs left: %s" % left)

        def rm_tmp():
            if self.tmp and os.path.exists(self.tmp):
                shutil.rmtree(self.tmp, ignore_errors=True)
                if os.path.exists(self.tmp):
                    raise RuntimeError("could not remove " + self.tmp)

        def host_paths():
            for p in self.host_files:
                if p not in self.host_existed and os.path.lexists(p):
                    os.unlink(p)
            for d in self.host_dirs:   # deepest first; only when empty
                if d not in self.host_existed and os.path.isdir(d):
                    try:
                        os.rmdir(d)
                    except OSError as e:
                        log("cleanup: leaving %s: %s" % (d, e))

        def reap_orphans():
            # after every Popen has been waited for: only orphans are left
            while True:
                try:
                    pid, _ = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    return
                if pid == 0:
                    return

        step("stop containers", stop_containers)
        step("stop dockerd", stop_dockerd)
        step("stop queryd", stop_queryd)
        for s in self.conns + ([self.listener] if self.listener else []):
            step("close socket", s.close)
        step("kill leftovers", kill_leftovers)
        step("unmount", unmount_tmp)
        step("docker0", del_docker0)
        step("unload pins", unload)
        step("cgroups", rmdir_cgroups)
        step("temp dir", rm_tmp)
        step("host paths", host_paths)
        step("reap", reap_orphans)
        return problems


def main():
    harness.run_test_object(DockerTest)


if __name__ == "__main__":
    main()
