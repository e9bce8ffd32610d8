"""Mutants for suites/test_http_request.py: servers that get request bodies and http.disconnect wrong.

Each is a middleware that changes what ``receive()`` returns (or, for the unread-body
desync, serves the unread body as a request) the way a real server bug would. The
reference is uvicorn-h11, where every named scenario passes without the mutant.
Runs inside the server: standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from . import aio
from .mutants import App, Message, Receive, Scope, Send, Wrapper, copy_scope, mutant

__all__: list[str] = []

Step = Callable[[Scope, Receive], Receive]


def _receive_mutant(step: Step) -> Wrapper:
    """Wrap an app so that, for http scopes, ``receive`` is replaced by ``step(scope, receive)``."""

    def wrap(app: App) -> App:
        async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
            if scope.get("type") == "http":
                receive = step(scope, receive)
            await app(scope, receive, send)

        return mutated

    return wrap


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers") or ():
        if bytes(key).lower() == name:
            return bytes(value)
    return None


def _bodiless(scope: Scope) -> bool:
    return _header(scope, b"transfer-encoding") is None and _header(scope, b"content-length") in (None, b"0")


def _final(message: Message) -> bool:
    return message.get("type") == "http.request" and not message.get("more_body", False)


# -- first event, body type, content --------------------------------------------------------------


def _first_disconnect(scope: Scope, receive: Receive) -> Receive:
    first = [_bodiless(scope)]

    async def mutated() -> Message:
        if first[0]:
            first[0] = False
            return {"type": "http.disconnect"}
        return await receive()

    return mutated


mutant(
    "req-first-disconnect",
    "a request without a body gets http.disconnect as its first event (no http.request)",
    "http.request.first_event",
    "http.request.empty_body",
)(_receive_mutant(_first_disconnect))


def _bytearray_body(scope: Scope, receive: Receive) -> Receive:
    async def mutated() -> Message:
        message = dict(await receive())
        if isinstance(message.get("body"), bytes):
            message["body"] = bytearray(message["body"])
        return message

    return mutated


mutant("req-body-bytearray", "http.request bodies are bytearray, not bytes", "http.request.body_bytes")(
    _receive_mutant(_bytearray_body)
)


def _corrupt_first_byte(scope: Scope, receive: Receive) -> Receive:
    done = [False]

    async def mutated() -> Message:
        message = dict(await receive())
        body = message.get("body")
        if not done[0] and isinstance(body, bytes) and body:
            done[0] = True
            message["body"] = bytes([body[0] ^ 0x01]) + body[1:]
        return message

    return mutated


mutant(
    "req-corrupt-byte",
    "one bit of the request body is flipped on its way to the app",
    "http.request.concat",
    "http.request.body_roundtrip",
)(_receive_mutant(_corrupt_first_byte))


def _nth_piece(change: Callable[[bytes], bytes]) -> Step:
    """Apply ``change`` to the body of the second non-empty http.request event."""

    def step(scope: Scope, receive: Receive) -> Receive:
        seen = [0]

        async def mutated() -> Message:
            message = dict(await receive())
            body = message.get("body")
            if message.get("type") == "http.request" and isinstance(body, bytes) and body:
                seen[0] += 1
                if seen[0] == 2:
                    message["body"] = change(body)
            return message

        return mutated

    return step


mutant(
    "req-drop-piece",
    "the second piece of a multi-event body is lost (its event arrives empty)",
    "http.request.concat",
    "http.request.more_body_sequence",
)(_receive_mutant(_nth_piece(lambda body: b"")))

mutant(
    "req-duplicate-piece",
    "the second piece of a multi-event body is delivered twice (a retried read)",
    "http.request.concat",
)(_receive_mutant(_nth_piece(lambda body: body + body)))


def _more_body_early(scope: Scope, receive: Receive) -> Receive:
    done = [False]

    async def mutated() -> Message:
        message = dict(await receive())
        if not done[0] and message.get("type") == "http.request" and message.get("more_body"):
            done[0] = True
            message["more_body"] = False  # the body "ends" with its first piece
        return message

    return mutated


mutant(
    "req-more-body-early",
    "the first piece of a multi-event body says more_body False (the rest is lost)",
    "http.request.more_body_sequence",
    "http.request.streaming",
)(_receive_mutant(_more_body_early))


def _extra_bytes(scope: Scope, receive: Receive) -> Receive:
    framed = _header(scope, b"content-length") is not None

    async def mutated() -> Message:
        message = dict(await receive())
        if framed and _final(message):
            message["body"] = bytes(message.get("body", b"")) + b"\r\n"  # the next request's bytes leak in
        return message

    return mutated


mutant(
    "req-extra-bytes",
    "the app gets more than Content-Length bytes (a CRLF of what follows)",
    "http.request.content_length_exact",
)(_receive_mutant(_extra_bytes))


def _chunked_raw(scope: Scope, receive: Receive) -> Receive:
    chunked = b"chunked" in (_header(scope, b"transfer-encoding") or b"").lower()

    async def mutated() -> Message:
        message = dict(await receive())
        if chunked and message.get("type") == "http.request":
            body = bytes(message.get("body", b""))
            framed = b"%x\r\n%s\r\n" % (len(body), body) if body else b""
            message["body"] = framed + (b"0\r\n\r\n" if _final(message) else b"")
        return message

    return mutated


mutant(
    "req-chunked-raw",
    "a chunked body reaches the app with its chunk framing",
    "http.request.chunked_decoded",
)(_receive_mutant(_chunked_raw))


def _trailer_leak(scope: Scope, receive: Receive) -> Receive:
    trailers = _header(scope, b"trailer") is not None

    async def mutated() -> Message:
        message = dict(await receive())
        if trailers and _final(message):
            message["body"] = bytes(message.get("body", b"")) + b"X-T: 1\r\n"
        return message

    return mutated


mutant(
    "req-trailer-leak",
    "the trailer section of a chunked body is appended to the body",
    "http.request.chunked_trailers",
)(_receive_mutant(_trailer_leak))


def _reads_to_eof(scope: Scope, receive: Receive) -> Receive:
    unframed = scope.get("method") == "POST" and _header(scope, b"content-length") is None
    unframed = unframed and _header(scope, b"transfer-encoding") is None
    first = [unframed]

    async def mutated() -> Message:
        if first[0]:
            first[0] = False
            await receive()  # the real (empty, final) body event, swallowed
            return {"type": "http.request", "body": b"", "more_body": True}
        return await receive()

    return mutated


mutant(
    "req-no-framing-reads-to-eof",
    "a request without Content-Length or Transfer-Encoding is read until the client closes",
    "http.request.no_framing_zero",
)(_receive_mutant(_reads_to_eof))


# -- http.disconnect ------------------------------------------------------------------------------


def _never_disconnect(scope: Scope, receive: Receive) -> Receive:
    async def mutated() -> Message:
        message = await receive()
        if message.get("type") == "http.disconnect":
            await aio.sleep(3600)  # cancelled by the app's own deadline
        return message

    return mutated


mutant(
    "req-disconnect-never",
    "http.disconnect is never delivered: receive() blocks after the response or the client's close",
    "http.disconnect.after_response",
    "http.disconnect.on_close",
    "http.request.incomplete",
    "http.disconnect.mid_upload",
)(_receive_mutant(_never_disconnect))


def _disconnect_renamed(scope: Scope, receive: Receive) -> Receive:
    async def mutated() -> Message:
        message = await receive()
        if message.get("type") == "http.disconnect":
            return {"type": "http.disconnected"}
        return message

    return mutated


mutant(
    "req-disconnect-shape",
    "the disconnect event's type is 'http.disconnected'",
    "http.disconnect.shape",
)(_receive_mutant(_disconnect_renamed))


def _after_body(event: Message) -> Step:
    """``receive`` returns ``event`` at once for every call after the final body event."""

    def step(scope: Scope, receive: Receive) -> Receive:
        done = [False]

        async def mutated() -> Message:
            if done[0]:
                return dict(event)
            message = await receive()
            done[0] = _final(message)
            return message

        return mutated

    return step


mutant(
    "req-disconnect-early",
    "receive() after the final body event returns http.disconnect at once, the connection still open",
    "http.disconnect.not_premature",
)(_receive_mutant(_after_body({"type": "http.disconnect"})))

mutant(
    "req-request-after-body",
    "receive() after the final body event returns another (empty) http.request",
    "http.disconnect.not_premature",
    "http.disconnect.repeat",
    "http.disconnect.half_close",
)(_receive_mutant(_after_body({"type": "http.request", "body": b"", "more_body": False})))


def _incomplete_final(scope: Scope, receive: Receive) -> Receive:
    state: dict[str, Any] = {"open": False, "pending": None}

    async def mutated() -> Message:
        if state["pending"] is not None:
            message, state["pending"] = state["pending"], None
            return dict(message)
        message = await receive()
        if message.get("type") == "http.disconnect" and state["open"]:
            state["open"] = False
            state["pending"] = message
            return {"type": "http.request", "body": b"", "more_body": False}  # EOF taken as the body's end
        if message.get("type") == "http.request":
            state["open"] = bool(message.get("more_body", False))
        return message

    return mutated


mutant(
    "req-incomplete-final",
    "an upload cut short ends with more_body False before http.disconnect",
    "http.request.incomplete",
    "http.disconnect.mid_upload",
)(_receive_mutant(_incomplete_final))


# -- a body the app did not read, served as a request -------------------------------------------------

_REQUEST_LINE = re.compile(rb"^([A-Z]+) (/[^ ?]*)(?:\?([^ ]*))? HTTP/1\.[01]\r\n")


def _parse_unread(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await app(scope, receive, send)
            return
        state: dict[str, Any] = {"read": False, "body": b""}

        async def tracked_receive() -> Message:
            state["read"] = True
            return await receive()

        async def drain_then_send(message: Message) -> None:
            if message.get("type") == "http.response.start" and not state["read"]:
                state["read"] = True
                for _ in range(10_000):  # the server "drains" the body ...
                    event = await receive()
                    state["body"] += bytes(event.get("body", b""))
                    if event.get("type") != "http.request" or not event.get("more_body", False):
                        break
            await send(message)

        await app(scope, tracked_receive, drain_then_send)
        found = _REQUEST_LINE.match(state["body"])
        if found is None:
            return
        # ... and then parses it as the next request on the connection.
        smuggled = copy_scope(scope)
        raw_path = found[2]
        smuggled.update(
            method=found[1].decode("ascii"),
            path=unquote(raw_path.decode("latin-1")),
            raw_path=raw_path,
            query_string=found[3] or b"",
        )
        replies = iter([{"type": "http.request", "body": b"", "more_body": False}])

        async def smuggled_receive() -> Message:
            return next(replies, {"type": "http.disconnect"})

        async def swallow(message: Message) -> None:
            return None

        await app(smuggled, smuggled_receive, swallow)

    return mutated


mutant(
    "req-parse-unread-body",
    "a body the app did not read is drained, then parsed and served as a request (desync)",
    "http.request.unread_body",
    "http.request.expect_unread",
)(_parse_unread)
