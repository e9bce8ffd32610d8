"""Mutants for HTTP/1.1 connection management (suites/test_wire_h1_conn.py).

Most of these rules are kept by the server's HTTP layer, not by anything an app sees,
so several mutants patch the reference server's HTTP library (h11, used by
uvicorn-h11 and hypercorn) inside the server process, through its public
``h11.Connection`` methods, when the mutant wraps the app (at import of
asgi_conformance.apps.serve). Each patch is applied once per process, and raises
``RuntimeError`` if what it patches is missing, so a mutant never passes silently.
Where the bug can be imitated at the ASGI level, a middleware does it instead.
Runs inside the server: standard library only (h11 is the server's own).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any

from .mutants import App, Message, Receive, Scope, Send, mutant

__all__: list[str] = []

MAX_EVENTS = 1000  # a mutant that waits for http.disconnect stops after this many events


def _h11() -> Any:
    try:
        return importlib.import_module("h11")
    except ImportError as exc:
        raise RuntimeError("asgi-conformance mutant: h11 is not importable in this server process") from exc


def _patch_h11(key: str, needs: tuple[str, ...], apply: Callable[[Any], None]) -> None:
    """Run ``apply(h11)`` once per process; fail loudly if ``h11.Connection`` lacks ``needs``."""
    h11 = _h11()
    connection = getattr(h11, "Connection", None)
    missing = [name for name in needs if connection is None or not hasattr(connection, name)]
    if missing:
        raise RuntimeError(f"asgi-conformance mutant: h11.Connection has no {missing}; cannot patch")
    marker = f"_asgi_conformance_{key}"
    if not getattr(connection, marker, False):
        apply(h11)
        setattr(connection, marker, True)


def _rewrite_received(key: str, pattern: bytes, replacement: bytes) -> None:
    """Rewrite the bytes the server's h11 connection receives (one request per read here)."""
    compiled = re.compile(pattern)

    def apply(h11: Any) -> None:
        original = h11.Connection.receive_data

        def receive_data(self: Any, data: bytes) -> None:
            original(self, compiled.sub(replacement, bytes(data)) if data else data)

        h11.Connection.receive_data = receive_data

    _patch_h11(key, ("receive_data",), apply)


def _headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    return [(bytes(k).lower(), bytes(v)) for k, v in scope.get("headers") or ()]


def _path(scope: Scope) -> str:
    path = scope.get("path")
    return path if isinstance(path, str) else ""


async def _wait_disconnect(receive: Receive) -> None:
    for _ in range(MAX_EVENTS):
        if (await receive()).get("type") == "http.disconnect":
            return


# -- persistence and close ---------------------------------------------------------------


def _close_ignored(app: App) -> App:
    _rewrite_received("close_ignored", rb"(?i)\r\nconnection:[ \t]*close", b"\r\nx-ignored-connection: close")
    return app


mutant(
    "conn-client-close-ignored",
    "the server ignores a request's Connection: close (keeps the connection and serves what follows)",
    "wire.h1.conn.client_close",
)(_close_ignored)


def _keepalive_disabled(app: App) -> App:
    """Every response gets ``connection: close``: the connection never persists."""

    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        async def closing(message: Message) -> None:
            if message.get("type") == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers") or () if bytes(k).lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await app(scope, receive, closing if scope.get("type") == "http" else send)

    return mutated


mutant(
    "conn-keepalive-disabled",
    "the server closes every connection after one response",
    "wire.h1.conn.persistent_default",
)(_keepalive_disabled)


def _http10_persistent(app: App) -> App:
    _rewrite_received("http10_persistent", rb"^([A-Za-z]+ [^ \r\n]+) HTTP/1\.0\r\n", rb"\1 HTTP/1.1\r\n")
    return app


mutant(
    "conn-http10-persistent",
    "the server treats HTTP/1.0 connections as persistent by default",
    "wire.h1.conn.http10_default",
)(_http10_persistent)


def _pipeline_swapped(app: App) -> App:
    """Pipelined requests 1 and 2 each get the other's answer (responses in reverse order)."""
    swap = re.compile(r"^(/app/conn-pipe/[0-9a-f]+/)([12])$")

    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        found = swap.match(_path(scope)) if scope.get("type") == "http" else None
        if found:
            scope = {**scope, "path": found[1] + ("2" if found[2] == "1" else "1")}
        await app(scope, receive, send)

    return mutated


mutant(
    "conn-pipeline-reordered",
    "pipelined responses are written in the other order (each request gets the other's answer)",
    "wire.h1.conn.pipelining_order",
)(_pipeline_swapped)


def _app_close_dropped(app: App) -> App:
    """The app's ``connection`` response header is dropped, and so is its close."""

    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        async def dropping(message: Message) -> None:
            if message.get("type") == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers") or () if bytes(k).lower() != b"connection"]
                message = {**message, "headers": headers}
            await send(message)

        await app(scope, receive, dropping if scope.get("type") == "http" else send)

    return mutated


mutant(
    "conn-app-close-dropped",
    "the server drops the app's Connection: close and keeps serving the connection",
    "wire.h1.conn.server_close_option",
)(_app_close_dropped)


# -- Expect ----------------------------------------------------------------------------------


def _no_100(app: App) -> App:
    def apply(h11: Any) -> None:
        h11.Connection.they_are_waiting_for_100_continue = property(lambda self: False)

    _patch_h11("no_100", ("they_are_waiting_for_100_continue",), apply)
    return app


mutant(
    "conn-no-100-continue",
    "the server never sends 100 Continue (the client waits for its timeout)",
    "wire.h1.conn.expect_100",
)(_no_100)


def _100_to_http10(app: App) -> App:
    def expects(event: Any) -> bool:
        return any(bytes(k).lower() == b"expect" and bytes(v).lower() == b"100-continue" for k, v in event.headers)

    def apply(h11: Any) -> None:
        waiting = h11.Connection.they_are_waiting_for_100_continue
        next_event = h11.Connection.next_event
        send = h11.Connection.send

        def patched_next_event(self: Any) -> Any:
            event = next_event(self)
            if isinstance(event, h11.Request):
                self._asgi_conformance_expect10 = event.http_version == b"1.0" and expects(event)
            return event

        def patched_send(self: Any, event: Any) -> Any:
            if isinstance(event, h11.InformationalResponse | h11.Response):
                self._asgi_conformance_expect10 = False
            return send(self, event)

        def patched_waiting(self: Any) -> bool:
            return bool(waiting.fget(self)) or bool(getattr(self, "_asgi_conformance_expect10", False))

        h11.Connection.next_event = patched_next_event
        h11.Connection.send = patched_send
        h11.Connection.they_are_waiting_for_100_continue = property(patched_waiting)

    _patch_h11("100_to_http10", ("they_are_waiting_for_100_continue", "next_event", "send"), apply)
    return app


mutant(
    "conn-100-to-http10",
    "the server sends 100 Continue to an HTTP/1.0 client's Expect: 100-continue",
    "wire.h1.conn.expect_http10",
    "wire.h1.conn.no_1xx_to_http10",
)(_100_to_http10)


def _unknown_expectation_hangs(app: App) -> App:
    """A request with an expectation other than 100-continue is never answered."""

    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        values = [v.lower() for k, v in _headers(scope) if k == b"expect"] if scope.get("type") == "http" else []
        if any(v != b"100-continue" for v in values):
            await _wait_disconnect(receive)
            return
        await app(scope, receive, send)

    return mutated


mutant(
    "conn-expect-unknown-hangs",
    "a request with an unknown expectation is left waiting (never answered)",
    "wire.h1.conn.expect_unknown",
)(_unknown_expectation_hangs)


# -- Upgrade ---------------------------------------------------------------------------------


def _rewrite_requests(key: str, change: Callable[[Any, Any], Any]) -> None:
    """Hand the server a changed ``h11.Request`` (``change(h11, request)``) from ``next_event``."""

    def apply(h11: Any) -> None:
        next_event = h11.Connection.next_event

        def patched(self: Any) -> Any:
            event = next_event(self)
            return change(h11, event) if isinstance(event, h11.Request) else event

        h11.Connection.next_event = patched

    _patch_h11(key, ("next_event",), apply)


def _upgrade_http10(app: App) -> App:
    def change(h11: Any, request: Any) -> Any:
        if request.http_version != b"1.0" or not any(bytes(k).lower() == b"upgrade" for k, _ in request.headers):
            return request
        return h11.Request(
            method=request.method, target=request.target, headers=request.headers.raw_items(), http_version=b"1.1"
        )

    _rewrite_requests("upgrade_http10", change)
    return app


mutant(
    "conn-upgrade-http10",
    "the server honours Upgrade in an HTTP/1.0 request (switches to WebSocket)",
    "wire.h1.conn.upgrade_http10_ignored",
    reference="hypercorn",  # uvicorn switches for HTTP/1.0 on its own
)(_upgrade_http10)


def _upgrade_without_connection(app: App) -> App:
    def change(h11: Any, request: Any) -> Any:
        names = {bytes(k).lower() for k, _ in request.headers}
        if b"upgrade" not in names or b"connection" in names:
            return request
        headers = [*request.headers.raw_items(), (b"connection", b"upgrade")]
        return h11.Request(method=request.method, target=request.target, headers=headers, http_version=b"1.1")

    _rewrite_requests("upgrade_without_connection", change)
    return app


mutant(
    "conn-upgrade-without-connection",
    "the server switches on Upgrade: websocket without the Connection: upgrade option",
    "wire.h1.conn.upgrade_only_requested",
)(_upgrade_without_connection)


# -- idle ------------------------------------------------------------------------------------


def _idle_hang(app: App) -> App:
    """The request after an idle period is read but never answered (the connection stays open)."""
    later = re.compile(r"^/app/conn-idle/[0-9a-f]+/2$")

    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") == "http" and later.match(_path(scope)):
            await _wait_disconnect(receive)
            return
        await app(scope, receive, send)

    return mutated


mutant(
    "conn-idle-hang",
    "a keep-alive connection that was idle stops being served but is not closed",
    "wire.h1.conn.idle_timeout",
)(_idle_hang)
