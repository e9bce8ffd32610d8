"""A small HTTP/2 client for the catalogue, on one real socket, with the ``h2`` library.

It speaks cleartext HTTP/2 with prior knowledge (h2c) or HTTP/2 over TLS (pass an
``ssl_context`` whose ALPN offers ``h2``, e.g. ``asgi_conformance.tls.client_context(alpn=["h2"])``).
Single-threaded and synchronous: it reads the socket only while you wait for something.

Usage::

    from asgi_conformance.h2client import H2Client

    with H2Client(server.address, timeout=server.timeouts.request) as h2:
        sid = h2.request("GET", "/echo/x", headers=[(b"te", b"trailers")])
        resp = h2.response(sid)            # never raises for what the server does
        if not resp.complete:
            fail(f"no h2 response: {resp.describe()}")
        resp.status, resp.headers, resp.body, resp.trailers, resp.informational, resp.pushes

API (stable; other helpers rely on it):

``H2Client(address, *, timeout, ssl_context=None, server_hostname=None, enable_push=True,
settings=None, connection_window=None, max_bytes=MAX_BYTES, record=True)``
    Connects (TCP or Unix socket from a ``client.Address``), does the TLS handshake if
    ``ssl_context`` is given or the address carries one (``Address.tls``; ALPN must select
    ``h2``), sends the preface and our SETTINGS (``enable_push`` sets SETTINGS_ENABLE_PUSH;
    ``settings`` adds any ``{SettingCodes: int}``), and optionally widens the connection
    receive window by ``connection_window`` bytes.
    Connect, handshake or ALPN failures do not raise: ``failure`` says what went wrong and
    every stream's response has ``outcome == "refused"``. Use it as a context manager.

``request(method, path, headers=(), body=b"", *, authority=None, scheme=None, end_stream=True,
extra_pseudo=()) -> stream_id``
    Sends HEADERS with ``:method :scheme :authority :path`` first (``authority`` defaults to
    ``host:port`` of the address, ``scheme`` to ``https`` with TLS else ``http``; pass ``b""``/
    ``""`` to omit one), then ``extra_pseudo`` (e.g. ``[(b":protocol", b"websocket")]``), then
    ``headers`` exactly as given (no validation or normalisation: the case owns what goes out,
    so send lower-case names). A ``body`` is sent with flow control; ``end_stream=False`` leaves
    the stream open for ``send_data`` / ``send_trailers`` / ``end_stream``.

``send_data(stream_id, data, *, end_stream=False) -> int``
    Sends as much of ``data`` as flow control allows, waiting (reading the socket, with the
    client's ``timeout``) for WINDOW_UPDATEs; returns the bytes sent (less than ``len(data)``
    when the stream or connection ended, or the window stayed shut until the deadline).

``send_trailers(stream_id, headers)``, ``end_stream(stream_id)``, ``reset_stream(stream_id,
code=ErrorCodes.CANCEL)``, ``ping()``, ``close()``
    Never raise for a dead connection or stream (they do nothing then).

``response(stream_id, timeout=None, *, wait_pushes=True) -> H2Response``
    Waits (deadline ``timeout`` or the client's) until the stream ends, is reset, or the
    connection fails; with ``wait_pushes`` also for the streams the server promised on it.

``progress(stream_id) -> H2Response``
    A snapshot of what has arrived so far (``outcome == "pending"`` while the stream is open).

``read_until(condition, timeout=None) -> bool``
    Reads the socket until ``condition()`` (no arguments; look at ``progress(...)``) holds:
    True; False if the deadline passes or the connection ends first.

Connection state: ``failure`` (str or None: refused, TLS, protocol error, closed, too large),
``goaway`` (``GoAway(error_code, last_stream_id, data)`` once the server sent one),
``remote_settings`` (dict of the server's SETTINGS as ints), ``settings_received`` (its first
SETTINGS frame arrived), ``alpn`` (the protocol TLS selected), ``alive``, ``frames_received``
(a ``Counter`` by frame type name, e.g. ``"PushPromiseFrame"``: it counts a PUSH_PROMISE even
when push is disabled and h2 then fails the connection).

``H2Response``: ``stream_id``, ``outcome`` (one of ``OUTCOMES``: "complete", "reset" (the
server sent RST_STREAM; ``reset`` has the code), "timeout", "closed" (the connection ended
first), "goaway" (the stream is above the server's GOAWAY last_stream_id), "protocol_error"
(the server broke HTTP/2 framing; ``error`` says how), "too_large" (more than ``max_bytes``
received on the connection), "refused", "pending" (``progress`` only)), ``status`` (int or
None), ``headers`` (the final response's fields, pseudo-headers removed, names and values as
received, bytes), ``body``, ``trailers`` (tuple of pairs or None), ``informational`` (tuple of
``(status, headers)`` for each 1xx), ``pushes`` (tuple of ``PushPromise(promised_stream_id,
headers, response)``; ``headers`` are the promised request's fields, pseudo-headers
included; ``response`` is an ``H2Response`` or None), ``reset`` (int error code or None),
``error`` (str or None), ``raw_headers`` (the final HEADERS block as received, pseudo-headers
included). Helpers: ``complete``, ``header(name)``, ``header_values(name)``, ``describe()``.

Everything the server sends is untrusted: received bytes are capped (``max_bytes``), every wait
has a deadline, and h2 ``ProtocolError``, GOAWAY, resets and closed sockets become outcomes.
Inbound header validation is off so a case sees exactly what the server sent (upper-case
names, connection-specific fields) and judges it itself. Received DATA is acknowledged at once
(WINDOW_UPDATE) so large bodies keep flowing. A GOAWAY does not stop the client from reading
the streams the server still answers (at or below ``last_stream_id``).

Each client adds a few lines to the current cell's trace (connect, requests, each response
waited for, GOAWAY/failure), bounded in size.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes
from h2.settings import SettingCodes

from .client import Address
from .timing import Deadline
from .verdicts import current_cell

__all__ = [
    "MAX_BYTES",
    "OUTCOMES",
    "ErrorCodes",
    "GoAway",
    "H2Client",
    "H2Response",
    "Headers",
    "PushPromise",
    "SettingCodes",
]

MAX_BYTES = 64 * 1024 * 1024
TRACE_LINES = 80
FRAME_HEADER_BYTES = 9
"""RFC 9113 §4.1: a 24-bit length, type, flags and stream identifier precede every payload."""
OUTCOMES = ("complete", "reset", "timeout", "closed", "goaway", "protocol_error", "too_large", "refused", "pending")

Headers = tuple[tuple[bytes, bytes], ...]


@dataclass(frozen=True)
class GoAway:
    error_code: int
    last_stream_id: int
    data: bytes


@dataclass(frozen=True)
class PushPromise:
    promised_stream_id: int
    headers: Headers
    response: H2Response | None = None

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


@dataclass(frozen=True)
class H2Response:
    stream_id: int
    outcome: str
    status: int | None = None
    headers: Headers = ()
    body: bytes = b""
    trailers: Headers | None = None
    informational: tuple[tuple[int, Headers], ...] = ()
    pushes: tuple[PushPromise, ...] = ()
    reset: int | None = None
    error: str | None = None
    raw_headers: Headers = ()

    @property
    def complete(self) -> bool:
        return self.outcome == "complete"

    def header(self, name: bytes) -> bytes | None:
        """The first value of field ``name`` (compared lower-case), or None."""
        values = self.header_values(name)
        return values[0] if values else None

    def header_values(self, name: bytes) -> list[bytes]:
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def describe(self) -> str:
        head = f"stream {self.stream_id}: {self.outcome}"
        if self.status is not None:
            head += f", status {self.status}, {len(self.body)} body bytes"
        if self.trailers is not None:
            head += f", {len(self.trailers)} trailer fields"
        if self.pushes:
            head += f", {len(self.pushes)} pushes"
        if self.reset is not None:
            head += f", RST_STREAM {_code_name(self.reset)}"
        if self.error:
            head += f" ({self.error})"
        return head


def _code_name(code: int) -> str:
    try:
        return f"{ErrorCodes(code).name}({code})"
    except ValueError:
        return str(code)


def _b(value: str | bytes) -> bytes:
    return value.encode("latin-1") if isinstance(value, str) else bytes(value)


def _pairs(headers: Iterable[tuple[Any, Any]] | None) -> Headers:
    return tuple((_b(k), _b(v)) for k, v in headers or ())


@dataclass
class _Stream:
    stream_id: int
    status: int | None = None
    raw_headers: Headers = ()
    body: bytearray = field(default_factory=bytearray)
    trailers: Headers | None = None
    informational: list[tuple[int, Headers]] = field(default_factory=list)
    pushes: list[tuple[int, Headers]] = field(default_factory=list)
    ended: bool = False
    reset: int | None = None
    failed: str | None = None  # an outcome other than complete/reset, set when the connection fails
    error: str | None = None

    @property
    def done(self) -> bool:
        return self.ended or self.reset is not None or self.failed is not None


class _Connection(h2.connection.H2Connection):
    """h2's client connection, counting frames and staying readable after a GOAWAY."""

    def __init__(self, config: h2.config.H2Configuration) -> None:
        super().__init__(config=config)
        self.frames_received: Counter[str] = Counter()

    def _receive_frame(self, frame: Any) -> list[h2.events.Event]:
        self.frames_received[type(frame).__name__] += 1
        return super()._receive_frame(frame)

    def _receive_goaway_frame(self, frame: Any) -> tuple[list[Any], list[h2.events.Event]]:
        frames, events = super()._receive_goaway_frame(frame)
        # h2 refuses every frame after a GOAWAY; a server may still finish the streams at or
        # below last_stream_id (graceful shutdown), so keep the connection readable.
        self.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
        return frames, events


class H2Client:
    """One HTTP/2 connection (see the module docstring for the API)."""

    def __init__(
        self,
        address: Address,
        *,
        timeout: float,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        enable_push: bool = True,
        settings: Mapping[SettingCodes, int] | Mapping[int, int] | None = None,
        connection_window: int | None = None,
        max_bytes: int = MAX_BYTES,
        record: bool = True,
    ) -> None:
        self.address = address
        self.timeout = timeout
        if ssl_context is None:
            ssl_context = getattr(address, "tls", None)  # an Address that carries a client context
        self.tls = ssl_context is not None
        self.max_bytes = max_bytes
        self.record = record
        self.failure: str | None = None
        self.failure_outcome = "closed"
        self.goaway: GoAway | None = None
        self.alpn: str | None = None
        self.received_bytes = 0
        self._head: bytes | None = b""
        self._unparsed = b""
        """Received bytes not yet handed to h2: the start of a frame that has not fully arrived."""
        self.remote_settings: dict[int, int] = {}
        self.settings_received = False
        self._streams: dict[int, _Stream] = {}
        self._trace: list[str] = []
        self._closed = False
        self._fake_ids = 1
        config = h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
            validate_inbound_headers=False,
            normalize_inbound_headers=False,
        )
        self._conn = _Connection(config)
        local: dict[SettingCodes | int, int] = {SettingCodes.ENABLE_PUSH: int(enable_push)}
        for code, value in (settings or {}).items():
            local[code] = value
        self._conn.local_settings = h2.settings.Settings(
            client=True, initial_values=cast("dict[SettingCodes, int]", local)
        )
        self.sock: socket.socket | None = None
        via = "h2 over TLS" if self.tls else "h2c prior knowledge"
        self._log(f"h2 connect {address} ({via}; settings {_settings_text(local)})")
        try:
            sock = _connect(address, timeout)
        except OSError as exc:
            self._fail(f"connect: {type(exc).__name__}: {exc}", "refused")
            return
        if ssl_context is not None:
            try:
                sock.settimeout(timeout)
                name = server_hostname or getattr(address, "server_hostname", None) or address.host or "localhost"
                sock = ssl_context.wrap_socket(sock, server_hostname=name)
            except (OSError, ssl.SSLError) as exc:
                sock.close()
                self._fail(f"TLS handshake: {type(exc).__name__}: {exc}", "refused")
                return
            assert isinstance(sock, ssl.SSLSocket)
            self.alpn = sock.selected_alpn_protocol()
            if self.alpn != "h2":
                sock.close()
                self._fail(f"ALPN selected {self.alpn!r}, not 'h2'", "refused")
                return
        self.sock = sock
        self._conn.initiate_connection()
        if connection_window:
            self._conn.increment_flow_control_window(connection_window)
        self._flush()

    # -- context manager --------------------------------------------------------------------

    def __enter__(self) -> H2Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def frames_received(self) -> Counter[str]:
        return self._conn.frames_received

    @property
    def alive(self) -> bool:
        return self.failure is None and self.sock is not None

    # -- sending ----------------------------------------------------------------------------

    def request(
        self,
        method: str | bytes,
        path: str | bytes,
        headers: Iterable[tuple[str | bytes, str | bytes]] = (),
        body: bytes = b"",
        *,
        authority: str | bytes | None = None,
        scheme: str | bytes | None = None,
        end_stream: bool = True,
        extra_pseudo: Iterable[tuple[str | bytes, str | bytes]] = (),
    ) -> int:
        """Open a stream with this request; returns its stream id (see the module docstring)."""
        if authority is None:
            authority = "localhost" if self.address.host is None else f"{self.address.host}:{self.address.port}"
        if scheme is None:
            scheme = "https" if self.tls else "http"
        block: list[tuple[bytes, bytes]] = [(b":method", _b(method))]
        if scheme:
            block.append((b":scheme", _b(scheme)))
        if authority:
            block.append((b":authority", _b(authority)))
        if path:
            block.append((b":path", _b(path)))
        block.extend(_pairs(extra_pseudo))
        block.extend(_pairs(headers))
        if not self.alive or self.goaway is not None:
            sid = self._fake_ids
            self._fake_ids += 2
            stream = _Stream(sid)
            if self.goaway is not None and self.failure is None:
                stream.failed, stream.error = "goaway", "the server sent GOAWAY before this request"
            else:
                stream.failed, stream.error = self.failure_outcome, self.failure
            self._streams[sid] = stream
            self._log(f"> HEADERS (not sent: {stream.error})")
            return sid
        sid = self._conn.get_next_available_stream_id()
        self._fake_ids = sid + 2
        self._streams[sid] = _Stream(sid)
        ends = end_stream and not body
        try:
            self._conn.send_headers(sid, block, end_stream=ends)
        except h2.exceptions.H2Error as exc:
            self._streams[sid].failed, self._streams[sid].error = "protocol_error", f"send_headers: {exc}"
            return sid
        self._log(f"> HEADERS stream {sid} {_short(block)}{' END_STREAM' if ends else ''}")
        self._flush()
        if body:
            self.send_data(sid, body, end_stream=end_stream)
        return sid

    def send_data(self, stream_id: int, data: bytes, *, end_stream: bool = False, timeout: float | None = None) -> int:
        """Send DATA within flow control; returns how many bytes went out."""
        deadline = Deadline(self.timeout if timeout is None else timeout)
        view = memoryview(data)
        sent = 0
        while True:
            stream = self._streams.get(stream_id)
            if not self.alive or stream is None or stream.reset is not None or stream.failed is not None:
                break
            if sent == len(data):
                if end_stream:
                    self.end_stream(stream_id)
                break
            try:
                window = min(self._conn.local_flow_control_window(stream_id), self._conn.max_outbound_frame_size)
            except h2.exceptions.H2Error:
                break  # the stream is closed for sending
            if window <= 0:
                if deadline.expired:
                    self._log(f"> DATA stream {stream_id}: flow-control window shut for {self.timeout:.1f} s")
                    break
                self._read_once(deadline)
                continue
            chunk = view[sent : sent + window]
            last = end_stream and sent + len(chunk) == len(data)
            try:
                self._conn.send_data(stream_id, bytes(chunk), end_stream=last)
            except h2.exceptions.H2Error:
                break
            sent += len(chunk)
            self._flush()
            if last:
                break
        if data:
            self._log(f"> DATA stream {stream_id}: {sent} of {len(data)} bytes{' END_STREAM' if end_stream else ''}")
        return sent

    def send_trailers(self, stream_id: int, headers: Iterable[tuple[str | bytes, str | bytes]]) -> None:
        """A trailing HEADERS block with END_STREAM."""
        pairs = _pairs(headers)
        if self._can_send(stream_id):
            with contextlib.suppress(h2.exceptions.H2Error):
                self._conn.send_headers(stream_id, list(pairs), end_stream=True)
                self._log(f"> HEADERS (trailers) stream {stream_id} {_short(pairs)} END_STREAM")
                self._flush()

    def end_stream(self, stream_id: int) -> None:
        if self._can_send(stream_id):
            with contextlib.suppress(h2.exceptions.H2Error):
                self._conn.end_stream(stream_id)
                self._flush()

    def reset_stream(self, stream_id: int, code: int = ErrorCodes.CANCEL) -> None:
        """Send RST_STREAM (CANCEL by default) for the stream."""
        if self._can_send(stream_id):
            with contextlib.suppress(h2.exceptions.H2Error):
                self._conn.reset_stream(stream_id, error_code=code)
                self._log(f"> RST_STREAM stream {stream_id} {_code_name(code)}")
                self._flush()

    def ping(self, data: bytes = b"acping01") -> None:
        if self.alive:
            with contextlib.suppress(h2.exceptions.H2Error):
                self._conn.ping(data)
                self._flush()

    def _can_send(self, stream_id: int) -> bool:
        stream = self._streams.get(stream_id)
        return self.alive and stream is not None and stream.reset is None and stream.failed is None

    # -- receiving --------------------------------------------------------------------------

    def response(self, stream_id: int, timeout: float | None = None, *, wait_pushes: bool = True) -> H2Response:
        """Wait for the stream (and, with ``wait_pushes``, its pushed streams) to finish."""
        deadline = Deadline(self.timeout if timeout is None else timeout)
        stream = self._streams.get(stream_id)
        if stream is None:
            return H2Response(stream_id, "refused", error="no such stream was opened by this client")

        def finished() -> bool:
            if not stream.done:
                return False
            return not wait_pushes or all(self._streams[p].done for p, _ in stream.pushes if p in self._streams)

        self._wait(finished, deadline)
        result = self._snapshot(stream, final=True)
        self._log(f"= {result.describe()}")
        return result

    def progress(self, stream_id: int) -> H2Response:
        stream = self._streams.get(stream_id)
        if stream is None:
            return H2Response(stream_id, "refused", error="no such stream was opened by this client")
        return self._snapshot(stream, final=False)

    def read_until(self, condition: Callable[[], bool], timeout: float | None = None) -> bool:
        """Read until ``condition()`` holds (True) or the deadline passes / connection ends (False)."""
        return self._wait(condition, Deadline(self.timeout if timeout is None else timeout))

    def _wait(self, condition: Callable[[], bool], deadline: Deadline) -> bool:
        while True:
            if condition():
                return True
            if not self.alive or deadline.expired:
                return False
            self._read_once(deadline)

    def _snapshot(self, stream: _Stream, *, final: bool) -> H2Response:
        if stream.ended:
            outcome = "complete"
        elif stream.reset is not None:
            outcome = "reset"
        elif stream.failed is not None:
            outcome = stream.failed
        else:
            outcome = "timeout" if final else "pending"
        pushes = []
        for pid, headers in stream.pushes:
            pushed = self._streams.get(pid)
            pushes.append(PushPromise(pid, headers, None if pushed is None else self._snapshot(pushed, final=final)))
        return H2Response(
            stream_id=stream.stream_id,
            outcome=outcome,
            status=stream.status,
            headers=tuple((k, v) for k, v in stream.raw_headers if not k.startswith(b":")),
            body=bytes(stream.body),
            trailers=stream.trailers,
            informational=tuple(stream.informational),
            pushes=tuple(pushes),
            reset=stream.reset,
            error=stream.error if outcome not in ("complete", "pending") else None,
            raw_headers=stream.raw_headers,
        )

    def _read_once(self, deadline: Deadline) -> None:
        """One bounded socket read and the events it gives."""
        sock = self.sock
        if sock is None or self.failure is not None:
            return
        try:
            sock.settimeout(max(deadline.remaining(), 0.001))
            data = sock.recv(65536)
        except TimeoutError:
            return
        except ssl.SSLError as exc:
            self._fail(f"TLS: {exc}", "closed")
            return
        except ConnectionResetError:
            self._fail("the connection was reset", "closed")
            return
        except OSError as exc:
            self._fail(f"{type(exc).__name__}: {exc}", "closed")
            return
        if not data:
            self._fail("the server closed the connection", "closed")
            return
        self.received_bytes += len(data)
        if self._head is not None:
            # RFC 9113 §3.4: the server's preface is a SETTINGS frame (type 0x4). Anything else (an
            # HTTP/1.1 error response to our preface, say) is not HTTP/2: say so now, not at the deadline.
            self._head += data
            if len(self._head) >= 4:
                if self._head[3] != 0x4:
                    self._fail(f"not HTTP/2: the server's first bytes are {self._head[:80]!r}", "protocol_error")
                    return
                self._head = None
        if self.received_bytes > self.max_bytes:
            self._fail(f"more than {self.max_bytes} bytes received", "too_large")
            return
        # One whole frame at a time: h2 drops every event of a chunk in which a later frame is
        # bad, so what a case sees before a protocol error would depend on how TCP cut the bytes.
        self._unparsed += data
        while len(self._unparsed) >= FRAME_HEADER_BYTES:
            end = FRAME_HEADER_BYTES + int.from_bytes(self._unparsed[:3], "big")
            if len(self._unparsed) < end:
                break
            frame, self._unparsed = self._unparsed[:end], self._unparsed[end:]
            try:
                events = self._conn.receive_data(frame)
            except h2.exceptions.ProtocolError as exc:
                self._flush()  # h2 queued a GOAWAY for the server
                self._fail(f"{type(exc).__name__}: {exc}", "protocol_error")
                return
            except Exception as exc:  # anything else h2 or hpack trips over in untrusted bytes
                self._fail(f"{type(exc).__name__}: {exc}", "protocol_error")
                return
            for event in events:
                self._handle(event)
        self._flush()

    def _stream(self, stream_id: int | None) -> _Stream:
        sid = int(stream_id or 0)
        stream = self._streams.get(sid)
        if stream is None:
            stream = self._streams[sid] = _Stream(sid)
        return stream

    def _handle(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            stream = self._stream(event.stream_id)
            stream.raw_headers = _pairs(event.headers)
            status = dict(stream.raw_headers).get(b":status", b"")
            stream.status = int(status) if status.isdigit() else None
            self._log(f"< HEADERS stream {event.stream_id} {_short(stream.raw_headers)}")
        elif isinstance(event, h2.events.InformationalResponseReceived):
            pairs = _pairs(event.headers)
            status = dict(pairs).get(b":status", b"")
            code = int(status) if status.isdigit() else 0
            self._stream(event.stream_id).informational.append((code, tuple(p for p in pairs if p[0] != b":status")))
            self._log(f"< HEADERS (informational) stream {event.stream_id} {_short(pairs)}")
        elif isinstance(event, h2.events.TrailersReceived):
            stream = self._stream(event.stream_id)
            stream.trailers = _pairs(event.headers)
            self._log(f"< HEADERS (trailers) stream {event.stream_id} {_short(stream.trailers)}")
        elif isinstance(event, h2.events.DataReceived):
            sid = int(event.stream_id or 0)
            self._stream(sid).body += event.data or b""
            if event.flow_controlled_length:
                with contextlib.suppress(h2.exceptions.H2Error):
                    self._conn.acknowledge_received_data(event.flow_controlled_length, sid)
        elif isinstance(event, h2.events.StreamEnded):
            self._stream(event.stream_id).ended = True
        elif isinstance(event, h2.events.StreamReset):
            stream = self._stream(event.stream_id)
            if not stream.ended:
                stream.reset = int(event.error_code or 0)
                stream.error = f"RST_STREAM {_code_name(stream.reset)}"
            self._log(f"< RST_STREAM stream {event.stream_id} {_code_name(int(event.error_code or 0))}")
        elif isinstance(event, h2.events.PushedStreamReceived):
            pid = int(event.pushed_stream_id or 0)
            pairs = _pairs(event.headers)
            self._stream(event.parent_stream_id).pushes.append((pid, pairs))
            self._stream(pid)
            self._log(f"< PUSH_PROMISE stream {event.parent_stream_id} promised {pid} {_short(pairs)}")
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self.settings_received = True
            for code, setting in event.changed_settings.items():
                self.remote_settings[int(code)] = int(setting.new_value)
        elif isinstance(event, h2.events.ConnectionTerminated):
            last = int(event.last_stream_id or 0)
            code = int(event.error_code or 0)
            self.goaway = GoAway(code, last, bytes(event.additional_data or b""))
            self._log(
                f"< GOAWAY {_code_name(code)} last_stream_id {last} {bytes(event.additional_data or b'')[:200]!r}"
            )
            for sid, stream in self._streams.items():
                if sid > last and sid % 2 == 1 and not stream.done:
                    stream.failed, stream.error = "goaway", f"GOAWAY {_code_name(code)} with last_stream_id {last}"
            if code != ErrorCodes.NO_ERROR:
                self._fail(f"GOAWAY {_code_name(code)}", "closed")

    def _fail(self, reason: str, outcome: str) -> None:
        if self.failure is None:
            self.failure = reason
            self.failure_outcome = outcome
            self._log(f"! {reason}")
        for stream in self._streams.values():
            if not stream.done:
                stream.failed, stream.error = outcome, reason
        if self.sock is not None and outcome != "refused":
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None

    def _flush(self) -> None:
        data = self._conn.data_to_send()
        if not data or self.sock is None:
            return
        try:
            self.sock.settimeout(self.timeout)
            self.sock.sendall(data)
        except OSError as exc:
            self._fail(f"send: {type(exc).__name__}: {exc}", "closed")

    def _log(self, line: str) -> None:
        if len(self._trace) < TRACE_LINES:
            self._trace.append(line[:300])
        elif len(self._trace) == TRACE_LINES:
            self._trace.append("... (trace cut)")

    def close(self) -> None:
        """Send GOAWAY (best effort) and close the socket; adds the trace to the current cell."""
        if self._closed:
            return
        self._closed = True
        if self.sock is not None:
            with contextlib.suppress(Exception):
                self._conn.close_connection()
                self._flush()
            with contextlib.suppress(OSError):
                if self.sock is not None:
                    self.sock.close()
            self.sock = None
        cell = current_cell()
        if self.record and cell is not None:
            cell.trace.extend(self._trace)


def _connect(address: Address, timeout: float) -> socket.socket:
    """A plain TCP or Unix-socket connection (TLS, if any, is wrapped by the client itself)."""
    if address.uds is not None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(address.uds)
        except OSError:
            sock.close()
            raise
        return sock
    if address.host is None or address.port is None:
        raise OSError("an Address needs host and port, or uds")
    sock = socket.create_connection((address.host, address.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _short(pairs: Iterable[tuple[bytes, bytes]]) -> str:
    text = " ".join(f"{k.decode('latin-1')}={v[:60].decode('latin-1')!r}" for k, v in pairs)
    return text[:240]


def _settings_text(settings: Mapping[SettingCodes | int, int]) -> str:
    parts = []
    for code, value in settings.items():
        try:
            name = SettingCodes(code).name
        except ValueError:
            name = str(code)
        parts.append(f"{name}={value}")
    return ", ".join(parts)
