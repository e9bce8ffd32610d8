"""The raw HTTP/1.1 client: every outcome kind, against tiny scripted socket servers."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterator

import pytest

from asgi_conformance import client

Script = Callable[[socket.socket], None]


@pytest.fixture
def serve() -> Iterator[Callable[[Script], client.Address]]:
    """Run a one-connection scripted server in a thread; return its address."""
    threads: list[threading.Thread] = []
    listeners: list[socket.socket] = []

    def start(script: Script) -> client.Address:
        listener = socket.create_server(("127.0.0.1", 0))
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
        return client.Address(host="127.0.0.1", port=listener.getsockname()[1])

    yield start
    for thread in threads:
        thread.join(timeout=5)
    for listener in listeners:
        listener.close()


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_response(serve: Callable[[Script], client.Address]) -> None:
    def script(conn: socket.socket) -> None:
        _read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nX-Mixed: Case\r\nContent-Length: 2\r\n\r\nok")

    outcome = client.exchange(serve(script), client.build_request("GET", "/"), timeout=5)
    assert isinstance(outcome, client.Response)
    assert (outcome.status, outcome.body, outcome.header(b"x-mixed")) == (200, b"ok", b"Case")


def test_informational_responses_are_kept(serve: Callable[[Script], client.Address]) -> None:
    def script(conn: socket.socket) -> None:
        _read_request(conn)
        conn.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")

    outcome = client.exchange(serve(script), client.build_request("GET", "/"), timeout=5)
    assert isinstance(outcome, client.Response)
    assert (outcome.status, outcome.informational) == (204, (103,))


def test_closed_before_anything(serve: Callable[[Script], client.Address]) -> None:
    def script(conn: socket.socket) -> None:
        _read_request(conn)

    outcome = client.exchange(serve(script), client.build_request("GET", "/"), timeout=5)
    assert outcome == client.Closed(b"")


def test_closed_mid_response(serve: Callable[[Script], client.Address]) -> None:
    def script(conn: socket.socket) -> None:
        _read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")

    outcome = client.exchange(serve(script), client.build_request("GET", "/"), timeout=5)
    assert isinstance(outcome, client.Closed)
    assert outcome.received.endswith(b"abc")


def test_reset(serve: Callable[[Script], client.Address]) -> None:
    def script(conn: socket.socket) -> None:
        _read_request(conn)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    outcome = client.exchange(serve(script), client.build_request("GET", "/"), timeout=5)
    assert isinstance(outcome, client.Reset)


def _answer_then_reset(answer: bytes) -> Script:
    def script(conn: socket.socket) -> None:
        _read_request(conn)
        conn.sendall(answer)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    return script


def test_reset_ending_a_close_delimited_body_keeps_the_answer(serve: Callable[[Script], client.Address]) -> None:
    """A server that closes with bytes unread resets; a body that runs to the end is then
    cut by the reset, not by a close, and the answer before it still counts."""
    answer = b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\nInvalid"
    outcome = client.exchange(serve(_answer_then_reset(answer)), client.build_request("GET", "/"), timeout=5)
    assert isinstance(outcome, client.Response)
    assert (outcome.status, outcome.body, outcome.reset) == (400, b"Invalid", True)
    assert client.describe(outcome) == "response 400 (7 body bytes, ended by a reset)"


def test_reset_inside_a_framed_body_is_a_reset(serve: Callable[[Script], client.Address]) -> None:
    """With a length, the reset provably cut the body short: no response."""
    answer = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 10\r\n\r\nabc"
    outcome = client.exchange(serve(_answer_then_reset(answer)), client.build_request("GET", "/"), timeout=5)
    assert isinstance(outcome, client.Reset)
    assert outcome.received.endswith(b"abc")


def test_timeout_is_bounded(serve: Callable[[Script], client.Address]) -> None:
    done = threading.Event()

    def script(conn: socket.socket) -> None:
        _read_request(conn)
        done.wait(5)

    outcome = client.exchange(serve(script), client.build_request("GET", "/"), timeout=0.2)
    done.set()
    assert isinstance(outcome, client.Timeout)


def test_malformed(serve: Callable[[Script], client.Address]) -> None:
    def script(conn: socket.socket) -> None:
        _read_request(conn)
        conn.sendall(b"\x00\xffgarbage\r\n\r\n")

    outcome = client.exchange(serve(script), client.build_request("GET", "/"), timeout=5)
    assert isinstance(outcome, client.Malformed)
    assert outcome.received.startswith(b"\x00\xff")


def test_oversized_response_is_malformed(
    serve: Callable[[Script], client.Address], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client, "MAX_RESPONSE_BYTES", 1000)

    def script(conn: socket.socket) -> None:
        _read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000)

    outcome = client.exchange(serve(script), client.build_request("GET", "/"), timeout=5)
    assert isinstance(outcome, client.Malformed)
    assert "larger than" in outcome.error


def test_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    outcome = client.exchange(client.Address(host="127.0.0.1", port=port), b"GET / HTTP/1.1\r\n\r\n", timeout=1)
    assert isinstance(outcome, client.Refused)


def test_keep_alive_and_head(serve: Callable[[Script], client.Address]) -> None:
    def script(conn: socket.socket) -> None:
        _read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")  # HEAD: no body follows
        _read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")

    with client.Connection(serve(script), 5) as conn:
        conn.send(client.build_request("HEAD", "/"))
        head = conn.response("HEAD")
        conn.send(client.build_request("GET", "/"))
        get = conn.response("GET")
    assert isinstance(head, client.Response)
    assert head.body == b""
    assert isinstance(get, client.Response)
    assert get.body == b"hello"


def test_build_request_keeps_bytes_case_and_order() -> None:
    data = client.build_request("POST", b"/a%2Fb?x", [("X-MiXeD", "1"), (b"x-dup", b"a"), (b"X-Dup", b"b")], b"hi")
    assert data == (
        b"POST /a%2Fb?x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-MiXeD: 1\r\nx-dup: a\r\nX-Dup: b\r\n"
        b"Content-Length: 2\r\n\r\nhi"
    )
    assert client.build_request("GET", "/", host=None, version="HTTP/1.0") == b"GET / HTTP/1.0\r\n\r\n"


def test_reading_resumes_after_a_timeout(serve: Callable[[Script], client.Address]) -> None:
    go = threading.Event()

    def script(conn: socket.socket) -> None:
        _read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab")
        go.wait(5)
        conn.sendall(b"cd")

    with client.Connection(serve(script), 5) as conn:
        conn.send(client.build_request("GET", "/"))
        first = conn.response(timeout=0.1)
        go.set()
        second = conn.response()
    assert isinstance(first, client.Timeout)
    assert isinstance(second, client.Response)
    assert second.body == b"abcd"


def test_peer_unread_sees_what_the_server_has_not_read() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        sock = socket.create_connection(listener.getsockname())
        peer, _ = listener.accept()
        with sock, peer:
            sock.sendall(b"x" * 1000)
            seen = client.peer_unread(sock)
            if seen is None:
                pytest.skip("no /proc/net/tcp here")
            assert seen == 1000  # loopback delivers within sendall
            received = b""
            while len(received) < 1000:
                received += peer.recv(4096)
            assert client.peer_unread(sock) == 0


def test_send_paced_writes_each_piece_after_the_server_read_the_last() -> None:
    reads: list[int] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        address = client.Address(host="127.0.0.1", port=listener.getsockname()[1])

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(5)
                total = 0
                while total < 40_000:
                    chunk = conn.recv(1 << 20)
                    if not chunk:
                        break
                    reads.append(len(chunk))
                    total += len(chunk)

        thread = threading.Thread(target=serve)
        thread.start()
        with client.Connection(address, 5) as conn:
            assert conn.send_paced(b"y" * 40_000, 16_384, 5)
        thread.join(5)
    assert sum(reads) == 40_000
    assert max(reads) <= 16_384  # never two pieces in one read


def test_send_paced_stops_once_the_server_answered() -> None:
    """A server that refuses after the first piece gets nothing more: its answer is not lost to a reset."""
    answer = b"HTTP/1.1 431 Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    with socket.create_server(("127.0.0.1", 0)) as listener:
        address = client.Address(host="127.0.0.1", port=listener.getsockname()[1])
        read: list[int] = []

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(5)
                read.append(len(conn.recv(1 << 20)))
                conn.sendall(answer)

        thread = threading.Thread(target=serve)
        thread.start()
        with client.Connection(address, 5) as conn:
            assert conn.send_paced(b"z" * 100_000, 16_384, 5, settle=5)
            outcome = conn.response()
        thread.join(5)
    assert read == [16_384]
    assert isinstance(outcome, client.Response)
    assert outcome.status == 431


def test_wait_peer_read_tells_when_the_server_has_read() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        address = client.Address(host="127.0.0.1", port=listener.getsockname()[1])
        with client.Connection(address, 5) as conn:
            peer, _ = listener.accept()
            with peer:
                conn.send(b"x" * 500)
                first = conn.wait_peer_read(0.05)
                if first is None:
                    pytest.skip("no /proc/net/tcp here")
                assert first is False  # nothing read yet: the deadline ends the wait
                received = b""
                while len(received) < 500:
                    received += peer.recv(4096)
                assert conn.wait_peer_read(5) is True
