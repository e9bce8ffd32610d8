"""WebSocket: send after close, app errors, the connection scope (spec-catalogue §7, §8 WebSocket rows, §9).

Each case opens its own WebSocket (asgi_conformance.wsclient) to a scenario app from
asgi_conformance.apps.websocket under ``/app/<name>/<token>``. What the app sees after
the client has gone comes back through the journal; what the server does on the wire
(status of a failed handshake, close code, a plain TCP drop) is read from the socket.
Where the spec leaves the outcome open, the cell is ``info`` with the observed value.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import json
import secrets
import socket
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from asgi_conformance import (
    INFO,
    MUST,
    SHOULD,
    Launcher,
    Server,
    check,
    expect,
    fail,
    note,
    record,
    scenario,
    unsupported,
)
from asgi_conformance.apps.typedjson import dumps, loads
from asgi_conformance.client import Closed, Refused, Reset, Timeout
from asgi_conformance.concurrency import side_by_side
from asgi_conformance.timing import Deadline
from asgi_conformance.verdicts import current_cell
from asgi_conformance.wsclient import Accepted, Binary, CloseFrame, Denied, Event, Text, WebSocket, describe

WS = ("websocket",)
SEND_CLOSED = "www › Disconnected Client - send exception (WebSocket)"
ERRORS = "core › Error Handling"


def _ws(server: Server) -> WebSocket:
    return WebSocket(server.address, server.timeouts.request)


def _path(name: str) -> tuple[str, str]:
    token = secrets.token_hex(8)
    return f"/app/{name}/{token}", token


def _version(value: Any) -> tuple[int, int] | None:
    """``spec_version`` as (major, minor); a missing value means "2.0"; None if unreadable."""
    if value is None:
        return (2, 0)
    if not isinstance(value, str):
        return None
    try:
        major, minor = value.split(".")[:2]
        return int(major), int(minor)
    except ValueError:
        return None


def _next_end(ws: WebSocket, timeout: float) -> Event:
    """The next event that is not a message (close frame, TCP end, timeout), skipping messages."""
    deadline = Deadline(timeout)
    while True:
        event = ws.receive(deadline.remaining())
        if not isinstance(event, Text | Binary):
            return event
        note(f"message before the end: {describe(event)}")


def _end_value(event: Event) -> str:
    if isinstance(event, CloseFrame):
        return "close frame without a code" if event.code is None else f"close {event.code}"
    if isinstance(event, Closed):
        return "TCP closed without a close frame"
    if isinstance(event, Reset):
        return "TCP reset without a close frame"
    return describe(event)


def _after_denial(ws: WebSocket, outcome: object, hold: float) -> bytes:
    """After a denial, the bytes the server still sends before it ends the connection.

    Negative evidence: waits at most ``hold`` (timeouts.hold) for them, less at EOF.
    """
    if not isinstance(outcome, Denied):
        return b""
    rest, end = ws.read_rest(hold)
    if rest:
        note(f"after the {outcome.status} response the server sent {len(rest)} more bytes: {rest[:120]!r}")
    note(f"after the response: {describe(end)}")
    return rest


def _denial_value(outcome: object, rest: bytes) -> str:
    value = _handshake_value(outcome)
    if rest.startswith(b"HTTP/1.1 101"):
        return f"{value}, then a 101 on the same connection"
    return f"{value}, then {len(rest)} stray bytes" if rest else value


def _handshake_value(outcome: object) -> str:
    if isinstance(outcome, Denied):
        return f"HTTP {outcome.status}"
    if isinstance(outcome, Closed):
        return "TCP closed, no HTTP response"
    if isinstance(outcome, Reset):
        return "TCP reset, no HTTP response"
    return describe(outcome)


# -- §7: send after close ----------------------------------------------------------------


def _send_after_close(server: Server) -> dict[str, Any]:
    """Client closes; the app waits for websocket.disconnect, sends once more, and journals what happened."""
    path, token = _path("ws-send-after-close")
    with _ws(server) as ws:
        outcome = ws.handshake(path)
        check(
            isinstance(outcome, Accepted),
            "the handshake was not accepted",
            expected="101",
            observed=describe(outcome),
            level=MUST,
        )
        ready = ws.receive(server.timeouts.event)
        check(
            isinstance(ready, Text) and ready.data == "ready",
            "the app's first message did not arrive",
            expected="text 'ready'",
            observed=describe(ready),
            level=MUST,
        )
        reply = ws.close(1000, timeout=server.timeouts.event)
        note(f"the server answered the client's close with: {describe(reply)}")
    found = server.journal.wait_for(f"ws-send-closed-{token}", lambda r: True, server.timeouts.event)
    if found is None:
        fail(
            "the app never got to send after the close (no websocket.disconnect within the deadline?)",
            expected="a journal record of the late send",
            observed="none",
            level=MUST,
        )
    return found


def _late_send(found: dict[str, Any]) -> str:
    if found.get("raised") is None:
        return "no-op (send() returned)"
    kind = "OSError subclass" if found.get("oserror") else "not an OSError"
    return f"raised {found.get('raised')} ({kind})"


@scenario(
    "ws.send_closed.oserror",
    "after the client closed the WebSocket, send() raises an OSError subclass (spec >= 2.4)",
    level=SHOULD,
    spec=SEND_CLOSED,
    requires=WS,
    impact="hang",
)
def test_send_closed_oserror(server: Server) -> None:
    """Judged by the spec_version in the app's scope: from 2.4 send() should raise an OSError
    subclass; before 2.4 a no-op (or any exception) is allowed and only recorded."""
    found = _send_after_close(server)
    claimed = found.get("spec_version")
    record(f"spec {claimed or '2.0 (missing)'}: {_late_send(found)}")
    note(f"class {found.get('qualname')}, MRO {found.get('mro')}" if found.get("raised") else "send() did not raise")
    version = _version(claimed)
    if version is None:
        note(f"spec_version {claimed!r} is unreadable: judged as 2.0")
        version = (2, 0)
    if version < (2, 4):
        note(f"spec_version {claimed!r} predates 2.4: send() after close need not raise")
        return
    check(
        found.get("raised") is not None and found.get("oserror") is True,
        "send() after the close did not raise an OSError subclass, though the target claims spec >= 2.4",
        expected="an OSError subclass",
        observed=_late_send(found),
    )


@scenario(
    "ws.send_closed.not_logged",
    "the OSError that send() raised after close, escaping the app, is not logged as an error",
    level=SHOULD,
    spec="www › Disconnected Client (WebSocket)",
    requires=WS,
    impact="cosmetic",
    alone=True,
)
def test_send_closed_not_logged(server: Server) -> None:
    """The app re-raises what the late send() raised. The server's log since the case began
    must not show it (a traceback or the exception's class name). Negative evidence: the log
    is watched for ``timeouts.hold`` after the app's journal record. Unsupported when send()
    raised nothing (nothing escaped to judge)."""
    offset = server.process.log_offset()
    found = _send_after_close(server)
    name = found.get("raised")
    if name is None:
        record("send() after close did not raise: nothing escaped")
        note("send() after close was a no-op, so no exception escaped the app")
        return
    record(f"{name} escaped the app")
    needles = ("Traceback", str(name))
    deadline = Deadline(server.timeouts.hold)
    log = ""
    while True:
        log = server.process.log_slice(offset)
        hits = [line for line in log.splitlines() if any(n in line for n in needles)]
        if hits or deadline.expired:
            break
        time.sleep(min(0.02, deadline.remaining()))  # poll interval, bounded by the hold
    check(
        not hits,
        f"the server logged the {name} that its own send() raised after the close",
        expected="no traceback, no error line naming it",
        observed=hits[:5],
    )
    # MUST: the server caught it and goes on serving.
    path, _ = _path("ws-return-after-accept")
    with _ws(server) as ws:
        outcome = ws.handshake(path)
    check(
        isinstance(outcome, Accepted),
        "the server no longer accepts WebSockets after the exception escaped",
        expected="101",
        observed=describe(outcome),
        level=MUST,
    )


@scenario(
    "ws.send_closed.version_consistency",
    "the spec_version a target claims agrees with what send() does after the close",
    level=INFO,
    spec="www › Spec Versions",
    requires=WS,
    impact="interop",
)
def test_send_closed_version_consistency(server: Server) -> None:
    """Over-claiming (2.4 or later, but send() after close does not raise an OSError) is a
    SHOULD finding; under-claiming (below 2.4, but it raises one) is recorded."""
    found = _send_after_close(server)
    claimed = found.get("spec_version")
    version = _version(claimed)
    raises = found.get("raised") is not None and found.get("oserror") is True
    behaves = "2.4 (raises OSError)" if raises else "pre-2.4 (" + _late_send(found) + ")"
    if version is None:
        record(f"claims {claimed!r} (unreadable); behaves as {behaves}")
        return
    if version >= (2, 4) and not raises:
        record(f"over-claims: says {claimed}, behaves as {behaves}")
        fail(
            "the target claims spec >= 2.4 but send() after close does not raise an OSError",
            expected="an OSError subclass",
            observed=_late_send(found),
            level=SHOULD,
        )
    if version < (2, 4) and raises:
        record(f"under-claims: says {claimed or '2.0 (missing)'}, behaves as {behaves}")
        return
    record(f"consistent: says {claimed or '2.0 (missing)'}, behaves as {behaves}")


# -- §8: app errors ----------------------------------------------------------------------


@scenario(
    "err.ws.raise_before_accept",
    "an app that raises before accepting: the handshake is not completed (status recorded)",
    level=INFO,
    spec=ERRORS,
    requires=WS,
    impact="hang",
)
def test_raise_before_accept(server: Server) -> None:
    """MUST: no 101, and the client is not left waiting. The HTTP status is not specified: recorded.

    Negative evidence: after a denial the case watches ``timeouts.hold`` for stray bytes (a late 101).
    """
    path, _ = _path("ws-raise-before-accept")
    with _ws(server) as ws:
        started = time.monotonic()
        outcome = ws.handshake(path, timeout=server.timeouts.event)
        elapsed = time.monotonic() - started
        rest = _after_denial(ws, outcome, server.timeouts.hold)
    note(f"answer after {elapsed:.3f} s")
    record(_denial_value(outcome, rest))
    check(
        not isinstance(outcome, Accepted) and b"101 Switching" not in rest,
        "the server completed the handshake for an app that raised before accepting",
        expected="no 101",
        observed=_denial_value(outcome, rest) if rest else describe(outcome),
        level=MUST,
    )
    check(
        not isinstance(outcome, Timeout),
        "the server neither answered nor closed the connection after the app raised",
        expected="an HTTP error status, or the connection closed",
        observed=describe(outcome),
        level=MUST,
    )


@scenario(
    "err.ws.raise_after_accept",
    "an app that raises after accepting: the socket is closed (close code recorded)",
    level=INFO,
    spec=ERRORS,
    requires=WS,
    impact="hang",
)
def test_raise_after_accept(launcher: Launcher) -> None:
    """MUST: the connection ends. The close code (1011 is conventional) or a plain TCP drop is recorded.
    On a dedicated process: an app exception after the handshake can break a server for later
    ones (daphne: a later app exception then leaves its client hanging)."""
    server = _dedicated(launcher)
    path, _ = _path("ws-raise-after-accept")
    with _ws(server) as ws:
        outcome = ws.handshake(path)
        if not isinstance(outcome, Accepted):
            record(f"no 101: {_handshake_value(outcome)}")
            check(
                not isinstance(outcome, Timeout),
                "the handshake neither completed nor failed after the app raised",
                expected="101, then the connection ends",
                observed=describe(outcome),
                level=MUST,
            )
            return
        end = _next_end(ws, server.timeouts.event)
        assert ws.accepted_at is not None
        note(f"ended {time.monotonic() - ws.accepted_at:.3f} s after the 101: {describe(end)}")
    record(_end_value(end))
    check(
        not isinstance(end, Timeout),
        "the WebSocket stayed open after the app raised",
        expected="a close frame or the TCP connection closed",
        observed=describe(end),
        level=MUST,
    )


@scenario(
    "err.ws.return_before_accept",
    "an app that returns without answering websocket.connect (outcome recorded)",
    level=INFO,
    spec="www › Connect (not covered)",
    requires=WS,
    impact="hang",
)
def test_return_before_accept(server: Server) -> None:
    """Unspecified: recorded. A client left waiting (the app is gone, the socket stays) is a
    SHOULD finding (the socket should be closed when the app dies, ws.scope.lifetime).

    The wait is twice ``timeouts.event``: some servers only answer when their own handshake
    timeout fires (daphne: 5 s, checked every 2 s), which the value reports as "after a delay".
    Negative evidence: after a denial the case watches ``timeouts.hold`` for stray bytes.
    """
    path, _ = _path("ws-return-before-accept")
    with _ws(server) as ws:
        started = time.monotonic()
        outcome = ws.handshake(path, timeout=2 * server.timeouts.event)
        elapsed = time.monotonic() - started
        note(f"answer after {elapsed:.3f} s")
        delayed = " (only after a delay)" if elapsed > server.timeouts.event / 2 else ""
        if isinstance(outcome, Accepted):
            end = _next_end(ws, server.timeouts.event)
            record(f"101{delayed}, then {_end_value(end)}")
            check(
                not isinstance(end, Timeout),
                "the WebSocket stayed open after the app returned",
                expected="the connection closed",
                observed=describe(end),
                level=SHOULD,
            )
            return
        rest = _after_denial(ws, outcome, server.timeouts.hold)
    record(_denial_value(outcome, rest) + delayed)
    check(
        not rest,
        "after a complete response the server wrote more on the connection (RFC 9112 §9.6: after "
        "'Connection: close' no further response)",
        expected="the response, then the connection closed",
        observed=_denial_value(outcome, rest),
        level=SHOULD,
    )
    check(
        not isinstance(outcome, Timeout),
        "the server neither answered nor closed the connection after the app returned",
        expected="an HTTP status, or the connection closed",
        observed=describe(outcome),
        level=SHOULD,
    )


@scenario(
    "err.ws.return_after_accept",
    "an app that returns after accepting, without websocket.close: the socket is closed",
    level=INFO,
    spec="www › Websocket Connection Scope",
    requires=WS,
    impact="hang",
)
def test_return_after_accept(server: Server) -> None:
    """SHOULD: the socket is closed. The close code (1000/1011/none) is recorded, the time in a note."""
    path, _ = _path("ws-return-after-accept")
    with _ws(server) as ws:
        outcome = ws.handshake(path)
        check(
            isinstance(outcome, Accepted),
            "the handshake was not accepted",
            expected="101",
            observed=describe(outcome),
            level=MUST,
        )
        end = _next_end(ws, server.timeouts.event)
        assert ws.accepted_at is not None
        note(f"ended {time.monotonic() - ws.accepted_at:.3f} s after the 101: {describe(end)}")
    record(_end_value(end))
    check(
        not isinstance(end, Timeout),
        "the WebSocket stayed open after the app returned",
        expected="a close frame or the TCP connection closed",
        observed=describe(end),
        level=SHOULD,
    )


@scenario(
    "err.ws.unknown_type",
    "send() raises for an unknown WebSocket event type",
    level=SHOULD,
    spec=ERRORS,
    requires=WS,
    impact="interop",
)
def test_unknown_type(server: Server) -> None:
    path, _ = _path("ws-unknown-type")
    with _ws(server) as ws:
        outcome = ws.handshake(path)
        check(
            isinstance(outcome, Accepted),
            "the handshake was not accepted",
            expected="101",
            observed=describe(outcome),
            level=MUST,
        )
        report = ws.receive(server.timeouts.event)
    if not isinstance(report, Text):
        record(f"no report from the app: {describe(report)}")
        fail(
            "the app's report did not arrive after it sent websocket.bogus",
            expected="a text message with what send() did",
            observed=describe(report),
        )
    try:
        found = json.loads(report.data)
    except ValueError:
        fail("the app's report is not JSON", expected="JSON", observed=report.data[:200])
    record("no exception" if found.get("raised") is None else f"raised {found.get('raised')}")
    check(
        found.get("raised") is not None,
        "send({'type': 'websocket.bogus'}) did not raise",
        expected="an exception",
        observed="it returned normally",
    )


# -- §9: the WebSocket connection scope ----------------------------------------------------

SCOPE = "www › Websocket Connection Scope"
ABSENT: Any = object()


@dataclass(frozen=True)
class WsEcho:
    scope: dict[str, Any]
    local: tuple[str, int] | None
    peer: tuple[str, int] | None


def _ws_echo(
    server: Server,
    path: str = "/ws/echo",
    *,
    subprotocols: Iterable[str] = (),
    headers: Iterable[tuple[str | bytes, str | bytes]] = (),
) -> WsEcho:
    """Open a WebSocket to the catalogue's echo (any path outside /app/); return the scope it sent."""
    with _ws(server) as ws:
        outcome = ws.handshake(path, subprotocols=subprotocols, headers=headers)
        check(
            isinstance(outcome, Accepted),
            "the WebSocket handshake to the echo app failed",
            expected="101",
            observed=describe(outcome),
            level=MUST,
        )
        local = peer = None
        if ws.sock is not None and ws.sock.family in (socket.AF_INET, socket.AF_INET6):
            mine, theirs = ws.sock.getsockname(), ws.sock.getpeername()
            local, peer = (mine[0], mine[1]), (theirs[0], theirs[1])
        message = ws.receive(server.timeouts.event)
        ws.close(1000, timeout=server.timeouts.event)
    if not isinstance(message, Binary):
        fail("the echo app's scope did not arrive", expected="a binary message", observed=describe(message), level=MUST)
    try:
        scope = loads(message.data)["scope"]
    except (ValueError, KeyError, TypeError) as exc:
        fail("the message is not the echo app's", expected="typed JSON", observed=f"{message.data[:200]!r} ({exc})")
    if not isinstance(scope, dict):
        fail("the scope the app got is not a dict", expected="a dict", observed=scope, level=MUST)
    return WsEcho(scope, local, peer)


def _address(value: Any) -> Any:
    return tuple(value) if isinstance(value, list | tuple) else value


def _shape(value: Any) -> str:
    """The types of an address, "[str, int]": what a stable cell shows instead of the port."""
    if isinstance(value, list | tuple):
        return "[" + ", ".join(type(v).__name__ for v in value) + "]"
    return type(value).__name__


@scenario("ws.scope.type", "type is 'websocket'", level=MUST, spec="www › WebSocket", requires=WS)
def test_ws_scope_type(server: Server) -> None:
    expect(_ws_echo(server).scope.get("type", ABSENT), "websocket", "scope['type']")


@scenario(
    "ws.scope.asgi",
    "asgi['version'] is present; spec_version is an optional str (recorded)",
    level=MUST,
    spec=SCOPE,
    requires=WS,
)
def test_ws_scope_asgi(server: Server) -> None:
    asgi = _ws_echo(server).scope.get("asgi", ABSENT)
    check(isinstance(asgi, dict), "scope['asgi'] is missing or not a dict", expected="a dict", observed=asgi)
    version = asgi.get("version", ABSENT)
    spec_version = asgi.get("spec_version", ABSENT)
    record(f"version {version!r}, spec_version {'absent (2.0)' if spec_version is ABSENT else repr(spec_version)}")
    check(isinstance(version, str), "asgi['version'] is missing or not a str", expected="'3.0'", observed=version)
    check(
        spec_version is ABSENT or isinstance(spec_version, str),
        "asgi['spec_version'] is not a str",
        expected="a str such as '2.4', or absent",
        observed=spec_version,
    )


@scenario(
    "ws.scope.http_version",
    "http_version is '1.1' (or '2') when present; over HTTP/1.1 it is '1.1'",
    level=MUST,
    spec=SCOPE,
    requires=WS,
)
def test_ws_scope_http_version(server: Server) -> None:
    value = _ws_echo(server).scope.get("http_version", ABSENT)
    record("absent (means '1.1')" if value is ABSENT else repr(value))
    if value is not ABSENT:
        expect(value, "1.1", "http_version of a WebSocket over HTTP/1.1")


@scenario(
    "ws.scope.scheme",
    "scheme is 'ws' on a plain connection (never empty, never 'http')",
    level=MUST,
    spec=SCOPE,
    requires=WS,
)
def test_ws_scope_scheme(server: Server) -> None:
    value = _ws_echo(server).scope.get("scheme", ABSENT)
    record("absent (means 'ws')" if value is ABSENT else repr(value))
    if value is not ABSENT:
        expect(value, "ws", "scheme of a WebSocket without TLS")


@scenario(
    "ws.scope.path",
    "path is the %-decoded path str, without the query",
    level=MUST,
    spec=SCOPE,
    requires=WS,
)
def test_ws_scope_path(server: Server) -> None:
    expect(_ws_echo(server, "/ws/caf%C3%A9?x=1").scope.get("path", ABSENT), "/ws/café", "path")


@scenario(
    "ws.scope.raw_path",
    "raw_path, when present, is the undecoded path bytes without the query",
    level=MUST,
    spec=SCOPE,
    requires=WS,
)
def test_ws_scope_raw_path(server: Server) -> None:
    value = _ws_echo(server, "/ws/a%2Fb?x=1").scope.get("raw_path", ABSENT)
    if value is ABSENT or value is None:
        record("absent" if value is ABSENT else "None")
        return
    expect(value, b"/ws/a%2Fb", "raw_path (query excluded since the 2024-10 clarification)")


@scenario(
    "ws.scope.query_string",
    "query_string is the raw %-encoded query bytes",
    level=MUST,
    spec=SCOPE,
    requires=WS,
)
def test_ws_scope_query_string(server: Server) -> None:
    value = _ws_echo(server, "/ws/q?token=a%2Bb&x=y+z").scope.get("query_string", ABSENT)
    expect(value, b"token=a%2Bb&x=y+z", "query_string")


@scenario("ws.scope.root_path", "root_path is a str, '' by default", level=MUST, spec=SCOPE, requires=WS)
def test_ws_scope_root_path(server: Server) -> None:
    value = _ws_echo(server).scope.get("root_path", ABSENT)
    if value is ABSENT:
        record("absent (means '')")
        return
    expect(value, "", "root_path of a server run without a root path")


@scenario(
    "ws.scope.headers",
    "headers are [bytes, bytes] pairs; duplicates kept (MUST), names lower-case and order kept (SHOULD)",
    level=MUST,
    spec=SCOPE,
    requires=WS,
)
def test_ws_scope_headers(server: Server) -> None:
    sent = [("X-Dup", "1"), ("X-Mixed-Case", "v"), ("X-Dup", "2")]
    headers = _ws_echo(server, headers=sent).scope.get("headers", ABSENT)
    check(
        isinstance(headers, list | tuple)
        and all(isinstance(h, list | tuple) and len(h) == 2 and all(isinstance(x, bytes) for x in h) for h in headers),
        "headers is not a list of [bytes, bytes] pairs",
        expected="[[bytes, bytes], ...]",
        observed=headers,
    )
    ours = [(bytes(k), bytes(v)) for k, v in headers if bytes(k).lower() in (b"x-dup", b"x-mixed-case")]
    dups = [v for k, v in ours if k.lower() == b"x-dup"]
    check(
        sorted(dups) == [b"1", b"2"],
        "a repeated header was not kept as two entries",
        expected=[b"1", b"2"],
        observed=dups,
    )
    check(
        all(k == k.lower() for k, _ in ours),
        "header names are not lower-cased",
        expected="lower-case names",
        observed=[k for k, _ in ours],
        level=SHOULD,
    )
    expect(
        ours,
        [(b"x-dup", b"1"), (b"x-mixed-case", b"v"), (b"x-dup", b"2")],
        "the order of the headers",
        level=SHOULD,
    )


@scenario(
    "ws.scope.headers.handshake",
    "the handshake headers (host, upgrade, connection, sec-websocket-key, -version) appear as received",
    level=MUST,
    spec=SCOPE,
    requires=WS,
)
def test_ws_scope_headers_handshake(server: Server) -> None:
    headers = _ws_echo(server, headers=[("Origin", "http://example.test")]).scope.get("headers") or []
    names = {bytes(k).lower() for k, _ in headers if isinstance(k, bytes)}
    wanted = [b"host", b"upgrade", b"connection", b"sec-websocket-key", b"sec-websocket-version", b"origin"]
    missing = [n.decode() for n in wanted if n not in names]
    check(not missing, "handshake headers are missing from the scope", expected=[], observed=missing)
    version = [bytes(v) for k, v in headers if isinstance(k, bytes) and k.lower() == b"sec-websocket-version"]
    expect(version, [b"13"], "sec-websocket-version values")


@scenario(
    "ws.scope.client_server",
    "client and server are [host, port] of the connection, as the client's socket sees them",
    level=MUST,
    spec=SCOPE,
    requires=WS,
)
def test_ws_scope_client_server(server: Server) -> None:
    seen = _ws_echo(server)
    if seen.local is None or seen.peer is None:
        unsupported("the target listens on a Unix socket here: the TCP values cannot be compared")
    client_value = seen.scope.get("client", ABSENT)
    server_value = seen.scope.get("server", ABSENT)
    # The port types first, so a failure reads the same on every run (ports change).
    shapes = {k: _shape(v) for k, v in (("client", client_value), ("server", server_value)) if v not in (ABSENT, None)}
    check(
        all(shape.endswith(", int]") for shape in shapes.values()),
        "a port is not an int",
        expected=dict.fromkeys(shapes, "[str, int]"),
        observed=shapes,
    )
    if client_value not in (ABSENT, None):
        expect(_address(client_value), seen.local, "client (as a tuple)")
    if server_value not in (ABSENT, None):
        expect(_address(server_value), seen.peer, "server (as a tuple)")
    given = {
        k: "absent" if v is ABSENT else "None" if v is None else "as the socket sees it"
        for k, v in (("client", client_value), ("server", server_value))
    }
    record(f"client {given['client']}, server {given['server']}")


@scenario(
    "ws.scope.subprotocols",
    "subprotocols lists what the client offered, in order, split at commas, across repeated headers",
    level=MUST,
    spec=SCOPE,
    requires=WS,
)
def test_ws_scope_subprotocols(server: Server) -> None:
    """'a, b' in one Sec-WebSocket-Protocol header and 'c' in a second must give ['a', 'b', 'c']
    (RFC 9110 §5.3: repeated field lines are one comma-separated list)."""
    seen = _ws_echo(server, subprotocols=["a", "b"], headers=[("Sec-WebSocket-Protocol", "c")])
    value = seen.scope.get("subprotocols", ABSENT)
    record("absent" if value is ABSENT else repr(value))
    check(
        value is not ABSENT,
        "subprotocols is missing though the client offered some",
        expected=["a", "b", "c"],
        observed="absent",
    )
    expect(list(value) if isinstance(value, tuple) else value, ["a", "b", "c"], "subprotocols")
    expect(_ws_echo(server).scope.get("subprotocols", []), [], "subprotocols when none were offered")


@scenario(
    "ws.scope.extensions",
    "extensions, when present, is a dict of dicts (the keys are recorded)",
    level=INFO,
    spec="core › Extensions",
    requires=WS,
)
def test_ws_scope_extensions(server: Server) -> None:
    value = _ws_echo(server).scope.get("extensions", ABSENT)
    if value is ABSENT or value is None:
        record("absent" if value is ABSENT else "None")
        return
    check(
        isinstance(value, dict) and all(isinstance(v, dict) for v in value.values()),
        "extensions is not a dict of dicts",
        expected="{name: {...}}",
        observed=value,
        level=MUST,
    )
    # Keys the harness's own probes added (x-ac-mutate) show up where a server shares one
    # extensions dict between scopes (granian): counted, not listed, so the cell is stable.
    leaked = [k for k in value if k.startswith("ac.")]
    if leaked:
        note(f"{len(leaked)} 'ac.*' keys leaked from other scopes (the extensions dict is shared)")
    names = sorted(k for k in value if not k.startswith("ac."))
    record((names or "{} (none)") if not leaked else [*names, "(+ keys leaked from other scopes)"])


@scenario(
    "ws.scope.lifetime",
    "one app call lives as long as the socket: the client's close reaches the app, the app's end closes the socket",
    level=MUST,
    spec=SCOPE,
    requires=WS,
    impact="hang",
)
def test_ws_scope_lifetime(server: Server) -> None:
    """MUST: after the client's close the app gets websocket.disconnect (it journals it).
    SHOULD: when the app returns, the socket is closed (as err.ws.return_after_accept)."""
    found = _send_after_close(server)
    check(
        found.get("saw_disconnect") is True,
        "the app was not told that the client closed the WebSocket",
        expected="websocket.disconnect",
        observed="no disconnect within the app's own limit",
    )
    path, _ = _path("ws-return-after-accept")
    with _ws(server) as ws:
        outcome = ws.handshake(path)
        check(isinstance(outcome, Accepted), "the handshake failed", expected="101", observed=describe(outcome))
        end = _next_end(ws, server.timeouts.event)
    record(f"disconnect {found.get('disconnect')!r} reached the app; app returned -> {_end_value(end)}")
    check(
        not isinstance(end, Timeout),
        "the WebSocket stayed open after the app returned",
        expected="a close frame or the TCP connection closed",
        observed=describe(end),
        level=SHOULD,
    )


# -- §10-§13: helpers for the scripted app -------------------------------------------------
#
# Most cases below talk to the scripted app (apps.websocket.script): the steps it runs
# (receive, accept with these values, send this, report, echo, ...) travel in the query
# string, and its log of what each step did comes back as a text message ("report") or,
# once the client is gone, through the journal (always written when the script ends).

SCRIPT_STREAM = "ws-script-{token}"
RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
HANDSHAKE = "www › Connect, Accept"
DATA = "www › Receive, Send"
CLOSE = "www › Disconnect, Close"
DENIAL = "ext › Websocket Denial Response"
DENIAL_EXT = "websocket.http.response"

Step = dict[str, Any]
RECEIVE: Step = {"op": "receive"}
ACCEPT: Step = {"op": "send", "msg": {"type": "websocket.accept"}}
REPORT: Step = {"op": "report"}
SHAPE: Step = {"op": "shape"}
ECHO: Step = {"op": "echo"}


def _send(**message: Any) -> Step:
    return {"op": "send", "msg": message}


def _scripted(*steps: Step) -> tuple[str, str]:
    """A path to the scripted app that runs ``steps``, and its token."""
    path, token = _path("ws-script")
    encoded = base64.urlsafe_b64encode(dumps(list(steps))).decode("ascii").rstrip("=")
    return f"{path}?s={encoded}", token


def _final(server: Server, token: str, timeout: float | None = None) -> dict[str, Any]:
    """The scripted app's log once its script has ended (fails the check if it never does)."""
    found = server.journal.wait_for(
        SCRIPT_STREAM.format(token=token),
        lambda r: r.get("final") is True,
        server.timeouts.event if timeout is None else timeout,
    )
    if found is None:
        fail(
            "the scripted app did not finish within the deadline (an event it waited for never came?)",
            expected="the app's journal record",
            observed="none",
            level=MUST,
        )
    return found


def _parse_report(event: Event) -> dict[str, Any]:
    if not isinstance(event, Text):
        fail("the app's report did not arrive", expected="a text message (the app's log)", observed=describe(event))
    try:
        found = loads(event.data)
    except ValueError:
        fail("the app's report is not typed JSON", expected="typed JSON", observed=event.data[:200])
    if not isinstance(found, dict) or not isinstance(found.get("log"), list):
        fail("the app's report has no log", expected="{'scope':..., 'log': [...]}", observed=found)
    return found


def _accept(ws: WebSocket, path: str, **kwargs: Any) -> Accepted:
    outcome = ws.handshake(path, **kwargs)
    if not isinstance(outcome, Accepted):
        fail("the handshake was not accepted", expected="101", observed=describe(outcome), level=MUST)
    return outcome


def _step(found: dict[str, Any], index: int) -> dict[str, Any]:
    log = found.get("log") or []
    step = log[index] if index < len(log) and isinstance(log[index], dict) else {}
    return step


def _sent(step: dict[str, Any]) -> str:
    """What one ``send`` step did: "returned" or "raised <class>"."""
    if step.get("raised"):
        return f"raised {step.get('raised')}"
    return "returned" if step.get("ok") else "never ran"


def _scope(found: dict[str, Any]) -> dict[str, Any]:
    scope = found.get("scope")
    return scope if isinstance(scope, dict) else {}


def _advertises_denial(found: dict[str, Any]) -> bool:
    return DENIAL_EXT in (_scope(found).get("extensions") or [])


# -- a raw WebSocket: bytes as they are, frames parsed here --------------------------------
#
# wsclient speaks through wsproto, which hides pongs, opcodes and close payloads it
# rejects, and cannot write frames out of the usual order. These cases need exactly
# that, so they use this small reader of server frames and writer of masked client frames.

MAX_RAW = 8 * 1024 * 1024


def _frame(opcode: int, payload: bytes = b"", *, fin: bool = True) -> bytes:
    """One masked client frame."""
    mask = secrets.token_bytes(4)
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def _upgrade(
    path: str,
    headers: Iterable[tuple[str, str]] = (),
    *,
    key: str = RFC_KEY,
    upgrade: str = "websocket",
    connection: str = "Upgrade",
    version: str | None = "13",
) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", f"Upgrade: {upgrade}", f"Connection: {connection}"]
    if key:
        lines.append(f"Sec-WebSocket-Key: {key}")
    if version is not None:
        lines.append(f"Sec-WebSocket-Version: {version}")
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


@dataclass(frozen=True)
class Head:
    status: int
    headers: tuple[tuple[bytes, bytes], ...]

    def values(self, name: bytes) -> list[bytes]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


@dataclass(frozen=True)
class Frame:
    fin: bool
    opcode: int
    payload: bytes
    masked: bool = False


class RawWs:
    """A socket to the target; ``head`` reads an HTTP response head, ``frame`` one server frame.

    Every read is bounded in size and time; an end of the stream is the str ``end``
    ("eof", "reset", "timeout", "malformed: ...") with the call returning None.
    """

    def __init__(self, server: Server) -> None:
        self.buf = bytearray()
        self.end: str | None = None
        self.lines: list[str] = []
        self.sock: socket.socket | None = None
        try:
            self.sock = server.address.connect(server.timeouts.request)
        except OSError as exc:
            self.end = f"refused: {exc}"
        self.timeout = server.timeouts.request

    def __enter__(self) -> RawWs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
            cell = current_cell()
            if cell is not None:
                cell.trace.extend(self.lines[:100])

    def abort(self) -> None:
        if self.sock is not None:
            self.lines.append("> abort (RST)")
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close()

    def write(self, data: bytes) -> bool:
        self.lines.append(f"> {data[:200]!r}" + (f" ... ({len(data)} in all)" if len(data) > 200 else ""))
        if self.sock is None:
            return False
        try:
            self.sock.settimeout(self.timeout)
            self.sock.sendall(data)
        except OSError as exc:
            self.lines.append(f"  write failed: {exc}")
            return False
        return True

    def _fill(self, deadline: Deadline) -> bool:
        """Read more into the buffer; False (``end`` set) at EOF, reset, or the deadline."""
        if self.sock is None or self.end is not None:
            self.end = self.end or "closed"
            return False
        if deadline.expired:
            self.lines.append("< (timeout)")
            return False
        try:
            self.sock.settimeout(max(deadline.remaining(), 0.001))
            data = self.sock.recv(65536)
        except TimeoutError:
            self.lines.append("< (timeout)")
            return False
        except ConnectionResetError:
            self.end = "reset"
        except OSError as exc:
            self.end = f"error: {exc}"
        else:
            if not data:
                self.end = "eof"
            elif len(self.buf) + len(data) > MAX_RAW:
                self.end = f"malformed: more than {MAX_RAW} bytes unread"
            else:
                self.buf += data
                return True
        self.lines.append(f"< ({self.end})")
        return False

    def head(self, timeout: float) -> Head | None:
        """The next HTTP response head (None: ``end`` says why, or it did not come in time)."""
        deadline = Deadline(timeout)
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > 65536:
                self.end = "malformed: a response head over 64 KiB"
                return None
            if not self._fill(deadline):
                return None
        raw, _, rest = bytes(self.buf).partition(b"\r\n\r\n")
        self.buf = bytearray(rest)
        self.lines.append(f"< {raw[:400]!r}")
        lines = raw.split(b"\r\n")
        try:
            status = int(lines[0].split(b" ")[1])
        except (IndexError, ValueError):
            self.end = f"malformed: status line {lines[0][:100]!r}"
            return None
        headers = tuple((k.strip(), v.strip()) for k, _, v in (line.partition(b":") for line in lines[1:]))
        return Head(status, headers)

    def frame(self, timeout: float) -> Frame | None:
        """The next frame from the server (None: ``end`` says why, or it did not come in time)."""
        deadline = Deadline(timeout)
        while True:
            parsed = self._parse()
            if parsed is not None:
                shown = parsed.payload[:60]
                self.lines.append(
                    f"< frame fin={int(parsed.fin)} op={parsed.opcode:#x} {shown!r} ({len(parsed.payload)})"
                )
                return parsed
            if self.end is not None and self.end.startswith("malformed"):
                return None
            if not self._fill(deadline):
                return None

    def _parse(self) -> Frame | None:
        buf = self.buf
        if len(buf) < 2:
            return None
        masked = bool(buf[1] & 0x80)
        n, at = buf[1] & 0x7F, 2
        if n == 126:
            if len(buf) < 4:
                return None
            n, at = struct.unpack("!H", buf[2:4])[0], 4
        elif n == 127:
            if len(buf) < 10:
                return None
            n, at = struct.unpack("!Q", buf[2:10])[0], 10
        if n > MAX_RAW:
            self.end = f"malformed: a frame of {n} bytes"
            return None
        mask = bytes(buf[at : at + 4]) if masked else b""
        at += len(mask)
        if len(buf) < at + n:
            return None
        payload = bytes(buf[at : at + n])
        if masked:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        fin, opcode = bool(buf[0] & 0x80), buf[0] & 0x0F
        del buf[: at + n]
        return Frame(fin, opcode, payload, masked)

    def handshake(self, data: bytes, timeout: float | None = None) -> Head | None:
        if not self.write(data):
            return None
        return self.head(self.timeout if timeout is None else timeout)

    def message(self, timeout: float) -> Frame | None:
        """The next data message (fragments joined) or close frame; pings are answered, pongs skipped."""
        deadline = Deadline(timeout)
        parts: list[Frame] = []
        while True:
            got = self.frame(deadline.remaining())
            if got is None:
                return None
            if got.opcode == 0x9:
                self.write(_frame(0xA, got.payload))
                continue
            if got.opcode == 0xA:
                continue
            if got.opcode == 0x8:
                return got
            parts.append(got)
            if got.fin:
                return Frame(True, parts[0].opcode, b"".join(p.payload for p in parts))

    def wait_end(self, timeout: float) -> str:
        """Read (and drop) until the server ends the connection: "eof", "reset" or "timeout"."""
        deadline = Deadline(timeout)
        while self.end is None:
            self.buf.clear()
            if not self._fill(deadline) and self.end is None:
                return "timeout"
        return self.end


def _close_code(frame: Frame) -> tuple[int | None, bytes]:
    if len(frame.payload) < 2:
        return None, b""
    return struct.unpack("!H", frame.payload[:2])[0], frame.payload[2:]


def _raw_report(raw: RawWs, server: Server) -> dict[str, Any]:
    got = raw.message(server.timeouts.event)
    if got is None or got.opcode != 0x1:
        fail(
            "the app's report did not arrive",
            expected="a text message (the app's log)",
            observed=raw.end or (f"frame opcode {got.opcode:#x}" if got else "nothing in time"),
        )
    return _parse_report(Text(got.payload.decode("utf-8", "replace")))


# -- §10: handshake: connect, accept, close before accept ----------------------------------


@scenario(
    "ws.connect.first_event",
    "the app's first receive() returns websocket.connect (only 'type')",
    level=MUST,
    spec="www › Connect",
    requires=WS,
)
def test_connect_first_event(server: Server) -> None:
    path, _ = _scripted(RECEIVE, ACCEPT, REPORT)
    with _ws(server) as ws:
        _accept(ws, path)
        found = _parse_report(ws.receive(server.timeouts.event))
    event = _step(found, 0).get("event") or {}
    record(event.get("keys"))
    expect(event.get("type"), "websocket.connect", "the type of the first event")
    if event.get("keys") != ["type"]:
        note(f"websocket.connect carries extra keys: {event.get('keys')}")


@scenario(
    "ws.connect.hold_handshake",
    "no 101 before the app has accepted: the handshake waits for the app",
    level=MUST,
    spec="www › Connect",
    requires=WS,
    impact="interop",
)
def test_connect_hold_handshake(server: Server) -> None:
    """The app takes websocket.connect, journals it, and waits for a gate before accepting.
    Negative evidence: for ``timeouts.hold`` after the app got connect, no response may come."""
    path, token = _scripted(RECEIVE, {"op": "journal"}, {"op": "gate", "name": "go"}, ACCEPT)
    with RawWs(server) as raw:
        raw.write(_upgrade(path))
        seen = server.journal.wait_for(SCRIPT_STREAM.format(token=token), lambda r: True, server.timeouts.event)
        check(seen is not None, "the app never got websocket.connect", expected="a journal record", observed="none")
        early = raw.head(server.timeouts.hold)
        server.journal.open_gate(f"{token}-go")
        late = early or raw.head(server.timeouts.event)
    record("response held until the app accepted" if early is None else f"HTTP {early.status} before the app answered")
    check(
        early is None,
        "the server answered the handshake before the app accepted",
        expected="no response while the app has not answered websocket.connect",
        observed=f"HTTP {early.status}" if early else None,
    )
    check(
        late is not None and late.status == 101,
        "after the app accepted, no 101 came",
        expected="101",
        observed=f"HTTP {late.status}" if late else raw.end or "nothing in time",
    )


@scenario(
    "ws.connect.no_receive_before_reply",
    "after connect and accept, the app's next event is the client's first message, nothing before it",
    level=MUST,
    spec="www › Connect",
    requires=WS,
)
def test_connect_no_receive_before_reply(server: Server) -> None:
    path, _ = _scripted(RECEIVE, ACCEPT, RECEIVE, REPORT)
    with _ws(server) as ws:
        _accept(ws, path)
        ws.send_text("first")
        found = _parse_report(ws.receive(server.timeouts.event))
    event = _step(found, 2).get("event") or {}
    record(event.get("type"))
    expect(event.get("type"), "websocket.receive", "the type of the app's second event")
    expect(event.get("text"), "first", "the text of the app's second event")


@scenario(
    "ws.connect.early_frames",
    "a frame the client sends with its handshake, before the 101: delivered, dropped, or refused (recorded)",
    level=INFO,
    spec="www › Connect (not covered)",
    requires=WS,
    impact="security",
)
def test_connect_early_frames(launcher: Launcher) -> None:
    """Unspecified: recorded. Runs on a dedicated process: a server may not survive it.
    MUST: the server goes on serving (a client's bytes must not take it down), and if the
    early message reaches the app, it is the same text message. The app waits up to
    ``timeouts.hold`` for it (negative evidence)."""
    server = _dedicated(launcher)
    path, _ = _scripted(RECEIVE, ACCEPT, {"op": "receive", "within": server.timeouts.hold}, REPORT)
    event: Any = None
    with RawWs(server) as raw:
        head = raw.handshake(_upgrade(path) + _frame(0x1, b"early"))
        if head is None or head.status != 101:
            value = f"HTTP {head.status}" if head else f"no 101 ({raw.end or 'timeout'})"
        else:
            event = _step(_raw_report(raw, server), 2).get("event")
            value = "101; " + (
                "the early frame was dropped (the app got nothing)"
                if event is None
                else f"delivered to the app as {event.get('type')}"
            )
    # A server that falls over does so just after its answer (hypercorn-trio, seen): give it
    # ``timeouts.hold`` to exit (negative evidence) before asking whether it still serves.
    server.process.wait_exit(server.timeouts.hold)
    record(value + _still_serving(server, "a client sent a frame with its handshake"))
    if event is not None:
        check(
            event.get("type") == "websocket.receive" and event.get("text") == "early",
            "the early frame reached the app altered",
            expected="websocket.receive with text 'early'",
            observed=event,
            level=MUST,
        )


@scenario(
    "ws.accept.101",
    "accepting gives 101 with Upgrade: websocket, Connection: Upgrade and the right Sec-WebSocket-Accept",
    level=MUST,
    spec="www › Accept; RFC 6455 §4.2.2",
    requires=WS,
)
def test_accept_101(server: Server) -> None:
    with RawWs(server) as raw:
        head = raw.handshake(_upgrade("/ws/echo"))
    if head is None:
        fail("no response to the handshake", expected="101", observed=raw.end or "timeout")
    expect(head.status, 101, "the status")
    upgrade = [v.lower() for v in head.values(b"upgrade")]
    tokens = [t.strip().lower() for v in head.values(b"connection") for t in v.split(b",")]
    check(upgrade == [b"websocket"], "Upgrade is not 'websocket'", expected=[b"websocket"], observed=upgrade)
    check(b"upgrade" in tokens, "Connection does not contain 'Upgrade'", expected="Upgrade", observed=tokens)
    expect(head.values(b"sec-websocket-accept"), [RFC_ACCEPT.encode()], "Sec-WebSocket-Accept for the RFC's sample key")


@scenario(
    "ws.accept.subprotocol",
    "the subprotocol the app picks reaches the client in Sec-WebSocket-Protocol; none picked, no header",
    level=MUST,
    spec="www › Accept",
    requires=WS,
)
def test_accept_subprotocol(server: Server) -> None:
    path, _ = _scripted(RECEIVE, _send(type="websocket.accept", subprotocol="b"))
    with RawWs(server) as raw:
        head = raw.handshake(_upgrade(path, [("Sec-WebSocket-Protocol", "a, b")]))
    if head is None:
        fail("no response to the handshake", expected="101", observed=raw.end or "timeout")
    expect(head.status, 101, "the status")
    record([v.decode("latin-1") for v in head.values(b"sec-websocket-protocol")])
    expect(head.values(b"sec-websocket-protocol"), [b"b"], "Sec-WebSocket-Protocol when the app picked 'b'")
    path, _ = _scripted(RECEIVE, ACCEPT)
    with RawWs(server) as raw:
        head = raw.handshake(_upgrade(path, [("Sec-WebSocket-Protocol", "a, b")]))
    if head is None:
        fail("no response to the second handshake", expected="101", observed=raw.end or "timeout")
    expect(head.values(b"sec-websocket-protocol"), [], "Sec-WebSocket-Protocol when the app picked none")


def _dedicated(launcher: Launcher) -> Server:
    """A process of the target for this case alone (for cases a server may not survive)."""
    return Server(launcher.target, launcher.start(), launcher.timeouts)


def _still_serving(server: Server, after: str) -> str:
    """ "" if the (dedicated) server still accepts a WebSocket; else fails the MUST that it does."""
    with _ws(server) as ws:
        outcome = ws.handshake("/ws/echo", timeout=server.timeouts.event)
    alive = server.process.alive
    if isinstance(outcome, Accepted) and alive:
        return ""
    if not alive:
        note(f"the server process exited (status {server.process.exit_status()})")
    # A server falling over ends the connection with a reset, a plain close or a refusal,
    # whichever its teardown reaches first: one finding, described one way (the note says which).
    shown = describe(outcome)
    if isinstance(outcome, Reset | Closed | Refused):
        note(f"the next client's handshake: {shown}")
        shown = "connection dropped or refused"
    record(f"the server stopped serving after {after}: {shown}")
    fail(
        f"the server no longer serves WebSockets after {after}",
        expected="a 101 for the next client",
        observed=shown,
        level=MUST,
    )


def _past_own_timers(server: Server) -> float:
    """How long to wait for a handshake answer a server may give only on a timer of its own.

    daphne (autobahn) drops a handshake it has not completed after 5 s, the event deadline
    itself, so one deadline saw its reset in some runs and not in others; uvicorn's websockets
    gives up at 10 s. Halfway between, each timer lands on the same side of the wait every run.
    """
    return 1.5 * server.timeouts.event


def _odd_accept(
    launcher: Launcher, offered: str, accept: dict[str, Any]
) -> tuple[Head | None, str, dict[str, Any], Server]:
    """Offer ``offered``; the app accepts with ``accept``. The 101's head, how the wait ended
    (up to ``_past_own_timers``), the app's log."""
    server = _dedicated(launcher)
    path, token = _scripted(RECEIVE, _send(type="websocket.accept", **accept))
    with RawWs(server) as raw:
        head = raw.handshake(_upgrade(path, [("Sec-WebSocket-Protocol", offered)]), timeout=_past_own_timers(server))
        end = raw.end or ("timeout" if head is None else "")
    found = _final(server, token)
    return head, end, found, server


@scenario(
    "ws.accept.subprotocol_unoffered",
    "the app picks a subprotocol the client never offered (outcome recorded; never on the wire, RFC 6455)",
    level=INFO,
    spec="www › Accept (not covered); RFC 6455 §4.2.2",
    covers=["ws.accept.subprotocol_unoffered", "wire.ws.hs.subprotocol_from_offer"],
    requires=WS,
)
def test_accept_subprotocol_unoffered(launcher: Launcher) -> None:
    """Unspecified in ASGI: recorded. RFC 6455 (MUST): a 101 may only name an offered subprotocol."""
    head, end, found, server = _odd_accept(launcher, "a", {"subprotocol": "zzz"})
    sent = _sent(_step(found, 1))
    if head is None:
        record(f"accept {sent}; no response ({end})")
    else:
        named = head.values(b"sec-websocket-protocol")
        record(f"accept {sent}; HTTP {head.status}" + (f", Sec-WebSocket-Protocol {named}" if named else ""))
        check(
            not (head.status == 101 and named and named != [b"a"]),
            "the 101 names a subprotocol the client never offered",
            expected="no 101, or a 101 without it",
            observed=named,
            level=MUST,
        )
    check(end != "timeout", "the handshake was never answered", expected="a response", observed="none", level=MUST)
    _still_serving(server, "an app's odd accept")


@scenario(
    "ws.accept.headers",
    "accept headers (spec >= 2.1) reach the 101 in order, duplicates kept",
    level=MUST,
    spec="www › Accept, Spec Versions",
    requires=WS,
)
def test_accept_headers(server: Server) -> None:
    given = [(b"x-a", b"1"), (b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")]
    path, _ = _scripted(RECEIVE, _send(type="websocket.accept", headers=given), REPORT)
    with RawWs(server) as raw:
        head = raw.handshake(_upgrade(path))
        found = _raw_report(raw, server) if head is not None and head.status == 101 else {}
    if head is None or head.status != 101:
        fail("the handshake was not accepted", expected="101", observed=f"HTTP {head.status}" if head else raw.end)
    ours = [(k.lower(), v) for k, v in head.headers if k.lower() in (b"x-a", b"set-cookie")]
    claimed = _scope(found).get("spec_version")
    record(f"spec {claimed or '2.0 (missing)'}: {len(ours)} of 3 headers")
    version = _version(claimed) or (2, 0)
    if version < (2, 1) and ours != given:
        note(f"spec_version {claimed!r} predates 2.1: accept headers need not be sent")
        return
    expect(ours, given, "the app's headers in the 101")


@scenario(
    "ws.accept.headers_swp_forbidden",
    "the app puts sec-websocket-protocol in accept headers (forbidden to apps; what the server does is recorded)",
    level=INFO,
    spec="www › Accept",
    requires=WS,
)
def test_accept_headers_swp_forbidden(launcher: Launcher) -> None:
    """Unspecified: recorded (a raise, a silent drop, the header as given, a duplicate). The handshake must end."""
    head, end, found, server = _odd_accept(launcher, "a, b", {"headers": [(b"sec-websocket-protocol", b"b")]})
    sent = _sent(_step(found, 1))
    if head is None:
        record(f"accept {sent}; no response ({end})")
    else:
        named = [v.decode("latin-1") for v in head.values(b"sec-websocket-protocol")]
        record(f"accept {sent}; HTTP {head.status}, Sec-WebSocket-Protocol {named or 'absent'}")
    check(end != "timeout", "the handshake was never answered", expected="a response", observed="none", level=MUST)
    _still_serving(server, "an app's odd accept")


@scenario(
    "ws.accept.twice",
    "a second websocket.accept makes send() raise",
    level=SHOULD,
    spec=ERRORS,
    requires=WS,
)
def test_accept_twice(server: Server) -> None:
    path, _ = _scripted(RECEIVE, ACCEPT, ACCEPT, REPORT)
    with _ws(server) as ws:
        _accept(ws, path)
        event = ws.receive(server.timeouts.event)
    found = _parse_report(event)
    second = _sent(_step(found, 2))
    record(f"second accept: {second}")
    check(second.startswith("raised"), "the second accept did not raise", expected="an exception", observed=second)


@scenario(
    "ws.accept.invalid_values",
    "accept with a non-str subprotocol, or str header values, makes send() raise",
    level=SHOULD,
    spec=ERRORS,
    requires=WS,
)
def test_accept_invalid_values(launcher: Launcher) -> None:
    """Each invalid accept is followed by a proper one, then the report. A server that takes the
    invalid accept answers the proper one as a second accept (noted). On a dedicated process
    (MUST: the server goes on serving)."""
    server = _dedicated(launcher)
    results = []
    for label, accept, offered in (
        ("subprotocol 123", {"subprotocol": 123}, ["123"]),
        ("str header values", {"headers": [("x-a", "1")]}, []),
    ):
        path, token = _scripted(RECEIVE, _send(type="websocket.accept", **accept), ACCEPT, REPORT)
        with _ws(server) as ws:
            outcome = ws.handshake(path, subprotocols=offered)
            note(f"{label}: {describe(outcome)}")
        _still_serving(server, f"an accept with {label}")
        found = _final(server, token)
        results.append((label, _sent(_step(found, 1))))
    record("; ".join(f"{label}: {what}" for label, what in results))
    bad = [label for label, what in results if not what.startswith("raised")]
    check(not bad, "an invalid accept did not raise", expected="send() raises", observed=bad)


def _close_before_accept(server: Server, *, rest: bool = False, **close: Any) -> tuple[object, bytes, str]:
    path, _ = _scripted(RECEIVE, _send(type="websocket.close", **close))
    with _ws(server) as ws:
        outcome = ws.handshake(path)
        more, end = ws.read_rest(server.timeouts.event) if rest and isinstance(outcome, Denied) else (b"", None)
    if end is None:
        return outcome, more, ""
    return outcome, more, "EOF" if isinstance(end, Closed) else "reset" if isinstance(end, Reset) else describe(end)


@scenario(
    "ws.close_before_accept.403",
    "websocket.close before accept gives HTTP 403, never a 101",
    level=MUST,
    spec="www › Connect, Close",
    requires=WS,
)
def test_close_before_accept_403(server: Server) -> None:
    outcome, _, _ = _close_before_accept(server)
    record(_handshake_value(outcome))
    check(
        isinstance(outcome, Denied) and outcome.status == 403,
        "a close before accept did not give 403",
        expected="HTTP 403",
        observed=describe(outcome),
    )


@scenario(
    "ws.close_before_accept.code_ignored",
    "a code and reason on the close before accept do not change the 403",
    level=MUST,
    spec="www › Close",
    requires=WS,
)
def test_close_before_accept_code_ignored(server: Server) -> None:
    outcome, _, _ = _close_before_accept(server, code=4001, reason="nope")
    record(_handshake_value(outcome))
    check(
        isinstance(outcome, Denied) and outcome.status == 403,
        "a close with code 4001 before accept did not give 403",
        expected="HTTP 403",
        observed=describe(outcome),
    )


@scenario(
    "ws.close_before_accept.well_formed",
    "the 403 is a complete HTTP response, then the connection is closed",
    level=MUST,
    spec="www › Close",
    requires=WS,
    impact="hang",
)
def test_close_before_accept_well_formed(server: Server) -> None:
    outcome, rest, end = _close_before_accept(server, rest=True)
    record(f"{_handshake_value(outcome)}; then {end or 'nothing'}")
    check(
        isinstance(outcome, Denied) and outcome.complete,
        "the response to a close before accept is not a complete HTTP response",
        expected="a complete response",
        observed=describe(outcome),
    )
    check(not rest, "bytes after the response", expected=b"", observed=rest[:200])
    check(
        end in ("EOF", "reset"),
        "the connection stayed open",
        expected="EOF",
        observed=end,
    )


@scenario(
    "ws.connect.no_reply_timeout",
    "an app that never answers websocket.connect: what the server does within 1.5 event deadlines (recorded)",
    level=INFO,
    spec="www › Connect (not covered)",
    requires=WS,
    impact="hang",
    waits="the server's timeout for an app that never answers websocket.connect (up to 1.5 event deadlines)",
)
def test_connect_no_reply_timeout(server: Server) -> None:
    """Unspecified: recorded (no answer within ``_past_own_timers``, or the answer and its
    time). MUST: whatever the server does, it is not a 101 (the app never accepted)."""
    path, token = _scripted(RECEIVE, {"op": "gate", "name": "never"})
    wait = _past_own_timers(server)
    with _ws(server) as ws:
        started = time.monotonic()
        outcome = ws.handshake(path, timeout=wait)
        elapsed = time.monotonic() - started
    server.journal.open_gate(f"{token}-never")  # let the app end
    if isinstance(outcome, Timeout):
        record(f"no answer within {wait:g} s")
    else:
        note(f"answered after {elapsed:.1f} s")
        record(f"{_handshake_value(outcome)} (after a delay of its own)")
    check(
        not isinstance(outcome, Accepted),
        "the server completed the handshake though the app never accepted",
        expected="no 101",
        observed=describe(outcome),
        level=MUST,
    )


@scenario(
    "ws.handshake.token_matching",
    "Upgrade: WebSocket and Connection: keep-alive, Upgrade still give a 101",
    level=MUST,
    spec="RFC 6455 §4.2.1",
    requires=WS,
)
def test_handshake_token_matching(server: Server) -> None:
    with RawWs(server) as raw:
        head = raw.handshake(_upgrade("/ws/echo", upgrade="WebSocket", connection="keep-alive, Upgrade"))
    record(f"HTTP {head.status}" if head else raw.end or "no answer")
    check(
        head is not None and head.status == 101,
        "the handshake with mixed-case Upgrade and a Connection list was not accepted",
        expected="101",
        observed=f"HTTP {head.status}" if head else raw.end,
    )


@scenario(
    "ws.handshake.invalid_refused",
    "a handshake without Sec-WebSocket-Key (400) or with version 12 (426 + Sec-WebSocket-Version) starts no app",
    level=MUST,
    spec="RFC 6455 §4.2.1, §4.4",
    requires=WS,
    impact="security",
)
def test_handshake_invalid_refused(server: Server) -> None:
    """MUST: no 101 and no websocket scope reaches the app (the app journals every scope it gets;
    negative evidence: ``timeouts.hold`` after the answer). The 400 and 426 (with
    Sec-WebSocket-Version) are RFC examples ("such as"): a different 4xx is noted."""
    seen = {}
    started = []
    for label in ("no key", "version 12"):
        path, token = _scripted({"op": "journal"})
        request = _upgrade(path, key="") if label == "no key" else _upgrade(path, version="12")
        with RawWs(server) as raw:
            head = raw.handshake(request)
        found = server.journal.wait_for(SCRIPT_STREAM.format(token=token), lambda r: True, server.timeouts.hold)
        kind = _scope(found).get("type") if found else None
        seen[label] = (f"HTTP {head.status}" if head else raw.end or "no answer") + (
            f", app called with a {kind} scope" if kind else ""
        )
        if head is not None and label == "version 12":
            versions = head.values(b"sec-websocket-version")
            if head.status != 426 or not versions:
                note(f"version 12: HTTP {head.status}, Sec-WebSocket-Version {versions} (RFC 6455 §4.4: 426 + it)")
        if kind == "websocket" or (head is not None and head.status == 101):
            started.append(label)
    record(seen)
    check(not started, "an invalid handshake was accepted or reached the app", expected="refused", observed=seen)


@scenario(
    "ws.deflate.negotiation",
    "permessage-deflate: what the server accepts when offered (recorded); never enabled unoffered",
    level=INFO,
    spec="RFC 7692; RFC 6455 §9.1",
    requires=WS,
)
def test_deflate_negotiation(server: Server) -> None:
    """MUST (RFC 6455 §9.1): without an offer, no Sec-WebSocket-Extensions in the 101.
    What the server answers to an offer is recorded (the compressed echo is wire.ws.deflate's)."""
    with RawWs(server) as raw:
        offered = raw.handshake(
            _upgrade("/ws/echo", [("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")])
        )
    with RawWs(server) as raw:
        plain = raw.handshake(_upgrade("/ws/echo"))
    if offered is None:
        record("no answer to the offer")
    else:
        agreed = [v.decode("latin-1") for v in offered.values(b"sec-websocket-extensions")]
        record(f"offered: {'; '.join(agreed) if agreed else 'declined (no header)'}")
    check(
        plain is not None and plain.status == 101,
        "no 101 for a plain handshake",
        expected="101",
        observed=f"HTTP {plain.status}" if plain else "none",
        level=MUST,
    )
    assert plain is not None
    check(
        not plain.values(b"sec-websocket-extensions"),
        "an extension was enabled that the client did not offer",
        expected="no Sec-WebSocket-Extensions",
        observed=plain.values(b"sec-websocket-extensions"),
        level=MUST,
    )


# -- §11: data: receive, send, ping --------------------------------------------------------


def _shapes(server: Server, send: Iterable[str | bytes]) -> list[dict[str, Any]]:
    """Send each message; the app answers each with the shape of the event it got."""
    path, _ = _scripted(RECEIVE, ACCEPT, SHAPE)
    shapes = []
    with _ws(server) as ws:
        _accept(ws, path)
        for message in send:
            if isinstance(message, str):
                ws.send_text(message)
            else:
                ws.send_bytes(message)
            reply = ws.receive(server.timeouts.event)
            if not isinstance(reply, Text):
                fail("the app did not answer a message", expected="its shape", observed=describe(reply))
            shapes.append(loads(reply.data))
        ws.close(1000, timeout=server.timeouts.event)
    return shapes


@scenario(
    "ws.receive.text",
    "a text message reaches the app as 'text' (str); 'bytes' None or absent",
    level=MUST,
    spec="www › Receive",
    requires=WS,
    impact="data-loss",
)
def test_receive_text(server: Server) -> None:
    sent = "héllo 😀"
    (got,) = _shapes(server, [sent])
    record(f"text {got.get('text_type')}, bytes {got.get('bytes_type', 'absent')}")
    expect(got.get("type"), "websocket.receive", "the event type")
    expect(got.get("text"), sent, "the text")
    check(
        got.get("bytes_type") in (None, "NoneType"),
        "'bytes' is set",
        expected="None or absent",
        observed=got.get("bytes_type"),
    )


@scenario(
    "ws.receive.bytes",
    "a binary message reaches the app as 'bytes'; 'text' None or absent",
    level=MUST,
    spec="www › Receive",
    requires=WS,
    impact="data-loss",
)
def test_receive_bytes(server: Server) -> None:
    sent = b"\x00\xffabc\x80"
    (got,) = _shapes(server, [sent])
    record(f"bytes {got.get('bytes_type')}, text {got.get('text_type', 'absent')}")
    expect(got.get("type"), "websocket.receive", "the event type")
    expect(got.get("bytes"), sent, "the bytes")
    check(
        got.get("text_type") in (None, "NoneType"),
        "'text' is set",
        expected="None or absent",
        observed=got.get("text_type"),
    )


@scenario(
    "ws.receive.exactly_one",
    "every receive event has exactly one of bytes and text non-None",
    level=MUST,
    spec="www › Receive",
    requires=WS,
)
def test_receive_exactly_one(server: Server) -> None:
    shapes = _shapes(server, ["a", b"b", "", b""])
    both = [
        s
        for s in shapes
        if [s.get("text_type") not in (None, "NoneType"), s.get("bytes_type") not in (None, "NoneType")].count(True)
        != 1
    ]
    record(sorted({tuple(s.get("keys") or ()) for s in shapes}))
    check(not both, "an event without exactly one of text and bytes", expected="exactly one", observed=both)


@scenario(
    "ws.receive.empty",
    "an empty message arrives as '' or b'' (not None, not dropped)",
    level=MUST,
    spec="www › Receive",
    requires=WS,
    impact="data-loss",
)
def test_receive_empty(server: Server) -> None:
    text, binary = _shapes(server, ["", b""])
    record(f"{text.get('text')!r}, {binary.get('bytes')!r}")
    expect(text.get("text"), "", "an empty text message")
    expect(binary.get("bytes"), b"", "an empty binary message")


@scenario(
    "ws.receive.order",
    "100 messages reach the app in order",
    level=MUST,
    spec="www › Receive",
    requires=WS,
    impact="data-loss",
)
def test_receive_order(server: Server) -> None:
    path, _ = _scripted(RECEIVE, ACCEPT, ECHO)
    with _ws(server) as ws:
        _accept(ws, path)
        for i in range(100):
            ws.send_text(str(i))
        back = []
        for _ in range(100):
            got = ws.receive(server.timeouts.event)
            if not isinstance(got, Text):
                back.append(describe(got))
                break
            back.append(got.data)
        ws.close(1000, timeout=server.timeouts.event)
    expect(back, [str(i) for i in range(100)], "the echoed sequence")


SIZES = (1, 125, 126, 65535, 65536, 1024 * 1024)
BIG = 4 * 1024 * 1024
"""Beyond some servers' default limit (daphne: 1 MiB): recorded, not judged."""


@scenario(
    "ws.receive.sizes",
    "text and binary messages of 1 B to 1 MiB reach the app intact (echo by sha256; 4 MiB recorded)",
    level=MUST,
    spec="www › Receive, Send",
    covers=["ws.receive.text", "ws.receive.bytes"],
    requires=WS,
    impact="data-loss",
)
def test_receive_sizes(server: Server) -> None:
    """Binary at each size up to 1 MiB, text at 1 B, 64 KiB and 1 MiB; the app echoes each back
    (MUST). Then 4 MiB binary: what happens is recorded (a server may have a smaller limit; RFC 6455
    lets it close with 1009). Empty messages are ws.receive.empty's and ws.send.empty's."""
    path, _ = _scripted(RECEIVE, ACCEPT, ECHO)
    bad = []
    pattern = bytes(range(32, 127))
    with _ws(server) as ws:
        _accept(ws, path)
        messages: list[str | bytes] = [(pattern * (n // len(pattern) + 1))[:n] for n in SIZES]
        messages += [(pattern * 12000)[:n].decode() for n in (1, 65536, 1024 * 1024)]
        big = "not tried"
        for sent in messages:
            failed = ws.send_text(sent) if isinstance(sent, str) else ws.send_bytes(sent)
            got = ws.receive(server.timeouts.event) if failed is None else failed
            data = got.data if isinstance(got, Text | Binary) else None
            if (
                type(data) is not type(sent)
                or hashlib.sha256(_utf8(data)).digest() != hashlib.sha256(_utf8(sent)).digest()
            ):
                bad.append(f"{type(sent).__name__} {len(sent)}: {describe(got)}")
                if data is None:
                    break
        if not bad:
            sent = (pattern * (BIG // len(pattern) + 1))[:BIG]
            failed = ws.send_bytes(sent)
            got = ws.receive(server.timeouts.event) if failed is None else failed
            big = "echoed intact" if got == Binary(sent) else describe(got)[:80]
        ws.close(1000, timeout=server.timeouts.event)
    record(("up to 1 MiB intact" if not bad else f"{len(bad)} altered or lost") + f"; 4 MiB: {big}")
    check(not bad, "messages did not come back intact", expected="every size echoed", observed=bad)


def _utf8(value: str | bytes | None) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value or b""


def _fragments_case(server: Server, frames: list[bytes]) -> tuple[list[dict[str, Any]], list[Frame], str]:
    """Write ``frames`` raw to the shape app, then a whole text 'end'; the shapes up to 'end', control frames seen."""
    path, _ = _scripted(RECEIVE, ACCEPT, SHAPE)
    shapes: list[dict[str, Any]] = []
    controls: list[Frame] = []
    with RawWs(server) as raw:
        head = raw.handshake(_upgrade(path))
        if head is None or head.status != 101:
            fail("the handshake was not accepted", expected="101", observed=f"HTTP {head.status}" if head else raw.end)
        raw.write(b"".join(frames) + _frame(0x1, b"end"))
        deadline = Deadline(server.timeouts.event)
        while True:
            got = raw.frame(deadline.remaining())
            if got is None:
                return shapes, controls, raw.end or "timeout"
            if got.opcode in (0x8, 0x9, 0xA):
                controls.append(got)
                if got.opcode == 0x8:
                    return shapes, controls, "close"
                continue
            found = loads(got.payload)
            shapes.append(found)
            if found.get("text") == "end":
                raw.write(_frame(0x8, struct.pack("!H", 1000)))
                return shapes, controls, "end"


@scenario(
    "ws.receive.fragmented",
    "a message in 3 fragments reaches the app as one event",
    level=SHOULD,
    spec="www › WebSocket",
    requires=WS,
    impact="data-loss",
)
def test_receive_fragmented(server: Server) -> None:
    frames = [_frame(0x1, b"one-", fin=False), _frame(0x0, b"two-", fin=False), _frame(0x0, b"three")]
    shapes, _, _end = _fragments_case(server, frames)
    texts = [s.get("text") for s in shapes]
    record(texts)
    expect(texts, ["one-two-three", "end"], "the messages the app got (then 'end')")


@scenario(
    "ws.receive.fragment_with_control",
    "a ping between fragments gets its pong; the message stays whole",
    level=MUST,
    spec="RFC 6455 §5.4",
    requires=WS,
    impact="data-loss",
)
def test_receive_fragment_with_control(server: Server) -> None:
    frames = [_frame(0x1, b"one-", fin=False), _frame(0x9, b"mid"), _frame(0x0, b"two")]
    shapes, controls, _end = _fragments_case(server, frames)
    pongs = [c.payload for c in controls if c.opcode == 0xA]
    texts = [s.get("text") for s in shapes]
    record(f"pongs {pongs}, messages {texts}")
    expect(pongs, [b"mid"], "pongs for the ping between the fragments")
    expect(texts, ["one-two", "end"], "the messages the app got (then 'end')")


@scenario(
    "ws.receive.utf8",
    "text is decoded right: non-BMP characters, also split across fragments",
    level=MUST,
    spec="www › Receive; RFC 6455 §5.6",
    requires=WS,
    impact="data-loss",
)
def test_receive_utf8(server: Server) -> None:
    emoji = "a😀b".encode()
    frames = [_frame(0x1, emoji[:3], fin=False), _frame(0x0, emoji[3:])]
    shapes, _, _end = _fragments_case(server, [_frame(0x1, "é😀".encode()), *frames])
    texts = [s.get("text") for s in shapes]
    record(texts)
    expect(texts, ["é😀", "a😀b", "end"], "the texts the app got")


def _sent_by_app(server: Server, *steps: Step) -> tuple[list[Event], dict[str, Any]]:
    """The app accepts, runs ``steps`` and closes; the messages the client got and the app's log."""
    path, token = _scripted(RECEIVE, ACCEPT, *steps, _send(type="websocket.close", code=1000))
    events: list[Event] = []
    with _ws(server) as ws:
        _accept(ws, path)
        # Each message within its own deadline (a 1 MiB message from a slow server on a busy
        # machine may take a while), at most one more message than the app sends.
        for _ in range(len(steps) + 2):
            got = ws.receive(server.timeouts.event)
            events.append(got)
            if not isinstance(got, Text | Binary):
                break
    return events, _final(server, token)


def _messages(events: list[Event]) -> list[str | bytes]:
    return [e.data for e in events if isinstance(e, Text | Binary)]


@scenario("ws.send.text", "websocket.send with text gives a text frame", level=MUST, spec="www › Send", requires=WS)
def test_send_text(server: Server) -> None:
    events, _ = _sent_by_app(server, _send(type="websocket.send", text="héllo"))
    record(describe(events[0]))
    check(
        bool(events) and events[0] == Text("héllo"),
        "no text frame 'héllo'",
        expected="text 'héllo'",
        observed=describe(events[0]),
    )


@scenario("ws.send.bytes", "websocket.send with bytes gives a binary frame", level=MUST, spec="www › Send", requires=WS)
def test_send_bytes(server: Server) -> None:
    events, _ = _sent_by_app(server, _send(type="websocket.send", bytes=b"\x00\xff"))
    record(describe(events[0]))
    check(
        events[0] == Binary(b"\x00\xff"),
        "no binary frame",
        expected="binary b'\\x00\\xff'",
        observed=describe(events[0]),
    )


@scenario(
    "ws.send.one_key_none",
    "send with one of text/bytes None and the other set is valid",
    level=MUST,
    spec="www › Send",
    requires=WS,
)
def test_send_one_key_none(server: Server) -> None:
    events, found = _sent_by_app(
        server, _send(type="websocket.send", bytes=None, text="x"), _send(type="websocket.send", text=None, bytes=b"y")
    )
    record([_sent(_step(found, 2)), _sent(_step(found, 3))])
    expect(_messages(events), ["x", b"y"], "the messages the client got")


@scenario(
    "ws.send.both_set",
    "send with both text and bytes set raises",
    level=SHOULD,
    spec="www › Send; " + ERRORS,
    requires=WS,
)
def test_send_both_set(server: Server) -> None:
    events, found = _sent_by_app(server, _send(type="websocket.send", text="a", bytes=b"b"))
    what = _sent(_step(found, 2))
    record(f"{what}; the client got {[describe(e) for e in events[:-1]] or 'nothing'}")
    check(what.startswith("raised"), "send() with text and bytes did not raise", expected="an exception", observed=what)


@scenario(
    "ws.send.neither",
    "send with neither text nor bytes raises",
    level=SHOULD,
    spec="www › Send; " + ERRORS,
    requires=WS,
)
def test_send_neither(server: Server) -> None:
    events, found = _sent_by_app(
        server, _send(type="websocket.send"), _send(type="websocket.send", text=None, bytes=None)
    )
    what = [_sent(_step(found, 2)), _sent(_step(found, 3))]
    record(f"{what}; the client got {[describe(e) for e in events[:-1]] or 'nothing'}")
    check(
        all(w.startswith("raised") for w in what),
        "send() without text or bytes did not raise",
        expected="an exception both times",
        observed=what,
    )


@scenario(
    "ws.send.empty",
    "sending '' and b'' gives zero-length frames",
    level=MUST,
    spec="www › Send",
    requires=WS,
    impact="data-loss",
)
def test_send_empty(server: Server) -> None:
    events, _ = _sent_by_app(server, _send(type="websocket.send", text=""), _send(type="websocket.send", bytes=b""))
    record([describe(e) for e in events])
    expect(_messages(events), ["", b""], "the messages the client got")


@scenario(
    "ws.send.large",
    "messages of 0 B to 4 MiB from the app arrive intact",
    level=MUST,
    spec="www › Send",
    requires=WS,
    impact="data-loss",
)
def test_send_large(server: Server) -> None:
    """MUST up to 1 MiB (binary and text); a 4 MiB message last is recorded (a server may limit it).

    The app then sends "end" and closes only once the client says it has read everything: a
    close right after the messages would also judge how long the server waits for the
    client's close reply while its buffers drain (autobahn: 1 s, then the rest is dropped),
    which depends on how fast a loaded machine lets the client read."""
    steps: list[Step] = [{"op": "blob", "size": n} for n in SIZES]
    steps += [{"op": "blob", "size": 1024 * 1024, "kind": "text"}, {"op": "blob", "size": BIG}]
    path, token = _scripted(
        RECEIVE,
        ACCEPT,
        *steps,
        _send(type="websocket.send", text="end"),
        {"op": "receive", "within": server.timeouts.event},
        _send(type="websocket.close", code=1000),
    )
    events: list[Event] = []
    with _ws(server) as ws:
        _accept(ws, path)
        for _ in range(len(steps) + 3):  # each message within its own deadline
            got = ws.receive(server.timeouts.event)
            events.append(got)
            if got == Text("end"):
                ws.send_text("read")
            if not isinstance(got, Text | Binary):
                break
    _final(server, token)
    pattern = bytes(range(32, 127)) * 3
    wanted: list[str | bytes] = [(pattern * (n // len(pattern) + 1))[:n] for n in SIZES]
    wanted.append((pattern * (1024 * 1024 // len(pattern) + 1))[: 1024 * 1024].decode())
    got_all = [m for m in _messages(events) if m != "end"]
    note(f"after {len(got_all)} messages and {'the' if Text('end') in events else 'no'} 'end': {describe(events[-1])}")
    bad = [f"message {i} ({len(w)})" for i, w in enumerate(wanted) if i >= len(got_all) or got_all[i] != w]
    big = got_all[len(wanted)] if len(got_all) > len(wanted) else None
    shown = "intact" if big == (pattern * (BIG // len(pattern) + 1))[:BIG] else "lost" if big is None else "altered"
    record(("up to 1 MiB intact" if not bad else f"{len(bad)} altered or lost") + f"; 4 MiB: {shown}")
    check(not bad, "messages from the app did not arrive intact", expected="all sizes", observed=bad)


@scenario(
    "ws.send.before_accept",
    "websocket.send before accept: raise, implicit 101, or an HTTP error (recorded); never lost in silence",
    level=INFO,
    spec="www › Connect",
    requires=WS,
    impact="data-loss",
)
def test_send_before_accept(server: Server) -> None:
    """Unspecified: recorded. MUST: if send() returned, the message reaches the client
    (a send() that returns and whose message is lost is silent data loss)."""
    path, token = _scripted(RECEIVE, _send(type="websocket.send", text="early"), ACCEPT, REPORT)
    with _ws(server) as ws:
        outcome = ws.handshake(path)
        first = ws.receive(server.timeouts.event) if isinstance(outcome, Accepted) else outcome
    found = _final(server, token)
    what = _sent(_step(found, 1))
    then = describe(first)
    if isinstance(first, Text) and first != Text("early"):
        then = "another text message (the app's report), not 'early'"
    after = f", then {then}" if isinstance(outcome, Accepted) else ""
    record(f"send {what}; client: {_handshake_value(outcome)}{after}")
    if what == "returned":
        check(
            first == Text("early"),
            "send() before accept returned, but the message never reached the client",
            expected="text 'early' (or a raise)",
            observed=then,
            level=MUST,
        )


def _ping_case(server: Server, control: bytes) -> tuple[list[Frame], list[dict[str, Any]]]:
    shapes, controls, _ = _fragments_case(server, [control])
    return controls, shapes


@scenario(
    "ws.ping.auto_pong",
    "a client ping gets a pong with the same payload; the app sees nothing",
    level=MUST,
    spec="www › WebSocket; RFC 6455 §5.5.2",
    requires=WS,
    impact="hang",
)
def test_ping_auto_pong(server: Server) -> None:
    controls, shapes = _ping_case(server, _frame(0x9, b"abc"))
    pongs = [c.payload for c in controls if c.opcode == 0xA]
    record(f"pongs {pongs}; app events {[s.get('text', s.get('bytes')) for s in shapes]}")
    expect(pongs, [b"abc"], "pongs")
    expect([s.get("text") for s in shapes], ["end"], "what the app got (only the message after the ping)", level=SHOULD)


@scenario(
    "ws.pong.unsolicited",
    "an unsolicited pong is ignored: no error, no app event",
    level=MUST,
    spec="RFC 6455 §5.5.3",
    requires=WS,
)
def test_pong_unsolicited(server: Server) -> None:
    controls, shapes = _ping_case(server, _frame(0xA, b"zz"))
    record(
        f"app events {[s.get('text', s.get('bytes')) for s in shapes]}; control frames {[c.opcode for c in controls]}"
    )
    expect([s.get("text") for s in shapes], ["end"], "what the app got (only the message after the pong)")


# -- §12: close and disconnect -------------------------------------------------------------


@dataclass(frozen=True)
class AppClose:
    """What the client saw when the app closed: the close frame (or how the stream ended), then the TCP end."""

    frame: Frame | None
    end: str
    after: list[Frame]
    found: dict[str, Any]
    teardown: str

    @property
    def code(self) -> int | None:
        return _close_code(self.frame)[0] if self.frame is not None else None

    @property
    def reason(self) -> bytes:
        return _close_code(self.frame)[1] if self.frame is not None else b""

    def value(self) -> str:
        if self.frame is None:
            return f"no close frame ({self.end})"
        if self.code is None:
            return "close frame without a code"
        return f"close {self.code}" + (f" {self.reason[:60]!r}" if self.reason else "")


def _app_close(
    server: Server, *after: Step, watch: float | None = None, settle: bool = False, **close: Any
) -> AppClose:
    """The app reports its scope facts, closes with ``close``, then runs ``after``.

    The client reads the report and the close frame, then (negative evidence) watches up
    to ``watch`` seconds for frames after it, answers the close, and waits for the TCP end.
    ``settle``: the client answers the close only once the app's script has ended, or after
    ``timeouts.hold`` (a server whose close waits for the client's answer holds the script
    there), so ``after`` runs while the closing handshake is still open (else what it meets can
    depend on whether the client's answer won the race).
    """
    path, token = _scripted(RECEIVE, ACCEPT, REPORT, _send(type="websocket.close", **close), *after)
    later: list[Frame] = []
    with RawWs(server) as raw:
        head = raw.handshake(_upgrade(path))
        if head is None or head.status != 101:
            fail("the handshake was not accepted", expected="101", observed=f"HTTP {head.status}" if head else raw.end)
        found = _raw_report(raw, server)
        frame = raw.message(server.timeouts.event)
        end = raw.end or ("timeout" if frame is None else "")
        if frame is not None and frame.opcode != 0x8:
            fail(
                "a message came where the close frame was expected",
                expected="a close frame",
                observed=f"opcode {frame.opcode:#x}",
                level=MUST,
            )
        if frame is not None and watch:
            deadline = Deadline(watch)
            while (got := raw.frame(deadline.remaining())) is not None:
                later.append(got)
        teardown = ""
        if settle:
            server.journal.wait_for(
                SCRIPT_STREAM.format(token=token), lambda r: r.get("final") is True, server.timeouts.hold
            )
        if frame is not None and raw.end is None:
            raw.write(_frame(0x8, frame.payload[:2]))
            started = time.monotonic()
            teardown = raw.wait_end(server.timeouts.event)
            note(f"TCP end ({teardown}) {time.monotonic() - started:.3f} s after the client's close reply")
            # EOF or reset: the server ended TCP either way, and which one a client sees can
            # change from run to run (the note above says which it was).
            teardown = {"eof": "server closed TCP", "reset": "server closed TCP"}.get(teardown, teardown)
    final = server.journal.wait_for(
        SCRIPT_STREAM.format(token=token), lambda r: r.get("final") is True, server.timeouts.event
    )
    return AppClose(frame, end, later, final or found, teardown)


@scenario(
    "ws.close.code",
    "websocket.close sends a Close frame with the app's code (1000, 1001, 3000, 4999)",
    level=MUST,
    spec="www › Close",
    requires=WS,
)
def test_close_code(server: Server) -> None:
    seen = {code: _app_close(server, code=code) for code in (1000, 1001, 3000, 4999)}
    record({code: c.value() for code, c in seen.items()})
    expect({code: c.code for code, c in seen.items()}, {c: c for c in seen}, "the codes in the close frames")


@scenario(
    "ws.close.default_code", "websocket.close without a code sends 1000", level=MUST, spec="www › Close", requires=WS
)
def test_close_default_code(server: Server) -> None:
    seen = _app_close(server)
    record(seen.value())
    expect(seen.code, 1000, "the code of the close frame")


@scenario(
    "ws.close.reason",
    "the app's close reason (spec >= 2.3) reaches the client as UTF-8",
    level=MUST,
    spec="www › Close, Spec Versions",
    requires=WS,
)
def test_close_reason(server: Server) -> None:
    seen = _app_close(server, code=1000, reason="bye-é")
    claimed = _scope(seen.found).get("spec_version")
    record(f"spec {claimed or '2.0 (missing)'}: {seen.value()}")
    if (_version(claimed) or (2, 0)) < (2, 3) and seen.reason != "bye-é".encode():
        note(f"spec_version {claimed!r} predates 2.3: the reason need not be sent")
        return
    expect(seen.reason, "bye-é".encode(), "the reason in the close frame")


@scenario(
    "ws.close.reason_none", "a close without a reason has an empty reason", level=MUST, spec="www › Close", requires=WS
)
def test_close_reason_none(server: Server) -> None:
    seen = _app_close(server, code=4000)
    record(seen.value())
    expect(seen.code, 4000, "the code")
    expect(seen.reason, b"", "the reason")


@scenario(
    "ws.close.reason_too_long",
    "a 200-byte close reason: raise, truncate, or send (recorded)",
    level=INFO,
    spec="RFC 6455 §5.5",
    requires=WS,
    impact="hang",
)
def test_close_reason_too_long(server: Server) -> None:
    """Unspecified: recorded. MUST (RFC 6455 §5.5): no control frame over 125 bytes, and the connection ends."""
    seen = _app_close(server, code=1000, reason="r" * 200)
    what = _sent(_step(seen.found, 3))
    size = len(seen.frame.payload) if seen.frame is not None else None
    record(
        f"close {what}; " + (f"close frame of {size} bytes ({seen.value()[:40]})" if size is not None else seen.value())
    )
    check(
        seen.end != "timeout",
        "the connection neither closed nor ended",
        expected="a close or EOF",
        observed=seen.value(),
        level=MUST,
    )
    check(
        size is None or size <= 125,
        "a close frame over 125 bytes",
        expected="at most 125 bytes",
        observed=size,
        level=MUST,
    )


@scenario(
    "ws.close.invalid_code",
    "close codes 1005, 1006, 1015, 0, 999, 5000 from the app (recorded)",
    level=INFO,
    spec="RFC 6455 §7.4.1",
    requires=WS,
    impact="interop",
)
def test_close_invalid_code(server: Server) -> None:
    """Unspecified in ASGI: recorded per code. MUST NOT (RFC 6455 §7.4.1): 1005, 1006 and 1015 on the
    wire. The connection must end (a close frame or EOF) within the deadline; the first code that
    leaves it open ends the case."""
    seen: dict[int, AppClose] = {}
    for code in (1005, 1006, 1015, 0, 999, 5000):
        seen[code] = _app_close(server, code=code)
        if seen[code].end == "timeout":
            note(f"code {code} left the connection open: the other codes are not tried")
            break
    shown = {code: f"{_sent(_step(c.found, 3))}, {c.value()}" for code, c in seen.items()}
    record(shown)
    hung = [code for code, c in seen.items() if c.end == "timeout"]
    check(
        not hung,
        "the connection stayed open after the app's close",
        expected="a close or EOF",
        observed=hung,
        level=MUST,
    )
    wire = [code for code, c in seen.items() if c.code in (1005, 1006, 1015)]
    check(
        not wire,
        "a close code that must never be sent is on the wire",
        expected="none of 1005, 1006, 1015",
        observed={code: seen[code].code for code in wire},
        level=MUST,
    )


@scenario(
    "ws.close.no_data_after",
    "no data frame after the server's Close (the app sends after its close)",
    level=MUST,
    spec="RFC 6455 §5.5.1",
    requires=WS,
    impact="interop",
)
def test_close_no_data_after(server: Server) -> None:
    """Negative evidence: frames after the close are watched for ``timeouts.hold``."""
    seen = _app_close(server, _send(type="websocket.send", text="late"), watch=server.timeouts.hold, code=1000)
    record(seen.value() + (f", then {len(seen.after)} frames" if seen.after else ", then nothing"))
    data = [f"opcode {f.opcode:#x} {f.payload[:40]!r}" for f in seen.after if f.opcode in (0x0, 0x1, 0x2)]
    check(not data, "data frames after the server's close frame", expected="none", observed=data)


@scenario(
    "ws.close.send_after_close",
    "send() after the app's own websocket.close (recorded)",
    level=INFO,
    spec="www › Disconnected Client; " + ERRORS,
    requires=WS,
    impact="hang",
)
def test_close_send_after_close(server: Server) -> None:
    """Unspecified: recorded. The send() must not hang (the app's script ends within the deadline).
    The client answers the close only after the script ended: the send() always meets a closing
    handshake still open (the race with the client's answer changed what hypercorn-trio did)."""
    seen = _app_close(server, _send(type="websocket.send", text="late"), settle=True, code=1000)
    step = _step(seen.found, 4)
    check(
        seen.found.get("final") is True and step.get("op") == "send",
        "the app's send() after its close never returned",
        expected="a return or an exception",
        observed="no end of the script",
        level=MUST,
    )
    record(_sent(step) + (" (OSError)" if step.get("oserror") else ""))


@scenario(
    "ws.close.tcp_teardown",
    "after the closing handshake the server closes TCP",
    level=MUST,
    spec="RFC 6455 §7.1.1",
    requires=WS,
    impact="hang",
)
def test_close_tcp_teardown(server: Server) -> None:
    """MUST: the server closes TCP after the close handshake (within ``timeouts.event``); it is
    then the first to close (the client keeps its side open until it sees the EOF)."""
    seen = _app_close(server, code=1000)
    record(seen.teardown or seen.value())
    check(
        seen.teardown.startswith("server "),
        "the server did not close TCP after the closing handshake",
        expected="EOF from the server",
        observed=seen.teardown or seen.value(),
    )


@scenario(
    "ws.close.reply_to_client",
    "the server answers the client's Close with a Close (code echoed, SHOULD)",
    level=MUST,
    spec="RFC 6455 §5.5.1",
    requires=WS,
)
def test_close_reply_to_client(server: Server) -> None:
    path, _ = _scripted(RECEIVE, ACCEPT, SHAPE)
    with RawWs(server) as raw:
        head = raw.handshake(_upgrade(path))
        if head is None or head.status != 101:
            fail("the handshake was not accepted", expected="101", observed=f"HTTP {head.status}" if head else raw.end)
        raw.write(_frame(0x8, struct.pack("!H", 4001) + b"bye"))
        reply = raw.message(server.timeouts.event)
    code = _close_code(reply)[0] if reply is not None and reply.opcode == 0x8 else None
    record(f"close {code}" if reply is not None and reply.opcode == 0x8 else f"no close frame ({raw.end or 'timeout'})")
    check(
        reply is not None and reply.opcode == 0x8,
        "no close frame in reply",
        expected="a close frame",
        observed=raw.end or "nothing",
    )
    expect(code, 4001, "the code of the reply (normally the client's)", level=SHOULD)


PENDING_STREAM = "ws-close-pending-{token}"


def _pending_notes(final: dict[str, Any] | None) -> None:
    """What the app journaled about its send() and its pending receive() (notes only)."""
    if final is None:
        note("the app journaled no end: its pending receive() or its send() had not returned")
        return
    if final.get("pending_at_close") is not True:
        note("the reader task was not inside receive() when the close was sent (the case tested less than it says)")
    sent = final.get("send")
    note(
        f"the app's send(websocket.close) {sent} after {final.get('send_s')} s"
        + (f" ({final.get('raised')}: {final.get('message')})" if sent == "raised" else "")
    )
    events = final.get("reader_events") or []
    got = [
        f"{e.get('type')}"
        + (f" code {e.get('code')!r}" if "code" in e else "")
        + f" {e.get('after_close_s')} s after the close"
        for e in events
        if isinstance(e, dict)
    ]
    note(f"the pending receive() returned: {', '.join(got) or 'nothing'} ({final.get('reader_ended')})")


@scenario(
    "ws.close.receive_pending",
    "a websocket.close sent while another task of the app awaits receive() still closes the connection "
    "with that code and reason",
    level=MUST,
    spec="www › Close; core › Applications",
    covers=["ws.close.code", "ws.close.reason"],
    requires=WS,
    impact="hang",
)
def test_close_receive_pending(server: Server) -> None:
    """Quart's shape: one task of the app waits in receive() while another sends websocket.close
    (code 4001, reason "bye"); an app may call receive() and send() from different tasks. The close
    frame is awaited for ``timeouts.event``; its reason is judged only from spec_version 2.3 (the
    scope's, journaled by the app). What the pending receive() returned is noted."""
    path, token = _path("ws-close-receive-pending")
    stream = PENDING_STREAM.format(token=token)
    with _ws(server) as ws:
        _accept(ws, path)
        end = _next_end(ws, server.timeouts.event)
    start = server.journal.wait_for(stream, lambda r: r.get("start") is True, server.timeouts.event)
    final = server.journal.wait_for(stream, lambda r: r.get("final") is True, server.timeouts.event)
    claimed = (final or start or {}).get("spec_version")
    if start is None and final is None:
        note("the app journaled nothing: its spec_version is unknown (the reason is not judged)")
    value = _end_value(end) + (f" {end.reason[:60]!r}" if isinstance(end, CloseFrame) and end.reason else "")
    record(f"spec {claimed or '2.0 (missing)'}: {value}")
    _pending_notes(final)
    check(
        isinstance(end, CloseFrame),
        "no close frame after the app's websocket.close while another task awaited receive()",
        expected="close 4001 'bye'",
        observed=value if not isinstance(end, Timeout) else f"nothing within {server.timeouts.event:.1f} s",
    )
    assert isinstance(end, CloseFrame)
    expect(end.code, 4001, "the code of the close frame")
    if start is None and final is None:
        return
    if (_version(claimed) or (2, 0)) < (2, 3) and end.reason != "bye":
        note(f"spec_version {claimed!r} predates 2.3: the reason need not be sent")
        return
    expect(end.reason, "bye", "the reason in the close frame")


def _client_close(server: Server, how: Any, *after: Step) -> dict[str, Any]:
    """The app reports, then waits in a shape loop; ``how(ws)`` ends the connection. The app's log."""
    path, token = _scripted(RECEIVE, ACCEPT, REPORT, SHAPE, *after)
    with _ws(server) as ws:
        _accept(ws, path)
        _parse_report(ws.receive(server.timeouts.event))
        how(ws)
    return _final(server, token)


def _disconnect(found: dict[str, Any]) -> dict[str, Any]:
    ended = _step(found, 3).get("ended")
    if not isinstance(ended, dict) or ended.get("type") != "websocket.disconnect":
        fail("the app did not get websocket.disconnect", expected="websocket.disconnect", observed=ended, level=MUST)
    return ended


@scenario(
    "ws.disconnect.client_code",
    "the client's close code reaches the app in websocket.disconnect",
    level=MUST,
    spec="www › Disconnect",
    requires=WS,
)
def test_disconnect_client_code(server: Server) -> None:
    seen = {}
    for code in (1000, 1001, 3000, 4000):
        found = _client_close(server, lambda ws, c=code: ws.close(c, timeout=server.timeouts.event))
        seen[code] = _disconnect(found).get("code")
    record(seen)
    expect(seen, {c: c for c in seen}, "the codes the app got")


@scenario(
    "ws.disconnect.client_reason",
    "the client's close reason reaches the app (spec >= 2.5)",
    level=MUST,
    spec="www › Disconnect, Spec Versions",
    requires=WS,
)
def test_disconnect_client_reason(server: Server) -> None:
    found = _client_close(server, lambda ws: ws.close(1000, "bye-é", timeout=server.timeouts.event))
    event = _disconnect(found)
    claimed = _scope(found).get("spec_version")
    record(f"spec {claimed or '2.0 (missing)'}: reason " + (repr(event["reason"]) if "reason" in event else "absent"))
    if (_version(claimed) or (2, 0)) < (2, 5) and event.get("reason") != "bye-é":
        note(f"spec_version {claimed!r} predates 2.5: the reason need not be passed")
        return
    expect(event.get("reason"), "bye-é", "the reason in websocket.disconnect")


@scenario(
    "ws.disconnect.no_code",
    "a Close without a code reaches the app as code 1005",
    level=SHOULD,
    spec="www › Disconnect",
    requires=WS,
)
def test_disconnect_no_code(server: Server) -> None:
    path, token = _scripted(RECEIVE, ACCEPT, REPORT, SHAPE)
    with RawWs(server) as raw:
        head = raw.handshake(_upgrade(path))
        if head is None or head.status != 101:
            fail("the handshake was not accepted", expected="101", observed=f"HTTP {head.status}" if head else raw.end)
        _raw_report(raw, server)
        raw.write(_frame(0x8))
        raw.message(server.timeouts.event)
    code = _disconnect(_final(server, token)).get("code")
    record(code)
    expect(code, 1005, "the code the app got for a close frame without one")


@scenario(
    "ws.disconnect.abnormal",
    "a TCP drop without a Close: the code the app gets (RST and FIN; recorded)",
    level=INFO,
    spec="www › Disconnect",
    requires=WS,
    impact="hang",
)
def test_disconnect_abnormal(server: Server) -> None:
    """Unspecified: recorded (1006 is conventional). MUST: the app gets websocket.disconnect."""
    rst = _disconnect(_client_close(server, lambda ws: ws.abort())).get("code")
    fin = _disconnect(_client_close(server, lambda ws: ws.close_socket())).get("code")
    record(f"RST: {rst}, FIN: {fin}")


@scenario(
    "ws.disconnect.server_initiated",
    "after the app's close, receive() returns websocket.disconnect (code noted)",
    level=MUST,
    spec="www › Disconnect",
    requires=WS,
    impact="hang",
)
def test_disconnect_server_initiated(server: Server) -> None:
    """The app closes with 4002, then calls receive() (bounded by ``timeouts.event``); the client answers the close."""
    path, token = _scripted(
        RECEIVE, ACCEPT, _send(type="websocket.close", code=4002), {"op": "receive", "within": server.timeouts.event}
    )
    with _ws(server) as ws:
        _accept(ws, path)
        end = _next_end(ws, server.timeouts.event)
        note(f"the client saw {describe(end)}")
    found = _final(server, token, 2 * server.timeouts.event)
    event = _step(found, 3).get("event")
    # The code is noted, not recorded: it depends on timing (1006 from a server that gave up
    # waiting for the client's close reply, e.g. autobahn's 1 s close handshake timeout).
    if isinstance(event, dict):
        note(f"the disconnect's code: {event.get('code')}")
    record(str(event.get("type")) if isinstance(event, dict) else "nothing")
    check(
        isinstance(event, dict) and event.get("type") == "websocket.disconnect",
        "receive() after the app's close did not return websocket.disconnect",
        expected="websocket.disconnect",
        observed=event or "nothing within the deadline",
    )


@scenario(
    "ws.disconnect.prompt",
    "an app blocked in receive() gets the disconnect promptly",
    level=MUST,
    spec="www › Disconnect",
    requires=WS,
    impact="hang",
)
def test_disconnect_prompt(server: Server) -> None:
    """MUST: within ``timeouts.event`` of the client's close; the latency is recorded."""
    closed_at: list[float] = []

    def close(ws: WebSocket) -> None:
        closed_at.append(time.time())
        ws.close(1000, timeout=server.timeouts.event)

    found = _client_close(server, close)
    _disconnect(found)
    latency = float(found.get("t", 0)) - closed_at[0]
    note(f"the app journalled the disconnect {max(latency, 0) * 1000:.0f} ms after the client's close")
    record("within the deadline")


@scenario(
    "ws.disconnect.repeat",
    "receive() after websocket.disconnect (recorded, three calls)",
    level=INFO,
    spec="www › Disconnect (not covered)",
    requires=WS,
)
def test_disconnect_repeat(server: Server) -> None:
    """Unspecified: recorded. Each call waits at most ``timeouts.hold`` app-side (negative evidence)."""
    again = {"op": "receive", "within": server.timeouts.hold}
    found = _client_close(server, lambda ws: ws.close(1000, timeout=server.timeouts.event), again, again, again)
    _disconnect(found)
    seen = []
    for i in (4, 5, 6):
        step = _step(found, i)
        event = step.get("event")
        seen.append(
            f"raised {step['raised']}"
            if step.get("raised")
            else "blocks"
            if event is None
            else f"{event.get('type')} {event.get('code', '')}".strip()
        )
    record(", ".join(seen))


# -- §13: the denial response extension ---------------------------------------------------


@dataclass(frozen=True)
class Denial:
    outcome: object
    rest: bytes
    end: str
    found: dict[str, Any]

    @property
    def advertised(self) -> bool:
        return _advertises_denial(self.found)


def _deny(server: Server, *steps: Step, precheck: bool = True) -> Denial:
    """The app denies with ``steps``. With ``precheck``, a target whose scope does not list the
    extension is first found out through the echo app (unsupported), without a slow denial."""
    if precheck:
        extensions = _ws_echo(server).scope.get("extensions")
        if not isinstance(extensions, dict) or DENIAL_EXT not in extensions:
            unsupported(f"the scope does not list {DENIAL_EXT!r} in extensions")
    path, token = _scripted(RECEIVE, *steps)
    with _ws(server) as ws:
        outcome = ws.handshake(path)
        end = ""
        rest = b""
        if isinstance(outcome, Denied):
            rest, ended = ws.read_rest(server.timeouts.event)
            end = "EOF" if isinstance(ended, Closed) else describe(ended)
    found = server.journal.wait_for(
        SCRIPT_STREAM.format(token=token), lambda r: r.get("final") is True, server.timeouts.event
    )
    if found is None:
        note("the scripted app's journal record never came (the app was stuck, or the server died)")
    return Denial(outcome, rest, end, found or {})


def _start(status: int = 401, headers: Any = ((b"www-authenticate", b"Bearer"),)) -> Step:
    return _send(type="websocket.http.response.start", status=status, headers=list(headers))


def _body(body: bytes, more: bool = False) -> Step:
    return _send(type="websocket.http.response.body", body=body, more_body=more)


def _needs_denial(seen: Denial) -> None:
    if not seen.advertised:
        unsupported(f"the scope does not list {DENIAL_EXT!r} in extensions")


BODY = b'{"error": "no token"}'


@scenario(
    "ws.denial.advertised",
    "a server that honours denial responses lists websocket.http.response",
    level=SHOULD,
    spec=DENIAL + "; core › Extensions",
    requires=WS,
)
def test_denial_advertised(server: Server) -> None:
    seen = _deny(server, _start(), _body(BODY), precheck=False)
    honoured = isinstance(seen.outcome, Denied) and seen.outcome.status == 401
    record(f"{'advertised' if seen.advertised else 'not advertised'}; {'honoured' if honoured else 'not honoured'}")
    if not seen.advertised and not honoured:
        unsupported("the extension is neither advertised nor honoured")
    check(
        seen.advertised,
        "the server honours denial responses but does not advertise the extension",
        expected=DENIAL_EXT,
        observed=_scope(seen.found).get("extensions"),
    )


@scenario(
    "ws.denial.start_body",
    "the app's denial (401, www-authenticate, JSON body) replaces the 101",
    level=MUST,
    spec=DENIAL,
    requires=WS,
)
def test_denial_start_body(server: Server) -> None:
    seen = _deny(server, _start(), _body(BODY))
    record(_handshake_value(seen.outcome))
    if not isinstance(seen.outcome, Denied):
        fail("the denial response did not reach the client", expected="HTTP 401", observed=describe(seen.outcome))
    expect(seen.outcome.status, 401, "the status")
    expect([v for k, v in seen.outcome.headers if k.lower() == b"www-authenticate"], [b"Bearer"], "www-authenticate")
    expect(seen.outcome.body, BODY, "the body")


@scenario(
    "ws.denial.message_shape",
    "denial headers keep order and duplicates; a body in chunks arrives whole",
    level=MUST,
    spec=DENIAL,
    requires=WS,
    impact="data-loss",
)
def test_denial_message_shape(launcher: Launcher) -> None:
    """On a dedicated process (MUST: the server goes on serving after a body in chunks)."""
    server = _dedicated(launcher)
    headers = [(b"x-dup", b"1"), (b"x-other", b"o"), (b"x-dup", b"2")]
    seen = _deny(server, _start(403, headers), _body(b"one-", True), _body(b"two-", True), _body(b"three"))
    _still_serving(server, "a denial body in chunks")
    if not isinstance(seen.outcome, Denied):
        fail("the denial response did not reach the client", expected="HTTP 403", observed=describe(seen.outcome))
    ours = [(k.lower(), v) for k, v in seen.outcome.headers if k.lower() in (b"x-dup", b"x-other")]
    record(f"{len(ours)} headers, body {seen.outcome.body!r}")
    expect(ours, headers, "the app's headers")
    expect(seen.outcome.body, b"one-two-three", "the body")


@scenario(
    "ws.denial.close_after",
    "the connection is closed once the denial response is complete",
    level=SHOULD,
    spec=DENIAL,
    requires=WS,
    impact="hang",
)
def test_denial_close_after(server: Server) -> None:
    seen = _deny(server, _start(), _body(BODY))
    record(f"{_handshake_value(seen.outcome)}, then {seen.end or 'nothing'}")
    check(seen.end == "EOF", "the connection stayed open after the denial", expected="EOF", observed=seen.end)


@scenario(
    "ws.denial.framing",
    "the denial is framed right, with and without the app's content-length",
    level=MUST,
    spec="RFC 9112 §6.3",
    requires=WS,
    impact="data-loss",
)
def test_denial_framing(launcher: Launcher) -> None:
    """On a dedicated process (MUST: the server goes on serving after a body in chunks)."""
    server = _dedicated(launcher)
    length = [(b"content-length", str(len(BODY)).encode())]
    # Two connections, side by side: a server that never ends a denial costs one deadline.
    with_length, without = side_by_side(
        [
            functools.partial(_deny, server, _start(401, length), _body(BODY)),
            functools.partial(_deny, server, _start(401, []), _body(BODY[:5], True), _body(BODY[5:])),
        ]
    )
    _still_serving(server, "a denial body in chunks")
    seen = {"with content-length": with_length, "without": without}
    framing = {}
    for label, s in seen.items():
        out = s.outcome
        headers = {k.lower(): v for k, v in out.headers} if isinstance(out, Denied) else {}
        framing[label] = (
            "content-length"
            if b"content-length" in headers
            else "chunked"
            if b"chunked" in headers.get(b"transfer-encoding", b"")
            else "close-delimited"
        )
    record(framing)
    bad = {
        label: describe(s.outcome)
        for label, s in seen.items()
        if not (isinstance(s.outcome, Denied) and s.outcome.complete and s.outcome.body == BODY)
    }
    check(not bad, "a denial response was not received whole", expected=BODY, observed=bad)


@scenario(
    "ws.denial.no_ws_after",
    "websocket.accept after a denial response raises; no 101 follows",
    level=SHOULD,
    spec=DENIAL,
    requires=WS,
)
def test_denial_no_ws_after(server: Server) -> None:
    seen = _deny(server, _start(), _body(BODY), ACCEPT)
    what = _sent(_step(seen.found, 3))
    record(f"accept after the denial {what}")
    check(
        b"101" not in seen.rest[:20],
        "a 101 after the denial response",
        expected="nothing",
        observed=seen.rest[:100],
        level=MUST,
    )
    check(what.startswith("raised"), "accept after a denial did not raise", expected="an exception", observed=what)


@scenario(
    "ws.denial.after_accept",
    "a denial start after accept raises (what the client sees is recorded)",
    level=SHOULD,
    spec=DENIAL,
    requires=WS,
)
def test_denial_after_accept(server: Server) -> None:
    path, token = _scripted(RECEIVE, ACCEPT, _start(), REPORT)
    with _ws(server) as ws:
        _accept(ws, path)
        got = ws.receive(server.timeouts.event)
    found = _final(server, token)
    _needs_denial(Denial(None, b"", "", found))
    what = _sent(_step(found, 2))
    record(f"denial start after accept {what}; the client then saw {describe(got)[:60]}")
    check(
        what.startswith("raised"), "a denial start after accept did not raise", expected="an exception", observed=what
    )


@scenario(
    "ws.denial.unadvertised",
    "without the extension, a denial start raises (client's status recorded)",
    level=INFO,
    spec=ERRORS + "; " + DENIAL,
    requires=WS,
)
def test_denial_unadvertised(server: Server) -> None:
    """SHOULD raise, for a target that does not list the extension (the client's status is recorded).
    A target that lists it is outside the rule: its cell records that (info)."""
    seen = _deny(server, _start(), _body(BODY), _send(type="websocket.close"), precheck=False)
    if seen.advertised:
        record(f"advertised (rule not applicable); client: {_handshake_value(seen.outcome)}")
        return
    what = _sent(_step(seen.found, 1))
    record(f"denial start {what}; client: {_handshake_value(seen.outcome)}")
    check(
        what.startswith("raised"),
        "an unadvertised denial start did not raise",
        expected="an exception",
        observed=what,
        level=SHOULD,
    )


@scenario(
    "ws.denial.status_range",
    "a denial with status 200 or 101 (recorded)",
    level=INFO,
    spec=DENIAL,
    requires=WS,
    impact="interop",
)
def test_denial_status_range(server: Server) -> None:
    """Unspecified: recorded. The handshake must end (no client left waiting)."""
    seen = {status: _deny(server, _start(status, []), _body(b"x")) for status in (200, 101)}
    record(
        {
            status: f"start {_sent(_step(s.found, 1))}; client: {_handshake_value(s.outcome)}"
            for status, s in seen.items()
        }
    )
    hung = [status for status, s in seen.items() if isinstance(s.outcome, Timeout)]
    check(not hung, "the client was left waiting", expected="a response or a close", observed=hung, level=MUST)


@scenario(
    "ws.denial.disconnect_event",
    "what receive() returns after a denial response (recorded)",
    level=INFO,
    spec=DENIAL,
    requires=WS,
)
def test_denial_disconnect_event(server: Server) -> None:
    """Unspecified: recorded; the app waits ``timeouts.hold`` (negative evidence). MUST: it is not
    a message (websocket.receive or a second connect)."""
    seen = _deny(server, _start(), _body(BODY), {"op": "receive", "within": server.timeouts.hold})
    step = _step(seen.found, 3)
    event = step.get("event")
    record(
        f"raised {step['raised']}"
        if step.get("raised")
        else "blocks"
        if event is None
        else f"{event.get('type')} {event.get('code', '')}".strip()
    )
    check(
        not (isinstance(event, dict) and event.get("type") in ("websocket.receive", "websocket.connect")),
        "a message event after the denial",
        expected="websocket.disconnect or nothing",
        observed=event,
        level=MUST,
    )


# -- §11: server keepalive pings ------------------------------------------------------------

PING_INTERVAL = 0.5
"""The ping interval a keepalive case configures (targets whose option takes whole seconds get 1)."""


@scenario(
    "ws.ping.keepalive",
    "the server pings an idle WebSocket client when a ping interval is configured",
    level=SHOULD,
    spec="www › WebSocket",
    requires=WS,
    impact="hang",
    waits="the server's own ping interval (configured at 0.5 s, or 1 s where the option takes whole seconds)",
)
def test_ping_keepalive(launcher: Launcher) -> None:
    """Needs a ping-interval option (``Target.ws_ping_args``). A dedicated process with the interval
    set to 0.5 s (1 s for options that take whole seconds); the client stays idle on an accepted
    connection and waits (``timeouts.event``) for the first ping. Its time, from sending the
    handshake, is noted."""
    target = launcher.target
    if not target.ws_ping_args:
        unsupported(f"{target.id} has no WebSocket ping-interval option the harness knows of")
    process = launcher.start(ws_ping_interval=PING_INTERVAL)
    server = Server(target, process, launcher.timeouts)
    note(f"launched with: {' '.join(process.argv[-len(target.ws_ping_args) :])}")
    path, _ = _scripted(RECEIVE, ACCEPT, RECEIVE)
    with RawWs(server) as raw:
        started = time.monotonic()
        head = raw.handshake(_upgrade(path))
        if head is None or head.status != 101:
            fail("the handshake was not accepted", expected="101", observed=f"HTTP {head.status}" if head else raw.end)
        deadline = Deadline(server.timeouts.event)
        others: list[int] = []
        while True:
            got = raw.frame(deadline.remaining())
            if got is None or got.opcode == 0x8:
                break
            if got.opcode == 0x9:
                elapsed = time.monotonic() - started
                # The time is noted, not recorded: on a loaded machine it drifts past any bucket.
                record("ping received")
                note(f"first ping after {elapsed:.2f} s (payload {got.payload[:40]!r})")
                raw.write(_frame(0x8, struct.pack("!H", 1000)))
                return
            others.append(got.opcode)
        ended = "a close frame" if got is not None else raw.end or "nothing before the deadline"
        record(f"no ping ({ended})")
        fail(
            "no ping from the server on an idle connection",
            expected=f"a ping frame within {server.timeouts.event:g} s (interval set to {PING_INTERVAL:g} s)",
            observed=f"{ended}; other frames {others}" if others else ended,
            level=SHOULD,
        )
