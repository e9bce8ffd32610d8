"""The catalogue app: one ASGI 3 app that routes by path to the scenario apps.

One server process per target serves it for the whole run. The first path segment
names the scenario app, so every test picks its app (and can add a unique token to
the path) without restarting the server:

``/__asgi_conformance__/ready``
    readiness probe: 200 once the app is being served.
``/__asgi_conformance__/lifespan``
    the lifespan stash: what the lifespan task received and sent.
``/__asgi_conformance__/lifespan-state-set/<key>``
    stores ``key`` in the lifespan state dict after startup (a late mutation).
``/app/<name>/...``
    the scenario app registered as ``name`` (see routes), for HTTP and WebSocket
    scopes; 404 for a name nobody registered.
anything else
    the echo app: reads the request body to the end, then answers 200 with the
    typed-JSON scope and events it saw (see typedjson), with facts about the call
    (counter, scope id, loop, the interface it was given). A request with
    ``x-ac-mutate: <token>`` also mutates its own scope *after* taking the snapshot,
    so a later request can show whether the change leaked.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import os
import threading
from typing import Any

from . import aio, journal, routes
from .lifespan import HANDLERS, LifespanStash, Message, Receive, Scope, Send
from .typedjson import dumps, encode

__all__ = ["CONTROL_PREFIX", "Catalogue"]

CONTROL_PREFIX = "/__asgi_conformance__/"
MAX_EVENT_BODY = 64 * 1024
MAX_BODY_EVENTS = 10_000


class Catalogue:
    """The app served to targets; ``lifespan`` names the lifespan handler variant."""

    def __init__(self, lifespan: str = "normal") -> None:
        self.lifespan = HANDLERS[lifespan]
        self.stash = LifespanStash()
        self.calls = itertools.count(1)
        routes.load()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        """Serve one connection; a scenario app's return value is passed on (err.http.return_value)."""
        kind = scope.get("type")
        routed = routes.find(scope.get("path")) if kind != "lifespan" else None
        if routed is not None:
            name, app = routed
            if app is not None:
                return await app(scope, receive, send)
            elif kind == "http":
                await read_body(receive)
                await respond(send, 404, {"error": f"no scenario app {name!r}"})
            elif kind == "websocket":
                await receive()
                await send({"type": "websocket.close", "code": 1008})
        elif kind == "lifespan":
            await self.lifespan(scope, receive, send, self.stash)
        elif kind == "websocket":
            await self.websocket(scope, receive, send)
        else:
            # "http", and anything a broken server calls it: echo it, the scenario judges.
            await self.http(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        call = next(self.calls)
        path = scope.get("path")
        path = path if isinstance(path, str) else ""
        if path.startswith(CONTROL_PREFIX):
            await self.control(path[len(CONTROL_PREFIX) :], scope, receive, send)
        else:
            await self.echo(call, scope, receive, send)

    async def control(self, name: str, scope: Scope, receive: Receive, send: Send) -> None:
        await read_body(receive)
        if name == "ready":
            # The journal directory names the launch: a harness that gave this port to another
            # server too (another run on the machine) can tell which one answered.
            identity = {"pid": os.getpid(), "journal": journal.directory(), "lifespan_calls": self.stash.calls}
            await respond(send, 200, identity)
        elif name == "lifespan":
            await respond(send, 200, self.stash.snapshot())
        elif name.startswith("lifespan-state-set/") and self.stash.state is not None:
            self.stash.state[name.split("/", 1)[1]] = True
            await respond(send, 200, {"keys": sorted(self.stash.state)})
        else:
            await respond(send, 404, {"error": f"no control path {name!r}"})

    async def echo(self, call: int, scope: Scope, receive: Receive, send: Send) -> None:
        # A scope that is a mapping but not a dict is still shown (as a dict); the
        # interface facts say what it really was.
        snapshot = encode(scope if isinstance(scope, dict) else dict(scope))
        probe = ProbedReceive(receive)
        events, digest, length = await read_body(probe)
        state = scope.get("state")
        app = {
            "call": call,
            "scope_id": id(scope),
            "interface": {
                "scope_class": f"{type(scope).__module__}.{type(scope).__qualname__}",
                "scope_is_dict": isinstance(scope, dict),
                "receive_callable": callable(receive),
                "send_callable": callable(send),
                "receive_awaitable": probe.awaitable,
            },
            "pid": os.getpid(),
            "loop": aio.loop_identity(),
            "main_thread": threading.current_thread() is threading.main_thread(),
            "library": aio.library(),
            "body_sha256": digest,
            "body_length": length,
            "lifespan_loop": self.stash.loop,
            "startup_complete_sent": self.stash.startup_complete_sending,
            "lifespan_state_keys_now": sorted(self.stash.state) if self.stash.state is not None else None,
            "state_ids": {k: id(v) for k, v in state.items()} if isinstance(state, dict) else None,
        }
        token = header(scope, b"x-ac-mutate")
        if token is not None:
            mutate(scope, token.decode("latin-1"))
        await respond(send, 200, {"scope": snapshot, "events": events, "app": encode(app)}, encoded=True)

    async def websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message.get("type") != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "bytes": dumps({"scope": scope})})
        for _ in range(MAX_BODY_EVENTS):
            if (await receive()).get("type") == "websocket.disconnect":
                break


class ProbedReceive:
    """``receive`` as the app awaits it, noting whether each call returned an awaitable."""

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        self.awaitable = True

    async def __call__(self) -> Message:
        result: Any = self.receive()
        if inspect.isawaitable(result):
            message: Message = await result
            return message
        self.awaitable = False  # a plain return value: not the interface the spec defines
        return dict(result)


def header(scope: Scope, name: bytes) -> bytes | None:
    for item in scope.get("headers") or ():
        try:
            key, value = item
        except (TypeError, ValueError):
            continue
        if isinstance(key, bytes) and key.lower() == name and isinstance(value, bytes):
            return value
    return None


def mutate(scope: Scope, token: str) -> None:
    """Change this request's scope the way an app or middleware might."""
    scope[f"ac_{token}"] = True
    extensions = scope.get("extensions")
    if isinstance(extensions, dict):
        extensions[f"ac.{token}"] = {}
    headers = scope.get("headers")
    if isinstance(headers, list):
        headers.append((b"x-ac-injected", token.encode("latin-1")))
    state = scope.get("state")
    if isinstance(state, dict):
        state[f"ac_{token}"] = True
        state.pop("token", None)
        counter = state.get("counter")
        if isinstance(counter, dict) and isinstance(counter.get("n"), int):
            counter["n"] += 1


async def read_body(receive: Receive) -> tuple[list[Any], str, int]:
    """Receive to the end of the body; return the events (bodies cut short), sha256, length."""
    events: list[Any] = []
    sha = hashlib.sha256()
    length = 0
    for _ in range(MAX_BODY_EVENTS):
        message: Message = await receive()
        body = message.get("body", b"")
        if isinstance(body, bytes | bytearray | memoryview):
            sha.update(body)
            length += len(body)
        shown = dict(message)
        if isinstance(body, bytes) and len(body) > MAX_EVENT_BODY:
            shown["body"] = body[:MAX_EVENT_BODY]
            shown["body_length"] = len(body)
        events.append(encode(shown))
        if message.get("type") != "http.request" or not message.get("more_body", False):
            break
    return events, sha.hexdigest(), length


async def respond(send: Send, status: int, payload: Any, *, encoded: bool = False) -> None:
    body = dumps(payload) if not encoded else _dumps_encoded(payload)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode("ascii")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _dumps_encoded(payload: dict[str, Any]) -> bytes:
    """Serialise a dict whose values are already typed-JSON encoded (no second pass)."""
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")
