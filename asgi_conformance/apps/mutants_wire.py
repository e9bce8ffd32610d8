"""Mutants for HTTP/1.1 on the wire (suites/test_wire_h1.py): request parsing and response generation.

Wire rules are kept by the server's HTTP parser, so most mutants imitate a lenient or
broken parser inside the reference server's process, when the mutant wraps the app (at
import of asgi_conformance.apps.serve):

* h11 (uvicorn-h11, hypercorn): ``h11.Connection.receive_data`` sees rewritten bytes,
  the way a lenient parser would read them (``+5`` read as 5, ``0x5`` as a hex size,
  ``Content_Length`` as ``Content-Length``, ...); ``h11.Connection.send`` output is
  rewritten the way a careless writer would emit it (a body on HEAD, no Date, ...).
* httptools (uvicorn): ``HttpToolsProtocol.data_received`` sees rewritten bytes, for
  rows h11 itself already breaks (so uvicorn with httptools is the reference).

Every patch is applied once per process and raises ``RuntimeError`` if what it patches
is missing. Where the bug shows at the ASGI level (what the app is handed), a
middleware imitates it instead. Runs inside the server: standard library only (h11 and
uvicorn are the server's own).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any

from .mutants import App, Message, Receive, Scope, Send, fixer, mutant

__all__: list[str] = []

Rules = list[tuple[bytes, bytes]]
MAX_EVENTS = 10_000


# -- patching helpers ------------------------------------------------------------------------


def _import(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise RuntimeError(f"asgi-conformance mutant: {module} is not importable in this server process") from exc


def _patch(owner: Any, key: str, needs: tuple[str, ...], apply: Callable[[], None]) -> None:
    missing = [name for name in needs if owner is None or not hasattr(owner, name)]
    if missing:
        raise RuntimeError(f"asgi-conformance mutant: {owner!r} has no {missing}; cannot patch")
    marker = f"_asgi_conformance_wire_{key}"
    if not getattr(owner, marker, False):
        apply()
        setattr(owner, marker, True)


def _rewriter(rules: Rules) -> Callable[[bytes], bytes]:
    compiled = [(re.compile(pattern), replacement) for pattern, replacement in rules]

    def rewrite(data: bytes) -> bytes:
        for pattern, replacement in compiled:
            data = pattern.sub(replacement, data)
        return data

    return rewrite


def _h11_received(key: str, rules: Rules, *, drop: Callable[[bytes], bool] | None = None) -> Wrapper:
    """A mutant that rewrites what the server's h11 connection receives (one request per read here)."""

    def wrap(app: App) -> App:
        h11 = _import("h11")
        connection = h11.Connection
        rewrite = _rewriter(rules)

        def apply() -> None:
            original = connection.receive_data

            def receive_data(self: Any, data: bytes) -> None:
                if not data:
                    original(self, data)  # EOF stays EOF
                    return
                if drop is not None and drop(bytes(data)):
                    return
                changed = rewrite(bytes(data))
                if changed:  # a read rewritten to nothing is swallowed, never turned into EOF
                    original(self, changed)

            connection.receive_data = receive_data

        _patch(connection, key, ("receive_data",), apply)
        return app

    return wrap


def _httptools_received(key: str, rules: Rules) -> Wrapper:
    """A mutant that rewrites what uvicorn's httptools protocol receives."""

    def wrap(app: App) -> App:
        module = _import("uvicorn.protocols.http.httptools_impl")
        protocol: Any = getattr(module, "HttpToolsProtocol", None)
        rewrite = _rewriter(rules)

        def apply() -> None:
            original = protocol.data_received

            def data_received(self: Any, data: bytes) -> None:
                changed = rewrite(bytes(data))
                if changed or not data:
                    original(self, changed)

            protocol.data_received = data_received

        _patch(protocol, key, ("data_received",), apply)
        return app

    return wrap


Wrapper = Callable[[App], App]
SendHook = Callable[[Any, Any, Any, bytes], bytes]
"""(h11 module, connection, event, bytes h11 wrote) -> the bytes to put on the wire."""


def _h11_sent(key: str, hook: SendHook, *, passthrough_bodies: bool = False) -> Wrapper:
    """A mutant that rewrites what the server's h11 connection writes.

    With ``passthrough_bodies``, body bytes h11 would refuse (on HEAD, 204, 304, or past the
    declared Content-Length) are written raw instead, the way a writer without framing
    checks would.
    """

    def wrap(app: App) -> App:
        h11 = _import("h11")
        connection = h11.Connection

        def apply() -> None:
            send = connection.send
            next_event = connection.next_event

            def patched_next_event(self: Any) -> Any:
                event = next_event(self)
                if isinstance(event, h11.Request):
                    self._ac_method = bytes(event.method)
                return event

            def patched_send(self: Any, event: Any) -> Any:
                if isinstance(event, h11.Response):
                    length = [v for k, v in event.headers if bytes(k).lower() == b"content-length"]
                    self._ac_status = event.status_code
                    self._ac_length = int(length[0]) if length and bytes(length[0]).isdigit() else None
                    self._ac_sent = 0
                if passthrough_bodies and isinstance(event, h11.Data):
                    data = bytes(event.data)
                    status = getattr(self, "_ac_status", None)
                    limit = getattr(self, "_ac_length", None)
                    sent = getattr(self, "_ac_sent", 0)
                    self._ac_sent = sent + len(data)
                    if data and (
                        status in (204, 304)
                        or getattr(self, "_ac_method", None) == b"HEAD"
                        or (limit is not None and sent + len(data) > limit)
                    ):
                        return data
                out = send(self, event)
                if out is None:
                    return out
                changed = hook(h11, self, event, bytes(out))
                if isinstance(event, h11.Response):
                    self._ac_chunked = b"transfer-encoding: chunked" in changed.lower()
                return changed

            connection.send = patched_send
            connection.next_event = patched_next_event

        _patch(connection, key, ("send", "next_event"), apply)
        return app

    return wrap


def _head_hook(change: Callable[[Any, bytes], bytes]) -> SendHook:
    """A send hook that rewrites response heads only."""

    def hook(h11: Any, conn: Any, event: Any, out: bytes) -> bytes:
        return change(event, out) if isinstance(event, h11.Response) else out

    return hook


def _register(name: str, bug: str, *scenarios: str, reference: str = "uvicorn-h11") -> Callable[[Wrapper], Wrapper]:
    return mutant(name, bug, *scenarios, reference=reference)


# -- request framing: h11 reads it leniently (reference uvicorn-h11) -----------------------------

_register(
    "wire-te-first-coding",
    "the server frames by the first transfer coding: 'chunked, gzip' and 'chunked, chunked' read as chunked",
    "wire.h1.te.chunked_not_final",
    "wire.h1.te.double_chunked",
)(_h11_received("te_first", [(rb"Transfer-Encoding: chunked, (gzip|chunked)\r\n", b"Transfer-Encoding: chunked\r\n")]))

_register(
    "wire-te-case-sensitive",
    "the server compares transfer-coding names case-sensitively ('Chunked' is not chunked)",
    "wire.h1.te.case_insensitive",
)(_h11_received("te_case", [(rb"Transfer-Encoding: Chunked\r\n", b"Transfer-Encoding: xchunked\r\n")]))

_register(
    "wire-te-http10-persistent",
    "an HTTP/1.0 request with Transfer-Encoding is framed as chunked and the connection kept",
    "wire.h1.te.http10",
)(
    _h11_received(
        "te_http10", [(rb"^(POST [^ \r\n]+) HTTP/1\.0(?=\r\n(?:[^\r\n]+\r\n)*Transfer-Encoding)", rb"\1 HTTP/1.1")]
    )
)

_register(
    "wire-te-lines-ignored-with-cl",
    "two Transfer-Encoding lines with Content-Length: the server frames by Content-Length and keeps the connection",
    "wire.h1.te.duplicate_fields",
)(_h11_received("te_dup", [(rb"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n", b"")]))

_register(
    "wire-cl-lenient-int",
    "the server parses Content-Length with a lenient integer parser ('+5' is 5)",
    "wire.h1.cl.invalid",
)(_h11_received("cl_int", [(rb"\r\nContent-Length: \+5\r\n", b"\r\nContent-Length: 5\r\n")]))

_register(
    "wire-cl-first-wins",
    "with differing Content-Length lines the server takes the first",
    "wire.h1.cl.multiple_differing",
)(_h11_received("cl_first", [(rb"Content-Length: 5\r\nContent-Length: 6\r\n", b"Content-Length: 5\r\n")]))

_register(
    "wire-cl-octal",
    "a Content-Length with leading zeros is read as octal (0010 is 8)",
    "wire.h1.cl.leading_zeros",
)(_h11_received("cl_octal", [(rb"\r\nContent-Length: 0010\r\n", b"\r\nContent-Length: 8\r\n")]))

_register(
    "wire-get-body-ignored",
    "the server ignores Content-Length on GET, so the body is parsed as the next request",
    "wire.h1.cl.body_on_get",
)(_h11_received("get_body", [(rb"^(GET [^\r\n]*\r\nHost: x\r\n)Content-Length: [0-9]+\r\n", rb"\1")]))

_register(
    "wire-chunk-size-lenient",
    "chunk sizes are parsed with int(size, 16), so '0x5' is 5",
    "wire.h1.chunk.size_syntax",
)(_h11_received("chunk_0x", [(rb"\r\n\r\n0x5\r\n", b"\r\n\r\n5\r\n")]))

_register(
    "wire-chunk-uppercase-rejected",
    "the server accepts lower-case hex chunk sizes only",
    "wire.h1.chunk.uppercase_hex",
)(_h11_received("chunk_upper", [(rb"\r\n\r\nA\r\n0123456789\r\n", b"\r\n\r\nG\r\n0123456789\r\n")]))

_register(
    "wire-chunk-extensions-rejected",
    "the server rejects chunks that carry extensions",
    "wire.h1.chunk.extensions_ignored",
)(_h11_received("chunk_ext", [(rb"\r\n5;foo=bar", b"\r\n5\x01;foo=bar")]))

_register(
    "wire-chunk-resync",
    "chunk data longer than its size is cut to the size and the parser resynchronises",
    "wire.h1.chunk.data_mismatch",
)(_h11_received("chunk_resync", [(rb"\r\n5\r\nhello!!\r\n", b"\r\n5\r\nhello\r\n")]))

_register(
    "wire-chunk-bare-lf-lossy",
    "bare-LF chunk lines are accepted but the chunk loses its last byte",
    "wire.h1.chunk.bare_lf",
)(_h11_received("chunk_lf", [(rb"\r\n\r\n5\nhello\n0\n\n", b"\r\n\r\n4\r\nhell\r\n0\r\n\r\n")]))

_register(
    "wire-field-colon-space-stripped",
    "whitespace before a field's colon is stripped instead of rejected",
    "wire.h1.field.sp_before_colon",
)(_h11_received("sp_colon", [(rb"\r\nX-A : b\r\n", b"\r\nX-A: b\r\n")]))

_register(
    "wire-field-indent-kept",
    "an indented line after the request line is taken as a field (it overrides Host)",
    "wire.h1.field.ws_after_request_line",
)(_h11_received("indent", [(rb"\r\n Host: evil\r\nHost: x\r\n", b"\r\nHost: evil\r\n")]))

_register(
    "wire-field-ctl-dropped",
    "NUL and bare CR in a field value are silently dropped (the value changes; not replaced by SP)",
    "wire.h1.field.crlfnul_in_value",
    "wire.h1.field.bare_cr",
)(_h11_received("ctl_dropped", [(rb"(\r\nX-A: a)[\x00\r](b\r\n)", rb"\1\2")]))

_register(
    "wire-field-name-normalised",
    "a space inside a field name is removed instead of rejected",
    "wire.h1.field.invalid_name",
)(_h11_received("name_space", [(rb"\r\nX A: v\r\n", b"\r\nXA: v\r\n")]))

_register(
    "wire-underscore-as-dash",
    "the server normalises '_' to '-' in field names, so Content_Length frames the body",
    "wire.h1.field.underscore_framing",
)(_h11_received("underscore", [(rb"\r\nContent_Length:", b"\r\nContent-Length:")]))

_register(
    "wire-host-defaulted",
    "an HTTP/1.1 request without Host gets a default Host instead of a 400",
    "wire.h1.host.missing",
)(_h11_received("host_default", [(rb"^(GET [^\r\n]* HTTP/1\.1\r\n)(X-A: b\r\n\r\n)", rb"\1Host: x\r\n\2")]))

_register(
    "wire-host-deduplicated",
    "identical Host lines are merged instead of rejected",
    "wire.h1.host.duplicate",
)(_h11_received("host_dup", [(rb"\r\nHost: x\r\nHost: x\r\n", b"\r\nHost: x\r\n")]))

_register(
    "wire-absolute-form-rejected",
    "the server rejects absolute-form request targets",
    "wire.h1.target.absolute_form",
)(_h11_received("absolute", [(rb"^GET http://a\.example/", b"GET  http://a.example/")]))

_register(
    "wire-request-line-collapsed",
    "repeated spaces in the request line are collapsed instead of rejected",
    "wire.h1.request_line.syntax",
)(_h11_received("collapse", [(rb"^GET  /echo/", b"GET /echo/")]))

_register(
    "wire-http09-as-http10",
    "a request line without a version is served as HTTP/1.0",
    "wire.h1.version.missing",
)(_h11_received("http09", [(rb"^(GET /echo/wire/[0-9a-f]+)\r\n\r\n", rb"\1 HTTP/1.0\r\n\r\n")]))

_register(
    "wire-connect-tunnel-silent",
    "CONNECT opens a tunnel that never answers",
    "wire.h1.target.authority_form",
)(_h11_received("connect", [(rb"^CONNECT [^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n", b"")]))

_register(
    "wire-tiny-reads-dropped",
    "the server drops reads of a few bytes (assumes a request arrives in large reads)",
    "wire.h1.slow.dribble",
)(_h11_received("tiny", [], drop=lambda data: len(data) < 4))

_register(
    "wire-pause-ends-headers",
    "a pause in the header section is taken as its end",
    "wire.h1.slow.headers_unfinished",
)(_h11_received("pause", [(rb"\r\nX-A: b\Z", b"\r\nX-A: b\r\n\r\n")]))

_register(
    "wire-te-unknown-as-chunked",
    "an unknown transfer coding ('xchunked') is treated as chunked",
    "wire.h1.te.unknown_coding",
    reference="hypercorn",
)(_h11_received("te_unknown", [(rb"Transfer-Encoding: xchunked\r\n", b"Transfer-Encoding: chunked\r\n")]))

# -- request framing: httptools reads it leniently (reference uvicorn) ---------------------------

_register(
    "wire-clte-te-wins-no-close",
    "with Content-Length and Transfer-Encoding the server frames by TE and keeps the connection",
    "wire.h1.clte.both",
    "wire.h1.clte.no_smuggle",
    reference="uvicorn",
)(_httptools_received("clte", [(rb"Content-Length: [0-9]+\r\n(?=Transfer-Encoding: chunked\r\n)", b"")]))

_register(
    "wire-te-tab-unrecognised",
    "a Transfer-Encoding value with leading HTAB is not recognised as chunked",
    "wire.h1.te.list_syntax",
    reference="uvicorn",
)(_httptools_received("te_tab", [(rb"Transfer-Encoding:\tchunked\r\n", b"Transfer-Encoding:\tchunkd\r\n")]))

_register(
    "wire-cl-wraps",
    "Content-Length wraps around at 2**64 (18446744073709551617 is 1)",
    "wire.h1.cl.overflow",
    reference="uvicorn",
)(_httptools_received("cl_wrap", [(rb"Content-Length: 18446744073709551617\r\n", b"Content-Length: 1\r\n")]))

_register(
    "wire-chunk-size-wraps",
    "chunk sizes wrap around at 2**64 (1000000000000000a is 10)",
    "wire.h1.chunk.size_overflow",
    reference="uvicorn",
)(_httptools_received("chunk_wrap", [(rb"\r\n1000000000000000a\r\n", b"\r\na\r\n")]))

_register(
    "wire-chunk-ext-ctl-ignored",
    "control bytes in a chunk extension are ignored",
    "wire.h1.chunk.extension_invalid",
    reference="uvicorn",
)(_httptools_received("chunk_ext_ctl", [(rb"\r\n5;a=\x00\r\n", b"\r\n5;a=x\r\n")]))

_register(
    "wire-leading-crlf-rejected",
    "an empty line before the request line makes the request invalid",
    "wire.h1.request_line.leading_crlf",
    reference="uvicorn",
)(_httptools_received("lead_crlf", [(rb"^\r\nGET ", b"\r\n\x00GET ")]))

_register(
    "wire-garbage-buffered",
    "bytes that are not HTTP are buffered forever instead of answered or closed",
    "wire.h1.garbage",
    reference="uvicorn",
)(_httptools_received("garbage", [(rb"^\x16\x03\x01[\s\S]*", b"")]))


# -- what the app is handed (middlewares) ----------------------------------------------------------


def _headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    return [(bytes(k), bytes(v)) for k, v in scope.get("headers") or ()]


def _path(scope: Scope) -> str:
    path = scope.get("path")
    return path if isinstance(path, str) else ""


def _scope_change(change: Callable[[Scope], None]) -> Wrapper:
    def wrap(app: App) -> App:
        async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
            if scope.get("type") == "http":
                scope = {**scope, "headers": _headers(scope)}
                change(scope)
            await app(scope, receive, send)

        return mutated

    return wrap


def _header_value(name: bytes, change: Callable[[bytes], bytes]) -> Callable[[Scope], None]:
    def apply(scope: Scope) -> None:
        scope["headers"] = [(k, change(v) if k.lower() == name else v) for k, v in scope["headers"]]

    return apply


_register(
    "wire-fold-crlf-kept",
    "an obs-fold reaches the app with its CRLF still in the value",
    "wire.h1.field.obs_fold",
)(_scope_change(_header_value(b"x-a", lambda v: v.replace(b" ", b"\r\n ") if v == b"a b" else v)))

_register(
    "wire-ows-kept",
    "trailing whitespace stays in field values",
    "wire.h1.field.ows_trim",
)(_scope_change(_header_value(b"x-a", lambda v: v + b" \t ")))

_register(
    "wire-bare-lf-kept",
    "a bare-LF terminated field keeps its LF in the value",
    "wire.h1.field.bare_lf",
)(_scope_change(_header_value(b"x-a", lambda v: v + b"\n")))


def _http_version(version: str, only: str | None = None) -> Callable[[Scope], None]:
    def apply(scope: Scope) -> None:
        if only is None or scope.get("http_version") == only:
            scope["http_version"] = version

    return apply


_register(
    "wire-http10-reported-as-11",
    "HTTP/1.0 requests reach the app with http_version '1.1'",
    "wire.h1.host.http10_absent",
)(_scope_change(_http_version("1.1", only="1.0")))


def _version_passthrough(app: App) -> App:
    """daphne (twisted) refuses HTTP/1.2; the mutant lets it in and hands the app '1.2'."""
    module = _import("twisted.web.http")
    channel: Any = getattr(module, "HTTPChannel", None)

    def apply() -> None:
        original = channel.dataReceived

        def data_received(self: Any, data: bytes) -> None:
            original(self, re.sub(rb"^(GET [^ \r\n]+) HTTP/1\.2\r\n", rb"\1 HTTP/1.1\r\nX-Ac-Version: 1.2\r\n", data))

        channel.dataReceived = data_received

    _patch(channel, "version", ("dataReceived",), apply)

    def change(scope: Scope) -> None:
        if any(k.lower() == b"x-ac-version" for k, _ in scope["headers"]):
            scope["http_version"] = "1.2"

    return _scope_change(change)(app)


_register(
    "wire-version-passthrough",
    "the request line's version reaches the app as is (HTTP/1.2 as '1.2')",
    "wire.h1.version.unsupported",
    reference="daphne",
)(_version_passthrough)


def _methods_mapped(scope: Scope) -> None:
    if scope.get("method") not in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE"):
        scope["method"] = "GET"


_register(
    "wire-extension-methods-mapped",
    "methods outside the standard set reach the app as GET",
    "wire.h1.method.case",
)(_scope_change(_methods_mapped))


def _refuse(limit: Callable[[Scope], bool], status: int) -> Wrapper:
    def wrap(app: App) -> App:
        async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
            if scope.get("type") == "http" and limit(scope):
                await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]})
                await send({"type": "http.response.body", "body": b""})
                return
            await app(scope, receive, send)

        return mutated

    return wrap


_register(
    "wire-long-method-400",
    "a long method gets 400 instead of 501",
    "wire.h1.method.too_long",
)(_refuse(lambda scope: len(str(scope.get("method", ""))) > 100, 400))

# (granian answers 414; uvicorn with h11 refuses a paced 100 KiB target with 400.)
_register(
    "wire-long-target-400",
    "targets over 4000 bytes are refused with 400",
    "wire.h1.target.too_long",
    reference="granian",
)(_refuse(lambda scope: len(_path(scope)) > 4000, 400))

_register(
    "wire-options-star-refused",
    "OPTIONS * is refused",
    "wire.h1.target.asterisk_form",
)(_refuse(lambda scope: _path(scope) == "*" and scope.get("method") == "OPTIONS", 400))

# -- rules no built-in target follows yet: proven on a reference made strict by a fixer ---------

_INVALID_HOST = re.compile(rb"[@/,\s]")
_INVALID_TARGET = re.compile(r"[#\s\x00-\x1f\x7f]|[^\x00-\x7f]")


def _host(scope: Scope) -> bytes | None:
    for key, value in scope.get("headers") or ():
        if bytes(key).lower() == b"host":
            return bytes(value)
    return None


def _raw_target(scope: Scope) -> str:
    raw = scope.get("raw_path")
    return bytes(raw).decode("latin-1") if isinstance(raw, bytes | bytearray) else str(scope.get("path", ""))


fixer("strict-host")(_refuse(lambda scope: _INVALID_HOST.search(_host(scope) or b"") is not None, 400))
fixer("strict-target")(_refuse(lambda scope: _INVALID_TARGET.search(_raw_target(scope)) is not None, 400))


def _rewritten(change: Callable[[Scope], None]) -> Wrapper:
    def wrap(app: App) -> App:
        async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
            if scope.get("type") == "http":
                scope = dict(scope)
                change(scope)
            await app(scope, receive, send)

        return mutated

    return wrap


def _valid_host(scope: Scope) -> None:
    scope["headers"] = [(k, b"x") if bytes(k).lower() == b"host" else (k, v) for k, v in scope.get("headers") or ()]


def _valid_target(scope: Scope) -> None:
    cleaned = re.sub(_INVALID_TARGET, "", _raw_target(scope))
    scope["raw_path"] = cleaned.encode("latin-1")
    scope["path"] = cleaned


mutant(
    "wire-host-unvalidated",
    "Host values with userinfo, a path or a list are served (taken as a plain host) instead of refused",
    "wire.h1.host.invalid",
    base="strict-host",
    outer=True,
)(_rewritten(_valid_host))

mutant(
    "wire-target-unvalidated",
    "targets with spaces, fragments or control bytes are served (cleaned up) instead of refused",
    "wire.h1.target.invalid",
    base="strict-target",
    outer=True,
)(_rewritten(_valid_target))


def _body_changed(change: Callable[[Scope, Message], Message]) -> Wrapper:
    def wrap(app: App) -> App:
        async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
            if scope.get("type") != "http":
                await app(scope, receive, send)
                return

            async def changed() -> Message:
                return change(scope, await receive())

            await app(scope, changed, send)

        return mutated

    return wrap


def _last_byte_lost(scope: Scope, message: Message) -> Message:
    body = message.get("body", b"")
    if message.get("type") == "http.request" and not message.get("more_body") and body:
        return {**message, "body": body[:-1]}
    return message


_register(
    "wire-body-last-byte-lost",
    "the request body reaches the app one byte short",
    "wire.h1.cl.multiple_same",
)(_body_changed(_last_byte_lost))

# uvicorn with h11 refuses the paced 64 KiB extension; with httptools it takes it.
_register(
    "wire-ext-body-last-byte-lost",
    "after a long chunk extension, the request body reaches the app one byte short",
    "wire.h1.chunk.extension_limit",
    reference="uvicorn",
)(_body_changed(_last_byte_lost))


def _disconnect_as_end(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await app(scope, receive, send)
            return

        async def changed() -> Message:
            message = await receive()
            if message.get("type") == "http.disconnect":
                return {"type": "http.request", "body": b"", "more_body": False}
            return message

        await app(scope, changed, send)

    return mutated


_register(
    "wire-disconnect-as-body-end",
    "a body cut short by the client is handed to the app as complete (more_body: False)",
    "wire.h1.cl.incomplete",
    "wire.h1.chunk.no_last_chunk",
    "wire.h1.slow.body_stalled",
)(_disconnect_as_end)


def _merge_trailer(scope: Scope) -> None:
    if any(k.lower() == b"transfer-encoding" for k, _ in scope["headers"]):
        scope["headers"].append((b"content-length", b"999"))


_register(
    "wire-trailer-merged",
    "trailer fields are merged into the request headers (a trailer Content-Length reaches the app)",
    "wire.h1.chunk.trailer_section",
)(_scope_change(_merge_trailer))


# -- response generation ------------------------------------------------------------------------


def _responses(change: Callable[[Scope, Message], list[Message]]) -> Wrapper:
    def wrap(app: App) -> App:
        async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
            if scope.get("type") != "http":
                await app(scope, receive, send)
                return

            async def changed(message: Message) -> None:
                for out in change(scope, message):
                    await send(out)

            await app(scope, receive, changed)

        return mutated

    return wrap


def _body_on_no_body(scope: Scope, message: Message) -> list[Message]:
    if scope.get("method") == "HEAD":
        scope["method"] = "GET"  # in place: uvicorn reads its own scope to drop HEAD bodies
    if message.get("type") == "http.response.start" and message.get("status") == 304:
        scope["_ac_304"] = [bytes(v) for k, v in message.get("headers") or () if bytes(k).lower() == b"content-length"]
    if message.get("type") == "http.response.body" and scope.get("_ac_304"):
        length = scope.pop("_ac_304")[0]
        return [{**message, "body": b"x" * int(length)}]
    return [message]


def _body_on_no_body_wrap(app: App) -> App:
    _h11_sent("passthrough", lambda h11, conn, event, out: out, passthrough_bodies=True)(app)
    return _responses(_body_on_no_body)(app)


_register(
    "wire-body-after-bodiless-response",
    "the server writes the app's body on HEAD, 204 and 304, and body bytes past the declared Content-Length",
    "wire.h1.resp.head_no_content",
    "wire.h1.resp.no_body_statuses",
    "wire.h1.resp.304",
    "wire.h1.resp.cl_matches_body",
)(_body_on_no_body_wrap)


def _head_cl_zeroed(scope: Scope, message: Message) -> list[Message]:
    if scope.get("method") == "HEAD" and message.get("type") == "http.response.start":
        headers = [(k, b"0" if bytes(k).lower() == b"content-length" else v) for k, v in message.get("headers") or ()]
        return [{**message, "headers": headers}]
    return [message]


_register(
    "wire-head-content-length-zeroed",
    "the server rewrites Content-Length on HEAD responses to 0",
    "wire.h1.resp.head_content_length",
)(_responses(_head_cl_zeroed))


def _cl_on_204(scope: Scope, message: Message) -> list[Message]:
    if message.get("type") == "http.response.start" and message.get("status") == 204:
        headers = list(message.get("headers") or ())
        if not any(bytes(k).lower() == b"content-length" for k, _ in headers):
            return [{**message, "headers": [*headers, (b"content-length", b"0")]}]
    return [message]


_register(
    "wire-204-content-length-added",
    "the server adds Content-Length: 0 to 204 responses",
    "wire.h1.resp.no_cl_1xx_204",
)(_responses(_cl_on_204))


def _insert_field(out: bytes, line: bytes) -> bytes:
    return out.replace(b"\r\n\r\n", b"\r\n" + line + b"\r\n\r\n", 1)


_register(
    "wire-204-chunked",
    "the server marks 204 responses Transfer-Encoding: chunked",
    "wire.h1.resp.no_te_1xx_204",
)(
    _h11_sent(
        "te_204",
        _head_hook(lambda e, out: _insert_field(out, b"Transfer-Encoding: chunked") if e.status_code == 204 else out),
    )
)


def _http10_te(h11: Any, conn: Any, event: Any, out: bytes) -> bytes:
    if isinstance(event, h11.Response) and conn.their_http_version == b"1.0":
        return _insert_field(out, b"Transfer-Encoding: chunked")
    return out


_register(
    "wire-http10-chunked",
    "responses to HTTP/1.0 requests are marked Transfer-Encoding: chunked",
    "wire.h1.resp.no_te_http10",
)(_h11_sent("te_http10", _http10_te))


def _stream_cut(scope: Scope, message: Message) -> list[Message]:
    if message.get("type") == "http.response.body":
        if scope.get("_ac_cut"):
            return [{**message, "body": b""}]
        if not message.get("body") and message.get("more_body"):
            scope["_ac_cut"] = True
    return [message]


_register(
    "wire-stream-cut-after-empty",
    "body bytes sent after an empty body event are lost",
    "wire.h1.resp.close_delimited",
)(_responses(_stream_cut))


def _cl_and_te(h11: Any, conn: Any, event: Any, out: bytes) -> bytes:
    if isinstance(event, h11.Response) and b"transfer-encoding: chunked" in out.lower():
        return _insert_field(out, b"Content-Length: 5")
    return out


_register(
    "wire-cl-and-te-sent",
    "the server keeps the app's Content-Length next to Transfer-Encoding",
    "wire.h1.resp.cl_xor_te",
)(_h11_sent("cl_and_te", _cl_and_te))


def _zero_chunk(h11: Any, conn: Any, event: Any, out: bytes) -> bytes:
    if isinstance(event, h11.Data) and not event.data and getattr(conn, "_ac_chunked", False):
        return b"0\r\n\r\n"
    return out


_register(
    "wire-zero-chunk-early",
    "an empty body event is written as a zero-size chunk (ending the body early)",
    "wire.h1.resp.chunked_valid",
)(_h11_sent("zero_chunk", _zero_chunk))

_register(
    "wire-date-dropped",
    "the server sends no Date header",
    "wire.h1.resp.date",
)(_h11_sent("date", _head_hook(lambda e, out: re.sub(rb"(?i)\r\ndate: [^\r\n]*", b"", out))))

_register(
    "wire-400-without-close",
    "the server's 400 does not say Connection: close before it closes",
    "wire.h1.resp.close_header",
)(
    _h11_sent(
        "close_400",
        _head_hook(lambda e, out: re.sub(rb"(?i)\r\nconnection: close", b"", out) if e.status_code == 400 else out),
    )
)

_register(
    "wire-status-line-no-sp",
    "the status line has no SP after the status code",
    "wire.h1.resp.status_line",
)(_h11_sent("status_sp", _head_hook(lambda e, out: re.sub(rb"^(HTTP/1\.[01] [0-9]{3}) [^\r\n]*", rb"\1", out))))

_register(
    "wire-error-status-malformed",
    "the server's own error responses carry a malformed status line",
    "wire.h1.resp.server_errors_well_formed",
)(
    _h11_sent(
        "error_status",
        _head_hook(
            lambda e, out: re.sub(rb"^HTTP/1\.1 (4[0-9]{2})", rb"HTTP/1.1 \g<1>0", out) if e.status_code >= 400 else out
        ),
    )
)


def _raw_name(scope: Scope, message: Message) -> list[Message]:
    if message.get("type") == "http.response.start":
        headers = [
            (b"x-ac-raw-name", bytes(k)) if bytes(k) == b"x a" else (k, v) for k, v in message.get("headers") or ()
        ]
        return [{**message, "headers": headers}]
    return [message]


def _raw_name_wrap(app: App) -> App:
    _h11_sent("raw_name", _head_hook(lambda e, out: re.sub(rb"(?i)\r\nx-ac-raw-name: ([^\r\n]*)", rb"\r\n\1: 1", out)))(
        app
    )
    return _responses(_raw_name)(app)


_register(
    "wire-field-name-unvalidated",
    "the server writes the app's header names without validating them",
    "wire.h1.resp.field_syntax",
)(_raw_name_wrap)


def _large_header_section(scope: Scope) -> bool:
    headers = _headers(scope)
    return len(headers) > 1000 or any(len(v) > 65536 for _, v in headers)


# (uvicorn with httptools takes both oversized heads; uvicorn with h11 refuses them paced.)
_register(
    "wire-large-headers-500",
    "a header section over the server's limit gets a 500 instead of a 4xx",
    "wire.h1.field.too_large",
    reference="uvicorn",
)(_refuse(_large_header_section, 500))
