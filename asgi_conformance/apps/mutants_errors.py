"""Mutants for the app-error and send-after-close scenarios (suites/test_http_errors.py,
test_http_disconnect.py and the core error rows in test_core.py).

Each is a middleware between the server and the catalogue app that imitates one server
bug seen in the wild or easy to make: turning an app's exception into a normal, complete
response; completing a response the app abandoned; accepting invalid events silently;
logging the client's disconnect as an error; claiming spec 2.4 without its behaviour;
cancelling a request whose client is still there. Runs inside the server: standard
library only (the cancelling mutant uses asyncio: its reference target runs asyncio).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from .mutants import App, Message, Receive, Scope, Send, copy_scope, fixer, mutant

__all__: list[str] = []

HTTP_RESPONSE = ("http.response.start", "http.response.body")
KNOWN_KEYS = {"type", "status", "headers", "trailers", "body", "more_body"}


def _is_http(scope: Scope) -> bool:
    return scope.get("type") == "http"


def _path(scope: Scope) -> str:
    path = scope.get("path")
    return path if isinstance(path, str) else ""


class _Tracked:
    """Remembers how far the app got with its response."""

    def __init__(self, send: Send) -> None:
        self.inner = send
        self.started = False
        self.finished = False

    async def __call__(self, message: Message) -> None:
        await self.inner(message)
        if message.get("type") == "http.response.start":
            self.started = True
        elif message.get("type") == "http.response.body" and not message.get("more_body", False):
            self.finished = True

    async def complete(self) -> None:
        """End the response as if the app had: a 200 if nothing was sent, else an empty last body."""
        if not self.started:
            await self.inner({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
            self.started = True
        if not self.finished:
            await self.inner({"type": "http.response.body", "body": b"", "more_body": False})
            self.finished = True


# -- exceptions and early returns turned into complete responses ------------------------------


@mutant(
    "err-complete-on-error",
    "an app exception becomes a normal, complete response (200 if nothing was sent; the body ended cleanly)",
    "core.app_error.terminate",
    "err.http.raise_mid_body",
    "err.http.raise_after_start_before_body",
    "err.http.raise_before_start",
    "err.reporting",
)
def complete_on_error(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        if not _is_http(scope):
            await app(scope, receive, send)
            return
        tracked = _Tracked(send)
        try:
            await app(scope, receive, tracked)
        except Exception:
            await tracked.complete()

    return mutated


@mutant(
    "err-return-completes",
    "an app that returns without finishing its response gets it completed (a 200, or a clean end of the body)",
    "err.http.return_incomplete",
    "err.http.return_no_start",
)
def return_completes(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        if not _is_http(scope):
            await app(scope, receive, send)
            return
        tracked = _Tracked(send)
        await app(scope, receive, tracked)
        await tracked.complete()

    return mutated


@mutant(
    "err-final-body-dropped",
    "the last body event is flushed only when the app returns, and dropped if the app raised",
    "err.http.raise_after_complete",
)
def final_body_dropped(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        if not _is_http(scope):
            await app(scope, receive, send)
            return
        held: list[Message] = []

        async def holding(message: Message) -> None:
            if message.get("type") == "http.response.body" and not message.get("more_body", False):
                held.append(message)
                return
            await send(message)

        await app(scope, receive, holding)  # an exception drops what is held
        for message in held:
            await send(message)

    return mutated


@mutant(
    "err-poisoned-after-error",
    "after one app exception the server's state is poisoned: every later request fails with a 500",
    "core.app_error.server_survives",
)
def poisoned_after_error(app: App) -> App:
    poisoned: list[bool] = []

    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        if _is_http(scope) and poisoned:
            raise RuntimeError("asgi-conformance mutant: poisoned after an earlier app error")
        try:
            await app(scope, receive, send)
        except Exception:
            if _is_http(scope):
                poisoned.append(True)
            raise

    return mutated


# -- invalid events accepted, valid ones refused ---------------------------------------------------


def _invalid(message: Message) -> bool:
    kind = message.get("type")
    if kind not in HTTP_RESPONSE:
        return True
    if kind == "http.response.start":
        if type(message.get("status")) is not int:
            return True
        headers = message.get("headers", [])
        return not all(
            isinstance(h, list | tuple) and len(h) == 2 and all(isinstance(x, bytes) for x in h) for h in headers
        )
    if not isinstance(message.get("body", b""), bytes):
        return True
    return not isinstance(message.get("more_body", False), bool)


@mutant(
    "err-invalid-accepted",
    "send() silently drops invalid events (unknown type, missing status, foreign protocol) instead of raising",
    "core.send.invalid_raises",
    "err.http.unknown_type",
    "err.http.missing_key",
    "err.http.cross_protocol",
    reference="uvicorn",
)
def invalid_accepted(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        if not _is_http(scope):
            await app(scope, receive, send)
            return

        async def lenient(message: Message) -> None:
            if _invalid(message):
                return
            await send(message)

        await app(scope, receive, lenient)

    return mutated


@fixer("strict-send")
def strict_send(app: App) -> App:
    """A server that validates every HTTP send as the core spec asks (no real one checks
    ``more_body``'s type today): raises TypeError for an invalid event."""

    async def fixed(scope: Scope, receive: Receive, send: Send) -> Any:
        if not _is_http(scope):
            return await app(scope, receive, send)

        async def strict(message: Message) -> None:
            if _invalid(message):
                raise TypeError(f"invalid ASGI event: {message.get('type')!r}")
            await send(message)

        return await app(scope, receive, strict)

    return fixed


@mutant(
    "err-wrong-types-accepted",
    "send() silently drops events whose values have the wrong type instead of raising",
    "err.http.wrong_types",
    reference="uvicorn",
    base="strict-send",
)
def wrong_types_accepted(app: App) -> App:
    return invalid_accepted(app)


@mutant(
    "err-return-value-aborts",
    "a server that treats an app's non-None return value as a failure and drops the unflushed end of its response",
    "err.http.return_value",
)
def return_value_aborts(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> Any:
        if not _is_http(scope):
            return await app(scope, receive, send)
        held: list[Message] = []

        async def holding(message: Message) -> None:
            if message.get("type") == "http.response.body" and not message.get("more_body", False):
                held.append(message)  # flushed when the app returns
                return
            await send(message)

        result = await app(scope, receive, holding)
        if result is not None:
            raise RuntimeError(f"the app returned {result!r}")
        for message in held:
            await send(message)
        return None

    return mutated


@mutant(
    "err-extra-keys-rejected",
    "send() raises for keys it does not know (no room for future spec versions)",
    "core.send.extra_keys_tolerated",
)
def extra_keys_rejected(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        if not _is_http(scope):
            await app(scope, receive, send)
            return

        async def strict(message: Message) -> None:
            unknown = sorted(set(message) - KNOWN_KEYS)
            if unknown:
                raise ValueError(f"unexpected keys in ASGI message: {unknown}")
            await send(message)

        await app(scope, receive, strict)

    return mutated


# -- send after the client has gone -----------------------------------------------------------


def _after_disconnect(app: App, on_send: Any) -> App:
    """Wrap an http app so ``on_send(send, message)`` replaces send() once http.disconnect arrived."""

    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        if not _is_http(scope):
            await app(scope, receive, send)
            return
        gone: list[bool] = []

        async def watching() -> Message:
            message = await receive()
            if message.get("type") == "http.disconnect":
                gone.append(True)
            return message

        async def sending(message: Message) -> None:
            if gone:
                await on_send(send, message)
            else:
                await send(message)

        await app(scope, watching, sending)

    return mutated


FAKE_TRACEBACK = (
    "ERROR:    Exception in ASGI application\n"
    "Traceback (most recent call last):\n"
    '  File "server.py", line 1, in send\n'
    "ConnectionResetError: the client disconnected (asgi-conformance mutant)\n"
)


@mutant(
    "err-send-closed-logged",
    "send() after the client left raises an OSError and the server logs it as an ERROR with a traceback",
    "http.send_closed.not_logged",
    "http.send_closed.app_may_swallow",
    "core.send_error.caught_by_server",
)
def send_closed_logged(app: App) -> App:
    async def on_send(send: Send, message: Message) -> None:
        sys.stderr.write(FAKE_TRACEBACK)
        sys.stderr.flush()
        raise ConnectionResetError("the client disconnected (asgi-conformance mutant)")

    return _after_disconnect(app, on_send)


@mutant(
    "err-send-closed-runtime-error",
    "send() after the client left raises RuntimeError (neither the core no-op nor the 2.4 OSError)",
    "core.send_after_close.default_noop",
)
def send_closed_runtime_error(app: App) -> App:
    async def on_send(send: Send, message: Message) -> None:
        raise RuntimeError("connection already closed (asgi-conformance mutant)")

    return _after_disconnect(app, on_send)


@mutant(
    "err-claims-spec-2-4",
    "the scope claims spec_version 2.4, but send() after the client left stays a silent no-op",
    "http.send_closed.oserror",
    "http.send_closed.version_consistency",
)
def claims_spec_2_4(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        if _is_http(scope):
            scope = copy_scope(scope)
            scope["asgi"] = {**dict(scope.get("asgi") or {}), "spec_version": "2.4"}
        await app(scope, receive, send)

    return mutated


# -- cancellation and shutdown ----------------------------------------------------------------


@mutant(
    "err-cancel-early",
    "the app task is cancelled as soon as its request body is read, while the client is still connected",
    "err.cancel_on_disconnect",
)
def cancel_early(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        if not (_is_http(scope) and _path(scope).startswith("/app/err-cancel/")):
            await app(scope, receive, send)
            return
        task = asyncio.current_task()
        assert task is not None

        async def cancelling() -> Message:
            message = await receive()
            if message.get("type") == "http.request" and not message.get("more_body", False):
                asyncio.get_running_loop().call_soon(task.cancel)
            return message

        try:
            await app(scope, cancelling, send)
        except asyncio.CancelledError:
            task.uncancel()

    return mutated


@mutant(
    "err-shutdown-fake-complete",
    "a held response is ended as complete but empty (a server that finishes in-flight responses on stop)",
    "err.shutdown_inflight",
)
def shutdown_fake_complete(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        if not (_is_http(scope) and _path(scope).startswith("/app/err-hold/")):
            await app(scope, receive, send)
            return

        async def emptied(message: Message) -> None:
            if message.get("type") == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if bytes(k).lower() != b"content-length"]
                message = {**message, "headers": [*headers, (b"content-length", b"0")]}
            elif message.get("type") == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await app(scope, receive, emptied)

    return mutated


@mutant(
    "err-extension-ends-response",
    "an extension event the server does not support silently ends the response (an empty 200, or a cut body)",
    "err.http.unadvertised_extension",
)
def extension_ends_response(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        if not _is_http(scope):
            await app(scope, receive, send)
            return
        extensions = scope.get("extensions")
        advertised = set(extensions) if isinstance(extensions, dict) else set()
        state = {"started": False, "ended": False}

        async def ending(message: Message) -> None:
            kind = message.get("type")
            if state["ended"]:
                return
            if isinstance(kind, str) and kind not in HTTP_RESPONSE and kind not in advertised:
                state["ended"] = True
                if not state["started"]:
                    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
                    await send({"type": "http.response.body", "body": b""})
                return
            if kind == "http.response.start":
                state["started"] = True
            await send(message)

        await app(scope, receive, ending)

    return mutated
