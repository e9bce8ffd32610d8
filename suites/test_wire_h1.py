"""HTTP/1.1 on the wire: request parsing, body framing and response generation
(spec-catalogue §21 and §23; RFC 9112, RFC 9110).

Request rows are table driven: each scenario sends a few raw payloads (``Payload``),
each on its own connection and each followed by a pipelined *follow-up* request, and
one judge (``_judge``) decides them all. Bodies that could hide a request carry a
*smuggled* request to ``/app/wire-mark/<token>/smuggled``: if the app journals that
path, the server desynchronised. The verdict is the RFC's: reject (a 4xx/5xx, or a
close) or accept, and then what the app must see (the echo app reports method, path,
headers and the body's length and digest).

The observed value of every request cell is ``variant=summary`` per payload, joined
by `` | ``, where a summary is stable and comparable across targets ("400, then
closed", "app saw POST body 5, then follow-up answered"): asgi_conformance.differential
lines them up side by side.

Negative evidence: when the follow-up was not answered, the journal is read once more
after ``timeouts.hold`` for a smuggled request (security rows only).
"""

from __future__ import annotations

import functools
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from asgi_conformance import INFO, MUST, SHOULD, Launcher, Server, check, fail, note, record, scenario
from asgi_conformance import client as wire
from asgi_conformance.apps.typedjson import loads
from asgi_conformance.concurrency import side_by_side
from asgi_conformance.timing import Deadline
from asgi_conformance.verdicts import Level

R9112 = "RFC 9112"
R9110 = "RFC 9110"
ACCEPT, REJECT, EITHER, ANY = "accept", "reject", "either", "any"


def _token() -> str:
    return secrets.token_hex(8)  # fixed length: the smuggled request has a fixed size


def _smuggled(token: str) -> bytes:
    return b"GET /app/wire-mark/%s/smuggled HTTP/1.1\r\nHost: x\r\n\r\n" % token.encode()


def _follow(token: str) -> bytes:
    return b"GET /app/wire-mark/%s/follow HTTP/1.1\r\nHost: x\r\n\r\n" % token.encode()


S_LEN = len(_smuggled("0" * 16))


def _fill(template: bytes, token: str) -> bytes:
    """``<P>`` echo path, ``<S>`` smuggled request, ``<SN>``/``<SX>`` its length in decimal/hex."""
    out = template.replace(b"<P>", b"/echo/wire/%s" % token.encode())
    out = out.replace(b"<SN>", str(S_LEN).encode()).replace(b"<SX>", b"%x" % S_LEN)
    return out.replace(b"<S>", _smuggled(token))


Check = Callable[[dict[str, Any]], str | None]
"""On an accepted payload: given the echo ({scope, events, app}), an error or None."""


@dataclass(frozen=True)
class Payload:
    """One raw request, the rule it exercises, and what the RFC allows."""

    name: str
    template: bytes
    policy: str  # accept | reject | either | any
    level: Level = MUST  # of the policy (accept/reject); desync, wrong bodies and hangs are always MUST
    body: int | None = None  # the body length the app must see when accepted
    wait_ok: bool = False  # waiting for more bytes (no answer by the deadline) only warns
    close: bool = False  # after a rejection the connection must close (framing is unknown)
    check: Check | None = None
    show: Callable[[dict[str, Any]], str] | None = None  # extra detail for the summary
    method: str = "GET"  # for reading the response (HEAD changes framing)
    follow: bool = True
    paced: int | None = None  # write this many bytes at a time, each once the server has read the last


@dataclass
class Outcome:
    payload: Payload
    first: wire.Outcome
    follow: wire.Outcome | None
    echo: dict[str, Any] | None
    smuggled: bool
    summary: str = ""
    problems: list[tuple[Level, str, str]] = field(default_factory=list)

    @property
    def rejected(self) -> bool:
        f = self.first
        if isinstance(f, wire.Response):
            return f.status >= 400
        return isinstance(f, wire.Closed | wire.Reset)

    @property
    def follow_answered(self) -> bool:
        return isinstance(self.follow, wire.Response) and self.follow.status == 200


def _echo_of(outcome: wire.Outcome) -> dict[str, Any] | None:
    if not isinstance(outcome, wire.Response) or outcome.status != 200:
        return None
    try:
        data = loads(outcome.body)
    except ValueError:
        return None
    return data if isinstance(data, dict) and "scope" in data else None


def _short(outcome: wire.Outcome | None) -> str:
    if outcome is None:
        return "-"
    if isinstance(outcome, wire.Response):
        return str(outcome.status)
    if isinstance(outcome, wire.Malformed):
        return "malformed response"
    if isinstance(outcome, wire.Timeout):
        return "no answer before the deadline" + (" (partial)" if outcome.received else "")
    return type(outcome).__name__.lower()


def header_of(echo: dict[str, Any], name: bytes) -> list[bytes]:
    return [bytes(v) for k, v in echo["scope"].get("headers") or () if bytes(k).lower() == name]


def _send_probe(server: Server, payload: Payload, hold: bool) -> Outcome:
    token = _token()
    data = _fill(payload.template, token)
    with server.connection() as conn:
        data += _follow(token) if payload.follow else b""
        if payload.paced:
            conn.send_paced(data, payload.paced, server.timeouts.event, settle=server.timeouts.hold)
        else:
            conn.send(data)
        first = conn.response(payload.method)
        follow: wire.Outcome | None = None
        if payload.follow and isinstance(first, wire.Response):
            follow = conn.response()
    wait = server.timeouts.hold if hold and not (isinstance(follow, wire.Response) and follow.status == 200) else 0.0
    seen = server.journal.wait_for(f"wire-{token}", lambda r: r.get("part") == "smuggled", timeout=wait)
    return Outcome(payload, first, follow, _echo_of(first), seen is not None)


def _assess(o: Outcome) -> None:
    p = o.payload
    if o.echo is not None:
        app = o.echo["app"]
        method = o.echo["scope"].get("method")
        if isinstance(method, str) and len(method) > 40:
            method = f"{method[:12]}...({len(method)} chars)"
        text = f"app saw {method} body {app.get('body_length')}"
        if p.show is not None:
            text += " " + p.show(o.echo)
    else:
        text = _short(o.first)
    if o.follow is not None:
        text += ", then " + ("follow-up answered" if o.follow_answered else _short(o.follow))
    if o.smuggled:
        text += ", SMUGGLED REQUEST RAN"
    o.summary = text

    def problem(level: Level, message: str) -> None:
        o.problems.append((level, f"{p.name}: {message}", text))

    if o.smuggled:
        problem(MUST, "a request hidden in the body was run (desync)")
    if isinstance(o.first, wire.Timeout):
        if p.wait_ok:
            problem(SHOULD, "no answer before the deadline: the server accepted the length and waits for the body")
        else:
            problem(MUST, "no answer before the deadline (the server waits for bytes the framing does not promise)")
    if isinstance(o.first, wire.Malformed):
        if p.name == "h2-preface" and o.first.received[3:4] == b"\x04":
            o.summary = text = "answered in HTTP/2 (SETTINGS)"  # h2c prior knowledge: a fine answer
            return
        problem(MUST, "the server's answer is not a well-formed HTTP/1.1 response")
    echo = o.echo
    if echo is not None:
        if p.policy == REJECT:
            problem(p.level, "accepted; the RFC requires a rejection")
        if p.body is not None and echo["app"].get("body_length") != p.body and p.policy != REJECT:
            problem(MUST, f"the app saw a body of {echo['app'].get('body_length')} bytes, not {p.body}")
        if p.check is not None and p.policy != REJECT:
            error = p.check(echo)
            if error:
                problem(MUST, error)
        if p.follow and not o.follow_answered and not _gone(o.follow):
            problem(MUST, "the pipelined follow-up request was not answered correctly after an accepted request")
    elif o.rejected:
        if p.policy == ACCEPT:
            problem(p.level, "rejected; the RFC requires accepting it")
        if p.close and o.follow_answered:
            problem(MUST, "rejected, then the pipelined follow-up was served: the connection must close")
    elif isinstance(o.first, wire.Response) and p.policy == ACCEPT:
        problem(p.level, f"answered {o.first.status} instead of the app's response")


def _gone(outcome: wire.Outcome | None) -> bool:
    return isinstance(outcome, wire.Closed | wire.Reset)


def _judge(server: Server, payloads: list[Payload], *, hold: bool = False) -> list[Outcome]:
    """Send every payload, record ``name=summary | ...``, fail with the most severe problem."""
    # Each payload has a connection and a token of its own: they go side by side, so a
    # case of six variants that each wait out the hold takes one hold.
    outcomes = side_by_side([functools.partial(_send_probe, server, payload, hold) for payload in payloads])
    for o in outcomes:
        _assess(o)
    record(" | ".join(f"{o.payload.name}={o.summary}" for o in outcomes))
    problems = [pr for o in outcomes for pr in o.problems]
    for level in (MUST, SHOULD):
        found = [pr for pr in problems if pr[0] == level]
        if found:
            for extra in found[1:]:
                note(extra[1])
            fail(found[0][1], expected="see the row", observed=found[0][2], level=level)
    return outcomes


PIECE = 32 * 1024
"""Paced writes of an oversized head: the size of each piece (each read by the server, then
``timeouts.hold`` for its answer, before the next)."""
POST = b"POST <P> HTTP/1.1\r\nHost: x\r\n"
GET = b"GET <P> HTTP/1.1\r\nHost: x\r\n"
CHUNKED_HELLO = b"5\r\nhello\r\n0\r\n\r\n"


def _chunked(size_line: bytes, data: bytes = b"hello") -> bytes:
    return POST + b"Transfer-Encoding: chunked\r\n\r\n" + size_line + b"\r\n" + data + b"\r\n0\r\n\r\n"


def _with_header(line: bytes) -> bytes:
    return GET + line + b"\r\n\r\n"


def _value(name: bytes, expected: list[bytes] | None) -> Check:
    def checker(echo: dict[str, Any]) -> str | None:
        got = header_of(echo, name)
        if expected is not None and got != expected:
            return f"the app saw {name.decode()}: {got!r}, not {expected!r}"
        if any(c in v for v in got for c in (b"\r", b"\n", b"\x00")):
            return f"the app saw CR, LF or NUL in {name.decode()}: {got!r}"
        return None

    return checker


def _show(name: bytes) -> Callable[[dict[str, Any]], str]:
    return lambda echo: f"{name.decode()}={header_of(echo, name)!r}"


# -- Content-Length and Transfer-Encoding together (smuggling) ---------------------------

CL_TE = POST + b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n<S>" % (5 + S_LEN)
TE_CL = POST + b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n<SX>\r\n<S>\r\n0\r\n\r\n" % (
    len(b"%x\r\n" % S_LEN)
)
TE_TE = (
    POST
    + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: xchunked\r\nContent-Length: %d\r\n\r\n0\r\n\r\n<S>"
    % (5 + S_LEN)
)
TE_SPACE = POST + b"Content-Length: %d\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n<S>" % (5 + S_LEN)


@scenario(
    "wire.h1.clte.both",
    "Content-Length with Transfer-Encoding: reject, or frame by TE and close after the response",
    level=MUST,
    spec="RFC 9112 §6.1, §6.3",
    impact="security",
)
def test_clte_both(server: Server) -> None:
    """MAY reject (400); MUST close after the response either way. The pipelined follow-up
    must not be answered, nor the smuggled request run (negative evidence: ``timeouts.hold``)."""
    outcomes = _judge(
        server,
        [Payload("cl.te", CL_TE, EITHER, body=0, close=True), Payload("te.cl", TE_CL, EITHER, body=S_LEN, close=True)],
        hold=True,
    )
    _close_after_clte(outcomes)


def _close_after_clte(outcomes: list[Outcome]) -> None:
    for o in outcomes:
        if o.echo is not None:
            check(
                not o.follow_answered,
                f"{o.payload.name}: the connection stayed open after a request with both CL and TE",
                expected="close after the response",
                observed=o.summary,
            )


@scenario(
    "wire.h1.clte.no_smuggle",
    "no CL.TE, TE.CL or TE.TE payload runs a hidden request",
    level=MUST,
    spec="RFC 9112 §6.1, §6.3, §11.2",
    impact="security",
)
def test_clte_no_smuggle(server: Server) -> None:
    """Negative evidence: ``timeouts.hold`` for the journal of the smuggled request."""
    _judge(
        server,
        [
            Payload("cl.te", CL_TE, ANY),
            Payload("te.cl", TE_CL, ANY),
            Payload("te.te", TE_TE, ANY),
            Payload("te-space-colon", TE_SPACE, ANY),
        ],
        hold=True,
    )


@scenario(
    "wire.h1.te.chunked_not_final",
    "Transfer-Encoding that does not end in chunked: 400 and close",
    level=MUST,
    spec="RFC 9112 §6.3 (rule 4)",
    impact="security",
)
def test_te_chunked_not_final(server: Server) -> None:
    _judge(
        server,
        [
            Payload("gzip", POST + b"Transfer-Encoding: gzip\r\n\r\n" + CHUNKED_HELLO, REJECT, close=True),
            Payload(
                "chunked,gzip", POST + b"Transfer-Encoding: chunked, gzip\r\n\r\n" + CHUNKED_HELLO, REJECT, close=True
            ),
        ],
        hold=True,
    )


@scenario(
    "wire.h1.te.unknown_coding",
    "an unknown transfer coding gets 501 and is never treated as chunked",
    level=SHOULD,
    spec="RFC 9112 §6.1, §7",
    impact="security",
)
def test_te_unknown_coding(server: Server) -> None:
    """SHOULD 501 (another 4xx warns); MUST NOT de-chunk it (an app that sees the 5
    chunked bytes fails); MUST NOT desync."""
    outcomes = _judge(
        server,
        [
            Payload(
                "xchunked", POST + b"Transfer-Encoding: xchunked\r\n\r\n" + CHUNKED_HELLO, REJECT, SHOULD, close=True
            ),
            Payload(
                "identity", POST + b"Transfer-Encoding: identity\r\n\r\n" + CHUNKED_HELLO, REJECT, SHOULD, close=True
            ),
        ],
        hold=True,
    )
    for o in outcomes:
        if o.echo is not None:
            check(
                o.echo["app"].get("body_length") != 5,
                f"{o.payload.name}: an unknown coding was decoded as chunked",
                expected="501 (never chunked)",
                observed=o.summary,
                level=MUST,
            )
        check(
            isinstance(o.first, wire.Response) and o.first.status == 501,
            f"{o.payload.name}: an unknown transfer coding did not get 501",
            expected="501",
            observed=o.summary,
            level=SHOULD,
        )


@scenario(
    "wire.h1.te.case_insensitive",
    "Transfer-Encoding: Chunked is chunked",
    level=MUST,
    spec="RFC 9112 §7",
    impact="interop",
)
def test_te_case_insensitive(server: Server) -> None:
    _judge(server, [Payload("Chunked", POST + b"Transfer-Encoding: Chunked\r\n\r\n" + CHUNKED_HELLO, ACCEPT, body=5)])


@scenario(
    "wire.h1.te.double_chunked",
    "Transfer-Encoding: chunked, chunked is invalid framing: 400 and close",
    level=MUST,
    spec="RFC 9112 §6.1",
    impact="security",
)
def test_te_double_chunked(server: Server) -> None:
    _judge(
        server,
        [
            Payload(
                "chunked,chunked",
                POST + b"Transfer-Encoding: chunked, chunked\r\n\r\n" + CHUNKED_HELLO,
                REJECT,
                close=True,
            )
        ],
        hold=True,
    )


@scenario(
    "wire.h1.te.list_syntax",
    "Transfer-Encoding list syntax: OWS and empty elements accepted, non-token bytes rejected",
    level=MUST,
    spec="RFC 9110 §5.6.1, §5.5; RFC 9112 §6.1",
    impact="security",
)
def test_te_list_syntax(server: Server) -> None:
    """OWS around the value is not part of it (MUST accept); a recipient MUST parse and ignore a
    reasonable number of empty list elements (``, chunked``); VT or NUL makes it invalid."""
    te = POST + b"Transfer-Encoding:%s\r\n\r\n" + CHUNKED_HELLO
    _judge(
        server,
        [
            Payload("tab", te % b"\tchunked", ACCEPT, body=5),
            Payload("trailing-space", te % b" chunked  ", ACCEPT, body=5),
            Payload("empty-element", te % b" , chunked", ACCEPT, body=5),
            Payload("vt", te % b" chunked\x0b", REJECT, close=True),
            Payload("nul", te % b" chunked\x00", REJECT, close=True),
        ],
        hold=True,
    )


@scenario(
    "wire.h1.te.http10",
    "Transfer-Encoding in an HTTP/1.0 request: the server closes after processing",
    level=MUST,
    spec="RFC 9112 §6.1",
    impact="security",
)
def test_te_http10(server: Server) -> None:
    payload = b"POST <P> HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: %d\r\n\r\n0\r\n\r\n<S>"
    outcomes = _judge(server, [Payload("http10-te-cl", payload % (5 + S_LEN), EITHER, close=True)], hold=True)
    _close_after_clte(outcomes)


@scenario(
    "wire.h1.te.duplicate_fields",
    "two Transfer-Encoding lines with Content-Length: close after, never desync",
    level=MUST,
    spec="RFC 9112 §6.1",
    impact="security",
)
def test_te_duplicate_fields(server: Server) -> None:
    payload = (
        POST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\nContent-Length: %d\r\n\r\n0\r\n\r\n<S>"
    )
    outcomes = _judge(server, [Payload("chunked+identity", payload % (5 + S_LEN), EITHER, close=True)], hold=True)
    _close_after_clte(outcomes)


# -- Content-Length ----------------------------------------------------------------------


def _cl(value: bytes, body: bytes = b"hello") -> bytes:
    return POST + b"Content-Length: " + value + b"\r\n\r\n" + body


@scenario(
    "wire.h1.cl.invalid",
    "a Content-Length that is not all digits: 400 and close",
    level=MUST,
    spec="RFC 9112 §6.3 (rule 5); RFC 9110 §8.6",
    impact="security",
)
def test_cl_invalid(server: Server) -> None:
    _judge(
        server,
        [
            Payload(name, _cl(value), REJECT, close=True)
            for name, value in [
                ("+5", b"+5"),
                ("-1", b"-1"),
                ("0x5", b"0x5"),
                ("5sp5", b"5 5"),
                ("empty", b""),
                ("5a", b"5a"),
            ]
        ],
        hold=True,
    )


@scenario(
    "wire.h1.cl.multiple_differing",
    "differing Content-Length values: 400 and close",
    level=MUST,
    spec="RFC 9112 §6.3; RFC 9110 §8.6",
    impact="security",
)
def test_cl_multiple_differing(server: Server) -> None:
    _judge(
        server,
        [
            Payload("two-lines", POST + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", REJECT, close=True),
            Payload("list", _cl(b"5, 6", b"hello!"), REJECT, close=True),
        ],
        hold=True,
    )


@scenario(
    "wire.h1.cl.multiple_same",
    "identical repeated Content-Length values: rejected or collapsed (matrix)",
    level=INFO,
    spec="RFC 9110 §8.6",
    impact="security",
)
def test_cl_multiple_same(server: Server) -> None:
    """MAY reject or collapse; if accepted the app sees exactly the 5 bytes and the follow-up is answered."""
    _judge(
        server,
        [
            Payload("list", _cl(b"5, 5"), EITHER, body=5),
            Payload("two-lines", POST + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", EITHER, body=5),
        ],
    )


@scenario(
    "wire.h1.cl.leading_zeros",
    "Content-Length: 0010 is ten bytes, never octal",
    level=MUST,
    spec="RFC 9110 §8.6",
    impact="security",
)
def test_cl_leading_zeros(server: Server) -> None:
    _judge(server, [Payload("0010", _cl(b"0010", b"0123456789"), EITHER, body=10)])


@scenario(
    "wire.h1.cl.overflow",
    "a Content-Length past 2**64 is rejected, never wrapped",
    level=MUST,
    spec="RFC 9110 §8.6",
    impact="security",
)
def test_cl_overflow(server: Server) -> None:
    _judge(
        server, [Payload("2**64+1", _cl(b"18446744073709551617", b"h"), REJECT, close=True, wait_ok=True)], hold=True
    )


@scenario(
    "wire.h1.cl.body_on_get",
    "a GET body is consumed by its Content-Length and never parsed as a request",
    level=MUST,
    spec="RFC 9110 §9.3.1; RFC 9112 §6.3",
    impact="security",
)
def test_cl_body_on_get(server: Server) -> None:
    """The GET's body is a complete request; it must be consumed (delivered or discarded), or the
    GET rejected. Negative evidence: ``timeouts.hold`` for the smuggled request."""
    _judge(server, [Payload("get-with-body", GET + b"Content-Length: <SN>\r\n\r\n<S>", EITHER)], hold=True)


# -- chunked framing ---------------------------------------------------------------------


@scenario(
    "wire.h1.chunk.size_syntax",
    "chunk sizes are hex digits only: 0x5, +5, -1, leading space, 5_0, empty are rejected",
    level=MUST,
    spec="RFC 9112 §7.1, §7.1.1",
    impact="security",
)
def test_chunk_size_syntax(server: Server) -> None:
    _judge(
        server,
        [
            Payload(name, _chunked(size), REJECT, close=True)
            for name, size in [
                ("0x5", b"0x5"),
                ("+5", b"+5"),
                ("-1", b"-1"),
                ("leading-space", b" 5"),
                ("5_0", b"5_0"),
                ("empty", b""),
            ]
        ],
        hold=True,
    )


@scenario(
    "wire.h1.chunk.size_overflow",
    "a huge hex chunk size is rejected, never wrapped",
    level=MUST,
    spec="RFC 9112 §7.1",
    impact="security",
)
def test_chunk_size_overflow(server: Server) -> None:
    """``1000000000000000a`` wraps to 10 in 64 bits: an app that sees 10 bytes shows the wrap
    (MUST). RFC 9112 asks for no overflow; a server that takes the size as is and waits for
    the rest (no answer by ``timeouts.request``) only warns."""
    _judge(
        server,
        [Payload("2**64+10", _chunked(b"1000000000000000a", b"0123456789"), REJECT, close=True, wait_ok=True)],
        hold=True,
    )


@scenario(
    "wire.h1.chunk.uppercase_hex", "chunk size A is ten bytes", level=MUST, spec="RFC 9112 §7.1", impact="interop"
)
def test_chunk_uppercase_hex(server: Server) -> None:
    _judge(server, [Payload("A", _chunked(b"A", b"0123456789"), ACCEPT, body=10)])


@scenario(
    "wire.h1.chunk.extensions_ignored",
    "unknown chunk extensions, quoted values included, are ignored",
    level=MUST,
    spec="RFC 9112 §7.1.1",
    impact="interop",
)
def test_chunk_extensions_ignored(server: Server) -> None:
    _judge(
        server,
        [
            Payload("token", _chunked(b"5;foo=bar"), ACCEPT, body=5),
            Payload("quoted", _chunked(b'5;foo=bar;q="a b"'), ACCEPT, body=5),
        ],
    )


@scenario(
    "wire.h1.chunk.extension_limit",
    "a 64 KiB chunk extension: capped with a 4xx, or ignored (matrix)",
    level=INFO,
    spec="RFC 9112 §7.1.1",
    impact="hang",
)
def test_chunk_extension_limit(server: Server) -> None:
    """A server "ought to" cap it; recorded. If accepted, the app sees exactly the 5 bytes.
    Paced like ``wire.h1.field.too_large``: sent whole, a parser that caps only an incomplete
    line (h11) took or refused the extension by how the kernel split the write."""
    _judge(server, [Payload("64KiB", _chunked(b"5;x=" + b"a" * 65536), EITHER, body=5, paced=PIECE)])


@scenario(
    "wire.h1.chunk.extension_invalid",
    "malformed chunk extensions are rejected (bare CR or NUL: MUST; grammar: SHOULD here)",
    level=MUST,
    spec="RFC 9112 §7.1.1, §2.2",
    impact="security",
)
def test_chunk_extension_invalid(server: Server) -> None:
    """A bare CR or NUL in the chunk line is invalid framing (MUST reject). A bare ``;`` or a
    non-token name breaks the grammar but the line is still CRLF-delimited, so no framing
    question arises; accepting those only warns (lenient parsers skip extensions)."""
    _judge(
        server,
        [
            Payload("bare-semicolon", _chunked(b"5;"), REJECT, SHOULD),
            Payload("non-token-name", _chunked(b"5;a b"), REJECT, SHOULD),
            Payload("nul", _chunked(b"5;a=\x00"), REJECT, close=True),
            Payload("bare-cr", _chunked(b"5;a\rb"), REJECT, close=True),
        ],
        hold=True,
    )


@scenario(
    "wire.h1.chunk.data_mismatch",
    "chunk data longer than its size, or without its CRLF, is rejected",
    level=MUST,
    spec="RFC 9112 §7.1",
    impact="security",
)
def test_chunk_data_mismatch(server: Server) -> None:
    base = POST + b"Transfer-Encoding: chunked\r\n\r\n"
    _judge(
        server,
        [
            Payload("longer", base + b"5\r\nhello!!\r\n0\r\n\r\n", REJECT, close=True),
            Payload("no-crlf", base + b"5\r\nhello0\r\n\r\n", REJECT, close=True),
        ],
        hold=True,
    )


@scenario(
    "wire.h1.chunk.bare_lf",
    "a bare LF as chunk-line terminator: accepted or rejected (matrix)",
    level=INFO,
    spec="RFC 9112 §2.2",
    impact="security",
)
def test_chunk_bare_lf(server: Server) -> None:
    """MAY accept; if accepted the app sees the 5 bytes and nothing desyncs."""
    _judge(server, [Payload("bare-lf", POST + b"Transfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n", EITHER, body=5)])


def _not_merged(echo: dict[str, Any]) -> str | None:
    """RFC 9110 §6.5.1: a trailer field is not merged into the header section (this one is forbidden there)."""
    if b"999" in header_of(echo, b"content-length"):
        return "the trailer's Content-Length reached the app's headers"
    return None


@scenario(
    "wire.h1.chunk.trailer_section",
    "a trailer section is consumed; Content-Length in it never changes framing",
    level=MUST,
    spec="RFC 9112 §7.1.2; RFC 9110 §6.5.1",
    impact="security",
)
def test_chunk_trailer_section(server: Server) -> None:
    base = POST + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"
    _judge(
        server,
        [
            Payload(
                "content-length-999",
                base + b"Content-Length: 999\r\nX-T: 1\r\n\r\n",
                EITHER,
                body=5,
                check=_not_merged,
            ),
            Payload("bad-trailer-space-colon", base + b"X-T : 1\r\n\r\n", EITHER, body=5),
        ],
        hold=True,
    )


# -- field syntax -----------------------------------------------------------------------


@scenario(
    "wire.h1.field.sp_before_colon",
    "whitespace between a field name and its colon gets a 400",
    level=MUST,
    spec="RFC 9112 §5.1",
    impact="security",
)
def test_field_sp_before_colon(server: Server) -> None:
    _judge(
        server,
        [
            Payload("x-a", _with_header(b"X-A : b"), REJECT),
            Payload("te", POST + b"Transfer-Encoding : chunked\r\nContent-Length: 3\r\n\r\nabc", REJECT, close=True),
        ],
        hold=True,
    )


@scenario(
    "wire.h1.field.obs_fold",
    "obs-fold: 400, or the fold replaced by spaces; the app never sees CRLF",
    level=MUST,
    spec="RFC 9112 §5.2",
    impact="security",
)
def test_field_obs_fold(server: Server) -> None:
    _judge(
        server,
        [
            Payload("x-a", _with_header(b"X-A: a\r\n b"), EITHER, check=_value(b"x-a", None), show=_show(b"x-a")),
            Payload(
                "folded-te",
                POST
                + b"Content-Length: %d\r\nTransfer-Encoding: identity\r\n chunked\r\n\r\n0\r\n\r\n<S>" % (5 + S_LEN),
                EITHER,
                close=True,
            ),
        ],
        hold=True,
    )


@scenario(
    "wire.h1.field.ws_after_request_line",
    "a line starting with whitespace right after the request line: rejected, or ignored",
    level=MUST,
    spec="RFC 9112 §2.2",
    impact="security",
)
def test_field_ws_after_request_line(server: Server) -> None:
    def ignored(echo: dict[str, Any]) -> str | None:
        names = [bytes(k) for k, _ in echo["scope"].get("headers") or ()]
        if any(n.strip() != n or (b"host" in n and n != b"host") for n in names):
            return f"the indented line reached the app as a field: {names!r}"
        if header_of(echo, b"host") != [b"x"]:
            return f"the app saw host {header_of(echo, b'host')!r}, not [b'x']"
        return None

    payload = b"GET <P> HTTP/1.1\r\n Host: evil\r\nHost: x\r\n\r\n"
    _judge(server, [Payload("indented-host", payload, EITHER, check=ignored, show=_show(b"host"))])


@scenario(
    "wire.h1.field.ows_trim",
    "leading and trailing SP/HTAB are not part of a field value",
    level=MUST,
    spec="RFC 9112 §5.1",
    impact="interop",
)
def test_field_ows_trim(server: Server) -> None:
    _judge(server, [Payload("ows", _with_header(b"X-A:  \t v \t "), ACCEPT, check=_value(b"x-a", [b"v"]))])


@scenario(
    "wire.h1.field.crlfnul_in_value",
    "NUL in a field value: 400, or replaced by SP",
    level=MUST,
    spec="RFC 9110 §5.5",
    impact="security",
)
def test_field_crlfnul_in_value(server: Server) -> None:
    _judge(
        server,
        [Payload("nul", _with_header(b"X-A: a\x00b"), EITHER, check=_value(b"x-a", [b"a b"]), show=_show(b"x-a"))],
    )


@scenario(
    "wire.h1.field.bare_cr",
    "a bare CR in a field or as a line terminator: rejected, or replaced by SP",
    level=MUST,
    spec="RFC 9112 §2.2",
    impact="security",
)
def test_field_bare_cr(server: Server) -> None:
    _judge(
        server,
        [
            Payload("in-value", _with_header(b"X-A: a\rb"), EITHER, check=_value(b"x-a", [b"a b"]), show=_show(b"x-a")),
            Payload(
                "terminator",
                b"GET <P> HTTP/1.1\r\nHost: x\r\nX-A: a\rX-B: b\r\n\r\n",
                EITHER,
                check=_value(b"x-a", [b"a X-B: b"]),
                show=_show(b"x-a"),
            ),
        ],
    )


@scenario(
    "wire.h1.field.bare_lf",
    "a bare LF as the line terminator of the request line and fields: accepted or rejected (matrix)",
    level=INFO,
    spec="RFC 9112 §2.2",
    impact="interop",
)
def test_field_bare_lf(server: Server) -> None:
    """MAY accept; if accepted the app sees the header as sent."""
    _judge(
        server,
        [Payload("bare-lf", b"GET <P> HTTP/1.1\nHost: x\nX-A: b\n\n", EITHER, check=_value(b"x-a", [b"b"]))],
    )


@scenario(
    "wire.h1.field.invalid_name",
    "field names that are not tokens, and lines without a colon, get 400 and close",
    level=MUST,
    spec="RFC 9112 §5, §2.2",
    impact="security",
)
def test_field_invalid_name(server: Server) -> None:
    """MUST reject (grammar); SHOULD answer 400 and close (a close without 400, or no close, warns)."""
    outcomes = _judge(
        server,
        [
            Payload(name, _with_header(line), REJECT)
            for name, line in [
                ("empty", b": v"),
                ("space", b"X A: v"),
                ("tab", b"X\tA: v"),
                ("bracket", b"X[A]: v"),
                ("non-ascii", b"X\xc3\xa9: v"),
                ("no-colon", b"XA v"),
            ]
        ],
    )
    for o in outcomes:
        check(
            isinstance(o.first, wire.Response) and o.first.status == 400 and not o.follow_answered,
            f"{o.payload.name}: not answered 400 and closed",
            expected="400, then close",
            observed=o.summary,
            level=SHOULD,
        )


@scenario(
    "wire.h1.field.underscore_framing",
    "Content_Length and Transfer_Encoding are never framing headers",
    level=MUST,
    spec="RFC 9112 §6",
    impact="security",
)
def test_field_underscore_framing(server: Server) -> None:
    _judge(
        server,
        [
            Payload("content_length", POST + b"Content_Length: 5\r\n\r\n", EITHER, body=0),
            Payload(
                "transfer_encoding",
                POST + b"Transfer_Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello",
                EITHER,
                body=5,
            ),
        ],
    )


@scenario(
    "wire.h1.field.too_large",
    "a 100 KiB field line or 10 000 fields: a 4xx (431 typical) if over the server's limit",
    level=MUST,
    spec="RFC 9110 §5.4; RFC 6585 §5",
    impact="hang",
)
def test_field_too_large(server: Server) -> None:
    """Accepting is fine (the limit is the server's); refusing MUST be a 4xx. A reset is
    recorded but not judged: it can destroy a 4xx the server wrote before it closed.
    The head goes 32 KiB at a time, each once the server has read the one before and not
    answered within ``timeouts.hold``: a server that takes a whole head at once but refuses an
    incomplete one past its limit (uvicorn with h11) otherwise answers by how the kernel
    happened to split the bytes, and bytes sent after its answer would turn its close into a
    reset."""
    many = b"".join(b"X-%d: v\r\n" % n for n in range(10_000))
    outcomes = _judge(
        server,
        [
            Payload("100KiB-value", _with_header(b"X-A: " + b"a" * 102_400), ANY, paced=PIECE),
            Payload("10000-fields", GET + many + b"\r\n", ANY, paced=PIECE),
        ],
    )
    for o in outcomes:
        f = o.first
        check(
            not isinstance(f, wire.Closed) and not (isinstance(f, wire.Response) and f.status >= 500),
            f"{o.payload.name}: refused without a 4xx",
            expected="the app's 200, or a 4xx",
            observed=o.summary,
        )


# -- Host ----------------------------------------------------------------------------------


@scenario("wire.h1.host.missing", "HTTP/1.1 without Host gets 400", level=MUST, spec="RFC 9112 §3.2", impact="interop")
def test_host_missing(server: Server) -> None:
    _judge(server, [Payload("no-host", b"GET <P> HTTP/1.1\r\nX-A: b\r\n\r\n", REJECT)])


@scenario("wire.h1.host.duplicate", "two Host lines get 400", level=MUST, spec="RFC 9112 §3.2", impact="security")
def test_host_duplicate(server: Server) -> None:
    _judge(server, [Payload("identical", GET + b"Host: x\r\n\r\n", REJECT)])


@scenario(
    "wire.h1.host.invalid",
    "an invalid Host value (userinfo, path, list) gets 400",
    level=MUST,
    spec="RFC 9112 §3.2; RFC 9110 §7.2",
    impact="security",
)
def test_host_invalid(server: Server) -> None:
    _judge(
        server,
        [
            Payload(name, b"GET <P> HTTP/1.1\r\nHost: " + value + b"\r\n\r\n", REJECT)
            for name, value in [("userinfo", b"u@h"), ("path", b"h/x"), ("list", b"a, b")]
        ],
    )


@scenario(
    "wire.h1.host.http10_absent",
    "HTTP/1.0 without Host: accepted or not (matrix)",
    level=INFO,
    spec="RFC 9112 §3.2",
    impact="interop",
)
def test_host_http10_absent(server: Server) -> None:
    """MAY accept; if accepted the app's scope says http_version "1.0"."""

    def version(echo: dict[str, Any]) -> str | None:
        v = echo["scope"].get("http_version")
        return None if v == "1.0" else f"the app saw http_version {v!r}, not '1.0'"

    _judge(
        server,
        [Payload("no-host", b"GET <P> HTTP/1.0\r\n\r\n", EITHER, check=version, show=_show(b"host"), follow=False)],
    )


# -- request target --------------------------------------------------------------------------


def _scope_show(*keys: str) -> Callable[[dict[str, Any]], str]:
    def show(echo: dict[str, Any]) -> str:
        values = (echo["scope"].get(k) for k in keys)
        shown = (re.sub(r"[0-9a-f]{16}", "T", v) if isinstance(v, str) else v for v in values)
        return " ".join(f"{k}={v!r}" for k, v in zip(keys, shown, strict=True))

    return show


@scenario(
    "wire.h1.target.absolute_form",
    "an absolute-form target is accepted (scope mapping recorded)",
    level=MUST,
    spec="RFC 9112 §3.2.2",
    impact="interop",
)
def test_target_absolute_form(server: Server) -> None:
    """MUST accept. How path, raw_path, query and host map into the scope is unspecified: recorded."""

    def show(echo: dict[str, Any]) -> str:
        scope = echo["scope"]
        path = scope.get("path")
        path = re.sub(r"[0-9a-f]{16}", "T", path) if isinstance(path, str) else path
        return f"path={path!r} query={scope.get('query_string')!r} host={header_of(echo, b'host')!r}"

    payload = b"GET http://a.example/echo/abs/<P>?q=1 HTTP/1.1\r\nHost: b.example\r\n\r\n"
    _judge(server, [Payload("absolute", payload, ACCEPT, show=show)])


@scenario(
    "wire.h1.target.asterisk_form",
    "OPTIONS * is accepted (GET * recorded)",
    level=MUST,
    spec="RFC 9112 §3.2.4",
    impact="interop",
)
def test_target_asterisk_form(server: Server) -> None:
    """MUST accept ``OPTIONS *``. ``GET *`` is recorded, not judged: ``*`` is a grammatically valid
    request-target that RFC 9112 §3.2.4 reserves for OPTIONS; an ASGI server may hand it to the
    app (which can refuse it) as well as reject it."""
    _judge(
        server,
        [
            Payload("options", b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", ACCEPT, show=_scope_show("path", "raw_path")),
            Payload("get", b"GET * HTTP/1.1\r\nHost: x\r\n\r\n", ANY, show=_scope_show("path")),
        ],
    )


@scenario(
    "wire.h1.target.authority_form",
    "CONNECT with an authority-form target: refused or passed on (matrix)",
    level=INFO,
    spec="RFC 9112 §3.2.3; RFC 9110 §9.3.6",
    impact="interop",
    waits="the server's stop, when a CONNECT left a tunnel behind (its own grace period: 3 s on hypercorn)",
)
def test_target_authority_form(launcher: Launcher) -> None:
    """MAY refuse; if the app sees it, the method is CONNECT. A CONNECT may leave a tunnel behind
    that outlives the client (hypercorn's stop then waits out its grace period), so the case runs
    on a process of its own, and notes how long that process took to stop."""
    server = Server(launcher.target, launcher.start("app"), launcher.timeouts)

    def method(echo: dict[str, Any]) -> str | None:
        m = echo["scope"].get("method")
        return None if m == "CONNECT" else f"the app saw method {m!r}"

    _judge(
        server,
        [
            Payload(
                "connect",
                b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n",
                ANY,
                check=method,
                show=_scope_show("path"),
                follow=False,
            )
        ],
    )
    stopped = server.process.stop()
    note(f"the process stopped {stopped.seconds:.1f}s after the stop signal")


@scenario(
    "wire.h1.target.invalid",
    "targets with spaces, fragments, control bytes, NUL or raw non-ASCII: 400, not corrected",
    level=SHOULD,
    spec="RFC 9112 §3, §3.2",
    impact="security",
)
def test_target_invalid(server: Server) -> None:
    _judge(
        server,
        [
            Payload(name, b"GET <P>" + tail + b" HTTP/1.1\r\nHost: x\r\n\r\n", REJECT, SHOULD, show=_scope_show("path"))
            for name, tail in [
                ("space", b"/a b"),
                ("fragment", b"/a#f"),
                ("control", b"/a\x01b"),
                ("nul", b"/a\x00b"),
                ("non-ascii", b"/a\xc3\xa9"),
            ]
        ],
    )


@scenario(
    "wire.h1.target.too_long",
    "a 7900-byte target is served; a 100 KiB one refused with 414",
    level=MUST,
    spec="RFC 9112 §3",
    impact="interop",
)
def test_target_too_long(server: Server) -> None:
    """RECOMMENDED (SHOULD): at least 8000 octets of request line; MUST: 414 when refusing a
    target as too long (a 100 KiB target may also be served). The 100 KiB one is paced, as in
    wire.h1.field.too_large."""
    outcomes = _judge(
        server,
        [
            Payload("7900", b"GET <P>/" + b"a" * 7900 + b" HTTP/1.1\r\nHost: x\r\n\r\n", ACCEPT, SHOULD),
            Payload("100KiB", b"GET <P>/" + b"a" * 102_400 + b" HTTP/1.1\r\nHost: x\r\n\r\n", ANY, paced=PIECE),
        ],
    )
    big = outcomes[1]
    if big.echo is None and not isinstance(big.first, wire.Reset):
        check(
            isinstance(big.first, wire.Response) and big.first.status == 414,
            "a target refused as too long did not get 414",
            expected="414 (or the app's 200)",
            observed=big.summary,
        )


@scenario(
    "wire.h1.request_line.syntax",
    "request-line syntax errors get 400 and are not auto-corrected",
    level=SHOULD,
    spec="RFC 9112 §3, §2.3",
    impact="interop",
)
def test_request_line_syntax(server: Server) -> None:
    _judge(
        server,
        [
            Payload(name, line + b"\r\nHost: x\r\n\r\n", REJECT, SHOULD, show=_scope_show("path", "http_version"))
            for name, line in [
                ("two-spaces", b"GET  <P> HTTP/1.1"),
                ("tab", b"GET\t<P> HTTP/1.1"),
                ("no-target", b"GET HTTP/1.1"),
                ("HTTP/1", b"GET <P> HTTP/1"),
                ("HTTP/01.1", b"GET <P> HTTP/01.1"),
                ("lower-case", b"GET <P> http/1.1"),
            ]
        ],
    )


@scenario(
    "wire.h1.request_line.leading_crlf",
    "an empty line before the request line is ignored",
    level=SHOULD,
    spec="RFC 9112 §2.2",
    impact="interop",
)
def test_request_line_leading_crlf(server: Server) -> None:
    _judge(server, [Payload("crlf", b"\r\nGET <P> HTTP/1.1\r\nHost: x\r\n\r\n", ACCEPT, SHOULD)])


@scenario(
    "wire.h1.version.unsupported",
    "HTTP/1.2 is handled as 1.1; HTTP/2.0 and 3.0 in HTTP/1 syntax (matrix)",
    level=INFO,
    spec="RFC 9112 §2.3; RFC 9110 §15.6.6",
    impact="interop",
)
def test_version_unsupported(server: Server) -> None:
    """MAY answer 505. If served, the scope's http_version is one ASGI defines (HTTP/1.2 as "1.1")."""

    def as_11(echo: dict[str, Any]) -> str | None:
        v = echo["scope"].get("http_version")
        return None if v == "1.1" else f"the app saw http_version {v!r}, not '1.1'"

    def known(echo: dict[str, Any]) -> str | None:
        v = echo["scope"].get("http_version")
        return None if v in ("1.0", "1.1", "2") else f"the app saw http_version {v!r}"

    _judge(
        server,
        [
            Payload(
                "HTTP/1.2", b"GET <P> HTTP/1.2\r\nHost: x\r\n\r\n", ANY, check=as_11, show=_scope_show("http_version")
            ),
            Payload(
                "HTTP/2.0", b"GET <P> HTTP/2.0\r\nHost: x\r\n\r\n", ANY, check=known, show=_scope_show("http_version")
            ),
            Payload(
                "HTTP/3.0", b"GET <P> HTTP/3.0\r\nHost: x\r\n\r\n", ANY, check=known, show=_scope_show("http_version")
            ),
        ],
    )


@scenario(
    "wire.h1.version.missing",
    "a request line without a version (HTTP/0.9 style) is rejected",
    level=SHOULD,
    spec="RFC 9112 §2.3, §3",
    impact="interop",
)
def test_version_missing(server: Server) -> None:
    _judge(server, [Payload("no-version", b"GET <P>\r\n\r\n", REJECT, SHOULD, follow=False)])


@scenario(
    "wire.h1.method.case",
    "lower-case and extension methods: refused, or passed to the app as sent (matrix)",
    level=INFO,
    spec="RFC 9110 §9.1",
    impact="interop",
)
def test_method_case(server: Server) -> None:
    """Methods are case-sensitive; the ASGI wording ("uppercased") is an open question. Recorded.
    If an extension method reaches the app, it reaches it as sent."""

    def exact(method: str) -> Check:
        def checker(echo: dict[str, Any]) -> str | None:
            m = echo["scope"].get("method")
            return None if m == method else f"the app saw method {m!r}, not {method!r}"

        return checker

    _judge(
        server,
        [
            Payload("get", b"get <P> HTTP/1.1\r\nHost: x\r\n\r\n", ANY, method="GET"),
            Payload("PROPFIND", b"PROPFIND <P> HTTP/1.1\r\nHost: x\r\n\r\n", ANY, check=exact("PROPFIND")),
            Payload("X-EXT_1", b"X-EXT_1 <P> HTTP/1.1\r\nHost: x\r\n\r\n", ANY, check=exact("X-EXT_1")),
        ],
    )


@scenario(
    "wire.h1.method.too_long",
    "a 10 KiB method gets 501",
    level=SHOULD,
    spec="RFC 9112 §3",
    impact="interop",
)
def test_method_too_long(server: Server) -> None:
    """An ASGI server implements no methods itself (the app does), so passing the method to
    the app is fine; a server that refuses it SHOULD say 501 (another refusal warns)."""
    outcomes = _judge(server, [Payload("10KiB", b"X" * 10_240 + b" <P> HTTP/1.1\r\nHost: x\r\n\r\n", ANY)])
    o = outcomes[0]
    if o.rejected:
        check(
            isinstance(o.first, wire.Response) and o.first.status == 501,
            "a method longer than any the server implements was refused without 501",
            expected="501 (or the app's 200)",
            observed=o.summary,
            level=SHOULD,
        )


@scenario(
    "wire.h1.garbage",
    "bytes that are not HTTP (a TLS hello, the HTTP/2 preface) get 400 and close, or a close",
    level=SHOULD,
    spec="RFC 9112 §2.2",
    impact="hang",
)
def test_garbage(server: Server) -> None:
    _judge(
        server,
        [
            Payload("tls-hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", REJECT, SHOULD, follow=False),
            Payload("h2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", REJECT, SHOULD, follow=False),
        ],
    )


# -- incomplete bodies and slow clients ----------------------------------------------------------


def _body_events(server: Server, head: bytes, parts: list[bytes], how: str) -> tuple[list[Any] | None, str]:
    """Send ``head`` and ``parts`` to ``wire-body``, then ``how`` (shutdown|hold); the app's events.

    ``hold`` keeps the connection open and waits (up to ``_give_up_limit``) for the server to
    give up; the bucketed time is returned with the events.
    """
    token = _token()
    gave_up = "n/a"
    with server.connection() as conn:
        conn.send(head.replace(b"<P>", b"/app/wire-body/%s" % token.encode()))
        for part in parts:
            conn.send(part)
        if how == "shutdown":
            conn.shutdown_write()
            conn.response(timeout=server.timeouts.request)
        else:
            gave_up = _wait_give_up(conn, _give_up_limit(server))
    found = server.journal.wait_for(f"wire-{token}", lambda r: "events" in r, timeout=server.timeouts.event)
    return (found["events"] if found else None), gave_up


def _give_up_limit(server: Server) -> float:
    """How long a stalled exchange is held: 1.5 times the request deadline, so a server timeout at
    the common default of 5 s falls clearly inside it (at 5 s it would race the deadline)."""
    return 1.5 * server.timeouts.request


def _wait_give_up(conn: wire.Connection, limit: float) -> str:
    """How soon the server ended a stalled exchange: a bucket; exact time as a note."""
    start = time.monotonic()
    outcome = conn.response(timeout=limit)
    took = time.monotonic() - start
    if isinstance(outcome, wire.Timeout):
        note(f"still open after {took:.2f}s (the harness's deadline)")
        return f"held past the {limit:g}s deadline"
    note(f"the server answered {wire.describe(outcome)} after {took:.2f}s")
    bucket = "within 1s" if took < 1 else f"within {limit:g}s"
    what = f"{outcome.status}" if isinstance(outcome, wire.Response) else _short(outcome)
    return f"gave up ({what}) {bucket}"


def _never_complete(events: list[Any] | None, what: str) -> str:
    if events is None:
        return "the app did not report (not called, or still waiting)"
    finals = [e for e in events if e[0] == "http.request" and not e[1]]
    check(
        not finals,
        f"the app saw a complete body for {what}",
        expected="http.disconnect (never more_body: False)",
        observed=events,
        level=MUST,
    )
    return "app saw " + ", ".join(f"{e[0]}({e[2]})" for e in events)


@scenario(
    "wire.h1.cl.incomplete",
    "a body shorter than Content-Length before EOF is incomplete: the app never sees it end",
    level=MUST,
    spec="RFC 9112 §6.2",
    impact="data-loss",
)
def test_cl_incomplete(server: Server) -> None:
    events, _ = _body_events(server, POST + b"Content-Length: 10\r\n\r\n", [b"hello"], "shutdown")
    record(_never_complete(events, "Content-Length 10 with 5 bytes then EOF"))


@scenario(
    "wire.h1.chunk.no_last_chunk",
    "a chunked body without its last chunk before EOF is incomplete",
    level=MUST,
    spec="RFC 9112 §7.1",
    impact="data-loss",
)
def test_chunk_no_last_chunk(server: Server) -> None:
    events, _ = _body_events(server, POST + b"Transfer-Encoding: chunked\r\n\r\n", [b"5\r\nhello\r\n"], "shutdown")
    record(_never_complete(events, "a chunked body without 0-size chunk then EOF"))


DRIBBLE_PACE_S = 0.002


@scenario(
    "wire.h1.slow.dribble",
    "a request sent one byte per write is assembled and served",
    level=MUST,
    spec="RFC 9112 §2.1",
    impact="interop",
)
def test_slow_dribble(server: Server) -> None:
    """TCP is a byte stream: a request cut into 1-byte writes is one request. The writes are
    paced (``DRIBBLE_PACE_S`` apart, about 0.2 s for the whole request) so that each byte
    reaches the server as a read of its own even on a busy machine: the pause shapes the
    input of a slow client; nothing is learnt from it."""
    token = _token()
    data = _fill(POST + b"Content-Length: 5\r\n\r\nhello", token)
    with server.connection() as conn:
        for n in range(len(data)):
            if not conn.send(data[n : n + 1]):
                break
            time.sleep(DRIBBLE_PACE_S)  # a slow client's pace, not a wait for an event
        outcome = conn.response()
    echo = _echo_of(outcome)
    check(echo is not None, "a dribbled request was not served", expected="the app's 200", observed=_short(outcome))
    assert echo is not None
    check(
        echo["app"].get("body_length") == 5,
        "the dribbled body did not arrive whole",
        expected=5,
        observed=echo["app"].get("body_length"),
    )
    record(f"app saw {echo['scope'].get('method')} body 5 ({len(data)} one-byte writes)")


@scenario(
    "wire.h1.slow.headers_unfinished",
    "headers that never finish: whether and when the server gives up (matrix)",
    level=INFO,
    spec="RFC 9112 §9.5",
    impact="hang",
    waits="the server's timeout for a request head that never ends (up to 1.5 times the request deadline)",
)
def test_slow_headers_unfinished(server: Server) -> None:
    """Bounded by ``_give_up_limit``: a server still waiting then is recorded as holding.
    The app must not be called for a request whose header section never ended."""
    token = _token()
    with server.connection() as conn:
        conn.send(b"GET /app/wire-mark/%s/partial HTTP/1.1\r\nHost: x\r\nX-A: b" % token.encode())
        gave_up = _wait_give_up(conn, _give_up_limit(server))
    seen = server.journal.wait_for(f"wire-{token}", lambda r: True, timeout=0)
    check(seen is None, "the app was called before the header section ended", expected="no call", observed=seen)
    record(gave_up)


@scenario(
    "wire.h1.slow.body_stalled",
    "a body that stops half way: whether and when the server gives up (matrix)",
    level=INFO,
    spec="RFC 9112 §6.2, §9.5",
    impact="hang",
    waits="the server's timeout for a request body that stopped arriving (up to 1.5 times the request deadline)",
)
def test_slow_body_stalled(server: Server) -> None:
    """Bounded by ``_give_up_limit``; the app must never see the stalled body end."""
    events, gave_up = _body_events(server, POST + b"Content-Length: 10\r\n\r\n", [b"hello"], "hold")
    seen = _never_complete(events, "a body stalled at 5 of 10 bytes")
    record(gave_up)
    note(seen)


# -- response generation (§23) -------------------------------------------------------------------


def _raw_exchange(server: Server, data: bytes, limit: int = 256 * 1024) -> tuple[bytes, bool]:
    """Send ``data`` on a new socket; read raw bytes until EOF or ``timeouts.request`` (bounded size).

    Returns (bytes, eof). The last request should carry ``Connection: close``.
    """
    deadline = Deadline(server.timeouts.request)
    sock = server.address.connect(server.timeouts.request)
    received = bytearray()
    eof = False
    try:
        sock.sendall(data)
        while len(received) < limit and not deadline.expired:
            sock.settimeout(max(deadline.remaining(), 0.001))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            except OSError:
                eof = True
                break
            if not chunk:
                eof = True
                break
            received += chunk
    finally:
        sock.close()
    from asgi_conformance.verdicts import current_cell

    cell = current_cell()
    if cell is not None:
        cell.trace.extend([f"> {data[:1024]!r}", f"< {bytes(received[:2048])!r}", f"= eof={eof}"])
    return bytes(received), eof


def _resp_req(token: str, case: str, method: str = "GET", version: str = "HTTP/1.1", close: bool = False) -> bytes:
    extra = b"Connection: close\r\n" if close else b""
    return b"%s /app/wire-resp/%s/%s %s\r\nHost: x\r\n%s\r\n" % (
        method.encode(),
        token.encode(),
        case.encode(),
        version.encode(),
        extra,
    )


def _close_follow(token: str) -> bytes:
    return b"GET /app/wire-mark/%s/follow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % token.encode()


STATUS_LINE = re.compile(rb"HTTP/1\.[01] [0-9]{3} [\t !-~\x80-\xff]*\r\n")


def _split_head(data: bytes) -> tuple[bytes, list[tuple[bytes, bytes]], bytes] | None:
    """(status line, fields, rest) of the first response in ``data``; None if no full head."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = data[:end].split(b"\r\n")
    fields = []
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        fields.append((name, value.strip(b" \t")))
    return lines[0] + b"\r\n", fields, data[end + 4 :]


def _fields(fields: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    return [v for k, v in fields if k.lower() == name]


def _after_no_body(server: Server, case: str, method: str = "GET") -> tuple[list[tuple[bytes, bytes]], bytes, bytes]:
    """Request ``case`` then a pipelined close follow-up; (fields, status line, bytes after the head)."""
    token = _token()
    data, _ = _raw_exchange(server, _resp_req(token, case, method) + _close_follow(token))
    split = _split_head(data)
    if split is None:
        fail("no complete response head", expected="a response", observed=data[:200])
    status, fields, rest = split
    return fields, status, rest


def _next_is_response(rest: bytes, what: str) -> str:
    """Nothing (the server closed) or the follow-up's response must come right after the head."""
    if not rest:
        return "closed after the head"
    check(
        rest.startswith(b"HTTP/1.1 200") and rest.rstrip().endswith(b"follow"),
        f"bytes follow the {what} before the next response",
        expected="the follow-up's response right after the head",
        observed=rest[:120],
    )
    return "next response right after the head"


@scenario(
    "wire.h1.resp.status_line",
    "the status line is HTTP/1.x, three digits, a reason, CRLF",
    level=MUST,
    spec="RFC 9112 §4",
    impact="interop",
)
def test_resp_status_line(server: Server) -> None:
    data, _ = _raw_exchange(server, b"GET /echo/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    m = STATUS_LINE.match(data)
    check(m is not None, "the status line is not well formed", expected="HTTP/1.1 200 ...\\r\\n", observed=data[:80])
    assert m is not None
    record(m.group(0).decode("latin-1").strip())


@scenario(
    "wire.h1.resp.head_no_content",
    "a HEAD response carries no content even when the app sends a body",
    level=MUST,
    spec="RFC 9110 §9.3.2; RFC 9112 §6.3",
    impact="security",
)
def test_resp_head_no_content(server: Server) -> None:
    _, _, rest = _after_no_body(server, "head", "HEAD")
    record(_next_is_response(rest, "HEAD response"))


@scenario(
    "wire.h1.resp.head_content_length",
    "the app's Content-Length on HEAD reaches the wire unchanged",
    level=MUST,
    spec="RFC 9110 §8.6",
    impact="interop",
)
def test_resp_head_content_length(server: Server) -> None:
    fields, _, _ = _after_no_body(server, "head", "HEAD")
    got = _fields(fields, b"content-length")
    record(f"content-length {got!r}")
    check(got == [b"1234"], "the HEAD response's Content-Length was changed", expected=[b"1234"], observed=got)


@scenario(
    "wire.h1.resp.no_body_statuses",
    "204 and 304 responses end at the header section, whatever body the app sends",
    level=MUST,
    spec="RFC 9112 §6.3",
    impact="security",
)
def test_resp_no_body_statuses(server: Server) -> None:
    """1xx is not covered here (an app cannot send one without an extension)."""
    seen = []
    for case in ("204-body", "304-body"):
        _, status, rest = _after_no_body(server, case)
        seen.append(f"{case}={_next_is_response(rest, status.strip().decode('latin-1'))}")
    record(" | ".join(seen))


@scenario(
    "wire.h1.resp.no_cl_1xx_204",
    "Content-Length on a 204: never added by the server; the app's is stripped or passed (matrix)",
    level=INFO,
    spec="RFC 9110 §8.6",
    impact="cosmetic",
)
def test_resp_no_cl_204(server: Server) -> None:
    fields, _, _ = _after_no_body(server, "204")
    added = _fields(fields, b"content-length")
    check(not added, "the server added Content-Length to a 204", expected="no content-length", observed=added)
    fields, _, _ = _after_no_body(server, "204-cl")
    got = _fields(fields, b"content-length")
    record("app's content-length: 0 on 204 " + ("passed on" if got else "stripped"))


@scenario(
    "wire.h1.resp.no_te_1xx_204",
    "a 204 never carries Transfer-Encoding",
    level=MUST,
    spec="RFC 9112 §6.1",
    impact="interop",
)
def test_resp_no_te_204(server: Server) -> None:
    fields, _, rest = _after_no_body(server, "204")
    got = _fields(fields, b"transfer-encoding")
    check(not got, "a 204 response carries Transfer-Encoding", expected="none", observed=got)
    _next_is_response(rest, "204")


@scenario(
    "wire.h1.resp.304",
    "a 304 may keep the app's Content-Length, but no body follows",
    level=MUST,
    spec="RFC 9110 §8.6, §15.4.5",
    impact="security",
)
def test_resp_304(server: Server) -> None:
    fields, _, rest = _after_no_body(server, "304-cl")
    after = _next_is_response(rest, "304")
    record(f"content-length {_fields(fields, b'content-length')!r}, {after}")


def _stream_http10(server: Server) -> tuple[list[tuple[bytes, bytes]], bytes, bool]:
    token = _token()
    data, eof = _raw_exchange(server, _resp_req(token, "stream", version="HTTP/1.0"))
    split = _split_head(data)
    if split is None:
        fail("no complete response head", expected="a response", observed=data[:200])
    return split[1], split[2], eof


@scenario(
    "wire.h1.resp.no_te_http10",
    "a streamed response to HTTP/1.0 is not chunked",
    level=MUST,
    spec="RFC 9112 §6.1",
    impact="interop",
)
def test_resp_no_te_http10(server: Server) -> None:
    fields, _body, _ = _stream_http10(server)
    got = _fields(fields, b"transfer-encoding")
    check(not got, "a response to HTTP/1.0 uses Transfer-Encoding", expected="none", observed=got)
    record("content-length" if _fields(fields, b"content-length") else "close-delimited")


@scenario(
    "wire.h1.resp.close_delimited",
    "a body with neither Content-Length nor chunking ends with the connection",
    level=MUST,
    spec="RFC 9112 §6.3 (rule 8)",
    impact="data-loss",
)
def test_resp_close_delimited(server: Server) -> None:
    fields, body, eof = _stream_http10(server)
    if _fields(fields, b"content-length") or _fields(fields, b"transfer-encoding"):
        record("framed (not close-delimited)")
    else:
        record("close-delimited")
        check(eof, "a close-delimited body did not end with a close", expected="EOF", observed="still open")
    if not _fields(fields, b"transfer-encoding"):
        check(body == b"hello world", "the streamed body is not whole", expected=b"hello world", observed=body[:100])


@scenario(
    "wire.h1.resp.cl_xor_te",
    "a response never carries both Content-Length and Transfer-Encoding",
    level=MUST,
    spec="RFC 9112 §6.2",
    impact="security",
)
def test_resp_cl_xor_te(server: Server) -> None:
    token = _token()
    data, _ = _raw_exchange(server, _resp_req(token, "cl-te") + _close_follow(token))
    split = _split_head(data)
    if split is None:
        record("no response (the server refused the app's headers)")
        return
    fields = split[1]
    cl, te = _fields(fields, b"content-length"), _fields(fields, b"transfer-encoding")
    record(f"content-length={cl!r} transfer-encoding={te!r}")
    check(not (cl and te), "the response carries both framing headers", expected="one of them", observed=(cl, te))


def _parse_chunked(body: bytes) -> tuple[list[int], bytes] | str:
    """Strict: the chunk sizes and what follows the last chunk, or what is wrong."""
    sizes: list[int] = []
    pos = 0
    while True:
        end = body.find(b"\r\n", pos)
        if end < 0:
            return f"no CRLF after a chunk size at {pos}"
        line = body[pos:end]
        if not re.fullmatch(rb"[0-9A-Fa-f]+", line):
            return f"chunk size {line!r} is not hex"
        size = int(line, 16)
        sizes.append(size)
        pos = end + 2
        if size == 0:
            if body[pos : pos + 2] != b"\r\n":
                return "no empty line after the last chunk"
            return sizes, body[pos + 2 :]
        if body[pos + size : pos + size + 2] != b"\r\n":
            return f"chunk of {size} not followed by CRLF"
        pos += size + 2


@scenario(
    "wire.h1.resp.chunked_valid",
    "chunked output is well formed, with no zero-size chunk before the end",
    level=MUST,
    spec="RFC 9112 §7.1",
    impact="data-loss",
)
def test_resp_chunked_valid(server: Server) -> None:
    """The app streams ``hello ``, an empty body event, ``world``, an empty final event."""
    token = _token()
    data, _ = _raw_exchange(server, _resp_req(token, "stream", close=True))
    split = _split_head(data)
    if split is None:
        fail("no complete response head", expected="a response", observed=data[:200])
    _, fields, body = split
    if [v.lower() for v in _fields(fields, b"transfer-encoding")] != [b"chunked"]:
        record("not chunked")
        return
    parsed = _parse_chunked(body)
    if isinstance(parsed, str):
        fail("malformed chunked body", expected="RFC 9112 §7.1 chunked", observed=f"{parsed}: {body[:120]!r}")
    sizes, after = parsed
    check(
        not after,
        "bytes follow the last chunk (a zero-size chunk before the end?)",
        expected="nothing after the last chunk (the request said Connection: close)",
        observed=f"sizes {sizes}, then {after[:60]!r}",
    )
    check(sum(sizes) == len(b"hello world"), "the chunked body is not whole", expected=11, observed=sizes)
    record("chunked, well formed")


@scenario(
    "wire.h1.resp.cl_matches_body",
    "an app Content-Length that does not match its body never desyncs the connection",
    level=MUST,
    spec="RFC 9110 §8.6",
    impact="security",
)
def test_resp_cl_matches_body(server: Server) -> None:
    """CL 10 with 5 bytes, and CL 10 with 20 bytes, each followed by a pipelined request: the
    wire must not carry bytes the next response would be mistaken for (ASGI leaves the handling open:
    recorded)."""
    seen = []
    for case in ("cl-short", "cl-long"):
        token = _token()
        data, _eof = _raw_exchange(server, _resp_req(token, case) + _close_follow(token))
        split = _split_head(data)
        if split is None:
            seen.append(f"{case}=no response")
            continue
        status, fields, rest = split
        declared = _fields(fields, b"content-length")
        n = int(declared[0]) if declared and declared[0].isdigit() else None
        after = rest[n:] if n is not None else b""
        follow = after.startswith(b"HTTP/1.1 ")
        desc = f"{case}={status[9:12].decode('latin-1')} cl={declared!r} body {min(len(rest), n or 0)}"
        desc += ", then follow-up answered" if follow else (", then closed" if not after else ", then stray bytes")
        seen.append(desc)
        check(
            not after or follow,
            f"{case}: bytes beyond the declared Content-Length are not a response",
            expected="the next response, or a close",
            observed=after[:80],
        )
        check(
            n is None or len(rest) >= n or not follow,
            f"{case}: the next response arrived inside the declared body",
            expected="a close",
            observed=rest[:80],
        )
    record(" | ".join(seen))


IMF_FIXDATE = re.compile(
    rb"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT"
)


@scenario(
    "wire.h1.resp.date",
    "the server adds a well-formed Date (duplicates with the app's recorded)",
    level=MUST,
    spec="RFC 9110 §6.6.1, §5.6.7",
    impact="cosmetic",
)
def test_resp_date(server: Server) -> None:
    fields, _, _ = _after_no_body(server, "stream")
    dates = _fields(fields, b"date")
    check(
        len(dates) == 1 and IMF_FIXDATE.fullmatch(dates[0]) is not None,
        "no well-formed Date",
        expected="one IMF-fixdate",
        observed=dates,
    )
    fields, _, _ = _after_no_body(server, "date")
    record(f"app sets Date: {len(_fields(fields, b'date'))} date field(s) on the wire")


@scenario(
    "wire.h1.resp.close_header",
    "a 400 after which the server closes says Connection: close",
    level=SHOULD,
    spec="RFC 9112 §9.6",
    impact="cosmetic",
)
def test_resp_close_header(server: Server) -> None:
    data, eof = _raw_exchange(server, b"GET /echo/x HTTP/1.1\r\nX A: b\r\nHost: x\r\n\r\n")
    split = _split_head(data)
    if split is None:
        record("closed without a response")
        return
    status, fields, _ = split
    close = any(b"close" in v.lower() for v in _fields(fields, b"connection"))
    record(f"{status[9:12].decode('latin-1')}, connection: close {'present' if close else 'absent'}")
    if eof:
        check(
            close, "closed after the response without Connection: close", expected="connection: close", observed=fields
        )


@scenario(
    "wire.h1.resp.field_syntax",
    "invalid header names or values from the app never reach the wire",
    level=MUST,
    spec="RFC 9110 §5.1, §5.5",
    impact="security",
)
def test_resp_field_syntax(server: Server) -> None:
    seen = []
    for case in ("bad-value", "bad-name"):
        token = _token()
        data, _ = _raw_exchange(server, _resp_req(token, case, close=True))
        split = _split_head(data)
        if split is None:
            seen.append(f"{case}=no response")
            continue
        status, fields, _ = split
        bad = [k for k, _ in fields if not re.fullmatch(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+", k)]
        seen.append(f"{case}={status[9:12].decode('latin-1')}")
        check(not bad, f"{case}: an invalid field line reached the wire", expected="token names only", observed=bad)
        check(
            not _fields(fields, b"x-injected"),
            f"{case}: the app's CRLF in a value injected a header",
            expected="no x-injected",
            observed=fields,
        )
    record(" | ".join(seen))


@scenario(
    "wire.h1.resp.server_errors_well_formed",
    "the server's own error responses are complete and correctly framed",
    level=MUST,
    spec="RFC 9112 §6.3",
    impact="interop",
)
def test_resp_server_errors_well_formed(server: Server) -> None:
    """Rejections of a missing Host, a bad Content-Length and a 100 KiB target (paced, as in
    wire.h1.target.too_long: whether a parser takes or refuses it can depend on how much of
    it one read returned)."""
    seen = []
    for name, data, paced in [
        ("no-host", b"GET /echo/x HTTP/1.1\r\n\r\n", False),
        ("bad-cl", b"POST /echo/x HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n", False),
        ("long-target", b"GET /" + b"a" * 102_400 + b" HTTP/1.1\r\nHost: x\r\n\r\n", True),
    ]:
        if paced:
            with server.connection() as conn:
                conn.send_paced(data, PIECE, server.timeouts.event, settle=server.timeouts.hold)
                outcome = conn.response()
        else:
            outcome = server.raw(data)
        seen.append(f"{name}={_short(outcome)}")
        check(
            not isinstance(outcome, wire.Malformed | wire.Timeout),
            f"{name}: the server's answer is not a complete response",
            expected="a well-formed response, or a close",
            observed=wire.describe(outcome),
        )
    record(" | ".join(seen))
