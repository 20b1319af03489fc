# SPDX-License-Identifier: GPL-2.0-or-later
"""Minimal client for the connpid-queryd socket protocol.

Standard library only. The protocol is JSON lines over a Unix stream socket
(default /run/connpid.sock): one request object per line, one answer object
per line, answers in order, every answer has "ok". Requests carry an
incrementing "id" which the daemon echoes; answers are matched by it.

    from connpid_client import ConnpidClient
    with ConnpidClient() as c:
        flow = c.lookup("tcp", "142.250.80.46", 54321, 443)
        if flow:
            print(flow["pid"], flow["comm"], flow["exe"])

One ConnpidClient keeps one persistent connection and may be shared between
threads (calls are serialized by a lock). If the daemon went away since the
last call (restart, crash) the request is retried once on a fresh
connection. After a timeout the connection is dropped, so a late answer can
never be taken for the answer to a later request.

Everything the socket sends is treated as untrusted input. An answer line
must be strict JSON (no NaN/Infinity) in valid UTF-8 and at most
MAX_ANSWER_BYTES (16 MiB, newline excluded; `max_answer_bytes=` changes
it), whose strings are valid Unicode (no lone \\uD800-style surrogate);
anything else is reported as ConnpidProtocolError with code
"bad_answer" and never escapes as another exception. A request that gets
such an answer raises it and drops the connection (the stream may be out
of sync); a watch stream skips the line, counts it in
ConnpidClient.watch_skipped, reports it (on_bad_answer callback, else a
warning on the "connpid_client" logger) and goes on.
"""

import ipaddress
import json
import logging
import os
import re
import select
import socket
import threading
import time

__all__ = [
    "ConnpidClient",
    "ConnpidError",
    "ConnpidUnavailable",
    "ConnpidTimeout",
    "ConnpidProtocolError",
    "DEFAULT_SOCKET",
    "check_fields",
]

__version__ = "0.1.0"

DEFAULT_SOCKET = "/run/connpid.sock"
MAX_ANSWER_BYTES = 16 << 20  # largest answer line we accept (recent can be big)

_log = logging.getLogger("connpid_client")

_PROTOS = {"tcp": "tcp", "udp": "udp", 6: "tcp", 17: "udp", "6": "tcp", "17": "udp"}


class ConnpidError(Exception):
    """Base class of every error raised by this module."""


class ConnpidUnavailable(ConnpidError):
    """The daemon cannot be reached (no socket, refused, closed on us)."""


class ConnpidTimeout(ConnpidError):
    """No complete answer within the call's timeout."""


class ConnpidProtocolError(ConnpidError):
    """The daemon answered with an error, or with something unparsable.

    code and message are the daemon's error.code / error.message for an
    {"ok":false} answer; for a malformed answer the code is "bad_answer"
    (a client-side code) and `answer` holds the offending raw line.
    """

    def __init__(self, message, code=None, answer=None):
        super().__init__(f"{code}: {message}" if code else message)
        self.code = code
        self.message = message
        self.answer = answer


class _Closed(Exception):
    """Internal: peer closed before a byte of the answer arrived."""


def _bad_answer(message, line):
    return ConnpidProtocolError(message, code="bad_answer", answer=line)


def _normalize_proto(proto):
    p = _PROTOS.get(proto if not isinstance(proto, str) else proto.lower())
    if p is None:
        raise ValueError(f"protocol must be 'tcp' or 'udp', not {proto!r}")
    return p


def _normalize_addr(addr):
    """Canonical text form; IPv4-mapped IPv6 becomes plain IPv4."""
    if isinstance(addr, (tuple, list)):
        addr = addr[0]
    addr = str(addr)
    if "%" in addr:  # fe80::1%eth0 -> scope is not part of the key
        addr = addr.split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError as e:
        raise ValueError(f"not an IP address: {addr!r}") from e
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


def _netns(value):
    if isinstance(value, bool):
        raise ValueError(f"netns must be an integer, not {value!r}")
    try:
        n = int(value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"netns must be an integer, not {value!r}") from e
    if not 1 <= n <= 0xFFFFFFFF:
        raise ValueError(f"netns out of range: {n}")
    return n


def _scope(dst, src=None, netns=None, direction=None):
    """The lookup members src/netns/direction, checked; direction is sent
    only when "inbound" (outbound is the daemon's default)."""
    out = {}
    if src is not None:
        out["src"] = _normalize_addr(src)
        if ipaddress.ip_address(out["src"]).version != ipaddress.ip_address(dst).version:
            raise ValueError(f"src {out['src']} and dst {dst} are of different families")
    if netns is not None:
        out["netns"] = _netns(netns)
    if direction not in (None, "outbound", "inbound"):
        raise ValueError(f"direction must be 'outbound' or 'inbound', not {direction!r}")
    if direction == "inbound":
        out["direction"] = "inbound"
    return out


FIELDS_MAX = 64      # a FLOW has some 40 members
FIELD_NAME_MAX = 63  # bytes; no member's name is near it


def check_fields(fields):
    """A "fields" list (connpid(7)): the FLOW members to answer with.
    Names are checked only as strings (1-63 bytes, at most 64 of them):
    which are members is the daemon's to say (invalid_argument). None:
    the whole FLOW."""
    if fields is None:
        return None
    if isinstance(fields, (str, bytes)) or not isinstance(fields, (list, tuple)):
        raise ValueError(f"fields must be a list of FLOW member names, not {fields!r}")
    if not 1 <= len(fields) <= FIELDS_MAX:
        raise ValueError(f"fields must name 1 to {FIELDS_MAX} members, not {len(fields)}")
    for f in fields:
        try:
            n = len(f.encode("utf-8")) if isinstance(f, str) else 0
        except UnicodeEncodeError:  # a lone surrogate
            n = 0
        if not 1 <= n <= FIELD_NAME_MAX:
            raise ValueError(f"a field must be a member name (1-{FIELD_NAME_MAX} bytes "
                             f"of UTF-8), not {f!r}")
    return list(fields)


def _port(value, name):
    try:
        p = int(value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be an integer, not {value!r}") from e
    if not 0 <= p <= 65535:
        raise ValueError(f"{name} out of range: {p}")
    return p


class _Conn:
    """One socket plus its read buffer."""

    def __init__(self, path, deadline):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.buf = bytearray()
        self.discarding = False  # inside an over-long line, dropping it
        try:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.001)
                                 if deadline is not None else None)
            self.sock.connect(path)
        except socket.timeout as e:
            self.close()
            raise ConnpidTimeout(f"connect to {path} timed out") from e
        except OSError as e:
            self.close()
            raise ConnpidUnavailable(f"cannot connect to {path}: "
                                     f"{e.strerror or e}") from e

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def looks_dead(self):
        """True if the peer closed the connection or sent something unasked.

        Checked before reusing an idle connection: a daemon restart shows
        up here as EOF, and unsolicited bytes mean we are out of sync.
        """
        if self.buf:
            return True
        try:
            r, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(r)  # readable while idle = EOF, error or stray data

    def send(self, data, deadline):
        self.sock.settimeout(max(deadline - time.monotonic(), 0.001)
                             if deadline is not None else None)
        self.sock.sendall(data)

    def readline(self, deadline, max_bytes=MAX_ANSWER_BYTES):
        """Return one line (without newline). Raises _Closed on EOF before
        any byte, ConnpidUnavailable on EOF mid-line, socket.timeout, and
        bad_answer for a line longer than max_bytes. After that error the
        rest of the long line is discarded as it arrives (not buffered),
        so a watch can go on with the next line."""
        got_any = bool(self.buf)
        while True:
            nl = self.buf.find(b"\n")
            if nl >= 0:
                line = bytes(self.buf[:nl])
                del self.buf[: nl + 1]
                if self.discarding:
                    self.discarding = False
                    got_any = bool(self.buf)
                    continue
                if len(line) > max_bytes:
                    raise _bad_answer(f"answer longer than {max_bytes} bytes",
                                      line[:256])
                return line
            if self.discarding:
                self.buf.clear()
            elif len(self.buf) > max_bytes:
                head = bytes(self.buf[:256])
                self.buf.clear()
                self.discarding = True
                raise _bad_answer(f"answer longer than {max_bytes} bytes", head)
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise socket.timeout("timed out")
                self.sock.settimeout(remaining)
            else:
                self.sock.settimeout(None)
            chunk = self.sock.recv(65536)
            if not chunk:
                if got_any or self.discarding:
                    raise ConnpidUnavailable("daemon closed the connection "
                                             "in the middle of an answer")
                raise _Closed()
            got_any = True
            self.buf += chunk


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")


# \uD800-\uDFFF escapes: only a real lone surrogate (no valid pair) is an
# error, checked by re-encoding; the regex keeps that off the common path.
_SURROGATE_ESCAPE = re.compile(rb"\\[uU][dD][89a-fA-F]")


def _parse(line):
    """One answer line -> dict, or bad_answer. RecursionError is caught
    too: a deeply nested line must not take the caller down."""
    try:
        obj = json.loads(line.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise _bad_answer(f"malformed answer from daemon: {e}", line) from None
    if not isinstance(obj, dict):
        raise _bad_answer("answer is not a JSON object", line)
    if _SURROGATE_ESCAPE.search(line):
        try:
            json.dumps(obj, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise _bad_answer("answer holds a lone UTF-16 surrogate", line) from None
    return obj


def _check_ok(obj, line=None):
    ok = obj.get("ok")
    if ok is True:
        return obj
    if ok is False:
        err = obj.get("error")
        if isinstance(err, dict):
            raise ConnpidProtocolError(str(err.get("message", "")),
                                       code=str(err.get("code", "internal")),
                                       answer=obj)
        raise ConnpidProtocolError(str(err or "request failed"),
                                   code="internal", answer=obj)
    raise ConnpidProtocolError('answer has no boolean "ok"',
                               code="bad_answer", answer=line or obj)


class ConnpidClient:
    """Client for connpid-queryd.

    path:    the daemon's socket (default /run/connpid.sock)
    timeout: default per-call timeout in seconds (connect + send + answer);
             None waits forever. Every method takes timeout= to override it.
    max_answer_bytes: longest answer line accepted (default 16 MiB); a
             longer one is a bad_answer, and is never buffered whole.

    watch_skipped counts the watch lines skipped as bad_answer.
    """

    def __init__(self, path=DEFAULT_SOCKET, timeout=0.2,
                 max_answer_bytes=MAX_ANSWER_BYTES):
        self.path = os.fspath(path)
        self.timeout = timeout
        self.max_answer_bytes = int(max_answer_bytes)
        self.watch_skipped = 0
        self._conn = None
        self._next_id = 1
        self._lock = threading.Lock()

    # -- connection management -------------------------------------------

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def close(self):
        """Drop the connection (the next call reconnects)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    @property
    def connected(self):
        return self._conn is not None

    def _deadline(self, timeout):
        if timeout is None:
            timeout = self.timeout
        return None if timeout is None else time.monotonic() + timeout

    def _take_id(self):
        i = self._next_id
        self._next_id += 1
        return i

    # -- the request/answer cycle ---------------------------------------------

    def request(self, op, timeout=None, **fields):
        """Send {"op": op, **fields} and return the daemon's answer dict.

        Raises ConnpidProtocolError for {"ok": false} answers (with the
        daemon's code and message), ConnpidTimeout, ConnpidUnavailable.
        """
        msg = dict(fields)
        msg["op"] = op
        deadline = self._deadline(timeout)
        with self._lock:
            return self._request_locked(msg, deadline)

    def _request_locked(self, msg, deadline):
        for attempt in (0, 1):
            fresh = False
            if self._conn is not None and self._conn.looks_dead():
                self.close()
            if self._conn is None:
                self._conn = _Conn(self.path, deadline)
                fresh = True
            rid = self._take_id()
            msg["id"] = rid
            data = (json.dumps(msg, separators=(",", ":")) + "\n").encode()
            conn = self._conn
            try:
                conn.send(data, deadline)
                return self._read_answer(conn, rid, deadline)
            except (_Closed, BrokenPipeError, ConnectionResetError) as e:
                # The daemon went away (restart): retry once, on a new
                # connection, unless this connection was already new.
                self.close()
                if fresh or attempt == 1:
                    raise ConnpidUnavailable(
                        f"daemon closed the connection ({self.path})") from (
                        e if not isinstance(e, _Closed) else None)
                continue
            except socket.timeout:
                self.close()
                raise ConnpidTimeout(f"no answer to {msg['op']!r} from "
                                     f"{self.path} in time") from None
            except ConnpidProtocolError as e:
                # A server-side {"ok":false} leaves the stream in sync,
                # except line_too_long (the daemon closes) and anything
                # we could not parse.
                if e.code in ("bad_answer", "line_too_long"):
                    self.close()
                raise
            except ConnpidError:
                self.close()
                raise
            except OSError as e:
                self.close()
                raise ConnpidUnavailable(f"socket error talking to "
                                         f"{self.path}: {e}") from e
        raise AssertionError("unreachable")

    def _read_answer(self, conn, rid, deadline):
        while True:
            line = conn.readline(deadline, self.max_answer_bytes)
            obj = _parse(line)
            if "id" not in obj:
                # Only errors for unparsable requests may lack the id; we
                # have exactly one request outstanding, so it is ours.
                if obj.get("ok") is False:
                    return _check_ok(obj, line)
                raise ConnpidProtocolError('answer without "id"',
                                           code="bad_answer", answer=line)
            aid = obj["id"]
            if aid == rid:
                return _check_ok(obj, line)
            if isinstance(aid, int) and not isinstance(aid, bool) and aid < rid:
                continue  # stale answer to an older request: skip it
            raise ConnpidProtocolError(
                f"answer id {aid!r} does not match request id {rid}",
                code="bad_answer", answer=line)

    # -- operations -------------------------------------------------------

    def ping(self, timeout=None):
        """Return the daemon's pong answer (has "version")."""
        return self.request("ping", timeout=timeout)

    def lookup(self, proto, dst, sport, dport, src=None, netns=None,
               direction=None, timeout=None, fields=None):
        """Who owns the flow sport -> dst:dport/proto?

        Naming is the FLOW's (connpid(7)): src/sport are this host's end,
        dst/dport the peer, for inbound flows too. src (this host's
        address of the flow, e.g. a container's client address) and netns
        (a network namespace inode) pick one flow when several
        namespaces use the same ports; direction is "outbound" (default)
        or "inbound" (a connection a process here accepted).

        fields (a list of FLOW member names, e.g. ["pid", "comm", "exe",
        "container", "domain"]) asks for those members only: some 150
        bytes instead of 1.5 KB with the cmdline and ancestry; a name the
        daemon does not know is ConnpidProtocolError "invalid_argument".

        Returns the FLOW dict (pid, comm, exe, uid, user, cgroup, ...; with
        fields, those of them the flow has) or None if connpid does not
        know the flow. lookup_all() also returns the "candidates".
        """
        return self.lookup_all(proto, dst, sport, dport, src=src, netns=netns,
                               direction=direction, timeout=timeout,
                               fields=fields)[0]

    def lookup_all(self, proto, dst, sport, dport, src=None, netns=None,
                   direction=None, timeout=None, fields=None):
        """Like lookup(), but returns (flow or None, candidates): the
        other flows of the same key the daemon knows (other namespaces or
        source addresses), a list of FLOW dicts, empty when none."""
        msg = dict(proto=_normalize_proto(proto), dst=_normalize_addr(dst),
                   sport=_port(sport, "sport"), dport=_port(dport, "dport"))
        msg.update(_scope(msg["dst"], src, netns, direction))
        if fields is not None:
            msg["fields"] = check_fields(fields)
        ans = self.request("lookup", timeout=timeout, **msg)
        cands = ans.get("candidates", [])
        if not isinstance(cands, list) or not all(isinstance(c, dict) for c in cands):
            raise ConnpidProtocolError('"candidates" is not a list of objects',
                                       code="bad_answer", answer=ans)
        if not ans.get("found"):
            return None, cands
        flow = ans.get("flow")
        if not isinstance(flow, dict):
            raise ConnpidProtocolError('"found" answer without a "flow" object',
                                       code="bad_answer", answer=ans)
        return flow, cands

    def recent(self, limit=50, timeout=None, fields=None, **filters):
        """Recent flows, newest first; filters: pid, comm, proto, dst,
        dport, direction ("outbound"|"inbound"), netns, src. fields: the
        FLOW members each flow has, as for lookup()."""
        msg = {"limit": int(limit)}
        if filters:
            msg["filter"] = filters
        if fields is not None:
            msg["fields"] = check_fields(fields)
        ans = self.request("recent", timeout=timeout, **msg)
        flows = ans.get("flows")
        if not isinstance(flows, list):
            raise ConnpidProtocolError('"recent" answer without "flows" list',
                                       code="bad_answer", answer=ans)
        return flows

    def stats(self, timeout=None):
        return self.request("stats", timeout=timeout).get("stats", {})

    def status(self, timeout=None):
        return self.request("status", timeout=timeout).get("status", {})

    def watch(self, timeout=None, idle_timeout=None, on_bad_answer=None,
              fields=None, **filters):
        """Yield a FLOW dict for every new flow, until the generator is
        closed (or the daemon goes away: ConnpidUnavailable).

        Uses a connection of its own. timeout bounds connecting and the
        daemon's acknowledgement; idle_timeout (default: none) raises
        ConnpidTimeout if no event arrives for that long. fields: the FLOW
        members each event's flow has, as for lookup().

        A line that is not valid UTF-8, not a JSON object or too long does
        not end the watch: it is counted in self.watch_skipped, handed to
        on_bad_answer(ConnpidProtocolError) (default: a logged warning)
        and skipped. An {"ok":false} line from the daemon ends it.
        """
        msg = {"op": "watch", "id": 0}
        if filters:
            msg["filter"] = filters
        if fields is not None:
            msg["fields"] = check_fields(fields)  # checked before connecting
        deadline = self._deadline(timeout)
        conn = _Conn(self.path, deadline)
        try:
            try:
                conn.send((json.dumps(msg, separators=(",", ":")) + "\n").encode(),
                          deadline)
                line = conn.readline(deadline, self.max_answer_bytes)
            except socket.timeout:
                raise ConnpidTimeout("no answer to 'watch' in time") from None
            except (_Closed, OSError) as e:
                raise ConnpidUnavailable("daemon closed the watch connection") from (
                    None if isinstance(e, _Closed) else e)
            _check_ok(_parse(line), line)
            while True:
                obj = self._watch_next(conn, idle_timeout, on_bad_answer)
                if obj is None:
                    continue
                if obj.get("ok") is False:
                    _check_ok(obj)
                if obj.get("event") == "flow" and isinstance(obj.get("flow"), dict):
                    yield obj["flow"]
                # other event kinds (future: dns, ...) are skipped
        finally:
            conn.close()

    def _watch_next(self, conn, idle_timeout, on_bad_answer):
        """Next watch line as a dict, or None for a skipped bad line."""
        dl = None if idle_timeout is None else time.monotonic() + idle_timeout
        try:
            return _parse(conn.readline(dl, self.max_answer_bytes))
        except socket.timeout:
            raise ConnpidTimeout(f"no watch event for {idle_timeout}s") from None
        except (_Closed, OSError) as e:
            raise ConnpidUnavailable("daemon ended the watch stream") from (
                None if isinstance(e, _Closed) else e)
        except ConnpidProtocolError as e:  # bad_answer: skip this line only
            self.watch_skipped += 1
            if on_bad_answer is not None:
                on_bad_answer(e)
            else:
                _log.warning("connpid watch: skipped a bad line (%s)", e.message)
            return None


def _main(argv=None):
    """Tiny CLI for poking at a daemon: python3 connpid_client.py ping."""
    import argparse
    import sys
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--socket", default=DEFAULT_SOCKET)
    ap.add_argument("--timeout", type=float, default=1.0)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("ping")
    sub.add_parser("stats")
    sub.add_parser("status")
    lk = sub.add_parser("lookup")
    lk.add_argument("dst")
    lk.add_argument("sport", type=int)
    lk.add_argument("dport", type=int)
    lk.add_argument("--protocol", default="tcp")
    lk.add_argument("--src", help="this host's address of the flow")
    lk.add_argument("--netns", type=int, help="network namespace inode")
    lk.add_argument("--inbound", action="store_true",
                    help="an accepted connection: SPORT is the local port, "
                         "DST:DPORT the client")
    lk.add_argument("--fields", help="comma-separated FLOW members to answer with "
                                     "(pid,comm,exe,...)")
    rc = sub.add_parser("recent")
    rc.add_argument("--limit", type=int, default=20)
    sub.add_parser("watch")
    a = ap.parse_args(argv)
    c = ConnpidClient(a.socket, a.timeout)
    try:
        if a.cmd == "lookup":
            out, cands = c.lookup_all(a.protocol, a.dst, a.sport, a.dport,
                                      src=a.src, netns=a.netns,
                                      direction="inbound" if a.inbound else None,
                                      fields=a.fields.split(",") if a.fields else None)
            print(json.dumps(out))
            for cand in cands:
                print(json.dumps({"candidate": cand}))
            return 0 if out else 1
        if a.cmd == "recent":
            out = c.recent(a.limit)
        elif a.cmd == "watch":
            def bad(e):
                print(f"connpid: skipped: {e}", file=sys.stderr)
            for f in c.watch(on_bad_answer=bad):
                print(json.dumps(f), flush=True)
            return 0
        else:
            out = getattr(c, a.cmd)()
        print(json.dumps(out))
        return 0
    except (ConnpidError, ValueError) as e:
        print(f"connpid: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    raise SystemExit(_main())
