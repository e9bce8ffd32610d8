"""The HTTP/2 client: every outcome kind, against small scripted h2 servers in a thread."""

from __future__ import annotations

import collections
import hashlib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest

from asgi_conformance import client
from asgi_conformance.h2client import ErrorCodes, H2Client, SettingCodes

# A script gets the server's h2 connection and each event; it returns False to stop serving.
Script = Callable[[h2.connection.H2Connection, h2.events.Event, socket.socket], "bool | None"]

LIMIT = 10.0  # no test thread lives longer than this


class Served:
    """What a scripted server saw (read by the test after the client is done)."""

    def __init__(self) -> None:
        self.events: list[h2.events.Event] = []
        self.error: BaseException | None = None
        self.done = threading.Event()


def _send_pending(conn: h2.connection.H2Connection, sock: socket.socket) -> None:
    data = conn.data_to_send()
    if data:
        sock.sendall(data)


@pytest.fixture
def serve() -> Iterator[Callable[..., tuple[client.Address, Served]]]:
    """Run a one-connection h2 server in a thread, driven by a script; return its address."""
    threads: list[threading.Thread] = []
    listeners: list[socket.socket] = []

    def start(
        script: Script,
        *,
        raw: Callable[[socket.socket], None] | None = None,
        tls: ssl.SSLContext | None = None,
        settings: dict[Any, int] | None = None,
    ) -> tuple[client.Address, Served]:
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)
        served = Served()

        def run() -> None:
            deadline = time.monotonic() + LIMIT
            try:
                listener.settimeout(LIMIT)
                sock, _ = listener.accept()
                if tls is not None:
                    sock = tls.wrap_socket(sock, server_side=True)
                with sock:
                    if raw is not None:
                        raw(sock)
                        return
                    config = h2.config.H2Configuration(client_side=False, header_encoding=None)
                    conn = h2.connection.H2Connection(config=config)
                    if settings:
                        conn.local_settings = h2.settings.Settings(client=False, initial_values=settings)
                    conn.initiate_connection()
                    _send_pending(conn, sock)
                    while time.monotonic() < deadline:
                        sock.settimeout(max(0.01, deadline - time.monotonic()))
                        try:
                            data = sock.recv(65536)
                        except (TimeoutError, ConnectionError):
                            return
                        if not data:
                            return
                        for event in conn.receive_data(data):
                            served.events.append(event)
                            if script(conn, event, sock) is False:
                                _send_pending(conn, sock)
                                _close_after_peer(sock, deadline)
                                return
                        _send_pending(conn, sock)
            except BaseException as exc:  # reported by the test
                served.error = exc
            finally:
                served.done.set()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)
        return client.Address(host="127.0.0.1", port=listener.getsockname()[1]), served

    yield start
    for thread in threads:
        thread.join(timeout=LIMIT)
    for listener in listeners:
        listener.close()


def _close_after_peer(sock: socket.socket, deadline: float) -> None:
    """End our side with a FIN and read until the client closes (bounded).

    Closing with the client's bytes unread would turn the close into a reset, and Linux
    then drops whatever of ours is still queued (most likely the last small write, held
    back by Nagle), so the client could lose the response the test sends last.
    """
    sock.shutdown(socket.SHUT_WR)
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if not sock.recv(65536):
                return
        except (TimeoutError, ConnectionError):
            return


def _respond(
    conn: h2.connection.H2Connection,
    sid: int,
    body: bytes = b"ok",
    headers: list[tuple[bytes, bytes]] | None = None,
    *,
    trailers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    conn.send_headers(sid, [(b":status", b"200"), *(headers or [])])
    conn.send_data(sid, body, end_stream=trailers is None)
    if trailers is not None:
        conn.send_headers(sid, trailers, end_stream=True)


def test_response_with_informational_and_trailers(serve: Callable[..., tuple[client.Address, Served]]) -> None:
    def script(conn: h2.connection.H2Connection, event: h2.events.Event, sock: socket.socket) -> None:
        if isinstance(event, h2.events.StreamEnded):
            sid = event.stream_id
            conn.send_headers(sid, [(b":status", b"103"), (b"link", b"</a>")])
            _respond(conn, sid, b"hello", [(b"x-a", b"1")], trailers=[(b"x-t", b"done")])

    address, served = serve(script)
    with H2Client(address, timeout=5) as h2c:
        sid = h2c.request("POST", "/p?q=1", headers=[(b"te", b"trailers")], body=b"up")
        resp = h2c.response(sid)
    assert resp.complete, resp.describe()
    assert (resp.status, resp.body, resp.header(b"x-a"), resp.trailers) == (200, b"hello", b"1", ((b"x-t", b"done"),))
    assert resp.informational == ((103, ((b"link", b"</a>"),)),)
    assert resp.raw_headers[0] == (b":status", b"200")
    assert served.done.wait(LIMIT)
    request = next(e for e in served.events if isinstance(e, h2.events.RequestReceived))
    assert [tuple(h) for h in request.headers or []][:4] == [
        (b":method", b"POST"),
        (b":scheme", b"http"),
        (b":authority", f"127.0.0.1:{address.port}".encode()),
        (b":path", b"/p?q=1"),
    ]
    data = b"".join(e.data or b"" for e in served.events if isinstance(e, h2.events.DataReceived))
    assert data == b"up"


def test_concurrent_streams_answered_out_of_order(serve: Callable[..., tuple[client.Address, Served]]) -> None:
    ended: list[int] = []
    paths: dict[int, bytes] = {}

    def script(conn: h2.connection.H2Connection, event: h2.events.Event, sock: socket.socket) -> None:
        if isinstance(event, h2.events.RequestReceived):
            paths[int(event.stream_id or 0)] = dict(event.headers or [])[b":path"]
        if isinstance(event, h2.events.StreamEnded):
            ended.append(int(event.stream_id or 0))
            if len(ended) == 3:
                for sid in reversed(ended):
                    _respond(conn, sid, paths[sid])

    address, _ = serve(script)
    with H2Client(address, timeout=5) as h2c:
        sids = [h2c.request("GET", f"/s{i}") for i in range(3)]
        bodies = [h2c.response(sid).body for sid in sids]
    assert bodies == [b"/s0", b"/s1", b"/s2"]


def test_large_bodies_flow_both_ways(serve: Callable[..., tuple[client.Address, Served]]) -> None:
    """4 MiB each way with default 65,535-byte windows: both sides must send WINDOW_UPDATEs."""
    big = bytes(range(256)) * (4 * 4096)
    received = bytearray()
    pending: dict[int, memoryview] = {}

    def pump(conn: h2.connection.H2Connection, sid: int) -> None:
        view = pending[sid]
        while view:
            size = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size, len(view))
            if size <= 0:
                break
            conn.send_data(sid, bytes(view[:size]), end_stream=size == len(view))
            view = view[size:]
        pending[sid] = view

    def script(conn: h2.connection.H2Connection, event: h2.events.Event, sock: socket.socket) -> None:
        if isinstance(event, h2.events.DataReceived):
            received.extend(event.data or b"")
            conn.acknowledge_received_data(event.flow_controlled_length or 0, int(event.stream_id or 0))
        elif isinstance(event, h2.events.StreamEnded):
            sid = int(event.stream_id or 0)
            conn.send_headers(sid, [(b":status", b"200")])
            pending[sid] = memoryview(big)
            pump(conn, sid)
        elif isinstance(event, h2.events.WindowUpdated):
            for sid in list(pending):
                pump(conn, sid)

    address, _ = serve(script)
    with H2Client(address, timeout=8) as h2c:
        sid = h2c.request("PUT", "/big", body=big)
        resp = h2c.response(sid)
    assert resp.complete, resp.describe()
    assert hashlib.sha256(resp.body).digest() == hashlib.sha256(big).digest()
    assert bytes(received) == big


def test_server_reset_is_an_outcome_and_other_streams_go_on(
    serve: Callable[..., tuple[client.Address, Served]],
) -> None:
    def script(conn: h2.connection.H2Connection, event: h2.events.Event, sock: socket.socket) -> None:
        if isinstance(event, h2.events.StreamEnded):
            if event.stream_id == 1:
                conn.reset_stream(1, ErrorCodes.REFUSED_STREAM)
            else:
                _respond(conn, int(event.stream_id or 0))

    address, _ = serve(script)
    with H2Client(address, timeout=5) as h2c:
        first, second = h2c.request("GET", "/a"), h2c.request("GET", "/b")
        r1, r2 = h2c.response(first), h2c.response(second)
    assert (r1.outcome, r1.reset) == ("reset", ErrorCodes.REFUSED_STREAM)
    assert r2.complete


def test_client_reset_reaches_the_server(serve: Callable[..., tuple[client.Address, Served]]) -> None:
    def script(conn: h2.connection.H2Connection, event: h2.events.Event, sock: socket.socket) -> bool | None:
        if isinstance(event, h2.events.StreamReset):
            _respond(conn, 3)
        return None

    address, served = serve(script)
    with H2Client(address, timeout=5) as h2c:
        first = h2c.request("POST", "/slow", end_stream=False)
        h2c.send_data(first, b"part")
        second = h2c.request("GET", "/b")
        h2c.reset_stream(first)
        assert h2c.response(second).complete
        assert h2c.progress(first).outcome == "pending"  # our own reset is not the server's
    assert served.done.wait(LIMIT)
    resets = [e for e in served.events if isinstance(e, h2.events.StreamReset)]
    assert [(e.stream_id, e.error_code) for e in resets] == [(1, ErrorCodes.CANCEL)]


def test_graceful_goaway_lets_lower_streams_finish(serve: Callable[..., tuple[client.Address, Served]]) -> None:
    def script(conn: h2.connection.H2Connection, event: h2.events.Event, sock: socket.socket) -> bool | None:
        if isinstance(event, h2.events.StreamEnded) and event.stream_id == 3:
            conn.close_connection(last_stream_id=1)
            _send_pending(conn, sock)
            # h2 refuses to send after its own GOAWAY: write stream 1's response by hand.
            sock.sendall(_frames_for_response(1, b"late"))
            return False
        return None

    address, _ = serve(script)
    with H2Client(address, timeout=5) as h2c:
        first, second = h2c.request("GET", "/a"), h2c.request("GET", "/b")
        r2, r1 = h2c.response(second), h2c.response(first)
        later = h2c.response(h2c.request("GET", "/c"))
        assert h2c.goaway is not None
        assert (h2c.goaway.error_code, h2c.goaway.last_stream_id) == (0, 1)
    assert r2.outcome == "goaway"
    assert (r1.outcome, r1.body) == ("complete", b"late")
    assert later.outcome == "goaway"


def _frames_for_response(sid: int, body: bytes) -> bytes:
    """A HEADERS (:status 200, HPACK static index 8) and a DATA frame with END_STREAM."""
    headers = b"\x88"
    out = len(headers).to_bytes(3, "big") + b"\x01\x04" + sid.to_bytes(4, "big") + headers
    return out + len(body).to_bytes(3, "big") + b"\x00\x01" + sid.to_bytes(4, "big") + body


def test_garbage_is_a_protocol_error(serve: Callable[..., tuple[client.Address, Served]]) -> None:
    def raw(sock: socket.socket) -> None:
        sock.recv(65536)
        sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        time.sleep(0.2)

    address, _ = serve(lambda *a: None, raw=raw)
    with H2Client(address, timeout=5) as h2c:
        resp = h2c.response(h2c.request("GET", "/"))
        assert h2c.failure is not None
    assert resp.outcome == "protocol_error", resp.describe()


def test_closed_and_timeout(serve: Callable[..., tuple[client.Address, Served]]) -> None:
    address, _ = serve(lambda *a: None, raw=lambda sock: None)
    with H2Client(address, timeout=5) as h2c:
        assert h2c.response(h2c.request("GET", "/")).outcome == "closed"

    address, _ = serve(lambda *a: None)
    with H2Client(address, timeout=0.3) as h2c:
        sid = h2c.request("GET", "/")
        assert h2c.response(sid).outcome == "timeout"
        assert not h2c.read_until(lambda: False, timeout=0.1)
        assert h2c.progress(sid).outcome == "pending"


def test_refused() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    with H2Client(client.Address("127.0.0.1", port), timeout=2) as h2c:
        resp = h2c.response(h2c.request("GET", "/"))
        assert h2c.send_data(1, b"x") == 0
        h2c.reset_stream(1)
    assert resp.outcome == "refused"
    assert resp.error is not None
    assert "connect" in resp.error


def test_push_promise_and_pushed_response(serve: Callable[..., tuple[client.Address, Served]]) -> None:
    def script(conn: h2.connection.H2Connection, event: h2.events.Event, sock: socket.socket) -> None:
        if isinstance(event, h2.events.StreamEnded):
            promised = conn.get_next_available_stream_id()
            request = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"a.example"), (b":path", b"/p")]
            conn.push_stream(1, promised, request)
            conn.send_headers(1, [(b":status", b"200")])
            _respond(conn, promised, b"pushed")
            conn.send_data(1, b"main", end_stream=True)

    address, _ = serve(script)
    with H2Client(address, timeout=5) as h2c:
        resp = h2c.response(h2c.request("GET", "/"))
    assert resp.complete
    assert resp.body == b"main"
    (push,) = resp.pushes
    assert (push.promised_stream_id, push.header(b":path"), push.header(b":authority")) == (2, b"/p", b"a.example")
    assert push.response is not None
    assert (push.response.outcome, push.response.body) == ("complete", b"pushed")


def test_push_when_disabled_is_counted_and_fails_the_connection(
    serve: Callable[..., tuple[client.Address, Served]],
) -> None:
    def raw(sock: socket.socket) -> None:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding=None))
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        sock.settimeout(5)
        got: list[h2.events.Event] = []
        while not any(isinstance(e, h2.events.RequestReceived) for e in got):
            data = sock.recv(65536)
            if not data:
                return
            got.extend(conn.receive_data(data))
        # Ignore the client's ENABLE_PUSH=0, as a broken server would.
        conn.remote_settings.acknowledge()
        conn.remote_settings._settings[SettingCodes.ENABLE_PUSH] = collections.deque([1])
        request = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"x"), (b":path", b"/p")]
        conn.push_stream(1, 2, request)
        sock.sendall(conn.data_to_send())
        time.sleep(0.2)

    address, _ = serve(lambda *a: None, raw=raw)
    with H2Client(address, timeout=5, enable_push=False) as h2c:
        resp = h2c.response(h2c.request("GET", "/"))
        assert h2c.frames_received["PushPromiseFrame"] == 1
    assert resp.outcome == "protocol_error"
    assert resp.error is not None
    assert "push" in resp.error.lower()


def test_too_large(serve: Callable[..., tuple[client.Address, Served]]) -> None:
    def script(conn: h2.connection.H2Connection, event: h2.events.Event, sock: socket.socket) -> None:
        if isinstance(event, h2.events.StreamEnded):
            conn.send_headers(1, [(b":status", b"200")])
            for _ in range(3):
                conn.send_data(1, b"x" * 16000)

    address, _ = serve(script)
    with H2Client(address, timeout=5, max_bytes=20000) as h2c:
        resp = h2c.response(h2c.request("GET", "/"))
    assert resp.outcome == "too_large"


def test_settings_and_connection_window(serve: Callable[..., tuple[client.Address, Served]]) -> None:
    def script(conn: h2.connection.H2Connection, event: h2.events.Event, sock: socket.socket) -> None:
        if isinstance(event, h2.events.StreamEnded):
            _respond(conn, 1)

    address, served = serve(script, settings={SettingCodes.ENABLE_CONNECT_PROTOCOL: 1})
    settings = {SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20}
    with H2Client(address, timeout=5, settings=settings, connection_window=1 << 24) as h2c:
        assert h2c.response(h2c.request("GET", "/")).complete
        assert h2c.remote_settings.get(SettingCodes.ENABLE_CONNECT_PROTOCOL) == 1
    assert served.done.wait(LIMIT)
    changed = next(e for e in served.events if isinstance(e, h2.events.RemoteSettingsChanged))
    assert changed.changed_settings[SettingCodes.INITIAL_WINDOW_SIZE].new_value == 1 << 20
    assert changed.changed_settings[SettingCodes.ENABLE_PUSH].new_value == 1
    window = next(e for e in served.events if isinstance(e, h2.events.WindowUpdated) and e.stream_id == 0)
    assert window.delta == 1 << 24


def test_tls_alpn(serve: Callable[..., tuple[client.Address, Served]]) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")

    def server_context(protocols: list[str]) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(ctx)
        ctx.set_alpn_protocols(protocols)
        return ctx

    def client_context() -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ca.configure_trust(ctx)
        ctx.set_alpn_protocols(["h2"])
        return ctx

    def script(conn: h2.connection.H2Connection, event: h2.events.Event, sock: socket.socket) -> None:
        if isinstance(event, h2.events.StreamEnded):
            _respond(conn, 1, b"tls")

    address, served = serve(script, tls=server_context(["h2"]))
    with H2Client(address, timeout=5, ssl_context=client_context(), server_hostname="localhost") as h2c:
        resp = h2c.response(h2c.request("GET", "/"))
        assert h2c.alpn == "h2"
    assert (resp.outcome, resp.body) == ("complete", b"tls")
    assert served.done.wait(LIMIT)
    request = next(e for e in served.events if isinstance(e, h2.events.RequestReceived))
    assert dict(request.headers or [])[b":scheme"] == b"https"

    address, _ = serve(lambda *a: None, raw=lambda sock: None, tls=server_context(["http/1.1"]))
    with H2Client(address, timeout=5, ssl_context=client_context(), server_hostname="localhost") as h2c:
        resp = h2c.response(h2c.request("GET", "/"))
    assert resp.outcome == "refused"
    assert resp.error is not None
    assert "ALPN" in resp.error


def test_request_trailers_and_ping(serve: Callable[..., tuple[client.Address, Served]]) -> None:
    def script(conn: h2.connection.H2Connection, event: h2.events.Event, sock: socket.socket) -> None:
        if isinstance(event, h2.events.StreamEnded):
            _respond(conn, int(event.stream_id or 0))

    address, served = serve(script)
    with H2Client(address, timeout=5) as h2c:
        sid = h2c.request("POST", "/t", end_stream=False)
        assert h2c.send_data(sid, b"body") == 4
        h2c.send_trailers(sid, [(b"x-sum", b"1")])
        h2c.ping()
        assert h2c.response(sid).complete
    assert served.done.wait(LIMIT)
    trailers = next(e for e in served.events if isinstance(e, h2.events.TrailersReceived))
    assert [tuple(h) for h in trailers.headers or []] == [(b"x-sum", b"1")]
    assert any(isinstance(e, h2.events.PingReceived) for e in served.events)
