# SPDX-License-Identifier: GPL-2.0-or-later
"""mitmproxy addon: name the process behind every intercepted connection.

    mitmdump -s contrib/python/connpid_mitmproxy.py \\
        --set connpid_socket=/run/connpid.sock

On each client connection the addon asks connpid-queryd who owns the flow
(client source port -> the address the client connected to: the proxy's
own listen address in regular mode, the original destination in
transparent mode; plus the client's address as "src", which keeps apart
clients in different containers or network namespaces that happen to use
the same source port), caches the answer for the connection and attaches it to
every flow on it:

  * flow.metadata["connpid"]: the daemon's FLOW object plus "status"
    ("found" or "unknown") and, when unknown, "reason"; the FLOW has the
    members the addon uses (pid, uid, user, comm, exe, unit, container,
    domain) and those named in connpid_fields ("all": every one);
  * flow.comment: "connpid: curl[1234] exe=/usr/bin/curl user=root ..."
    (shown in mitmproxy's and mitmweb's flow details);
  * one log line per connection (visible in mitmdump's output).

A lookup never stalls the proxy: it runs in a worker thread, the hook
waits at most connpid_timeout seconds, and anything that goes wrong
(timeout, daemon down, an answer that cannot be read, flow not in the
maps) makes the connection "unknown". After a timeout, lookups are skipped
for a short while so a hung daemon cannot pile up work.

Egress filtering fails closed: with connpid_allow_exe set, only
connections made by the listed executables pass. Everything else is
refused, and so is every connection whose process connpid cannot name
("unknown": not found, daemon down or too slow, unreadable answer, an
internal error), unless the operator opts in with
connpid_allow_unknown=true. connpid_block_unknown=true refuses unknown
connections even without an allow list, and wins over
connpid_allow_unknown. Refusal is a 403 answer on HTTP requests or closing
the connection (connpid_block_action=kill). Names from the daemon are
shown with control characters escaped, so a process name cannot rewrite
the operator's terminal through mitmdump's log.

Tested with mitmproxy 8.1 (Debian 12).
"""

import asyncio
import concurrent.futures
import ipaddress
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from connpid_client import (  # noqa: E402
    DEFAULT_SOCKET,
    check_fields,
    ConnpidClient,
    ConnpidError,
    ConnpidProtocolError,
    ConnpidTimeout,
    ConnpidUnavailable,
)

from mitmproxy import ctx, exceptions, http  # noqa: E402

try:  # mitmproxy >= 7
    from mitmproxy.platform import original_addr as _original_addr
except Exception:  # pragma: no cover
    _original_addr = None

META_KEY = "connpid"
WORKERS = 4
BACKOFF_AFTER_TIMEOUT = 0.5  # seconds without lookups after a timeout
# The FLOW members the addon shows (log line, comment) and decides on
# (allow list): asked for alone, the daemon's answer is ~200 bytes instead
# of 1.5 KB with the cmdline and ancestry (connpid(7) "fields").
FIELDS = ("pid", "uid", "user", "comm", "exe", "unit", "container", "domain")


# C0, DEL, C1 and lone surrogates: escaped in every text we show (log
# line, comment, 403 body); flow.metadata keeps the daemon's exact values.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _clean(text):
    return _UNSAFE.sub(lambda m: "\\x%02x" % ord(m.group())
                       if ord(m.group()) < 0x100 else "\\u%04x" % ord(m.group()),
                       str(text))


def _log(level, msg):
    try:
        getattr(ctx.log, level)(msg)
    except Exception:  # no master (unit tests) or a newer mitmproxy
        import logging
        logging.getLogger("connpid").log(
            {"debug": 10, "info": 20, "warn": 30, "error": 40}.get(level, 20), msg)


def _addr(a):
    """(host, port, ...) -> (host without ::ffff: mapping, port)."""
    if not a:
        return None
    host, port = a[0], a[1]
    if host.startswith("::ffff:") and "." in host:
        host = host[7:]
    return host, int(port)


def _same_family(a, b):
    try:
        return ipaddress.ip_address(a.split("%", 1)[0]).version == \
            ipaddress.ip_address(b.split("%", 1)[0]).version
    except ValueError:
        return False


def _fmt_addr(a):
    if not a:
        return "?"
    return f"[{a[0]}]:{a[1]}" if ":" in a[0] else f"{a[0]}:{a[1]}"


def _first(flow, *names):
    """First present, non-empty field among names; dicts are shortened to
    their name/id (e.g. container {"id":..,"name":..})."""
    for n in names:
        v = flow.get(n)
        if v in (None, "", [], {}):
            continue
        if isinstance(v, dict):
            v = v.get("name") or v.get("id") or v.get("unit") or str(v)
        elif isinstance(v, (list, tuple)):
            v = ",".join(str(x) for x in v)
        return str(v)
    return None


def _labels(info):
    """container=, unit=, domain= of a FLOW (connpid(7): live and history
    rows have one shape), for those it has."""
    out = []
    for name in ("container", "unit", "domain"):
        v = _first(info, name)
        if v is not None:
            out.append(f"{name}={v}")
    return out


def describe(info):
    """One-line human summary of a connpid record (used for comment/log),
    control characters escaped."""
    return _clean(_describe(info))


def _describe(info):
    if info.get("status") != "found":
        return f"unknown ({info.get('reason', 'no answer')})"
    parts = [f"{info.get('comm') or '?'}[{info.get('pid', '?')}]"]
    if info.get("exe"):
        parts.append(f"exe={info['exe']}")
    user = info.get("user")
    if user is None and info.get("uid") is not None:
        user = str(info["uid"])
    if user is not None:
        parts.append(f"user={user}")
    parts += _labels(info)
    return " ".join(parts)


class _Conn:
    """What we know about one client connection."""
    __slots__ = ("info", "allowed", "reason", "key", "logged")

    def __init__(self):
        self.info = None      # None: not decided yet (allowed is meaningless)
        self.allowed = False
        self.reason = "not decided"
        self.key = None
        self.logged = False


class Connpid:
    def __init__(self):
        self._executor = None
        self._tls = threading.local()
        self._gen = 0
        self._conns = {}
        self._backoff_until = 0.0
        self._timeout = 0.2
        self._socket = DEFAULT_SOCKET
        self._allow = set()
        self._fields = list(FIELDS)  # None: the whole FLOW

    # -- options ------------------------------------------------------------

    def load(self, loader):
        loader.add_option(
            "connpid_socket", str, DEFAULT_SOCKET,
            "connpid-queryd socket to ask which process owns each connection.")
        loader.add_option(
            "connpid_timeout", str, "0.2",
            "Longest wait for a connpid lookup, in seconds; on timeout the "
            "connection is marked unknown.")
        loader.add_option(
            "connpid_allow_exe", str, "",
            "Comma-separated executables (full paths, or bare names matched "
            "against the exe's basename) allowed through the proxy; when set, "
            "connections from any other executable are refused.")
        loader.add_option(
            "connpid_allow_unknown", bool, False,
            "With connpid_allow_exe set, let connections through whose "
            "process connpid cannot name (not found, daemon down or too slow, "
            "unreadable answer). Off by default: the allow list fails closed.")
        loader.add_option(
            "connpid_block_unknown", bool, False,
            "Refuse connections whose process connpid cannot name "
            "(not found, daemon down or too slow, unreadable answer), "
            "with or without an allow list; wins over connpid_allow_unknown.")
        loader.add_option(
            "connpid_block_action", str, "403",
            "How to refuse: '403' answers HTTP requests with 403 Forbidden "
            "(raw TCP from the client is dropped), 'kill' closes the client connection "
            "right away.",
            choices=("403", "kill"))
        loader.add_option(
            "connpid_fields", str, "",
            "Further FLOW members (connpid(7)) to ask for and keep in "
            "flow.metadata['connpid'], comma-separated (e.g. cgroup,cmdline), "
            "or 'all' for the whole FLOW. The addon always asks for "
            + ",".join(FIELDS) + ".")

    def configure(self, updated):
        # Apply every valid option before complaining about an invalid one,
        # so a typo in one option never silently disables the allow list.
        o = ctx.options
        errors = []
        if "connpid_allow_exe" in updated:
            allow = set()
            for e in o.connpid_allow_exe.split(","):
                e = e.strip()
                if not e:
                    continue
                allow.add(e)
                if "/" in e:
                    allow.add(os.path.realpath(e))
            self._allow = allow
        if "connpid_timeout" in updated:
            try:
                t = float(o.connpid_timeout)
                if not 0 < t <= 60:
                    raise ValueError
                self._timeout = t
            except ValueError:
                errors.append(f"connpid_timeout must be seconds in (0, 60], "
                              f"not {o.connpid_timeout!r}")
        if ("connpid_block_action" in updated
                and o.connpid_block_action not in ("403", "kill")):
            errors.append(f"connpid_block_action must be '403' or 'kill', "
                          f"not {o.connpid_block_action!r}")
        if "connpid_fields" in updated:
            try:
                self._fields = self._parse_fields(o.connpid_fields)
            except ValueError as e:
                errors.append(f"connpid_fields: {e}")
        if "connpid_socket" in updated:
            self._socket = o.connpid_socket
        if updated & {"connpid_timeout", "connpid_socket"}:
            self._gen += 1  # worker threads reopen their clients
            self._backoff_until = 0.0
        if errors:
            raise exceptions.OptionsError("; ".join(errors))

    @staticmethod
    def _parse_fields(text):
        """The addon's FIELDS plus the option's names; None for 'all'."""
        text = text.strip()
        if text == "all":
            return None
        extra = [f.strip() for f in text.split(",") if f.strip()]
        return check_fields(list(FIELDS) + [f for f in extra if f not in FIELDS])

    def running(self):
        self._ensure_executor()

    def done(self):
        ex, self._executor = self._executor, None
        if ex is not None:
            ex.shutdown(wait=False)

    def _ensure_executor(self):
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=WORKERS, thread_name_prefix="connpid")
        return self._executor

    # -- lookups ---------------------------------------------------------------

    def _client(self):
        c = getattr(self._tls, "client", None)
        if c is None or self._tls.gen != self._gen:
            if c is not None:
                c.close()
            c = ConnpidClient(self._socket, self._timeout)
            self._tls.client, self._tls.gen = c, self._gen
        return c

    def _lookup_blocking(self, key):
        """Runs in a worker thread. Returns the connpid record."""
        proto, dst, sport, dport, src = key
        try:
            flow = self._client().lookup(proto, dst, sport, dport, src=src,
                                         fields=self._fields)
        except ConnpidTimeout:
            self._backoff_until = time.monotonic() + BACKOFF_AFTER_TIMEOUT
            return {"status": "unknown", "reason": "timeout"}
        except ConnpidUnavailable as e:
            return {"status": "unknown", "reason": f"unavailable: {e}"}
        except ConnpidProtocolError as e:
            return {"status": "unknown", "reason": f"error: {e}"}
        except (ConnpidError, ValueError) as e:
            return {"status": "unknown", "reason": f"error: {e}"}
        if flow is None:
            return {"status": "unknown", "reason": "not found"}
        rec = dict(flow)
        rec["status"] = "found"
        return rec

    async def _lookup(self, key):
        if key is None:
            return {"status": "unknown", "reason": "no destination address"}
        if time.monotonic() < self._backoff_until:
            return {"status": "unknown", "reason": "daemon slow, backing off"}
        loop = asyncio.get_running_loop()
        try:
            fut = loop.run_in_executor(self._ensure_executor(),
                                       self._lookup_blocking, key)
            # the worker's own socket timeout normally fires first
            return await asyncio.wait_for(fut, self._timeout + 0.05)
        except asyncio.TimeoutError:
            self._backoff_until = time.monotonic() + BACKOFF_AFTER_TIMEOUT
            return {"status": "unknown", "reason": "timeout"}
        except Exception as e:  # never let a lookup take the proxy down
            return {"status": "unknown", "reason": f"error: {e!r}"}

    # -- policy ------------------------------------------------------------------

    def _decide(self, info):
        """(allowed, reason). Anything unexpected refuses when a policy is
        set: an allow list must not be bypassed by an answer it cannot use."""
        o = ctx.options
        if info.get("status") != "found":
            why = f"process unknown ({info.get('reason')})"
            if o.connpid_block_unknown:
                return False, why
            if self._allow and not o.connpid_allow_unknown:
                return False, why + ", connpid_allow_unknown is off"
            return True, ""
        if not self._allow:
            return True, ""
        exe = info.get("exe")
        if not isinstance(exe, str):
            exe = ""
        if exe.endswith(" (deleted)"):
            exe = exe[: -len(" (deleted)")]
        if exe and (exe in self._allow or os.path.basename(exe) in self._allow):
            return True, ""
        return False, f"executable {exe or '?'} ({info.get('comm') or '?'}) not allowed"

    # -- destination of a client connection ------------------------------------

    @staticmethod
    def _mode(client):
        pm = getattr(client, "proxy_mode", None)  # mitmproxy >= 9
        if pm is not None:
            return getattr(pm, "type_name", str(pm))
        mode = ctx.options.mode
        if not isinstance(mode, str):
            mode = mode[0] if mode else "regular"
        return mode.split(":", 1)[0]

    @staticmethod
    def _original_dst(client):
        """SO_ORIGINAL_DST of a transparently redirected client socket.

        mitmproxy 8 only reads it in the transparent layer, after
        client_connected, so find the socket through the proxyserver
        addon (internal API; None if that does not work)."""
        if _original_addr is None:
            return None
        try:
            ps = ctx.master.addons.get("proxyserver")
            h = ps._connections[("tcp", client.peername, client.sockname)]
            sock = h.transports[client].writer.get_extra_info("socket")
            return _addr(_original_addr(sock))
        except Exception:
            return None

    def _key(self, client, dst=None):
        src = _addr(client.peername)
        if dst is None:
            if self._mode(client) == "transparent":
                dst = self._original_dst(client)
            else:
                dst = _addr(client.sockname)
        if src is None or dst is None:
            return None
        proto = getattr(client, "transport_protocol", "tcp") or "tcp"
        # The client's address is the flow's src (its end of the socket):
        # it tells apart clients in containers or namespaces that use the
        # same source port. Left out only when it cannot be one (another
        # family than dst), so such a connection is looked up as before.
        return (proto, dst[0], src[1], dst[1], src[0] if _same_family(src[0], dst[0]) else None)

    # -- hooks ---------------------------------------------------------------

    async def _resolve(self, client, dst=None):
        st = self._conns.get(client.id)
        if st is None:
            st = self._conns[client.id] = _Conn()
        if st.info is not None:
            return st
        st.key = self._key(client, dst)
        if st.key is None and dst is None:
            return st  # transparent without original dst yet: retry per flow
        info = await self._lookup(st.key)
        if st.info is None:
            # verdict first: st.info set means "decided" to every other hook
            st.allowed, st.reason = self._verdict(info)
            st.info = info
            self._log_conn(client, st)
        return st

    def _verdict(self, info):
        """_decide() that cannot raise: on a bug the answer counts as
        unknown (refused under a policy), and refused if even that fails."""
        try:
            return self._decide(info)
        except Exception as e:
            _log("error", f"connpid: internal error deciding: {e!r}")
        try:
            return self._decide({"status": "unknown", "reason": "internal error"})
        except Exception:
            return False, "internal error"

    def _conn_verdict(self, st):
        """(info, allowed, reason) for a connection, also before or
        without a lookup (no destination known yet): then it is unknown."""
        if st is None or st.info is None:
            info = {"status": "unknown", "reason": "no destination address"}
            return (info,) + self._verdict(info)
        return st.info, st.allowed, st.reason

    def _log_conn(self, client, st):
        if st.logged:
            return
        st.logged = True
        k = st.key
        where = (f"{_fmt_addr(_addr(client.peername))} -> "
                 f"{_fmt_addr((k[1], k[3])) if k else '?'}")
        info = st.info
        if info.get("status") == "found":
            user = info.get("user")
            fields = [f"pid={info.get('pid')}", f"comm={info.get('comm') or '-'}",
                      f"exe={info.get('exe') or '-'}",
                      f"user={user if user is not None else info.get('uid', '-')}"]
            fields += _labels(info)
            line = f"connpid: {where} " + " ".join(fields)
        else:
            line = f"connpid: {where} unknown ({info.get('reason')})"
        if not st.allowed:
            line += f" REFUSED: {st.reason}"
        _log("info" if st.allowed else "warn", _clean(line))

    async def client_connected(self, client):
        try:
            st = await self._resolve(client)
            if (st.info is not None and not st.allowed
                    and ctx.options.connpid_block_action == "kill"):
                client.error = f"connpid: refused: {_clean(st.reason)}"
        except Exception as e:  # pragma: no cover - belt and braces
            _log("error", f"connpid: internal error in client_connected: {e!r}")

    def client_disconnected(self, client):
        self._conns.pop(client.id, None)

    async def _annotate(self, flow):
        """Attach the answer to flow; return (allowed, reason)."""
        try:
            client = flow.client_conn
            st = self._conns.get(client.id)
            if st is None or st.info is None:
                dst = _addr(flow.server_conn.address) if flow.server_conn else None
                st = await self._resolve(client, dst)
            info, allowed, reason = self._conn_verdict(st)
            flow.metadata[META_KEY] = dict(info)
            note = "connpid: " + describe(info)
            if not allowed:
                note += f" [refused: {_clean(reason)}]"
            if not flow.comment:
                flow.comment = note
            elif "connpid:" not in flow.comment:
                flow.comment += "\n" + note
            return allowed, reason
        except Exception as e:  # pragma: no cover
            _log("error", f"connpid: internal error annotating flow: {e!r}")
            return self._verdict({"status": "unknown", "reason": "internal error"})

    def _refuse_http(self, flow, reason):
        if ctx.options.connpid_block_action == "kill":
            flow.kill()
            return
        body = f"connpid: refused: {_clean(reason)}\n".encode("utf-8", "replace")
        flow.response = http.Response.make(
            403, body, {"Content-Type": "text/plain; charset=utf-8",
                        "Connection": "close"})

    async def http_connect(self, flow):
        allowed, reason = await self._annotate(flow)
        if not allowed:
            self._refuse_http(flow, reason)

    async def requestheaders(self, flow):
        allowed, reason = await self._annotate(flow)
        if not allowed and flow.response is None:
            self._refuse_http(flow, reason)

    async def tcp_start(self, flow):
        await self._annotate(flow)

    def tcp_message(self, flow):
        # Raw TCP on a refused connection (mitmproxy 8 cannot close it from
        # an addon here): forward nothing the client sends.
        _, allowed, _ = self._conn_verdict(self._conns.get(flow.client_conn.id))
        if not allowed and flow.messages:
            msg = flow.messages[-1]
            if msg.from_client:
                msg.content = b""


addons = [Connpid()]
