"""Mutants that break rules of the core protocol (suites/test_core.py, the later core rows).

Each imitates one server bug in the events the app receives, the scope, the way the app is
run, or (``core-legacy-as-asgi3``) the way a legacy ASGI 2 app is called. ``reference`` is a
target that passes the listed scenarios, so the mutant alone makes them fail (or warn).
Runs inside the server: standard library only.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from .mutants import App, Message, Receive, Scope, Send, mutant, scope_mutant

__all__ = ["LEGACY_MUTANTS"]


def _receive_mutant(change: Callable[[Message], Message]) -> Callable[[App], App]:
    """Wrap an app so every event ``receive()`` gives an HTTP app is changed first."""

    def wrap(app: App) -> App:
        async def mutated(scope: Scope, receive: Receive, send: Send) -> Any:
            if scope.get("type") != "http":
                return await app(scope, receive, send)

            async def changed() -> Message:
                return change(dict(await receive()))

            return await app(scope, changed, send)

        return mutated

    return wrap


# -- events (core › Events) -----------------------------------------------------------------


def _type_bytes(message: Message) -> Message:
    if isinstance(message.get("type"), str):
        message["type"] = message["type"].encode("ascii")
    return message


mutant(
    "core-event-type-bytes",
    "receive() gives events whose 'type' is a byte string (b'http.request'), as a parser's raw output",
    "core.event.type_key",
)(_receive_mutant(_type_bytes))


def _type_foreign(message: Message) -> Message:
    if message.get("type") == "http.request":
        message["type"] = "websocket.receive"
    return message


mutant(
    "core-event-type-foreign",
    "an HTTP app receives events typed for another protocol ('websocket.receive' for the body)",
    "core.event.type_key",
)(_receive_mutant(_type_foreign))


def _body_bytearray(message: Message) -> Message:
    if isinstance(message.get("body"), bytes):
        message["body"] = bytearray(message["body"])
    return message


mutant(
    "core-event-body-bytearray",
    "http.request bodies are the server's bytearray read buffer, not bytes",
    "core.event.value_types",
)(_receive_mutant(_body_bytearray))


# -- scope ----------------------------------------------------------------------------------


def _spec_version_bytes(scope: Scope) -> None:
    asgi = dict(scope.get("asgi") or {})
    asgi["spec_version"] = str(asgi.get("spec_version", "2.0")).encode("ascii")
    scope["asgi"] = asgi


mutant(
    "core-spec-version-bytes",
    "asgi['spec_version'] is a byte string (b'2.3') in HTTP and WebSocket scopes",
    "core.scope.spec_version",
)(scope_mutant(_spec_version_bytes, "http", "websocket"))


def _extension_not_dict(scope: Scope) -> None:
    extensions = dict(scope.get("extensions") or {})
    extensions["http.response.trailers"] = True
    scope["extensions"] = extensions


mutant(
    "core-extension-not-dict",
    "an advertised extension's entry is True, not a dict (http.response.trailers: True)",
    "core.extensions.honest",
)(scope_mutant(_extension_not_dict))


# -- how the app is run (core › Overview) ---------------------------------------------------

_LOOPS: list[asyncio.AbstractEventLoop] = []
"""Every loop the loop-per-call mutant made: kept, so no two calls can share an id()."""
_LOOPS_LOCK = threading.Lock()


def _loop_per_call(app: App) -> App:
    """Each HTTP call runs on a new event loop in a worker thread (a thread-per-request bridge);
    receive and send still run on the server's own loop."""

    async def mutated(scope: Scope, receive: Receive, send: Send) -> Any:
        if scope.get("type") != "http":
            return await app(scope, receive, send)
        server_loop = asyncio.get_running_loop()

        def bridge(call: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            async def bridged(*args: Any) -> Any:
                async def on_server_loop() -> Any:
                    return await call(*args)

                return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(on_server_loop(), server_loop))

            return bridged

        def run() -> Any:
            loop = asyncio.new_event_loop()
            with _LOOPS_LOCK:
                _LOOPS.append(loop)
            try:
                return loop.run_until_complete(app(scope, bridge(receive), bridge(send)))
            finally:
                loop.close()

        return await server_loop.run_in_executor(None, run)

    return mutated


mutant(
    "core-loop-per-call",
    "every HTTP call runs on a fresh event loop in a worker thread, not on the server's one loop",
    "core.app.event_loop",
)(_loop_per_call)


# -- the legacy interface (core › Legacy Applications) --------------------------------------


def _as_asgi3(legacy: type) -> Any:
    """What a server that takes the class for an ASGI 3 app does: ``app(scope, receive, send)``."""
    factory: Any = legacy

    async def called_as_asgi3(scope: Scope, receive: Receive, send: Send) -> Any:
        return await factory(scope, receive, send)  # TypeError: the class takes the scope alone

    return called_as_asgi3


LEGACY_MUTANTS: dict[str, Callable[[type], Any]] = {"core-legacy-as-asgi3": _as_asgi3}
"""Mutants of the legacy ASGI 2 app (apps/legacy.py): they replace the class ``serve.legacy``
serves (a middleware would turn it into an ASGI 3 app); their registered wrapper is a no-op."""


def _unchanged(app: App) -> App:
    return app


mutant(
    "core-legacy-as-asgi3",
    "a class-style ASGI 2 app is called as ASGI 3, app(scope, receive, send): it cannot be served",
    "core.app.legacy_asgi2",
)(_unchanged)
