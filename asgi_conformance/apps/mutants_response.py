"""Mutants for suites/test_http_response.py: servers that mishandle response events.

Most are middlewares on ``send`` (reorder, merge or rename headers, buffer the body,
drop or end on empty chunks, swallow invalid events, coerce invalid types). Rules the
server enforces on the wire itself (no body on HEAD/204/304, the framing headers,
token-only field names) cannot be broken from the app side on the reference server
(uvicorn with h11); there the mutant's ``wrap`` also patches ``h11.Connection.send`` in
the server's process, so the bytes it returns carry the bug. Runs inside the server:
standard library only (h11 is imported only when such a mutant is chosen).
"""

from __future__ import annotations

import gzip
import http
import re
import time
import weakref
from collections.abc import Callable
from typing import Any

from . import aio
from .mutants import App, Message, Receive, Scope, Send, mutant

__all__: list[str] = []

SendFilter = Callable[[Scope, Send], Send]


def send_mutant(make: SendFilter) -> Callable[[App], App]:
    """Wrap an app so the ``send`` of every HTTP request goes through ``make(scope, send)``."""

    def wrap(app: App) -> App:
        async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
            if scope.get("type") == "http":
                send = make(scope, send)
            await app(scope, receive, send)

        return mutated

    return wrap


def _pairs(message: Message) -> list[tuple[Any, Any]]:
    return [(p[0], p[1]) for p in message.get("headers") or ()]


def _start_filter(change: Callable[[Message], Message]) -> SendFilter:
    def make(scope: Scope, send: Send) -> Send:
        async def filtered(message: Message) -> None:
            if message.get("type") == "http.response.start":
                message = change(dict(message))
            await send(message)

        return filtered

    return make


def _headers_changed(change: Callable[[list[tuple[Any, Any]]], list[tuple[Any, Any]]]) -> Callable[[App], App]:
    def on_start(message: Message) -> Message:
        message["headers"] = change(_pairs(message))
        return message

    return send_mutant(_start_filter(on_start))


# -- status -------------------------------------------------------------------------------------------


def _known_or_500(message: Message) -> Message:
    status = message.get("status")
    if isinstance(status, int) and status not in {s.value for s in http.HTTPStatus}:
        message["status"] = 500
    return message


mutant(
    "resp-status-unknown-500",
    "a status without a standard reason phrase (299, 418 is known, 599) is sent as 500",
    "http.start.status",
    "http.start.reason_phrase",
)(send_mutant(_start_filter(_known_or_500)))


def _coerce_status(message: Message) -> Message:
    status = message.get("status")
    try:
        value = int(status)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = 200
    message["status"] = value if 100 <= value <= 599 else 500
    return message


mutant(
    "resp-status-coerced",
    "an invalid status is coerced (int('200'), out of range -> 500) instead of raising",
    "http.start.status_invalid",
)(send_mutant(_start_filter(_coerce_status)))

# -- headers ------------------------------------------------------------------------------------------


def _headers_required(message: Message) -> Message:
    message["headers"] = list(message["headers"])  # KeyError without 'headers'
    return message


mutant(
    "resp-headers-required",
    "a start event without 'headers' is an error (message['headers'])",
    "http.start.headers_default",
)(send_mutant(_start_filter(_headers_required)))

mutant(
    "resp-headers-grouped",
    "response headers are grouped by name (a dict of lists), losing the app's order",
    "http.start.headers_order",
)(_headers_changed(lambda pairs: sorted(pairs, key=lambda p: bytes(p[0]))))


def _merge(pairs: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    merged: dict[bytes, list[bytes]] = {}
    for name, value in pairs:
        merged.setdefault(bytes(name).lower(), []).append(bytes(value))
    return [(k, b", ".join(v)) for k, v in merged.items()]


mutant(
    "resp-headers-merged",
    "repeated response fields are comma-joined into one (set-cookie included)",
    "http.start.headers_duplicates",
)(_headers_changed(_merge))


def _cgi_upper(pairs: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    out = []
    for name, value in pairs:
        if isinstance(name, bytes) and name != name.lower():
            name = name.upper().replace(b"-", b"_")
        out.append((name, value))
    return out


mutant(
    "resp-header-upper-renamed",
    "an upper-case header name from the app is CGI-normalised (X-Upper -> X_UPPER)",
    "http.start.headers_lowercase",
)(_headers_changed(_cgi_upper))


def _encode_str(pairs: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    return [tuple(x.encode("latin-1") if isinstance(x, str) else x for x in pair) for pair in pairs]  # type: ignore[misc]


mutant(
    "resp-headers-str-encoded",
    "str header names and values are silently encoded instead of refused",
    "http.start.headers_bytes",
    reference="uvicorn",  # it raises for str headers; uvicorn-h11 lets h11 accept them
)(_headers_changed(_encode_str))


def _iterated_twice(message: Message) -> Message:
    headers = message.get("headers", [])
    if not all(isinstance(p, tuple | list) and len(p) == 2 for p in headers):  # a validation pass...
        raise TypeError("headers must be pairs")
    message["headers"] = headers  # ...then the same, now exhausted, iterable is used
    return message


mutant(
    "resp-headers-iterated-twice",
    "the headers iterable is walked twice (validate, then send): a generator's fields are lost",
    "http.start.headers_iterable",
)(send_mutant(_start_filter(_iterated_twice)))


def _split_lines(pairs: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    out: list[tuple[Any, Any]] = []
    for name, value in pairs:
        if isinstance(name, bytes) and isinstance(value, bytes) and re.search(rb"[\r\n]", name + value):
            lines = re.split(rb"\r?\n", name + b": " + value)
            for line in lines:
                key, _, rest = line.partition(b":")
                out.append((key.strip().lower(), rest.strip() or b"-"))
        else:
            out.append((name, value))
    return out


mutant(
    "resp-header-lines-split",
    "CR/LF in a header is written through: the rest becomes field lines of its own (response splitting)",
    "http.start.header_injection",
)(_headers_changed(_split_lines))

mutant(
    "resp-pseudo-headers-dropped",
    "pseudo-headers (':status') are silently dropped instead of refused",
    "http.start.pseudo_headers",
)(_headers_changed(lambda pairs: [p for p in pairs if not bytes(p[0]).startswith(b":")]))

mutant(
    "resp-content-length-dropped",
    "the app's content-length is dropped and the body re-framed",
    "http.start.content_length_used",
)(_headers_changed(lambda pairs: [p for p in pairs if bytes(p[0]).lower() != b"content-length"]))

# -- h11 patches for wire rules -----------------------------------------------------------------------

_RAW_NAME = re.compile(rb"x-ac-raw-([0-9a-f]*)")
_STATUS: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
_PATCHED: set[str] = set()


def _patch_h11(kind: str) -> None:
    """Patch h11.Connection.send in this (the reference server's) process, once per ``kind``."""
    if kind in _PATCHED:
        return
    import h11  # the reference server's HTTP library: only in its process

    connection = getattr(h11, "Connection", None)
    original = getattr(connection, "send", None)
    if connection is None or original is None or not hasattr(h11, "Data") or not hasattr(h11, "Response"):
        raise RuntimeError("asgi-conformance: h11.Connection.send not found; cannot apply this mutant")

    def send(self: Any, event: Any) -> Any:
        if kind == "bodiless" and isinstance(event, h11.Response):
            _STATUS[self] = int(event.status_code)
        if kind == "bodiless" and isinstance(event, h11.Data):
            if not hasattr(self, "_request_method"):
                raise RuntimeError("asgi-conformance: h11 has no _request_method; cannot apply this mutant")
            if self._request_method == b"HEAD" or _STATUS.get(self) in (204, 304):
                return bytes(event.data)  # the body goes out raw, whatever the framing
        output = original(self, event)
        if isinstance(event, h11.Response) and isinstance(output, bytes):
            if kind == "raw-names":
                output = _RAW_NAME.sub(lambda m: bytes.fromhex(m.group(1).decode("ascii")), output)
            if kind == "te-through":
                output = output.replace(b"\r\nx-ac-te:", b"\r\ntransfer-encoding:")
        return output

    connection.send = send
    _PATCHED.add(kind)


_TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def _raw_names(app: App) -> App:
    _patch_h11("raw-names")

    def rename(pairs: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
        return [
            (b"x-ac-raw-" + bytes(k).hex().encode("ascii") if isinstance(k, bytes) and not _TOKEN.match(k) else k, v)
            for k, v in pairs
        ]

    return _headers_changed(rename)(app)


mutant(
    "resp-header-names-unchecked",
    "header names are written without checking they are tokens ('bad name', 'x:y', '')",
    "http.start.header_name_invalid",
)(_raw_names)


def _te_through(app: App) -> App:
    _patch_h11("te-through")

    def rename(pairs: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
        return [(b"x-ac-te" if bytes(k).lower() == b"transfer-encoding" else k, v) for k, v in pairs]

    return _headers_changed(rename)(app)


mutant(
    "resp-transfer-encoding-passed-through",
    "the app's transfer-encoding header is written as is, beside the server's own framing",
    "http.start.transfer_encoding_ignored",
)(_te_through)


def _bodiless(app: App) -> App:
    _patch_h11("bodiless")

    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") == "http" and scope.get("method") == "HEAD":
            scope["method"] = "GET"  # the server's own dict: it now forwards the body
        await app(scope, receive, send)

    return mutated


mutant(
    "resp-body-on-bodiless",
    "the app's body is written after a HEAD, 204 or 304 response head",
    "http.resp.head",
    "http.resp.no_body_status",
)(_bodiless)

# -- body -------------------------------------------------------------------------------------------


def _cl_from_first_chunk(scope: Scope, send: Send) -> Send:
    held: list[Message] = []

    async def filtered(message: Message) -> None:
        if message.get("type") == "http.response.start":
            held.append(dict(message))
            return
        if held:
            start = held.pop()
            pairs = _pairs(start)
            if not any(bytes(k).lower() == b"content-length" for k, _ in pairs):
                pairs.append((b"content-length", str(len(message.get("body", b""))).encode()))
            start["headers"] = pairs
            await send(start)
        await send(message)

    return filtered


mutant(
    "resp-length-from-first-chunk",
    "without an app content-length, the length of the first chunk is declared",
    "http.start.chunked_if_no_length",
)(send_mutant(_cl_from_first_chunk))


def _gzip_when_accepted(scope: Scope, send: Send) -> Send:
    accepts = any(bytes(k).lower() == b"accept-encoding" and b"gzip" in bytes(v) for k, v in scope.get("headers") or ())
    state: dict[str, Any] = {"start": None, "body": bytearray()}

    async def filtered(message: Message) -> None:
        kind = message.get("type")
        if kind == "http.response.start":
            pairs = _pairs(message)
            if accepts and not any(bytes(k).lower() == b"content-encoding" for k, _ in pairs):
                state["start"] = {**message, "headers": pairs}
                return
        elif kind == "http.response.body" and state["start"] is not None:
            state["body"] += message.get("body", b"")
            if message.get("more_body", False):
                return
            start = state["start"]
            state["start"] = None
            packed = gzip.compress(bytes(state["body"]))
            pairs = [p for p in start["headers"] if bytes(p[0]).lower() != b"content-length"]
            pairs += [(b"content-encoding", b"gzip"), (b"content-length", str(len(packed)).encode())]
            await send({**start, "headers": pairs})
            await send({"type": "http.response.body", "body": packed})
            return
        await send(message)

    return filtered


mutant(
    "resp-gzip-when-accepted",
    "the server gzips responses when the client accepts gzip (content-encoding is the app's to choose)",
    "http.start.content_encoding_app_owned",
)(send_mutant(_gzip_when_accepted))


def _buffered(scope: Scope, send: Send) -> Send:
    held: list[Message] = []

    async def filtered(message: Message) -> None:
        if message.get("type") == "http.response.start" or (
            message.get("type") == "http.response.body" and message.get("more_body", False)
        ):
            held.append(message)
            return
        for early in held:
            await send(early)
        held.clear()
        await send(message)

    return filtered


mutant(
    "resp-body-buffered",
    "the whole response is buffered until the final body event",
    "http.body.flush_on_send",
    "http.start.delayed_flush",
    "http.resp.long_poll_scope",
)(send_mutant(_buffered))


def _second_start_ignored(scope: Scope, send: Send) -> Send:
    started = [False]

    async def filtered(message: Message) -> None:
        if message.get("type") == "http.response.start":
            if started[0]:
                return
            started[0] = True
        await send(message)

    return filtered


mutant(
    "resp-second-start-ignored",
    "a second http.response.start is silently ignored",
    "http.start.twice",
)(send_mutant(_second_start_ignored))


def _early_body_dropped(scope: Scope, send: Send) -> Send:
    started = [False]

    async def filtered(message: Message) -> None:
        if message.get("type") == "http.response.start":
            started[0] = True
        elif message.get("type") == "http.response.body" and not started[0]:
            return
        await send(message)

    return filtered


mutant(
    "resp-early-body-dropped",
    "http.response.body before the start is silently dropped",
    "http.start.body_before_start",
)(send_mutant(_early_body_dropped))


def _trailers_awaited(scope: Scope, send: Send) -> Send:
    async def filtered(message: Message) -> None:
        if message.get("type") == "http.response.body" and not message.get("more_body", False):
            message = {**message, "more_body": True}  # waits for trailers that never come
        await send(message)

    return filtered


mutant(
    "resp-trailers-awaited",
    "a final body does not complete the response: trailers are awaited as if 'trailers' were True",
    "http.start.trailers_default",
)(send_mutant(_trailers_awaited))


def _third_chunk_dropped(scope: Scope, send: Send) -> Send:
    count = [0]

    async def filtered(message: Message) -> None:
        if message.get("type") == "http.response.body":
            count[0] += 1
            if count[0] == 3 and message.get("more_body", False):
                return
        await send(message)

    return filtered


mutant(
    "resp-chunk-dropped",
    "one body chunk (the third) is lost",
    "http.body.concat",
    "http.body.chunking_roundtrip",
)(send_mutant(_third_chunk_dropped))


def _more_body_default_true(scope: Scope, send: Send) -> Send:
    async def filtered(message: Message) -> None:
        if message.get("type") == "http.response.body" and "more_body" not in message:
            message = {**message, "more_body": True}
        await send(message)

    return filtered


mutant(
    "resp-more-body-default-true",
    "more_body defaults to True: a bare body event does not end the response",
    "http.body.defaults",
)(send_mutant(_more_body_default_true))


def _empty_chunk_ends(scope: Scope, send: Send) -> Send:
    ended = [False]

    async def filtered(message: Message) -> None:
        if message.get("type") == "http.response.body":
            if ended[0]:
                return
            if not message.get("body") and message.get("more_body", False):
                message = {**message, "more_body": False}
            ended[0] = not message.get("more_body", False)
        await send(message)

    return filtered


mutant(
    "resp-empty-chunk-ends",
    "an empty chunk ends the response even with more_body True (a premature 0-length chunk)",
    "http.body.empty_intermediate",
    "http.body.chunking_roundtrip",
)(send_mutant(_empty_chunk_ends))

mutant(
    "resp-no-keepalive",
    "every response gets 'connection: close' (the connection never carries a next request)",
    "http.body.complete",
)(_headers_changed(lambda pairs: [*pairs, (b"connection", b"close")]))


def _ended_on_return(app: App) -> App:
    """The response ends when the app returns, not at the final body event."""

    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await app(scope, receive, send)
            return
        withheld = [False]

        async def filtered(message: Message) -> None:
            if message.get("type") == "http.response.body" and not message.get("more_body", False):
                withheld[0] = True
                message = {**message, "more_body": True}
            await send(message)

        await app(scope, receive, filtered)
        if withheld[0]:
            await send({"type": "http.response.body", "body": b""})

    return mutated


mutant(
    "resp-ended-on-return",
    "the response ends when the app returns, not at the final body event: a late body is written into it",
    "http.body.after_complete",
)(_ended_on_return)


def _str_body_encoded(scope: Scope, send: Send) -> Send:
    async def filtered(message: Message) -> None:
        if message.get("type") == "http.response.body" and isinstance(message.get("body"), str):
            message = {**message, "body": message["body"].encode("utf-8")}
        await send(message)

    return filtered


mutant(
    "resp-str-body-encoded",
    "a str body is silently encoded instead of refused",
    "http.body.type",
)(send_mutant(_str_body_encoded))


def _bytes_like_str(scope: Scope, send: Send) -> Send:
    async def filtered(message: Message) -> None:
        data = message.get("body")
        if message.get("type") == "http.response.body" and isinstance(data, bytearray | memoryview):
            message = {**message, "body": str(data).encode("ascii")}
        await send(message)

    return filtered


mutant(
    "resp-bytes-like-as-text",
    "a bytearray or memoryview body is written as its str() ('bytearray(b...)')",
    "http.body.bytes_like",
)(send_mutant(_bytes_like_str))


def _send_blocks(scope: Scope, send: Send) -> Send:
    sent = [0]

    async def filtered(message: Message) -> None:
        if message.get("type") == "http.response.body":
            sent[0] += len(message.get("body", b""))
            if sent[0] > 1024 * 1024:
                await aio.sleep(60)  # a drain that never completes (bounded for the test)
        await send(message)

    return filtered


mutant(
    "resp-send-blocks",
    "send() blocks once about 1 MiB is in flight and never returns while the client is gone",
    "http.send.returns",
    "http.send.backpressure",
)(send_mutant(_send_blocks))


def _idle_cutoff(scope: Scope, send: Send) -> Send:
    last = [time.monotonic()]

    async def filtered(message: Message) -> None:
        now = time.monotonic()
        if message.get("type") == "http.response.body" and now - last[0] > 0.5:
            raise OSError("response timed out while the app was idle")
        last[0] = now
        await send(message)

    return filtered


mutant(
    "resp-idle-cutoff",
    "a response whose app is idle for 0.5 s is cut off (send raises, the response never completes)",
    "http.resp.long_poll_scope",
)(send_mutant(_idle_cutoff))
