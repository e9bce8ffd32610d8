"""Frameworks under each server: the framework half of the ASGI contract, met as a pair.

A user runs a framework on a server: "does my StreamingResponse stop when the client
leaves, under granian?" is a question about the pair. Each behaviour below is written
once as a check and run against every framework app
(asgi_conformance/apps/frameworks/<framework>_app.py: the same small behaviour written with
that framework's own public API); the factory at the end declares one scenario per
framework and behaviour, ``fw.<framework>.<behaviour>``, with ``framework=`` set. They run
only with ``--framework=NAME`` (or ``all``).

Framework apps are served by the shared server under ``/app/fw-<framework>/`` and, for
lifespan and root_path, at the top of a dedicated process (``serve.fw_<framework>``).
A framework that cannot run on the server's event loop (Quart and Django need asyncio;
hypercorn's trio worker runs trio) answers ``501 {"unsupported": ...}``: ``unsupported``.
"""

from __future__ import annotations

import hashlib
import random
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from asgi_conformance import MUST, SHOULD, Launcher, Server, check, client, fail, note, record, scenario
from asgi_conformance.apps.frameworks import FRAMEWORKS, ROOT_PATH
from asgi_conformance.apps.frameworks.common import file_bytes
from asgi_conformance.verdicts import Level
from asgi_conformance.wsclient import Accepted, CloseFrame, WebSocket
from asgi_conformance.wsclient import describe as describe_ws

from .fixtures_framework import dedicated, framework_base, json_of, unsupported_if

KEY_BEHAVIOURS = ("stream_disconnect", "lifespan_state", "root_path", "exception", "websocket_close")
"""The behaviours the framework x server view leads with (asgi_conformance.framework_view)."""

Record = dict[str, Any]
BODY_SIZE = 300_000
RANGE = (1000, 1999)


def _describe(outcome: client.Outcome) -> str:
    text = client.describe(outcome)
    if isinstance(outcome, client.Response) and outcome.status != 200:
        text += f": {outcome.body[:200]!r}"
    return text


def _events(server: Server, token: str) -> Record | None:
    """What the framework sent for the request with ``token`` (journalled when its app returned)."""
    return server.journal.wait_for(f"fw-{token}", lambda r: r.get("kind") == "events", server.timeouts.event)


# -- stream_disconnect --------------------------------------------------------------------


STOPPED = "stopped: the stream produced nothing more after the client left"


def stream_disconnect(server: Server, framework: str, *, idle: bool = False) -> None:
    """The app streams a chunk every 10 ms from an async generator (at most 20 s). The client
    reads three chunks and closes its connection; the generator journals every chunk it
    produces after that and how it ended. Pass: it stops producing (closed within the event
    deadline, or silent for ``timeouts.hold`` after it). Fail: it keeps producing, or runs
    to its end.

    Whether a generator that stopped is also closed by then is left to a note: a framework
    that cancels its streaming task while the task waits outside the generator (in a send)
    leaves the generator suspended until the garbage collector finalises it, and where the
    task waits when the disconnect arrives is chance, so a verdict on it would change from
    run to run. The idle variant, where the generator is the one waiting, judges it."""
    base = framework_base(server, framework)
    token = secrets.token_hex(6)
    stream = f"fw-{token}"
    if idle:
        server.journal.open_gate(f"idle-{token}")
    with server.connection() as conn:
        conn.send(client.build_request("GET", f"{base}/stream/{token}"))
        progress = conn.read_until(lambda p: p.body.count(b"\n") >= 3, timeout=server.timeouts.request)
        if not isinstance(progress, client.Progress) or progress.status != 200:
            fail(
                "the streaming response did not start",
                expected="200 and three chunks",
                observed=_describe(progress) if not isinstance(progress, client.Progress) else progress.status,
                level=MUST,
            )
    left = time.time()
    server.journal.open_gate(f"left-{token}")
    end = server.journal.wait_for(stream, lambda r: r.get("kind") == "end", server.timeouts.event)
    after = [r for r in server.journal.records(stream) if r.get("kind") == "after"]
    if end is not None:
        note(
            f"generator ended ({end.get('how')}, {end.get('exception')}) {max(0.0, end['t'] - left) * 1000:.0f} ms "
            f"after the client left; {len(after)} chunks produced after that"
        )
        check(
            end.get("how") == "closed",
            "the stream ran to its end instead of stopping when the client left",
            expected="the generator closed soon after the client left",
            observed=f"exhausted after {end.get('produced')} chunks",
            level=MUST,
        )
        record("stopped: the generator was closed after the client left" if idle else STOPPED)
        return
    seen = len(after)
    if idle:
        fail(
            "the framework did not stop the waiting stream when the client left (it would only notice at its "
            "next chunk: a long poll or SSE stream holds its resources until then)",
            expected="the generator closed soon after the client left",
            observed=f"not closed {server.timeouts.event:g} s after the client left",
            level=SHOULD,
        )
    more = server.journal.wait_for(
        stream, lambda r: r.get("kind") == "after" and r.get("n", 0) > seen, server.timeouts.hold
    )
    if more is not None or seen > 50:
        fail(
            "the stream kept producing after the client left (no http.disconnect reached the framework, "
            "or it did not act on it)",
            expected="the generator closed soon after the client left",
            observed=f"{seen}+ chunks produced in the {server.timeouts.event:g} s after the client left, not closed",
            level=MUST,
        )
    note(
        f"{seen} chunks after the client left, then nothing; the generator was not closed within "
        f"{server.timeouts.event:g} s (its finally had not run)"
    )
    record(STOPPED)


def stream_disconnect_idle(server: Server, framework: str) -> None:
    """Like stream_disconnect, but the generator has nothing to send when the client leaves:
    after three chunks it waits 15 s (a long poll, an SSE stream between events). The
    client leaves during that wait; the framework should stop the generator then (it got
    http.disconnect), not at its next chunk. Warn if it is not closed within the deadline."""
    stream_disconnect(server, framework, idle=True)


# -- request_stream ----------------------------------------------------------------------


def _chunked(body: bytes, size: int) -> bytes:
    out = bytearray()
    for i in range(0, len(body), size):
        part = body[i : i + size]
        out += b"%x\r\n%s\r\n" % (len(part), part)
    return bytes(out + b"0\r\n\r\n")


def request_stream(server: Server, framework: str) -> None:
    """The app reads the request body with the framework's streaming reader (``request.stream()``
    or its equivalent) to the end and answers its length and sha256: a Content-Length body of
    300 kB, then a chunked one; both byte-exact."""
    base = framework_base(server, framework)
    token = secrets.token_hex(6)
    body = random.Random(token).randbytes(BODY_SIZE)
    digest = hashlib.sha256(body).hexdigest()
    sent = {
        "content-length": client.build_request("POST", f"{base}/body/{token}", [("Content-Type", "x/y")], body),
        "chunked": client.build_request(
            "POST", f"{base}/body/{token}", [("Transfer-Encoding", "chunked"), ("Content-Type", "x/y")]
        )
        + _chunked(body, 65_000),
    }
    parts = []
    for how, data in sent.items():
        outcome = server.raw(data, method="POST")
        seen = json_of(outcome)
        if not isinstance(outcome, client.Response) or outcome.status != 200 or not isinstance(seen, dict):
            fail(
                f"the {how} request's body was not read",
                expected="200 with the body's length and sha256",
                observed=_describe(outcome),
                level=MUST,
            )
        check(
            seen.get("length") == len(body) and seen.get("sha256") == digest,
            f"the framework read a different {how} body",
            expected={"length": len(body), "sha256": digest[:16]},
            observed={"length": seen.get("length"), "sha256": str(seen.get("sha256"))[:16]},
            level=MUST,
        )
        parts.append(f"{how}: {seen.get('parts')} parts")
    note("; ".join(parts))


# -- lifespan_state ------------------------------------------------------------------------


def lifespan_state(launcher: Launcher, framework: str) -> None:
    """A dedicated process serves the framework app at the top level. Its lifespan startup
    handler journals a fresh value and stores it in the framework's state; ``GET /state``
    must show that value; after the server's orderly stop the shutdown handler must have
    run and still seen it."""
    server = dedicated(launcher, framework)
    stream = "fw-lifespan"
    started = server.journal.wait_for(stream, lambda r: r.get("kind") == "startup", server.timeouts.event)
    if started is None:
        fail(
            "the framework's lifespan startup handler did not run",
            expected="the startup handler runs before the first request",
            observed="no startup record",
            level=MUST,
        )
    outcome = server.request("GET", "/state")
    seen = json_of(outcome)
    check(
        isinstance(seen, dict) and seen.get("value") == started.get("value"),
        "the state set in lifespan startup did not reach the request",
        expected={"value": started.get("value")},
        observed=seen if isinstance(seen, dict) else _describe(outcome),
        level=MUST,
    )
    stopped = server.process.stop()
    note(f"stopped by {stopped.signal}, exit status {stopped.exit_status}{' (forced)' if stopped.forced else ''}")
    ended = [r for r in server.journal.records(stream) if r.get("kind") == "shutdown"]
    check(
        len(ended) == 1,
        "the framework's lifespan shutdown handler did not run once on an orderly stop",
        expected="one shutdown record",
        observed=f"{len(ended)} shutdown records",
        level=MUST,
    )
    check(
        ended[0].get("value") == started.get("value"),
        "the shutdown handler saw different state",
        expected=started.get("value"),
        observed=ended[0].get("value"),
        level=MUST,
    )
    record("startup ran, its state reached the request, shutdown ran")


# -- background_task -----------------------------------------------------------------------


def background_task(server: Server, framework: str) -> None:
    """The route returns "ok" with a background task that waits for a gate the harness opens
    only once it has the whole response. The response must complete while the task waits
    (within the request deadline), and the task must run after it."""
    base = framework_base(server, framework)
    token = secrets.token_hex(6)
    try:
        outcome = server.request("GET", f"{base}/background/{token}")
    finally:
        server.journal.open_gate(f"bg-{token}")
    check(
        isinstance(outcome, client.Response) and outcome.status == 200 and outcome.body == f"ok {token}".encode(),
        "the response did not complete while the background task was still waiting",
        expected=f"200 'ok {token}' before the background task runs",
        observed=_describe(outcome),
        level=MUST,
    )
    ran = server.journal.wait_for(f"fw-{token}", lambda r: r.get("kind") == "background", server.timeouts.event)
    check(
        ran is not None and ran.get("gate") is True,
        "the background task did not run after the response",
        expected="the background task runs once the response is out",
        observed=ran,
        level=MUST,
    )
    record("response complete first, then the background task ran")


# -- root_path -------------------------------------------------------------------------------


def root_path(launcher: Launcher, framework: str) -> None:
    """A dedicated process started with the target's root-path option set to /api serves the
    framework app at the top level; a sub-app is mounted at /sub. The client asks for
    /api/sub/where (the public URL); if the pair answers 404 there, for /sub/where (the
    form a proxy that strips the prefix sends: some servers prepend their root path).
    The sub-app's ``request.url`` and ``url_for`` must both be /api/sub/where."""
    server = dedicated(launcher, framework, ROOT_PATH)
    tried = []
    outcome: client.Outcome | None = None
    form = ""
    for how, path in (("public path", f"{ROOT_PATH}/sub/where"), ("prefix stripped", "/sub/where")):
        form = how
        outcome = server.request("GET", path)
        unsupported_if(outcome)
        tried.append(f"{path} -> {_describe(outcome)}")
        if not (isinstance(outcome, client.Response) and outcome.status == 404):
            break
    assert outcome is not None
    seen = json_of(outcome)
    if not (isinstance(outcome, client.Response) and outcome.status == 200 and isinstance(seen, dict)):
        fail(
            "the mounted app did not answer under the root path",
            expected=f"200 from the sub-app for {ROOT_PATH}/sub/where (or /sub/where)",
            observed="; ".join(tried),
            level=MUST,
        )
    note(f"answered for the {form}: " + "; ".join(tried))
    wanted = f"{ROOT_PATH}/sub/where"
    url, url_for = (urlsplit(str(seen.get(k))).path for k in ("url", "url_for"))
    check(
        url == wanted and url_for == wanted,
        "the framework's URLs do not include the root path",
        expected={"url": wanted, "url_for": wanted},
        observed={"url": url, "url_for": url_for, "root_path": seen.get("root_path"), "path": seen.get("path")},
        level=MUST,
    )
    record(f"url and url_for {wanted} (answered for the {form})")


# -- exception -----------------------------------------------------------------------------------


def exception(server: Server, framework: str) -> None:
    """An unhandled exception in a route gives a 500; an exception with a custom handler
    gives the handler's response (418); a new request afterwards still gets 200."""
    base = framework_base(server, framework)
    token = secrets.token_hex(6)
    boom = server.request("GET", f"{base}/boom/{token}")
    check(
        isinstance(boom, client.Response) and boom.status == 500,
        "an unhandled exception did not give a 500",
        expected="500",
        observed=_describe(boom),
        level=MUST,
    )
    custom = server.request("GET", f"{base}/custom/{token}")
    check(
        isinstance(custom, client.Response) and custom.status == 418 and custom.body == f"handled {token}".encode(),
        "the custom exception handler's response did not go out",
        expected=f"418 'handled {token}'",
        observed=_describe(custom) + (f" {custom.body[:80]!r}" if isinstance(custom, client.Response) else ""),
        level=MUST,
    )
    after = server.request("GET", f"{base}/info")
    check(
        isinstance(after, client.Response) and after.status == 200,
        "the server stopped serving after the app raised",
        expected="200 for the next request",
        observed=_describe(after),
        level=MUST,
    )
    record("500, then the handler's 418, then 200")


# -- websocket_close ------------------------------------------------------------------------------


def websocket_close(server: Server, framework: str) -> None:
    """The framework's WebSocket route accepts, then closes with code 4001 and reason
    "bye <token>". The client must see exactly that close frame. The reason is a MUST when the
    server advertises WebSocket spec_version 2.3 or later (it is what the framework sent)."""
    base = framework_base(server, framework)
    token = secrets.token_hex(6)
    with WebSocket(server.address, server.timeouts.request) as ws:
        shake = ws.handshake(f"{base}/ws/close/4001/{token}")
        event = ws.receive() if isinstance(shake, Accepted) else None
    sent = _events(server, token)
    if sent is not None:
        raised = sent.get("raised")
        note(f"the framework sent {sent.get('sent')} and {'raised ' + str(raised) if raised else 'returned'}")
    if event is None:
        fail("the WebSocket was not accepted", expected="101", observed=describe_ws(shake), level=MUST)
    check(
        isinstance(event, CloseFrame) and event.code == 4001,
        "the close code the framework asked for did not reach the client",
        expected="close frame 4001",
        observed=describe_ws(event),
        level=MUST,
    )
    assert isinstance(event, CloseFrame)
    version = str(sent.get("spec_version")) if sent else "unknown"
    at_least_23 = _version(version) >= (2, 3)
    if event.reason != f"bye {token}":
        check(
            not at_least_23,
            "the close reason the framework asked for did not reach the client",
            expected=f"bye {token}",
            observed=event.reason,
            level=MUST,
        )
        note(f"reason {event.reason!r} lost; the server advertises WebSocket spec_version {version} (< 2.3)")
        record(f"code 4001 kept, reason lost (spec_version {version})")
        return
    record("code and reason kept")


def _version(text: str) -> tuple[int, int]:
    try:
        major, minor = text.split(".")[:2]
        return int(major), int(minor)
    except ValueError:
        return (2, 0)


# -- file_response --------------------------------------------------------------------------------


def file_response(server: Server, framework: str) -> None:
    """The framework's file response serves a 300 001-byte file: the body must be byte-exact.
    Then ``Range: bytes=1000-1999``: a 206 must carry exactly those bytes (a 200 with the
    whole file is allowed: ranges are optional). Records whether the framework sent the file
    with http.response.pathsend (Starlette does when the server advertises it) or as body events."""
    base = framework_base(server, framework)
    expected = file_bytes()
    token = secrets.token_hex(6)
    # Three request deadlines for the file: a framework that streams it from a worker thread in
    # 64 KiB chunks needs a thread hop per chunk, and on a loaded machine 300 KB through daphne
    # took longer than one.
    download = 3 * server.timeouts.request
    whole = server.request("GET", f"{base}/file/{token}", timeout=download)
    if not isinstance(whole, client.Response) or whole.status != 200:
        fail("the file response did not arrive", expected="200", observed=_describe(whole), level=MUST)
    check(
        whole.body == expected,
        "the file arrived altered",
        expected=f"{len(expected)} bytes, sha256 {hashlib.sha256(expected).hexdigest()[:16]}",
        observed=f"{len(whole.body)} bytes, sha256 {hashlib.sha256(whole.body).hexdigest()[:16]}",
        level=MUST,
    )
    sent = _events(server, token)
    path = "pathsend" if sent and "http.response.pathsend" in sent.get("sent", ()) else "body events"
    first, last = RANGE
    token2 = secrets.token_hex(6)
    part = server.request("GET", f"{base}/file/{token2}", [("Range", f"bytes={first}-{last}")], timeout=download)
    if isinstance(part, client.Response) and part.status == 206:
        check(
            part.body == expected[first : last + 1]
            and part.header(b"content-range") == f"bytes {first}-{last}/{len(expected)}".encode(),
            "the range response carries the wrong bytes",
            expected=f"bytes {first}-{last}/{len(expected)}, {last - first + 1} bytes",
            observed=f"{part.header(b'content-range')!r}, {len(part.body)} bytes",
            level=MUST,
        )
        ranged = "206"
    elif isinstance(part, client.Response) and part.status == 200:
        check(part.body == expected, "the file arrived altered", expected="the whole file", observed=len(part.body))
        ranged = "200 (range ignored)"
    else:
        fail("the range request failed", expected="206 or 200", observed=_describe(part), level=MUST)
    advertised = "advertised" if sent and "http.response.pathsend" in sent.get("extensions", ()) else "not advertised"
    record(f"byte-exact via {path} (pathsend {advertised}); range: {ranged}")


# -- head ---------------------------------------------------------------------------------------------


def head(server: Server, framework: str) -> None:
    """HEAD on a GET route (the framework's documented way) gives 200, headers and no body;
    a Content-Length, if sent, is the GET body's length (RFC 9110 §8.6, §9.3.2). A GET on the
    same connection afterwards must come back intact (no stray body bytes)."""
    base = framework_base(server, framework)
    token = secrets.token_hex(6)
    body = f"hello head {token}".encode()
    with server.connection() as conn:
        conn.send(client.build_request("HEAD", f"{base}/head/{token}"))
        first = conn.response("HEAD")
        conn.send(client.build_request("GET", f"{base}/head/{token}"))
        second = conn.response("GET")
    if not isinstance(first, client.Response) or first.status != 200:
        fail("HEAD did not get a 200", expected="200, no body", observed=_describe(first), level=MUST)
    check(not first.body, "HEAD got a body", expected=b"", observed=first.body[:80], level=MUST)
    length = first.header(b"content-length")
    if length is not None:
        check(
            length == str(len(body)).encode(),
            "HEAD's Content-Length is not the GET body's length",
            expected=str(len(body)),
            observed=length.decode("latin-1"),
            level=MUST,
        )
    check(
        isinstance(second, client.Response) and second.status == 200 and second.body == body,
        "the GET after HEAD on the same connection did not come back intact",
        expected=f"200 {body!r}",
        observed=_describe(second) + (f" {second.body[:80]!r}" if isinstance(second, client.Response) else ""),
        level=MUST,
    )
    record(f"200, no body, Content-Length {'absent' if length is None else 'matches GET'}")


# -- the scenarios: one per framework and behaviour ------------------------------------------


Check = Callable[[Any, str], None]
BEHAVIOURS: dict[str, dict[str, Any]] = {
    "stream_disconnect": {
        "check": stream_disconnect,
        "title": "a streaming response stops when the client disconnects (key)",
        "level": MUST,
        "spec": "www › Disconnect (http.disconnect); framework docs › streaming responses",
        "covers": ("http.disconnect.on_close",),
        "impact": "hang",
    },
    "stream_disconnect_idle": {
        "check": stream_disconnect_idle,
        "title": "a streaming response waiting for its next chunk stops when the client disconnects",
        "level": SHOULD,
        "spec": "www › Disconnect (http.disconnect); framework docs › streaming responses, SSE",
        "covers": ("http.disconnect.on_close",),
        "impact": "hang",
    },
    "request_stream": {
        "check": request_stream,
        "title": "the request body is read to the end, byte-exact (Content-Length and chunked)",
        "level": MUST,
        "spec": "www › Request - receive event (body, more_body); framework docs › request.stream()",
        "covers": ("http.request.more_body_sequence", "http.request.body_bytes"),
        "impact": "data-loss",
    },
    "lifespan_state": {
        "check": lifespan_state,
        "fixture": "launcher",
        "title": "lifespan startup and shutdown handlers run and their state reaches requests (key)",
        "level": MUST,
        "spec": "lifespan › Startup, Shutdown, Lifespan State; framework docs › lifespan",
        "covers": ("state.startup_values_visible", "ls.shutdown.sent_on_stop"),
        "requires": ("lifespan",),
    },
    "background_task": {
        "check": background_task,
        "title": "a background task runs after the response is sent",
        "level": MUST,
        "spec": "www › Response Body (more_body False completes the response); framework docs › background tasks",
        "impact": "hang",
    },
    "root_path": {
        "check": root_path,
        "fixture": "launcher",
        "title": "a mounted sub-app under the server's root path builds URLs with it (key)",
        "level": MUST,
        "spec": "www › HTTP Connection Scope (root_path), WSGI Compatibility; framework docs › url_for, mounts",
        "covers": ("http.scope.root_path.configured",),
        "requires": ("root_path",),
    },
    "exception": {
        "check": exception,
        "title": "an unhandled exception gives a 500, a custom handler's response goes out, serving goes on (key)",
        "level": MUST,
        "spec": "www › Error handling; framework docs › exception handlers",
        "covers": ("err.http.raise_after_complete",),
    },
    "websocket_close": {
        "check": websocket_close,
        "title": "the framework's WebSocket close code and reason reach the client (key)",
        "level": MUST,
        "spec": "www › WebSocket Close (code, reason from 2.3); framework docs › WebSocket.close",
        "covers": ("ws.close.code", "ws.close.reason"),
        "requires": ("websocket",),
    },
    "file_response": {
        "check": file_response,
        "title": "a file response is byte-exact, a Range request too (pathsend or body events recorded)",
        "level": MUST,
        "spec": "ext › Path Send; RFC 9110 §14 (Range); framework docs › FileResponse",
        "covers": ("ext.pathsend.sends_file",),
        "impact": "data-loss",
    },
    "head": {
        "check": head,
        "title": "HEAD on a route gives its headers and no body",
        "level": MUST,
        "spec": "RFC 9110 §9.3.2, §8.6; www › Response Body",
        "covers": ("http.resp.head",),
    },
}
"""Each behaviour: its check, the fixture it takes (server, or launcher for a dedicated
process), and the scenario's title, level, spec, covered rows, requirements and impact."""


def _declare(framework: str, behaviour: str, spec: dict[str, Any]) -> None:
    run: Check = spec["check"]
    if spec.get("fixture") == "launcher":

        def case(launcher: Launcher) -> None:
            run(launcher, framework)

    else:

        def case(server: Server) -> None:  # type: ignore[misc]
            run(server, framework)

    name = f"test_{framework}_{behaviour}"
    case.__name__ = case.__qualname__ = name
    case.__doc__ = run.__doc__
    level: Level = spec["level"]
    declared = scenario(
        f"fw.{framework}.{behaviour}",
        f"{framework}: {spec['title']}",
        level=level,
        spec=spec["spec"],
        covers=spec.get("covers", ()),
        requires=spec.get("requires", ()),
        impact=spec.get("impact", "interop"),
        framework=framework,
    )(case)
    globals()[name] = declared


for _framework in FRAMEWORKS.values():
    for _behaviour in _framework.behaviours:
        _declare(_framework.name, _behaviour, BEHAVIOURS[_behaviour])

assert set(KEY_BEHAVIOURS) <= set(BEHAVIOURS)
