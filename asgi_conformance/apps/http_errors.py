"""Scenario apps for suites/test_http_errors.py, test_http_disconnect.py and the core error rows.

Each app is registered with ``routes.route`` under a name starting with ``err-`` and is
requested as ``/app/<name>/<token>/<variant>``: the token names the journal stream
(``err-<token>``) so records of two requests cannot be confused, the variant picks what
the app does wrong. Every wait is bounded; every loop is bounded. Runs inside the server
on asyncio or trio: standard library only.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from . import aio, journal
from .routes import Message, Receive, Scope, Send, route
from .typedjson import dumps

__all__ = ["ERROR_MARKER", "PROBES", "stream_of"]

# The text of every exception the apps raise on purpose; scenarios look for it in the log.
ERROR_MARKER = "asgi-conformance-deliberate-error"
DISCONNECT_LIMIT = 10.0  # how long an app waits for http.disconnect
HEARTBEAT_S = 0.05
MAX_EVENTS = 1_000


def stream_of(token: str) -> str:
    return f"err-{token}"


def _parts(scope: Scope) -> tuple[str, str, dict[str, str]]:
    """(token, variant, query) from ``/app/<name>/<token>/<variant>?k=v``."""
    path = scope.get("path")
    parts = path.split("/") if isinstance(path, str) else []
    token = parts[3] if len(parts) > 3 else "none"
    variant = parts[4] if len(parts) > 4 else ""
    query: dict[str, str] = {}
    raw = scope.get("query_string")
    if isinstance(raw, bytes):
        for pair in raw.decode("latin-1").split("&"):
            key, _, value = pair.partition("=")
            if key:
                query[key] = value
    return token, variant, query


def _number(query: dict[str, str], key: str, default: float, top: float) -> float:
    try:
        return max(0.0, min(float(query.get(key, default)), top))
    except ValueError:
        return default


def _spec_version(scope: Scope) -> Any:
    asgi = scope.get("asgi")
    return asgi.get("spec_version") if isinstance(asgi, dict) else None


def _exception(exc: BaseException | None) -> dict[str, Any]:
    if exc is None:
        return {"exception": None, "mro": [], "oserror": False, "message": None}
    return {
        "exception": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "mro": [f"{c.__module__}.{c.__qualname__}" for c in type(exc).__mro__],
        "oserror": isinstance(exc, OSError),
        "message": str(exc)[:200],
    }


async def _read_body(receive: Receive) -> Message:
    """Receive to the end of the request body; the last event."""
    message: Message = {}
    for _ in range(MAX_EVENTS):
        message = await receive()
        if message.get("type") != "http.request" or not message.get("more_body", False):
            break
    return message


async def _bounded(call: Callable[[], Awaitable[Message]], limit: float) -> Message | None:
    """``await call()`` for at most ``limit`` seconds; None if it did not return in time."""
    if aio.library() == "trio":
        trio: Any = sys.modules["trio"]
        result: Message | None = None
        with trio.move_on_after(limit):
            result = await call()
        return result
    try:
        return await asyncio.wait_for(call(), limit)
    except TimeoutError:
        return None


async def _wait_disconnect(receive: Receive, limit: float) -> tuple[Message | None, float]:
    """Receive until ``http.disconnect`` (bounded); the last event (None on timeout) and the wait."""
    began = time.monotonic()
    message: Message | None = None
    for _ in range(MAX_EVENTS):
        left = limit - (time.monotonic() - began)
        if left <= 0:
            return None, time.monotonic() - began
        message = await _bounded(receive, left)
        if message is None or message.get("type") == "http.disconnect":
            break
    return message, time.monotonic() - began


def _start(status: int = 200, length: int | None = None, **extra: Any) -> Message:
    headers = [(b"content-type", b"text/plain")]
    if length is not None:
        headers.append((b"content-length", str(length).encode("ascii")))
    return {"type": "http.response.start", "status": status, "headers": headers, **extra}


async def _complete(send: Send, body: bytes, status: int = 200) -> None:
    await send(_start(status, len(body)))
    await send({"type": "http.response.body", "body": body})


# -- send after the client has gone (spec 2.4) --------------------------------------------


@route("err-send-closed")
async def send_closed(scope: Scope, receive: Receive, send: Send) -> None:
    """Waits for http.disconnect, then calls send(); journals what send did.

    Variants: ``report`` (catch and journal), ``swallow`` (catch, journal, return normally),
    ``escape`` (journal, then let the exception escape to the server).
    """
    token, variant, _ = _parts(scope)
    stream = stream_of(token)
    await _read_body(receive)
    journal.write(stream, {"kind": "ready"})
    last, waited = await _wait_disconnect(receive, DISCONNECT_LIMIT)
    disconnected = last is not None and last.get("type") == "http.disconnect"
    record: dict[str, Any] = {
        "kind": "send",
        "disconnected": disconnected,
        "last_event": None if last is None else last.get("type"),
        "waited_s": round(waited, 3),
        "spec_version": _spec_version(scope),
    }
    try:
        await send(_start(200, 2))
        await send({"type": "http.response.body", "body": b"ok"})
    except Exception as exc:
        journal.write(stream, {**record, **_exception(exc), "escaping": variant == "escape"})
        if variant == "escape":
            raise
        journal.write(stream, {"kind": "returned"})
        return
    journal.write(stream, {**record, **_exception(None), "escaping": False})
    journal.write(stream, {"kind": "returned"})


# -- exceptions and early returns -----------------------------------------------------------


@route("err-raise")
async def raise_at(scope: Scope, receive: Receive, send: Send) -> None:
    """Raises at the point the variant names: ``before_start``, ``after_start`` (chunked),
    ``mid_body_chunked``, ``mid_body_cl`` (Content-Length 10, 5 bytes sent), ``after_complete``."""
    token, variant, _ = _parts(scope)
    stream = stream_of(token)
    await _read_body(receive)
    if variant == "after_start":
        await send(_start(201))
    elif variant == "mid_body_chunked":
        await send(_start(200))
        await send({"type": "http.response.body", "body": b"part1", "more_body": True})
    elif variant == "mid_body_cl":
        await send(_start(200, 10))
        await send({"type": "http.response.body", "body": b"part1", "more_body": True})
    elif variant == "after_complete":
        await _complete(send, b"complete")
    journal.write(stream, {"kind": "raising", "variant": variant})
    raise RuntimeError(f"{ERROR_MARKER} {token}")


@route("err-return")
async def return_early(scope: Scope, receive: Receive, send: Send) -> Any:
    """Returns at the point the variant names: ``no_start``, ``after_start`` (chunked),
    ``partial_body`` (chunked, one chunk sent), ``value`` (a complete response, then returns 42)."""
    token, variant, _ = _parts(scope)
    await _read_body(receive)
    if variant == "after_start":
        await send(_start(200))
    elif variant == "partial_body":
        await send(_start(200))
        await send({"type": "http.response.body", "body": b"part1", "more_body": True})
    elif variant == "value":
        await _complete(send, b"complete")
        journal.write(stream_of(token), {"kind": "returning", "variant": variant})
        return 42
    journal.write(stream_of(token), {"kind": "returning", "variant": variant})
    return None


# -- invalid events ---------------------------------------------------------------------------

# name -> (where the bad event goes: "first" before any start, "body" after a valid start; the event)
PROBES: dict[str, tuple[str, Message]] = {
    "unknown_type": ("first", {"type": "http.response.bogus"}),
    "missing_status": ("first", {"type": "http.response.start", "headers": []}),
    "status_str": ("first", {"type": "http.response.start", "status": "200", "headers": []}),
    "headers_str": ("first", {"type": "http.response.start", "status": 200, "headers": [("x-a", "b")]}),
    "body_str": ("body", {"type": "http.response.body", "body": "text", "more_body": True}),
    "more_body_str": ("body", {"type": "http.response.body", "body": b"", "more_body": "yes"}),
    "websocket_accept": ("first", {"type": "websocket.accept"}),
    "lifespan_complete": ("first", {"type": "lifespan.startup.complete"}),
}


@route("err-invalid")
async def invalid(scope: Scope, receive: Receive, send: Send) -> None:
    """Sends the bad event the variant names (see PROBES), catches what send() does, then
    answers 200 with a body that reports it (also journaled)."""
    token, variant, _ = _parts(scope)
    stream = stream_of(token)
    await _read_body(receive)
    where, event = PROBES.get(variant, ("first", {"type": "http.response.bogus"}))
    started = False
    caught: BaseException | None = None
    try:
        if where == "body":
            await send(_start(200))
            started = True
        await send(dict(event))
    except Exception as exc:
        caught = exc
    result = {"kind": "probe", "probe": variant, **_exception(caught)}
    journal.write(stream, result)
    body = dumps(result)
    try:
        if started:
            await send({"type": "http.response.body", "body": body})
        else:
            await _complete(send, body)
    except Exception as exc:
        journal.write(stream, {"kind": "respond-failed", **_exception(exc)})
        return
    journal.write(stream, {"kind": "responded"})


@route("err-extra-keys")
async def extra_keys(scope: Scope, receive: Receive, send: Send) -> None:
    """A normal response whose start and body events carry an unknown key ``x_future``."""
    token, _, _ = _parts(scope)
    await _read_body(receive)
    body = b"extra-keys-ok"
    try:
        await send({**_start(200, len(body)), "x_future": 1})
        await send({"type": "http.response.body", "body": body, "x_future": 1})
    except Exception as exc:
        journal.write(stream_of(token), {"kind": "raised", **_exception(exc)})
        raise
    journal.write(stream_of(token), {"kind": "responded"})


# -- cancellation and shutdown ----------------------------------------------------------------


@route("err-cancel")
async def heartbeat(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the request, then ignores the client and journals heartbeats for ``?limit=`` seconds
    (at most 10); the last record says whether it ran out or was cancelled, and when."""
    token, _, query = _parts(scope)
    stream = stream_of(token)
    limit = _number(query, "limit", 2.0, 10.0)
    await _read_body(receive)
    began = time.time()
    journal.write(stream, {"kind": "start", "at": began})
    how = "cancelled"  # what is left if a BaseException (cancellation) ends the task
    beats = 0
    try:
        while time.time() - began < limit:
            await aio.sleep(HEARTBEAT_S)
            beats += 1
            journal.write(stream, {"kind": "beat", "n": beats})
        how = "ran-out"
    except Exception as exc:
        how = f"raised {type(exc).__name__}"
    finally:
        journal.write(stream, {"kind": "end", "how": how, "beats": beats, "at": time.time()})


@route("err-hold")
async def hold(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers ``released`` once gate ``err-<token>`` opens (at most ``?limit=`` seconds, 30 max);
    journals ``start`` and an ``end`` record that says how the request ended."""
    token, _, query = _parts(scope)
    stream = stream_of(token)
    limit = _number(query, "limit", 10.0, 30.0)
    await _read_body(receive)
    journal.write(stream, {"kind": "start"})
    how = "cancelled"
    try:
        opened = await journal.wait_gate(stream, limit)
        await _complete(send, b"released" if opened else b"gave up")
        how = "completed" if opened else "gave-up"
    except Exception as exc:
        how = f"raised {type(exc).__name__}"
    finally:
        journal.write(stream, {"kind": "end", "how": how})


# -- extension events the server did not advertise ------------------------------------------------

EXTENSION_BODY = b"extension-probe"
# extension name in scope["extensions"] -> (where the event goes, the event)
EXTENSION_PROBES: dict[str, tuple[str, Message]] = {
    "http.response.early_hint": ("first", {"type": "http.response.early_hint", "links": [b"</x.css>; rel=preload"]}),
    "http.response.push": ("first", {"type": "http.response.push", "path": "/pushed", "headers": []}),
    "http.response.debug": ("first", {"type": "http.response.debug", "info": {"template": "x"}}),
    "http.response.pathsend": ("body", {"type": "http.response.pathsend", "path": "/dev/null"}),
    "http.response.zerocopysend": ("body", {"type": "http.response.zerocopysend", "file": -1, "count": 0}),
    "http.response.trailers": ("body", {"type": "http.response.trailers", "headers": [], "more_trailers": False}),
}


@route("err-extension")
async def extension(scope: Scope, receive: Receive, send: Send) -> None:
    """Sends the extension event the variant names (see EXTENSION_PROBES) where that extension
    places it (before the start, or after it in place of the body), catches what send() does,
    then answers 200 ``extension-probe`` (Content-Length) and journals both."""
    token, variant, _ = _parts(scope)
    stream = stream_of(token)
    await _read_body(receive)
    extensions = scope.get("extensions")
    advertised = isinstance(extensions, dict) and variant in extensions
    where, event = EXTENSION_PROBES.get(variant, ("first", {"type": variant}))
    started = False
    caught: BaseException | None = None
    try:
        if where == "body":
            await send(_start(200, len(EXTENSION_BODY)))
            started = True
        await send(dict(event))
    except Exception as exc:
        caught = exc
    journal.write(stream, {"kind": "probe", "probe": variant, "advertised": advertised, **_exception(caught)})
    try:
        if not started:
            await send(_start(200, len(EXTENSION_BODY)))
        await send({"type": "http.response.body", "body": EXTENSION_BODY})
    except Exception as exc:
        journal.write(stream, {"kind": "respond-failed", **_exception(exc)})
        return
    journal.write(stream, {"kind": "responded"})
