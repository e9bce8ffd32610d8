"""A small WebSocket client over real sockets, with wsproto as the protocol engine.

The harness opens a socket to a ``client.Address`` (TCP or Unix socket; ``wss`` when the
address carries a TLS context, ``Address.tls``, see asgi_conformance.tls), performs the
opening handshake, and then exchanges messages one at a time, every wait bounded by a
deadline. Everything the target sends is untrusted: reads are bounded in size and
time, and any protocol error becomes an outcome, never an exception.

The handshake ends in exactly one outcome:

``Accepted``   101 Switching Protocols (headers, subprotocol, extensions)
``Denied``     an HTTP response instead of a 101 (status, headers, body)
``Closed``     the server closed the connection before a complete response
``Reset``      the connection was reset
``Timeout``    no complete response before the deadline
``Malformed``  bytes that are not a valid handshake response (or too many)
``Refused``    no connection at all

After an ``Accepted`` handshake, ``receive`` returns the next event from the server:

``Text`` / ``Binary``   a complete message (fragments reassembled)
``CloseFrame``          the server's close frame (code, reason); the client answers it
``Closed``              the TCP connection ended without a close frame
``Reset`` / ``Timeout`` / ``Malformed``   as above

Pings from the server are answered with pongs and noted in the transcript. A
``WebSocket`` writes its transcript into the current cell's trace like
``client.Connection`` does. ``send_raw`` writes bytes as they are, bypassing wsproto.

The raw layer (issue 5, wire-level cases) does without wsproto: ``RawWebSocket`` sends
its own handshake (any method, key, version, extension offer) and reads the answer's
head as bytes, then writes frames byte-exact with ``encode_frame`` (FIN/RSV bits,
any opcode, masked or not, any length form, even a length that lies) and reads the
server's frames back raw with a bounded decoder (``FrameParser``), so a case sees the
MASK bit, the RSV bits and the close code exactly as sent. ``deflate_message`` and
``Inflater`` implement the client side of permessage-deflate (RFC 7692).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import select
import socket
import struct
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from .client import Address, Closed, Malformed, Refused, Reset, Timeout
from .timing import Deadline
from .verdicts import current_cell

__all__ = [
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONTINUATION",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "RSV1",
    "RSV2",
    "RSV3",
    "Accepted",
    "Binary",
    "CloseFrame",
    "Denied",
    "Event",
    "Frame",
    "FrameError",
    "FrameParser",
    "HandshakeOutcome",
    "Inflater",
    "RawEnd",
    "RawResponse",
    "RawWebSocket",
    "Text",
    "WebSocket",
    "accept_token",
    "close_payload",
    "deflate_message",
    "describe",
    "describe_raw",
    "encode_frame",
]

MAX_HANDSHAKE_BYTES = 1024 * 1024
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
MAX_RECEIVED_BYTES = 64 * 1024 * 1024
TRACE_ITEM = 200
TRACE_LINES = 100


@dataclass(frozen=True)
class Accepted:
    """The server completed the handshake with a 101."""

    headers: tuple[tuple[bytes, bytes], ...]
    subprotocol: str | None
    extensions: tuple[str, ...] = ()
    status: int = 101

    def header(self, name: bytes) -> bytes | None:
        """The first value of extra header ``name`` (case-insensitive), or None.

        wsproto keeps back ``Connection``, ``Upgrade``, ``Sec-WebSocket-Accept``,
        ``-Protocol`` and ``-Extensions``: see ``subprotocol`` and ``extensions``.
        """
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None


@dataclass(frozen=True)
class Denied:
    """The server answered the handshake with an HTTP response other than 101."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    complete: bool = True
    """False when the connection ended before the body was complete."""


@dataclass(frozen=True)
class Text:
    data: str


@dataclass(frozen=True)
class Binary:
    data: bytes


@dataclass(frozen=True)
class CloseFrame:
    """A close frame from the server. ``code`` is None for a close frame without payload."""

    code: int | None
    reason: str = ""


HandshakeOutcome = Accepted | Denied | Closed | Reset | Timeout | Malformed | Refused
Event = Text | Binary | CloseFrame | Closed | Reset | Timeout | Malformed | Refused


def describe(outcome: object) -> str:
    """A short human description of a handshake outcome or an event."""
    if isinstance(outcome, Accepted):
        return f"accepted (101, subprotocol {outcome.subprotocol!r})"
    if isinstance(outcome, Denied):
        cut = "" if outcome.complete else ", cut short"
        return f"denied: HTTP {outcome.status} ({len(outcome.body)} body bytes{cut})"
    if isinstance(outcome, Text):
        return f"text {_cut(outcome.data)}"
    if isinstance(outcome, Binary):
        return f"binary {_cut(outcome.data)}"
    if isinstance(outcome, CloseFrame):
        return (
            "close frame without a code" if outcome.code is None else f"close frame {outcome.code} {outcome.reason!r}"
        )
    if isinstance(outcome, Malformed):
        return f"malformed ({outcome.error})"
    if isinstance(outcome, Refused):
        return f"connection refused ({outcome.error})"
    if isinstance(outcome, Closed):
        if outcome.received:
            return f"closed after {len(outcome.received)} bytes"
        return "TCP closed without a close frame"
    if isinstance(outcome, Reset | Timeout):
        extra = f" after {len(outcome.received)} bytes" if outcome.received else ""
        return f"{type(outcome).__name__.lower()}{extra}"
    return repr(outcome)


def _cut(value: str | bytes) -> str:
    shown = repr(value[:TRACE_ITEM])
    return shown + (f" ... ({len(value)} in all)" if len(value) > TRACE_ITEM else "")


def _bytes(value: str | bytes) -> bytes:
    return value.encode("latin-1") if isinstance(value, str) else value


@dataclass
class _Message:
    """A message being reassembled from fragments."""

    kind: type[Text] | type[Binary] | None = None
    parts: list[str | bytes] = field(default_factory=list)
    size: int = 0


class _SocketIO:
    """Bounded socket writes and reads, and the transcript, shared by both clients."""

    sock: socket.socket | None
    timeout: float
    _closed: bool
    _lines: list[str]

    def _write(self, data: bytes) -> Closed | Reset | Malformed | None:
        if self.sock is None or self._closed:
            return Closed()
        try:
            self.sock.settimeout(self.timeout)
            self.sock.sendall(data)
        except (ConnectionResetError, BrokenPipeError):
            return Reset()
        except TimeoutError:
            return Malformed("the server did not read what the client wrote")
        except OSError as exc:
            return Malformed(f"{type(exc).__name__}: {exc}")
        return None

    def _recv(self, deadline: Deadline) -> bytes | Closed | Reset | Timeout | Malformed:
        """At most 64 KiB, or b"" at EOF, before the deadline."""
        if self.sock is None or self._closed:
            return Closed()
        if deadline.expired:
            return Timeout()
        try:
            self.sock.settimeout(max(deadline.remaining(), 0.001))
            return self.sock.recv(65536)
        except TimeoutError:
            return Timeout()
        except ConnectionResetError:
            return Reset()
        except OSError as exc:
            return Malformed(f"{type(exc).__name__}: {exc}")

    def _note(self, line: str) -> None:
        if len(self._lines) < TRACE_LINES:
            self._lines.append(line)
        elif len(self._lines) == TRACE_LINES:
            self._lines.append("... (trace cut)")


class WebSocket(_SocketIO):
    """One WebSocket client connection to ``address``.

    Use as a context manager (the socket is closed on exit)::

        with WebSocket(server.address, server.timeouts.request) as ws:
            outcome = ws.handshake("/app/ws-echo/" + token)
            if isinstance(outcome, Accepted):
                ws.send_text("hello")
                event = ws.receive()

    ``timeout`` is the default deadline of every wait; each call can pass its own.
    """

    def __init__(self, address: Address, timeout: float, *, record: bool = True) -> None:
        self.address = address
        self.timeout = timeout
        self.record = record
        self.sock: socket.socket | None = None
        self.refused: Refused | None = None
        self.accepted: Accepted | None = None
        self.accepted_at: float | None = None
        """``time.monotonic()`` when the 101 was parsed."""
        self.eof = False
        self.trailing = b""
        """Bytes that came after a complete denial response."""
        self._protocol = WSConnection(ConnectionType.CLIENT)
        self._pending: list[Event] = []
        self._message = _Message()
        self._received = 0
        self._closed = False
        self._lines: list[str] = []
        try:
            self.sock = address.connect(timeout)
        except OSError as exc:
            self.refused = Refused(f"{type(exc).__name__}: {exc}")
        self._note(f"ws connect {address}" + (f": {self.refused.error}" if self.refused else ""))

    def __enter__(self) -> WebSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close_socket()

    # -- handshake ----------------------------------------------------------------------

    def handshake(
        self,
        path: str,
        *,
        subprotocols: Iterable[str] = (),
        headers: Iterable[tuple[str | bytes, str | bytes]] = (),
        host: str = "127.0.0.1",
        timeout: float | None = None,
    ) -> HandshakeOutcome:
        """Send the opening handshake for ``path`` and read the answer.

        ``subprotocols`` are offered in one ``Sec-WebSocket-Protocol`` header;
        ``headers`` are added as given (name case kept by wsproto's h11).
        """
        if self.refused is not None:
            return self.refused
        request = Request(
            host=host,
            target=path,
            subprotocols=list(subprotocols),
            extra_headers=[(_bytes(k), _bytes(v)) for k, v in headers],
        )
        data = self._protocol.send(request)
        self._note(f"> {_cut(data)}")
        failed = self._write(data)
        outcome: HandshakeOutcome
        if failed is None:
            outcome = self._read_handshake(Deadline(self.timeout if timeout is None else timeout))
        else:
            outcome = failed
        self._note(f"= {describe(outcome)}")
        return outcome

    def _read_handshake(self, deadline: Deadline) -> HandshakeOutcome:
        received = bytearray()
        self._denied: Denied | None = None
        self._body = bytearray()
        while True:
            try:
                found = self._handshake_events()
            except RemoteProtocolError as exc:
                found = Malformed(str(exc), bytes(received))
            if found is None and self.eof:
                found = self._at_eof(received)
            if found is not None:
                self._note(f"< {_cut(bytes(received))}")
                if isinstance(found, Denied) and found.complete:
                    self.trailing = self._trailing(received, found)
                return found
            data = self._recv(deadline)
            if not isinstance(data, bytes):
                self._note(f"< {_cut(bytes(received))}")
                if isinstance(data, Closed | Reset | Timeout):
                    return type(data)(bytes(received))
                return data
            if len(received) + len(data) > MAX_HANDSHAKE_BYTES:
                return Malformed(f"handshake response larger than {MAX_HANDSHAKE_BYTES} bytes", bytes(received))
            received += data
            self.eof = not data
            try:
                self._protocol.receive_data(data or None)
            except RemoteProtocolError as exc:
                # wsproto raises on the first byte it cannot take, after queueing the events
                # before it: a denial that was complete stands, and the rest is ``trailing``.
                complete = self._handshake_events()
                if complete is None and self.eof:
                    complete = self._at_eof(received)
                self._note(f"< {_cut(bytes(received))}")
                if isinstance(complete, Denied) and complete.complete:
                    self.trailing = self._trailing(received, complete)
                    return complete
                if complete is not None:
                    return complete
                return Malformed(str(exc), bytes(received))

    def _handshake_events(self) -> HandshakeOutcome | None:
        """The handshake's outcome once wsproto's queued events complete it, else None."""
        for event in self._protocol.events():
            if isinstance(event, AcceptConnection):
                self.accepted = Accepted(
                    headers=tuple((bytes(k), bytes(v)) for k, v in event.extra_headers),
                    subprotocol=event.subprotocol,
                    extensions=tuple(str(e.name) for e in event.extensions),
                )
                self.accepted_at = time.monotonic()
                return self.accepted
            if isinstance(event, RejectConnection):
                self._denied = Denied(event.status_code, tuple((bytes(k), bytes(v)) for k, v in event.headers), b"")
                if not event.has_body:
                    return self._denied
            elif isinstance(event, RejectData) and self._denied is not None:
                self._body += event.data
                if event.body_finished:
                    return Denied(self._denied.status, self._denied.headers, bytes(self._body))
        return None

    def _trailing(self, received: bytearray, denied: Denied) -> bytes:
        """The bytes received after a complete denial response."""
        h11_connection: Any = getattr(getattr(self._protocol, "handshake", None), "_h11_connection", None)
        kept = getattr(h11_connection, "trailing_data", (b"", False))[0]
        if kept:
            return bytes(kept)
        head_end = received.find(b"\r\n\r\n")  # the parser gave up: head + Content-Length body
        return bytes(received[head_end + 4 :])[len(denied.body) :] if head_end >= 0 else b""

    def _at_eof(self, received: bytearray) -> HandshakeOutcome:
        """The outcome when the server closed before the handshake completed."""
        if self._denied is not None:
            return Denied(self._denied.status, self._denied.headers, bytes(self._body), complete=False)
        return Closed(bytes(received))

    def read_rest(self, timeout: float) -> tuple[bytes, Closed | Reset | Timeout | Malformed]:
        """After a denial: what else the server sends until it ends the connection.

        Returns the bytes after the denial's response (those that came with it
        included) and how the wait ended: ``Closed`` (EOF), ``Reset``, or ``Timeout``.
        """
        rest = bytearray(self.trailing)
        deadline = Deadline(timeout)
        while not self.eof:
            data = self._recv(deadline)
            if not isinstance(data, bytes):
                self._note(f"< after the response: {_cut(bytes(rest))}; {describe(data)}")
                return bytes(rest), data
            if not data:
                break
            rest += data
            if len(rest) > MAX_HANDSHAKE_BYTES:
                return bytes(rest), Malformed(f"more than {MAX_HANDSHAKE_BYTES} bytes after the response")
        self.eof = True
        if rest:
            self._note(f"< after the response: {_cut(bytes(rest))}")
        return bytes(rest), Closed()

    # -- messages -----------------------------------------------------------------------

    def send_text(self, data: str) -> Closed | Reset | Malformed | None:
        """Send one text message; None when written, else what the socket said."""
        self._note(f"> text {_cut(data)}")
        return self._send_event(TextMessage(data=data))

    def send_bytes(self, data: bytes) -> Closed | Reset | Malformed | None:
        """Send one binary message; None when written, else what the socket said."""
        self._note(f"> binary {_cut(data)}")
        return self._send_event(BytesMessage(data=data))

    def send_close(self, code: int = 1000, reason: str = "") -> Closed | Reset | Malformed | None:
        """Send a close frame (the closing handshake starts; ``receive`` reads the reply)."""
        self._note(f"> close {code} {reason!r}")
        return self._send_event(CloseConnection(code=code, reason=reason))

    def send_raw(self, data: bytes) -> Closed | Reset | Malformed | None:
        """Write ``data`` as it is (raw frames); wsproto's state does not change."""
        self._note(f"> raw {_cut(data)}")
        return self._write(data)

    def _send_event(
        self, event: TextMessage | BytesMessage | CloseConnection | Pong
    ) -> Closed | Reset | Malformed | None:
        try:
            data = self._protocol.send(event)
        except LocalProtocolError as exc:
            return Malformed(f"cannot send in state {self._protocol.state.name}: {exc}")
        return self._write(data)

    def receive(self, timeout: float | None = None) -> Event:
        """The next message or close from the server, waiting up to ``timeout`` seconds.

        A close frame is answered with a close frame (if the client had not sent
        one); a ``Timeout`` leaves any partial message pending for the next call.
        """
        if self.refused is not None:
            return self.refused
        if self.accepted is None:
            return Malformed("receive() before an accepted handshake")
        deadline = Deadline(self.timeout if timeout is None else timeout)
        if not self._pending and self._protocol.state is not ConnectionState.CLOSED:
            self._drain()  # frames that came with the 101
        while True:
            if self._pending:
                event = self._pending.pop(0)
                self._note(f"< {describe(event)}")
                return event
            if self.eof or self._protocol.state is ConnectionState.CLOSED:
                return Closed()
            data = self._recv(deadline)
            if not isinstance(data, bytes):
                self._note(f"< {describe(data)}")
                return data
            if not data:
                self.eof = True
            if self._received + len(data) > MAX_RECEIVED_BYTES:
                return Malformed(f"more than {MAX_RECEIVED_BYTES} bytes received")
            self._received += len(data)
            self._feed(data)

    def _feed(self, data: bytes) -> None:
        """Hand bytes (b"" for EOF) to wsproto and queue what they made."""
        if not data:
            if self._protocol.state is ConnectionState.CLOSED:
                return
            # wsproto reports EOF as a 1006 close; here it is the plain outcome.
            self._protocol.receive_data(None)
            list(self._protocol.events())
            self._pending.append(Closed())
            return
        try:
            self._protocol.receive_data(data)
        except LocalProtocolError as exc:
            self._pending.append(Malformed(f"data after the connection closed: {exc}"))
            return
        self._drain()

    def _drain(self) -> None:
        """Queue the events wsproto has made (answering pings and close frames)."""
        for event in self._protocol.events():
            if isinstance(event, CloseConnection):
                if self._protocol.state in (ConnectionState.OPEN, ConnectionState.LOCAL_CLOSING):
                    # wsproto turns a frame it cannot parse into a close event without a state change.
                    self._pending.append(Malformed(f"invalid frame: {event.reason} (would close {event.code})"))
                    return
                code = None if event.code == 1005 else int(event.code)
                self._pending.append(CloseFrame(code, event.reason or ""))
                if self._protocol.state is ConnectionState.REMOTE_CLOSING:
                    self._note(f"> close reply {event.code}")
                    self._send_event(event.response())
                return
            if isinstance(event, Ping):
                self._note(f"< ping {_cut(bytes(event.payload))}")
                self._send_event(event.response())
            elif isinstance(event, Pong):
                self._note(f"< pong {_cut(bytes(event.payload))}")
            elif isinstance(event, TextMessage | BytesMessage):
                message = self._message
                kind = Text if isinstance(event, TextMessage) else Binary
                message.kind = message.kind or kind
                message.parts.append(event.data if isinstance(event.data, str) else bytes(event.data))
                message.size += len(event.data)
                if message.size > MAX_MESSAGE_BYTES:
                    self._pending.append(Malformed(f"a message larger than {MAX_MESSAGE_BYTES} bytes"))
                    return
                if event.message_finished:
                    if message.kind is Text:
                        self._pending.append(Text("".join(str(p) for p in message.parts)))
                    else:
                        self._pending.append(Binary(b"".join(p for p in message.parts if isinstance(p, bytes))))
                    self._message = _Message()

    # -- ending -------------------------------------------------------------------------

    def close(self, code: int = 1000, reason: str = "", timeout: float | None = None) -> Event:
        """Send a close frame and wait for the server's reply (or the end of the connection).

        Returns the ``CloseFrame`` reply, or ``Closed``/``Reset``/``Timeout``/``Malformed``.
        Messages still arriving before the reply are skipped (noted in the trace).
        """
        if self._protocol.state is ConnectionState.OPEN:
            failed = self.send_close(code, reason)
            if failed is not None:
                return failed
        deadline = Deadline(self.timeout if timeout is None else timeout)
        while True:
            event = self.receive(deadline.remaining())
            if not isinstance(event, Text | Binary):
                return event

    def abort(self) -> None:
        """End the connection with a TCP RST (SO_LINGER 0), without a close frame."""
        self._note("> abort (RST)")
        if self.sock is not None and not self._closed:
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_socket()

    def close_socket(self) -> None:
        """Close the socket (a FIN, no close frame) and write the transcript to the trace."""
        if self.sock is not None and not self._closed:
            self._closed = True
            self.sock.close()
            self._flush()

    # -- plumbing -----------------------------------------------------------------------

    def _flush(self) -> None:
        cell = current_cell()
        if self.record and cell is not None:
            cell.trace.extend(self._lines)
        self._lines = []


# -- the raw layer: frames byte-exact, no protocol engine -----------------------------------

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
RSV1, RSV2, RSV3 = 0x4, 0x2, 0x1
"""RSV bits as the ``rsv`` argument of ``encode_frame`` (``Frame.rsv`` uses the same values)."""
MAX_FRAME_PAYLOAD = 32 * 1024 * 1024
OPCODE_NAMES = {0: "continuation", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}


def accept_token(key: bytes | str) -> str:
    """The ``Sec-WebSocket-Accept`` value for ``key`` (RFC 6455 §4.2.2)."""
    return base64.b64encode(hashlib.sha1(_bytes(key) + GUID).digest()).decode("ascii")


def close_payload(code: int | None, reason: bytes = b"") -> bytes:
    """A close frame's payload: the code as 2 bytes (any 16-bit value), then ``reason`` as is."""
    return b"" if code is None else struct.pack("!H", code) + reason


def encode_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = b"\x37\xfa\x21\x3d",
    length: int | None = None,
    length_form: int | None = None,
) -> bytes:
    """One frame, byte-exact.

    ``opcode`` is any 4-bit value (reserved ones included); ``rsv`` any 3-bit value
    (``RSV1 | RSV2 | RSV3``); ``mask`` the 4-byte masking key, or None for an unmasked
    frame; ``length`` the payload length written in the header (default: the real one;
    another value makes the header lie); ``length_form`` forces the length field: 7
    (in the second byte), 16 or 64 bits (default: the shortest that holds it).
    """
    declared = len(payload) if length is None else length
    form = length_form or (7 if declared <= 125 else 16 if declared <= 0xFFFF else 64)
    first = (0x80 if fin else 0) | ((rsv & 0x7) << 4) | (opcode & 0xF)
    mask_bit = 0x80 if mask is not None else 0
    if form == 7:
        header = bytes([first, mask_bit | (declared & 0x7F)])
    elif form == 16:
        header = bytes([first, mask_bit | 126]) + struct.pack("!H", declared & 0xFFFF)
    else:
        header = bytes([first, mask_bit | 127]) + struct.pack("!Q", declared & 0xFFFFFFFFFFFFFFFF)
    if mask is None:
        return header + payload
    if len(mask) != 4:
        raise ValueError("a masking key is 4 bytes")
    return header + mask + _xor(payload, mask)


def _xor(data: bytes, key: bytes) -> bytes:
    if not data or key == b"\x00\x00\x00\x00":
        return data
    repeated = (key * (len(data) // 4 + 1))[: len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")).to_bytes(len(data), "big")


@dataclass(frozen=True)
class Frame:
    """One frame as the server sent it (payload unmasked if it was masked)."""

    fin: bool
    rsv: int
    opcode: int
    masked: bool
    payload: bytes

    @property
    def is_close(self) -> bool:
        return self.opcode == OP_CLOSE

    @property
    def code(self) -> int | None:
        """A close frame's code (None without a payload, or for a 1-byte payload)."""
        return struct.unpack("!H", self.payload[:2])[0] if self.is_close and len(self.payload) >= 2 else None

    @property
    def reason(self) -> bytes:
        return self.payload[2:] if self.is_close else b""

    def describe(self) -> str:
        name = OPCODE_NAMES.get(self.opcode, f"opcode {self.opcode:#x}")
        flags = ("" if self.fin else " FIN=0") + (f" RSV={self.rsv:03b}" if self.rsv else "")
        flags += " MASKED" if self.masked else ""
        if self.is_close:
            code = "without a code" if self.code is None else str(self.code)
            return f"close {code} {_cut(self.reason)}{flags}"
        return f"{name} {_cut(self.payload)}{flags}"


class FrameError(Exception):
    """The server's bytes are not a frame this decoder accepts (too long)."""


class FrameParser:
    """A bounded decoder of the frames a server sends (any opcode, mask or not)."""

    def __init__(self, max_payload: int = MAX_FRAME_PAYLOAD) -> None:
        self.buffer = bytearray()
        self.max_payload = max_payload

    def feed(self, data: bytes) -> list[Frame]:
        """Add ``data``; return the frames now complete. Raises ``FrameError`` on an oversized frame."""
        self.buffer += data
        frames: list[Frame] = []
        while True:
            frame = self._one()
            if frame is None:
                return frames
            frames.append(frame)

    def _one(self) -> Frame | None:
        buf = self.buffer
        if len(buf) < 2:
            return None
        masked = bool(buf[1] & 0x80)
        short = buf[1] & 0x7F
        at = 2
        if short == 126:
            if len(buf) < 4:
                return None
            length = struct.unpack("!H", buf[2:4])[0]
            at = 4
        elif short == 127:
            if len(buf) < 10:
                return None
            length = struct.unpack("!Q", buf[2:10])[0]
            at = 10
        else:
            length = short
        if length > self.max_payload:
            raise FrameError(f"a frame of {length} bytes (more than {self.max_payload})")
        key = b""
        if masked:
            if len(buf) < at + 4:
                return None
            key = bytes(buf[at : at + 4])
            at += 4
        if len(buf) < at + length:
            return None
        payload = bytes(buf[at : at + length])
        frame = Frame(
            bool(buf[0] & 0x80), (buf[0] >> 4) & 0x7, buf[0] & 0xF, masked, _xor(payload, key) if masked else payload
        )
        del buf[: at + length]
        return frame


def deflate_message(data: bytes, window_bits: int = 15) -> bytes:
    """``data`` compressed as one permessage-deflate message (no context kept, tail removed)."""
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -window_bits)
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return out[:-4] if out.endswith(b"\x00\x00\xff\xff") else out


class Inflater:
    """Inflates the server's compressed messages, keeping the context between them (RFC 7692 §7.2.2)."""

    def __init__(self, max_size: int = MAX_MESSAGE_BYTES) -> None:
        self.max_size = max_size
        self._inflater = zlib.decompressobj(-15)

    def inflate(self, payload: bytes) -> bytes:
        """One message's payload, inflated; raises ``zlib.error`` or ``FrameError``."""
        out = self._inflater.decompress(payload + b"\x00\x00\xff\xff", self.max_size + 1)
        if len(out) > self.max_size or self._inflater.unconsumed_tail:
            raise FrameError(f"an inflated message larger than {self.max_size} bytes")
        return out


@dataclass(frozen=True)
class RawResponse:
    """The head of the server's answer to a raw handshake."""

    status: int
    reason: bytes
    headers: tuple[tuple[bytes, bytes], ...]

    def values(self, name: bytes) -> list[bytes]:
        """Every value of header ``name`` (case-insensitive), in order."""
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def header(self, name: bytes) -> bytes | None:
        found = self.values(name)
        return b", ".join(found) if found else None


RawEnd = Closed | Reset | Timeout | Malformed | Refused
RawHandshake = RawResponse | RawEnd


def describe_raw(outcome: object) -> str:
    if isinstance(outcome, RawResponse):
        return f"HTTP {outcome.status} {outcome.reason.decode('latin-1')[:60]!r}"
    if isinstance(outcome, Frame):
        return outcome.describe()
    return describe(outcome)


class RawWebSocket(_SocketIO):
    """A WebSocket connection driven byte by byte: handshake, frames out, frames in.

    Nothing is sent that the case did not ask for: pings are not answered, close frames
    not replied to (``send_frame`` does that when the case wants it). Every read is
    bounded in size and time; every outcome is a value, never an exception.
    """

    def __init__(self, address: Address, timeout: float) -> None:
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.refused: Refused | None = None
        self.response: RawResponse | None = None
        self.eof = False
        self.key = base64.b64encode(os.urandom(16)).decode("ascii")
        self.parser = FrameParser()
        self._frames: list[Frame] = []
        self._closed = False
        self._lines: list[str] = []
        try:
            self.sock = address.connect(timeout)
        except OSError as exc:
            self.refused = Refused(f"{type(exc).__name__}: {exc}")
        self._note(f"raw ws connect {address}" + (f": {self.refused.error}" if self.refused else ""))

    def __enter__(self) -> RawWebSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close_socket()

    def handshake(
        self,
        path: str,
        *,
        method: str = "GET",
        http_version: str = "HTTP/1.1",
        key: str | None = "",
        version: str | None = "13",
        extensions: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        host: str = "127.0.0.1",
        timeout: float | None = None,
    ) -> RawHandshake:
        """Send an opening handshake and read the head of the answer.

        ``key`` "" means a fresh random key (``self.key``), None no key header;
        ``version`` None leaves out ``Sec-WebSocket-Version``; ``extensions`` is the
        ``Sec-WebSocket-Extensions`` offer. Bytes after the head are frames.
        """
        if self.refused is not None:
            return self.refused
        if key == "":
            key = self.key
        elif key is not None:
            self.key = key
        lines = [f"{method} {path} {http_version}", f"Host: {host}", "Upgrade: websocket", "Connection: Upgrade"]
        if key is not None:
            lines.append(f"Sec-WebSocket-Key: {key}")
        if version is not None:
            lines.append(f"Sec-WebSocket-Version: {version}")
        if extensions is not None:
            lines.append(f"Sec-WebSocket-Extensions: {extensions}")
        lines += [f"{k}: {v}" for k, v in headers]
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self._note(f"> {_cut(data)}")
        failed = self._write(data)
        if failed is not None:
            return failed
        outcome = self._read_head(Deadline(self.timeout if timeout is None else timeout))
        self._note(f"= {describe_raw(outcome)}")
        return outcome

    def _read_head(self, deadline: Deadline) -> RawHandshake:
        received = bytearray()
        while True:
            end = received.find(b"\r\n\r\n")
            if end >= 0:
                head, rest = bytes(received[:end]), bytes(received[end + 4 :])
                self._note(f"< {_cut(head)}")
                parsed = _parse_head(head)
                if isinstance(parsed, RawResponse):
                    self.response = parsed
                    if parsed.status == 101 and rest:
                        try:
                            self._frames += self.parser.feed(rest)
                        except FrameError as exc:
                            return Malformed(str(exc), rest)
                return parsed
            if len(received) > MAX_HANDSHAKE_BYTES:
                return Malformed(f"handshake response larger than {MAX_HANDSHAKE_BYTES} bytes", bytes(received))
            data = self._recv(deadline)
            if not isinstance(data, bytes):
                self._note(f"< {_cut(bytes(received))}; {describe(data)}")
                return type(data)(bytes(received)) if isinstance(data, Closed | Reset | Timeout) else data
            if not data:
                self.eof = True
                self._note(f"< {_cut(bytes(received))}; EOF")
                return Closed(bytes(received))
            received += data

    def send_frame(
        self,
        opcode: int,
        payload: bytes = b"",
        **options: Any,
    ) -> Closed | Reset | Malformed | None:
        """Write one frame (see ``encode_frame`` for ``options``)."""
        data = encode_frame(opcode, payload, **options)
        name = OPCODE_NAMES.get(opcode, f"opcode {opcode:#x}")
        self._note(f"> {name} {_cut(payload)} ({_cut(data[:14])}...)" if len(data) > 14 else f"> {name} {data!r}")
        return self._write(data)

    def send_raw(self, data: bytes) -> Closed | Reset | Malformed | None:
        """Write ``data`` as it is."""
        self._note(f"> raw {_cut(data)}")
        return self._write(data)

    def send_until_answer(self, data: bytes, timeout: float, chunk: int = 65536) -> int:
        """Write ``data`` in chunks, stopping early once the server sends something (or ends).

        For a message the server may refuse midway: it need not read the rest, and a client
        that kept writing would block. ``timeout`` bounds each wait for the server to read
        more (a large write's time grows with the machine's load, a stalled reader's does
        not); four times ``timeout`` bounds the whole. Returns how many bytes were written.
        """
        self._note(f"> {len(data)} bytes in chunks of {chunk}: {_cut(data[:40])}...")
        if self.sock is None or self._closed:
            return 0
        overall = Deadline(4 * timeout)
        stall = Deadline(timeout)
        written = 0
        while written < len(data) and not stall.expired and not overall.expired:
            wait = min(stall.remaining(), overall.remaining())
            readable, writable, _ = select.select([self.sock], [self.sock], [], wait)
            if readable:
                break
            if not writable:
                continue
            try:
                self.sock.settimeout(max(wait, 0.001))
                written += self.sock.send(data[written : written + chunk])
            except OSError as exc:
                self._note(f"> writing stopped: {type(exc).__name__}")
                break
            stall = Deadline(timeout)
        self._note(f"> wrote {written} of {len(data)} bytes")
        return written

    def read_frame(self, timeout: float | None = None) -> Frame | Closed | Reset | Timeout | Malformed:
        """The server's next frame, or how the wait ended."""
        deadline = Deadline(self.timeout if timeout is None else timeout)
        while True:
            if self._frames:
                frame = self._frames.pop(0)
                self._note(f"< {frame.describe()}")
                return frame
            if self.eof:
                return Closed(bytes(self.parser.buffer))
            data = self._recv(deadline)
            if not isinstance(data, bytes):
                self._note(f"< {describe(data)}")
                return data
            if not data:
                self.eof = True
                self._note("< EOF")
                continue
            try:
                self._frames += self.parser.feed(data)
            except FrameError as exc:
                self._note(f"< malformed: {exc}")
                return Malformed(str(exc))

    def wait_end(self, timeout: float) -> tuple[list[Frame], Closed | Reset | Timeout | Malformed]:
        """Frames until the TCP connection ends (EOF, reset) or ``timeout`` passes."""
        deadline = Deadline(timeout)
        frames: list[Frame] = []
        while True:
            got = self.read_frame(deadline.remaining())
            if not isinstance(got, Frame):
                return frames, got
            frames.append(got)
            if len(frames) > 1000:
                return frames, Malformed("more than 1000 frames")

    def shutdown_write(self) -> None:
        self._note("> FIN (shutdown write)")
        if self.sock is not None and not self._closed:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_WR)

    def abort(self) -> None:
        """End the connection with a TCP RST (SO_LINGER 0), without a close frame."""
        self._note("> abort (RST)")
        if self.sock is not None and not self._closed:
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_socket()

    def close_socket(self) -> None:
        if self.sock is not None and not self._closed:
            self._closed = True
            self.sock.close()
            cell = current_cell()
            if cell is not None:
                cell.trace.extend(self._lines)
            self._lines = []


def _parse_head(head: bytes) -> RawResponse | Malformed:
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit() or len(parts[1]) != 3:
        return Malformed(f"not a status line: {lines[0][:100]!r}", head)
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip():
            return Malformed(f"not a header line: {line[:100]!r}", head)
        headers.append((name, value.strip(b" \t")))
    return RawResponse(int(parts[1]), parts[2] if len(parts) > 2 else b"", tuple(headers))
