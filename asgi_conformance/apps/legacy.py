"""A legacy ASGI 2 app (core.app.legacy_asgi2): served as ``asgi_conformance.apps.serve:legacy``.

The class is the app: a server that supports the legacy interface calls ``Legacy(scope)``
synchronously, then awaits ``instance(receive, send)``. It answers every HTTP request
(the readiness path included) with 200 and the typed-JSON echo of the scope's ``asgi``
dict, completes lifespan startup and shutdown, and closes WebSocket connections.

Mutants are ASGI 3 middlewares, and wrapping the class in one would turn it into an
ASGI 3 callable: the very thing this app exists to test. So ``served`` returns the class
itself, and only when ``ASGI_CONFORMANCE_MUTANT`` names a mutant that targets this app
(``mutants_core.LEGACY_MUTANTS``) the object that mutant builds from it. Other mutants
leave it alone. Runs inside the server: standard library only.
"""

from __future__ import annotations

import os
from typing import Any

from .mutants import ENV, Message, Receive, Scope, Send
from .typedjson import dumps

__all__ = ["Legacy", "served"]

MAX_EVENTS = 1_000


class Legacy:
    """A class-style ASGI 2 app: one instance per connection, built from the scope alone."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    async def __call__(self, receive: Receive, send: Send) -> None:
        kind = self.scope.get("type")
        if kind == "lifespan":
            await self.lifespan(receive, send)
        elif kind == "http":
            await self.http(receive, send)
        elif kind == "websocket" and (await receive()).get("type") == "websocket.connect":
            await send({"type": "websocket.close", "code": 1000})

    async def lifespan(self, receive: Receive, send: Send) -> None:
        for _ in range(MAX_EVENTS):
            message: Message = await receive()
            if message.get("type") == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message.get("type") == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def http(self, receive: Receive, send: Send) -> None:
        for _ in range(MAX_EVENTS):
            message: Message = await receive()
            if message.get("type") != "http.request" or not message.get("more_body", False):
                break
        body = dumps({"legacy": True, "type": "http", "asgi": self.scope.get("asgi"), "pid": os.getpid()})
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode("ascii")),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def served() -> Any:
    """The object ``serve.legacy`` names: the class, or what a legacy-targeting mutant makes of it."""
    chain = os.environ.get(ENV)
    if not chain:
        return Legacy
    from .mutants_core import LEGACY_MUTANTS

    for name in chain.split("+"):
        if name in LEGACY_MUTANTS:
            return LEGACY_MUTANTS[name](Legacy)
    return Legacy
