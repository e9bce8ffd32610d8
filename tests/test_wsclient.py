"""The WebSocket client: every outcome kind, against tiny scripted servers (wsproto's server side)."""

from __future__ import annotations

import socket
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from wsproto import ConnectionType, WSConnection
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

from asgi_conformance import client
from asgi_conformance.wsclient import Accepted, Binary, CloseFrame, Denied, Text, WebSocket

Script = Callable[[socket.socket], None]


@pytest.fixture
def serve() -> Iterator[Callable[..., client.Address]]:
    """Run a one-connection scripted server in a thread (TCP, or a Unix socket); return its address."""
    threads: list[threading.Thread] = []
    listeners: list[socket.socket] = []
    tmp = tempfile.TemporaryDirectory()

    def start(script: Script, *, uds: bool = False) -> client.Address:
        if uds:
            path = str(Path(tmp.name) / "ws.sock")
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(path)
            listener.listen()
            address = client.Address(uds=path)
        else:
            listener = socket.create_server(("127.0.0.1", 0))
            address = client.Address(host="127.0.0.1", port=listener.getsockname()[1])
        listeners.append(listener)

        def run() -> None:
            listener.settimeout(5)
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(5)
                script(conn)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)
        return address

    yield start
    for thread in threads:
        thread.join(timeout=5)
    for listener in listeners:
        listener.close()
    tmp.cleanup()


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


class Peer:
    """wsproto's server side over a socket: enough to script a well-behaved server."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.ws = WSConnection(ConnectionType.SERVER)
        self.request: Request | None = None

    def events(self) -> list[Any]:
        data = self.conn.recv(65536)
        self.ws.receive_data(data or None)
        found = list(self.ws.events())
        for event in found:
            if isinstance(event, Request):
                self.request = event
        return found

    def handshake(self) -> Request:
        while self.request is None:
            self.events()
        return self.request

    def send(self, event: object) -> None:
        self.conn.sendall(self.ws.send(event))  # type: ignore[arg-type]

    def next_message(self) -> object:
        while True:
            for event in self.events():
                if isinstance(event, TextMessage | BytesMessage | CloseConnection | Pong):
                    return event


def test_accept_echo_and_close(serve: Callable[..., client.Address]) -> None:
    seen: dict[str, object] = {}

    def script(conn: socket.socket) -> None:
        peer = Peer(conn)
        request = peer.handshake()
        seen["subprotocols"] = request.subprotocols
        seen["headers"] = request.extra_headers
        seen["target"] = request.target
        peer.send(AcceptConnection(subprotocol="b", extra_headers=[(b"x-a", b"1")]))
        for _ in range(2):
            message = peer.next_message()
            assert isinstance(message, TextMessage | BytesMessage)
            peer.send(message)
        peer.send(CloseConnection(code=4001, reason="bye"))
        assert isinstance(peer.next_message(), CloseConnection)

    with WebSocket(serve(script), 5) as ws:
        outcome = ws.handshake("/ws/x?q=1", subprotocols=["a", "b"], headers=[("X-Extra", "yes")])
        assert isinstance(outcome, Accepted)
        assert outcome.subprotocol == "b"
        assert outcome.header(b"X-A") == b"1"
        assert ws.send_text("héllo") is None
        assert ws.receive() == Text("héllo")
        assert ws.send_bytes(b"\x00\xff") is None
        assert ws.receive() == Binary(b"\x00\xff")
        assert ws.receive() == CloseFrame(4001, "bye")
    assert seen["subprotocols"] == ["a", "b"]
    assert seen["target"] == "/ws/x?q=1"
    assert (b"x-extra", b"yes") in [(bytes(k), bytes(v)) for k, v in seen["headers"]]  # type: ignore[attr-defined]


def test_client_close_gets_the_reply(serve: Callable[..., client.Address]) -> None:
    def script(conn: socket.socket) -> None:
        peer = Peer(conn)
        peer.handshake()
        peer.send(AcceptConnection())
        peer.send(TextMessage(data="first"))
        close = peer.next_message()
        assert isinstance(close, CloseConnection)
        peer.send(close.response())

    with WebSocket(serve(script), 5) as ws:
        assert isinstance(ws.handshake("/"), Accepted)
        assert ws.close(1000, "done") == CloseFrame(1000, "done")


def test_fragments_and_pings(serve: Callable[..., client.Address]) -> None:
    def script(conn: socket.socket) -> None:
        peer = Peer(conn)
        peer.handshake()
        peer.send(AcceptConnection())
        peer.send(TextMessage(data="ab", message_finished=False))
        peer.send(Ping(payload=b"p"))
        peer.send(TextMessage(data="cd", message_finished=True))
        pong = peer.next_message()
        assert isinstance(pong, Pong)
        assert pong.payload == b"p"

    with WebSocket(serve(script), 5) as ws:
        assert isinstance(ws.handshake("/"), Accepted)
        assert ws.receive() == Text("abcd")
        assert isinstance(ws.receive(), client.Closed)


def test_frames_sent_with_the_101(serve: Callable[..., client.Address]) -> None:
    def script(conn: socket.socket) -> None:
        peer = Peer(conn)
        peer.handshake()
        conn.sendall(peer.ws.send(AcceptConnection()) + peer.ws.send(TextMessage(data="early")))

    with WebSocket(serve(script), 5) as ws:
        assert isinstance(ws.handshake("/"), Accepted)
        assert ws.receive() == Text("early")


def test_denied_with_body_and_what_follows(serve: Callable[..., client.Address]) -> None:
    def script(conn: socket.socket) -> None:
        peer = Peer(conn)
        peer.handshake()
        peer.send(RejectConnection(status_code=403, headers=[(b"content-length", b"4")], has_body=True))
        peer.send(RejectData(data=b"nope"))
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")

    with WebSocket(serve(script), 5) as ws:
        outcome = ws.handshake("/")
        assert isinstance(outcome, Denied)
        assert (outcome.status, outcome.body) == (403, b"nope")
        rest, end = ws.read_rest(2)
        assert rest == b"HTTP/1.1 101 Switching Protocols\r\n\r\n"
        assert isinstance(end, client.Closed)


def test_denied_cut_short(serve: Callable[..., client.Address]) -> None:
    def script(conn: socket.socket) -> None:
        _read_request(conn)
        conn.sendall(b"HTTP/1.1 500 Oops\r\nContent-Length: 10\r\n\r\nabc")

    with WebSocket(serve(script), 5) as ws:
        outcome = ws.handshake("/")
        assert isinstance(outcome, Denied)
        assert (outcome.status, outcome.body, outcome.complete) == (500, b"abc", False)


def test_closed_timeout_malformed_reset(serve: Callable[..., client.Address]) -> None:
    def closes(conn: socket.socket) -> None:
        _read_request(conn)

    with WebSocket(serve(closes), 5) as ws:
        assert isinstance(ws.handshake("/"), client.Closed)

    release = threading.Event()

    def silent(conn: socket.socket) -> None:
        _read_request(conn)
        release.wait(5)

    with WebSocket(serve(silent), 5) as ws:
        started = time.monotonic()
        assert isinstance(ws.handshake("/", timeout=0.2), client.Timeout)
        assert time.monotonic() - started < 2
    release.set()

    def garbage(conn: socket.socket) -> None:
        _read_request(conn)
        conn.sendall(b"\x00\x01 not http\r\n\r\n")

    with WebSocket(serve(garbage), 5) as ws:
        assert isinstance(ws.handshake("/"), client.Malformed)

    def resets(conn: socket.socket) -> None:
        _read_request(conn)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    with WebSocket(serve(resets), 5) as ws:
        assert isinstance(ws.handshake("/"), client.Reset | client.Closed)


def test_bad_accept_token_is_malformed(serve: Callable[..., client.Address]) -> None:
    def script(conn: socket.socket) -> None:
        _read_request(conn)
        conn.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: wrong\r\n\r\n"
        )

    with WebSocket(serve(script), 5) as ws:
        outcome = ws.handshake("/")
        assert isinstance(outcome, client.Malformed)
        assert "accept" in outcome.error.lower()


def test_tcp_drop_after_accept_and_receive_timeout(serve: Callable[..., client.Address]) -> None:
    release = threading.Event()

    def script(conn: socket.socket) -> None:
        peer = Peer(conn)
        peer.handshake()
        peer.send(AcceptConnection())
        release.wait(5)

    with WebSocket(serve(script), 5) as ws:
        assert isinstance(ws.handshake("/"), Accepted)
        started = time.monotonic()
        assert isinstance(ws.receive(0.2), client.Timeout)
        assert time.monotonic() - started < 2
        release.set()
        assert isinstance(ws.receive(5), client.Closed)


def test_invalid_frame_is_malformed(serve: Callable[..., client.Address]) -> None:
    def script(conn: socket.socket) -> None:
        peer = Peer(conn)
        peer.handshake()
        peer.send(AcceptConnection())
        conn.sendall(b"\x83\x00")  # opcode 3 is reserved

    with WebSocket(serve(script), 5) as ws:
        assert isinstance(ws.handshake("/"), Accepted)
        assert isinstance(ws.receive(), client.Malformed)


def test_unix_socket_and_refused(serve: Callable[..., client.Address], tmp_path: Path) -> None:
    def script(conn: socket.socket) -> None:
        peer = Peer(conn)
        peer.handshake()
        peer.send(AcceptConnection())
        peer.send(CloseConnection(code=1000))

    with WebSocket(serve(script, uds=True), 5) as ws:
        assert isinstance(ws.handshake("/"), Accepted)
        assert ws.receive() == CloseFrame(1000, "")

    with WebSocket(client.Address(uds=str(tmp_path / "nobody.sock")), 1) as ws:
        assert isinstance(ws.handshake("/"), client.Refused)
