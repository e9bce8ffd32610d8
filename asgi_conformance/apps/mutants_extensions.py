"""Fixers and mutants for the extensions scenarios (suites/test_extensions.py).

No built-in target offers zerocopysend or debug, and none offers trailers or early hints
over HTTP/1.1, so each extension gets a *fixer*: an honest implementation on the reference
server (uvicorn with h11), and the mutants break it (``base=<fixer>``):

``ext-pathsend``, ``ext-zerocopysend``
    ASGI-level: advertise the extension and turn its events into ``http.response.body``
    events (the file read in 1 MiB parts), raising for invalid use.
``ext-trailers``, ``ext-early-hints``
    An ASGI layer plus a hook in the server's h11 connection (``h11.Connection.send``,
    patched once per process, acting only while a context variable set by the layer around
    one ``send()`` holds a hook): the final ``EndOfMessage`` carries the trailer fields
    (HTTP/1.1, chunked, only when the request said ``TE: trailers``); the hints go out as
    ``103`` heads just before the final response head (HTTP/1.1 only, never HTTP/1.0).
``ext-debug``
    advertises ``http.response.debug`` and consumes one debug message before the start.

Runs inside the server: standard library only (h11 is the reference server's own).
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import os
from collections.abc import Callable, Iterator
from typing import Any

from .mutants import App, Message, Receive, Scope, Send, copy_scope, fixer, mutant, send_mutant

__all__: list[str] = []

TRAILERS = "http.response.trailers"
ZEROCOPY = "http.response.zerocopysend"
PATHSEND = "http.response.pathsend"
EARLY_HINT = "http.response.early_hint"
DEBUG = "http.response.debug"
PART = 1024 * 1024
TRUNCATE = 64 * 1024
MAX_PARTS = 10_000

Wrapper = Callable[[App], App]
Hook = Callable[[Any, Any, Any, Callable[[Any, Any], bytes]], bytes]
"""(h11 module, connection, event, the next send) -> the bytes to write."""

_HOOKS: contextvars.ContextVar[tuple[Hook, ...]] = contextvars.ContextVar("asgi_conformance_ext_h11", default=())


# -- the h11 hook ------------------------------------------------------------------------------------


def _h11() -> Any:
    try:
        return importlib.import_module("h11")
    except ImportError as exc:
        raise RuntimeError("asgi-conformance fixer: h11 is not importable in this server process") from exc


def _patch_h11() -> Any:
    """Route ``h11.Connection.send`` through the hooks of the current context (once per process)."""
    h11 = _h11()
    connection = getattr(h11, "Connection", None)
    if connection is None or not hasattr(connection, "send"):
        raise RuntimeError("asgi-conformance fixer: h11.Connection.send is missing; cannot patch")
    if getattr(connection, "_asgi_conformance_ext", False):
        return h11
    original = connection.send

    def patched(self: Any, event: Any) -> Any:
        hooks = _HOOKS.get()
        if not hooks:
            return original(self, event)

        def call(index: int, conn: Any, ev: Any) -> bytes:
            if index == len(hooks):
                out = original(conn, ev)
                return b"" if out is None else bytes(out)
            return hooks[index](h11, conn, ev, lambda c, e: call(index + 1, c, e))

        return call(0, self, event)

    connection.send = patched
    connection._asgi_conformance_ext = True
    return h11


@contextlib.contextmanager
def _hooked(hook: Hook) -> Iterator[None]:
    token = _HOOKS.set((*_HOOKS.get(), hook))
    try:
        yield
    finally:
        _HOOKS.reset(token)


# -- shared pieces -----------------------------------------------------------------------------------


def _is_http(scope: Scope) -> bool:
    return scope.get("type") == "http"


def _advertise(scope: Scope, name: str) -> Scope:
    scope = copy_scope(scope)
    extensions = scope.get("extensions")
    scope["extensions"] = {**(extensions if isinstance(extensions, dict) else {}), name: {}}
    return scope


def _hide(name: str) -> Wrapper:
    """A mutant that keeps the extension working but takes it out of the scope the app sees."""

    def wrap(app: App) -> App:
        async def mutated(scope: Scope, receive: Receive, send: Send) -> Any:
            if _is_http(scope) and isinstance(scope.get("extensions"), dict):
                scope = copy_scope(scope)
                scope["extensions"].pop(name, None)
            return await app(scope, receive, send)

        return mutated

    return wrap


def _header(scope: Scope, name: bytes) -> list[bytes]:
    found = []
    for item in scope.get("headers") or ():
        key, value = item
        if bytes(key).lower() == name:
            found.append(bytes(value))
    return found


async def _send_parts(send: Send, data: Iterator[bytes], more_body: bool) -> None:
    """Send ``data`` as body parts (more_body True), then an empty part ending as asked."""
    for part in data:
        await send({"type": "http.response.body", "body": part, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": more_body})


def _read_path(path: str, limit: int | None = None) -> Iterator[bytes]:
    with open(path, "rb") as f:
        left = limit
        for _ in range(MAX_PARTS):
            part = f.read(PART if left is None else min(PART, left))
            if not part:
                return
            yield part
            if left is not None:
                left -= len(part)
                if left <= 0:
                    return


def _read_fd(fd: int, offset: int | None, count: int | None) -> Iterator[bytes]:
    left = count
    position = offset
    for _ in range(MAX_PARTS):
        size = PART if left is None else min(PART, left)
        if size <= 0:
            return
        part = os.read(fd, size) if position is None else os.pread(fd, size, position)
        if not part:
            return
        yield part
        if position is not None:
            position += len(part)
        if left is not None:
            left -= len(part)


# -- fixers ------------------------------------------------------------------------------------------


@fixer("ext-pathsend")
def fix_pathsend(app: App) -> App:
    """http.response.pathsend: the file at the absolute path, sent as body parts; it ends the response."""

    async def fixed(scope: Scope, receive: Receive, send: Send) -> Any:
        if not _is_http(scope):
            return await app(scope, receive, send)
        started = False

        async def fsend(message: Message) -> None:
            nonlocal started
            if message.get("type") == "http.response.start":
                started = True
            if message.get("type") != PATHSEND:
                await send(message)
                return
            path = message.get("path")
            if not started:
                raise RuntimeError("http.response.pathsend before http.response.start")
            if not isinstance(path, str) or not os.path.isabs(path):
                raise ValueError(f"http.response.pathsend needs an absolute path, not {path!r}")
            await _send_parts(send, _read_path(path), False)

        return await app(_advertise(scope, PATHSEND), receive, fsend)

    return fixed


@fixer("ext-zerocopysend")
def fix_zerocopysend(app: App) -> App:
    """http.response.zerocopysend: bytes read from the file's descriptor (offset/count, or from
    its current position), sent as body parts; the descriptor is left open."""

    async def fixed(scope: Scope, receive: Receive, send: Send) -> Any:
        if not _is_http(scope):
            return await app(scope, receive, send)
        started = False

        async def fsend(message: Message) -> None:
            nonlocal started
            if message.get("type") == "http.response.start":
                started = True
            if message.get("type") != ZEROCOPY:
                await send(message)
                return
            if not started:
                raise RuntimeError("http.response.zerocopysend before http.response.start")
            fd = message["file"].fileno()  # io.UnsupportedOperation / AttributeError without one
            offset, count = message.get("offset"), message.get("count")
            await _send_parts(send, _read_fd(fd, offset, count), bool(message.get("more_body", False)))

        return await app(_advertise(scope, ZEROCOPY), receive, fsend)

    return fixed


def _te_trailers(scope: Scope) -> bool:
    return any(b"trailers" in [t.strip().lower() for t in value.split(b",")] for value in _header(scope, b"te"))


@fixer("ext-trailers")
def fix_trailers(app: App) -> App:
    """http.response.trailers over HTTP/1.1: the final body is held open until the last trailers
    message, whose fields (with TE: trailers, and no app Content-Length) end the chunked body."""
    _patch_h11()

    async def fixed(scope: Scope, receive: Receive, send: Send) -> Any:
        if not _is_http(scope) or scope.get("http_version") != "1.1":
            return await app(scope, receive, send)
        wanted = held = False
        fields: list[tuple[bytes, bytes]] = []
        keep = _te_trailers(scope)

        async def fsend(message: Message) -> None:
            nonlocal wanted, held, keep
            kind = message.get("type")
            if kind == "http.response.start":
                wanted = bool(message.get("trailers", False))
                if any(bytes(k).lower() == b"content-length" for k, _ in message.get("headers", [])):
                    keep = False  # Content-Length framing has no trailer section
                await send({k: v for k, v in message.items() if k != "trailers"})
            elif kind == "http.response.body" and wanted and not message.get("more_body", False):
                held = True
                await send({**message, "more_body": True})
            elif kind == TRAILERS:
                if not held:
                    raise RuntimeError("http.response.trailers before the final body of a response with trailers")
                if keep:
                    fields.extend((bytes(k), bytes(v)) for k, v in message.get("headers", []))
                if not message.get("more_trailers", False):
                    held = False

                    def hook(h11: Any, conn: Any, event: Any, nxt: Callable[[Any, Any], bytes]) -> bytes:
                        if isinstance(event, h11.EndOfMessage) and fields:
                            event = h11.EndOfMessage(headers=fields)
                        return nxt(conn, event)

                    with _hooked(hook):
                        await send({"type": "http.response.body", "body": b"", "more_body": False})
            else:
                await send(message)

        return await app(_advertise(scope, TRAILERS), receive, fsend)

    return fixed


def _valid_links(links: Any) -> bool:
    return isinstance(links, list | tuple) and all(isinstance(link, bytes) for link in links)


@fixer("ext-early-hints")
def fix_early_hints(app: App) -> App:
    """http.response.early_hint over HTTP/1.1 (never 1.0): each hint before the start becomes a
    103 head written just before the final response head; after the start, hints are ignored."""
    _patch_h11()

    async def fixed(scope: Scope, receive: Receive, send: Send) -> Any:
        if not _is_http(scope) or scope.get("http_version") != "1.1":
            return await app(scope, receive, send)
        started = False
        hints: list[list[bytes]] = []

        async def fsend(message: Message) -> None:
            nonlocal started
            kind = message.get("type")
            if kind == EARLY_HINT:
                links = message.get("links")
                if not _valid_links(links):
                    raise TypeError("http.response.early_hint links must be a list of bytes")
                if not started:
                    hints.append([bytes(v) for v in links or ()])
                return
            if kind != "http.response.start" or started:
                await send(message)
                return
            started = True
            pending = list(hints)

            def hook(h11: Any, conn: Any, event: Any, nxt: Callable[[Any, Any], bytes]) -> bytes:
                if not isinstance(event, h11.Response):
                    return nxt(conn, event)
                early = b"".join(
                    nxt(conn, h11.InformationalResponse(status_code=103, headers=[(b"link", v) for v in links]))
                    for links in pending
                )
                return early + nxt(conn, event)

            with _hooked(hook):
                await send(message)

        return await app(_advertise(scope, EARLY_HINT), receive, fsend)

    return fixed


@fixer("ext-debug")
def fix_debug(app: App) -> App:
    """http.response.debug as a test client offers it: one message before the start, consumed."""

    async def fixed(scope: Scope, receive: Receive, send: Send) -> Any:
        if not _is_http(scope):
            return await app(scope, receive, send)
        started = seen = False

        async def fsend(message: Message) -> None:
            nonlocal started, seen
            if message.get("type") == DEBUG:
                if started or seen or not isinstance(message.get("info"), dict):
                    raise RuntimeError("http.response.debug: once, before the start, with an info dict")
                seen = True
                return
            started = started or message.get("type") == "http.response.start"
            await send(message)

        return await app(_advertise(scope, DEBUG), receive, fsend)

    return fixed


# -- trailers mutants ----------------------------------------------------------------------------------

mutant(
    "ext-trailers-unadvertised",
    "trailers work on HTTP/1.1 but the scope does not list http.response.trailers",
    "ext.trailers.advertised",
    base="ext-trailers",
)(_hide(TRAILERS))


def _end_early() -> Wrapper:
    async def change(scope: Scope, message: Message, send: Send) -> None:
        if message.get("type") == "http.response.start":
            await send({k: v for k, v in message.items() if k != "trailers"})
        elif message.get("type") != TRAILERS:
            await send(message)

    return send_mutant(change)


mutant(
    "ext-trailers-end-early",
    "the response ends at the final body although start said trailers: True; trailers are dropped",
    "ext.trailers.wait_for_trailers",
    base="ext-trailers",
)(_end_early())


def _trailers_as_body() -> Wrapper:
    async def change(scope: Scope, message: Message, send: Send) -> None:
        if message.get("type") == TRAILERS:
            text = b"".join(bytes(k) + b": " + bytes(v) + b"\r\n" for k, v in message.get("headers", []))
            await send({"type": "http.response.body", "body": text, "more_body": True})
            message = {**message, "headers": []}
        await send(message)

    return send_mutant(change)


mutant(
    "ext-trailers-as-body",
    "trailer fields are written into the chunked body as text instead of the trailer section",
    "ext.trailers.h1_emission",
    base="ext-trailers",
)(_trailers_as_body())


def _claim_te(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> Any:
        if _is_http(scope):
            scope = copy_scope(scope)
            scope["headers"] = [*(h for h in scope["headers"] if bytes(h[0]).lower() != b"te"), (b"te", b"trailers")]
        return await app(scope, receive, send)

    return mutated


mutant(
    "ext-trailers-ignore-te",
    "trailers are sent whether or not the request said TE: trailers",
    "ext.trailers.te_gate",
    base="ext-trailers",
    outer=True,
)(_claim_te)


def _last_only() -> Wrapper:
    async def change(scope: Scope, message: Message, send: Send) -> None:
        if message.get("type") == TRAILERS and message.get("more_trailers", False):
            await send({**message, "headers": []})
            return
        await send(message)

    return send_mutant(change)


mutant(
    "ext-trailers-last-only",
    "only the last trailers message's fields are sent (earlier ones with more_trailers are lost)",
    "ext.trailers.more_trailers",
    base="ext-trailers",
)(_last_only())


def _checked() -> Wrapper:
    def wrap(app: App) -> App:
        async def mutated(scope: Scope, receive: Receive, send: Send) -> Any:
            if not _is_http(scope):
                return await app(scope, receive, send)
            declared: set[bytes] = set()

            async def changed(message: Message) -> None:
                if message.get("type") == "http.response.start":
                    for key, value in message.get("headers", []):
                        if bytes(key).lower() == b"trailer":
                            declared.update(v.strip().lower() for v in bytes(value).split(b","))
                if message.get("type") == TRAILERS and declared:
                    names = {bytes(k).lower() for k, _ in message.get("headers", [])}
                    if not names <= declared:
                        raise RuntimeError(f"trailer fields {sorted(names)} not declared in Trailer")
                await send(message)

            return await app(scope, receive, changed)

        return mutated

    return wrap


mutant(
    "ext-trailers-checked",
    "the server refuses trailer fields its Trailer header did not declare, leaving the response unfinished",
    "ext.trailers.trailer_header_unchecked",
    base="ext-trailers",
)(_checked())


def _never_finish() -> Wrapper:
    async def change(scope: Scope, message: Message, send: Send) -> None:
        if message.get("type") == TRAILERS and not message.get("more_trailers", False):
            return  # the response is never ended
        await send(message)

    return send_mutant(change)


mutant(
    "ext-trailers-never-finish",
    "a Content-Length response with trailers: True is never ended (the last trailers message is lost)",
    "ext.trailers.with_content_length",
    base="ext-trailers",
)(_never_finish())


def _hold_body() -> Wrapper:
    def wrap(app: App) -> App:
        async def mutated(scope: Scope, receive: Receive, send: Send) -> Any:
            if not _is_http(scope):
                return await app(scope, receive, send)
            waiting = False

            async def changed(message: Message) -> None:
                nonlocal waiting
                if message.get("type") == "http.response.start":
                    waiting = bool(message.get("trailers", False))
                elif message.get("type") == "http.response.body" and waiting:
                    return  # held for trailers the server never sends: lost
                await send(message)

            return await app(scope, receive, changed)

        return mutated

    return wrap


mutant(
    "ext-trailers-hold-body",
    "without trailer support, a trailers: True response's body is held for the trailers and lost",
    "ext.trailers.unsupported_server",
    reference="daphne",
)(_hold_body())


# -- zero-copy send mutants ---------------------------------------------------------------------------

mutant(
    "ext-zerocopy-unadvertised",
    "zerocopysend works but the scope does not list http.response.zerocopysend",
    "ext.zerocopy.advertised",
    base="ext-zerocopysend",
)(_hide(ZEROCOPY))


def _zerocopy_change(edit: Callable[[Message], Message | None]) -> Wrapper:
    async def change(scope: Scope, message: Message, send: Send) -> None:
        if message.get("type") == ZEROCOPY:
            edited = edit(dict(message))
            if edited is None:
                return
            message = edited
        await send(message)

    return send_mutant(change)


def _cap(message: Message) -> Message:
    count = message.get("count")
    return {**message, "count": TRUNCATE if count is None else min(count, TRUNCATE)}


mutant(
    "ext-zerocopy-truncated",
    "a zero-copy send stops after 64 KiB (one sendfile call, the rest never sent)",
    "ext.zerocopy.sends_file",
    base="ext-zerocopysend",
)(_zerocopy_change(_cap))

mutant(
    "ext-zerocopy-offset-ignored",
    "the offset key is ignored: the read starts at the file's current position",
    "ext.zerocopy.offset_count",
    base="ext-zerocopysend",
)(_zerocopy_change(lambda m: {k: v for k, v in m.items() if k != "offset"}))

mutant(
    "ext-zerocopy-rewinds",
    "without offset the read starts at byte 0, not the file's current position",
    "ext.zerocopy.current_position",
    base="ext-zerocopysend",
)(_zerocopy_change(lambda m: {**m, "offset": m.get("offset") or 0}))

mutant(
    "ext-zerocopy-ends-response",
    "every zerocopysend ends the response (more_body ignored)",
    "ext.zerocopy.mix_and_repeat",
    base="ext-zerocopysend",
)(_zerocopy_change(lambda m: {**m, "more_body": False}))


def _close_after() -> Wrapper:
    async def change(scope: Scope, message: Message, send: Send) -> None:
        await send(message)
        if message.get("type") == ZEROCOPY:
            message["file"].close()

    return send_mutant(change)


mutant(
    "ext-zerocopy-closes-fd",
    "the server closes the file it was given after sending it",
    "ext.zerocopy.fd_left_open",
    base="ext-zerocopysend",
)(_close_after())


def _lenient_zerocopy() -> Wrapper:
    def wrap(app: App) -> App:
        async def mutated(scope: Scope, receive: Receive, send: Send) -> Any:
            if not _is_http(scope):
                return await app(scope, receive, send)
            started = False

            async def changed(message: Message) -> None:
                nonlocal started
                started = started or message.get("type") == "http.response.start"
                if message.get("type") == ZEROCOPY and (not started or not hasattr(message.get("file"), "fileno")):
                    return
                if message.get("type") == ZEROCOPY:
                    try:
                        message["file"].fileno()
                    except Exception:
                        return
                await send(message)

            return await app(scope, receive, changed)

        return mutated

    return wrap


mutant(
    "ext-zerocopy-lenient",
    "an invalid zerocopysend (before the start, or a file without a descriptor) is silently dropped",
    "ext.zerocopy.window",
    "ext.zerocopy.non_fd_file",
    base="ext-zerocopysend",
)(_lenient_zerocopy())


# -- path send mutants ---------------------------------------------------------------------------------

mutant(
    "ext-pathsend-unadvertised",
    "pathsend works but the scope does not list http.response.pathsend",
    "ext.pathsend.advertised",
    base="ext-pathsend",
)(_hide(PATHSEND))


def _truncated_pathsend() -> Wrapper:
    async def change(scope: Scope, message: Message, send: Send) -> None:
        if message.get("type") == PATHSEND:
            await _send_parts(send, _read_path(str(message.get("path")), TRUNCATE), False)
            return
        await send(message)

    return send_mutant(change)


mutant(
    "ext-pathsend-truncated",
    "a path send stops after 64 KiB and ends the response",
    "ext.pathsend.sends_file",
    base="ext-pathsend",
)(_truncated_pathsend())


def _held_start(decide: Callable[[Message, Message], Message]) -> Wrapper:
    """A mutant that holds the start until the next event, then sends ``decide(start, next)``."""

    def wrap(app: App) -> App:
        async def mutated(scope: Scope, receive: Receive, send: Send) -> Any:
            if not _is_http(scope):
                return await app(scope, receive, send)
            held: list[Message] = []

            async def changed(message: Message) -> None:
                if message.get("type") == "http.response.start":
                    held.append(message)
                    return
                if held:
                    await send(decide(held.pop(), message))
                await send(message)

            return await app(scope, receive, changed)

        return mutated

    return wrap


def _drop_length(start: Message, following: Message) -> Message:
    if following.get("type") != PATHSEND:
        return start
    return {**start, "headers": [h for h in start.get("headers", []) if bytes(h[0]).lower() != b"content-length"]}


mutant(
    "ext-pathsend-chunked",
    "the server drops the app's Content-Length for a path send and frames it its own way (chunked)",
    "ext.pathsend.headers_app_owned",
    base="ext-pathsend",
)(_held_start(_drop_length))


def _drop_prefix() -> Wrapper:
    def wrap(app: App) -> App:
        async def mutated(scope: Scope, receive: Receive, send: Send) -> Any:
            if not _is_http(scope):
                return await app(scope, receive, send)
            pending: list[Message] = []

            async def changed(message: Message) -> None:
                if message.get("type") == "http.response.body" and message.get("more_body", False):
                    pending.append(message)
                    return
                if message.get("type") != PATHSEND:
                    for early in pending:
                        await send(early)
                pending.clear()  # before a path send: the earlier body parts are lost
                await send(message)

            return await app(scope, receive, changed)

        return mutated

    return wrap


mutant(
    "ext-pathsend-drops-prefix",
    "body parts sent before a path send are lost: the response is the file alone",
    "ext.pathsend.once_no_mix",
    base="ext-pathsend",
)(_drop_prefix())


def _lenient_pathsend() -> Wrapper:
    def wrap(app: App) -> App:
        async def mutated(scope: Scope, receive: Receive, send: Send) -> Any:
            if not _is_http(scope):
                return await app(scope, receive, send)
            started = False

            async def changed(message: Message) -> None:
                nonlocal started
                started = started or message.get("type") == "http.response.start"
                if message.get("type") == PATHSEND and not started:
                    return
                await send(message)

            return await app(scope, receive, changed)

        return mutated

    return wrap


mutant(
    "ext-pathsend-lenient",
    "a pathsend before the response start is silently dropped",
    "ext.pathsend.after_start",
    base="ext-pathsend",
)(_lenient_pathsend())


def _readable(path: Any) -> bool:
    return isinstance(path, str) and os.path.isabs(path) and os.path.isfile(path)


def _empty_when_unreadable() -> Wrapper:
    async def change(scope: Scope, message: Message, send: Send) -> None:
        if message.get("type") == PATHSEND:
            path = message.get("path")
            if not _readable(path):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
        await send(message)

    return send_mutant(change)


mutant(
    "ext-pathsend-unreadable-empty",
    "a path that is missing or relative ends the response with an empty body, as if the file were empty",
    "ext.pathsend.missing_file",
    "ext.pathsend.relative_path",
    base="ext-pathsend",
)(_empty_when_unreadable())


def _head_body(app: App) -> App:
    """After a HEAD response made by a path send, the file's bytes are written anyway (h11 hook)."""
    _patch_h11()

    async def change(scope: Scope, message: Message, send: Send) -> None:
        if message.get("type") != PATHSEND or scope.get("method") != "HEAD":
            await send(message)
            return
        data = b"".join(_read_path(str(message.get("path"))))

        def hook(h11: Any, conn: Any, event: Any, nxt: Callable[[Any, Any], bytes]) -> bytes:
            out = nxt(conn, event)
            return out + data if isinstance(event, h11.EndOfMessage) else out

        with _hooked(hook):
            await send(message)

    return send_mutant(change)(app)


mutant(
    "ext-pathsend-head-body",
    "a HEAD answered by a path send still writes the file after the head (sendfile bypasses the HEAD rule)",
    "ext.pathsend.head_request",
    base="ext-pathsend",
)(_head_body)


# -- early hint mutants --------------------------------------------------------------------------------

mutant(
    "ext-hints-unadvertised",
    "early hints work on HTTP/1.1 but the scope does not list http.response.early_hint",
    "ext.early_hint.advertised",
    base="ext-early-hints",
)(_hide(EARLY_HINT))


def _drop_hints() -> Wrapper:
    async def change(scope: Scope, message: Message, send: Send) -> None:
        if message.get("type") != EARLY_HINT:
            await send(message)

    return send_mutant(change)


mutant(
    "ext-hints-dropped",
    "early hints are listed but every hint is silently dropped",
    "ext.early_hint.103",
    base="ext-early-hints",
)(_drop_hints())


def _hint_as_final() -> Wrapper:
    async def change(scope: Scope, message: Message, send: Send) -> None:
        if message.get("type") == EARLY_HINT:
            links = [(b"link", bytes(v)) for v in message.get("links", [])]
            await send({"type": "http.response.start", "status": 200, "headers": links})
            return
        await send(message)

    return send_mutant(change)


mutant(
    "ext-hint-as-final",
    "an early hint is sent as the final response head (status 200 with the links): the real response breaks",
    "ext.early_hint.may_ignore",
    "ext.early_hint.timing",
    "ext.early_hint.multiple",
    base="ext-early-hints",
)(_hint_as_final())


def _claim_http11(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> Any:
        if _is_http(scope) and scope.get("http_version") == "1.0":
            scope = {**scope, "http_version": "1.1"}
        return await app(scope, receive, send)

    return mutated


mutant(
    "ext-hints-http10",
    "early hints are sent whatever the client's HTTP version (103 to HTTP/1.0 clients)",
    "ext.early_hint.not_http10",
    base="ext-early-hints",
    outer=True,
)(_claim_http11)


def _coerce_links() -> Wrapper:
    async def change(scope: Scope, message: Message, send: Send) -> None:
        if message.get("type") == EARLY_HINT:
            links = [v.encode("latin-1") if isinstance(v, str) else v for v in message.get("links", [])]
            message = {**message, "links": links}
        await send(message)

    return send_mutant(change)


mutant(
    "ext-hint-links-coerced",
    "str links in an early hint are encoded silently instead of raising",
    "ext.early_hint.links_type",
    base="ext-early-hints",
)(_coerce_links())


# -- debug mutants ---------------------------------------------------------------------------------------


def _advertise_debug(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> Any:
        return await app(_advertise(scope, DEBUG) if _is_http(scope) else scope, receive, send)

    return mutated


mutant(
    "ext-debug-advertised",
    "a production server lists http.response.debug",
    "ext.debug.not_in_servers",
    reference="daphne",
)(_advertise_debug)


def _debug_raises() -> Wrapper:
    async def change(scope: Scope, message: Message, send: Send) -> None:
        if message.get("type") == DEBUG:
            raise RuntimeError("unexpected ASGI message 'http.response.debug'")
        await send(message)

    return send_mutant(change)


mutant(
    "ext-debug-refused",
    "http.response.debug is listed but send() raises for it",
    "ext.debug.before_start_once",
    base="ext-debug",
)(_debug_raises())


def _debug_ignored() -> Wrapper:
    async def change(scope: Scope, message: Message, send: Send) -> None:
        if message.get("type") != DEBUG:
            await send(message)

    return send_mutant(change)


mutant(
    "ext-debug-ignored",
    "an unlisted http.response.debug message is silently dropped instead of raising",
    "ext.debug.unadvertised_send",
    reference="daphne",
)(_debug_ignored())
