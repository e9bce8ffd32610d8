"""A small WebSocket client over real sockets, with wsproto as the protocol engine.

The harness opens a socket to a ``client.Address`` (TCP or Unix socket), performs the
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
``client.Connection`` does. Issue 5 (frame-level faults) extends this module with raw
frames: ``send_raw`` writes bytes as they are, bypassing wsproto.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
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
    "Accepted",
    "Binary",
    "CloseFrame",
    "Denied",
    "Event",
    "HandshakeOutcome",
    "Text",
    "WebSocket",
    "describe",
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


class WebSocket:
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

    def _flush(self) -> None:
        cell = current_cell()
        if self.record and cell is not None:
            cell.trace.extend(self._lines)
        self._lines = []
