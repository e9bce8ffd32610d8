"""WebSocket: send after close, app errors, the connection scope (spec-catalogue §7, §8 WebSocket rows, §9).

Each case opens its own WebSocket (asgi_conformance.wsclient) to a scenario app from
asgi_conformance.apps.websocket under ``/app/<name>/<token>``. What the app sees after
the client has gone comes back through the journal; what the server does on the wire
(status of a failed handshake, close code, a plain TCP drop) is read from the socket.
Where the spec leaves the outcome open, the cell is ``info`` with the observed value.
"""

from __future__ import annotations

import json
import secrets
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from asgi_conformance import INFO, MUST, SHOULD, Server, check, expect, fail, note, record, scenario, unsupported
from asgi_conformance.apps.typedjson import loads
from asgi_conformance.client import Closed, Reset, Timeout
from asgi_conformance.timing import Deadline
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
def test_raise_after_accept(server: Server) -> None:
    """MUST: the connection ends. The close code (1011 is conventional) or a plain TCP drop is recorded."""
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
    record(sorted(value) if value else "{} (none)")


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
