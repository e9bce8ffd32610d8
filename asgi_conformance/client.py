"""Raw HTTP/1.1 exchanges over real sockets, with h11 as the parser of what comes back.

The harness writes requests byte for byte (so it can send exactly what a case needs:
odd paths, duplicate or mixed-case headers, HTTP/1.0) and lets h11 parse the reply.
h11's client only parses a response once it believes it sent a request, so each read
first feeds it a *shadow* request with the same method (HEAD changes framing).

Every exchange ends in exactly one outcome:

``Response``   a complete response (status, headers, body)
``Closed``     the server closed the connection before a complete response
``Reset``      the connection was reset
``Timeout``    nothing complete arrived before the deadline
``Malformed``  the server sent bytes that are not valid HTTP/1.1 (or too many)
``Refused``    no connection at all

Streaming checks read a response while it is still arriving: ``read_until`` returns a
``Progress`` (status, headers and the body so far) as soon as a condition holds, and
the same response stays pending for ``response()`` or the next ``read_until``.

Everything the target sends is untrusted: reads are bounded in size and time.

Over TLS: an ``Address`` with ``tls`` (an ``ssl.SSLContext``, see asgi_conformance.tls)
wraps each connection after the TCP connect, with ``server_hostname`` as SNI; a failed
handshake is a ``Refused`` outcome. ``shutdown_write`` on a TLS connection half-closes the
TCP socket under the TLS layer (no close_notify), and ends the TLS layer on the client side.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import h11

from .timing import Deadline
from .verdicts import current_cell

__all__ = [
    "Address",
    "Closed",
    "Connection",
    "Malformed",
    "Outcome",
    "Progress",
    "Refused",
    "Reset",
    "Response",
    "Timeout",
    "build_request",
    "describe",
    "exchange",
]

MAX_RESPONSE_BYTES = 8 * 1024 * 1024
TRACE_BYTES = 2048


@dataclass(frozen=True)
class Address:
    """Where a target listens: TCP host and port, or a Unix socket path."""

    host: str | None = None
    port: int | None = None
    uds: str | None = None
    tls: ssl.SSLContext | None = field(default=None, compare=False)
    """With a client context, every connection is wrapped in TLS (handshake within the
    connect timeout); a failed handshake raises ``ssl.SSLError``, an ``OSError``."""
    server_hostname: str | None = None
    """The name sent as SNI and checked against the certificate (default: ``host``)."""

    def connect(self, timeout: float) -> socket.socket:
        if self.uds is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(self.uds)
            except OSError:
                sock.close()
                raise
            return self._wrap(sock)
        if self.host is None or self.port is None:
            raise ValueError("an Address needs host and port, or uds")
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self._wrap(sock)

    def _wrap(self, sock: socket.socket) -> socket.socket:
        if self.tls is None:
            return sock
        try:
            return self.tls.wrap_socket(sock, server_hostname=self.server_hostname or self.host or "localhost")
        except BaseException:
            sock.close()
            raise

    def with_tls(self, context: ssl.SSLContext | None, server_hostname: str | None = None) -> Address:
        """This address with another client context (None: plain TCP)."""
        return replace(self, tls=context, server_hostname=server_hostname or self.server_hostname)

    def __str__(self) -> str:
        where = f"unix:{self.uds}" if self.uds is not None else f"{self.host}:{self.port}"
        return f"{where} (TLS)" if self.tls is not None else where


@dataclass(frozen=True)
class Response:
    status: int
    reason: bytes
    http_version: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    informational: tuple[int, ...] = ()
    reset: bool = False
    """The body ran to the connection's end (no length, not chunked) and that end was a reset,
    not a close: the head is whole, the body may be cut short."""

    def header(self, name: bytes) -> bytes | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None


@dataclass(frozen=True)
class Closed:
    received: bytes = b""


@dataclass(frozen=True)
class Reset:
    received: bytes = b""


@dataclass(frozen=True)
class Timeout:
    received: bytes = b""


@dataclass(frozen=True)
class Malformed:
    error: str
    received: bytes = b""


@dataclass(frozen=True)
class Refused:
    error: str


Outcome = Response | Closed | Reset | Timeout | Malformed | Refused


@dataclass(frozen=True)
class Progress:
    """Part of a response that is still arriving: what ``read_until`` had seen when it stopped."""

    status: int | None
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    informational: tuple[int, ...] = ()


def describe(outcome: object) -> str:
    """A short human description of an outcome, for messages and traces."""
    if isinstance(outcome, Response):
        ended = ", ended by a reset" if outcome.reset else ""
        return f"response {outcome.status} ({len(outcome.body)} body bytes{ended})"
    if isinstance(outcome, Malformed):
        return f"malformed response ({outcome.error})"
    if isinstance(outcome, Refused):
        return f"connection refused ({outcome.error})"
    if isinstance(outcome, Closed | Reset | Timeout):
        extra = f" after {len(outcome.received)} bytes" if outcome.received else ""
        return f"{type(outcome).__name__.lower()}{extra}"
    return repr(outcome)


def _bytes(value: str | bytes) -> bytes:
    return value.encode("latin-1") if isinstance(value, str) else value


def build_request(
    method: str | bytes,
    target: str | bytes,
    headers: Iterable[tuple[str | bytes, str | bytes]] = (),
    body: bytes = b"",
    *,
    version: str | bytes = "HTTP/1.1",
    host: str | bytes | None = "127.0.0.1",
) -> bytes:
    """Request bytes exactly as given: header names keep their case and order.

    Adds ``Host`` (unless ``host`` is None or a Host header is given) and
    ``Content-Length`` when there is a body and no framing header.
    """
    pairs = [(_bytes(k), _bytes(v)) for k, v in headers]
    names = {k.lower() for k, _ in pairs}
    if host is not None and b"host" not in names:
        pairs.insert(0, (b"Host", _bytes(host)))
    if body and b"content-length" not in names and b"transfer-encoding" not in names:
        pairs.append((b"Content-Length", str(len(body)).encode()))
    head = b"%s %s %s\r\n" % (_bytes(method), _bytes(target), _bytes(version))
    head += b"".join(b"%s: %s\r\n" % (k, v) for k, v in pairs)
    return head + b"\r\n" + body


@dataclass
class _Partial:
    """A response read so far (kept across a Timeout so reading can resume)."""

    head: h11.Response | None = None
    informational: list[int] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    received: bytearray = field(default_factory=bytearray)
    eof: bool = False

    def progress(self) -> Progress:
        head = self.head
        return Progress(
            status=None if head is None else head.status_code,
            headers=() if head is None else tuple((bytes(k), bytes(v)) for k, v in head.headers.raw_items()),
            body=bytes(self.body),
            informational=tuple(self.informational),
        )

    def response(self, *, reset: bool = False) -> Response:
        """The whole response (its end seen, or a reset where a close would have ended it)."""
        head = self.head
        assert head is not None
        return Response(
            status=head.status_code,
            reason=bytes(head.reason),
            http_version=bytes(head.http_version),
            headers=tuple((bytes(k), bytes(v)) for k, v in head.headers.raw_items()),
            body=bytes(self.body),
            informational=tuple(self.informational),
            reset=reset,
        )


def _close_delimited(head: h11.Response) -> bool:
    """The body of this head runs to the connection's end: it has no length and is not chunked."""
    names = {bytes(k).lower() for k, _ in head.headers.raw_items()}
    return b"content-length" not in names and b"transfer-encoding" not in names


@dataclass
class _Transcript:
    sent: bytearray = field(default_factory=bytearray)
    received: bytearray = field(default_factory=bytearray)

    def lines(self, address: Address, outcome: object) -> list[str]:
        def cut(data: bytearray) -> str:
            shown = repr(bytes(data[:TRACE_BYTES]))
            return shown + (f" ... (+{len(data) - TRACE_BYTES} bytes)" if len(data) > TRACE_BYTES else "")

        return [f"connect {address}", f"> {cut(self.sent)}", f"< {cut(self.received)}", f"= {describe(outcome)}"]


class Connection:
    """One client connection: send raw bytes, read responses one at a time."""

    def __init__(self, address: Address, timeout: float, *, record: bool = True) -> None:
        self.address = address
        self.timeout = timeout
        self.record = record
        self._transcript = _Transcript()
        self._parser = h11.Connection(h11.CLIENT, max_incomplete_event_size=64 * 1024)
        self._closed = False
        self._pending: _Partial | None = None
        self.sock: socket.socket | None = None
        self.refused: Refused | None = None
        try:
            self.sock = address.connect(timeout)
        except OSError as exc:
            self.refused = Refused(f"{type(exc).__name__}: {exc}")

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes) -> bool:
        """Write ``data``; False if the connection is already gone."""
        if self.sock is None:
            return False
        self._transcript.sent += data[: 4 * TRACE_BYTES]
        try:
            self.sock.settimeout(self.timeout)
            self.sock.sendall(data)
        except OSError:
            return False
        return True

    def response(self, method: str | bytes = "GET", timeout: float | None = None) -> Outcome:
        """Read the next complete response; never raises for what the server does.

        After a ``Timeout`` the same response stays pending: call again to wait longer.
        """
        outcome = self._read(_bytes(method).upper(), Deadline(self.timeout if timeout is None else timeout))
        assert not isinstance(outcome, Progress)  # only read_until stops part way
        self._trace(outcome)
        return outcome

    def read_until(
        self,
        condition: Callable[[Progress], bool],
        method: str | bytes = "GET",
        timeout: float | None = None,
    ) -> Progress | Outcome:
        """Read the next response until ``condition`` holds for what has arrived so far.

        Returns a ``Progress`` once it holds (the rest of the response stays pending);
        the final outcome if the response ends (or the deadline passes) first. A
        ``Timeout`` here means the condition never held; the response stays pending.
        """
        outcome = self._read(_bytes(method).upper(), Deadline(self.timeout if timeout is None else timeout), condition)
        if not isinstance(outcome, Progress):
            self._trace(outcome)
        return outcome

    def send_paced(self, data: bytes, piece: int, timeout: float, settle: float = 0.0) -> bool:
        """Write ``data`` ``piece`` bytes at a time, each once the server has read the one before
        and has not answered within ``settle`` seconds after.

        How a server judges an oversized head can depend on how much of it one read returned
        (a parser that rejects an incomplete head past its limit, and takes a complete one at
        once): pacing makes that the same from run to run. Once the server has answered or
        closed, nothing more is written (bytes it will not read would make its close a reset,
        which can destroy its answer). False if the connection was gone before all was
        written. The wait for each read watches the server's receive queue (``peer_unread``),
        bounded by ``timeout`` in all; where that cannot be seen (not Linux, not TCP) the
        pieces go after ``settle`` alone."""
        deadline = Deadline(timeout)
        for start in range(0, len(data), piece):
            if not self.send(data[start : start + piece]):
                return False
            if start + piece >= len(data):
                break
            pause = 0.0005
            while peer_unread(self.sock) and not deadline.expired and not self._answered(0):
                time.sleep(min(pause, deadline.remaining()))  # poll interval, bounded by the deadline
                pause = min(pause * 2, 0.01)
            if self._answered(min(settle, deadline.remaining())):
                return True
        return True

    def wait_peer_read(self, timeout: float) -> bool | None:
        """Wait (up to ``timeout``) until the server has read everything sent so far: True once
        it has, False at the deadline, None where that cannot be seen (``peer_unread``). A
        hold for what the server does next then starts when the server has the bytes, not when
        the client sent them (on a busy machine, the server may be slow to read)."""
        deadline = Deadline(timeout)
        pause = 0.0005
        while (unread := peer_unread(self.sock)) and not deadline.expired:
            time.sleep(min(pause, deadline.remaining()))  # poll interval, bounded by the deadline
            pause = min(pause * 2, 0.01)
        return None if unread is None else unread == 0

    def _answered(self, within: float) -> bool:
        """Something (an answer, an EOF, a reset) is waiting to be read, or comes ``within`` seconds."""
        if self.sock is None or self._closed:
            return True
        return bool(select.select([self.sock], [], [], max(within, 0.0))[0])

    def shutdown_write(self) -> None:
        """Half-close: send FIN, keep reading (a client that is done sending)."""
        if self.sock is not None and not self._closed:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_WR)

    def abort(self) -> None:
        """Close with a TCP reset (SO_LINGER 0) instead of a FIN: a client that vanished."""
        if self.sock is not None and not self._closed:
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close()

    def _trace(self, outcome: object) -> None:
        cell = current_cell()
        if self.record and cell is not None:
            cell.trace.extend(self._transcript.lines(self.address, outcome))
        self._transcript = _Transcript()

    def _read(
        self, method: bytes, deadline: Deadline, condition: Callable[[Progress], bool] | None = None
    ) -> Progress | Outcome:
        if self.refused is not None:
            return self.refused
        assert self.sock is not None
        parser = self._parser
        partial = self._pending
        if partial is None:
            if parser.our_state is h11.DONE and parser.their_state is h11.DONE:
                parser.start_next_cycle()
            if parser.our_state is not h11.IDLE:
                return Closed()  # the server ended the connection after the last response
            parser.send(h11.Request(method=method, target="/", headers=[("Host", "x")]))
            parser.send(h11.EndOfMessage())
            partial = _Partial()
        # A Timeout leaves the response pending: the next call goes on reading it.
        self._pending = None
        while True:
            try:
                event = parser.next_event()
            except h11.RemoteProtocolError as exc:
                if partial.eof and (partial.head is not None or not partial.received):
                    return Closed(bytes(partial.received))  # nothing, or a response cut short
                return Malformed(str(exc), bytes(partial.received))
            if event is h11.NEED_DATA:
                if condition is not None:
                    progress = partial.progress()
                    if condition(progress):
                        self._pending = partial
                        return progress
                if deadline.expired:
                    self._pending = partial
                    return Timeout(bytes(partial.received))
                try:
                    self.sock.settimeout(max(deadline.remaining(), 0.001))
                    data = self.sock.recv(65536)
                except TimeoutError:
                    self._pending = partial
                    return Timeout(bytes(partial.received))
                except ConnectionResetError:
                    if partial.head is not None and _close_delimited(partial.head):
                        # A server that closes with bytes unread resets: the answer it wrote
                        # first stands (RFC 9112 §9.6), whether or not the reset beat our read.
                        return partial.response(reset=True)
                    return Reset(bytes(partial.received))
                except OSError as exc:
                    return Malformed(f"{type(exc).__name__}: {exc}", bytes(partial.received))
                if len(partial.received) + len(data) > MAX_RESPONSE_BYTES:
                    return Malformed(f"response larger than {MAX_RESPONSE_BYTES} bytes", bytes(partial.received))
                partial.eof = not data
                partial.received += data
                self._transcript.received += data[: 4 * TRACE_BYTES]
                parser.receive_data(data)
                continue
            if event is h11.PAUSED:
                # A 2xx to CONNECT or a 101: what follows is not HTTP/1.1, so no response ends here.
                return Malformed("the server switched protocols (h11 paused)", bytes(partial.received))
            if isinstance(event, h11.InformationalResponse):
                partial.informational.append(event.status_code)
            elif isinstance(event, h11.Response):
                partial.head = event
            elif isinstance(event, h11.Data):
                partial.body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return partial.response()
            elif isinstance(event, h11.ConnectionClosed):
                return Closed(bytes(partial.received))

    def close(self) -> None:
        if self.sock is not None and not self._closed:
            self._closed = True
            self.sock.close()


def peer_unread(sock: socket.socket | None) -> int | None:
    """How many bytes this TCP connection's peer has received and not yet read (its receive
    queue, from /proc/net/tcp on Linux, where a loopback peer is in the same table); None if
    that cannot be seen."""
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    try:
        local, remote = sock.getsockname(), sock.getpeername()
    except OSError:
        return None
    table = "/proc/net/tcp" if sock.family == socket.AF_INET else "/proc/net/tcp6"
    # The peer's row: its local address is our remote one, its remote address our local one.
    wanted = (f":{remote[1]:04X}", f":{local[1]:04X}")
    try:
        with open(table) as rows:
            next(rows, None)
            for row in rows:
                fields = row.split()
                if len(fields) > 4 and fields[1].endswith(wanted[0]) and fields[2].endswith(wanted[1]):
                    return int(fields[4].partition(":")[2], 16)
    except (OSError, ValueError):
        return None
    return None


def exchange(
    address: Address, request: bytes, *, method: str | bytes | None = None, timeout: float, record: bool = True
) -> Outcome:
    """Send one request on a new connection and read one response."""
    if method is None:
        method = request.split(b" ", 1)[0] or b"GET"
    with Connection(address, timeout, record=record) as conn:
        conn.send(request)
        return conn.response(method)


def as_json(outcome: Outcome) -> dict[str, Any]:
    """A JSON-safe summary of an outcome for results."""
    if isinstance(outcome, Response):
        return {"kind": "response", "status": outcome.status, "body_bytes": len(outcome.body)}
    return {"kind": type(outcome).__name__.lower(), "detail": describe(outcome)}
