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
import time
import traceback
from collections.abc import Callable
from typing import Any
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


# -- §10-§13: handshake, data, close, denial ----------------------------------------------


def _send_filter(change: Callable[[Message, dict[str, Any]], Message | None]) -> Callable[[App], App]:
    """A websocket middleware that passes every app send through ``change(message, state)``.

    ``change`` returns the message to send instead, or None to swallow it. ``state`` is per
    connection: "accepted" and "denied" say whether an accept or a denial start went out.
    """

    def wrap(app: App) -> App:
        async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
            state: dict[str, Any] = {"accepted": False, "denied": False, "closed": False}

            async def changed_send(message: Message) -> None:
                new = change(dict(message), state)
                kind = message.get("type")
                if kind == "websocket.accept":
                    state["accepted"] = True
                elif kind == "websocket.http.response.start":
                    state["denied"] = True
                elif kind == "websocket.close":
                    state["closed"] = True
                if new is not None:
                    await send(new)

            await app(scope, receive, changed_send)

        return mutated

    return _websocket_only(wrap)


def _receive_filter(change: Callable[[Message, dict[str, Any]], list[Message]]) -> Callable[[App], App]:
    """A websocket middleware whose receive passes each event through ``change``: the events to deliver."""

    def wrap(app: App) -> App:
        async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
            state: dict[str, Any] = {"count": 0}
            queue: list[Message] = []

            async def changed_receive() -> Message:
                for _ in range(100):
                    if queue:
                        return queue.pop(0)
                    message = await receive()
                    state["count"] += 1
                    queue.extend(change(dict(message), state))
                return await receive()

            await app(scope, changed_receive, send)

        return mutated

    return _websocket_only(wrap)


def _patch(module: str, owner: str, attribute: str, make: Callable[[Any], Any]) -> None:
    """Replace ``module.owner.attribute`` (or ``module.attribute`` when owner is "") in this process."""
    import importlib

    try:
        target: Any = importlib.import_module(module)
        if owner:
            target = getattr(target, owner)
        original = getattr(target, attribute)
    except (ImportError, AttributeError) as exc:
        raise RuntimeError(f"mutant: cannot patch {module}.{owner}.{attribute}: {exc}") from exc
    setattr(target, attribute, make(original))


def _wire(patch: Callable[[], None]) -> Callable[[App], App]:
    """A mutant that patches the server's WebSocket library at wrap time and leaves the app as it is."""

    def wrap(app: App) -> App:
        patch()
        return app

    return wrap


# §10: handshake


def _stray_before_connect(message: Message, state: dict[str, Any]) -> list[Message]:
    if state["count"] == 1 and message.get("type") == "websocket.connect":
        return [{"type": "websocket.receive", "text": ""}, message]
    return [message]


mutant(
    "ws-stray-event-before-connect",
    "an empty websocket.receive reaches the app before websocket.connect",
    "ws.connect.first_event",
    "ws.connect.no_receive_before_reply",
)(_receive_filter(_stray_before_connect))


@mutant(
    "ws-accept-early",
    "the server completes the handshake (101) as soon as the app is called, before the app answers",
    "ws.connect.hold_handshake",
    "ws.connect.no_reply_timeout",
    "ws.close_before_accept.403",
    "ws.close_before_accept.code_ignored",
    "ws.close_before_accept.well_formed",
)
@_websocket_only
def _accept_early(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        accepted = False

        async def early_receive() -> Message:
            nonlocal accepted
            message = await receive()
            if message.get("type") == "websocket.connect" and not accepted:
                accepted = True
                await send({"type": "websocket.accept"})
            return message

        async def late_send(message: Message) -> None:
            if message.get("type") != "websocket.accept":
                await send(message)

        await app(scope, early_receive, late_send)

    return mutated


def _bad_accept_token() -> None:
    _patch("wsproto.handshake", "", "generate_accept_token", lambda original: lambda key: original(key + b"x"))


mutant(
    "ws-wrong-accept-key",
    "Sec-WebSocket-Accept is computed from the wrong input",
    "ws.accept.101",
    reference="uvicorn-wsproto",
)(_wire(_bad_accept_token))


def _drop_subprotocol(message: Message, state: dict[str, Any]) -> Message:
    if message.get("type") == "websocket.accept":
        message.pop("subprotocol", None)
    return message


mutant("ws-subprotocol-dropped", "the app's chosen subprotocol never reaches the 101", "ws.accept.subprotocol")(
    _send_filter(_drop_subprotocol)
)


def _subprotocol_as_header(message: Message, state: dict[str, Any]) -> Message:
    chosen = message.pop("subprotocol", None) if message.get("type") == "websocket.accept" else None
    if isinstance(chosen, str):
        message["headers"] = [*list(message.get("headers") or []), (b"sec-websocket-protocol", chosen.encode())]
    return message


mutant(
    "ws-subprotocol-unchecked",
    "the app's subprotocol goes into the 101 without a check against the client's offer",
    "ws.accept.subprotocol_unoffered",
    reference="uvicorn-wsproto",
)(_send_filter(_subprotocol_as_header))


def _drop_accept_headers(message: Message, state: dict[str, Any]) -> Message:
    if message.get("type") == "websocket.accept":
        message.pop("headers", None)
    return message


mutant("ws-accept-headers-dropped", "headers on websocket.accept are ignored", "ws.accept.headers")(
    _send_filter(_drop_accept_headers)
)


@mutant(
    "ws-accept-stalls-on-odd-accept",
    "an accept carrying sec-websocket-protocol in its headers is never answered (the client waits)",
    "ws.accept.headers_swp_forbidden",
)
@_websocket_only
def _accept_stalls(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        async def stalling_send(message: Message) -> None:
            names = [bytes(k).lower() for k, _ in message.get("headers") or ()]
            if message.get("type") == "websocket.accept" and b"sec-websocket-protocol" in names:
                await aio.sleep(HOLD)  # bounded: the harness gave up long before
            await send(message)

        await app(scope, receive, stalling_send)

    return mutated


def _second_accept(message: Message, state: dict[str, Any]) -> Message | None:
    return None if message.get("type") == "websocket.accept" and state["accepted"] else message


mutant("ws-accept-twice-ignored", "a second websocket.accept is silently ignored", "ws.accept.twice")(
    _send_filter(_second_accept)
)


def _lenient_accept(message: Message, state: dict[str, Any]) -> Message | None:
    if message.get("type") != "websocket.accept":
        return message
    if state["accepted"]:
        return None
    if "subprotocol" in message and message["subprotocol"] is not None:
        message["subprotocol"] = str(message["subprotocol"])
    if message.get("headers"):
        message["headers"] = [
            tuple(x.encode("latin-1") if isinstance(x, str) else x for x in pair) for pair in message["headers"]
        ]
    return message


mutant(
    "ws-accept-lenient-values",
    "invalid accept values are coerced (str(subprotocol), header strs encoded) instead of raising",
    "ws.accept.invalid_values",
    reference="hypercorn",
)(_send_filter(_lenient_accept))


def _strict_connection(scope: Scope) -> bool:
    values = [bytes(v).strip().lower() for k, v in _pairs(scope) if k.lower() == b"connection"]
    return values == [b"upgrade"]


@mutant(
    "ws-token-matching-strict",
    "a handshake is refused unless Connection is exactly 'Upgrade' (no token list)",
    "ws.handshake.token_matching",
)
@_websocket_only
def _token_matching_strict(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        if _strict_connection(scope):
            await app(scope, receive, send)
            return
        await receive()
        await send({"type": "websocket.close"})

    return mutated


def _lenient_handshake() -> None:
    import h11

    def make(original: Any) -> Any:
        def process(self: Any, event: Any) -> Any:
            headers = [(k, v) for k, v in event.headers if k.lower() != b"sec-websocket-version"]
            if not any(k.lower() == b"sec-websocket-key" for k, _ in headers):
                headers.append((b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="))
            headers.append((b"sec-websocket-version", b"13"))
            fixed = h11.Request(
                method=event.method, target=event.target, headers=headers, http_version=event.http_version
            )
            return original(self, fixed)

        return process

    _patch("wsproto.handshake", "H11Handshake", "_process_connection_request", make)


mutant(
    "ws-handshake-unvalidated",
    "a handshake without a key or with another version is accepted (key and version not checked)",
    "ws.handshake.invalid_refused",
    reference="uvicorn-wsproto",
)(_wire(_lenient_handshake))


def _deflate_unoffered(message: Message, state: dict[str, Any]) -> Message:
    if message.get("type") == "websocket.accept":
        extra = (b"sec-websocket-extensions", b"permessage-deflate")
        message["headers"] = [*list(message.get("headers") or []), extra]
    return message


mutant(
    "ws-deflate-unoffered",
    "the 101 enables permessage-deflate though the client did not offer it",
    "ws.deflate.negotiation",
    reference="uvicorn-wsproto",
)(_send_filter(_deflate_unoffered))


# §11: data


def _text_as_bytes(message: Message, state: dict[str, Any]) -> list[Message]:
    if message.get("type") == "websocket.receive" and isinstance(message.get("text"), str):
        return [{"type": "websocket.receive", "bytes": message["text"].encode("utf-8")}]
    return [message]


mutant(
    "ws-text-as-bytes",
    "text messages reach the app as bytes",
    "ws.receive.text",
    "ws.connect.early_frames",
    "ws.receive.utf8",
    reference="granian",  # the one target that delivers an early frame to the app
)(_receive_filter(_text_as_bytes))


def _bytes_as_text(message: Message, state: dict[str, Any]) -> list[Message]:
    if message.get("type") == "websocket.receive" and isinstance(message.get("bytes"), bytes):
        return [{"type": "websocket.receive", "text": message["bytes"].decode("latin-1")}]
    return [message]


mutant("ws-bytes-as-text", "binary messages reach the app as text", "ws.receive.bytes", "ws.receive.sizes")(
    _receive_filter(_bytes_as_text)
)


def _both_keys(message: Message, state: dict[str, Any]) -> list[Message]:
    if message.get("type") == "websocket.receive":
        message.setdefault("text", "")
        message.setdefault("bytes", b"")
    return [message]


mutant("ws-receive-both-keys", "receive events carry both text and bytes ('' and b'')", "ws.receive.exactly_one")(
    _receive_filter(_both_keys)
)


def _is_empty(message: Message) -> bool:
    return message.get("text") in ("", None) and message.get("bytes") in (b"", None)


def _drop_empty_received(message: Message, state: dict[str, Any]) -> list[Message]:
    return [] if message.get("type") == "websocket.receive" and _is_empty(message) else [message]


mutant("ws-empty-received-dropped", "empty messages from the client never reach the app", "ws.receive.empty")(
    _receive_filter(_drop_empty_received)
)


def _drop_empty_sent(message: Message, state: dict[str, Any]) -> Message | None:
    return None if message.get("type") == "websocket.send" and _is_empty(message) else message


mutant("ws-empty-sent-dropped", "send() with '' or b'' writes no frame (a truthiness test)", "ws.send.empty")(
    _send_filter(_drop_empty_sent)
)


def _swap_pairs(message: Message, state: dict[str, Any]) -> list[Message]:
    held = state.pop("held", None)
    if message.get("type") != "websocket.receive":
        return [m for m in (held, message) if m is not None]
    if held is None:
        state["held"] = message
        return []
    return [message, held]


mutant("ws-receive-reordered", "pairs of messages reach the app swapped", "ws.receive.order")(
    _receive_filter(_swap_pairs)
)


def _split(message: Message, state: dict[str, Any]) -> list[Message]:
    text = message.get("text")
    if message.get("type") == "websocket.receive" and isinstance(text, str) and len(text) > 3:
        cut = len(text) // 2
        return [{"type": "websocket.receive", "text": text[:cut]}, {"type": "websocket.receive", "text": text[cut:]}]
    return [message]


mutant(
    "ws-message-split",
    "a text message reaches the app in two events (fragments not reassembled)",
    "ws.receive.fragmented",
    "ws.receive.fragment_with_control",
)(_receive_filter(_split))


def _extra_event(message: Message, state: dict[str, Any]) -> list[Message]:
    if message.get("type") == "websocket.receive" and not state.get("injected"):
        state["injected"] = True
        return [{"type": "websocket.receive", "bytes": b"control"}, message]
    return [message]


mutant(
    "ws-control-frame-to-app",
    "a control frame (ping or pong) also reaches the app as a message",
    "ws.ping.auto_pong",
    "ws.pong.unsolicited",
)(_receive_filter(_extra_event))


def _send_text_as_bytes(message: Message, state: dict[str, Any]) -> Message:
    if message.get("type") == "websocket.send" and isinstance(message.get("text"), str):
        return {"type": "websocket.send", "bytes": message["text"].encode("utf-8")}
    return message


mutant("ws-send-text-as-bytes", "text sends go out as binary frames", "ws.send.text")(_send_filter(_send_text_as_bytes))


def _send_bytes_as_text(message: Message, state: dict[str, Any]) -> Message:
    if message.get("type") == "websocket.send" and isinstance(message.get("bytes"), bytes):
        return {"type": "websocket.send", "text": message["bytes"].decode("latin-1")}
    return message


mutant("ws-send-bytes-as-text", "binary sends go out as text frames", "ws.send.bytes")(
    _send_filter(_send_bytes_as_text)
)


def _key_presence(message: Message, state: dict[str, Any]) -> Message:
    if message.get("type") == "websocket.send" and "text" in message:
        return {"type": "websocket.send", "text": message["text"] or ""}
    return message


mutant(
    "ws-send-key-presence",
    "send() picks text whenever the key is present, even when it is None",
    "ws.send.one_key_none",
)(_send_filter(_key_presence))


def _both_set_lenient(message: Message, state: dict[str, Any]) -> Message:
    if message.get("type") == "websocket.send" and message.get("text") is not None and message.get("bytes") is not None:
        return {"type": "websocket.send", "text": message["text"]}
    return message


mutant(
    "ws-send-both-set-lenient",
    "send() with text and bytes sends the text and does not raise",
    "ws.send.both_set",
    reference="daphne",
)(_send_filter(_both_set_lenient))


def _neither_lenient(message: Message, state: dict[str, Any]) -> Message:
    if message.get("type") == "websocket.send" and message.get("text") is None and message.get("bytes") is None:
        return {"type": "websocket.send", "text": ""}
    return message


mutant("ws-send-neither-lenient", "send() without text or bytes sends an empty text frame", "ws.send.neither")(
    _send_filter(_neither_lenient)
)


def _drop_before_accept(message: Message, state: dict[str, Any]) -> Message | None:
    return None if message.get("type") == "websocket.send" and not state["accepted"] else message


mutant(
    "ws-send-before-accept-dropped",
    "send() before accept returns, and the message is lost",
    "ws.send.before_accept",
)(_send_filter(_drop_before_accept))


LARGE = 64 * 1024


def _truncate_sent(message: Message, state: dict[str, Any]) -> Message:
    for key in ("text", "bytes"):
        value = message.get(key)
        if message.get("type") == "websocket.send" and isinstance(value, str | bytes) and len(value) > LARGE:
            message[key] = value[:LARGE]
    return message


mutant("ws-send-large-truncated", "messages over 64 KiB from the app are cut to 64 KiB", "ws.send.large")(
    _send_filter(_truncate_sent)
)


# §12: close and disconnect


def _close_code_1000(message: Message, state: dict[str, Any]) -> Message:
    if message.get("type") == "websocket.close" and state["accepted"]:
        message["code"] = 1000
    return message


mutant("ws-close-code-ignored", "the app's close code is replaced by 1000", "ws.close.code")(
    _send_filter(_close_code_1000)
)


def _close_default_1001(message: Message, state: dict[str, Any]) -> Message:
    if message.get("type") == "websocket.close" and "code" not in message:
        message["code"] = 1001
    return message


mutant("ws-close-default-1001", "a close without a code goes out as 1001", "ws.close.default_code")(
    _send_filter(_close_default_1001)
)


def _close_reason_dropped(message: Message, state: dict[str, Any]) -> Message:
    if message.get("type") == "websocket.close":
        message.pop("reason", None)
    return message


mutant("ws-close-reason-dropped", "the app's close reason is not sent", "ws.close.reason")(
    _send_filter(_close_reason_dropped)
)


def _close_reason_none(message: Message, state: dict[str, Any]) -> Message:
    if message.get("type") == "websocket.close" and message.get("reason") is None:
        message["reason"] = str(message.get("reason"))
    return message


mutant("ws-close-reason-none-str", "a missing close reason goes out as 'None'", "ws.close.reason_none")(
    _send_filter(_close_reason_none)
)


@mutant(
    "ws-close-stalls",
    "the app's websocket.close after accept never reaches the wire (the connection stays open)",
    "ws.close.reason_too_long",
    "ws.close.invalid_code",
    "ws.close.tcp_teardown",
)
@_websocket_only
def _close_stalls(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        accepted = False

        async def stalling_send(message: Message) -> None:
            nonlocal accepted
            if message.get("type") == "websocket.accept":
                accepted = True
            if message.get("type") == "websocket.close" and accepted:
                await aio.sleep(HOLD)  # bounded: the harness gave up long before
                return
            await send(message)

        await app(scope, receive, stalling_send)

    return mutated


def _data_after_close() -> None:
    from wsproto.events import CloseConnection

    def make(original: Any) -> Any:
        def send(self: Any, event: Any) -> bytes:
            data: bytes = original(self, event)
            if isinstance(event, CloseConnection) and str(getattr(self, "client", "")) != "True":
                data += b"\x81\x04late"
            return data

        return send

    _patch("wsproto", "WSConnection", "send", make)


mutant(
    "ws-data-after-close",
    "the server writes a data frame after its own close frame",
    "ws.close.no_data_after",
    reference="uvicorn-wsproto",
)(_wire(_data_after_close))


def _after_close_hangs(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        closed = False

        async def hanging_send(message: Message) -> None:
            nonlocal closed
            if closed:
                await aio.sleep(HOLD)  # bounded: the harness gave up long before
            if message.get("type") == "websocket.close":
                closed = True
            await send(message)

        await app(scope, receive, hanging_send)

    return mutated


mutant(
    "ws-send-after-close-hangs",
    "send() after the app's own close blocks",
    "ws.close.send_after_close",
)(_websocket_only(_after_close_hangs))


def _close_reply_1000() -> None:
    def make(original: Any) -> Any:
        def response(self: Any) -> Any:
            reply = original(self)
            return type(reply)(code=1000, reason="")

        return response

    _patch("wsproto.events", "CloseConnection", "response", make)


mutant(
    "ws-close-reply-1000",
    "the server answers every client close with 1000, not the client's code",
    "ws.close.reply_to_client",
    reference="uvicorn-wsproto",
)(_wire(_close_reply_1000))


def _disconnect_1006(message: Message, state: dict[str, Any]) -> list[Message]:
    if message.get("type") == "websocket.disconnect":
        message["code"] = 1006
    return [message]


mutant(
    "ws-disconnect-code-1006",
    "websocket.disconnect always carries 1006, whatever the client sent (hypercorn 0.18)",
    "ws.disconnect.client_code",
    "ws.disconnect.no_code",
)(_receive_filter(_disconnect_1006))


@mutant(
    "ws-disconnect-reason-dropped",
    "the scope claims spec 2.5 but websocket.disconnect has no reason",
    "ws.disconnect.client_reason",
)
@_websocket_only
def _disconnect_reason_dropped(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        scope = copy_scope(scope)
        scope["asgi"] = {**dict(scope.get("asgi") or {}), "spec_version": "2.5"}

        async def no_reason() -> Message:
            message = dict(await receive())
            if message.get("type") == "websocket.disconnect":
                message.pop("reason", None)
            return message

        await app(scope, no_reason, send)

    return mutated


@mutant(
    "ws-disconnect-late",
    "websocket.disconnect reaches the app only long after the connection ended",
    "ws.disconnect.prompt",
    "ws.disconnect.abnormal",
    "ws.disconnect.repeat",
    "ws.disconnect.server_initiated",
)
@_websocket_only
def _disconnect_late(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        async def late_receive() -> Message:
            message = await receive()
            if message.get("type") == "websocket.disconnect":
                await aio.sleep(HOLD)  # bounded: the harness gave up long before
            return message

        await app(scope, late_receive, send)

    return mutated


# §13: the denial response extension


def _denial_to_close(message: Message, state: dict[str, Any]) -> Message | None:
    kind = message.get("type")
    if kind == "websocket.http.response.start":
        return {"type": "websocket.close"}
    if kind == "websocket.http.response.body":
        return None
    return message


mutant(
    "ws-denial-becomes-403",
    "a denial response is replaced by a plain 403 (the app's status, headers and body are lost)",
    "ws.denial.start_body",
    "ws.denial.message_shape",
)(_send_filter(_denial_to_close))


mutant(
    "ws-denial-unadvertised",
    "the server honours denial responses but does not list websocket.http.response",
    "ws.denial.advertised",
    "ws.denial.unadvertised",
)(
    _ws_scope(
        lambda s: s.update(
            extensions={k: v for k, v in dict(s.get("extensions") or {}).items() if k != "websocket.http.response"}
        )
    )
)


def _denial_bad_length(message: Message, state: dict[str, Any]) -> Message:
    if message.get("type") == "websocket.http.response.start":
        kept = [(k, v) for k, v in message.get("headers") or () if bytes(k).lower() != b"content-length"]
        message["headers"] = [*kept, (b"content-length", b"5")]
    return message


mutant("ws-denial-bad-length", "the denial goes out with a wrong content-length", "ws.denial.framing")(
    _send_filter(_denial_bad_length)
)


@mutant(
    "ws-denial-held-open",
    "the server never finishes the denial response nor closes the connection",
    "ws.denial.close_after",
    reference="uvicorn-wsproto",  # uvicorn's websockets impl sends the denial before the last chunk
)
@_websocket_only
def _denial_held_open(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        async def held_send(message: Message) -> None:
            if message.get("type") == "websocket.http.response.body" and not message.get("more_body"):
                await send({**message, "more_body": True})
                await aio.sleep(HOLD)  # bounded: the harness gave up long before
                return
            await send(message)

        await app(scope, receive, held_send)

    return mutated


def _ws_after_denial(message: Message, state: dict[str, Any]) -> Message | None:
    return (
        None
        if state["denied"]
        and str(message.get("type")).startswith("websocket.")
        and not str(message.get("type")).startswith("websocket.http.")
        else message
    )


mutant("ws-denial-then-accept-ignored", "websocket.accept after a denial is silently ignored", "ws.denial.no_ws_after")(
    _send_filter(_ws_after_denial)
)


def _denial_after_accept(message: Message, state: dict[str, Any]) -> Message | None:
    if state["accepted"] and str(message.get("type")).startswith("websocket.http.response"):
        return None
    return message


mutant(
    "ws-denial-after-accept-ignored",
    "a denial start after accept is silently ignored",
    "ws.denial.after_accept",
)(_send_filter(_denial_after_accept))


@mutant(
    "ws-denial-stalls-on-odd-status",
    "a denial with a status that does not deny (2xx, 101) is never answered",
    "ws.denial.status_range",
)
@_websocket_only
def _denial_stalls(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        async def stalling_send(message: Message) -> None:
            status = message.get("status")
            if message.get("type") == "websocket.http.response.start" and isinstance(status, int) and status < 300:
                await aio.sleep(HOLD)  # bounded: the harness gave up long before
            await send(message)

        await app(scope, receive, stalling_send)

    return mutated


@mutant(
    "ws-denial-then-connect",
    "after a denial response, receive() returns websocket.connect again",
    "ws.denial.disconnect_event",
)
@_websocket_only
def _denial_then_connect(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        denied = False

        async def watched_send(message: Message) -> None:
            nonlocal denied
            if message.get("type") == "websocket.http.response.body" and not message.get("more_body"):
                denied = True
            await send(message)

        async def replay_receive() -> Message:
            if denied:
                return {"type": "websocket.connect"}
            return await receive()

        await app(scope, replay_receive, watched_send)

    return mutated


# §11: server keepalive pings


def _no_keepalive_ping() -> None:
    async def never_ping(self: Any) -> None:
        return None

    _patch("websockets.legacy.protocol", "WebSocketCommonProtocol", "keepalive_ping", lambda original: never_ping)


mutant(
    "ws-no-keepalive-ping",
    "the server never sends keepalive pings: its ping-interval setting is accepted and ignored",
    "ws.ping.keepalive",
)(_wire(_no_keepalive_ping))


# §12: a close sent while another task awaits receive()

PENDING_POLL = 0.005


def _close_waits_for_receive(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        pending = 0
        accepted = False

        async def counted_receive() -> Message:
            nonlocal pending
            pending += 1
            try:
                return await receive()
            finally:
                pending -= 1

        async def held_send(message: Message) -> None:
            nonlocal accepted
            if message.get("type") == "websocket.accept":
                accepted = True
            if message.get("type") == "websocket.close" and accepted:
                deadline = time.monotonic() + HOLD  # bounded: the harness gave up long before
                while pending and time.monotonic() < deadline:
                    await aio.sleep(PENDING_POLL)
            await send(message)

        await app(scope, counted_receive, held_send)

    return mutated


mutant(
    "ws-close-waits-for-receive",
    "a websocket.close sent while another task awaits receive() is held until that receive() returns "
    "(granian 2.8.7: the close never goes out while the client waits for it)",
    "ws.close.receive_pending",
)(_websocket_only(_close_waits_for_receive))
