"""Scenario apps for suites/test_websocket.py (registered with routes.route). Standard library only.

Each is served under ``/app/<name>/<token>``; the token names the journal stream for
what the app observes after the client is gone. Every wait is bounded (``LIMIT``) and
works under asyncio and trio alike.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from . import aio, journal, routes, typedjson
from .routes import Receive, Scope, Send

__all__ = ["LIMIT", "bounded", "spec_version", "token_of"]

LIMIT = 30.0
"""App-side bound on any single wait (the harness's own deadlines are far shorter)."""
MAX_EVENTS = 1000


async def bounded(make: Callable[[], Awaitable[Any]], seconds: float = LIMIT) -> Any:
    """``await make()``, or None once ``seconds`` have passed (asyncio or trio)."""
    if aio.library() == "trio":
        trio: Any = sys.modules["trio"]
        with trio.move_on_after(seconds):
            return await make()
        return None
    try:
        return await asyncio.wait_for(make(), seconds)
    except TimeoutError:
        return None


def token_of(scope: Scope) -> str:
    """The path segment after the app name: the case's unique token."""
    path = scope.get("path")
    parts = path.split("/") if isinstance(path, str) else []
    return parts[3] if len(parts) > 3 and parts[3] else "none"


def spec_version(scope: Scope) -> Any:
    asgi = scope.get("asgi")
    return asgi.get("spec_version") if isinstance(asgi, dict) else None


def describe_exception(exc: BaseException) -> dict[str, Any]:
    kind = type(exc)
    return {
        "raised": kind.__name__,
        "qualname": f"{kind.__module__}.{kind.__qualname__}",
        "mro": [f"{k.__module__}.{k.__qualname__}" for k in kind.__mro__],
        "oserror": isinstance(exc, OSError),
        "message": str(exc)[:300],
    }


async def _connect(receive: Receive) -> bool:
    message = await bounded(receive)
    return isinstance(message, dict) and message.get("type") == "websocket.connect"


@routes.route("ws-send-after-close")
async def send_after_close(scope: Scope, receive: Receive, send: Send) -> None:
    """Accept, say "ready", wait for the client's close, then send once more.

    Journals what that late send did (exception class, MRO, OSError or not) with the
    scope's spec_version, then lets the exception escape, as an app that does its
    cleanup and re-raises would (ws.send_closed.not_logged judges the server's log).
    """
    stream = f"ws-send-closed-{token_of(scope)}"
    if not await _connect(receive):
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": "ready"})
    disconnect: Any = None
    for _ in range(MAX_EVENTS):
        message = await bounded(receive)
        if message is None or message.get("type") == "websocket.disconnect":
            disconnect = message
            break
    base = {
        "spec_version": spec_version(scope),
        "disconnect": disconnect.get("code") if isinstance(disconnect, dict) else None,
        "saw_disconnect": disconnect is not None,
    }
    try:
        await send({"type": "websocket.send", "text": "late"})
    except Exception as exc:
        journal.write(stream, {**base, **describe_exception(exc)})
        raise
    journal.write(stream, {**base, "raised": None, "oserror": False})


@routes.route("ws-raise-before-accept")
async def raise_before_accept(scope: Scope, receive: Receive, send: Send) -> None:
    await _connect(receive)
    raise RuntimeError(f"ws-raise-before-accept {token_of(scope)} (deliberate)")


@routes.route("ws-raise-after-accept")
async def raise_after_accept(scope: Scope, receive: Receive, send: Send) -> None:
    if await _connect(receive):
        await send({"type": "websocket.accept"})
    raise RuntimeError(f"ws-raise-after-accept {token_of(scope)} (deliberate)")


@routes.route("ws-return-before-accept")
async def return_before_accept(scope: Scope, receive: Receive, send: Send) -> None:
    await _connect(receive)


@routes.route("ws-return-after-accept")
async def return_after_accept(scope: Scope, receive: Receive, send: Send) -> None:
    if await _connect(receive):
        await send({"type": "websocket.accept"})


@routes.route("ws-unknown-type")
async def unknown_type(scope: Scope, receive: Receive, send: Send) -> None:
    """Accept, send ``websocket.bogus``, report what send() did in a text message, close."""
    if not await _connect(receive):
        return
    await send({"type": "websocket.accept"})
    report: dict[str, Any]
    try:
        await send({"type": "websocket.bogus", "text": "bogus"})
    except Exception as exc:
        report = describe_exception(exc)
    else:
        report = {"raised": None, "oserror": False}
    await send({"type": "websocket.send", "text": json.dumps(report)})
    await send({"type": "websocket.close", "code": 1000})


# -- §10-§13: the scripted app -------------------------------------------------------------

SCRIPT_STREAM = "ws-script-{token}"
BLOB = bytes(range(32, 127)) * 3
"""The repeating pattern of a ``blob`` step: printable ASCII, so it also serves as text."""
MAX_SHOWN = 256
"""Payloads up to this size are logged as they are; larger ones by length and sha256."""


def _script(scope: Scope) -> list[dict[str, Any]]:
    """The steps in the query string (``s=<base64url typed JSON>``); [] if unreadable."""
    query = scope.get("query_string")
    if not isinstance(query, bytes):
        return []
    for part in query.split(b"&"):
        if part.startswith(b"s="):
            try:
                steps = typedjson.loads(base64.urlsafe_b64decode(part[2:] + b"=" * (-len(part[2:]) % 4)))
            except (ValueError, TypeError):
                return []
            return [s for s in steps if isinstance(s, dict)] if isinstance(steps, list) else []
    return []


def shape(message: Any) -> dict[str, Any]:
    """What a received event looked like: type, keys, the types of text/bytes, small payloads, code, reason."""
    if not isinstance(message, dict):
        return {"type": None, "not_a_dict": type(message).__name__}
    out: dict[str, Any] = {"type": message.get("type"), "keys": sorted(str(k) for k in message)}
    for key in ("text", "bytes"):
        if key not in message:
            continue
        value = message[key]
        out[f"{key}_type"] = type(value).__name__
        if isinstance(value, str | bytes):
            raw = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
            out[f"{key}_len"] = len(value)
            out[f"{key}_sha256"] = hashlib.sha256(raw).hexdigest()
            if len(value) <= MAX_SHOWN:
                out[key] = value
    for key in ("code", "reason"):
        if key in message:
            out[key] = message[key]
    return out


def _scope_facts(scope: Scope) -> dict[str, Any]:
    extensions = scope.get("extensions")
    return {
        "type": scope.get("type"),
        "spec_version": spec_version(scope),
        "extensions": sorted(str(k) for k in extensions) if isinstance(extensions, dict) else None,
        "subprotocols": scope.get("subprotocols"),
    }


@routes.route("ws-script")
async def script(scope: Scope, receive: Receive, send: Send) -> None:
    """Run the steps the case put in the query string; log what each did.

    Steps (typed JSON dicts, by ``op``):

    ``receive``  one bounded ``receive()`` (``within`` seconds, default LIMIT); logs its shape
    ``send``     ``send(msg)``; logs "ok" or the exception (the script goes on)
    ``report``   sends the log so far as a text message (typed JSON)
    ``echo``     until websocket.disconnect: sends every message back as it came (same kind)
    ``shape``    until websocket.disconnect: answers every message with its shape (text, typed JSON)
    ``blob``     sends ``size`` bytes of BLOB's pattern (``kind`` "text" or "bytes")
    ``gate``     waits for the harness's gate ``<token>-<name>``
    ``journal``  writes the log to the journal now (it is always written at the end)

    The log starts with facts from the scope (spec_version, extension names, subprotocols).
    """
    token = token_of(scope)
    log: list[dict[str, Any]] = []
    facts = _scope_facts(scope)

    def record() -> dict[str, Any]:
        return {"scope": facts, "log": log}

    for step in _script(scope)[:MAX_EVENTS]:
        op = step.get("op")
        entry: dict[str, Any] = {"op": op}
        log.append(entry)
        try:
            if op == "receive":
                within = step.get("within")
                message = await bounded(receive, float(within) if isinstance(within, int | float) else LIMIT)
                entry["event"] = None if message is None else shape(message)
            elif op == "send":
                await send(step.get("msg") or {})
                entry["ok"] = True
            elif op == "report":
                await send({"type": "websocket.send", "text": typedjson.dumps(record()).decode("utf-8")})
                entry["ok"] = True
            elif op == "journal":
                journal.write(SCRIPT_STREAM.format(token=token), record())
            elif op == "gate":
                entry["ok"] = await journal.wait_gate(f"{token}-{step.get('name')}", LIMIT)
            elif op == "blob":
                size = int(step.get("size") or 0)
                data = (BLOB * (size // len(BLOB) + 1))[:size]
                kind = "text" if step.get("kind") == "text" else "bytes"
                await send({"type": "websocket.send", kind: data.decode("ascii") if kind == "text" else data})
                entry["ok"] = True
            elif op in ("echo", "shape"):
                await _loop(op, receive, send, entry)
        except Exception as exc:
            entry.update(describe_exception(exc))
    log.append({"op": "end"})
    journal.write(SCRIPT_STREAM.format(token=token), {**record(), "final": True})


async def _loop(op: str, receive: Receive, send: Send, entry: dict[str, Any]) -> None:
    """The ``echo`` and ``shape`` steps: until websocket.disconnect (or LIMIT without an event)."""
    seen: list[dict[str, Any]] = []
    entry["events"] = seen
    for _ in range(MAX_EVENTS):
        message = await bounded(receive)
        if message is None:
            entry["ended"] = "no event within the limit"
            return
        found = shape(message)
        seen.append(found)
        if message.get("type") != "websocket.receive":
            entry["ended"] = found
            return
        if op == "shape":
            await send({"type": "websocket.send", "text": typedjson.dumps(found).decode("utf-8")})
        elif isinstance(message.get("text"), str):
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})


# -- ws.close.receive_pending: a close sent while another task awaits receive() -----------

PENDING_STREAM = "ws-close-pending-{token}"
PENDING_CLOSE = {"type": "websocket.close", "code": 4001, "reason": "bye"}


@routes.route("ws-close-receive-pending")
async def close_receive_pending(scope: Scope, receive: Receive, send: Send) -> None:
    """Accept, start a second task looping on ``receive()``, yield once, then close 4001 "bye".

    Quart's shape: one task reads while another sends. Journals ``{"start": True}`` with the
    scope's spec_version after the accept, then a ``final`` record: whether the reader was
    inside receive() when the close was sent, what send() did (and how long it took), and
    what the pending receive() returned (shapes, seconds after the close). Every wait is
    bounded by LIMIT; the reader runs in a nursery under trio, as a task under asyncio.
    """
    stream = PENDING_STREAM.format(token=token_of(scope))
    if not await _connect(receive):
        return
    await send({"type": "websocket.accept"})
    journal.write(stream, {"start": True, "spec_version": spec_version(scope)})
    reader: dict[str, Any] = {"waiting": False, "events": [], "ended": "not started"}
    sent_at: list[float] = []

    async def read() -> None:
        """Plain ``await receive()`` (no wrapper task), bounded as a whole by the caller."""
        reader["ended"] = "no websocket.disconnect within the limit"
        try:
            for _ in range(MAX_EVENTS):
                reader["waiting"] = True
                message = await receive()
                reader["waiting"] = False
                found = shape(message)
                if sent_at:
                    found["after_close_s"] = round(time.monotonic() - sent_at[0], 3)
                reader["events"].append(found)
                if isinstance(message, dict) and message.get("type") == "websocket.disconnect":
                    reader["ended"] = "websocket.disconnect"
                    return
        except Exception as exc:
            reader["ended"] = f"receive() raised {type(exc).__name__}: {str(exc)[:200]}"
            return
        reader["ended"] = f"{MAX_EVENTS} events without a websocket.disconnect"

    async def close() -> dict[str, Any]:
        await aio.sleep(0)  # the reader is now inside receive()
        outcome: dict[str, Any] = {"pending_at_close": reader["waiting"]}
        sent_at.append(time.monotonic())

        async def do_send() -> str:
            await send(dict(PENDING_CLOSE))
            return "returned"

        try:
            result = await bounded(do_send)
        except Exception as exc:
            outcome["send"] = "raised"
            outcome.update(describe_exception(exc))
        else:
            outcome["send"] = result or "did not return within the limit"
        outcome["send_s"] = round(time.monotonic() - sent_at[0], 3)
        return outcome

    outcome: dict[str, Any] = {}
    if aio.library() == "trio":
        trio: Any = sys.modules["trio"]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(bounded, read)
            outcome = await close()
    else:
        task = asyncio.ensure_future(read())
        try:
            outcome = await close()
            await bounded(lambda: task)
        finally:
            task.cancel()
    journal.write(
        stream,
        {
            "final": True,
            "spec_version": spec_version(scope),
            **outcome,
            **{f"reader_{k}": v for k, v in reader.items()},
        },
    )
