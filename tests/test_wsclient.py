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
from asgi_conformance.wsclient import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_TEXT,
    RSV1,
    RSV2,
    Accepted,
    Binary,
    CloseFrame,
    Denied,
    Frame,
    FrameError,
    FrameParser,
    Inflater,
    RawResponse,
    RawWebSocket,
    Text,
    WebSocket,
    accept_token,
    close_payload,
    deflate_message,
    encode_frame,
)

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


# -- the raw layer -------------------------------------------------------------------------


def test_accept_token_is_the_rfc_sample() -> None:
    assert accept_token("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_encode_frame_is_byte_exact() -> None:
    assert encode_frame(OP_TEXT, b"Hello", mask=None) == b"\x81\x05Hello"  # RFC 6455 §5.7
    masked = encode_frame(OP_TEXT, b"Hello", mask=b"\x37\xfa\x21\x3d")
    assert masked == b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"  # RFC 6455 §5.7
    assert encode_frame(OP_PING, b"", fin=False, rsv=RSV2, mask=None) == b"\x29\x00"
    assert encode_frame(0xB, b"x", mask=None)[0] == 0x8B
    assert encode_frame(OP_BINARY, b"a" * 256, mask=None)[:4] == b"\x82\x7e\x01\x00"
    assert encode_frame(OP_BINARY, b"ab", mask=None, length_form=64) == b"\x82\x7f" + struct.pack("!Q", 2) + b"ab"
    lying = encode_frame(OP_BINARY, b"", mask=None, length=1 << 63, length_form=64)
    assert lying == b"\x82\x7f\x80" + b"\x00" * 7
    assert close_payload(1000, b"\xff") == b"\x03\xe8\xff"
    assert close_payload(None) == b""


def test_wsproto_reads_what_encode_frame_writes() -> None:
    server = WSConnection(ConnectionType.SERVER)
    request = WSConnection(ConnectionType.CLIENT).send(Request(host="h", target="/"))
    server.receive_data(request)
    list(server.events())
    server.send(AcceptConnection())
    server.receive_data(
        encode_frame(OP_TEXT, b"H\xe2\x82", fin=False) + encode_frame(OP_PING, b"p") + encode_frame(0, b"\xac")
    )
    events = list(server.events())
    assert [type(e).__name__ for e in events] == ["TextMessage", "Ping", "TextMessage"]
    assert "".join(e.data for e in events if isinstance(e, TextMessage)) == "H\u20ac"


def test_frame_parser_bounds_and_forms() -> None:
    parser = FrameParser(max_payload=1000)
    data = (
        encode_frame(OP_TEXT, b"hi", mask=None)
        + encode_frame(OP_BINARY, b"z" * 300, mask=None)
        + encode_frame(OP_CLOSE, close_payload(1002, b"bad"), mask=b"abcd")
    )
    frames = parser.feed(data[:5]) + parser.feed(data[5:])
    assert [f.opcode for f in frames] == [OP_TEXT, OP_BINARY, OP_CLOSE]
    assert frames[1].payload == b"z" * 300
    close = frames[2]
    assert close.masked
    assert close.code == 1002
    assert close.reason == b"bad"
    assert Frame(True, 0, OP_CLOSE, False, b"\x03").code is None
    assert (
        parser.feed(encode_frame(OP_TEXT, b"", mask=None, fin=False, rsv=RSV1))[0].describe()
        == "text b'' FIN=0 RSV=100"
    )
    with pytest.raises(FrameError):
        parser.feed(encode_frame(OP_BINARY, b"", mask=None, length=1001))


def test_deflate_round_trip() -> None:
    inflater = Inflater(max_size=10_000)
    for text in (b"hello " * 50, b"again " * 50):
        assert inflater.inflate(deflate_message(text)) == text
    assert Inflater().inflate(deflate_message(b"small window", 9)) == b"small window"
    with pytest.raises(FrameError):
        Inflater(max_size=10).inflate(deflate_message(b"x" * 100))


def test_raw_handshake_frames_and_end(serve: Callable[..., client.Address]) -> None:
    seen: dict[str, bytes] = {}

    def script(conn: socket.socket) -> None:
        request = _read_request(conn)
        seen["request"] = request
        key = [line.split(b": ", 1)[1] for line in request.split(b"\r\n") if line.startswith(b"Sec-WebSocket-Key")]
        accept = accept_token(key[0]).encode()
        conn.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n" + encode_frame(OP_TEXT, b"early", mask=None)
        )
        data = b""
        while len(data) < 2 + 3 + 3:
            data += conn.recv(100)
        seen["frame"] = data
        conn.sendall(encode_frame(OP_CLOSE, close_payload(1002), mask=None))

    with RawWebSocket(serve(script), 5) as ws:
        outcome = ws.handshake("/x", extensions="permessage-deflate", headers=[("X-A", "1")])
        assert isinstance(outcome, RawResponse)
        assert outcome.status == 101
        assert outcome.header(b"sec-websocket-accept") == accept_token(ws.key).encode()
        assert outcome.values(b"UPGRADE") == [b"websocket"]
        first = ws.read_frame()
        assert isinstance(first, Frame)
        assert first.payload == b"early"
        assert not first.masked
        assert ws.send_frame(OP_PING, b"abc", mask=None) is None
        assert ws.send_raw(b"\x00\x00\x00") is None
        frames, end = ws.wait_end(5)
        assert [f.code for f in frames] == [1002]
        assert isinstance(end, client.Closed | client.Reset)
    assert b"Sec-WebSocket-Extensions: permessage-deflate" in seen["request"]
    assert seen["frame"].startswith(b"\x89\x03abc")


def test_raw_handshake_outcomes(serve: Callable[..., client.Address]) -> None:
    def denied(conn: socket.socket) -> None:
        seen = _read_request(conn)
        assert seen.startswith(b"POST /p HTTP/1.0\r\n")
        assert b"Sec-WebSocket-Key" not in seen
        assert b"Sec-WebSocket-Version: 8" in seen
        conn.sendall(b"HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n\r\n")

    with RawWebSocket(serve(denied), 5) as ws:
        outcome = ws.handshake("/p", method="POST", http_version="HTTP/1.0", key=None, version="8")
        assert isinstance(outcome, RawResponse)
        assert (outcome.status, outcome.header(b"sec-websocket-version")) == (426, b"13")

    def garbage(conn: socket.socket) -> None:
        _read_request(conn)
        conn.sendall(b"SSH-2.0\r\n\r\n")

    with RawWebSocket(serve(garbage), 5) as ws:
        assert isinstance(ws.handshake("/"), client.Malformed)

    def silent(conn: socket.socket) -> None:
        _read_request(conn)
        time.sleep(0.5)

    with RawWebSocket(serve(silent), 5) as ws:
        assert isinstance(ws.handshake("/", timeout=0.1), client.Timeout)
