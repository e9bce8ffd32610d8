"""HTTP/1.1 connection management on the wire (spec-catalogue §22; RFC 9112 §9, RFC 9110 §7.8, §10.1.1, §15.2).

Raw requests over one socket each: persistence, Connection: close from either side,
pipelining, Expect: 100-continue, and Upgrade requests the server must not act on.
"Closed after the response" is seen as the next read ending in ``Closed`` (or
``Reset``) within the request deadline; a case never sleeps to find out.

``wire.h1.conn.read_body_or_close`` is judged with ``http.request.unread_body``.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from typing import Any

from asgi_conformance import INFO, MUST, SHOULD, Server, check, fail, note, record, scenario
from asgi_conformance import client as wire
from asgi_conformance.server import parse_echo

RFC9112 = "RFC 9112 §9"
RFC_EXPECT = "RFC 9110 §10.1.1"
RFC_UPGRADE = "RFC 9110 §7.8"
SWITCHED = re.compile(rb"^HTTP/1\.[01] 101\b")


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body[:200]


def _gone(outcome: wire.Outcome) -> bool:
    return isinstance(outcome, wire.Closed | wire.Reset)


def _token() -> str:
    return secrets.token_hex(8)


def _connection_options(response: wire.Response) -> set[bytes]:
    return {token.strip().lower() for k, v in response.headers if k.lower() == b"connection" for token in v.split(b",")}


def _first_response(outcome: wire.Outcome, what: str) -> wire.Response:
    if not isinstance(outcome, wire.Response) or outcome.status != 200:
        fail(f"{what} was not answered", expected="200 from the app", observed=wire.describe(outcome))
    return outcome


def _not_processed(server: Server, token: str) -> None:
    """The request to ``conn-mark/<token>`` never reached the app.

    Negative evidence: waits ``timeouts.hold`` for the app's journal record.
    """
    seen = server.journal.wait_for(f"conn-mark-{token}", lambda r: True, timeout=server.timeouts.hold)
    check(
        seen is None,
        "the request pipelined behind the close reached the app",
        expected="no later request processed on the connection",
        observed="the app was called for it",
    )


def _switched(outcome: wire.Outcome) -> bool:
    """Did the server answer 101 Switching Protocols (the client parser rejects an unasked 101)?"""
    if isinstance(outcome, wire.Response):
        return outcome.status == 101 or 101 in outcome.informational
    received = getattr(outcome, "received", b"")
    return isinstance(received, bytes) and SWITCHED.match(received) is not None


def _websocket_handshake(version: str, connection: bool) -> bytes:
    key = base64.b64encode(secrets.token_bytes(16)).decode("ascii")
    headers = [("Upgrade", "websocket"), ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", "13")]
    if connection:
        headers.insert(1, ("Connection", "Upgrade"))
    return wire.build_request("GET", f"/echo/upgrade/{_token()}", headers, version=version)


def _plain_or_refused(outcome: wire.Outcome) -> str:
    """After a 101 check: 'plain HTTP' if the echo app served it as http, '<status>' for a 4xx."""
    if isinstance(outcome, wire.Response) and 400 <= outcome.status < 500:
        return f"{outcome.status} (refused)"
    seen = parse_echo(outcome, "the echo app's 200, or a 4xx from the server")
    check(
        seen.scope.get("type") == "http",
        "the Upgrade request reached the app with a scope that is not 'http'",
        expected="http",
        observed=seen.scope.get("type"),
        level=MUST,
    )
    return "plain HTTP"


# -- persistence and close ----------------------------------------------------------------------


@scenario(
    "wire.h1.conn.client_close",
    "after a request with Connection: close the server closes and processes nothing later",
    level=MUST,
    spec="RFC 9112 §9.6",
    impact="security",
)
def test_client_close(server: Server) -> None:
    """MUST: close after the final response and process no later request; SHOULD: put
    ``Connection: close`` in that response. A second request is pipelined behind the
    close; its app must not run (negative evidence: ``timeouts.hold``)."""
    token = _token()
    with server.connection() as conn:
        conn.send(
            wire.build_request("GET", f"/echo/close/{token}", [("Connection", "close")])
            + wire.build_request("GET", f"/app/conn-mark/{token}")
        )
        first = conn.response()
        check(
            isinstance(first, wire.Response),
            "the request with Connection: close was not answered",
            expected="the app's 200 (or a 4xx refusing the request sent after the close)",
            observed=wire.describe(first),
        )
        assert isinstance(first, wire.Response)
        if 400 <= first.status < 500:
            # The client broke RFC 9112 §9.6 by sending a request after its close: a server
            # may refuse the connection; it still must not process the later request.
            record(f"{first.status} to the close request (a request followed it), then closed")
        else:
            parse_echo(first)
        after = conn.response()
        check(
            _gone(after),
            "the connection was not closed after the response to Connection: close",
            expected="EOF after the first response",
            observed=("answered the pipelined request: " if isinstance(after, wire.Response) else "")
            + wire.describe(after),
        )
    _not_processed(server, token)
    check(
        b"close" in _connection_options(first),
        "the response to a Connection: close request has no Connection: close",
        expected="connection: close",
        observed=[(k, v) for k, v in first.headers if k.lower() == b"connection"] or "no Connection header",
        level=SHOULD,
    )


@scenario(
    "wire.h1.conn.persistent_default",
    "an HTTP/1.1 connection stays open: ten requests on one socket",
    level=SHOULD,
    spec="RFC 9112 §9.3",
    covers=["wire.h1.conn.persistent_default", "http.resp.keepalive"],
)
def test_persistent_default(server: Server) -> None:
    with server.connection() as conn:
        for n in range(1, 11):
            conn.send(wire.build_request("GET", f"/echo/keepalive/{n}"))
            outcome = conn.response()
            check(
                isinstance(outcome, wire.Response),
                f"request {n} of 10 on one connection was not answered",
                expected="ten responses on one connection",
                observed=f"{n - 1} answered, then {wire.describe(outcome)}",
            )
            seen = parse_echo(outcome)
            check(
                seen.scope.get("path") == f"/echo/keepalive/{n}",
                f"response {n} does not answer request {n}",
                expected=f"/echo/keepalive/{n}",
                observed=seen.scope.get("path"),
                level=MUST,
            )


@scenario(
    "wire.h1.conn.http10_default",
    "HTTP/1.0 without keep-alive closes after the response; whether keep-alive is honoured",
    level=INFO,
    spec="RFC 9112 §9.3",
)
def test_http10_default(server: Server) -> None:
    """MUST (RFC 9112 §9.3): an HTTP/1.0 request without the keep-alive option closes the
    connection after the response. The cell records whether ``Connection: keep-alive`` is
    honoured (a second request on the connection is answered) or not (closed), and a close
    after a response that said ``connection: keep-alive`` (no RFC 9112 rule forbids it; a
    client must cope with any close, but it costs a retry)."""
    with server.connection() as conn:
        conn.send(wire.build_request("GET", "/echo/http10/1", version="HTTP/1.0"))
        parse_echo(conn.response())
        # A second request shows whether the connection persisted (answered) or not (EOF),
        # without waiting for an idle timeout.
        after: wire.Outcome = wire.Closed()
        if conn.send(wire.build_request("GET", "/echo/http10/2", version="HTTP/1.0")):
            after = conn.response()
        check(
            _gone(after),
            "an HTTP/1.0 connection without keep-alive stayed open after the response",
            expected="EOF after the response",
            observed=("answered a second request: " if isinstance(after, wire.Response) else "") + wire.describe(after),
            level=MUST,
        )
    with server.connection() as conn:
        keepalive = [("Connection", "keep-alive")]
        conn.send(wire.build_request("GET", "/echo/http10/ka/1", keepalive, version="HTTP/1.0"))
        first = conn.response()
        parse_echo(first)
        assert isinstance(first, wire.Response)
        announced = b"keep-alive" in _connection_options(first)
        if not conn.send(wire.build_request("GET", "/echo/http10/ka/2", keepalive, version="HTTP/1.0")):
            record("closed after the response (keep-alive not honoured)")
            return
        second = conn.response()
        if _gone(second):
            record(
                "closed after the response, though it announced keep-alive"
                if announced
                else "closed after the response (keep-alive not honoured)"
            )
            return
        check(
            isinstance(second, wire.Response),
            "the second HTTP/1.0 keep-alive request was neither answered nor refused by a close",
            expected="a response, or EOF",
            observed=wire.describe(second),
            level=MUST,
        )
        parse_echo(second)
        record(
            "keep-alive honoured" + (" (connection: keep-alive)" if announced else " (without announcing it)"),
        )


@scenario(
    "wire.h1.conn.pipelining_order",
    "pipelined requests are answered in the order they were received",
    level=MUST,
    spec="RFC 9112 §9.3.2",
    impact="security",
)
def test_pipelining_order(server: Server) -> None:
    """Two pipelined requests; the first one's app waits on a gate that opens once the
    second request was sent and (if the server runs pipelined requests concurrently) its
    app has started. Negative evidence: ``timeouts.hold`` for the second app to start
    while the first is held (a server that handles them one by one never starts it)."""
    token = _token()
    stream = f"conn-pipe-{token}"

    def started(n: str) -> Any:
        return lambda r: r.get("event") == "start" and r.get("n") == n

    with server.connection() as conn:
        conn.send(
            wire.build_request("GET", f"/app/conn-pipe/{token}/1")
            + wire.build_request("GET", f"/app/conn-pipe/{token}/2")
        )
        first = server.journal.wait_for(stream, started("1"), timeout=server.timeouts.event)
        check(
            first is not None,
            "the first pipelined request never reached the app",
            expected="the app called for request 1",
            observed="no call",
        )
        concurrent = server.journal.wait_for(stream, started("2"), timeout=server.timeouts.hold) is not None
        server.journal.open_gate(stream)
        bodies: list[bytes] = []
        for _ in range(2):
            outcome = conn.response()
            check(
                isinstance(outcome, wire.Response),
                "a pipelined request was not answered",
                expected="two responses",
                observed=f"{len(bodies)} answered, then {wire.describe(outcome)}",
            )
            assert isinstance(outcome, wire.Response)
            bodies.append(outcome.body)
    check(
        bodies == [b"1", b"2"],
        "pipelined responses came back out of order",
        expected=["answer to request 1", "answer to request 2"],
        observed=[f"answer to request {b.decode('latin-1')}" for b in bodies],
    )
    record("in order; " + ("requests handled concurrently" if concurrent else "requests handled one by one"))


@scenario(
    "wire.h1.conn.server_close_option",
    "after a response with Connection: close the server closes and answers nothing later",
    level=MUST,
    spec="RFC 9112 §9.6",
    covers=["wire.h1.conn.server_close_option", "http.resp.app_connection_close"],
    impact="security",
)
def test_server_close_option(server: Server) -> None:
    """The app sets ``connection: close``; a second request is pipelined behind. It must not be
    answered, nor reach its app (negative evidence: ``timeouts.hold``)."""
    token = _token()
    with server.connection() as conn:
        conn.send(
            wire.build_request("GET", f"/app/conn-close/{token}") + wire.build_request("GET", f"/app/conn-mark/{token}")
        )
        first = _first_response(conn.response(), "the request whose app sets connection: close")
        sent_close = b"close" in _connection_options(first)
        if not sent_close:
            note("the app's connection: close is not in the response")
        after = conn.response()
        check(
            _gone(after),
            "the connection stayed open after the app's Connection: close"
            + ("" if sent_close else " (the server dropped the header)"),
            expected="EOF after the first response",
            observed=("answered the pipelined request: " if isinstance(after, wire.Response) else "")
            + wire.describe(after),
        )
    _not_processed(server, token)


# -- Expect -------------------------------------------------------------------------------------


def _wait_interim(conn: wire.Connection, timeout: float) -> wire.Progress | wire.Outcome:
    """Read until a 1xx or a final status arrives (or the deadline)."""
    return conn.read_until(lambda p: bool(p.informational) or p.status is not None, "POST", timeout=timeout)


def _expect_head(target: str, version: str = "HTTP/1.1") -> bytes:
    headers = [("Expect", "100-continue"), ("Content-Length", "5")]
    return wire.build_request("POST", target, headers, version=version)


def _finish_expect(conn: wire.Connection) -> wire.Response:
    conn.send(b"hello")
    outcome = conn.response("POST")
    response = _first_response(outcome, "the request with Expect: 100-continue")
    data = _json(response.body)
    check(
        isinstance(data, dict) and data.get("body_length") == 5,
        "the app did not get the body sent after the interim response",
        expected="5 body bytes",
        observed=data,
    )
    return response


@scenario(
    "wire.h1.conn.expect_100",
    "Expect: 100-continue gets a 100 (or a final status) without waiting for the body",
    level=MUST,
    spec=RFC_EXPECT,
    covers=["wire.h1.conn.expect_100", "http.request.expect_continue"],
    impact="hang",
)
def test_expect_100(server: Server) -> None:
    """The client sends headers only. When the app calls ``receive()`` at once, a 100 (or a
    final status) MUST come before the request deadline. When the app holds before
    ``receive()``, the cell records ``eager`` (100 before the app reads; negative
    evidence: ``timeouts.hold``) or ``lazy`` (100 on the app's first ``receive()``).
    Lazy is not judged a failure: in ASGI only the app can tell the final status (which
    RFC 9110 lets an origin server send instead of the 100), and ASGI is silent on when;
    a 100 that never comes, even once the app reads, is."""
    token = _token()
    with server.connection() as conn:
        conn.send(_expect_head(f"/app/conn-expect/{token}/now"))
        started = time.monotonic()
        interim = _wait_interim(conn, server.timeouts.request)
        check(
            isinstance(interim, wire.Progress),
            "no 100 Continue and no final status while the client waits to send the body",
            expected="100 Continue (or a final status) at once",
            observed=wire.describe(interim),
        )
        assert isinstance(interim, wire.Progress)
        note(f"app reading at once: {interim.informational or interim.status} after {time.monotonic() - started:.3f} s")
        if interim.status is not None and not interim.informational:
            conn.response("POST")
            record(f"final status {interim.status} instead of 100")
            return
        _finish_expect(conn)

    token = _token()
    stream = f"conn-expect-{token}"
    with server.connection() as conn:
        conn.send(_expect_head(f"/app/conn-expect/{token}/gate"))
        interim = _wait_interim(conn, server.timeouts.hold)
        if isinstance(interim, wire.Progress):
            timing = "eager"
        else:
            holding = server.journal.wait_for(
                stream, lambda r: r.get("event") == "holding", timeout=server.timeouts.event
            )
            check(
                holding is not None,
                "no 100 Continue, and the app was not called: client and server wait for each other",
                expected="100 Continue, or the app called",
                observed=wire.describe(interim),
            )
            timing = "lazy"
        server.journal.open_gate(stream)
        if timing == "lazy":
            interim = _wait_interim(conn, server.timeouts.request)
            check(
                isinstance(interim, wire.Progress),
                "no 100 Continue after the app called receive()",
                expected="100 Continue (or a final status)",
                observed=wire.describe(interim),
            )
        assert isinstance(interim, wire.Progress)
        if interim.status is not None and not interim.informational:
            conn.response("POST")
            record(f"final status {interim.status} instead of 100 ({timing})")
            return
        _finish_expect(conn)
    record(f"{timing} (100 " + ("before the app reads)" if timing == "eager" else "on the app's first receive())"))


@scenario(
    "wire.h1.conn.expect_http10",
    "Expect: 100-continue in an HTTP/1.0 request gets no 100",
    level=MUST,
    spec=RFC_EXPECT,
)
def test_expect_http10(server: Server) -> None:
    """Headers first, the body after ``timeouts.hold`` (negative evidence: no 100 in that time),
    then no 100 may precede the final response either."""
    with server.connection() as conn:
        conn.send(_expect_head(f"/app/conn-expect/{_token()}/now", version="HTTP/1.0"))
        interim = _wait_interim(conn, server.timeouts.hold)
        early = interim.informational if isinstance(interim, wire.Progress) else ()
        check(
            100 not in early,
            "an HTTP/1.0 request with Expect: 100-continue got a 100",
            expected="no 100 Continue",
            observed=list(early),
        )
        response = _finish_expect(conn)
        check(
            100 not in response.informational,
            "an HTTP/1.0 request with Expect: 100-continue got a 100",
            expected="no 100 Continue",
            observed=list(response.informational),
        )


@scenario(
    "wire.h1.conn.expect_unknown",
    "an expectation other than 100-continue: 417, or passed to the app",
    level=INFO,
    spec=RFC_EXPECT,
)
def test_expect_unknown(server: Server) -> None:
    """MAY answer 417. The cell records the status and whether the app saw ``expect: foo``;
    the request must still be answered (not left hanging)."""
    outcome = server.request("GET", f"/echo/expect/{_token()}", [("Expect", "foo")])
    check(
        isinstance(outcome, wire.Response),
        "a request with an unknown expectation was not answered",
        expected="417, or the app's response",
        observed=wire.describe(outcome),
        level=MUST,
    )
    assert isinstance(outcome, wire.Response)
    if outcome.status == 417:
        record("417 Expectation Failed")
        return
    if outcome.status != 200:
        record(f"{outcome.status} from the server")
        return
    seen = parse_echo(outcome)
    values = [v for k, v in seen.scope.get("headers") or () if isinstance(k, bytes) and k.lower() == b"expect"]
    record("passed to the app" + (" (expect header kept)" if values else " (expect header removed)"))


@scenario(
    "wire.h1.conn.no_1xx_to_http10",
    "an HTTP/1.0 client never gets a 1xx (100 on Expect, 103 from early hints)",
    level=MUST,
    spec="RFC 9110 §15.2",
)
def test_no_1xx_to_http10(server: Server) -> None:
    """The app sends an early hint when the server offers ``http.response.early_hint``; the
    request carries Expect: 100-continue with its body. No 1xx may reach the client."""
    head = _expect_head(f"/app/conn-hints/{_token()}", version="HTTP/1.0")
    outcome = server.raw(head + b"hello", method="POST")
    response = _first_response(outcome, "the HTTP/1.0 request")
    check(
        not response.informational,
        "an HTTP/1.0 client got an interim (1xx) response",
        expected="no 1xx",
        observed=list(response.informational),
    )
    data = _json(response.body)
    if isinstance(data, dict):
        note(f"early hints offered: {data.get('hint_offered')}; error from send: {data.get('hint_error')}")


# -- Upgrade ------------------------------------------------------------------------------------


@scenario(
    "wire.h1.conn.upgrade_http10_ignored",
    "a WebSocket handshake sent as HTTP/1.0 is not switched (no 101)",
    level=MUST,
    spec=RFC_UPGRADE,
)
def test_upgrade_http10_ignored(server: Server) -> None:
    """MUST ignore Upgrade in HTTP/1.0: served as plain HTTP (the cell says so), or refused with a 4xx."""
    outcome = server.raw(_websocket_handshake("HTTP/1.0", connection=True))
    check(
        not _switched(outcome),
        "the server switched protocols for an HTTP/1.0 request",
        expected="no 101; the request served as HTTP",
        observed="101 Switching Protocols",
    )
    record(_plain_or_refused(outcome))


@scenario(
    "wire.h1.conn.upgrade_only_requested",
    "Upgrade: websocket without the Connection: upgrade option: never 101",
    level=INFO,
    spec=RFC_UPGRADE,
)
def test_upgrade_only_requested(server: Server) -> None:
    """MUST NOT switch (the upgrade option is missing from Connection); the cell records
    whether the request was served as plain HTTP or refused."""
    outcome = server.raw(_websocket_handshake("HTTP/1.1", connection=False))
    check(
        not _switched(outcome),
        "the server switched protocols without the Connection: upgrade option",
        expected="no 101",
        observed="101 Switching Protocols",
        level=MUST,
    )
    record(_plain_or_refused(outcome))


# -- idle -------------------------------------------------------------------------------------------


@scenario(
    "wire.h1.conn.idle_timeout",
    "idle keep-alive connection: closed within the hold time, or still serving after it",
    level=INFO,
    spec="RFC 9112 §9.5",
    impact="hang",
)
def test_idle_timeout(server: Server) -> None:
    """Informative: the idle timeout is server policy. The connection stays idle for
    ``timeouts.hold`` (negative evidence); the cell records whether it was closed in that
    time. One that is still open must serve the next request (not hang), and nothing
    may arrive unasked on it."""
    token = _token()
    hold = server.timeouts.hold
    with server.connection() as conn:
        conn.send(wire.build_request("GET", f"/app/conn-idle/{token}/1"))
        _first_response(conn.response(), "the first request")
        idle = conn.response(timeout=hold)
        if _gone(idle):
            record(f"closed within {hold:.1f} s idle")
            return
        check(
            isinstance(idle, wire.Timeout) and not idle.received,
            "the server sent something on an idle connection",
            expected="nothing, or a close",
            observed=wire.describe(idle),
            level=MUST,
        )
        conn.send(wire.build_request("GET", f"/app/conn-idle/{token}/2"))
        second = conn.response()
        if _gone(second):
            record(f"closed after more than {hold:.1f} s idle (when the next request came)")
            return
        check(
            isinstance(second, wire.Response) and second.body == b"2",
            "a connection left open after an idle period did not serve the next request",
            expected="the answer to request 2, or a close",
            observed=wire.describe(second),
            level=MUST,
        )
        record(f"open after {hold:.1f} s idle")
