"""Scenario apps for suites/test_websocket.py (registered with routes.route). Standard library only.

Each is served under ``/app/<name>/<token>``; the token names the journal stream for
what the app observes after the client is gone. Every wait is bounded (``LIMIT``) and
works under asyncio and trio alike.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from . import aio, journal, routes
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
