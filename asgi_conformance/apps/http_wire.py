"""Scenario apps for suites/test_wire_h1.py (registered with routes.route). Standard library only.

Paths are ``/app/<name>/<token>[/<part>]``; the token names the journal stream
(``wire-<token>``), so records of different requests cannot be confused.

``wire-mark``  journals that it ran (part ``smuggled`` or ``follow``), reads the body, answers 200.
``wire-body``  reads the body to the end (bounded) and journals the events it received.
``wire-resp``  answers in the way the part names (the §23 response-generation cases).
"""

from __future__ import annotations

from . import journal, routes
from .catalogue import read_body
from .routes import Receive, Scope, Send

__all__: list[str] = []

MAX_EVENTS = 10_000
Headers = list[tuple[bytes, bytes]]


def _parts(scope: Scope) -> list[str]:
    path = scope.get("path")
    parts = path.split("/")[3:] if isinstance(path, str) else []
    return [*parts, "", ""]


@routes.route("wire-mark")
async def mark(scope: Scope, receive: Receive, send: Send) -> None:
    token, part = _parts(scope)[:2]
    journal.write(f"wire-{token}", {"part": part, "method": scope.get("method")})
    await read_body(receive)
    body = part.encode("ascii", "replace")
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


@routes.route("wire-body")
async def body_events(scope: Scope, receive: Receive, send: Send) -> None:
    """Journals ``{"events": [[type, more_body, length], ...]}`` once the body ends or the client goes."""
    token = _parts(scope)[0]
    events: list[list[object]] = []
    for _ in range(MAX_EVENTS):
        message = await receive()
        body = message.get("body", b"")
        events.append([message.get("type"), bool(message.get("more_body", False)), len(body or b"")])
        if message.get("type") != "http.request" or not message.get("more_body", False):
            break
    journal.write(f"wire-{token}", {"events": events})
    if events and events[-1][0] == "http.request":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})


async def _respond(send: Send, status: int, headers: Headers, chunks: list[bytes]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    for n, chunk in enumerate(chunks):
        await send({"type": "http.response.body", "body": chunk, "more_body": n < len(chunks) - 1})


@routes.route("wire-resp")
async def respond(scope: Scope, receive: Receive, send: Send) -> None:
    """``/app/wire-resp/<token>/<case>``: the response the case names."""
    case = _parts(scope)[1]
    await read_body(receive)
    plain = (b"content-type", b"text/plain")
    if case == "head":  # the GET would carry 1234 bytes; on HEAD the app sends them too
        await _respond(send, 200, [plain, (b"content-length", b"1234")], [b"x" * 1234])
    elif case == "204-body":
        await _respond(send, 204, [], [b"xyz"])
    elif case == "304-body":
        await _respond(send, 304, [], [b"xyz"])
    elif case == "204-cl":
        await _respond(send, 204, [(b"content-length", b"0")], [b""])
    elif case == "204":
        await _respond(send, 204, [], [b""])
    elif case == "304-cl":
        await _respond(send, 304, [(b"content-length", b"1234")], [b""])
    elif case == "stream":
        await _respond(send, 200, [plain], [b"hello ", b"", b"world", b""])
    elif case == "cl-te":
        await _respond(send, 200, [plain, (b"content-length", b"5"), (b"transfer-encoding", b"chunked")], [b"hello"])
    elif case == "cl-short":
        await _respond(send, 200, [plain, (b"content-length", b"10")], [b"hello"])
    elif case == "cl-long":
        await _respond(send, 200, [plain, (b"content-length", b"10")], [b"0123456789", b"XXXXXXXXXX"])
    elif case == "date":
        await _respond(
            send, 200, [plain, (b"date", b"Mon, 01 Jan 2001 00:00:00 GMT"), (b"content-length", b"2")], [b"ok"]
        )
    elif case == "bad-value":
        await _respond(send, 200, [plain, (b"x-a", b"a\r\nx-injected: 1"), (b"content-length", b"2")], [b"ok"])
    elif case == "bad-name":
        await _respond(send, 200, [plain, (b"x a", b"1"), (b"content-length", b"2")], [b"ok"])
    else:
        await _respond(send, 404, [plain, (b"content-length", b"7")], [b"no case"])
