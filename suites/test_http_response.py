"""HTTP send events: http.response.start / http.response.body, and response semantics (spec-catalogue §6).

Most cases drive one scenario app, ``resp-script`` (asgi_conformance/apps/http_response.py):
the test sends the exact events the app must send (typed JSON keeps bytes and str apart,
so invalid events reach the server as written), plus gates the harness opens and probes
whose outcome (exception class, or none) the app reports back.

SHOULD-raise rows ("send() should raise on an invalid event") send one invalid event per
request: after an invalid event the server accepted, the connection may be unusable.
The app catches whatever is raised and then sends a valid 200 listing its probes; if
the invalid event went out instead, that is what the client sees and what is reported.

Wire rules (framing, HEAD, 204/304, header order and injection) are read from the raw
bytes: the last request of an exchange asks ``Connection: close`` and the reply is read
to EOF (bounded in size and time), then parsed here. Streaming checks are event-based:
the app waits for a gate that the client opens only once it has seen the previous chunk.
"""

from __future__ import annotations

import base64
import gzip
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import h11
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from asgi_conformance import INFO, MAY, MUST, SHOULD, Server, check, expect, fail, note, record, scenario
from asgi_conformance import client as wire
from asgi_conformance import strategies as gen
from asgi_conformance.apps.typedjson import dumps, loads
from asgi_conformance.process import TargetDied
from asgi_conformance.timing import Deadline
from asgi_conformance.verdicts import Level, current_cell

START = "www › Response Start"
BODY = "www › Response Body"
ERRORS = "core › Error Handling"
MAX_RAW = 1024 * 1024
TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
STATUS_LINE = re.compile(rb"^HTTP/1\.[01] (\d{3}) [\t -~\x80-\xff]*$")

Step = dict[str, Any]
Fields = Sequence[tuple[bytes, bytes]]


# -- script building --------------------------------------------------------------------------------


def _token() -> str:
    return secrets.token_hex(8)


def start(status: int | Any = 200, headers: Any = None, **extra: Any) -> Step:
    event: dict[str, Any] = {"type": "http.response.start", "status": status}
    if headers is not None:
        event["headers"] = headers
    event.update(extra)
    return {"op": "send", "event": event}


def body(data: Any = b"", more: bool | None = None, **extra: Any) -> Step:
    event: dict[str, Any] = {"type": "http.response.body", "body": data}
    if more is not None:
        event["more_body"] = more
    event.update(extra)
    return {"op": "send", "event": event}


def probe(step: Step, name: str) -> Step:
    return {**step, "probe": name}


def gate(name: str, limit: float) -> Step:
    return {"op": "gate", "name": name, "limit": limit}


def script_request(
    token: str, steps: list[Step], *, method: str = "POST", headers: Fields = (), close: bool = False
) -> bytes:
    program = dumps({"steps": steps})
    fields = list(headers) + ([(b"Connection", b"close")] if close else [])
    if method in ("GET", "HEAD"):
        query = base64.urlsafe_b64encode(program).decode("ascii")
        return wire.build_request(method, f"/app/resp-script/{token}?s={query}", fields)
    return wire.build_request(method, f"/app/resp-script/{token}", fields, program)


def run_script(server: Server, steps: list[Step], *, headers: Fields = ()) -> wire.Outcome:
    return server.raw(script_request(_token(), steps, headers=headers), method="POST")


def report_of(outcome: wire.Outcome) -> dict[str, Any] | None:
    """The probes the app reported in a 200 response, or None if its report did not come back."""
    if not isinstance(outcome, wire.Response) or outcome.status != 200:
        return None
    try:
        value = loads(outcome.body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _body_is(want: bytes) -> Callable[[wire.Progress], bool]:
    return lambda progress: progress.body == want


def summary(outcome: wire.Outcome | wire.Progress) -> str:
    if isinstance(outcome, wire.Progress):
        return f"partial response: status {outcome.status}, body so far {outcome.body[:80]!r}"
    if isinstance(outcome, wire.Response):
        return f"{wire.describe(outcome)}: {outcome.body[:80]!r}"
    return wire.describe(outcome)


# -- raw exchanges ----------------------------------------------------------------------------------


@dataclass
class Raw:
    """What came back on one connection, read to EOF (or a limit), and parsed here."""

    data: bytes
    end: str
    responses: list[wire.Response] = field(default_factory=list)
    problem: str | None = None

    def head(self) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        """Status line and field lines of the first final response exactly as sent (1xx skipped)."""
        rest = self.data
        while True:
            cut = rest.find(b"\r\n\r\n")
            if cut < 0:
                return b"", []
            lines = rest[:cut].split(b"\r\n")
            rest = rest[cut + 4 :]
            status = STATUS_LINE.match(lines[0])
            if status and status.group(1).startswith(b"1") and status.group(1) != b"101":
                continue
            return lines[0], [(ln.partition(b":")[0], ln.partition(b":")[2].strip(b" \t")) for ln in lines[1:]]


def read_raw(server: Server, data: bytes, methods: Sequence[str], *, token: str | None = None) -> Raw:
    """Send ``data`` on a new connection, read to EOF (bounded), parse the responses to ``methods``.

    With the ``token`` of a script, the reply is read once the app's script has ended, for
    ``timeouts.hold`` (negative evidence: the app is done, whatever the server sends is sent).
    """
    deadline = Deadline(server.timeouts.request)
    received = bytearray()
    end = "eof"
    try:
        sock = server.address.connect(server.timeouts.request)
    except OSError as exc:
        fail("could not connect", expected="a connection", observed=f"{type(exc).__name__}: {exc}", level=Level.MUST)
    try:
        sock.sendall(data)
        if token is not None and script_done(server, token) is not None:
            deadline = Deadline(server.timeouts.hold)
        while True:
            if deadline.expired:
                end = "timeout"
                break
            sock.settimeout(max(deadline.remaining(), 0.001))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                end = "timeout"
                break
            except ConnectionResetError:
                end = "reset"
                break
            if not chunk:
                break
            received += chunk
            if len(received) > MAX_RAW:
                end = "limit"
                break
    finally:
        sock.close()
    raw = Raw(bytes(received), end)
    raw.responses, raw.problem = parse_responses(raw.data, methods)
    cell = current_cell()
    if cell is not None:
        cell.trace.extend([f"> {data[:1024]!r}", f"< {raw.data[:2048]!r}", f"= {end}; {raw.problem or 'ok'}"])
    return raw


def raw_script(server: Server, steps: list[Step], *, headers: Fields = ()) -> tuple[Raw, str]:
    """Run ``steps`` on a connection of its own (Connection: close); the raw reply and the token."""
    token = _token()
    return read_raw(server, script_request(token, steps, headers=headers, close=True), ["POST"], token=token), token


def parse_responses(data: bytes, methods: Sequence[str]) -> tuple[list[wire.Response], str | None]:
    """Parse ``data`` (followed by EOF) as the responses to ``methods``, in order."""
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=64 * 1024)
    conn.receive_data(data)
    conn.receive_data(b"")
    found: list[wire.Response] = []
    for method in methods:
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        if conn.our_state is not h11.IDLE:
            return found, f"the connection ended after {len(found)} response(s)"
        conn.send(h11.Request(method=method, target="/", headers=[("Host", "x")]))
        conn.send(h11.EndOfMessage())
        head: h11.Response | None = None
        content = bytearray()
        informational: list[int] = []
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                if head is None and not conn.trailing_data[0] and conn.trailing_data[1]:
                    return found, f"the connection closed without response {len(found) + 1}"
                return found, f"response {len(found) + 1} is malformed: {exc}"
            if event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
                return found, f"response {len(found) + 1} is incomplete (connection closed)"
            if isinstance(event, h11.InformationalResponse):
                informational.append(event.status_code)
            elif isinstance(event, h11.Response):
                head = event
            elif isinstance(event, h11.Data):
                content += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                found.append(
                    wire.Response(
                        status=head.status_code,
                        reason=bytes(head.reason),
                        http_version=bytes(head.http_version),
                        headers=tuple((bytes(k), bytes(v)) for k, v in head.headers.raw_items()),
                        body=bytes(content),
                        informational=tuple(informational),
                    )
                )
                break
    return found, None


def values(fields: Fields, name: bytes) -> list[bytes]:
    return [v for k, v in fields if k.lower() == name]


def framing(fields: Fields, raw: Raw) -> str:
    if values(fields, b"transfer-encoding"):
        return "chunked"
    if values(fields, b"content-length"):
        return "content-length"
    return "close-delimited" if raw.end == "eof" else "none"


def expect_one_response(raw: Raw, what: str) -> wire.Response:
    if not raw.responses:
        fail(
            f"{what}: no complete, well-formed response came back",
            expected="one response",
            observed=f"{raw.problem or raw.end}: {raw.data[:200]!r}",
        )
    return raw.responses[0]


# -- status -----------------------------------------------------------------------------------------


@scenario(
    "http.start.status",
    "the status line carries the integer status the app sent (200, 201, 404, 418, 599)",
    level=MUST,
    spec=START,
    impact="interop",
)
def test_status(server: Server) -> None:
    seen = {}
    for status in (200, 201, 404, 418, 599):
        outcome = run_script(server, [start(status, [(b"content-length", b"2")]), body(b"ok")])
        seen[status] = outcome.status if isinstance(outcome, wire.Response) else wire.describe(outcome)
    expect(seen, {s: s for s in seen}, "status per status the app sent")


def script_done(server: Server, token: str) -> dict[str, Any] | None:
    """The app's ``done`` record: its script has ended (None if it did not within ``event``)."""
    return server.journal.wait_for(f"resp-{token}", lambda r: r.get("kind") == "done", server.timeouts.event)


def probes_of(server: Server, token: str) -> dict[str, Any] | None:
    """The probes the app journalled when its script ended (None if it never ended)."""
    done = script_done(server, token)
    if done is None:
        return None
    probes = done.get("probes")
    return probes if isinstance(probes, dict) else None


def note_app(server: Server, token: str) -> None:
    """Add what the app's script hit (an exception from send(), where) to the cell's notes."""
    done = script_done(server, token)
    if done is None:
        note("the app's script never ended (a send() that did not return?)")
    elif done.get("errors"):
        note(f"the app's script: {done.get('reached')}: {done['errors']}")


def probe_result(probes: dict[str, Any] | None, name: str = "p") -> str:
    found = (probes or {}).get(name)
    if not isinstance(found, dict):
        return "no record (send() never returned?)"
    return f"raised {found['raised']}" if found.get("raised") else "no exception"


def probe_exchange(server: Server, steps: list[Step], name: str = "p") -> tuple[str, wire.Outcome]:
    """Run ``steps``; what probe ``name`` did (from the journal) and what the client got.

    The reply is read once the script has ended, for ``timeouts.hold`` (negative evidence:
    an invalid event may leave a response the server never completes)."""
    token = _token()
    with server.connection() as conn:
        conn.send(script_request(token, steps))
        probes = probes_of(server, token)
        outcome = conn.response("POST", timeout=server.timeouts.hold if probes is not None else None)
    return probe_result(probes, name), outcome


def _invalid_probe(server: Server, first: Step) -> str:
    """Send ``first`` as a probe, then a valid report; what the probe did, and what the client got
    when the app's report did not come back (a send that did not raise may break the connection)."""
    found, outcome = probe_exchange(server, [probe(first, "p"), {"op": "report"}])
    if report_of(outcome) is None:
        found += f"; the client got {summary(outcome)}"
    return found


def _judge_raises(found: dict[str, str], what: str) -> None:
    record(found)
    check(
        all(v.startswith("raised ") for v in found.values()),
        f"send() did not raise for every invalid {what}",
        expected="raised <exception> for every probe",
        observed=found,
    )


@scenario(
    "http.start.status_invalid",
    'send() raises for a status that is not an int or is out of range ("200", 99, 600, 1000, None)',
    level=SHOULD,
    spec=ERRORS,
    impact="interop",
)
def test_status_invalid(server: Server) -> None:
    """One invalid status per request; the app catches what send() raised, then answers 200."""
    found = {repr(s): _invalid_probe(server, start(s, [])) for s in ("200", 99, 600, 1000, None)}
    _judge_raises(found, "status")


@scenario(
    "http.start.reason_phrase",
    "for codes without a standard reason (299, 599) the status line is still well-formed",
    level=MUST,
    spec="www › WSGI Compatibility; RFC 9112 §4",
    impact="interop",
)
def test_reason_phrase(server: Server) -> None:
    lines = {}
    for status in (299, 599):
        raw = read_raw(
            server,
            script_request(_token(), [start(status, [(b"content-length", b"2")]), body(b"ok")], close=True),
            ["POST"],
        )
        line, _ = raw.head()
        lines[status] = line
        match = STATUS_LINE.match(line)
        check(
            match is not None and match.group(1) == str(status).encode(),
            f"the status line for {status} is not 'HTTP/1.1 {status} [reason]'",
            expected=f"HTTP/1.1 {status} <reason-phrase, possibly empty>",
            observed=line or raw.data[:200],
        )
    record({s: v.decode("latin-1") for s, v in lines.items()})


# -- headers ----------------------------------------------------------------------------------------


@scenario(
    "http.start.headers_default",
    "a start event without 'headers' is accepted (headers default to an empty list)",
    level=MUST,
    spec=START,
    impact="interop",
)
def test_headers_default(server: Server) -> None:
    outcome = run_script(server, [start(201), body(b"no headers")])
    check(
        isinstance(outcome, wire.Response) and outcome.status == 201 and outcome.body == b"no headers",
        "the response of a start event without 'headers' did not come back",
        expected="201 with body b'no headers'",
        observed=summary(outcome),
    )


APP_FIELDS = [(b"x-a", b"1"), (b"x-b", b"2"), (b"x-a", b"3"), (b"x-c", b"4")]


@scenario(
    "http.start.headers_order",
    "response headers go on the wire in the order the app gave them (x-a, x-b, x-a, x-c)",
    level=MUST,
    spec=START,
    impact="interop",
)
def test_headers_order(server: Server) -> None:
    raw = read_raw(server, script_request(_token(), [start(200, APP_FIELDS), body(b"ok")], close=True), ["POST"])
    expect_one_response(raw, "headers in order")
    _, fields = raw.head()
    names = [k.lower() for k, _ in fields]
    ours = [(k.lower(), v) for k, v in fields if k.lower() in (b"x-a", b"x-b", b"x-c")]
    positions = [i for i, (k, _) in enumerate(fields) if k.lower() in (b"x-a", b"x-b", b"x-c")]
    before = [n.decode("latin-1") for n in names[: positions[0]]] if positions else []
    after = [n.decode("latin-1") for n in names[positions[-1] + 1 :]] if positions else []
    record({"server headers before": before, "after": after})
    expect(ours, APP_FIELDS, "the app's field lines, in wire order")


COOKIES = [
    (b"set-cookie", b"a=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/"),
    (b"set-cookie", b"b=2; Expires=Thu, 22 Oct 2037 07:28:00 GMT"),
]


@scenario(
    "http.start.headers_duplicates",
    "repeated set-cookie fields stay separate field lines, never comma-joined",
    level=MUST,
    spec="www › HTTP; Response Start",
    impact="data-loss",
)
def test_headers_duplicates(server: Server) -> None:
    raw = read_raw(server, script_request(_token(), [start(200, COOKIES), body(b"ok")], close=True), ["POST"])
    expect_one_response(raw, "duplicate set-cookie")
    _, fields = raw.head()
    expect(values(fields, b"set-cookie"), [v for _, v in COOKIES], "set-cookie field lines")


@scenario(
    "http.start.headers_lowercase",
    "what the server does with an upper-case header name from the app (X-Upper: 1)",
    level=INFO,
    spec=START,
    impact="cosmetic",
)
def test_headers_lowercase(server: Server) -> None:
    """Unspecified (the app MUST send lower case). Invariant: if the field goes out, it is the
    same name (any case) with the same value; a renamed field is a broken response."""
    steps = [probe(start(200, [(b"X-Upper", b"1"), (b"content-length", b"2")]), "p"), body(b"ok")]
    raw = read_raw(server, script_request(_token(), steps, close=True), ["POST"])
    response = expect_one_response(raw, "upper-case header name")
    _, fields = raw.head()
    same_name = [(k, v) for k, v in fields if k.lower() == b"x-upper"]
    lookalike = [(k, v) for k, v in fields if k.lower() != b"x-upper" and b"upper" in k.lower()]
    if same_name:
        name, value = same_name[0]
        expect(value, b"1", "the value of the upper-case field")
        shown = "passed through as X-Upper" if name == b"X-Upper" else f"emitted as {name.decode('latin-1')}"
    elif response.status == 200 and response.body == b"ok":
        shown = "dropped"
    else:
        shown = f"refused (status {response.status})"
    check(not lookalike, "the field went out under another name", expected="X-Upper (any case)", observed=lookalike)
    record(shown)


@scenario(
    "http.start.headers_bytes",
    "send() raises for str header names or values ([('x', 'y')])",
    level=SHOULD,
    spec="core › Error Handling; www › Response Start",
    impact="interop",
)
def test_headers_bytes(server: Server) -> None:
    """One invalid header list per request; the app catches what send() raised, then answers 200."""
    found = {
        "str name and value": _invalid_probe(server, start(200, [("x", "y")])),
        "str value": _invalid_probe(server, start(200, [(b"x", "y")])),
        "str name": _invalid_probe(server, start(200, [("x", b"y")])),
    }
    _judge_raises(found, "header")


IT_FIELDS = [(b"x-it-1", b"one"), (b"x-it-2", b"two")]


@scenario(
    "http.start.headers_iterable",
    "headers may be a tuple of tuples, a list of lists or a one-shot generator",
    level=MUST,
    spec=START,
    impact="data-loss",
)
def test_headers_iterable(server: Server) -> None:
    seen: dict[str, Any] = {}
    for shape in ("tuple", "list", "generator"):
        step = {**start(200, IT_FIELDS), "headers_as": shape}
        outcome = run_script(server, [step, body(b"ok")])
        if isinstance(outcome, wire.Response):
            seen[shape] = [(k.lower(), v) for k, v in outcome.headers if k.lower().startswith(b"x-it-")]
        else:
            seen[shape] = wire.describe(outcome)
    expect(seen, dict.fromkeys(seen, IT_FIELDS), "the app's fields per shape of 'headers'")


INJECTIONS = {
    "CRLF in value": (b"x-inject", b"a\r\nset-cookie: evil=1"),
    "LF in value": (b"x-inject", b"a\nset-cookie: evil=1"),
    "NUL in value": (b"x-inject", b"a\x00b"),
    "CRLF in name": (b"x-inject\r\nset-cookie", b"evil=1"),
}


def stable_head(head: bytes) -> bytes:
    """The response head with the Date value masked, so a failed cell reads the same every run."""
    return re.sub(rb"(?im)^(date:[ \t]*)[^\r\n]*", rb"\1<date>", head)


@scenario(
    "http.start.header_injection",
    "CR, LF or NUL in app header names or values never reach the wire raw (no response splitting)",
    level=MUST,
    spec="RFC 9110 §5.5; www › Response Start",
    impact="security",
)
def test_header_injection(server: Server) -> None:
    found = {}
    for name, pair in INJECTIONS.items():
        steps = [probe(start(200, [pair, (b"content-length", b"2")]), "p"), body(b"ok")]
        raw, token = raw_script(server, steps)
        _line, fields = raw.head()
        head_end = raw.data.find(b"\r\n\r\n")
        head = raw.data[: head_end if head_end >= 0 else len(raw.data)]
        shown = stable_head(head)[:300]
        check(
            not any(k.lower() == b"set-cookie" for k, _ in fields) and b"\x00" not in head,
            f"{name}: an injected field line (or a raw NUL) reached the wire",
            expected="no 'set-cookie: evil=1' field line, no NUL in the head",
            observed=shown,
        )
        check(
            all(b"\n" not in k and b"\r" not in v for k, v in fields) and b"\n\r\n" not in head,
            f"{name}: a bare CR or LF reached the head",
            expected="only CRLF line ends",
            observed=shown,
        )
        got = f"status {raw.responses[0].status}" if raw.responses else (raw.problem or raw.end)
        if values(fields, b"x-inject"):
            got += f", x-inject: {values(fields, b'x-inject')[0]!r}"
        found[name] = f"send(): {probe_result(probes_of(server, token))}; client: {got}"
    record(found)


INVALID_NAMES = {"space": b"bad name", "colon": b"x:y", "empty": b""}


@scenario(
    "http.start.header_name_invalid",
    "header names that are not tokens (a space, ':', empty) are never written to the wire",
    level=MUST,
    spec="RFC 9110 §5.1; www › Response Start",
    impact="security",
)
def test_header_name_invalid(server: Server) -> None:
    found = {}
    for label, name in INVALID_NAMES.items():
        steps = [probe(start(200, [(name, b"v"), (b"content-length", b"2")]), "p"), body(b"ok")]
        raw, token = raw_script(server, steps)
        _line, fields = raw.head()
        bad = [k for k, _ in fields if not TOKEN.match(k)]
        check(
            not bad,
            f"{label}: a field line whose name is not a token reached the wire",
            expected="every field name a token",
            observed=bad,
        )
        got = f"status {raw.responses[0].status}" if raw.responses else (raw.problem or raw.end)
        found[label] = f"send(): {probe_result(probes_of(server, token))}; client: {got}"
    record(found)


@scenario(
    "http.start.pseudo_headers",
    "send() raises for a pseudo-header (':status') in the response headers",
    level=SHOULD,
    spec=START,
    impact="interop",
)
def test_pseudo_headers(server: Server) -> None:
    """One probe per request; the app catches what send() raised, then answers 200. A pseudo
    header on the wire (a name with ':') is a MUST NOT."""
    steps = [probe(start(200, [(b":status", b"200")]), "p"), {"op": "report"}]
    raw, token = raw_script(server, steps)
    _, fields = raw.head()
    check(
        not any(k.startswith(b":") for k, _ in fields),
        "a pseudo-header reached the wire as a field line",
        expected="no ':status' field line",
        observed=fields,
        level=Level.MUST,
    )
    found = probe_result(probes_of(server, token))
    if not raw.responses or report_of(raw.responses[0]) is None:
        found += f"; the client got {raw.problem or summary(raw.responses[0])}"
    _judge_raises({":status": found}, "pseudo-header")


# -- framing ----------------------------------------------------------------------------------------


@scenario(
    "http.start.transfer_encoding_ignored",
    "app-supplied Transfer-Encoding is disregarded: valid framing, one TE at most, never CL and TE",
    level=MUST,
    spec=START,
    impact="security",
)
def test_transfer_encoding_ignored(server: Server) -> None:
    """The MUST protects the framing: the wire must never carry the app's Transfer-Encoding
    beside a Content-Length, or a coding other than chunked. A server that refuses such a
    response (5xx, or a close without a response) keeps the framing safe: that is recorded."""
    cases = {
        "te chunked + cl 5": [(b"transfer-encoding", b"chunked"), (b"content-length", b"5")],
        "te gzip": [(b"transfer-encoding", b"gzip")],
    }
    found = {}
    for label, headers in cases.items():
        raw, token = raw_script(server, [start(200, headers), body(b"hello")])
        if not raw.responses:
            note_app(server, token)
        _, fields = raw.head()
        te, cl = values(fields, b"transfer-encoding"), values(fields, b"content-length")
        check(
            len(te) <= 1 and not (te and cl),
            f"{label}: the framing headers on the wire are ambiguous",
            expected="at most one Transfer-Encoding and never both it and Content-Length",
            observed={"transfer-encoding": te, "content-length": cl},
        )
        check(
            not te or te[0].lower() == b"chunked",
            f"{label}: a Transfer-Encoding other than chunked reached the wire",
            expected="Transfer-Encoding: chunked or none",
            observed=te,
        )
        if not raw.data:
            found[label] = f"refused: {raw.problem or raw.end}"
            continue
        response = expect_one_response(raw, label)
        if response.status >= 500:
            found[label] = f"refused: status {response.status}"
            continue
        check(
            response.status == 200 and response.body == b"hello",
            f"{label}: the app's response did not arrive as sent",
            expected="200 with body b'hello'",
            observed=summary(response),
        )
        found[label] = framing(fields, raw)
    record(found)


@scenario(
    "http.start.chunked_if_no_length",
    "without Content-Length the server picks the framing (chunked or close-delimited) and the body is intact",
    level=MAY,
    spec="www › HTTP Connection Scope; Response Start",
    impact="data-loss",
)
def test_chunked_if_no_length(server: Server) -> None:
    steps = [start(200, []), body(b"first,", True), body(b"second,", True), body(b"last")]
    raw = read_raw(server, script_request(_token(), steps, close=True), ["POST"])
    response = expect_one_response(raw, "streamed body without length")
    _, fields = raw.head()
    record(framing(fields, raw))
    expect(response.body, b"first,second,last", "the body")


@scenario(
    "http.start.content_length_used",
    "an app Content-Length is the framing: 'content-length: 5', no Transfer-Encoding, body 'hello'",
    level=MUST,
    spec=START,
    impact="interop",
)
def test_content_length_used(server: Server) -> None:
    steps = [start(200, [(b"content-length", b"5")]), body(b"hel", True), body(b"lo")]
    raw = read_raw(server, script_request(_token(), steps, close=True), ["POST"])
    response = expect_one_response(raw, "content-length response")
    _, fields = raw.head()
    expect(
        (values(fields, b"content-length"), values(fields, b"transfer-encoding"), response.body),
        ([b"5"], [], b"hello"),
        "(content-length values, transfer-encoding values, body)",
    )


GZIPPED = gzip.compress(b"compressed by the app " * 20, mtime=0)
PLAIN = b"plain text that a compressing server would like to squeeze " * 20


@scenario(
    "http.start.content_encoding_app_owned",
    "the server neither compresses nor re-labels the body: app gzip bytes arrive as sent, plain stays plain",
    level=MUST,
    spec=START,
    impact="data-loss",
)
def test_content_encoding_app_owned(server: Server) -> None:
    accept = [(b"Accept-Encoding", b"gzip, deflate, br")]
    cases = {
        "app gzip": ([(b"content-encoding", b"gzip"), (b"content-type", b"text/plain")], GZIPPED, [b"gzip"]),
        "plain, client accepts gzip": ([(b"content-type", b"text/plain")], PLAIN, []),
    }
    for label, (headers, data, encoding) in cases.items():
        steps = [start(200, headers), body(data)]
        raw = read_raw(server, script_request(_token(), steps, headers=accept, close=True), ["POST"])
        response = expect_one_response(raw, label)
        _, fields = raw.head()
        expect(
            (values(fields, b"content-encoding"), response.body == data),
            (encoding, True),
            f"{label}: (content-encoding values, body identical)",
        )


# -- order of events --------------------------------------------------------------------------------


@scenario(
    "http.start.delayed_flush",
    "whether the headers leave before the first body event (the server may hold them back)",
    level=INFO,
    spec=START,
    impact="interop",
)
def test_delayed_flush(server: Server) -> None:
    """Uses ``timeouts.hold`` from the moment the app's send(start) has returned (it waits at a
    gate then): headers not seen within it count as held back until the first body. Invariant:
    once the body is sent, its chunk arrives before the app sends the next."""
    token = _token()
    limit = server.timeouts.event * 2
    steps = [start(200, []), gate("body", limit), body(b"first", True), gate("last", limit), body(b"last")]
    with server.connection() as conn:
        conn.send(script_request(token, steps))
        server.journal.wait_for(
            f"resp-{token}", lambda r: r.get("kind") == "at-gate" and r.get("name") == "body", server.timeouts.event
        )
        early = conn.read_until(lambda p: p.status is not None, "POST", timeout=server.timeouts.hold)
        headers_first = isinstance(early, wire.Progress)
        server.journal.open_gate(f"resp-{token}-body")
        got = conn.read_until(lambda p: p.body == b"first", "POST", timeout=server.timeouts.event)
        server.journal.open_gate(f"resp-{token}-last")
        check(
            isinstance(got, wire.Progress),
            "the first body chunk did not arrive before the app sent the last one",
            expected="headers and b'first'",
            observed=summary(got) if not isinstance(got, wire.Progress) else got,
        )
        final = conn.response("POST")
        expect(final.body if isinstance(final, wire.Response) else summary(final), b"firstlast", "the body")
    record("headers sent at start" if headers_first else "headers held until the first body event")


@scenario(
    "http.start.twice",
    "send() raises for a second http.response.start",
    level=SHOULD,
    spec=ERRORS,
    impact="interop",
)
def test_start_twice(server: Server) -> None:
    """The app catches what the second start raised and finishes the first response with its report."""
    head = start(200, [(b"x-first", b"1")])
    steps = [head, probe(start(404, [(b"x-second", b"1")]), "p"), {"op": "report_body"}]
    found, outcome = probe_exchange(server, steps)
    if report_of(outcome) is None:
        found += f"; the client got {summary(outcome)}"
    _judge_raises({"second start": found}, "second start")


@scenario(
    "http.start.body_before_start",
    "send() raises for http.response.body before any http.response.start",
    level=SHOULD,
    spec=ERRORS,
    impact="interop",
)
def test_body_before_start(server: Server) -> None:
    """The app catches what the early body raised, then sends a proper response with its report."""
    _judge_raises({"body first": _invalid_probe(server, body(b"early"))}, "early body")


@scenario(
    "http.start.trailers_default",
    "without 'trailers' a final body event completes the response",
    level=MUST,
    spec=START,
    impact="hang",
)
def test_trailers_default(server: Server) -> None:
    outcome = run_script(server, [start(200, []), body(b"complete")])
    check(
        isinstance(outcome, wire.Response) and outcome.body == b"complete",
        "the response did not complete after the final body event",
        expected="a complete response with body b'complete'",
        observed=summary(outcome),
    )


# -- body -------------------------------------------------------------------------------------------


@scenario(
    "http.body.concat", "100 numbered chunks arrive in order as one body", level=MUST, spec=BODY, impact="data-loss"
)
def test_body_concat(server: Server) -> None:
    chunks = [b"%03d," % i for i in range(100)]
    steps = [start(200, []), *(body(c, True) for c in chunks), body(b"end")]
    outcome = run_script(server, steps)
    got = outcome.body if isinstance(outcome, wire.Response) else summary(outcome)
    expect(got, b"".join(chunks) + b"end", "the body")


@scenario(
    "http.body.flush_on_send",
    "each chunk reaches the client before the app sends the next (the client gates every chunk)",
    level=MUST,
    spec=BODY,
    impact="hang",
)
def test_flush_on_send(server: Server) -> None:
    """The app sends chunk N, then waits for gate N, which opens only once the client holds
    chunk N; a server that buffers the response is caught at the ``event`` deadline."""
    token = _token()
    limit = server.timeouts.event * 2
    chunks = [b"chunk-%d;" % i for i in range(4)]
    steps: list[Step] = [start(200, [])]
    for i, chunk in enumerate(chunks):
        steps += [body(chunk, True), gate(str(i), limit)]
    steps.append(body(b"end"))
    with server.connection() as conn:
        conn.send(script_request(token, steps))
        for i in range(len(chunks)):
            want = b"".join(chunks[: i + 1])
            got = conn.read_until(_body_is(want), "POST", timeout=server.timeouts.event)
            server.journal.open_gate(f"resp-{token}-{i}")
            if not isinstance(got, wire.Progress):
                fail(
                    f"chunk {i} did not reach the client while the app waited for it",
                    expected=f"body so far {want!r}",
                    observed=summary(got),
                )
        final = conn.response("POST")
        expect(final.body if isinstance(final, wire.Response) else summary(final), b"".join(chunks) + b"end", "body")


@scenario(
    "http.body.defaults",
    "a bare {'type': 'http.response.body'} completes an empty response",
    level=MUST,
    spec=BODY,
    impact="hang",
)
def test_body_defaults(server: Server) -> None:
    outcome = run_script(server, [start(200, []), {"op": "send", "event": {"type": "http.response.body"}}])
    check(
        isinstance(outcome, wire.Response) and outcome.status == 200 and outcome.body == b"",
        "a bare body event did not complete an empty response",
        expected="200 with an empty body",
        observed=summary(outcome),
    )


@scenario(
    "http.body.empty_intermediate",
    "an empty chunk with more_body True does not end the response (b'' then b'x' gives 'x')",
    level=MUST,
    spec=BODY,
    impact="data-loss",
)
def test_empty_intermediate(server: Server) -> None:
    outcome = run_script(server, [start(200, []), body(b"", True), body(b"x")])
    expect(outcome.body if isinstance(outcome, wire.Response) else summary(outcome), b"x", "the body")


@scenario(
    "http.body.complete",
    "after a final body the response is complete and the connection carries the next request",
    level=MUST,
    spec=BODY,
    impact="hang",
)
def test_body_complete(server: Server) -> None:
    with server.connection() as conn:
        results = []
        for text in (b"one", b"two"):
            conn.send(script_request(_token(), [start(200, []), body(text, True), body(b"!")]))
            outcome = conn.response("POST")
            results.append(outcome.body if isinstance(outcome, wire.Response) else summary(outcome))
    expect(results, [b"one!", b"two!"], "bodies of two requests on one connection")


@scenario(
    "http.body.after_complete",
    "what send() does with a body event after the response is complete",
    level=INFO,
    spec="www › Response Body; core › Error Handling",
    impact="interop",
)
def test_after_complete(server: Server) -> None:
    """Unspecified. Invariant: the late body never reaches the wire (the first response is
    exactly what was sent and the next request on the connection is served)."""
    token = _token()
    steps = [start(200, []), body(b"done"), probe(body(b"LATE"), "late"), {"op": "journal"}]
    with server.connection() as conn:
        conn.send(script_request(token, steps))
        first = conn.response("POST")
        expect(first.body if isinstance(first, wire.Response) else summary(first), b"done", "the completed body")
        found = server.journal.wait_for(f"resp-{token}", lambda r: r.get("kind") == "probes", server.timeouts.event)
        conn.send(script_request(_token(), [start(200, []), body(b"next")]))
        second = conn.response("POST")
    late = (found or {}).get("probes", {}).get("late") if found else None
    shown = "no record" if not isinstance(late, dict) else (f"raised {late['raised']}" if late["raised"] else "ignored")
    check(
        isinstance(second, wire.Response) and second.body == b"next",
        "the next request on the connection was not served cleanly",
        expected="200 with body b'next'",
        observed=summary(second),
    )
    record(shown)


@scenario(
    "http.body.type",
    "send() raises for a str body",
    level=SHOULD,
    spec=ERRORS,
    impact="interop",
)
def test_body_type(server: Server) -> None:
    """The app sends start, then a str body as a probe, then the report as the body."""
    found, outcome = probe_exchange(server, [start(200, []), probe(body("text"), "p"), {"op": "report_body"}])
    if report_of(outcome) is None:
        found += f"; the client got {summary(outcome)}"
    _judge_raises({"str body": found}, "body")


@scenario(
    "http.body.bytes_like",
    "whether bytearray and memoryview bodies are accepted",
    level=INFO,
    spec=BODY,
    impact="interop",
)
def test_bytes_like(server: Server) -> None:
    """Unspecified. Invariant: a body the server accepted arrives as its bytes."""
    found = {}
    for shape in ("bytearray", "memoryview"):
        steps = [
            start(200, []),
            {**probe(body(b"abc", True), "p"), "body_as": shape},
            {**body(b"def"), "body_as": shape},
        ]
        result, outcome = probe_exchange(server, steps)
        if isinstance(outcome, wire.Response) and outcome.status == 200:
            expect(outcome.body, b"abcdef", f"the {shape} body")
            found[shape] = "accepted"
        else:
            found[shape] = f"not accepted: send() {result}; the client got {summary(outcome)}"
    record(found)


# -- send() and flow control ------------------------------------------------------------------------


def _stream_end(server: Server, token: str, timeout: float) -> dict[str, Any] | None:
    return server.journal.wait_for(f"resp-{token}", lambda r: r.get("kind") == "stream-end", timeout)


def _moved_past(sent: int) -> Callable[[dict[str, Any]], bool]:
    return lambda r: r.get("kind") == "stream-end" or (r.get("kind") == "progress" and r.get("sent", 0) > sent)


def _until_stalled(server: Server, token: str) -> tuple[dict[str, Any] | None, int]:
    """Follow the app's progress records (one per MiB) until the stream ends or stalls: no new
    record within ``timeouts.hold`` (negative evidence). Bounded by ``timeouts.event`` in all.

    The holds start once the app's loop has begun (an event): on a busy machine, getting the
    request to the app alone can take longer than a hold."""
    deadline = Deadline(server.timeouts.event)
    began = server.journal.wait_for(f"resp-{token}", lambda r: r.get("kind") == "stream-begin", deadline.remaining())
    if began is None:
        fail("the app's stream never began", expected="the app starts sending", observed="no stream-begin record")
    sent = 0
    while not deadline.expired:
        found = server.journal.wait_for(f"resp-{token}", _moved_past(sent), server.timeouts.hold)
        if found is None:
            break
        if found.get("kind") == "stream-end":
            return found, int(found.get("sent", 0))
        sent = max(r.get("sent", 0) for r in server.journal.records(f"resp-{token}") if r.get("kind") == "progress")
    return None, sent


def _loop_limit(server: Server) -> float:
    """The app's own time limit for a send loop: twice the event deadline, so that it outlasts
    the harness's part (reading the first bytes, or waiting for the stall, each bounded by
    the event deadline) and what happens after the client leaves decides how the loop ends.
    With the event deadline alone, a busy machine that made the harness late ended the loop
    on its time limit once (hypercorn, a flake check with the other core busy)."""
    return 2 * server.timeouts.event


def _how(end: dict[str, Any]) -> str:
    """How the app's loop ended, without the timing-dependent numbers (those go to a note)."""
    note(f"the app's stream: {_shown(end)}")
    if end.get("error"):
        return f"send() raised {end['error']['raised']}"
    return "send() kept returning until the byte limit" if end.get("ended") == "byte limit" else "time limit"


def _shown(end: dict[str, Any]) -> str:
    how = f"send raised {end['error']['raised']}" if end.get("error") else str(end.get("ended"))
    return f"{how} after {end.get('sent', 0) / 1048576:.1f} MiB in {end.get('elapsed', 0):.2f} s"


@scenario(
    "http.send.returns",
    "send() does not block forever once the client has gone: a 50 MB stream ends when the client closes",
    level=MUST,
    spec="core › Applications",
    impact="hang",
)
def test_send_returns(server: Server) -> None:
    token = _token()
    limit = _loop_limit(server)
    steps = [start(200, []), {"op": "stream", "chunk": 65536, "limit_bytes": 50 * 1024 * 1024, "limit_s": limit}]
    with server.connection() as conn:
        conn.send(script_request(token, steps))
        conn.read_until(lambda p: len(p.body) > 0, "POST", timeout=server.timeouts.event)
        conn.abort()
    end = _stream_end(server, token, limit + server.timeouts.event)
    if end is None:
        fail("the app's send loop never ended after the client went away", expected="the loop ends", observed="no end")
    record(_how(end))


@scenario(
    "http.send.backpressure",
    "whether send() waits when the client does not read (flow control) or buffers",
    level=INFO,
    spec="core › Applications",
    impact="hang",
)
def test_backpressure(server: Server) -> None:
    """Uses ``timeouts.hold`` twice over as negative evidence: a stream of 32 MiB to a client
    that reads nothing. Invariant: once the client closes, the loop ends (send returns)."""
    token = _token()
    limit = _loop_limit(server)
    stream = {"op": "stream", "chunk": 65536, "limit_bytes": 32 * 1024 * 1024, "limit_s": limit, "slow_s": 0.05}
    with server.connection() as conn:
        conn.send(script_request(token, [start(200, []), stream]))
        end, sent = _until_stalled(server, token)
        conn.abort()
    if end is not None and end.get("ended") == "byte limit":
        note(f"the app's stream: {_shown(end)}")
        record("no flow control: 32 MiB accepted while the client read nothing")
        return
    end = end or _stream_end(server, token, limit + server.timeouts.event)
    if end is None:
        fail("the app's send loop never ended after the client went away", expected="the loop ends", observed="no end")
    note(f"the stream stalled after about {sent / 1048576:.0f} MiB unread")
    record(f"flow control: send() waited while the client read nothing; after it closed, {_how(end)}")


# -- response semantics -----------------------------------------------------------------------------


def _pipelined_after(server: Server, first: bytes, first_method: str, what: str) -> tuple[Raw, str]:
    """``first`` then a pipelined GET (Connection: close): the GET's response must parse cleanly
    after the first (or the connection ends right after the first: no stray bytes either way)."""
    follow = script_request(
        _token(), [start(200, [(b"content-length", b"4")]), body(b"next")], method="GET", close=True
    )
    raw = read_raw(server, first + follow, [first_method, "GET"])
    closed = len(raw.responses) == 1 and (raw.problem or "").startswith("the connection closed without")
    check(
        (len(raw.responses) == 2 and raw.responses[1].body == b"next") or closed,
        f"{what}: the pipelined GET's response did not parse cleanly after it",
        expected="two responses, the second with body b'next' (or a close right after the first)",
        observed=f"{len(raw.responses)} parsed ({raw.problem or raw.end}); received {raw.data[:300]!r}",
    )
    return raw, ("connection closed, the pipelined GET not served" if closed else "pipelined GET served")


@scenario(
    "http.resp.head",
    "a HEAD response carries no content even when the app sends a body; a pipelined GET parses after it",
    level=MUST,
    spec="RFC 9110 §9.3.2",
    impact="security",
)
def test_head(server: Server) -> None:
    token = _token()
    steps = [start(200, [(b"content-length", b"5")]), probe(body(b"hello"), "p")]
    raw, after = _pipelined_after(server, script_request(token, steps, method="HEAD"), "HEAD", "HEAD")
    expect(raw.responses[0].body, b"", "the HEAD response's content")
    length = raw.responses[0].header(b"content-length")
    record(f"send() of the body: {probe_result(probes_of(server, token))}; content-length {length!r}; {after}")


@scenario(
    "http.resp.no_body_status",
    "204 and 304 responses carry no content whatever the app sends; a pipelined GET parses after them",
    level=MUST,
    spec="RFC 9112 §6.3",
    impact="security",
)
def test_no_body_status(server: Server) -> None:
    """1xx cannot be a final status through ASGI; 204 and 304 with body b'x'. If the body send
    raised, the app then sends an empty final body (also a probe)."""
    found = {}
    for status in (204, 304):
        token = _token()
        steps = [start(status, []), probe(body(b"x"), "p"), probe(body(b""), "q")]
        raw, after = _pipelined_after(server, script_request(token, steps, method="GET"), "GET", str(status))
        expect((raw.responses[0].status, raw.responses[0].body), (status, b""), f"the {status} response")
        found[status] = f"send() of the body: {probe_result(probes_of(server, token))}; {after}"
    record(found)


@scenario(
    "http.resp.long_poll_scope",
    "a response held open mid-body while the app is idle is not cut off by the server",
    level=INFO,
    spec="www › HTTP Connection Scope",
    impact="hang",
)
def test_long_poll(server: Server) -> None:
    """Uses ``timeouts.hold`` (three times over) as the idle time: the spec expects no cut-off,
    so the response must then complete with its full body."""
    token = _token()
    idle = server.timeouts.hold * 3
    steps = [start(200, []), body(b"waiting;", True), gate("go", server.timeouts.event * 2), body(b"done")]
    with server.connection() as conn:
        conn.send(script_request(token, steps))
        got = conn.read_until(lambda p: p.body == b"waiting;", "POST", timeout=server.timeouts.event)
        began = time.monotonic()
        quiet = conn.read_until(lambda p: len(p.body) > len(b"waiting;"), "POST", timeout=idle)
        server.journal.open_gate(f"resp-{token}-go")
        final = conn.response("POST")
    check(
        isinstance(got, wire.Progress), "the first chunk did not arrive", expected="b'waiting;'", observed=summary(got)
    )
    check(
        isinstance(quiet, wire.Timeout),
        "the held response ended or changed while the app was idle",
        expected="nothing new during the idle time",
        observed=summary(quiet) if not isinstance(quiet, wire.Progress) else quiet,
    )
    expect(final.body if isinstance(final, wire.Response) else summary(final), b"waiting;done", "the body")
    note(f"held open {time.monotonic() - began:.1f} s idle mid-body")
    record(f"no cut-off after {idle:.1f} s idle mid-body; completed")


# -- property: random chunkings ---------------------------------------------------------------------


def _pattern(seed: int, size: int) -> bytes:
    block = bytes((seed * 31 + i * 7) % 256 for i in range(256))
    return (block * (size // 256 + 1))[:size]


class _Pool:
    """One keep-alive connection reused across examples; reconnects once it is gone."""

    def __init__(self) -> None:
        self.conn: wire.Connection | None = None

    def exchange(self, server: Server, data: bytes) -> wire.Outcome:
        for _ in range(2):
            if self.conn is None:
                self.conn = server.connection()
            self.conn.send(data)
            outcome = self.conn.response("POST")
            if isinstance(outcome, wire.Response):
                if (outcome.header(b"connection") or b"").lower() == b"close":
                    self.close()
                return outcome
            self.close()
            if not isinstance(outcome, wire.Closed) or outcome.received:
                return outcome
        return outcome

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


_POOLS: dict[int, _Pool] = {}


@scenario(
    "http.body.chunking_roundtrip",
    "random response chunkings (empty chunks included, with and without Content-Length) arrive byte-exact",
    level=MUST,
    spec=BODY,
    covers=("http.body.concat", "http.body.empty_intermediate", "http.start.content_length_used"),
    impact="data-loss",
)
@settings(parent=gen.LIVE, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(
    sizes=st.lists(st.sampled_from([0, 0, 1, 7, 100, 1000, 4096, 20000]), min_size=1, max_size=8),
    seed=st.integers(0, 255),
    with_length=st.booleans(),
)
def test_chunking_roundtrip(server: Server, sizes: list[int], seed: int, with_length: bool) -> None:
    """The app gets the chunks in its script and sends them as given; one keep-alive connection
    serves every example (reconnecting when it ends). No shrinking: a broken example against a
    live target can cost a whole deadline each time (a body shorter than its Content-Length)."""
    pool = _POOLS.setdefault(id(server.process), _Pool())
    chunks = [_pattern(seed + i, n) for i, n in enumerate(sizes)]
    total = b"".join(chunks)
    headers = [(b"content-length", str(len(total)).encode())] if with_length else []
    steps = [start(200, headers), *(body(c, True) for c in chunks[:-1]), body(chunks[-1])]
    outcome = pool.exchange(server, script_request(_token(), steps))
    if not isinstance(outcome, wire.Response) and server.process.exit_status() is not None:
        raise TargetDied(f"the server exited during the property run\n{server.process.log_tail()}")
    got = outcome.body if isinstance(outcome, wire.Response) else summary(outcome)
    check(
        got == total,
        f"the body differs for chunk sizes {sizes} (content-length: {with_length})",
        expected=f"{len(total)} bytes",
        observed=f"{len(got)} bytes" if isinstance(got, bytes) else got,
    )
