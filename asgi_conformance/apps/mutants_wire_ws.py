"""Mutants for suites/test_wire_ws.py: WebSocket rules the server's protocol library keeps.

Frame rules (masking, RSV bits, opcodes, control frames, fragmentation, UTF-8, close
payloads) are enforced below the ASGI app, so most of these mutants patch the reference
server's WebSocket library inside the server process when the mutant wraps the app (at
import of asgi_conformance.apps.serve): ``websockets``' legacy protocol (uvicorn-h11)
or ``wsproto`` and its ``h11`` (uvicorn-wsproto). Each patch raises ``RuntimeError`` if
what it patches is missing, so a mutant never passes silently. Where the bug shows at
the ASGI level (the disconnect code an app is told), a middleware imitates it.
Runs inside the server: standard library only (the patched libraries are the server's).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import importlib
import struct
import weakref
from collections.abc import Callable
from typing import Any

from .mutants import App, Message, Receive, Scope, Send, mutant

__all__: list[str] = []

HOLD = 20.0
"""How long a mutant that waits for the client to drop TCP waits (beyond any harness deadline)."""


def _module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise RuntimeError(f"asgi-conformance mutant: {name} is not importable in this server process") from exc


def _attribute(owner: Any, name: str, what: str) -> Any:
    found = getattr(owner, name, None)
    if found is None:
        raise RuntimeError(f"asgi-conformance mutant: {what} has no {name!r}; cannot patch")
    return found


def _once(owner: Any, key: str, apply: Callable[[], None]) -> None:
    marker = f"_asgi_conformance_{key}"
    if not getattr(owner, marker, False):
        apply()
        setattr(owner, marker, True)


# -- websockets (legacy protocol, used by uvicorn --ws websockets) -----------------------------

Header = tuple[int, int, bool]
"""(first byte, second byte, whether the server expects a mask) -> rewritten the same way."""


class _Stream:
    """What a header rewrite knows about one connection: whether a fragmented message is open."""

    def __init__(self) -> None:
        self.in_message = False


def _legacy_frame() -> Any:
    framing = _module("websockets.legacy.framing")
    return _attribute(framing, "Frame", "websockets.legacy.framing")


def _rewrite_headers(key: str, change: Callable[[_Stream, int, int, bool], Header], *, limitless: bool = False) -> None:
    """Patch ``websockets.legacy.framing.Frame.read`` to rewrite each frame header before it is parsed.

    ``change(stream, head1, head2, mask)`` returns the header bytes and the ``mask`` argument
    to parse them with; ``limitless`` drops the frame size limit.
    """
    frame_class = _legacy_frame()
    original = _attribute(frame_class, "read", "websockets.legacy.framing.Frame").__func__
    streams: weakref.WeakKeyDictionary[Any, _Stream] = weakref.WeakKeyDictionary()

    async def read(
        cls: Any, reader: Callable[[int], Any], *, mask: bool, max_size: int | None = None, extensions: Any = None
    ) -> Any:
        owner = getattr(reader, "__self__", None)
        stream = streams.setdefault(owner, _Stream()) if owner is not None else _Stream()
        data = await reader(2)
        head1, head2, mask = change(stream, data[0], data[1], mask)
        pending = [bytes([head1, head2])]

        async def replay(n: int) -> bytes:
            if pending:
                return pending.pop()
            return bytes(await reader(n))

        frame = await original(cls, replay, mask=mask, max_size=None if limitless else max_size, extensions=extensions)
        opcode = head1 & 0xF
        if opcode in (0x1, 0x2):
            stream.in_message = not (head1 & 0x80)
        elif opcode == 0x0 and head1 & 0x80:
            stream.in_message = False
        return frame

    _once(frame_class, key, lambda: setattr(frame_class, "read", classmethod(read)))


def _websockets_patch(
    change: Callable[[_Stream, int, int, bool], Header], key: str, **options: bool
) -> Callable[[App], App]:
    def wrap(app: App) -> App:
        _rewrite_headers(key, change, **options)
        return app

    return wrap


@mutant(
    "wsw-accepts-unmasked",
    "the server takes an unmasked client frame as if it were masked (no check of the MASK bit)",
    "wire.ws.frame.client_unmasked",
)
def _accepts_unmasked(app: App) -> App:
    def change(stream: _Stream, head1: int, head2: int, mask: bool) -> Header:
        return head1, head2, bool(head2 & 0x80) if mask else mask

    return _websockets_patch(change, "unmasked")(app)


@mutant(
    "wsw-ignores-rsv",
    "the server ignores RSV bits no extension defined",
    "wire.ws.frame.rsv_bits",
)
def _ignores_rsv(app: App) -> App:
    def change(stream: _Stream, head1: int, head2: int, mask: bool) -> Header:
        return head1 & 0x8F, head2, mask

    return _websockets_patch(change, "rsv")(app)


@mutant(
    "wsw-reserved-opcode-as-data",
    "the server takes reserved opcodes as binary data (0x3-0x7) or as pongs (0xB-0xF)",
    "wire.ws.frame.reserved_opcode",
)
def _reserved_opcode(app: App) -> App:
    def change(stream: _Stream, head1: int, head2: int, mask: bool) -> Header:
        opcode = head1 & 0xF
        if 0x3 <= opcode <= 0x7:
            head1 = (head1 & 0xF0) | 0x2
        elif opcode >= 0xB:
            head1 = (head1 & 0xF0) | 0xA
        return head1, head2, mask

    return _websockets_patch(change, "opcode")(app)


@mutant(
    "wsw-control-frames-unchecked",
    "the server neither checks FIN on control frames nor their 125-byte limit",
    "wire.ws.frame.control_fragmented",
    "wire.ws.frame.control_too_long",
)
def _control_unchecked(app: App) -> App:
    frames = _module("websockets.frames")
    frame_class = _attribute(frames, "Frame", "websockets.frames")
    original = _attribute(frame_class, "check", "websockets.frames.Frame")

    def check(self: Any) -> None:
        if self.opcode in (frames.Opcode.PING, frames.Opcode.PONG):
            return
        original(self)

    def change(stream: _Stream, head1: int, head2: int, mask: bool) -> Header:
        return (head1 | 0x80 if head1 & 0x8 else head1), head2, mask

    _once(frame_class, "control", lambda: setattr(frame_class, "check", check))
    return _websockets_patch(change, "control")(app)


@mutant(
    "wsw-lax-fragments",
    "the server takes an orphan continuation as a new message and a new data frame as a continuation",
    "wire.ws.frame.orphan_continuation",
    "wire.ws.frame.interleaved_data",
)
def _lax_fragments(app: App) -> App:
    def change(stream: _Stream, head1: int, head2: int, mask: bool) -> Header:
        opcode = head1 & 0xF
        if opcode == 0x0 and not stream.in_message:
            head1 = (head1 & 0xF0) | 0x2
        elif opcode in (0x1, 0x2) and stream.in_message:
            head1 = head1 & 0xF0
        return head1, head2, mask

    return _websockets_patch(change, "fragments")(app)


@mutant(
    "wsw-no-size-limit",
    "the server has no frame size limit and waits for the payload a 2**63 length announces",
    "wire.ws.frame.len64_msb",
)
def _no_size_limit(app: App) -> App:
    def change(stream: _Stream, head1: int, head2: int, mask: bool) -> Header:
        return head1, head2, mask

    return _websockets_patch(change, "limitless", limitless=True)(app)


@mutant(
    "wsw-utf8-replaced",
    "the server decodes invalid UTF-8 in text frames with replacement characters instead of failing",
    "wire.ws.utf8.text",
    "wire.ws.utf8.text_split",
)
def _utf8_replaced(app: App) -> App:
    frame_class = _legacy_frame()
    original = _attribute(frame_class, "read", "websockets.legacy.framing.Frame").__func__

    async def read(cls: Any, /, reader: Any, **options: Any) -> Any:
        frame = await original(cls, reader, **options)
        if frame.opcode in (0x0, 0x1):
            fixed = codecs.decode(bytes(frame.data), "utf-8", "replace").encode()
            frame = cls(frame.fin, frame.opcode, fixed, frame.rsv1, frame.rsv2, frame.rsv3)
        return frame

    _once(frame_class, "utf8", lambda: setattr(frame_class, "read", classmethod(read)))
    return app


@mutant(
    "wsw-lenient-close-payload",
    "the server takes any close payload as an ordinary close (1-byte payload, any code, any reason) and echoes it",
    "wire.ws.utf8.close_reason",
    "wire.ws.close.one_byte_payload",
    "wire.ws.close.invalid_code_received",
)
def _lenient_close(app: App) -> App:
    frames = _module("websockets.frames")
    close_class = _attribute(frames, "Close", "websockets.frames")
    _attribute(close_class, "parse", "websockets.frames.Close")

    def parse(cls: Any, data: bytes) -> Any:
        if len(data) >= 2:
            (code,) = struct.unpack("!H", data[:2])
            return cls(code, bytes(data[2:]).decode("utf-8", "replace"))
        return cls(1000 if data else 1005, "")

    _once(close_class, "lenient", lambda: setattr(close_class, "parse", classmethod(parse)))
    return app


def _protocol_class() -> Any:
    protocol = _module("websockets.legacy.protocol")
    return _attribute(protocol, "WebSocketCommonProtocol", "websockets.legacy.protocol")


@mutant(
    "wsw-pong-empty",
    "the server answers every ping with an empty pong",
    "wire.ws.ping.pong_payload",
    "wire.ws.frame.control_mid_message",
)
def _pong_empty(app: App) -> App:
    protocol = _protocol_class()
    original = _attribute(protocol, "pong", "WebSocketCommonProtocol")

    async def pong(self: Any, data: Any = b"") -> None:
        await original(self, b"")

    _once(protocol, "pong", lambda: setattr(protocol, "pong", pong))
    return app


@mutant(
    "wsw-pong-unsolicited-fails",
    "the server fails the connection on a pong it did not ask for (as on a reserved opcode)",
    "wire.ws.pong.unsolicited",
)
def _pong_fails(app: App) -> App:
    def change(stream: _Stream, head1: int, head2: int, mask: bool) -> Header:
        return ((head1 & 0xF0) | 0xB if head1 & 0xF == 0xA else head1), head2, mask

    return _websockets_patch(change, "pong_fails")(app)


@mutant(
    "wsw-masks-frames",
    "the server masks the frames it sends",
    "wire.ws.frame.server_unmasked",
)
def _masks_frames(app: App) -> App:
    frame_class = _legacy_frame()
    original = _attribute(frame_class, "write", "websockets.legacy.framing.Frame")

    def write(self: Any, write: Any, *, mask: bool, extensions: Any = None) -> Any:
        return original(self, write, mask=True, extensions=extensions)

    _once(frame_class, "mask", lambda: setattr(frame_class, "write", write))
    return app


@mutant(
    "wsw-close-unanswered",
    "the server does not answer a client's close frame (it only stops reading)",
    "wire.ws.close.reply",
)
def _close_unanswered(app: App) -> App:
    protocol = _protocol_class()
    original = _attribute(protocol, "write_close_frame", "WebSocketCommonProtocol")
    state_enum = _attribute(_module("websockets.protocol"), "State", "websockets.protocol")

    async def write_close_frame(self: Any, close: Any, data: Any = None) -> None:
        if self.close_rcvd is not None and self.state is state_enum.OPEN:
            self.state = state_enum.CLOSING
            self.close_sent = close
            return
        await original(self, close, data)

    _once(protocol, "unanswered", lambda: setattr(protocol, "write_close_frame", write_close_frame))
    return app


@mutant(
    "wsw-data-after-close",
    "the server writes a buffered text frame after its close frame",
    "wire.ws.close.no_data_after_close",
)
def _data_after_close(app: App) -> App:
    protocol = _protocol_class()
    original = _attribute(protocol, "write_close_frame", "WebSocketCommonProtocol")

    async def write_close_frame(self: Any, close: Any, data: Any = None) -> None:
        await original(self, close, data)
        with contextlib.suppress(Exception):
            self.transport.write(b"\x81\x0bafter close")

    _once(protocol, "after", lambda: setattr(protocol, "write_close_frame", write_close_frame))
    return app


@mutant(
    "wsw-waits-for-client-fin",
    "after the closing handshake the server waits for the client to close TCP first",
    "wire.ws.close.server_drops_tcp_first",
)
def _waits_for_client(app: App) -> App:
    protocol = _protocol_class()
    original = _attribute(protocol, "close_connection", "WebSocketCommonProtocol")

    async def close_connection(self: Any) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(self.connection_lost_waiter), HOLD)
        await original(self)

    _once(protocol, "waits", lambda: setattr(protocol, "close_connection", close_connection))
    return app


# -- wsproto and its h11 (uvicorn --ws wsproto) ---------------------------------------------------


@mutant(
    "wsw-wrong-accept",
    "the server computes Sec-WebSocket-Accept without the RFC 6455 GUID",
    "wire.ws.hs.accept_key",
    reference="uvicorn-wsproto",
)
def _wrong_accept(app: App) -> App:
    handshake = _module("wsproto.handshake")
    _attribute(handshake, "generate_accept_token", "wsproto.handshake")

    def generate_accept_token(token: bytes) -> bytes:
        import base64
        import hashlib

        return base64.b64encode(hashlib.sha1(token).digest())

    _once(handshake, "accept", lambda: setattr(handshake, "generate_accept_token", generate_accept_token))
    return app


def _h11_send(key: str, change: Callable[[Any, Any], Any]) -> None:
    """Patch ``h11.Connection.send`` (wsproto's handshake writes through it) to change events."""
    h11 = _module("h11")
    connection = _attribute(h11, "Connection", "h11")
    original = _attribute(connection, "send", "h11.Connection")

    def send(self: Any, event: Any) -> Any:
        return original(self, change(h11, event))

    _once(connection, key, lambda: setattr(connection, "send", send))


def _with_headers(h11: Any, event: Any, headers: list[tuple[bytes, bytes]]) -> Any:
    kind = type(event)
    return kind(status_code=event.status_code, headers=headers, reason=event.reason, http_version=b"1.1")


@mutant(
    "wsw-101-without-connection",
    "the server's 101 lacks the Connection: Upgrade header",
    "wire.ws.hs.101_headers",
    reference="uvicorn-wsproto",
)
def _101_without_connection(app: App) -> App:
    def change(h11: Any, event: Any) -> Any:
        if isinstance(event, h11.InformationalResponse) and event.status_code == 101:
            return _with_headers(h11, event, [(k, v) for k, v in event.headers if k.lower() != b"connection"])
        return event

    _h11_send("no_connection", change)
    return app


@mutant(
    "wsw-unoffered-extension",
    "the server answers with permessage-deflate although the client offered no extension",
    "wire.ws.hs.extensions_from_offer",
    reference="uvicorn-wsproto",
)
def _unoffered_extension(app: App) -> App:
    def change(h11: Any, event: Any) -> Any:
        if isinstance(event, h11.InformationalResponse) and event.status_code == 101:
            headers = [*event.headers, (b"sec-websocket-extensions", b"permessage-deflate")]
            return _with_headers(h11, event, headers)
        return event

    _h11_send("extension", change)
    return app


@mutant(
    "wsw-version-unlisted",
    "the server refuses an unsupported version without listing Sec-WebSocket-Version",
    "wire.ws.hs.version",
    reference="uvicorn-wsproto",
)
def _version_unlisted(app: App) -> App:
    def change(h11: Any, event: Any) -> Any:
        if isinstance(event, h11.Response) and 400 <= event.status_code < 500:
            headers = [(k, v) for k, v in event.headers if k.lower() != b"sec-websocket-version"]
            return _with_headers(h11, event, headers)
        return event

    _h11_send("version", change)
    return app


@mutant(
    "wsw-any-method",
    "the server starts a WebSocket for any method (it checks only the upgrade headers)",
    "wire.ws.hs.get_http11",
    reference="uvicorn-wsproto",
)
def _any_method(app: App) -> App:
    h11 = _module("h11")
    connection = _attribute(h11, "Connection", "h11")
    original = _attribute(connection, "receive_data", "h11.Connection")

    def receive_data(self: Any, data: bytes) -> None:
        if data and bytes(data[:5]) == b"POST ":
            data = b"GET " + bytes(data[5:])
        original(self, data)

    _once(connection, "any_method", lambda: setattr(connection, "receive_data", receive_data))
    return app


@mutant(
    "wsw-key-unchecked",
    "the server accepts a Sec-WebSocket-Key that is not base64 of 16 bytes",
    "wire.ws.hs.bad_key",
)
def _key_unchecked(app: App) -> App:
    handshake = _module("websockets.legacy.handshake")
    original = _attribute(handshake, "check_request", "websockets.legacy.handshake")

    def check_request(headers: Any) -> str:
        if "Sec-WebSocket-Key" in headers:
            del headers["Sec-WebSocket-Key"]
            headers["Sec-WebSocket-Key"] = "dGhlIHNhbXBsZSBub25jZQ=="
        return str(original(headers))

    _once(handshake, "key", lambda: setattr(handshake, "check_request", check_request))
    return app


@mutant(
    "wsw-deflate-not-inflated",
    "the server negotiates permessage-deflate but hands compressed payloads on without inflating them",
    "wire.ws.deflate",
    reference="uvicorn-wsproto",
)
def _deflate_not_inflated(app: App) -> App:
    extensions = _module("wsproto.extensions")
    deflate = _attribute(extensions, "PerMessageDeflate", "wsproto.extensions")
    _attribute(deflate, "frame_inbound_payload_data", "wsproto.extensions.PerMessageDeflate")

    def frame_inbound_payload_data(self: Any, proto: Any, data: bytes) -> bytes:
        return data

    def frame_inbound_complete(self: Any, proto: Any, fin: bool) -> None:
        if fin:
            self._inbound_compressed = None

    def apply() -> None:
        deflate.frame_inbound_payload_data = frame_inbound_payload_data
        deflate.frame_inbound_complete = frame_inbound_complete

    _once(deflate, "inflate", apply)
    return app


# -- ASGI level ------------------------------------------------------------------------------


@mutant(
    "wsw-drop-reported-as-1000",
    "the app is told websocket.disconnect code 1000 (normal closure) after a TCP drop",
    "wire.ws.close.tcp_drop",
)
def _drop_as_1000(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "websocket":
            await app(scope, receive, send)
            return

        async def lying_receive() -> Message:
            message = await receive()
            if message.get("type") == "websocket.disconnect":
                return {**message, "code": 1000}
            return message

        await app(scope, lying_receive, send)

    return mutated


LIMIT = 16 * 1024 * 1024


@mutant(
    "wsw-truncates-big-messages",
    "the server has no frame size check and cuts a message above 16 MiB to its limit instead of failing",
    "wire.ws.too_big",
)
def _truncates(app: App) -> App:
    def change(stream: _Stream, head1: int, head2: int, mask: bool) -> Header:
        return head1, head2, mask

    _rewrite_headers("truncate", change, limitless=True)

    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "websocket":
            await app(scope, receive, send)
            return

        async def cutting_receive() -> Message:
            message = await receive()
            data = message.get("bytes")
            if message.get("type") == "websocket.receive" and isinstance(data, bytes) and len(data) > LIMIT:
                return {**message, "bytes": data[:LIMIT]}
            return message

        await app(scope, cutting_receive, send)

    return mutated


@mutant(
    "wsw-subprotocols-merged",
    "the server names every offered subprotocol in the 101 instead of the one the app chose",
    "wire.ws.hs.subprotocol_from_offer",
)
def _subprotocols_merged(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "websocket":
            await app(scope, receive, send)
            return
        offered = [str(s) for s in scope.get("subprotocols") or []]

        async def merging_send(message: Message) -> None:
            if message.get("type") == "websocket.accept" and message.get("subprotocol") and offered:
                message = {**message, "subprotocol": ", ".join(offered)}
            await send(message)

        await app(scope, receive, merging_send)

    return mutated


@mutant(
    "wsw-deflate-unoffered-param",
    "the server's permessage-deflate answer names client_max_window_bits though the offer did not",
    "wire.ws.deflate_negotiation",
    reference="uvicorn-wsproto",
)
def _deflate_unoffered_param(app: App) -> App:
    def change(h11: Any, event: Any) -> Any:
        if isinstance(event, h11.InformationalResponse) and event.status_code == 101:
            headers = [
                (k, v + b"; client_max_window_bits=15" if k.lower() == b"sec-websocket-extensions" else v)
                for k, v in event.headers
            ]
            return _with_headers(h11, event, headers)
        return event

    _h11_send("deflate_param", change)
    return app
