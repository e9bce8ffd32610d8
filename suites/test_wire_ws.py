"""WebSocket on the wire (spec-catalogue §24: RFC 6455, RFC 7692).

Each case talks to the server byte by byte through ``wsclient.RawWebSocket``: its own
opening handshake, then frames written byte-exact (unmasked, reserved bits and
opcodes, lying lengths, fragmented or oversized control frames, invalid UTF-8, bad
close payloads), and the server's frames read back raw, so the MASK bit and the close
code are seen as sent. The scenario app ``wsw-echo`` (asgi_conformance.apps.wire_ws)
echoes every message and journals what it received and its ``websocket.disconnect``
code, so a case also judges what the app saw: no message from an invalid frame.

"Fail the WebSocket connection" (RFC 6455 §7.1.7) is judged as: the connection ends
(a close frame or TCP closed; staying open is a MUST failure), the app receives
nothing from the invalid frame (MUST), and the close frame, which the server SHOULD
send, carries the code for the fault (1002, or 1007 for invalid UTF-8; another code
or no close frame is a SHOULD finding). Each invalid frame is followed, in the same
write, by a masked ping: a pong for it shows the server read on past the fault.
"""

from __future__ import annotations

import secrets
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from asgi_conformance import INFO, MUST, SHOULD, Level, Server, check, expect, fail, note, record, scenario
from asgi_conformance.client import Closed, Reset, Timeout
from asgi_conformance.timing import Deadline
from asgi_conformance.verdicts import unsupported
from asgi_conformance.wsclient import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    RSV1,
    RSV2,
    Frame,
    Inflater,
    RawResponse,
    RawWebSocket,
    close_payload,
    deflate_message,
    describe_raw,
    encode_frame,
)

WS = ("websocket",)
RFC = "RFC 6455"
PROBE = b"probe-after-fault"
SAMPLE_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
SAMPLE_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
SENDABLE = set(range(1000, 1004)) | set(range(1007, 1015)) | set(range(3000, 5000))


def _path(app: str = "wsw-echo") -> tuple[str, str]:
    token = secrets.token_hex(8)
    return f"/app/{app}/{token}", token


@contextmanager
def _session(server: Server, app: str = "wsw-echo", **handshake: Any) -> Iterator[tuple[RawWebSocket, str]]:
    """An accepted raw WebSocket to ``app`` (a failed MUST check if the handshake is refused)."""
    path, token = _path(app)
    with RawWebSocket(server.address, server.timeouts.request) as ws:
        outcome = ws.handshake(path, **handshake)
        check(
            isinstance(outcome, RawResponse) and outcome.status == 101,
            "the opening handshake was not accepted",
            expected="HTTP 101",
            observed=describe_raw(outcome),
            level=MUST,
        )
        yield ws, token


@dataclass
class AppView:
    messages: list[dict[str, Any]] = field(default_factory=list)
    disconnect: Any = "none"

    def describe(self) -> str:
        told = "no websocket.disconnect" if self.disconnect == "none" else f"disconnect {self.disconnect}"
        got = f", received {len(self.messages)} message(s)" if self.messages else ""
        return f"app: {told}{got}"


def _app_view(server: Server, token: str) -> AppView:
    """What ``wsw-echo`` journaled: its messages, and its disconnect code (waited for)."""
    stream = f"wsw-{token}"
    found = server.journal.wait_for(stream, lambda r: r.get("kind") == "disconnect", server.timeouts.event)
    records = server.journal.records(stream)
    view = AppView([r for r in records if r.get("kind") == "receive"])
    if found is not None:
        view.disconnect = found.get("code")
    else:
        note("the app was not told websocket.disconnect within the deadline")
    for message in view.messages:
        note(
            f"the app received {'text' if message.get('text') else 'bytes'} of size {message.get('size')}: "
            f"{message.get('head')}"
        )
    return view


def _end_value(end: object) -> str:
    if isinstance(end, Frame):
        return "close without a code" if end.code is None else f"close {end.code}"
    if isinstance(end, Closed | Reset):
        # FIN or RST races with what the client still has in flight: both are one value.
        return "TCP closed without a close frame"
    if isinstance(end, Timeout):
        return "still open"
    return describe_raw(end)


def _reply_close(ws: RawWebSocket, frame: Frame) -> None:
    """Answer the server's close frame (echoing its code when a client may send it)."""
    ws.send_frame(OP_CLOSE, close_payload(frame.code) if frame.code in SENDABLE else b"")


@dataclass
class Provoked:
    label: str
    end: object
    answered_probe: bool
    app: AppView

    @property
    def code(self) -> int | None:
        return self.end.code if isinstance(self.end, Frame) else None

    @property
    def value(self) -> str:
        return f"{_end_value(self.end)}; {self.app.describe()}"


def _read_end(ws: RawWebSocket, server: Server) -> tuple[object, bool]:
    """Frames until a close frame or the end of the connection (the close is answered).

    Negative evidence: once the server has answered the probe ping (it read on past the
    fault), a close that would still come is waited for only ``timeouts.hold``.
    """
    deadline = Deadline(server.timeouts.event)
    answered = False
    while True:
        got = ws.read_frame(deadline.remaining())
        if not isinstance(got, Frame):
            return got, answered
        if got.is_close:
            _reply_close(ws, got)
            return got, answered
        if got.opcode == OP_PONG and got.payload == PROBE:
            answered = True
            note("the server answered the ping sent after the fault: it read on")
        else:
            note(f"frame before the end: {got.describe()}")
        if deadline.remaining() > server.timeouts.hold:
            deadline = Deadline(server.timeouts.hold)


def _provoke(server: Server, label: str, data: bytes) -> Provoked:
    """Send ``data`` (then a probe ping, in the same write) on a fresh connection; see what follows."""
    with _session(server) as (ws, token):
        ws.send_raw(data + encode_frame(OP_PING, PROBE))
        end, answered = _read_end(ws, server)
        if isinstance(end, Reset):
            note("the TCP connection was reset")
    return Provoked(label, end, answered, _app_view(server, token))


def _provoke_all(server: Server, items: list[tuple[str, bytes]]) -> list[Provoked]:
    """``_provoke`` each item in turn; after one the server left open, the rest are skipped
    (a server that hangs on one would make every later one wait out its deadline too)."""
    cases: list[Provoked] = []
    for label, data in items:
        cases.append(_provoke(server, label, data))
        if isinstance(cases[-1].end, Timeout):
            note(f"after {label} stayed open, the remaining sub-cases were skipped")
            break
    return cases


def _judge(
    cases: list[Provoked],
    codes: tuple[int, ...],
    *,
    close_frame: Level | None = SHOULD,
    clean: frozenset[int | None] = frozenset(),
    clean_level: Level = MUST,
) -> None:
    """Judge failed connections: MUST rules for every case first, then SHOULD ones.

    ``close_frame``: the level at which a missing close frame is a finding (None: allowed).
    ``clean``: close codes that mean the server took the frame as an ordinary close.
    """
    if len(cases) == 1:
        record(cases[0].value)
    else:
        record("; ".join(f"{c.label}: {c.value}" for c in cases))
    want = " or ".join(str(c) for c in codes)
    for case in cases:
        check(
            not case.app.messages,
            f"{case.label}: the app received a message although the connection had to fail",
            expected="no websocket.receive",
            observed=[m.get("head") for m in case.app.messages][:3],
            level=MUST,
        )
        check(
            not isinstance(case.end, Timeout),
            f"{case.label}: the server did not fail the connection",
            expected=f"close {want}, or the TCP connection closed",
            observed=_end_value(case.end) + (" (it answered a later ping)" if case.answered_probe else ""),
            level=MUST,
        )
        check(
            case.code not in clean or not isinstance(case.end, Frame),
            f"{case.label}: the server took it as an ordinary close",
            expected=f"close {want}",
            observed=_end_value(case.end),
            level=clean_level,
        )
    for case in cases:
        if isinstance(case.end, Frame):
            check(
                case.code in codes,
                f"{case.label}: the close code does not name the fault",
                expected=f"close {want}",
                observed=_end_value(case.end),
                level=SHOULD,
            )
        elif close_frame is not None:
            fail(
                f"{case.label}: the server dropped the connection without a close frame (§7.1.7: SHOULD send one)",
                expected=f"close {want}",
                observed=_end_value(case.end),
                level=close_frame,
            )


# -- opening handshake ---------------------------------------------------------------------


def _handshake(server: Server, **options: Any) -> tuple[object, str]:
    path, token = _path()
    with RawWebSocket(server.address, server.timeouts.request) as ws:
        outcome = ws.handshake(path, **options)
    return outcome, token


def _status(outcome: object) -> str:
    return describe_raw(outcome) if not isinstance(outcome, RawResponse) else f"HTTP {outcome.status}"


@scenario(
    "wire.ws.hs.accept_key",
    "Sec-WebSocket-Accept is base64(SHA-1(key + GUID)): the RFC's sample key",
    level=MUST,
    spec=f"{RFC} §4.2.2",
    requires=WS,
)
def test_accept_key(server: Server) -> None:
    outcome, _ = _handshake(server, key=SAMPLE_KEY)
    check(
        isinstance(outcome, RawResponse) and outcome.status == 101,
        "the handshake was not accepted",
        expected="HTTP 101",
        observed=_status(outcome),
    )
    assert isinstance(outcome, RawResponse)
    values = outcome.values(b"sec-websocket-accept")
    expect([v.decode("latin-1") for v in values], [SAMPLE_ACCEPT], "Sec-WebSocket-Accept")


@scenario(
    "wire.ws.hs.101_headers",
    "the 101 carries Upgrade: websocket and Connection: Upgrade",
    level=MUST,
    spec=f"{RFC} §4.2.2",
    requires=WS,
)
def test_101_headers(server: Server) -> None:
    outcome, _ = _handshake(server)
    check(
        isinstance(outcome, RawResponse) and outcome.status == 101,
        "the handshake was not accepted",
        expected="HTTP 101",
        observed=_status(outcome),
    )
    assert isinstance(outcome, RawResponse)
    upgrade = [v.strip().lower() for v in outcome.values(b"upgrade")]
    connection = [t.strip().lower() for v in outcome.values(b"connection") for t in v.split(b",")]
    check(upgrade == [b"websocket"], "Upgrade is not 'websocket'", expected=[b"websocket"], observed=upgrade)
    check(b"upgrade" in connection, "Connection lacks the 'Upgrade' token", expected="Upgrade", observed=connection)


@scenario(
    "wire.ws.hs.get_http11",
    "only GET over HTTP/1.1 starts a WebSocket: a POST with upgrade headers gets no 101",
    level=MUST,
    spec=f"{RFC} §4.1, §4.2.1",
    requires=WS,
)
def test_get_http11(server: Server) -> None:
    """The answer (an HTTP error, or the request served as plain HTTP) is recorded."""
    outcome, _ = _handshake(server, method="POST", headers=[("Content-Length", "0")])
    record(_status(outcome))
    check(
        not (isinstance(outcome, RawResponse) and outcome.status == 101),
        "the server switched protocols for a POST",
        expected="no 101",
        observed=_status(outcome),
    )
    check(not isinstance(outcome, Timeout), "no answer to the POST", expected="an HTTP response", observed="timeout")


@scenario(
    "wire.ws.hs.bad_key",
    "a missing or malformed Sec-WebSocket-Key gets an HTTP error, not a 101",
    level=MUST,
    spec=f"{RFC} §4.2.1",
    requires=WS,
)
def test_bad_key(server: Server) -> None:
    """Three handshakes: no key, the key "abc", and base64 of 15 bytes. Each must get a 4xx."""
    tried = {"no key": None, "key 'abc'": "abc", "15-byte key": "MTIzNDU2Nzg5MDEyMzQ1"}
    seen = {label: _handshake(server, key=key)[0] for label, key in tried.items()}
    record("; ".join(f"{label}: {_status(o)}" for label, o in seen.items()))
    for label, outcome in seen.items():
        check(
            isinstance(outcome, RawResponse) and 400 <= outcome.status < 500,
            f"{label}: the handshake was not refused with an HTTP error",
            expected="HTTP 4xx (such as 400)",
            observed=_status(outcome),
        )


@scenario(
    "wire.ws.hs.version",
    "an unsupported Sec-WebSocket-Version gets an HTTP error listing Sec-WebSocket-Version: 13",
    level=MUST,
    spec=f"{RFC} §4.2.2, §4.4",
    requires=WS,
)
def test_version(server: Server) -> None:
    outcome, _ = _handshake(server, version="8")
    versions = outcome.values(b"sec-websocket-version") if isinstance(outcome, RawResponse) else []
    record(f"{_status(outcome)}, Sec-WebSocket-Version {[v.decode('latin-1') for v in versions]}")
    check(
        isinstance(outcome, RawResponse) and 400 <= outcome.status < 500,
        "version 8 was not refused with an HTTP error",
        expected="HTTP 426 (or another 4xx)",
        observed=_status(outcome),
    )
    offered = [t.strip() for v in versions for t in v.split(b",")]
    check(
        b"13" in offered,
        "the refusal does not list the supported version",
        expected="Sec-WebSocket-Version: 13",
        observed=versions,
    )


@scenario(
    "wire.ws.hs.extensions_from_offer",
    "without an extension offer the 101 carries no Sec-WebSocket-Extensions",
    level=MUST,
    spec=f"{RFC} §4.1, §9.1",
    requires=WS,
)
def test_extensions_from_offer(server: Server) -> None:
    outcome, _ = _handshake(server)
    check(
        isinstance(outcome, RawResponse) and outcome.status == 101,
        "the handshake was not accepted",
        expected="HTTP 101",
        observed=_status(outcome),
    )
    assert isinstance(outcome, RawResponse)
    expect(outcome.values(b"sec-websocket-extensions"), [], "Sec-WebSocket-Extensions")


@scenario(
    "wire.ws.hs.subprotocol_from_offer",
    "the subprotocol in the 101 is the one the app chose from the client's offer",
    level=MUST,
    spec=f"{RFC} §4.2.2",
    requires=WS,
)
def test_subprotocol_from_offer(server: Server) -> None:
    """The client offers "one, two"; the app accepts "two": the 101 must name exactly "two". (An app
    that picks an unoffered subprotocol is ws.accept.subprotocol_unoffered.)"""
    path, _token = _path("wsw-subprotocol")
    with RawWebSocket(server.address, server.timeouts.request) as ws:
        outcome = ws.handshake(f"{path}/two", headers=[("Sec-WebSocket-Protocol", "one, two")])
        if isinstance(outcome, RawResponse) and outcome.status == 101:
            ws.send_raw(close_frame_bytes(1000))
    check(
        isinstance(outcome, RawResponse) and outcome.status == 101,
        "the handshake was not accepted",
        expected="HTTP 101",
        observed=_status(outcome),
    )
    assert isinstance(outcome, RawResponse)
    named = outcome.values(b"sec-websocket-protocol")
    record(f"Sec-WebSocket-Protocol {[v.decode('latin-1') for v in named]}")
    expect(named, [b"two"], "Sec-WebSocket-Protocol")


# -- frames ---------------------------------------------------------------------------------


@scenario(
    "wire.ws.frame.client_unmasked",
    "an unmasked client frame closes the connection (1002 allowed); the app gets nothing",
    level=MUST,
    spec=f"{RFC} §5.1",
    requires=WS,
    impact="security",
)
def test_client_unmasked(server: Server) -> None:
    """A close frame is optional here (MAY send 1002): a plain TCP close passes."""
    case = _provoke(server, "unmasked text", encode_frame(OP_TEXT, b"unmasked", mask=None))
    _judge([case], (1002,), close_frame=None)


@scenario(
    "wire.ws.frame.server_unmasked",
    "frames from the server are never masked (echo, pong, close)",
    level=MUST,
    spec=f"{RFC} §5.1",
    requires=WS,
)
def test_server_unmasked(server: Server) -> None:
    frames: list[Frame] = []
    with _session(server) as (ws, _token):
        ws.send_raw(encode_frame(OP_TEXT, b"hello") + encode_frame(OP_PING, b"ping") + close_frame_bytes(1000))
        frames, end = ws.wait_end(server.timeouts.event)
    masked = [f.describe() for f in frames if f.masked]
    note("frames: " + ", ".join(f.describe() for f in frames))
    record(f"masked: {masked}" if masked else "no frame masked" if frames else _end_value(end))
    check(bool(frames), "no frame came back", expected="echo, pong, close", observed=_end_value(end))
    check(not masked, "the server masked frames", expected="MASK bit clear on every frame", observed=masked)


def close_frame_bytes(code: int | None, reason: bytes = b"") -> bytes:
    return encode_frame(OP_CLOSE, close_payload(code, reason))


@scenario(
    "wire.ws.frame.rsv_bits",
    "a frame with RSV2 (or RSV1 without an extension) set fails the connection",
    level=MUST,
    spec=f"{RFC} §5.2",
    requires=WS,
)
def test_rsv_bits(server: Server) -> None:
    cases = _provoke_all(
        server,
        [
            ("RSV2", encode_frame(OP_TEXT, b"rsv2", rsv=RSV2)),
            ("RSV1 (no extension)", encode_frame(OP_TEXT, b"rsv1", rsv=RSV1)),
        ],
    )
    _judge(cases, (1002,))


@scenario(
    "wire.ws.frame.reserved_opcode",
    "reserved opcodes 0x3 (data) and 0xB (control) fail the connection",
    level=MUST,
    spec=f"{RFC} §5.2",
    requires=WS,
)
def test_reserved_opcode(server: Server) -> None:
    cases = _provoke_all(
        server, [("opcode 0x3", encode_frame(0x3, b"reserved")), ("opcode 0xB", encode_frame(0xB, b"reserved"))]
    )
    _judge(cases, (1002,))


@scenario(
    "wire.ws.frame.len64_msb",
    "a 64-bit payload length with its top bit set is invalid and fails the connection",
    level=MUST,
    spec=f"{RFC} §5.2",
    requires=WS,
    impact="hang",
)
def test_len64_msb(server: Server) -> None:
    """1002 names the fault; 1009 (too big) does too, for a server that checks its size limit first."""
    case = _provoke(server, "length 2**63", encode_frame(OP_BINARY, b"", length=1 << 63, length_form=64))
    _judge([case], (1002, 1009))


@scenario(
    "wire.ws.frame.control_too_long",
    "a ping with a 126-byte payload fails the connection",
    level=MUST,
    spec=f"{RFC} §5.5",
    requires=WS,
)
def test_control_too_long(server: Server) -> None:
    _judge([_provoke(server, "126-byte ping", encode_frame(OP_PING, b"p" * 126))], (1002,))


@scenario(
    "wire.ws.frame.control_fragmented",
    "a ping with FIN=0 fails the connection",
    level=MUST,
    spec=f"{RFC} §5.5",
    requires=WS,
)
def test_control_fragmented(server: Server) -> None:
    data = encode_frame(OP_PING, b"frag", fin=False)
    _judge([_provoke(server, "ping FIN=0", data)], (1002,))


@scenario(
    "wire.ws.frame.orphan_continuation",
    "a continuation frame with no message in progress fails the connection",
    level=MUST,
    spec=f"{RFC} §5.4",
    requires=WS,
)
def test_orphan_continuation(server: Server) -> None:
    _judge([_provoke(server, "continuation first", encode_frame(OP_CONTINUATION, b"orphan"))], (1002,))


@scenario(
    "wire.ws.frame.interleaved_data",
    "a new text frame inside a fragmented message fails the connection",
    level=MUST,
    spec=f"{RFC} §5.4",
    requires=WS,
)
def test_interleaved_data(server: Server) -> None:
    data = encode_frame(OP_TEXT, b"first-", fin=False) + encode_frame(OP_TEXT, b"second")
    _judge([_provoke(server, "text inside a text", data)], (1002,))


@scenario(
    "wire.ws.frame.control_mid_message",
    "a ping between fragments is answered and the message (UTF-8 split across fragments) reassembled",
    level=MUST,
    spec=f"{RFC} §5.4, §5.6",
    requires=WS,
    impact="data-loss",
)
def test_control_mid_message(server: Server) -> None:
    """Fragments "H\\xe2\\x82" + ping + "\\xac lo": the euro sign is split across them; the app must get
    "H€ lo" as one message, and the ping a pong with its payload."""
    expected = "H\u20ac lo"
    with _session(server) as (ws, token):
        ws.send_raw(
            encode_frame(OP_TEXT, b"H\xe2\x82", fin=False)
            + encode_frame(OP_PING, b"mid")
            + encode_frame(OP_CONTINUATION, b"\xac lo")
        )
        frames: list[Frame] = []
        deadline = Deadline(server.timeouts.event)
        end: object = None
        while not any(f.opcode in (OP_TEXT, OP_BINARY, OP_CONTINUATION) and f.fin for f in frames):
            got = ws.read_frame(deadline.remaining())
            if not isinstance(got, Frame):
                end = got
                break
            frames.append(got)
            if got.is_close:
                _reply_close(ws, got)
                end = got
                break
        if end is None:
            ws.send_raw(close_frame_bytes(1000))
    app = _app_view(server, token)
    pongs = [f.payload for f in frames if f.opcode == OP_PONG]
    echoes = [f.payload for f in frames if f.opcode in (OP_TEXT, OP_BINARY, OP_CONTINUATION)]
    record(f"pongs {pongs}, echo {echoes}" + (f", then {_end_value(end)}" if end is not None else ""))
    expect([m.get("head") for m in app.messages], [ascii(expected)], "the messages the app received")
    expect(pongs, [b"mid"], "pong payloads")
    expect(b"".join(echoes), expected.encode(), "the echoed message")


@scenario(
    "wire.ws.utf8.text",
    "a text message that is not UTF-8 fails the connection with 1007; the app gets nothing",
    level=MUST,
    spec=f"{RFC} §8.1, §5.6, §7.4.1",
    requires=WS,
    impact="data-loss",
)
def test_utf8_text(server: Server) -> None:
    _judge([_provoke(server, "text b'ok\\xff'", encode_frame(OP_TEXT, b"ok\xff"))], (1007,))


@scenario(
    "wire.ws.utf8.text_split",
    "a text message that turns invalid across fragments fails the connection with 1007",
    level=MUST,
    spec=f"{RFC} §8.1, §5.6",
    covers=["wire.ws.utf8.text"],
    requires=WS,
    impact="data-loss",
)
def test_utf8_text_split(server: Server) -> None:
    """Fragments b"ok\\xe2\\x82" and b"(": each fragment alone could be a prefix of valid UTF-8."""
    data = encode_frame(OP_TEXT, b"ok\xe2\x82", fin=False) + encode_frame(OP_CONTINUATION, b"(")
    _judge([_provoke(server, "split invalid sequence", data)], (1007,))


@scenario(
    "wire.ws.utf8.close_reason",
    "a close reason that is not UTF-8 fails the connection (1007 or 1002)",
    level=MUST,
    spec=f"{RFC} §5.5.1, §8.1",
    requires=WS,
)
def test_utf8_close_reason(server: Server) -> None:
    """A reply 1000 (the code sent) means the server took the close as ordinary: a MUST failure.
    A close without a code is ambiguous (some servers fail every connection that way): a SHOULD finding."""
    case = _provoke(server, "close 1000 b'\\xff'", close_frame_bytes(1000, b"bye\xff"))
    _judge([case], (1007, 1002), clean=frozenset({1000}))


@scenario(
    "wire.ws.close.one_byte_payload",
    "a close frame with a 1-byte payload is a protocol error",
    level=MUST,
    spec=f"{RFC} §5.5.1",
    requires=WS,
)
def test_close_one_byte(server: Server) -> None:
    """A reply 1000 is an ordinary close: a MUST failure. A close without a code is ambiguous (an
    ordinary reply to a codeless close, or a failure without a code): a SHOULD finding."""
    case = _provoke(server, "close payload b'\\x03'", encode_frame(OP_CLOSE, b"\x03"))
    _judge([case], (1002,), clean=frozenset({1000}))


INVALID_CODES = (0, 999, 1004, 1005, 1006, 1015, 2000, 5000)


@scenario(
    "wire.ws.close.invalid_code_received",
    "close codes not allowed on the wire (0, 999, 1004-1006, 1015, 2000, 5000) are a protocol error",
    level=SHOULD,
    spec=f"{RFC} §7.4.1, §7.4.2 (Autobahn 7.9.x)",
    requires=WS,
)
def test_close_invalid_code(server: Server) -> None:
    """An echo of the code (or a reply 1000) means the server took it as an ordinary close: a SHOULD
    finding (the RFC implies it, Autobahn expects 1002). The app's disconnect code is recorded."""
    cases = _provoke_all(server, [(f"code {code}", close_frame_bytes(code)) for code in INVALID_CODES])
    _judge(cases, (1002,), close_frame=None, clean=frozenset({1000, *INVALID_CODES}), clean_level=SHOULD)


# -- closing --------------------------------------------------------------------------------


@scenario(
    "wire.ws.close.reply",
    "a client close is answered with a close frame (the code echoed is recorded)",
    level=MUST,
    spec=f"{RFC} §5.5.1",
    requires=WS,
)
def test_close_reply(server: Server) -> None:
    with _session(server) as (ws, token):
        ws.send_raw(close_frame_bytes(3001, b"bye"))
        frames, end = ws.wait_end(server.timeouts.event)
    app = _app_view(server, token)
    closes = [f for f in frames if f.is_close]
    value = (_end_value(closes[0]) if closes else _end_value(end)) + f"; {app.describe()}"
    record(value)
    check(bool(closes), "no close frame answered the client's close", expected="a close frame", observed=value)
    check(
        not isinstance(end, Timeout),
        "the server kept TCP open after the closing handshake",
        expected="TCP closed",
        observed=_end_value(end),
        level=SHOULD,
    )


def _server_close(server: Server) -> tuple[list[Frame], Frame | None, list[Frame], object, str]:
    """``wsw-close``: frames up to the server's close, the close, frames after it, how TCP ended.

    Negative evidence: after the server's close the client waits ``timeouts.hold`` for data
    frames it must not send, then answers the close and waits for TCP to end (event deadline).
    """
    with _session(server, "wsw-close") as (ws, token):
        before: list[Frame] = []
        close: Frame | None = None
        end: object = None
        deadline = Deadline(server.timeouts.event)
        while close is None:
            got = ws.read_frame(deadline.remaining())
            if not isinstance(got, Frame):
                end = got
                break
            if got.is_close:
                close = got
            else:
                before.append(got)
        after: list[Frame] = []
        if close is not None:
            late, end = ws.wait_end(server.timeouts.hold)
            after += late
            if isinstance(end, Timeout):
                ws.send_frame(OP_CLOSE, close_payload(close.code) if close.code in SENDABLE else b"")
                late, end = ws.wait_end(server.timeouts.event)
                after += late
    return before, close, after, end, token


@scenario(
    "wire.ws.close.no_data_after_close",
    "after its close frame the server sends no data frames (the app's late send goes nowhere)",
    level=MUST,
    spec=f"{RFC} §5.5.1",
    requires=WS,
)
def test_no_data_after_close(server: Server) -> None:
    before, close, after, end, _token = _server_close(server)
    record(f"{[f.describe() for f in before]} then {_end_value(close)}; after: {[f.describe() for f in after]}")
    check(close is not None, "the app's close sent no close frame", expected="close 1000", observed=_end_value(end))
    data = [f.describe() for f in after if f.opcode in (OP_TEXT, OP_BINARY, OP_CONTINUATION)]
    check(not data, "data frames followed the server's close frame", expected="none", observed=data)


@scenario(
    "wire.ws.close.server_drops_tcp_first",
    "after a close the server started, the server closes TCP first once the client answered",
    level=SHOULD,
    spec=f"{RFC} §7.1.1",
    requires=WS,
)
def test_server_drops_tcp_first(server: Server) -> None:
    _before, close, _after, end, _token = _server_close(server)
    check(
        close is not None,
        "the app's close sent no close frame",
        expected="close 1000",
        observed=_end_value(end),
        level=MUST,
    )
    # FIN or RST is noted, not recorded: a server that gives up waiting for the client's
    # close reply (autobahn: after 1 s) ends TCP the other way, and when the reply comes
    # depends on the machine's load.
    value = (
        "server closed TCP"
        if isinstance(end, Closed | Reset)
        else "TCP left open"
        if isinstance(end, Timeout)
        else _end_value(end)
    )
    if isinstance(end, Closed | Reset):
        note(f"the server ended TCP with a {'FIN' if isinstance(end, Closed) else 'RST'}")
    record(value)
    check(
        isinstance(end, Closed | Reset),
        "the server did not close TCP after the closing handshake",
        expected="the server closes TCP first",
        observed=value,
    )


@scenario(
    "wire.ws.close.tcp_drop",
    "a TCP close without a close frame: the app is told websocket.disconnect (code recorded)",
    level=INFO,
    spec=f"{RFC} §7.1.5, §7.4.1; www › Disconnect",
    covers=[],
    requires=WS,
    impact="hang",
)
def test_tcp_drop(server: Server) -> None:
    """The code the app sees is open (1006 is what RFC 6455 calls it); it must not be 1000
    (a normal closure that did not happen), and the app must be told."""
    with _session(server) as (ws, token):
        ws.send_raw(encode_frame(OP_TEXT, b"before the drop"))
        echo = ws.read_frame(server.timeouts.event)
        note(f"echo: {describe_raw(echo)}")
        ws.shutdown_write()
        ws.close_socket()
    app = _app_view(server, token)
    record(app.describe())
    check(
        app.disconnect != "none",
        "the app was not told",
        expected="websocket.disconnect",
        observed=app.describe(),
        level=MUST,
    )
    check(
        app.disconnect != 1000,
        "the app was told of a normal closure",
        expected="1006 (or another non-1000 code)",
        observed=app.describe(),
        level=MUST,
    )


# -- ping, pong -----------------------------------------------------------------------------


@scenario(
    "wire.ws.ping.pong_payload",
    "a ping with a 125-byte payload gets a pong with the same payload",
    level=MUST,
    spec=f"{RFC} §5.5.2, §5.5.3",
    requires=WS,
)
def test_pong_payload(server: Server) -> None:
    payload = bytes(range(125))
    with _session(server) as (ws, _token):
        ws.send_frame(OP_PING, payload)
        got = ws.read_frame(server.timeouts.event)
        ws.send_raw(close_frame_bytes(1000))
    same = isinstance(got, Frame) and got.opcode == OP_PONG and got.payload == payload
    record("pong with the same payload" if same else describe_raw(got))
    check(
        isinstance(got, Frame) and got.opcode == OP_PONG,
        "no pong came back",
        expected="pong",
        observed=describe_raw(got),
    )
    assert isinstance(got, Frame)
    expect(got.payload, payload, "the pong's payload")


@scenario(
    "wire.ws.pong.unsolicited",
    "an unsolicited pong is ignored: no reply, no error, the connection goes on",
    level=MUST,
    spec=f"{RFC} §5.5.3",
    requires=WS,
)
def test_pong_unsolicited(server: Server) -> None:
    with _session(server) as (ws, _token):
        ws.send_raw(encode_frame(OP_PONG, b"unsolicited") + encode_frame(OP_TEXT, b"after"))
        got = ws.read_frame(server.timeouts.event)
        ws.send_raw(close_frame_bytes(1000))
    record(describe_raw(got))
    check(
        isinstance(got, Frame) and got.opcode == OP_TEXT and got.payload == b"after",
        "the message after an unsolicited pong was not echoed",
        expected="text 'after'",
        observed=describe_raw(got),
    )


TOO_BIG = 16 * 1024 * 1024 + 4096
"""Just above the 16 MiB default limit of uvicorn and hypercorn."""


@scenario(
    "wire.ws.too_big",
    "a message above the server's size limit: close code (1009 MAY) or delivery recorded",
    level=INFO,
    spec=f"{RFC} §7.4.1, §10.4",
    requires=WS,
    impact="data-loss",
)
def test_too_big(server: Server) -> None:
    """One binary frame of 16 MiB + 4 KiB (masking key zero), written until the server answers.
    The value is how the server ended it (close 1009, another code, a TCP close) or that it
    delivered and echoed it. Invariants (MUST): a message the app receives is complete, and
    the server neither hangs nor stays silent past the deadline."""
    payload = bytes(TOO_BIG)
    with _session(server) as (ws, token):
        frame = encode_frame(OP_BINARY, payload, mask=b"\x00\x00\x00\x00")
        written = ws.send_until_answer(frame, server.timeouts.event)
        if written < len(frame):
            note(f"the server answered (or stopped reading) after {written} of {len(frame)} bytes")
        got = ws.read_frame(server.timeouts.event)
        if isinstance(got, Frame) and got.is_close:
            _reply_close(ws, got)
        elif isinstance(got, Frame):
            ws.send_raw(close_frame_bytes(1000))
    app = _app_view(server, token)
    if isinstance(got, Frame) and not got.is_close:
        end = f"echoed {len(got.payload)} bytes" if got.payload == payload else f"echo of {len(got.payload)} bytes"
    else:
        end = _end_value(got)
    sizes = [m.get("size") for m in app.messages]
    record(f"{end}; app: " + (f"received {sizes}" if sizes else "received nothing"))
    check(
        all(size == TOO_BIG for size in sizes),
        "the app received the message incomplete",
        expected=TOO_BIG,
        observed=sizes,
        level=MUST,
    )
    check(
        not isinstance(got, Timeout),
        "the server neither ended the connection nor echoed within the deadline",
        expected="close 1009, a TCP close, or the echo",
        observed=_end_value(got),
        level=MUST,
    )


# -- permessage-deflate ---------------------------------------------------------------------


def _params(header: bytes) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in header.decode("latin-1").split(";")[1:]:
        name, _, value = part.strip().partition("=")
        found[name.strip().lower()] = value.strip().strip('"')
    return found


DEFLATE_PARAMS = {
    "server_no_context_takeover",
    "client_no_context_takeover",
    "server_max_window_bits",
    "client_max_window_bits",
}


@scenario(
    "wire.ws.deflate_negotiation",
    "a bare permessage-deflate offer: the server's answer is recorded and must be a valid response",
    level=INFO,
    spec="RFC 7692 §5, §7.1",
    covers=["wire.ws.deflate"],
    requires=WS,
)
def test_deflate_negotiation(server: Server) -> None:
    """The value is the ``Sec-WebSocket-Extensions`` answer to ``permessage-deflate`` (no
    parameters), or "not negotiated". If it accepts, it MUST be one element with known
    parameters, each at most once, no ``client_max_window_bits`` (not offered: RFC 7692
    §7.1.2.2 MUST NOT), a ``server_max_window_bits`` value in 8..15."""
    with _session(server, extensions="permessage-deflate") as (ws, _token):
        ws.send_raw(close_frame_bytes(1000))
        assert ws.response is not None
        answer = ws.response.values(b"sec-websocket-extensions")
    if not answer:
        record("not negotiated")
        return
    shown = b", ".join(answer).decode("latin-1")
    record(shown)
    elements = [e.strip() for v in answer for e in v.decode("latin-1").split(",")]
    check(
        len(elements) == 1 and elements[0].split(";")[0].strip() == "permessage-deflate",
        "the answer is not one permessage-deflate element",
        expected="permessage-deflate[; params]",
        observed=shown,
        level=MUST,
    )
    names = [p.strip().partition("=")[0].strip() for p in elements[0].split(";")[1:]]
    values = _params(elements[0].encode("latin-1"))
    problems = [f"unknown parameter {n!r}" for n in names if n not in DEFLATE_PARAMS]
    problems += [f"{n} repeated" for n in sorted(set(names)) if names.count(n) > 1]
    if "client_max_window_bits" in names:
        problems.append("client_max_window_bits, which the offer did not include")
    bits = values.get("server_max_window_bits")
    if bits is not None and not (bits.isdigit() and 8 <= int(bits) <= 15):
        problems.append(f"server_max_window_bits={bits!r}")
    check(
        not problems, "the answer is not a valid response to the offer", expected="none", observed=problems, level=MUST
    )


@scenario(
    "wire.ws.deflate",
    "permessage-deflate: negotiation recorded; compressed messages are inflated and echo round-trips",
    level=MUST,
    spec="RFC 7692",
    requires=WS,
    impact="data-loss",
)
def test_deflate(server: Server) -> None:
    """Two offers, in order: with ``server_no_context_takeover`` and without it (a server may
    decline a parameter only by picking the other). Unsupported when neither is accepted.
    Three messages: compressed, the same compressed again (fresh context, as agreed with
    ``client_no_context_takeover``), uncompressed (RSV1 clear). Each echo must equal what was
    sent; a compressed echo is inflated with a fresh context per message when the server
    agreed to ``server_no_context_takeover`` (so a server that keeps its context anyway
    fails), else with one context kept across messages."""
    offer = (
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover, "
        "permessage-deflate; client_no_context_takeover; client_max_window_bits"
    )
    texts = ["hello deflate " * 20, "hello deflate " * 20, "plain"]
    echoes: list[str] = []
    with _session(server, extensions=offer) as (ws, _token):
        assert ws.response is not None
        accepted = ws.response.header(b"sec-websocket-extensions")
        if accepted is None or not accepted.lower().startswith(b"permessage-deflate"):
            record("not negotiated")
            ws.send_raw(close_frame_bytes(1000))
            unsupported("the server did not accept permessage-deflate")
        note(f"negotiated: {accepted!r}")
        params = _params(accepted)
        bits = int(params.get("client_max_window_bits") or 15)
        fresh = "server_no_context_takeover" in params
        inflater = Inflater()
        for i, text in enumerate(texts):
            data = text.encode()
            if i < 2:
                ws.send_frame(OP_TEXT, deflate_message(data, bits), rsv=RSV1)
            else:
                ws.send_frame(OP_TEXT, data)
            got = ws.read_frame(server.timeouts.event)
            if not isinstance(got, Frame) or got.opcode != OP_TEXT or not got.fin:
                echoes.append(describe_raw(got))
                break
            try:
                inflater = Inflater() if fresh else inflater
                payload = inflater.inflate(got.payload) if got.rsv & RSV1 else got.payload
                echoes.append(payload.decode())
            except (zlib.error, UnicodeDecodeError, ValueError) as exc:
                echoes.append(f"undecodable echo ({exc})")
                break
        ws.send_raw(close_frame_bytes(1000))
    params_shown = ", ".join(f"{k}={v}" if v else k for k, v in sorted(params.items())) or "no parameters"
    record(f"negotiated ({params_shown})")
    expect(echoes, texts, "the echoed messages")
