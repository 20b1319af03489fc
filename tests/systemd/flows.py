#!/usr/bin/python3
"""Make loopback TCP flows and say which: one line "PID SPORT DPORT TIME" each.

Runs inside the nspawn container (python3-minimal), started by systemd-run so
it is inside the container's cgroup where connpid's programs are attached.

  flows.py once N [FILE HOLD] N flows, lines on stdout (or written to FILE,
                             then stay alive HOLD seconds so the test can map
                             the container pid to the host pid)
  flows.py churn FILE SECS   a flow every 20 ms for SECS seconds, lines
                             appended to FILE (flushed each line)
"""
import os
import socket
import sys
import time


def main():
    mode = sys.argv[1]
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(4096)
    dport = srv.getsockname()[1]
    pid = os.getpid()

    def one():
        c = socket.create_connection(("127.0.0.1", dport), timeout=5)
        sport = c.getsockname()[1]
        a, _ = srv.accept()
        a.close()
        c.close()
        return "%d %d %d %.6f\n" % (pid, sport, dport, time.time())

    if mode == "once":
        lines = "".join(one() for _ in range(int(sys.argv[2])))
        if len(sys.argv) > 4:
            with open(sys.argv[3] + ".tmp", "w") as out:
                out.write(lines)
            os.rename(sys.argv[3] + ".tmp", sys.argv[3])
            time.sleep(float(sys.argv[4]))
        else:
            sys.stdout.write(lines)
            sys.stdout.flush()
    elif mode == "churn":
        end = time.monotonic() + float(sys.argv[3])
        with open(sys.argv[2], "a") as out:
            while time.monotonic() < end:
                out.write(one())
                out.flush()
                time.sleep(0.02)
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
