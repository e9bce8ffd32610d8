"""Mutants for the HTTP/2 scenarios (suites/test_wire_h2.py): wire.h2.* and ext.push.*.

The reference is hypercorn (asyncio worker): it speaks h2c with prior knowledge on its plain
listener and passes every scenario here (cookie_crumbs and the push rows are ``info`` or pass).
Most mutants are middlewares that act on HTTP/2 scopes only (``http_version == "2"``) and
imitate a bug an ASGI server's HTTP/2 layer could have. Three rules are kept by the server's
``h2`` library itself (what goes out in HEADERS, whether a PUSH_PROMISE may be sent): those
mutants patch ``h2`` inside the reference server's process, when the mutant wraps the app
(at import of asgi_conformance.apps.serve), and raise ``RuntimeError`` if what they patch is
missing. One rule (no content on HEAD) is kept by hypercorn's HTTP stream before h2 sees the
body: ``h2-head-body-sent`` patches ``hypercorn.protocol.http_stream.HTTPStream`` the same way.
Runs inside the server: standard library only (``h2`` and hypercorn are the server's own).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

from . import aio
from .mutants import App, Message, Receive, Scope, Send, Wrapper, mutant

__all__: list[str] = []

REFERENCE = "hypercorn"
CONNECTION_SPECIFIC = (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade")


def _h2(scope: Scope) -> bool:
    return scope.get("http_version") == "2"


def _under(scope: Scope, prefix: str) -> bool:
    path = scope.get("path")
    return isinstance(path, str) and path.startswith(prefix)


def _h2_middleware(change: Callable[[Scope, Receive, Send], tuple[Scope, Receive, Send]], *types: str) -> Wrapper:
    """Wrap an app so HTTP/2 scopes of ``types`` (default http) go through ``change`` first."""
    kinds = types or ("http",)

    def wrap(app: App) -> App:
        async def mutated(scope: Scope, receive: Receive, send: Send) -> Any:
            if scope.get("type") in kinds and _h2(scope):
                scope, receive, send = change(scope, receive, send)
            return await app(scope, receive, send)

        return mutated

    return wrap


def _copy(scope: Scope) -> Scope:
    copied = dict(scope)
    copied["headers"] = [(bytes(k), bytes(v)) for k, v in scope.get("headers") or ()]
    if isinstance(scope.get("extensions"), dict):
        copied["extensions"] = dict(scope["extensions"])
    return copied


def _scope_change(change: Callable[[Scope], None], *types: str) -> Wrapper:
    def step(scope: Scope, receive: Receive, send: Send) -> tuple[Scope, Receive, Send]:
        scope = _copy(scope)
        change(scope)
        return scope, receive, send

    return _h2_middleware(step, *types)


def _send_change(make: Callable[[Scope, Send], Send]) -> Wrapper:
    def step(scope: Scope, receive: Receive, send: Send) -> tuple[Scope, Receive, Send]:
        return scope, receive, make(scope, send)

    return _h2_middleware(step)


# -- scope ----------------------------------------------------------------------------------------

mutant("h2-version-2-0", 'HTTP/2 requests get http_version "2.0"', "wire.h2.http_version", reference=REFERENCE)(
    _scope_change(lambda s: s.update(http_version="2.0"))
)

_GATED = "/app/h2-gated/"
_previous_path: list[str] = []


def _crossed(scope: Scope) -> None:
    """Each h2-gated call gets the path of the call before it (a stream-to-scope mix-up)."""
    path = str(scope.get("path"))
    if not path.startswith(_GATED):
        return
    token = path[len(_GATED) :].split("/", 1)[0]
    earlier = _previous_path[-1] if _previous_path else None
    _previous_path[:] = [path]
    if earlier is not None and earlier.startswith(f"{_GATED}{token}/"):
        scope["path"] = earlier
        scope["raw_path"] = earlier.encode("ascii")


mutant(
    "h2-streams-crossed",
    "a stream's app call gets the scope (path) of the stream opened before it",
    "wire.h2.stream_scopes",
    reference=REFERENCE,
)(_scope_change(_crossed))


def _pseudo_kept(scope: Scope) -> None:
    headers = scope["headers"]
    host = [v for k, v in headers if k == b"host"]
    rest = [(k, v) for k, v in headers if k != b"host"]
    scope["headers"] = [(b":authority", host[0] if host else b""), *rest, *((b"host", v) for v in host)]


mutant(
    "h2-pseudo-kept",
    ":authority stays in the scope as a pseudo-header and host goes last",
    "wire.h2.pseudo_mapping",
    reference=REFERENCE,
)(_scope_change(_pseudo_kept))


def _first_cookie_only(scope: Scope) -> None:
    """Header storage keyed by name keeps one cookie value, and only its first cookie-pair."""
    out: list[tuple[bytes, bytes]] = []
    seen = False
    for k, v in scope["headers"]:
        if k == b"cookie":
            if seen:
                continue
            seen = True
            v = v.split(b"; ", 1)[0]
        out.append((k, v))
    scope["headers"] = out


mutant(
    "h2-cookie-first-only",
    "of several cookie crumbs only the first cookie-pair reaches the app",
    "wire.h2.cookie_crumbs",
    reference=REFERENCE,
)(_scope_change(_first_cookie_only))


def _ws_version(scope: Scope) -> None:
    scope["http_version"] = "1.1"


mutant(
    "h2-websocket-version",
    'a WebSocket over HTTP/2 (RFC 8441) gets http_version "1.1"',
    "wire.h2.websocket_8441",
    reference=REFERENCE,
)(_scope_change(_ws_version, "websocket"))


def _push_not_dict(scope: Scope) -> None:
    extensions = scope.get("extensions")
    if isinstance(extensions, dict) and "http.response.push" in extensions:
        extensions["http.response.push"] = True


mutant(
    "h2-push-extension-true",
    "http.response.push is advertised with the value True, not a dict",
    "ext.push.advertised",
    reference=REFERENCE,
)(_scope_change(_push_not_dict))


# -- receive and send -----------------------------------------------------------------------------


def _disconnect_swallowed(scope: Scope, receive: Receive, send: Send) -> tuple[Scope, Receive, Send]:
    async def mutated() -> Message:
        message = await receive()
        if message.get("type") == "http.disconnect":
            await aio.sleep(60.0)  # the app's own bounded receive gives up first
        return message

    return scope, mutated, send


mutant(
    "h2-reset-no-disconnect",
    "a stream reset by the client never gives its app http.disconnect",
    "wire.h2.rst_stream",
    reference=REFERENCE,
)(_h2_middleware(_disconnect_swallowed))


def _body_cut(scope: Scope, receive: Receive, send: Send) -> tuple[Scope, Receive, Send]:
    done = [False]

    async def mutated() -> Message:
        message = dict(await receive())
        if not done[0] and message.get("type") == "http.request" and message.get("more_body"):
            done[0] = True
            message["more_body"] = False  # the rest of the streamed body is lost
        return message

    return scope, mutated if _under(scope, "/app/req-stream/") else receive, send


mutant(
    "h2-request-body-cut",
    "a streamed HTTP/2 request body ends with its first DATA frame (the rest is lost)",
    "wire.h2.request_streaming",
    reference=REFERENCE,
)(_h2_middleware(_body_cut))


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
    "h2-response-buffered",
    "an HTTP/2 response is held back until its final body event",
    "wire.h2.response_streaming",
    reference=REFERENCE,
)(_send_change(_buffered))


def _chunk_dropped(scope: Scope, send: Send) -> Send:
    if not _under(scope, "/app/h2-bytes/"):
        return send
    count = [0]

    async def filtered(message: Message) -> None:
        if message.get("type") == "http.response.body":
            count[0] += 1
            if count[0] == 3:
                return  # lost while the stream waited for a WINDOW_UPDATE
        await send(message)

    return filtered


mutant(
    "h2-flow-chunk-lost",
    "a body chunk of a large HTTP/2 response is lost while the stream waits on flow control",
    "wire.h2.flow_control",
    reference=REFERENCE,
)(_send_change(_chunk_dropped))


def _trailers_dropped(scope: Scope, send: Send) -> Send:
    async def filtered(message: Message) -> None:
        kind = message.get("type")
        if kind == "http.response.trailers":
            return
        if kind == "http.response.start" and message.get("trailers"):
            message = {k: v for k, v in message.items() if k != "trailers"}
        await send(message)

    return filtered


mutant(
    "h2-trailers-dropped",
    "http.response.trailers is advertised over HTTP/2 but the trailers never go out",
    "ext.trailers.h2_emission",
    "wire.h2.trailers",
    reference=REFERENCE,
)(_send_change(_trailers_dropped))


def _empty_body_ends_stream(scope: Scope, send: Send) -> Send:
    held: list[Message] = []

    async def filtered(message: Message) -> None:
        kind = message.get("type")
        if kind == "http.response.start" and message.get("trailers"):
            held.append(message)
            return
        if held and kind == "http.response.body":
            start = held.pop()
            if not message.get("body") and not message.get("more_body"):
                # An empty final body ends the stream (END_STREAM on the DATA); the trailers are lost.
                await send({k: v for k, v in start.items() if k != "trailers"})
                await send(message)
                held.append({"type": "ended"})
                return
            await send(start)
        if kind == "http.response.trailers" and held and held[-1].get("type") == "ended":
            return
        await send(message)

    return filtered


mutant(
    "h2-trailers-empty-body-ends-stream",
    "after an empty final body the HTTP/2 stream ends at once and the trailers are lost",
    "wire.h2.trailers",
    reference=REFERENCE,
)(_send_change(_empty_body_ends_stream))


# -- push -----------------------------------------------------------------------------------------


def _push_swallowed(scope: Scope, send: Send) -> Send:
    async def filtered(message: Message) -> None:
        if message.get("type") != "http.response.push":
            await send(message)

    return filtered


mutant(
    "h2-push-ignored",
    "http.response.push is advertised but every push is silently dropped",
    "ext.push.promise_and_app_call",
    reference=REFERENCE,
)(_send_change(_push_swallowed))


def _authority_rewritten(scope: Scope, receive: Receive, send: Send) -> tuple[Scope, Receive, Send]:
    """The server's own header list gets another host (pushes are built from it), in place."""
    headers = scope.get("headers")
    if _under(scope, "/app/h2-push/") and isinstance(headers, list):
        for i, (k, _) in enumerate(list(headers)):
            if bytes(k) == b"host":
                headers[i] = (b"host", b"origin.invalid")
    return scope, receive, send


mutant(
    "h2-push-authority",
    "pushed requests get another :authority than the request that triggered them",
    "ext.push.authority",
    reference=REFERENCE,
)(_h2_middleware(_authority_rewritten))


def _early_push_breaks_start(scope: Scope, send: Send) -> Send:
    state = {"started": False, "early_push": False}

    async def filtered(message: Message) -> None:
        kind = message.get("type")
        if kind == "http.response.push" and not state["started"]:
            state["early_push"] = True
        if kind == "http.response.start":
            state["started"] = True
            if state["early_push"]:
                return  # the early push left the stream in a state where the start is lost
        await send(message)

    return filtered


mutant(
    "h2-push-early-breaks-response",
    "a push before http.response.start makes the server lose the response start",
    "ext.push.window",
    reference=REFERENCE,
)(_send_change(_early_push_breaks_start))


def _lenient_push(scope: Scope, send: Send) -> Send:
    async def filtered(message: Message) -> None:
        if message.get("type") == "http.response.push":
            path = message.get("path")
            headers = []
            for k, v in message.get("headers") or ():
                name = k.encode("latin-1") if isinstance(k, str) else bytes(k)
                value = v.encode("latin-1") if isinstance(v, str) else bytes(v)
                if not name.startswith(b":"):
                    headers.append((name, value))
            message = {
                **message,
                "path": path.decode("latin-1") if isinstance(path, bytes) else path,
                "headers": headers,
            }
        await send(message)

    return filtered


mutant(
    "h2-push-lenient-types",
    "invalid push messages (bytes path, pseudo-headers, str names) are silently fixed up",
    "ext.push.message_types",
    reference=REFERENCE,
)(_send_change(_lenient_push))


# -- patches of the server's h2 library -----------------------------------------------------------


def _import(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise RuntimeError(f"asgi-conformance mutant: {module} is not importable in this server process") from exc


def _patch_once(owner: Any, key: str, needs: tuple[str, ...], apply: Callable[[], None]) -> None:
    missing = [name for name in needs if not hasattr(owner, name)]
    if missing:
        raise RuntimeError(f"asgi-conformance mutant: {owner!r} has no {missing}; cannot patch")
    marker = f"_asgi_conformance_h2_{key}"
    if not getattr(owner, marker, False):
        apply()
        setattr(owner, marker, True)


def _raw_headers_for(key: str, wanted: Callable[[bytes], bool]) -> Wrapper:
    """h2 sends a HEADERS block as given (no normalising, no validation) when a name is ``wanted``."""

    def wrap(app: App) -> App:
        connection = _import("h2.connection").H2Connection

        def apply() -> None:
            original = connection.send_headers

            def send_headers(self: Any, stream_id: int, headers: Any, *args: Any, **kwargs: Any) -> Any:
                names = [bytes(pair[0]) for pair in headers]
                if not any(wanted(n) for n in names):
                    return original(self, stream_id, headers, *args, **kwargs)
                config = self.config
                saved = (config.normalize_outbound_headers, config.validate_outbound_headers)
                config.normalize_outbound_headers = False
                config.validate_outbound_headers = False
                try:
                    return original(self, stream_id, headers, *args, **kwargs)
                finally:
                    config.normalize_outbound_headers, config.validate_outbound_headers = saved

            connection.send_headers = send_headers

        _patch_once(connection, key, ("send_headers",), apply)
        return app

    return wrap


mutant(
    "h2-connection-headers-sent",
    "the app's connection-specific response fields go out on HTTP/2 (h2 neither strips nor refuses them)",
    "wire.h2.no_connection_headers",
    reference=REFERENCE,
)(_raw_headers_for("connection_headers", lambda name: name.lower() in CONNECTION_SPECIFIC))

mutant(
    "h2-uppercase-names-sent",
    "an upper-case response field name from the app goes out on HTTP/2 as it is",
    "wire.h2.lowercase_names",
    reference=REFERENCE,
)(_raw_headers_for("uppercase_names", lambda name: name != name.lower()))


def _push_despite_disabled(app: App) -> App:
    """h2 in the server reads every peer's SETTINGS_ENABLE_PUSH as 1, so it pushes anyway."""
    settings = _import("h2.settings").Settings

    def apply() -> None:
        prop = settings.__dict__.get("enable_push")
        if not isinstance(prop, property):
            raise RuntimeError("asgi-conformance mutant: h2.settings.Settings.enable_push is not a property")
        settings.enable_push = property(lambda self: 1, prop.fset)

    _patch_once(settings, "enable_push", ("enable_push",), apply)
    if "h2.connection" not in sys.modules:
        _import("h2.connection")
    return app


mutant(
    "h2-push-despite-disabled",
    "the server pushes to a client that set SETTINGS_ENABLE_PUSH to 0",
    "wire.h2.push_disabled",
    reference=REFERENCE,
)(_push_despite_disabled)


def _head_body_sent(app: App) -> App:
    """hypercorn's HTTP stream passes the app's body to the HTTP/2 connection on HEAD too
    (as granian 2.8.7 does): DATA frames carry the content after the HEADERS. HTTP/1.1 is
    left alone (only ``http_version == "2"`` scopes are affected)."""
    module = _import("hypercorn.protocol.http_stream")
    events = _import("hypercorn.protocol.events")
    stream_class = getattr(module, "HTTPStream", None)
    body_event = getattr(events, "Body", None)
    states = getattr(module, "ASGIHTTPState", None)
    if stream_class is None or body_event is None or getattr(states, "RESPONSE", None) is None:
        raise RuntimeError("asgi-conformance mutant: hypercorn has no HTTPStream, Body or ASGIHTTPState.RESPONSE")
    assert states is not None

    def apply() -> None:
        original = stream_class.app_send

        async def app_send(self: Any, message: Message | None) -> None:
            scope = getattr(self, "scope", None) or {}
            if (
                message is not None
                and message.get("type") == "http.response.body"
                and scope.get("http_version") == "2"
                and scope.get("method") == "HEAD"
                and getattr(self, "state", None) == states.RESPONSE
                and message.get("body")
            ):
                await self.send(body_event(stream_id=self.stream_id, data=bytes(message["body"])))
            await original(self, message)

        stream_class.app_send = app_send

    _patch_once(stream_class, "head_body", ("app_send",), apply)
    return app


mutant(
    "h2-head-body-sent",
    "the app's body goes out in DATA frames on a HEAD response over HTTP/2",
    "wire.h2.head_no_body",
    reference=REFERENCE,
)(_head_body_sent)
