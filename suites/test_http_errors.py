"""App errors on HTTP (spec-catalogue §8 without err.ws.*; core › Error Handling).

The scenario apps (asgi_conformance.apps.http_errors) raise, return early, return a value
or send invalid events on purpose, at the point the path names:
``/app/err-<what>/<token>/<variant>``. What the client sees is judged on the wire (a
complete response, a close, a reset, or a hang at the request deadline); what the app
saw of its own ``send()`` calls comes from the journal. The spec's MUST parts fail: the
instance ends and its connection is closed, and a response the app did not finish must
never look complete (no chunked terminator; no Content-Length body cut short and then
"done"). What the spec leaves open is INFO with the observed value.
"""

from __future__ import annotations

import functools
import re
import secrets
import time
from typing import Any

from asgi_conformance import INFO, MUST, SHOULD, Launcher, Server, check, client, fail, note, record, scenario
from asgi_conformance.apps.http_errors import ERROR_MARKER, stream_of
from asgi_conformance.concurrency import side_by_side
from asgi_conformance.timing import Deadline

from .lifespan_runs import finish_stop
from .test_http_disconnect import error_lines, follower_path, fresh_request, log_after

SPEC = "core › Error Handling"
Record = dict[str, Any]


def error_server(launcher: Launcher) -> Server:
    """A dedicated process of the target, for one case (or one variant) whose app raises after
    its response started.

    One server bug seen here (daphne) turns such an exception into a broken server: every later
    app exception leaves its client hanging. Each such case therefore starts a process of its own,
    so no cell depends on which case ran before it (core.app_error.server_survives looks at that
    aftermath on purpose, in one process).
    """
    process = launcher.start("app")
    return Server(launcher.target, process, launcher.timeouts)


def new_path(app: str, variant: str, query: str = "") -> tuple[str, str]:
    """A fresh token and the path ``/app/<app>/<token>/<variant>[?query]``."""
    token = secrets.token_hex(6)
    return token, f"/app/{app}/{token}/{variant}" + (f"?{query}" if query else "")


def status_of(received: bytes) -> int | None:
    found = re.match(rb"HTTP/\d\.\d (\d{3})", received)
    return int(found[1]) if found else None


def shown(outcome: client.Outcome) -> str:
    """What the client saw, in words: a complete response, or how it ended and what had come."""
    if isinstance(outcome, client.Response):
        return f"status {outcome.status}, {len(outcome.body)} body bytes, complete"
    if isinstance(outcome, client.Closed | client.Reset | client.Timeout):
        words = {client.Closed: "closed", client.Reset: "reset", client.Timeout: "hang (no end before the deadline)"}
        word = words[type(outcome)]
        status = status_of(outcome.received)
        started = f" after status {status} ({len(outcome.received)} bytes)" if status else " before any response"
        return f"{word}{started}"
    return client.describe(outcome)


def after_response(conn: client.Connection, server: Server) -> str:
    """After a complete response: did the server close the connection?

    ``timeouts.hold`` is the negative evidence that it stays open.
    """
    later = conn.response(timeout=server.timeouts.hold)
    if isinstance(later, client.Closed):
        return "connection closed"
    if isinstance(later, client.Reset):
        return "connection reset"
    if isinstance(later, client.Timeout):
        return "connection kept open"
    return f"then {client.describe(later)}"


def exchange(server: Server, path: str) -> tuple[client.Outcome, str]:
    """GET ``path``; the outcome, and for a complete response whether the connection then closed."""
    with server.connection() as conn:
        conn.send(client.build_request("GET", path))
        outcome = conn.response()
        closed = after_response(conn, server) if isinstance(outcome, client.Response) else ""
    return outcome, closed


def judge_survival(server: Server, what: str) -> None:
    ok, got = fresh_request(server, what)
    check(ok, "the server no longer serves a fresh connection", expected="200", observed=got, level=MUST)


def judge_not_hung(outcome: client.Outcome, *, level: Any = MUST) -> None:
    check(
        not isinstance(outcome, client.Timeout),
        "the client was left waiting: the connection neither ended nor got a complete response",
        expected="a response, a close or a reset",
        observed=shown(outcome),
        level=level,
    )


def judge_not_complete(outcome: client.Outcome, app_status: int) -> None:
    """A response the app started and did not finish must not arrive as complete."""
    if isinstance(outcome, client.Response) and outcome.status == app_status:
        fail(
            "a response the app did not finish looks complete to the client",
            expected="the connection closed or reset with the body cut short",
            observed=shown(outcome),
        )


def wait_journal(server: Server, token: str, kind: str, seconds: float | None = None) -> Record | None:
    return server.journal.wait_for(
        stream_of(token), lambda r: r.get("kind") == kind, server.timeouts.event if seconds is None else seconds
    )


# -- exceptions -----------------------------------------------------------------------------


@scenario(
    "err.http.raise_before_start",
    "an app that raises before http.response.start: the request ends (status recorded)",
    level=INFO,
    spec=SPEC,
    impact="hang",
)
def test_raise_before_start(server: Server) -> None:
    """INFO: the status (500 is custom, not spec) and whether the connection closed (``timeouts.hold``
    is the negative evidence that it stays open). MUST: the client is not left hanging, and it is not
    told the request succeeded (no 2xx the app never sent); a fresh connection still works."""
    token, path = new_path("err-raise", "before_start")
    outcome, closed = exchange(server, path)
    record(f"{shown(outcome)}{', ' + closed if closed else ''}")
    judge_not_hung(outcome)
    if isinstance(outcome, client.Response):
        check(
            not 200 <= outcome.status < 300,
            "the server answered a success status for an app that raised before choosing one",
            expected="an error status, or the connection closed",
            observed=shown(outcome),
        )
    judge_survival(server, token)


@scenario(
    "err.http.raise_after_start_before_body",
    "an app that raises after http.response.start, before any body: error response or abort",
    level=INFO,
    spec="www › Response Start",
    impact="data-loss",
)
def test_raise_after_start_before_body(launcher: Launcher) -> None:
    """INFO (MAY): the app's status 201 (chunked) cut short, or a 500 swapped in. MUST: the app's
    unfinished response does not look complete, and the client is not left hanging.
    Runs on a dedicated process (see error_server)."""
    server = error_server(launcher)
    _, path = new_path("err-raise", "after_start")
    outcome, closed = exchange(server, path)
    record(f"{shown(outcome)}{', ' + closed if closed else ''}")
    judge_not_hung(outcome)
    judge_not_complete(outcome, 201)


@scenario(
    "err.http.raise_mid_body",
    "an app that raises mid-body: the connection closes and the response does not look complete",
    level=MUST,
    spec=SPEC,
    impact="data-loss",
)
def test_raise_mid_body(launcher: Launcher) -> None:
    """MUST: chunked (no Content-Length): no terminating chunk before EOF; Content-Length 10 with
    5 bytes sent: EOF (or reset) before the other 5. Either way no hang and no complete response.
    Each variant runs on a dedicated process of its own (see error_server), side by side."""

    def run(variant: str) -> client.Outcome:
        return exchange(error_server(launcher), new_path("err-raise", variant)[1])[0]

    variants = ("mid_body_chunked", "mid_body_cl")
    outcomes = dict(zip(variants, side_by_side([functools.partial(run, v) for v in variants]), strict=True))
    seen = {variant: shown(outcome) for variant, outcome in outcomes.items()}
    record(seen)
    for variant, outcome in outcomes.items():
        check(
            isinstance(outcome, client.Closed | client.Reset),
            f"{variant}: the response did not end with the connection cut short",
            expected="closed or reset before the body is complete",
            observed=seen[variant],
        )


@scenario(
    "err.http.raise_after_complete",
    "an app that raises after a complete response: the response stays intact",
    level=MUST,
    spec=SPEC,
    impact="data-loss",
)
def test_raise_after_complete(launcher: Launcher) -> None:
    """MUST (implied): the response the app completed arrives intact. INFO: whether a request
    pipelined behind it on the same connection is still served. Runs on a dedicated process (see
    error_server): an exception after the response started can break a server for later ones."""
    server = error_server(launcher)
    _, path = new_path("err-raise", "after_complete")
    with server.connection() as conn:
        conn.send(client.build_request("GET", path) + client.build_request("GET", "/echo/err-pipelined"))
        first = conn.response()
        second = conn.response() if isinstance(first, client.Response) else first
    pipelined = (
        "pipelined request served"
        if isinstance(second, client.Response) and second.status == 200
        else f"pipelined request: {shown(second)}"
    )
    record(f"{shown(first)}; {pipelined}")
    check(
        isinstance(first, client.Response) and first.status == 200 and first.body == b"complete",
        "the completed response did not arrive intact",
        expected="status 200, body b'complete'",
        observed=shown(first) + (f": {first.body[:100]!r}" if isinstance(first, client.Response) else ""),
    )


# -- early returns ----------------------------------------------------------------------------


@scenario(
    "err.http.return_value",
    "an app that returns a value (not None) after a complete response: what the server does with it",
    level=INFO,
    spec="unspecified",
    impact="data-loss",
    alone=True,
)
def test_return_value(server: Server) -> None:
    """INFO: whether the server logs the stray return value, and whether the connection serves the
    next request. MUST (implied, as for an exception after completion): the response the app
    completed arrives intact. The log is read once a fresh request's access line shows it settled
    (or ``timeouts.hold`` passes: negative evidence)."""
    token, path = new_path("err-return", "value")
    offset = server.process.log_offset()
    with server.connection() as conn:
        conn.send(client.build_request("GET", path) + client.build_request("GET", "/echo/err-after-value"))
        first = conn.response()
        second = conn.response() if isinstance(first, client.Response) else first
    check(
        isinstance(first, client.Response) and first.status == 200 and first.body == b"complete",
        "the completed response did not arrive intact",
        expected="status 200, body b'complete'",
        observed=shown(first) + (f": {first.body[:100]!r}" if isinstance(first, client.Response) else ""),
    )
    served = isinstance(second, client.Response) and second.status == 200
    follower = follower_path(f"return-value-{token}")
    server.request("GET", follower)
    logged = "an error in the log" if error_lines(log_after(server, offset, follower)) else "nothing logged"
    record(f"{logged}; {'pipelined request served' if served else 'pipelined request: ' + shown(second)}")


@scenario(
    "err.http.return_no_start",
    "an app that returns without responding: what the client gets (500, close or hang)",
    level=INFO,
    spec="unspecified",
    impact="hang",
)
def test_return_no_start(server: Server) -> None:
    """INFO: what the client sees (``timeouts.hold`` is the negative evidence that the connection
    stays open after a response). SHOULD (inference): the client is not left hanging (a hang is
    judged at the request deadline) and gets no 2xx the app never sent."""
    _, path = new_path("err-return", "no_start")
    outcome, closed = exchange(server, path)
    record(f"{shown(outcome)}{', ' + closed if closed else ''}")
    judge_not_hung(outcome, level=SHOULD)
    if isinstance(outcome, client.Response):
        check(
            not 200 <= outcome.status < 300,
            "the server answered a success status for an app that never responded",
            expected="an error status, or the connection closed",
            observed=shown(outcome),
            level=SHOULD,
        )


@scenario(
    "err.http.return_incomplete",
    "an app that returns after start or a partial body: the response must not look complete",
    level=INFO,
    spec="unspecified",
    impact="data-loss",
)
def test_return_incomplete(server: Server) -> None:
    """INFO: close, reset or hang, per variant (start only; one chunk of a chunked body).
    MUST (implied): the unfinished response never looks complete. SHOULD: no hang."""
    variants = ("after_start", "partial_body")
    # Side by side, each on its connection: a server that leaves both hanging costs one deadline.
    ended = side_by_side([functools.partial(exchange, server, new_path("err-return", v)[1]) for v in variants])
    outcomes = {variant: outcome for variant, (outcome, _) in zip(variants, ended, strict=True)}
    seen = {variant: shown(outcome) for variant, outcome in outcomes.items()}
    record(seen)
    for outcome in outcomes.values():
        judge_not_complete(outcome, 200)
    for outcome in outcomes.values():
        judge_not_hung(outcome, level=SHOULD)


# -- invalid events ---------------------------------------------------------------------------


def probe(server: Server, name: str) -> Record:
    """Run the invalid-event probe ``name`` (see PROBES); the app's journal record of it.

    The client's outcome is only noted: once the app has journaled that it answered,
    ``timeouts.hold`` is the negative evidence that the answer does not arrive.
    """
    token, path = new_path("err-invalid", name)
    with server.connection() as conn:
        conn.send(client.build_request("GET", path))
        found = wait_journal(server, token, "probe")
        done = server.journal.wait_for(
            stream_of(token), lambda r: r.get("kind") in ("responded", "respond-failed"), server.timeouts.event
        )
        outcome = conn.response(timeout=server.timeouts.request if done is None else server.timeouts.hold)
    if found is None:
        fail(
            f"probe {name}: the app's record never came",
            expected="a journal record",
            observed=shown(outcome),
            level=MUST,
        )
    found["client"] = shown(outcome)
    return found


def raised(found: Record) -> str:
    return f"raised {found['exception']}" if found.get("exception") else "no exception"


def judge_probes(server: Server, names: tuple[str, ...]) -> None:
    """SHOULD: send() raises for each invalid event. The cell: what each probe did."""
    found = {name: probe(server, name) for name in names}
    record({name: raised(r) for name, r in found.items()})
    for name, r in found.items():
        note(f"{name}: client saw {r['client']}")
    silent = sorted(name for name, r in found.items() if not r.get("exception"))
    check(
        not silent,
        "send() accepted invalid events without raising",
        expected="an exception for each",
        observed=silent,
        level=SHOULD,
    )


@scenario(
    "err.http.unknown_type",
    "send() raises for an unknown event type (http.response.bogus)",
    level=SHOULD,
    spec=SPEC,
    impact="interop",
)
def test_unknown_type(server: Server) -> None:
    judge_probes(server, ("unknown_type",))


@scenario(
    "err.http.missing_key",
    "send() raises for http.response.start without 'status'",
    level=SHOULD,
    spec=SPEC,
    impact="interop",
)
def test_missing_key(server: Server) -> None:
    judge_probes(server, ("missing_status",))


@scenario(
    "err.http.wrong_types",
    "send() raises for values of the wrong type: status str, str headers, str body, more_body str",
    level=SHOULD,
    spec=SPEC,
    impact="interop",
)
def test_wrong_types(server: Server) -> None:
    judge_probes(server, ("status_str", "headers_str", "body_str", "more_body_str"))


@scenario(
    "err.http.cross_protocol",
    "send() raises for websocket.accept and lifespan.startup.complete in an http scope",
    level=SHOULD,
    spec=SPEC,
    impact="interop",
)
def test_cross_protocol(server: Server) -> None:
    judge_probes(server, ("websocket_accept", "lifespan_complete"))


# -- cancellation, shutdown, reporting ----------------------------------------------------


@scenario(
    "err.cancel_on_disconnect",
    "whether and when the server cancels an app task that ignores its client's disconnect",
    level=INFO,
    spec="unspecified",
    impact="hang",
    waits="the server's cancellation of an app whose client has left (up to 3 s)",
)
def test_cancel_on_disconnect(server: Server) -> None:
    """INFO: 'cancelled X s after the client left' or 'not cancelled within N s' (the app's own
    heartbeat loop is bounded to N s). MUST: the app is not cancelled while its client is still
    connected (the client closes only after the app's first heartbeat)."""
    limit = round(min(3.0, server.timeouts.event), 2)
    token, path = new_path("err-cancel", "beats", f"limit={limit}")
    stream = stream_of(token)
    with server.connection() as conn:
        conn.send(client.build_request("GET", path))
        first = server.journal.wait_for(stream, lambda r: r.get("kind") in ("beat", "end"), server.timeouts.event)
        left = time.time()
        if first is None:
            fail("the app never started", expected="a heartbeat", observed=client.describe(conn.response(timeout=0)))
    end = server.journal.wait_for(stream, lambda r: r.get("kind") == "end", limit + server.timeouts.event)
    if end is None:
        fail("the app's loop did not end", expected=f"an end record within {limit} s", observed="none", level=MUST)
    at = end.get("at")
    after = float(at) - left if isinstance(at, int | float) else float("nan")
    if end.get("how") == "ran-out":
        record(f"not cancelled within {limit} s")
    else:
        record(f"{end.get('how')} {max(after, 0.0):.1f} s after the client left")
    check(
        first.get("kind") == "beat",
        "the app was cancelled while its client was still connected",
        expected="the app runs until the client leaves",
        observed=f"{end.get('how')} before its first heartbeat, with the client connected",
    )


@scenario(
    "err.shutdown_inflight",
    "a graceful stop while the app holds a request: does the request complete, how does the process exit",
    level=INFO,
    spec="ls › Shutdown (ordering only)",
    impact="data-loss",
    waits="the server's exit after its stop signal while a request is held (up to 1.5 times the event deadline)",
)
def test_shutdown_inflight(launcher: Launcher) -> None:
    """INFO: after the stop signal, whether the server exits while the app still holds the request
    or waits for it, whether the request completes once the app releases it, and the exit. The
    app is released only after 1.5 times ``timeouts.event`` with the held connection untouched: the
    negative evidence that the server waits (a server that does not wait gives up on the
    request long before, at its own graceful timeout; a shorter hold raced a loaded machine).
    MUST: a complete response that arrives is the app's own (or a server error status), never a
    made-up success."""
    t = launcher.timeouts
    process = launcher.start("app")
    assert process.address is not None
    token, path = new_path("err-hold", "held", f"limit={round(3 * t.event, 1)}")
    stream = stream_of(token)
    with client.Connection(process.address, t.request) as conn:
        conn.send(client.build_request("GET", path))
        if process.journal.wait_for(stream, lambda r: r.get("kind") == "start", t.event) is None:
            fail("the held request never reached the app", expected="start", observed="none", level=MUST)
        sig = process.target.stop_signal
        process.signal(sig)
        # First the held connection: a server that gives up on the request ends it (or answers)
        # before its process exits; the exit then gets a deadline of its own, so a loaded
        # machine's slow interpreter teardown is not taken for a server that waits. One and a
        # half event deadlines: a server's own graceful timeout (hypercorn: 3 s) runs first.
        early = conn.read_until(lambda p: p.status is not None, timeout=1.5 * t.event)
        ended = not isinstance(early, client.Timeout)
        exited_early = process.wait_exit(t.event if ended else 0.0) is not None
        during = "exited with the request held" if exited_early else "kept running while the request was held"
        if isinstance(early, client.Closed | client.Reset):
            during += f", the held connection {shown(early)}"
        process.journal.open_gate(stream)
        # A head or nothing yet: read on. Anything else is how the request ended.
        outcome = conn.response(timeout=t.request) if isinstance(early, client.Progress | client.Timeout) else early
    end = process.journal.wait_for(stream, lambda r: r.get("kind") == "end", t.hold if exited_early else t.event)
    stop = finish_stop(process, sig.name)
    how = end.get("how") if end is not None else "no end record (process gone)"
    record(f"after {sig.name}: {during}; request: {shown(outcome)}; app: {how}; {stop.describe()}")
    if isinstance(outcome, client.Response) and outcome.status < 500:
        check(
            outcome.status == 200 and outcome.body == b"released",
            "the held request got a complete response the app did not send",
            expected="the app's 200 'released', an error status, or a cut connection",
            observed=f"{shown(outcome)}: {outcome.body[:100]!r}",
        )


@scenario(
    "err.reporting",
    "how an app exception is reported: a traceback in the server's log?",
    level=INFO,
    spec=SPEC,
    impact="cosmetic",
    alone=True,
)
def test_reporting(server: Server) -> None:
    """INFO (MAY): whether the server log shows a traceback with the app's exception, waited for
    until it appears (servers log asynchronously; daphne a second later) or ``timeouts.event``
    passes. MUST: the client gets no success status for the failed request."""
    token, path = new_path("err-raise", "before_start")
    offset = server.process.log_offset()
    outcome, _ = exchange(server, path)
    judge_survival(server, token)
    deadline = Deadline(server.timeouts.event)
    marker = f"{ERROR_MARKER} {token}"
    while True:
        log = server.process.log_slice(offset)
        if marker in log or deadline.expired:
            break
        time.sleep(min(0.02, deadline.remaining()))  # poll interval, bounded by the deadline
    if marker in log and "Traceback (most recent call last)" in log:
        record("traceback with the exception")
    elif marker in log:
        record("the exception's message, no traceback")
    elif error_lines(log):
        record("an error line without the exception")
    else:
        record("nothing in the log")
    if isinstance(outcome, client.Response):
        check(
            not 200 <= outcome.status < 300,
            "the failed request was answered with a success status",
            expected="an error status, or the connection closed",
            observed=shown(outcome),
        )


# -- extension events the server did not advertise ----------------------------------------------


@scenario(
    "err.http.unadvertised_extension",
    "extension events the scope does not advertise: does send() raise or ignore them?",
    level=INFO,
    spec="core › Extensions, Error Handling",
    impact="interop",
)
def test_unadvertised_extension(server: Server) -> None:
    """INFO: per extension the scope does not list (early_hint, push, debug before the start;
    pathsend, zerocopysend, trailers after it), whether send() raised or ignored the event.
    SHOULD: whatever send() did, the app's normal response sent after it arrives intact."""
    from asgi_conformance.apps.http_errors import EXTENSION_BODY, EXTENSION_PROBES

    extensions = server.echo("/echo/err-extensions").scope.get("extensions")
    advertised = set(extensions) if isinstance(extensions, dict) else set()
    seen: dict[str, str] = {}
    broken: dict[str, str] = {}
    for name in EXTENSION_PROBES:
        short = name.rsplit(".", 1)[-1]
        if name in advertised:
            seen[short] = "advertised (not probed)"
            continue
        token, path = new_path("err-extension", name)
        with server.connection() as conn:
            conn.send(client.build_request("GET", path))
            found = wait_journal(server, token, "probe")
            done = server.journal.wait_for(
                stream_of(token), lambda r: r.get("kind") in ("responded", "respond-failed"), server.timeouts.event
            )
            outcome = conn.response(timeout=server.timeouts.request if done is None else server.timeouts.hold)
        seen[short] = raised(found) if found is not None else "no record from the app"
        if not (isinstance(outcome, client.Response) and outcome.body == EXTENSION_BODY):
            broken[short] = shown(outcome)
    record(seen)
    check(
        not broken,
        "after an unadvertised extension event, the app's normal response did not arrive intact",
        expected=f"status 200, body {EXTENSION_BODY!r}",
        observed=broken,
        level=SHOULD,
    )
