"""Mutants for the scenarios of suites/test_websocket.py (registered with mutants.mutant).

Each is a middleware on websocket scopes that imitates one server bug seen in the
wild: a send() after the client's close that raises a RuntimeError (uvicorn's legacy
``websockets`` implementation) or silently does nothing while the scope claims spec
2.4, the escaped exception logged as an error, a 101 for an app that raised, a
socket kept open after the app has ended, an unknown event type silently dropped.
Runs inside the server: standard library only.
"""

from __future__ import annotations

import contextlib
import sys
import traceback
from collections.abc import Callable
from urllib.parse import unquote_to_bytes

from . import aio
from .mutants import App, Message, Receive, Scope, Send, copy_scope, mutant, scope_mutant

__all__: list[str] = []

HOLD = 20.0
"""How long a "keeps the socket open" mutant holds it (far beyond any harness deadline)."""
KNOWN_SEND = {
    "websocket.accept",
    "websocket.send",
    "websocket.close",
    "websocket.http.response.start",
    "websocket.http.response.body",
}


def _websocket_only(change: Callable[[App], App]) -> Callable[[App], App]:
    """Apply the middleware ``change(app)`` to websocket scopes only."""

    def wrap(app: App) -> App:
        mutated = change(app)

        async def route(scope: Scope, receive: Receive, send: Send) -> None:
            if scope.get("type") == "websocket":
                await mutated(scope, receive, send)
            else:
                await app(scope, receive, send)

        return route

    return wrap


class _AfterDisconnect:
    """Wraps receive and send; ``send_after`` handles sends once websocket.disconnect was received."""

    def __init__(self, receive: Receive, send: Send) -> None:
        self.inner_receive = receive
        self.inner_send = send
        self.disconnected = False

    async def receive(self) -> Message:
        message = await self.inner_receive()
        if message.get("type") == "websocket.disconnect":
            self.disconnected = True
        return message


@mutant(
    "ws-send-closed-runtimeerror",
    "send() after the client's close raises RuntimeError, not an OSError (uvicorn's legacy websockets impl)",
    "ws.send_closed.oserror",
    "ws.send_closed.version_consistency",
    "ws.send_closed.not_logged",
    reference="uvicorn-wsproto",
)
@_websocket_only
def _send_closed_runtimeerror(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        state = _AfterDisconnect(receive, send)

        async def guarded_send(message: Message) -> None:
            if state.disconnected:
                raise RuntimeError(
                    f"Unexpected ASGI message {message.get('type')!r}, after sending 'websocket.close' "
                    "or response already completed."
                )
            await send(message)

        await app(scope, state.receive, guarded_send)

    return mutated


@mutant(
    "ws-send-closed-noop-claims-2.4",
    "the scope claims spec 2.4 but send() after the client's close silently does nothing",
    "ws.send_closed.oserror",
    "ws.send_closed.version_consistency",
    reference="uvicorn-wsproto",
)
@_websocket_only
def _send_closed_noop(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        scope = copy_scope(scope)
        scope["asgi"] = {**dict(scope.get("asgi") or {}), "spec_version": "2.4"}
        state = _AfterDisconnect(receive, send)

        async def quiet_send(message: Message) -> None:
            if state.disconnected:
                return
            await send(message)

        await app(scope, state.receive, quiet_send)

    return mutated


@mutant(
    "ws-send-closed-logged",
    "the OSError that send() raised after the close, escaping the app, is logged with a traceback",
    "ws.send_closed.not_logged",
    reference="uvicorn-wsproto",
)
@_websocket_only
def _send_closed_logged(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await app(scope, receive, send)
        except OSError:
            sys.stderr.write("ERROR:    Exception in ASGI application\n" + traceback.format_exc())
            sys.stderr.flush()

    return mutated


@mutant(
    "ws-accept-on-error",
    "an app that raises before accepting still gets its handshake completed (101), then a close",
    "err.ws.raise_before_accept",
)
@_websocket_only
def _accept_on_error(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        answered = False

        async def watched_send(message: Message) -> None:
            nonlocal answered
            answered = True
            await send(message)

        try:
            await app(scope, receive, watched_send)
        except Exception:
            if not answered:
                await send({"type": "websocket.accept"})
            raise

    return mutated


@mutant(
    "ws-hold-after-app-ends",
    "the server keeps the connection open after the app raised or returned",
    "err.ws.raise_after_accept",
    "err.ws.return_after_accept",
    "err.ws.return_before_accept",
    reference="uvicorn-wsproto",  # uvicorn-h11 writes a 101 after its 500 there (a warn of its own)
)
@_websocket_only
def _hold_after_app_ends(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        with contextlib.suppress(Exception):
            await app(scope, receive, send)
        await aio.sleep(HOLD)  # bounded: the harness gave up long before

    return mutated


@mutant(
    "ws-unknown-type-ignored",
    "send() silently drops websocket events of an unknown type",
    "err.ws.unknown_type",
)
@_websocket_only
def _unknown_type_ignored(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        async def lenient_send(message: Message) -> None:
            if message.get("type") in KNOWN_SEND or not str(message.get("type", "")).startswith("websocket."):
                await send(message)

        await app(scope, receive, lenient_send)

    return mutated


# -- §9: the WebSocket connection scope --------------------------------------------------


def _ws_scope(change: Callable[[Scope], Scope | None]) -> Callable[[App], App]:
    return scope_mutant(change, "websocket")


def _pairs(scope: Scope) -> list[tuple[bytes, bytes]]:
    return [(bytes(k), bytes(v)) for k, v in scope.get("headers") or ()]


mutant("ws-scope-type-wrong", "websocket scopes get type 'WebSocket'", "ws.scope.type")(
    _ws_scope(lambda s: s.update(type="WebSocket"))
)


def _drop_version(scope: Scope) -> None:
    scope["asgi"] = {k: v for k, v in dict(scope.get("asgi") or {}).items() if k != "version"}


mutant("ws-asgi-version-missing", "scope['asgi'] of a websocket has no 'version'", "ws.scope.asgi")(
    _ws_scope(_drop_version)
)

mutant("ws-http-version-prefixed", "http_version is 'HTTP/1.1', not '1.1'", "ws.scope.http_version")(
    _ws_scope(lambda s: s.update(http_version="HTTP/1.1"))
)

mutant("ws-scheme-http", "scheme is 'http' for a WebSocket", "ws.scope.scheme")(
    _ws_scope(lambda s: s.update(scheme="http"))
)


def _raw(scope: Scope) -> bytes:
    raw = scope.get("raw_path")
    return raw if isinstance(raw, bytes) else str(scope.get("path", "")).encode("utf-8")


mutant("ws-path-not-decoded", "path keeps the %-escapes", "ws.scope.path")(
    _ws_scope(lambda s: s.update(path=_raw(s).decode("latin-1")))
)


def _raw_path_with_query(scope: Scope) -> None:
    query = scope.get("query_string")
    if isinstance(query, bytes) and query:
        scope["raw_path"] = _raw(scope) + b"?" + query


mutant("ws-raw-path-with-query", "raw_path includes the query (before the 2024-10 clarification)", "ws.scope.raw_path")(
    _ws_scope(_raw_path_with_query)
)

mutant("ws-query-decoded", "query_string is %-decoded", "ws.scope.query_string")(
    _ws_scope(lambda s: s.update(query_string=unquote_to_bytes(bytes(s.get("query_string") or b""))))
)

mutant("ws-root-path-none", "root_path is None when no root path is configured", "ws.scope.root_path")(
    _ws_scope(lambda s: s.update(root_path=None))
)


def _merge_duplicates(scope: Scope) -> None:
    merged: dict[bytes, list[bytes]] = {}
    for name, value in _pairs(scope):
        merged.setdefault(name, []).append(value)
    scope["headers"] = [(name, b",".join(values)) for name, values in merged.items()]


mutant("ws-headers-merged", "repeated headers are merged into one comma-joined entry", "ws.scope.headers")(
    _ws_scope(_merge_duplicates)
)

_HANDSHAKE = {b"upgrade", b"connection", b"sec-websocket-key", b"sec-websocket-version"}

mutant(
    "ws-headers-no-handshake",
    "the handshake (hop-by-hop) headers are stripped from the scope",
    "ws.scope.headers.handshake",
)(_ws_scope(lambda s: s.update(headers=[(k, v) for k, v in _pairs(s) if k.lower() not in _HANDSHAKE])))


def _client_port_str(scope: Scope) -> None:
    client = scope.get("client")
    if isinstance(client, list | tuple) and len(client) == 2:
        scope["client"] = (client[0], str(client[1]))


mutant("ws-client-port-str", "the client port is a str", "ws.scope.client_server")(_ws_scope(_client_port_str))


def _last_protocol_header(scope: Scope) -> None:
    offered = [v for k, v in _pairs(scope) if k.lower() == b"sec-websocket-protocol"]
    last = offered[-1].decode("latin-1") if offered else ""
    scope["subprotocols"] = [p.strip() for p in last.split(",") if p.strip()]


mutant(
    "ws-subprotocols-last-header",
    "subprotocols come from the last Sec-WebSocket-Protocol header only",
    "ws.scope.subprotocols",
)(_ws_scope(_last_protocol_header))

mutant("ws-extensions-list", "extensions is a list of names, not a dict", "ws.scope.extensions")(
    _ws_scope(lambda s: s.update(extensions=sorted(dict(s.get("extensions") or {"websocket.http.response": {}}))))
)


@mutant(
    "ws-disconnect-withheld",
    "websocket.disconnect reaches the app only long after the client closed",
    "ws.scope.lifetime",
)
@_websocket_only
def _disconnect_withheld(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        async def late_receive() -> Message:
            message = await receive()
            if message.get("type") == "websocket.disconnect":
                await aio.sleep(HOLD)  # bounded: the harness gave up long before
            return message

        await app(scope, late_receive, send)

    return mutated
