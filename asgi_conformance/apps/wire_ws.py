"""Scenario apps for suites/test_wire_ws.py (registered with routes.route). Standard library only.

``wsw-echo`` accepts, echoes every message and journals what it received (kind, size,
the head of the data as ``ascii()``) and its ``websocket.disconnect`` code on the
stream ``wsw-<token>``: that is how a wire-level case sees whether a bad frame reached
the app and which close code the app was told. ``wsw-close`` closes first. An HTTP
scope (a handshake the server did not take as one) gets a plain 200.
"""

from __future__ import annotations

from typing import Any

from . import journal, routes
from .routes import Receive, Scope, Send
from .websocket import bounded, token_of

__all__: list[str] = []

MAX_EVENTS = 1000
HEAD = 100


async def _http(receive: Receive, send: Send) -> None:
    for _ in range(MAX_EVENTS):
        message = await bounded(receive)
        if not isinstance(message, dict) or message.get("type") != "http.request" or not message.get("more_body"):
            break
    body = b"not a websocket"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


def _received(message: dict[str, Any]) -> dict[str, Any]:
    text = message.get("text")
    data = message.get("bytes")
    if isinstance(text, str):
        return {"kind": "receive", "text": True, "size": len(text), "head": ascii(text[:HEAD])}
    size = len(data) if isinstance(data, bytes | bytearray) else None
    return {"kind": "receive", "text": False, "size": size, "head": ascii(bytes(data or b"")[:HEAD])}


async def _until_disconnect(stream: str, receive: Receive, send: Send | None) -> None:
    """Journal (and echo, given ``send``) every message until websocket.disconnect."""
    for _ in range(MAX_EVENTS):
        message = await bounded(receive)
        if not isinstance(message, dict):
            journal.write(stream, {"kind": "gave-up"})
            return
        kind = message.get("type")
        if kind == "websocket.disconnect":
            journal.write(stream, {"kind": "disconnect", "code": message.get("code")})
            return
        if kind != "websocket.receive":
            journal.write(stream, {"kind": "other", "type": ascii(kind)})
            continue
        journal.write(stream, _received(message))
        if send is None:
            continue
        text = message.get("text")
        echo = {"text": text} if isinstance(text, str) else {"bytes": message.get("bytes") or b""}
        try:
            await send({"type": "websocket.send", **echo})
        except Exception as exc:
            journal.write(stream, {"kind": "send-error", "raised": type(exc).__name__})


@routes.route("wsw-echo")
async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    if scope.get("type") == "http":
        await _http(receive, send)
        return
    message = await bounded(receive)
    if not isinstance(message, dict) or message.get("type") != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    await _until_disconnect(f"wsw-{token_of(scope)}", receive, send)


@routes.route("wsw-close")
async def close_first(scope: Scope, receive: Receive, send: Send) -> None:
    """Accept, send "a", close with 1000, then try one more send ("late"; what it did is journaled)."""
    if scope.get("type") == "http":
        await _http(receive, send)
        return
    stream = f"wsw-{token_of(scope)}"
    message = await bounded(receive)
    if not isinstance(message, dict) or message.get("type") != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": "a"})
    await send({"type": "websocket.close", "code": 1000})
    try:
        await send({"type": "websocket.send", "text": "late"})
    except Exception as exc:
        journal.write(stream, {"kind": "late-send", "raised": type(exc).__name__})
    else:
        journal.write(stream, {"kind": "late-send", "raised": None})
    await _until_disconnect(stream, receive, None)


@routes.route("wsw-subprotocol")
async def subprotocol(scope: Scope, receive: Receive, send: Send) -> None:
    """Accept with the subprotocol named by the path's last segment (``/app/wsw-subprotocol/<token>/<name>``)."""
    if scope.get("type") == "http":
        await _http(receive, send)
        return
    path = scope.get("path")
    choice = path.rsplit("/", 1)[-1] if isinstance(path, str) else ""
    message = await bounded(receive)
    if not isinstance(message, dict) or message.get("type") != "websocket.connect":
        return
    journal.write(f"wsw-{token_of(scope)}", {"kind": "offered", "subprotocols": list(scope.get("subprotocols") or [])})
    await send({"type": "websocket.accept", "subprotocol": choice})
    await _until_disconnect(f"wsw-{token_of(scope)}", receive, None)
