"""Mutants for the framework scenarios (suites/test_framework.py, ``fw.<framework>.<behaviour>``).

Each sits between the server and the framework app and imitates a server bug at the
boundary that a framework cannot work around: an ``http.disconnect`` that never comes (the
stream never stops), a lifespan that never runs, a root path the app never sees, a close
code rewritten, a response end held until the app returns, ... Each names the behaviour's
scenario of every framework that serves it. Reference: uvicorn-h11, where every framework
scenario passes. Runs inside the server: standard library only.
"""

from __future__ import annotations

from typing import Any

from . import aio
from .frameworks import FRAMEWORKS
from .mutants import App, Message, Receive, Scope, Send, copy_scope, mutant, send_mutant

__all__: list[str] = []

HOLD_LIMIT = 25.0
"""A swallowed event is held at most this long (every wait is bounded)."""


def _ids(behaviour: str) -> list[str]:
    return [f"fw.{f.name}.{behaviour}" for f in FRAMEWORKS.values() if behaviour in f.behaviours]


def _path(scope: Scope) -> str:
    path = scope.get("path")
    return path if isinstance(path, str) else ""


# -- stream_disconnect -------------------------------------------------------------------------


def _swallow_disconnect(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> Any:
        if scope.get("type") != "http":
            return await app(scope, receive, send)

        async def swallowing() -> Message:
            message = await receive()
            if message.get("type") == "http.disconnect":
                waited = 0.0
                while waited < HOLD_LIMIT:  # bounded: the bug, not a hang of the run
                    await aio.sleep(0.05)
                    waited += 0.05
            return message

        return await app(scope, swallowing, send)

    return mutated


mutant(
    "fw-swallow-disconnect",
    "the server never delivers http.disconnect when the client leaves (a framework's stream never stops)",
    *_ids("stream_disconnect"),
    *_ids("stream_disconnect_idle"),
)(_swallow_disconnect)


# -- request_stream -------------------------------------------------------------------------------


def _body_cut(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> Any:
        if scope.get("type") != "http":
            return await app(scope, receive, send)

        async def cut() -> Message:
            message = await receive()
            if message.get("type") == "http.request" and message.get("more_body"):
                message = {**message, "more_body": False}
            return message

        return await app(scope, cut, send)

    return mutated


mutant(
    "fw-body-ends-early",
    "the first http.request event of a long body says more_body False (the rest of the body is lost)",
    *_ids("request_stream"),
)(_body_cut)


# -- lifespan_state --------------------------------------------------------------------------------


def _lifespan_off(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> Any:
        if scope.get("type") != "lifespan":
            return await app(scope, receive, send)
        for _ in range(10):  # the server completes lifespan itself: the app's handlers never run
            message = await receive()
            if message.get("type") == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message.get("type") == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return None
        return None

    return mutated


mutant(
    "fw-lifespan-off",
    "the server declares lifespan but never runs the app's (as with --lifespan off): startup handlers and "
    "their state never happen",
    *_ids("lifespan_state"),
)(_lifespan_off)


# -- background_task --------------------------------------------------------------------------------


def _end_held(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> Any:
        if scope.get("type") != "http" or "/background/" not in _path(scope):
            return await app(scope, receive, send)
        held: list[Message] = []

        async def holding(message: Message) -> None:
            if message.get("type") == "http.response.body" and not message.get("more_body", False):
                held.append(message)  # the end of the response waits for the app to return
                return
            await send(message)

        try:
            return await app(scope, receive, holding)
        finally:
            for message in held:
                await send(message)

    return mutated


mutant(
    "fw-response-end-held",
    "the server completes the response only when the app returns (background tasks delay the response)",
    *_ids("background_task"),
)(_end_held)


# -- root_path --------------------------------------------------------------------------------------


def _hide_root_path(scope: Scope) -> None:
    root = scope.get("root_path")
    path = _path(scope)
    if isinstance(root, str) and root:
        if path.startswith(root + "/"):
            scope["path"] = path[len(root) :]
        scope["root_path"] = ""


def _root_path_hidden(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> Any:
        if scope.get("type") in ("http", "websocket"):
            scope = copy_scope(scope)
            _hide_root_path(scope)
        return await app(scope, receive, send)

    return mutated


mutant(
    "fw-root-path-hidden",
    "the server ignores its root-path option: root_path is '' (and a prefix it added to path is gone)",
    *_ids("root_path"),
)(_root_path_hidden)


# -- exception -----------------------------------------------------------------------------------


async def _error_masked(scope: Scope, message: Message, send: Send) -> None:
    if message.get("type") == "http.response.start" and message.get("status") in (500, 418):
        message = {**message, "status": 200}
    await send(message)


mutant(
    "fw-error-status-masked",
    "the server rewrites the app's error statuses (500, 418) to 200",
    *_ids("exception"),
)(send_mutant(_error_masked, "http"))


# -- websocket_close ------------------------------------------------------------------------------


async def _close_rewritten(scope: Scope, message: Message, send: Send) -> None:
    if message.get("type") == "websocket.close":
        message = {"type": "websocket.close", "code": 1000}
    await send(message)


mutant(
    "fw-ws-close-code-rewritten",
    "the server closes every WebSocket with 1000 and no reason, whatever code and reason the app asked for",
    *_ids("websocket_close"),
)(send_mutant(_close_rewritten, "websocket"))


# -- file_response --------------------------------------------------------------------------------


def _tail_dropped(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> Any:
        if scope.get("type") != "http" or "/file/" not in _path(scope):
            return await app(scope, receive, send)
        pending: list[Message] = []

        async def dropping(message: Message) -> None:
            if message.get("type") != "http.response.body":
                await send(message)
                return
            if message.get("more_body", False):
                for earlier in pending:
                    await send(earlier)
                pending[:] = [message]
                return
            # The end: the last chunk that carries data is lost.
            if message.get("body"):
                for earlier in pending:
                    await send(earlier)
                await send({**message, "body": b""})
            else:
                for earlier in pending:
                    await send({**earlier, "body": b""})
                await send(message)
            pending.clear()

        return await app(scope, receive, dropping)

    return mutated


mutant(
    "fw-file-tail-dropped",
    "the server loses the last chunk of a file response (Content-Length no longer met)",
    *_ids("file_response"),
)(_tail_dropped)


def _pathsend_fake(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> Any:
        if scope.get("type") != "http":
            return await app(scope, receive, send)
        scope = copy_scope(scope)
        extensions = scope.get("extensions")
        scope["extensions"] = {**(extensions if isinstance(extensions, dict) else {}), "http.response.pathsend": {}}

        async def ignoring(message: Message) -> None:
            if message.get("type") == "http.response.pathsend":
                message = {"type": "http.response.body", "body": b""}  # advertised, not implemented
            await send(message)

        return await app(scope, receive, ignoring)

    return mutated


mutant(
    "fw-pathsend-unimplemented",
    "the server advertises http.response.pathsend but sends an empty body for it",
    "fw.starlette.file_response",
    "fw.fastapi.file_response",
)(_pathsend_fake)


# -- head -------------------------------------------------------------------------------------------


def _head_length_zero(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> Any:
        if scope.get("type") != "http" or scope.get("method") != "HEAD":
            return await app(scope, receive, send)

        async def zeroing(message: Message) -> None:
            if message.get("type") == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers") or () if bytes(k).lower() != b"content-length"]
                message = {**message, "headers": [*headers, (b"content-length", b"0")]}
            await send(message)

        return await app(scope, receive, zeroing)

    return mutated


mutant(
    "fw-head-length-zero",
    "HEAD responses carry Content-Length: 0 instead of the GET body's length",
    *_ids("head"),
)(_head_length_zero)
