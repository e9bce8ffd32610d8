"""Scenario apps for suites/test_http_request.py (registered with routes.route). Standard library only.

Every app takes its token from the path (``/app/<name>/<token>/...``) and writes its
journal records to the stream ``req-<token>``; limits come in the query string
(seconds, chosen by the harness from its scaled deadlines) and are clamped here, so
every wait is bounded whatever the request says. They run on asyncio and trio.

``req-digest``    reads the body to the end; answers with the shape of every event
                  (type, body type and length, more_body), sha256 and length.
``req-log``       journals each event as it arrives (``started``, ``event``, ``body_done``,
                  ``end``): for uploads cut short and long polls. After the body it keeps
                  calling ``receive()`` (up to ``wait`` s) until ``http.disconnect``; with
                  ``repeat=N`` it calls it N more times (``hold`` s each); with
                  ``respond=1`` it answers with its summary at the end; with ``gate=1``
                  it waits after the body for the gate ``req-<token>-after-body``, then
                  ``hold`` s in ``receive()``.
``req-after``     answers in full, then calls ``receive()`` (``wait`` s) and journals what it got.
``req-premature`` reads the body, calls ``receive()`` once more (``hold`` s), answers with the result.
``req-stream``    answers ``got-first-chunk <n>`` as soon as body bytes arrive, then the digest.
``req-ignore``    journals its path and answers at once (``status``) without reading the body.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
import time
from typing import Any
from urllib.parse import parse_qs

from . import aio
from .journal import wait_gate, write
from .routes import Message, Receive, Scope, Send, route
from .typedjson import dumps, encode

__all__ = ["receive_within", "shape"]

MAX_EVENTS = 20_000
MAX_WAIT = 60.0
SHOWN_BODY = 256


async def receive_within(receive: Receive, seconds: float) -> Message | None:
    """``receive()`` bounded by ``seconds``: the event, None on timeout, or ``{"$raised": ...}``."""
    try:
        if aio.library() == "trio":
            trio: Any = sys.modules["trio"]
            with trio.move_on_after(seconds):
                return await receive()
            return None
        try:
            return await asyncio.wait_for(receive(), seconds)
        except TimeoutError:
            return None
    except Exception as exc:  # what receive() raised is an observation, not an app crash
        return {"$raised": f"{type(exc).__module__}.{type(exc).__qualname__}", "oserror": isinstance(exc, OSError)}


def shape(message: Any) -> dict[str, Any]:
    """An event as the journal keeps it: keys and types exact, the body cut short, its length kept."""
    if not isinstance(message, dict):
        return {"$not_dict": repr(message)[:200]}
    shown = dict(message)
    body = message.get("body")
    if isinstance(body, bytes | bytearray | memoryview):
        shown["body_length"] = len(body)
        if len(body) > SHOWN_BODY:
            shown["body"] = body[:SHOWN_BODY] if isinstance(body, bytes) else body
    return dict(encode(shown))


def _token(scope: Scope) -> str:
    parts = str(scope.get("path", "")).split("/")
    return parts[3] if len(parts) > 3 and parts[3] else "none"


def _param(scope: Scope, name: str, default: float, limit: float = MAX_WAIT) -> float:
    raw = scope.get("query_string", b"")
    query = parse_qs(raw.decode("latin-1")) if isinstance(raw, bytes) else {}
    try:
        return min(max(float(query[name][0]), 0.0), limit)
    except (KeyError, ValueError, IndexError):
        return default


def _is_final(message: Message) -> bool:
    return message.get("type") != "http.request" or not message.get("more_body", False)


async def _answer(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


@route("req-digest")
async def digest_app(scope: Scope, receive: Receive, send: Send) -> None:
    events: list[list[Any]] = []
    sha = hashlib.sha256()
    length = 0
    for _ in range(MAX_EVENTS):
        message = await receive()
        body = message.get("body", b"")
        if isinstance(body, bytes | bytearray | memoryview):
            sha.update(body)
            length += len(body)
        events.append(
            [
                message.get("type"),
                type(body).__name__ if "body" in message else "absent",
                len(body) if isinstance(body, bytes | bytearray | memoryview) else None,
                message.get("more_body", "absent"),
            ]
        )
        if _is_final(message):
            break
    await _answer(send, 200, dumps({"events": events, "sha256": sha.hexdigest(), "length": length}))


@route("req-log")
async def log_app(scope: Scope, receive: Receive, send: Send) -> None:
    stream = f"req-{_token(scope)}"
    wait = _param(scope, "wait", 5.0)
    hold = _param(scope, "hold", 0.3)
    repeat = int(_param(scope, "repeat", 0))
    gated = bool(_param(scope, "gate", 0))
    write(stream, {"kind": "started"})
    events: list[Any] = []
    reason = "limit"
    body_done = False
    started = time.monotonic()
    for _ in range(MAX_EVENTS):
        message = await receive_within(receive, max(0.0, wait - (time.monotonic() - started)))
        if message is None:
            reason = "timeout"
            break
        events.append(shape(message))
        write(stream, {"kind": "event", "event": events[-1]})
        if "$raised" in message:
            reason = "raised"
            break
        if message.get("type") == "http.disconnect":
            reason = "disconnect"
            break
        if message.get("type") != "http.request" or body_done:
            reason = "unexpected"
            break
        if _is_final(message):
            body_done = True
            write(stream, {"kind": "body_done"})
            if gated:
                # The harness opens the gate once it has done what the app is to see next (a
                # half-close, say): the wait in receive() starts then, ``hold`` long.
                await wait_gate(f"{stream}-after-body", min(wait, MAX_WAIT))
                started, wait = time.monotonic(), hold
    repeats: list[Any] = []
    if reason == "disconnect":
        for _ in range(repeat):
            again = await receive_within(receive, hold)
            repeats.append(None if again is None else shape(again))
    summary = {"kind": "end", "reason": reason, "events": events, "repeats": repeats}
    write(stream, summary)
    if _param(scope, "respond", 0):
        try:
            await _answer(send, 200, dumps(summary))
        except Exception as exc:  # the client may be gone: that is what the case looks at
            write(stream, {"kind": "send_raised", "error": type(exc).__name__})


@route("req-after")
async def after_app(scope: Scope, receive: Receive, send: Send) -> None:
    stream = f"req-{_token(scope)}"
    wait = _param(scope, "wait", 5.0)
    for _ in range(MAX_EVENTS):
        if _is_final(await receive()):
            break
    await _answer(send, 200, b'{"done":true}')
    started = time.monotonic()
    message = await receive_within(receive, wait)
    elapsed = time.monotonic() - started
    write(stream, {"kind": "after", "event": None if message is None else shape(message), "elapsed": elapsed})


@route("req-premature")
async def premature_app(scope: Scope, receive: Receive, send: Send) -> None:
    hold = _param(scope, "hold", 0.3)
    events: list[Any] = []
    for _ in range(MAX_EVENTS):
        message = await receive()
        events.append(shape(message))
        if _is_final(message):
            break
    after = await receive_within(receive, hold)
    await _answer(send, 200, dumps({"events": events, "after": None if after is None else shape(after)}))


@route("req-stream")
async def stream_app(scope: Scope, receive: Receive, send: Send) -> None:
    sha = hashlib.sha256()
    length = 0
    events: list[list[Any]] = []
    told = False
    for _ in range(MAX_EVENTS):
        message = await receive()
        body = message.get("body", b"")
        if isinstance(body, bytes | bytearray | memoryview):
            sha.update(body)
            length += len(body)
        events.append([message.get("type"), length, message.get("more_body", "absent")])
        if length and not told:
            told = True
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"got-first-chunk %d\n" % length, "more_body": True})
        if _is_final(message):
            break
    if not told:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send(
        {"type": "http.response.body", "body": dumps({"events": events, "sha256": sha.hexdigest(), "length": length})}
    )


@route("req-ignore")
async def ignore_app(scope: Scope, receive: Receive, send: Send) -> None:
    write(f"req-{_token(scope)}", {"kind": "called", "path": scope.get("path"), "method": scope.get("method")})
    await _answer(send, int(_param(scope, "status", 200, 599)) or 200, b'{"ignored":true}')
