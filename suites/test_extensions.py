"""Extensions (spec-catalogue §14, §16-§19): trailers, zero-copy send, path send, early hints, debug.

A server lists the extensions it offers in ``scope["extensions"]``, and apps switch code paths
on that list (Starlette's FileResponse uses pathsend when it is there). An extension that is
advertised but broken is worse than one that is absent, so each case first learns what the
target advertises, per HTTP version (HTTP/1.1 and HTTP/1.0 on the shared server, and HTTP/2
with prior knowledge where the server speaks it on the same port), then checks the extension
on the wire over every version that advertises it. Not advertised anywhere: ``unsupported``,
never ``fail``. The ``*.advertised`` cells record what is advertised per version, and warn
when the target does what the extension does without listing it (apps never use it then).

The scenario app is ``ext-script`` (asgi_conformance/apps/extensions.py): the test sends the
exact events in the query, files are made inside the server with deterministic content
(``content(seed, size)``, computed here too) and removed when the script ends; the app's
``done`` journal record says what each probed ``send()`` did. HTTP/1.x replies are parsed
here with h11 (so 1xx heads and chunked trailer sections are visible); HTTP/2 replies come
from asgi_conformance.h2client. Waits: a reply is read until it ends (``timeouts.request`` per
stall, four in all); one that has not ended by then is read for ``timeouts.hold`` more once
the app's script has ended (negative evidence), and ``ext.trailers.wait_for_trailers``
watches for ``timeouts.hold`` that the response stays open after its final body.

No built-in target offers zerocopysend or debug, and none offers trailers or early hints over
HTTP/1.1: the harness's own tests prove those cases on fixers that implement the extension
honestly (asgi_conformance/apps/mutants_extensions.py), and the mutants break them.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import h11

from asgi_conformance import INFO, MAY, MUST, SHOULD, Server, check, note, record, scenario, unsupported
from asgi_conformance import client as wire
from asgi_conformance.apps.extensions import content
from asgi_conformance.apps.typedjson import dumps, loads
from asgi_conformance.h2client import H2Client
from asgi_conformance.timing import Deadline
from asgi_conformance.verdicts import Level, current_cell

TRAILERS = "http.response.trailers"
ZEROCOPY = "http.response.zerocopysend"
PATHSEND = "http.response.pathsend"
EARLY_HINT = "http.response.early_hint"
DEBUG = "http.response.debug"
WIRE_VERSIONS = ("1.1", "2")
BIG = 5 * 1024 * 1024
SMALL = 4096
MAX_READ = 8 * 1024 * 1024
LINKS = [b"</style.css>; rel=preload; as=style", b"</app.js>; rel=preload; as=script"]

Step = dict[str, Any]
Fields = tuple[tuple[bytes, bytes], ...]


# -- replies, over HTTP/1.x and HTTP/2 --------------------------------------------------------------


@dataclass
class Reply:
    """One response as far as it has arrived, the same shape for HTTP/1.x and HTTP/2."""

    version: str
    state: str = "pending"
    """pending, complete, closed, reset, timeout, malformed, refused (HTTP/2 adds its outcomes)."""
    status: int | None = None
    headers: Fields = ()
    body: bytes = b""
    trailers: Fields = ()
    informational: tuple[tuple[int, Fields], ...] = ()
    framing: str = ""
    detail: str = ""

    @property
    def complete(self) -> bool:
        return self.state == "complete"

    @property
    def ended(self) -> bool:
        return self.state != "pending"

    def values(self, name: bytes) -> list[bytes]:
        return [v for k, v in self.headers if k.lower() == name]

    def describe(self) -> str:
        text = f"HTTP/{self.version}: {self.state}"
        if self.status is not None:
            text += f", status {self.status}, {len(self.body)} body bytes"
        if self.informational:
            text += f", 1xx {[s for s, _ in self.informational]}"
        if self.trailers:
            text += f", trailers {[k for k, _ in self.trailers]}"
        if self.detail:
            text += f" ({self.detail})"
        return text


def _lower(fields: Sequence[tuple[Any, Any]]) -> Fields:
    return tuple((bytes(k).lower(), bytes(v)) for k, v in fields)


class H1Wire:
    """HTTP/1.x on one connection: raw request bytes out, h11 parses what comes back."""

    def __init__(self, server: Server, http: str = "HTTP/1.1") -> None:
        self.http = http
        self.version = http.removeprefix("HTTP/")
        self.parser = h11.Connection(h11.CLIENT, max_incomplete_event_size=64 * 1024)
        self.reply = Reply(self.version, state="refused")
        self.received = bytearray()
        self.sent = bytearray()
        self.sock = None
        try:
            self.sock = server.address.connect(server.timeouts.request)
        except OSError as exc:
            self.reply.detail = f"{type(exc).__name__}: {exc}"

    def request(self, method: str, target: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
        if self.sock is None:
            return
        parser = self.parser
        if parser.our_state is h11.DONE and parser.their_state is h11.DONE:
            parser.start_next_cycle()
        if parser.our_state is not h11.IDLE:
            self.reply = Reply(self.version, state="closed", detail="the connection cannot take another request")
            return
        parser.send(h11.Request(method=method, target="/", headers=[("Host", "x")]))
        parser.send(h11.EndOfMessage())
        self.reply = Reply(self.version)
        data = wire.build_request(method, target, headers, version=self.http)
        self.sent += data[:2048]
        try:
            self.sock.sendall(data)
        except OSError as exc:
            self.reply = Reply(self.version, state="closed", detail=f"send failed: {type(exc).__name__}")

    def wait(self, until: Callable[[Reply], bool], timeout: float) -> Reply:
        """Read until ``until(reply)`` holds or the reply ends; a copy of the reply so far."""
        deadline = Deadline(timeout)
        reply = self.reply
        while not reply.ended and self.sock is not None:
            try:
                event = self.parser.next_event()
            except h11.RemoteProtocolError as exc:
                reply.state, reply.detail = "malformed", str(exc)
                break
            if event is h11.NEED_DATA:
                if until(reply):
                    break
                if deadline.expired:
                    break
                try:
                    self.sock.settimeout(max(deadline.remaining(), 0.001))
                    data = self.sock.recv(65536)
                except TimeoutError:
                    break
                except ConnectionResetError:
                    reply.state = "reset"
                    break
                except OSError as exc:
                    reply.state, reply.detail = "closed", f"{type(exc).__name__}"
                    break
                if len(self.received) + len(data) > MAX_READ:
                    reply.state, reply.detail = "malformed", f"more than {MAX_READ} bytes"
                    break
                self.received += data
                self.parser.receive_data(data)
            elif isinstance(event, h11.InformationalResponse):
                reply.informational += ((event.status_code, _lower(event.headers.raw_items())),)
            elif isinstance(event, h11.Response):
                reply.status = event.status_code
                reply.headers = _lower(event.headers.raw_items())
                if reply.values(b"transfer-encoding"):
                    reply.framing = "chunked"
                elif reply.values(b"content-length"):
                    reply.framing = "content-length"
                else:
                    reply.framing = "close-delimited"
            elif isinstance(event, h11.Data):
                reply.body += bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                reply.trailers = _lower(event.headers.raw_items())
                reply.state = "complete"
            elif isinstance(event, h11.ConnectionClosed):
                reply.state, reply.detail = "closed", "the connection closed before the response ended"
            else:  # PAUSED: a 101 or a CONNECT reply: not HTTP/1.1 any more
                reply.state, reply.detail = "malformed", "the server switched protocols"
        return replace(reply)

    def close(self) -> None:
        if self.sock is not None:
            cell = current_cell()
            if cell is not None:
                shown = bytes(self.received[:1500])
                more = f" ... (+{len(self.received) - 1500} bytes)" if len(self.received) > 1500 else ""
                cell.trace.extend([f"> {bytes(self.sent)[:600]!r}", f"< {shown!r}{more}"])
            self.sock.close()
            self.sock = None


class H2Wire:
    """HTTP/2 with prior knowledge on the shared server's port: one stream per request."""

    def __init__(self, server: Server) -> None:
        self.version = "2"
        self.client = H2Client(server.address, timeout=server.timeouts.request)
        self.stream: int | None = None

    def request(self, method: str, target: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
        self.stream = self.client.request(method, target, [(k.lower(), v) for k, v in headers])

    def _reply(self) -> Reply:
        if self.stream is None:
            return Reply("2", state="refused")
        got = self.client.progress(self.stream)
        return Reply(
            "2",
            state=got.outcome,
            status=got.status,
            headers=_lower(got.headers),
            body=got.body,
            trailers=_lower(got.trailers or ()),
            informational=tuple((s, _lower(h)) for s, h in got.informational),
            framing="h2",
            detail=got.error or "",
        )

    def wait(self, until: Callable[[Reply], bool], timeout: float) -> Reply:
        self.client.read_until(lambda: self._reply().ended or until(self._reply()), timeout)
        reply = self._reply()
        if reply.state == "pending" and (not self.client.alive):
            reply.state = "closed"
        return reply

    def close(self) -> None:
        self.client.close()


Wire = H1Wire | H2Wire


def open_wire(server: Server, version: str) -> Wire:
    return H2Wire(server) if version == "2" else H1Wire(server, f"HTTP/{version}")


def _never(reply: Reply) -> bool:
    return False


# -- what the target advertises -----------------------------------------------------------------

_ADVERTISED: dict[tuple[str, int | None], dict[str, frozenset[str] | None]] = {}


def _extensions_of(body: bytes) -> frozenset[str] | None:
    try:
        scope = loads(body)["scope"]
    except (ValueError, KeyError, TypeError):
        return None
    found = scope.get("extensions") if isinstance(scope, dict) else None
    if not isinstance(found, dict):
        return frozenset()
    return frozenset(str(k) for k in found if not str(k).startswith("ac."))


def advertised(server: Server) -> dict[str, frozenset[str] | None]:
    """Extension names (``ac.*`` left out) the echo app's scope lists, per HTTP version;
    None for a version the target did not serve. Learned once per server process."""
    key = (str(server.address), server.process.pid)
    if key not in _ADVERTISED:
        found: dict[str, frozenset[str] | None] = {}
        for version in ("1.0", "1.1"):
            outcome = server.request("GET", "/echo/ext-advertised", version=f"HTTP/{version}")
            ok = isinstance(outcome, wire.Response) and outcome.status == 200
            found[version] = _extensions_of(outcome.body) if ok and isinstance(outcome, wire.Response) else None
        with H2Client(server.address, timeout=server.timeouts.request, record=False) as h2:
            got = h2.response(h2.request("GET", "/echo/ext-advertised"))
            found["2"] = _extensions_of(got.body) if got.complete and got.status == 200 else None
        _ADVERTISED[key] = found
    return _ADVERTISED[key]


def advertised_text(server: Server, name: str) -> str:
    shown = []
    for version, names in advertised(server).items():
        label = "HTTP/2 (h2c)" if version == "2" else f"HTTP/{version}"
        shown.append(f"{label}: {'not served' if names is None else 'yes' if name in names else 'no'}")
    return "; ".join(shown)


def versions_for(server: Server, name: str, among: Sequence[str] = WIRE_VERSIONS) -> list[str]:
    """The HTTP versions (of ``among``) on which the target advertises ``name``; unsupported if none."""
    found = advertised(server)
    chosen = [v for v in among if name in (found.get(v) or ())]
    if not chosen:
        unsupported(f"{name} is not advertised ({advertised_text(server, name)})")
    return chosen


# -- scripts ------------------------------------------------------------------------------------------


def _token() -> str:
    return secrets.token_hex(8)


def target_of(token: str, steps: list[Step]) -> str:
    query = base64.urlsafe_b64encode(dumps({"steps": steps})).decode("ascii")
    return f"/app/ext-script/{token}?s={query}"


def start(status: int = 200, headers: Sequence[tuple[bytes, bytes]] = (), **extra: Any) -> Step:
    return send({"type": "http.response.start", "status": status, "headers": list(headers), **extra})


def body(data: bytes = b"", more: bool = False) -> Step:
    return send({"type": "http.response.body", "body": data, "more_body": more})


def send(event: dict[str, Any], probe: str | None = None) -> Step:
    return {"op": "send", "event": event, **({"probe": probe} if probe else {})}


def make_file(name: str, size: int, seed: int) -> Step:
    return {"op": "file", "name": name, "size": size, "seed": seed}


def open_file(name: str, handle: str, seek: int = 0) -> Step:
    return {"op": "open", "name": name, "as": handle, "seek": seek}


def gate(name: str, limit: float) -> Step:
    return {"op": "gate", "name": name, "limit": limit}


def pathsend(path: Any, probe: str | None = None) -> Step:
    return send({"type": PATHSEND, "path": path}, probe)


def zerocopy(handle: Any, probe: str | None = None, **keys: Any) -> Step:
    return send({"type": ZEROCOPY, "file": handle, **keys}, probe)


def trailers(fields: Sequence[tuple[bytes, bytes]], more: bool = False, probe: str | None = None) -> Step:
    return send({"type": TRAILERS, "headers": list(fields), "more_trailers": more}, probe)


def hint(links: Sequence[Any], probe: str | None = None) -> Step:
    return send({"type": EARLY_HINT, "links": list(links)}, probe)


def length(n: int) -> tuple[bytes, bytes]:
    return (b"content-length", str(n).encode())


OCTETS = (b"content-type", b"application/octet-stream")
REPORT = {"op": "report"}


@dataclass
class Run:
    """One scripted exchange: the reply, and the app's ``done`` record (None if it never ended)."""

    reply: Reply
    done: dict[str, Any] | None
    token: str

    def probe(self, name: str) -> str:
        found = ((self.done or {}).get("probes") or {}).get(name)
        if not isinstance(found, dict):
            return "no record (send() never returned?)"
        return f"raised {found['raised']}" if found.get("raised") else "no exception"

    def raised(self, name: str) -> bool:
        found = ((self.done or {}).get("probes") or {}).get(name)
        return isinstance(found, dict) and bool(found.get("raised"))

    def app_errors(self) -> str:
        if self.done is None:
            return "the app's script never ended"
        errors = self.done.get("errors")
        return f"{self.done.get('reached')}: {errors}" if errors else str(self.done.get("reached"))


def done_record(server: Server, token: str, timeout: float | None = None) -> dict[str, Any] | None:
    return server.journal.wait_for(
        f"ext-{token}", lambda r: r.get("kind") == "done", server.timeouts.event if timeout is None else timeout
    )


def exchange(
    server: Server,
    version: str,
    steps: list[Step],
    *,
    method: str = "GET",
    headers: Sequence[tuple[bytes, bytes]] = (),
    follow: bool = False,
    conn: Wire | None = None,
) -> Run:
    """Run ``steps`` over HTTP/``version`` and read the reply to its end (bounded).

    The reply is read until it ends or ``timeouts.request`` passes with no new body byte (at
    most four of them in all: a 5 MiB body on a busy machine keeps coming past one); if it has
    not ended, the app's ``done`` record is awaited and the reply read for ``timeouts.hold``
    more (negative evidence: the app is done, whatever the server sends is sent). With
    ``follow``, a second request (to the echo app) goes on the same connection and must be
    answered: 200 from the echo app, else the reply's ``detail`` says what came back instead.
    """
    token = _token()
    own = conn is None
    link = open_wire(server, version) if conn is None else conn
    try:
        link.request(method, target_of(token, steps), headers)
        reply = _read_while_coming(link, server.timeouts.request, 4 * server.timeouts.request)
        server.journal.open_gate(f"ext-{token}-cleanup")
        done = done_record(server, token)
        if not reply.ended:
            reply = link.wait(_never, server.timeouts.hold)
        if follow:
            reply.detail = (reply.detail + "; " if reply.detail else "") + _follow(server, link, reply)
        return Run(reply, done, token)
    finally:
        if own:
            link.close()


def _read_while_coming(link: Wire, stall: float, cap: float) -> Reply:
    """Read until the reply ends, or ``stall`` seconds pass without a new body byte, or ``cap``."""
    deadline = Deadline(cap)
    size = 0
    reply = link.wait(_never, stall)
    while not reply.ended and len(reply.body) > size and not deadline.expired:
        size = len(reply.body)
        reply = link.wait(_never, min(stall, deadline.remaining()))
    return reply


FOLLOW_OK = "the next request on the connection was answered"


def _follow(server: Server, link: Wire, first: Reply) -> str:
    if not first.complete:
        return "no next request: the first response did not complete"
    link.request("GET", "/echo/ext-follow")
    got = link.wait(_never, server.timeouts.request)
    if got.complete and got.status == 200 and _extensions_of(got.body) is not None:
        return FOLLOW_OK
    return f"the next request on the connection got: {got.describe()} {got.body[:60]!r}"


def _digest(data: bytes) -> str:
    return f"{len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()[:16]}"


def _diff(got: bytes, want: bytes) -> str:
    if got == want:
        return "identical"
    at = next((i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b), min(len(got), len(want)))
    return f"got {_digest(got)}, expected {_digest(want)}; first difference at byte {at}"


def _judge_per_version(results: dict[str, str], ok: Callable[[str], bool], message: str, expected: Any) -> None:
    bad = {v: r for v, r in results.items() if not ok(r)}
    check(not bad, message, expected=expected, observed=bad or results)


def _works_unadvertised(server: Server, name: str, works: Callable[[], str | None]) -> None:
    """The ``*.advertised`` cell: record what each version advertises; where HTTP/1.1 does not
    list ``name``, probe the extension anyway: doing it without listing it is a SHOULD broken."""
    shown = advertised_text(server, name)
    record(shown)
    found = advertised(server)
    if name in (found.get("1.1") or ()) or found.get("1.1") is None:
        return
    evidence = works()
    check(
        evidence is None,
        f"HTTP/1.1 does what {name} does without listing it in scope['extensions']",
        expected=f"{name} listed where it is supported",
        observed=f"{shown}; {evidence}",
        level=Level.SHOULD,
    )


# -- §14 trailers --------------------------------------------------------------------------------------

TRAILER_SPEC = "ext › HTTP Trailers"
TE = [(b"te", b"trailers")]
CHECKSUM = (b"x-checksum", b"c0ffee")


def trailer_steps(*finish: Step, head: Sequence[tuple[bytes, bytes]] = ()) -> list[Step]:
    return [
        start(200, [(b"content-type", b"text/plain"), *head], trailers=True),
        body(b"hello ", more=True),
        body(b"world"),
        *finish,
    ]


def _has(fields: Fields, want: tuple[bytes, bytes]) -> bool:
    return any(k == want[0] and v.strip() == want[1] for k, v in fields)


@scenario(
    "ext.trailers.advertised",
    "http.response.trailers: which HTTP versions list it (and none sends trailers without listing it)",
    level=INFO,
    spec=TRAILER_SPEC,
    impact="interop",
)
def test_trailers_advertised(server: Server) -> None:
    """INFO: the cell is the list per HTTP version. SHOULD (if supported): where HTTP/1.1 does
    not list the extension, a response with ``trailers: True`` and a trailers message must not
    put the trailer field on the wire (a server that can send trailers lists the extension)."""

    def works() -> str | None:
        run = exchange(server, "1.1", trailer_steps(trailers([CHECKSUM], probe="t")), headers=TE)
        return f"the trailer field was sent: {run.reply.describe()}" if _has(run.reply.trailers, CHECKSUM) else None

    _works_unadvertised(server, TRAILERS, works)


@scenario(
    "ext.trailers.wait_for_trailers",
    "with trailers: True the response does not end at the final body; it ends after the trailers",
    level=MUST,
    spec="www › Response Start; ext › HTTP Trailers",
    impact="data-loss",
)
def test_trailers_wait(server: Server) -> None:
    """The app sends the final body, then waits for a gate before sending the trailers. The
    response must not end (chunked terminator / END_STREAM) during ``timeouts.hold`` after the
    body has arrived (negative evidence); after the gate opens, it ends with the trailers."""
    results: dict[str, str] = {}
    for version in versions_for(server, TRAILERS):
        token = _token()
        steps = trailer_steps(gate("t", server.timeouts.event), trailers([CHECKSUM]))
        link = open_wire(server, version)
        try:
            link.request("GET", target_of(token, steps), TE)
            got = link.wait(lambda r: r.body == b"hello world", server.timeouts.request)
            if got.body != b"hello world":
                results[f"HTTP/{version}"] = f"the body did not arrive: {got.describe()}"
                continue
            held = link.wait(_never, server.timeouts.hold)
            server.journal.open_gate(f"ext-{token}-t")
            final = link.wait(_never, server.timeouts.request)
        finally:
            link.close()
        if held.ended:
            results[f"HTTP/{version}"] = f"the response ended before the trailers were sent: {held.describe()}"
        elif not final.complete:
            results[f"HTTP/{version}"] = f"the response did not end after the trailers: {final.describe()}"
        else:
            results[f"HTTP/{version}"] = "ended after the trailers" + (
                "" if _has(final.trailers, CHECKSUM) else " (no field)"
            )
    _judge_per_version(
        results,
        lambda r: r.startswith("ended after"),
        "the response did not wait for the trailers",
        expected="the response still open after the final body; ended once the trailers were sent",
    )
    record(results)


@scenario(
    "ext.trailers.h1_emission",
    "over HTTP/1.1 trailer fields go in the chunked trailer section",
    level=MUST,
    spec="ext › HTTP Trailers; RFC 9112 §7.1.2",
    impact="data-loss",
)
def test_trailers_h1(server: Server) -> None:
    """Implied: HTTP/1.1 can only carry trailers after a chunked body: the response must be
    chunked and the field must arrive in the trailer section (not in the head or the body)."""
    versions_for(server, TRAILERS, among=("1.1",))
    run = exchange(server, "1.1", trailer_steps(trailers([CHECKSUM])), headers=TE)
    reply = run.reply
    check(
        reply.complete and reply.framing == "chunked" and reply.body == b"hello world",
        "the response with trailers is not a complete chunked response with the body intact",
        expected="chunked, body b'hello world'",
        observed=f"{reply.describe()}, framing {reply.framing or '?'}, body {reply.body[:60]!r}",
    )
    check(
        _has(reply.trailers, CHECKSUM) and not _has(reply.headers, CHECKSUM),
        "the trailer field is not in the chunked trailer section",
        expected=f"trailer section {[CHECKSUM]}",
        observed=f"trailer section {list(reply.trailers)}; in the head: {_has(reply.headers, CHECKSUM)}",
    )


@scenario(
    "ext.trailers.te_gate",
    "trailers go out only when the request said TE: trailers; without it the response still completes",
    level=MUST,
    spec=TRAILER_SPEC,
    impact="interop",
)
def test_trailers_te(server: Server) -> None:
    """Two requests per version: with ``TE: trailers`` the field arrives; without TE it does
    not (and the response completes with its body)."""
    results: dict[str, str] = {}
    bad: dict[str, str] = {}
    for version in versions_for(server, TRAILERS):
        with_te = exchange(server, version, trailer_steps(trailers([CHECKSUM])), headers=TE).reply
        without = exchange(server, version, trailer_steps(trailers([CHECKSUM]))).reply
        results[f"HTTP/{version}"] = f"with TE: {with_te.describe()}; without: {without.describe()}"
        if not (with_te.complete and _has(with_te.trailers, CHECKSUM) and with_te.body == b"hello world"):
            bad[f"HTTP/{version}"] = f"with TE: trailers, the field did not arrive: {with_te.describe()}"
        elif not (without.complete and without.body == b"hello world"):
            bad[f"HTTP/{version}"] = f"without TE, the response did not complete: {without.describe()}"
        elif _has(without.trailers, CHECKSUM) or _has(without.headers, CHECKSUM):
            bad[f"HTTP/{version}"] = f"without TE, the trailer field was sent: {without.describe()}"
    check(
        not bad,
        "trailers are not gated on TE: trailers",
        expected="the field with TE: trailers, none without; both responses complete",
        observed=bad,
    )


@scenario(
    "ext.trailers.more_trailers",
    "more_trailers: True: the fields of every trailers message arrive; the last one ends the response",
    level=MUST,
    spec=TRAILER_SPEC,
    impact="data-loss",
)
def test_trailers_more(server: Server) -> None:
    one, two = (b"x-one", b"1"), (b"x-two", b"2")
    bad: dict[str, str] = {}
    for version in versions_for(server, TRAILERS):
        run = exchange(server, version, trailer_steps(trailers([one], more=True), trailers([two])), headers=TE)
        reply = run.reply
        if not (reply.complete and _has(reply.trailers, one) and _has(reply.trailers, two)):
            bad[f"HTTP/{version}"] = (
                f"{reply.describe()}; trailer fields {list(reply.trailers)}; app: {run.app_errors()}"
            )
    check(not bad, "the fields of both trailers messages did not arrive", expected=[one, two], observed=bad)


@scenario(
    "ext.trailers.trailer_header_unchecked",
    "a Trailer header that does not match the fields sent: the response still goes out",
    level=MAY,
    spec=TRAILER_SPEC,
    impact="interop",
)
def test_trailers_unchecked(server: Server) -> None:
    """MAY: the server is not responsible for checking the app's ``Trailer`` header. The cell
    records what became of the header and the fields; the response must still complete intact."""
    other = (b"x-other", b"v")
    seen: dict[str, str] = {}
    bad: dict[str, str] = {}
    for version in versions_for(server, TRAILERS):
        steps = trailer_steps(trailers([other]), head=[(b"trailer", b"x-declared")])
        reply = exchange(server, version, steps, headers=TE).reply
        declared = reply.values(b"trailer")
        seen[f"HTTP/{version}"] = (
            f"Trailer header {'kept' if declared == [b'x-declared'] else repr(declared)}; "
            f"field {'sent' if _has(reply.trailers, other) else 'not sent'}"
        )
        if not (reply.complete and reply.body == b"hello world"):
            bad[f"HTTP/{version}"] = reply.describe()
    record(seen)
    check(not bad, "with a mismatched Trailer header the response did not complete", expected="complete", observed=bad)


@scenario(
    "ext.trailers.with_content_length",
    "trailers: True with an app Content-Length: what the server does (chunked, trailers dropped, error)",
    level=INFO,
    spec="unspecified (ext › HTTP Trailers)",
    impact="hang",
)
def test_trailers_content_length(server: Server) -> None:
    """INFO: the cell is the framing and whether the field went out. Invariant: the body
    arrives intact and the connection takes the next request (the response really ended)."""
    seen: dict[str, str] = {}
    bad: dict[str, str] = {}
    for version in versions_for(server, TRAILERS):
        steps = trailer_steps(trailers([CHECKSUM]), head=[length(11)])
        reply = exchange(server, version, steps, headers=TE, follow=True).reply
        seen[f"HTTP/{version}"] = (
            f"framing {reply.framing}, Content-Length {'kept' if reply.values(b'content-length') else 'dropped'}, "
            f"field {'sent' if _has(reply.trailers, CHECKSUM) else 'not sent'}"
        )
        if not (reply.complete and reply.body == b"hello world" and FOLLOW_OK in reply.detail):
            bad[f"HTTP/{version}"] = reply.describe()
    record(seen)
    check(
        not bad,
        "with Content-Length and trailers, the response did not end cleanly",
        expected="body b'hello world', then the next request answered",
        observed=bad,
    )


@scenario(
    "ext.trailers.unsupported_server",
    "trailers: True and a trailers message on HTTP/1.1 where the extension is not listed",
    level=INFO,
    spec="unspecified (ext › HTTP Trailers)",
    impact="data-loss",
)
def test_trailers_unsupported(server: Server) -> None:
    """INFO, for targets that do not list trailers on HTTP/1.1 (others: not applicable): the cell
    is how the response ended and what ``send()`` did with the trailers message. Invariant: the
    body the app sent arrives intact (the flag must not cost the body)."""
    found = advertised(server).get("1.1")
    if found is None or TRAILERS in found:
        unsupported("HTTP/1.1 lists http.response.trailers: this case is for servers that do not")
    run = exchange(server, "1.1", trailer_steps(trailers([CHECKSUM], probe="t")), headers=TE)
    reply = run.reply
    field = "with the field" if _has(reply.trailers, CHECKSUM) else "without the field"
    ending = f"completed {field}" if reply.complete else f"{reply.state} ({reply.detail})"
    record(f"response {ending}; send(trailers): {run.probe('t')}")
    check(
        reply.body == b"hello world",
        "the body of a response with trailers: True did not arrive",
        expected="b'hello world'",
        observed=reply.describe(),
    )


# -- §16 zero-copy send ------------------------------------------------------------------------------

ZC_SPEC = "ext › Zero Copy Send"


def _zc_body(server: Server, version: str, steps: list[Step], want: bytes, *, follow: bool = False) -> str | None:
    run = exchange(server, version, steps, follow=follow)
    reply = run.reply
    if not reply.complete:
        return f"{reply.describe()}; app: {run.app_errors()}"
    if reply.body != want:
        return _diff(reply.body, want)
    if follow and FOLLOW_OK not in reply.detail:
        return reply.detail
    return None


@scenario(
    "ext.zerocopy.advertised",
    "http.response.zerocopysend: which HTTP versions list it (and none does it without listing it)",
    level=INFO,
    spec=ZC_SPEC,
    impact="interop",
)
def test_zerocopy_advertised(server: Server) -> None:
    """INFO: the list per HTTP version. SHOULD (if supported): where HTTP/1.1 does not list it,
    a zerocopysend of a file must not put the file on the wire."""

    def works() -> str | None:
        steps = [make_file("f", SMALL, 16), open_file("f", "h"), start(200, [OCTETS])]
        steps += [zerocopy({"@file": "h"}, probe="z", more_body=True), body(b"end")]
        reply = exchange(server, "1.1", steps).reply
        return "the file was sent" if content(16, SMALL) in reply.body else None

    _works_unadvertised(server, ZEROCOPY, works)


@scenario(
    "ext.zerocopy.sends_file",
    "zerocopysend sends the file's bytes exactly (5 MiB and an empty file), then the next request works",
    level=MUST,
    spec=ZC_SPEC,
    impact="data-loss",
)
def test_zerocopy_sends_file(server: Server) -> None:
    bad: dict[str, str] = {}
    for version in versions_for(server, ZEROCOPY):
        for size, seed in ((BIG, 1), (0, 2)):
            steps = [make_file("f", size, seed), open_file("f", "h"), start(200, [OCTETS, length(size)])]
            steps.append(zerocopy({"@file": "h"}))
            problem = _zc_body(server, version, steps, content(seed, size), follow=True)
            if problem is not None:
                bad[f"HTTP/{version}, {size} bytes"] = problem
    check(not bad, "the zero-copy body is not the file", expected="the file's bytes exactly", observed=bad)


@scenario(
    "ext.zerocopy.offset_count",
    "offset sets where the read starts, count how many bytes (without count: to the end)",
    level=MUST,
    spec=ZC_SPEC,
    impact="data-loss",
)
def test_zerocopy_offset_count(server: Server) -> None:
    data = content(3, SMALL)
    cases: dict[str, tuple[dict[str, Any], bytes]] = {
        "offset=10, count=100": ({"offset": 10, "count": 100}, data[10:110]),
        "offset=1000": ({"offset": 1000}, data[1000:]),
    }
    bad: dict[str, str] = {}
    for version in versions_for(server, ZEROCOPY):
        for label, (keys, want) in cases.items():
            steps = [
                make_file("f", SMALL, 3),
                open_file("f", "h"),
                start(200, [OCTETS]),
                zerocopy({"@file": "h"}, **keys),
            ]
            problem = _zc_body(server, version, steps, want)
            if problem is not None:
                bad[f"HTTP/{version}, {label}"] = problem
    check(not bad, "offset/count did not select the bytes sent", expected="the selected range exactly", observed=bad)


@scenario(
    "ext.zerocopy.current_position",
    "without offset the read starts at the file's current position",
    level=MUST,
    spec=ZC_SPEC,
    impact="data-loss",
)
def test_zerocopy_position(server: Server) -> None:
    want = content(4, SMALL)[1000:]
    bad: dict[str, str] = {}
    for version in versions_for(server, ZEROCOPY):
        steps = [
            make_file("f", SMALL, 4),
            open_file("f", "h", seek=1000),
            start(200, [OCTETS]),
            zerocopy({"@file": "h"}),
        ]
        problem = _zc_body(server, version, steps, want)
        if problem is not None:
            bad[f"HTTP/{version}"] = problem
    check(
        not bad,
        "the body did not start at the file's position (1000)",
        expected="bytes 1000.. of the file",
        observed=bad,
    )


@scenario(
    "ext.zerocopy.mix_and_repeat",
    "body 'A', two zerocopysend parts (more_body), body 'Z': one body in that order",
    level=MUST,
    spec=ZC_SPEC,
    impact="data-loss",
)
def test_zerocopy_mix(server: Server) -> None:
    data = content(5, SMALL)
    steps = [make_file("f", SMALL, 5), open_file("f", "h"), start(200, [OCTETS]), body(b"A", more=True)]
    steps += [zerocopy({"@file": "h"}, offset=0, count=100, more_body=True)]
    steps += [zerocopy({"@file": "h"}, offset=100, count=100, more_body=True), body(b"Z")]
    bad: dict[str, str] = {}
    for version in versions_for(server, ZEROCOPY):
        problem = _zc_body(server, version, steps, b"A" + data[:200] + b"Z")
        if problem is not None:
            bad[f"HTTP/{version}"] = problem
    check(
        not bad,
        "mixed body and zerocopysend events did not make one body",
        expected="A + 200 file bytes + Z",
        observed=bad,
    )


@scenario(
    "ext.zerocopy.fd_left_open",
    "the server does not close the file descriptor it was given",
    level=MUST,
    spec=ZC_SPEC,
    impact="interop",
)
def test_zerocopy_fd_open(server: Server) -> None:
    """Implied ("servers are not responsible for closing"): after ``send()`` returns, the app's
    ``os.fstat`` on the descriptor succeeds and the file object is not closed."""
    bad: dict[str, Any] = {}
    for version in versions_for(server, ZEROCOPY):
        steps = [make_file("f", SMALL, 6), open_file("f", "h"), start(200, [OCTETS]), zerocopy({"@file": "h"})]
        steps.append({"op": "fdstat", "as": "h", "probe": "after"})
        run = exchange(server, version, steps)
        after = ((run.done or {}).get("probes") or {}).get("after")
        if not (isinstance(after, dict) and after.get("fd_open") and after.get("closed_attr") is False):
            bad[f"HTTP/{version}"] = after if after is not None else run.app_errors()
    check(not bad, "the file was closed by the server", expected="descriptor open, file not closed", observed=bad)


def _raises(server: Server, name: str, steps: list[Step], what: str) -> None:
    """SHOULD raise: for each advertised version, the probe ``p`` in ``steps`` raised."""
    seen: dict[str, str] = {}
    for version in versions_for(server, name):
        seen[f"HTTP/{version}"] = exchange(server, version, steps).probe("p")
    record(seen)
    check(
        all(v.startswith("raised") for v in seen.values()),
        f"send() accepted {what}",
        expected="an exception from send()",
        observed=seen,
        level=Level.SHOULD,
    )


@scenario(
    "ext.zerocopy.window",
    "zerocopysend before http.response.start is invalid: send() raises",
    level=SHOULD,
    spec=f"{ZC_SPEC}; core › Error Handling",
    impact="interop",
)
def test_zerocopy_window(server: Server) -> None:
    steps = [make_file("f", SMALL, 7), open_file("f", "h"), zerocopy({"@file": "h"}, probe="p"), REPORT]
    _raises(server, ZEROCOPY, steps, "a zerocopysend before the response start")


@scenario(
    "ext.zerocopy.non_fd_file",
    "zerocopysend of a file with no OS descriptor (BytesIO): send() raises",
    level=SHOULD,
    spec=f"{ZC_SPEC}; core › Error Handling",
    impact="interop",
)
def test_zerocopy_non_fd(server: Server) -> None:
    steps = [start(200, [OCTETS]), zerocopy({"@bytesio": b"in memory"}, probe="p", more_body=True), body(b"end")]
    _raises(server, ZEROCOPY, steps, "a zerocopysend of a BytesIO")


# -- §17 path send ------------------------------------------------------------------------------------

PS_SPEC = "ext › Path Send"


@scenario(
    "ext.pathsend.advertised",
    "http.response.pathsend: which HTTP versions list it (and none does it without listing it)",
    level=INFO,
    spec=PS_SPEC,
    impact="interop",
)
def test_pathsend_advertised(server: Server) -> None:
    """INFO: the list per HTTP version. SHOULD (if supported): where HTTP/1.1 does not list it,
    a pathsend must not put the file on the wire."""

    def works() -> str | None:
        steps = [make_file("f", SMALL, 20), start(200, [OCTETS]), pathsend({"@path": "f"}, probe="p"), body(b"end")]
        reply = exchange(server, "1.1", steps).reply
        return "the file was sent" if content(20, SMALL) in reply.body else None

    _works_unadvertised(server, PATHSEND, works)


@scenario(
    "ext.pathsend.sends_file",
    "pathsend sends the file exactly (5 MiB and an empty file) and completes the response",
    level=MUST,
    spec=PS_SPEC,
    impact="data-loss",
)
def test_pathsend_sends_file(server: Server) -> None:
    """Each response is followed by a request on the same connection, which must be answered."""
    bad: dict[str, str] = {}
    for version in versions_for(server, PATHSEND):
        for size, seed in ((BIG, 21), (0, 22)):
            steps = [make_file("f", size, seed), start(200, [OCTETS, length(size)]), pathsend({"@path": "f"})]
            problem = _zc_body(server, version, steps, content(seed, size), follow=True)
            if problem is not None:
                bad[f"HTTP/{version}, {size} bytes"] = problem
    check(not bad, "the path-send body is not the file", expected="the file's bytes exactly", observed=bad)


@scenario(
    "ext.pathsend.headers_app_owned",
    "the app's Content-Length frames a path send (no chunking); without one the framing is recorded",
    level=MUST,
    spec=PS_SPEC,
    impact="interop",
)
def test_pathsend_headers(server: Server) -> None:
    """Implied (the app "is responsible" for the headers): with an explicit Content-Length the
    HTTP/1.1 response is framed by it, not chunked. The cell records the framing the server
    picks without one. Both bodies must be the file."""
    data = content(23, SMALL)
    seen: dict[str, str] = {}
    bad: dict[str, str] = {}
    for version in versions_for(server, PATHSEND):
        with_length = exchange(
            server, version, [make_file("f", SMALL, 23), start(200, [OCTETS, length(SMALL)]), pathsend({"@path": "f"})]
        ).reply
        without = exchange(
            server, version, [make_file("f", SMALL, 23), start(200, [OCTETS]), pathsend({"@path": "f"})]
        ).reply
        seen[f"HTTP/{version}"] = f"without Content-Length: {without.framing or without.state}"
        if not (with_length.complete and with_length.body == data):
            bad[f"HTTP/{version}, Content-Length"] = with_length.describe()
        elif version != "2" and with_length.framing != "content-length":
            bad[f"HTTP/{version}, Content-Length"] = f"framed {with_length.framing}"
        elif with_length.values(b"content-length") != [str(SMALL).encode()]:
            bad[f"HTTP/{version}, Content-Length"] = f"Content-Length {with_length.values(b'content-length')}"
        if not (without.complete and without.body == data):
            bad[f"HTTP/{version}, no Content-Length"] = without.describe()
    record(seen)
    check(
        not bad,
        "the app's headers did not frame the path send",
        expected="framed by the app's Content-Length",
        observed=bad,
    )


@scenario(
    "ext.pathsend.once_no_mix",
    "body then pathsend, and pathsend twice: does send() raise? (a complete response must not lose bytes)",
    level=INFO,
    spec=PS_SPEC,
    impact="data-loss",
)
def test_pathsend_once(server: Server) -> None:
    """INFO (enforcement unspecified): the cell says what ``send()`` did. Invariant: if the client
    gets a complete response, its body is what the app sent up to the event refused: the
    prefix and the file (or the prefix alone if the pathsend raised), the file once or twice."""
    data = content(24, SMALL)
    seen: dict[str, str] = {}
    bad: dict[str, str] = {}
    for version in versions_for(server, PATHSEND):
        mix = exchange(
            server,
            version,
            [
                make_file("f", SMALL, 24),
                start(200, [OCTETS]),
                body(b"prefix", more=True),
                pathsend({"@path": "f"}, probe="p"),
            ],
        )
        twice = exchange(
            server,
            version,
            [
                make_file("f", SMALL, 24),
                start(200, [OCTETS]),
                pathsend({"@path": "f"}, probe="p"),
                pathsend({"@path": "f"}, probe="q"),
            ],
        )
        seen[f"HTTP/{version}"] = f"body then pathsend: {mix.probe('p')}; second pathsend: {twice.probe('q')}"
        allowed_mix = {b"prefix" + data} | ({b"prefix"} if mix.raised("p") else set())
        if mix.reply.complete and mix.reply.body not in allowed_mix:
            bad[f"HTTP/{version}, body then pathsend"] = _diff(mix.reply.body, b"prefix" + data)
        if twice.reply.complete and twice.reply.body not in (data, data + data):
            bad[f"HTTP/{version}, pathsend twice"] = _diff(twice.reply.body, data)
    record(seen)
    check(
        not bad,
        "a complete response lost or altered bytes the app sent",
        expected="the prefix and the file",
        observed=bad,
    )


@scenario(
    "ext.pathsend.after_start",
    "pathsend before http.response.start is invalid: send() raises",
    level=SHOULD,
    spec=f"{PS_SPEC}; core › Error Handling",
    impact="interop",
)
def test_pathsend_after_start(server: Server) -> None:
    _raises(
        server,
        PATHSEND,
        [make_file("f", SMALL, 25), pathsend({"@path": "f"}, probe="p"), REPORT],
        "a pathsend before the response start",
    )


def _bad_path(server: Server, path: dict[str, str], want: bytes | None) -> None:
    seen: dict[str, str] = {}
    bad: dict[str, str] = {}
    for version in versions_for(server, PATHSEND):
        run = exchange(server, version, [make_file("f", SMALL, 26), start(200, [OCTETS]), pathsend(path, probe="p")])
        reply = run.reply
        ending = f"complete, status {reply.status}, {len(reply.body)} body bytes" if reply.complete else reply.state
        seen[f"HTTP/{version}"] = f"send(): {run.probe('p')}; response {ending}"
        if reply.complete and reply.status == 200 and (want is None or reply.body != want):
            bad[f"HTTP/{version}"] = f"a complete 200 with {_diff(reply.body, want or b'')}"
    record(seen)
    check(
        not bad,
        "the client got a complete success response that is not the file (an error that looks like a file)",
        expected="an aborted response" + (" or the file itself" if want is not None else ""),
        observed=bad,
    )


@scenario(
    "ext.pathsend.missing_file",
    "pathsend of a path that does not exist: what the server does (raise, 500, abort)",
    level=INFO,
    spec="unspecified (ext › Path Send)",
    impact="data-loss",
)
def test_pathsend_missing(server: Server) -> None:
    """INFO: the cell is what ``send()`` did and how the response ended. Invariant: the client
    must not get a complete 200 (an error must not look like an empty file)."""
    _bad_path(server, {"@missing": "f"}, None)


@scenario(
    "ext.pathsend.relative_path",
    "pathsend of a relative path: what the server does",
    level=INFO,
    spec="unspecified (ext › Path Send)",
    impact="data-loss",
)
def test_pathsend_relative(server: Server) -> None:
    """INFO: the path is the file's, relative to the server's working directory. Invariant: a
    complete 200 must carry that file (resolved), nothing else."""
    _bad_path(server, {"@relpath": "f"}, content(26, SMALL))


@scenario(
    "ext.pathsend.head_request",
    "HEAD with a path send: no body on the wire; a pipelined GET is answered correctly",
    level=MUST,
    spec="RFC 9110 §9.3.2",
    impact="security",
)
def test_pathsend_head(server: Server) -> None:
    bad: dict[str, str] = {}
    for version in versions_for(server, PATHSEND):
        token = _token()
        steps = [make_file("f", SMALL, 27), start(200, [OCTETS, length(SMALL)]), pathsend({"@path": "f"})]
        link = open_wire(server, version)
        try:
            if isinstance(link, H1Wire) and link.sock is not None:
                head = wire.build_request("HEAD", target_of(token, steps))
                follow = wire.build_request("GET", "/echo/ext-after-head")
                link.parser.send(h11.Request(method="HEAD", target="/", headers=[("Host", "x")]))
                link.parser.send(h11.EndOfMessage())
                link.reply = Reply(link.version)
                link.sent += head[:600]
                link.sock.sendall(head + follow)
                first = link.wait(_never, server.timeouts.request)
                second = "" if not first.complete else _next_echo(server, link)
            else:
                link.request("HEAD", target_of(token, steps))
                first = link.wait(_never, server.timeouts.request)
                second = "" if not first.complete else _follow(server, link, first)
        finally:
            server.journal.open_gate(f"ext-{token}-cleanup")
            link.close()
        if not first.complete or first.body:
            bad[f"HTTP/{version}"] = f"HEAD: {first.describe()}"
        elif second not in ("", FOLLOW_OK):
            bad[f"HTTP/{version}"] = second
    check(
        not bad,
        "a HEAD with a path send put a body on the wire",
        expected="no body; the next GET answered",
        observed=bad,
    )


def _next_echo(server: Server, link: H1Wire) -> str:
    """The pipelined GET's response on ``link`` (already sent), judged as in ``_follow``."""
    parser = link.parser
    if parser.our_state is h11.DONE and parser.their_state is h11.DONE:
        parser.start_next_cycle()
    else:
        return "the connection cannot read the pipelined response"
    parser.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
    parser.send(h11.EndOfMessage())
    link.reply = Reply(link.version)
    got = link.wait(_never, server.timeouts.request)
    if got.complete and got.status == 200 and _extensions_of(got.body) is not None:
        return FOLLOW_OK
    return f"the pipelined GET got: {got.describe()} {got.body[:60]!r}"


# -- §18 early hints ----------------------------------------------------------------------------------

EH_SPEC = "ext › Early Hints"


def _links(reply: Reply) -> list[list[bytes]]:
    """The Link values of each 103 (comma-joined values split), in order."""
    found = []
    for status, fields in reply.informational:
        if status == 103:
            found.append([part.strip() for k, v in fields if k == b"link" for part in v.split(b",") if part.strip()])
    return found


def _final_intact(run: Run) -> bool:
    return run.reply.complete and run.reply.status == 200 and run.reply.body == b"final"


FINAL = [start(200, [(b"content-type", b"text/plain"), length(5)]), body(b"final")]


@scenario(
    "ext.early_hint.advertised",
    "http.response.early_hint: which HTTP versions list it (and none sends 103 without listing it)",
    level=INFO,
    spec=EH_SPEC,
    impact="interop",
)
def test_hint_advertised(server: Server) -> None:
    """INFO: the list per HTTP version. SHOULD (if supported): where HTTP/1.1 does not list it,
    an early_hint message must not produce a 103."""

    def works() -> str | None:
        reply = exchange(server, "1.1", [hint(LINKS, probe="h"), *FINAL]).reply
        return f"a 103 was sent: {reply.describe()}" if _links(reply) else None

    _works_unadvertised(server, EARLY_HINT, works)


@scenario(
    "ext.early_hint.103",
    "an early hint becomes a 103 with one Link per entry, before the final response",
    level=SHOULD,
    spec=f"{EH_SPEC}; RFC 8297",
    impact="interop",
)
def test_hint_103(server: Server) -> None:
    bad: dict[str, str] = {}
    for version in versions_for(server, EARLY_HINT):
        run = exchange(server, version, [hint(LINKS, probe="h"), *FINAL])
        got = _links(run.reply)
        if not _final_intact(run):
            bad[f"HTTP/{version}"] = f"the final response: {run.reply.describe()}"
        elif not got or sorted(got[0]) != sorted(LINKS):
            bad[f"HTTP/{version}"] = f"103 links {got}; send(): {run.probe('h')}"
    check(not bad, "no 103 with the hint's links before the final response", expected=[LINKS], observed=bad)


@scenario(
    "ext.early_hint.may_ignore",
    "an advertised early hint: 103 sent or ignored, per version; the final response unharmed",
    level=MAY,
    spec=EH_SPEC,
    impact="interop",
)
def test_hint_may_ignore(server: Server) -> None:
    seen: dict[str, str] = {}
    bad: dict[str, str] = {}
    for version in versions_for(server, EARLY_HINT):
        run = exchange(server, version, [hint(LINKS[:1], probe="h"), *FINAL])
        seen[f"HTTP/{version}"] = "103 sent" if _links(run.reply) else f"ignored (send(): {run.probe('h')})"
        if not _final_intact(run):
            bad[f"HTTP/{version}"] = run.reply.describe()
    record(seen)
    check(not bad, "after an early hint the final response was harmed", expected="200 b'final'", observed=bad)


@scenario(
    "ext.early_hint.timing",
    "an early hint before the response start, and one after it: which yields a 103, which raises",
    level=INFO,
    spec="unspecified (ext › Early Hints)",
    impact="interop",
)
def test_hint_timing(server: Server) -> None:
    """INFO: the text allows the hint after the start, but a 103 must precede the final status
    line. The cell records both placements, and for the hint before the start whether its 103
    arrived while the app still held its start back (the app waits for a gate the test opens
    once a 103 or the final head arrived, or after ``timeouts.event``). Invariant: the final
    response arrives intact."""
    seen: dict[str, str] = {}
    bad: dict[str, str] = {}
    for version in versions_for(server, EARLY_HINT):
        before, early = _held_hint(server, version)
        after = exchange(server, version, [FINAL[0], hint(LINKS[:1], probe="h"), FINAL[1]])
        for label, run in (("before start", before), ("after start", after)):
            shown = "103" if _links(run.reply) else "no 103"
            if run is before and _links(run.reply):
                shown += " (at once)" if early else " (only with the final response)"
            seen[f"HTTP/{version}, {label}"] = f"{shown}; send(): {run.probe('h')}"
            if not _final_intact(run):
                bad[f"HTTP/{version}, {label}"] = run.reply.describe()
    record(seen)
    check(not bad, "an early hint harmed the final response", expected="200 b'final'", observed=bad)


def _held_hint(server: Server, version: str) -> tuple[Run, bool]:
    """A hint, then the start held back until a gate: the run, and whether a 103 came first."""
    token = _token()
    steps = [hint(LINKS[:1], probe="h"), gate("g", 2 * server.timeouts.event), *FINAL]
    link = open_wire(server, version)
    try:
        link.request("GET", target_of(token, steps))
        first = link.wait(lambda r: bool(r.informational) or r.status is not None, server.timeouts.event)
        early = bool(_links(first)) and first.status is None
        server.journal.open_gate(f"ext-{token}-g")
        reply = link.wait(_never, server.timeouts.request)
        done = done_record(server, token)
    finally:
        link.close()
    return Run(reply, done, token), early


@scenario(
    "ext.early_hint.multiple",
    "two early hints: two 103s, one merged, or ignored (recorded); the final response unharmed",
    level=MAY,
    spec=EH_SPEC,
    impact="interop",
)
def test_hint_multiple(server: Server) -> None:
    seen: dict[str, str] = {}
    bad: dict[str, str] = {}
    for version in versions_for(server, EARLY_HINT):
        run = exchange(server, version, [hint(LINKS[:1], probe="h"), hint(LINKS[1:], probe="i"), *FINAL])
        got = _links(run.reply)
        seen[f"HTTP/{version}"] = f"{len(got)} x 103" + (" (links merged)" if len(got) == 1 and len(got[0]) > 1 else "")
        if not _final_intact(run):
            bad[f"HTTP/{version}"] = run.reply.describe()
    record(seen)
    check(not bad, "two early hints harmed the final response", expected="200 b'final'", observed=bad)


@scenario(
    "ext.early_hint.not_http10",
    "no 103 ever reaches an HTTP/1.0 client",
    level=MUST,
    spec="RFC 9110 §15.2",
    impact="interop",
)
def test_hint_http10(server: Server) -> None:
    """For targets that list early hints on some version: the app sends a hint on an HTTP/1.0
    request (whether or not its scope lists the extension; an exception is caught) and then
    its response. No 1xx may arrive."""
    found = advertised(server)
    if not any(EARLY_HINT in (names or ()) for names in found.values()):
        unsupported(f"{EARLY_HINT} is not advertised ({advertised_text(server, EARLY_HINT)})")
    run = exchange(server, "1.0", [hint(LINKS, probe="h"), *FINAL])
    note(f"send(early_hint) on HTTP/1.0: {run.probe('h')}; listed there: {EARLY_HINT in (found.get('1.0') or ())}")
    check(
        not run.reply.informational,
        "an HTTP/1.0 client got a 1xx",
        expected="no 1xx",
        observed=[s for s, _ in run.reply.informational],
    )


@scenario(
    "ext.early_hint.links_type",
    "an early hint whose links are str, not bytes: send() raises",
    level=SHOULD,
    spec=f"{EH_SPEC}; core › Error Handling",
    impact="interop",
)
def test_hint_links_type(server: Server) -> None:
    _raises(server, EARLY_HINT, [hint(["</x.css>; rel=preload"], probe="p"), *FINAL], "str links")


# -- §19 debug ------------------------------------------------------------------------------------------

DEBUG_SPEC = "ext › Debug"


@scenario(
    "ext.debug.not_in_servers",
    "a server does not offer http.response.debug (meant for test clients)",
    level=SHOULD,
    spec=DEBUG_SPEC,
    impact="cosmetic",
)
def test_debug_absent(server: Server) -> None:
    shown = advertised_text(server, DEBUG)
    record(shown)
    check(
        not any(DEBUG in (names or ()) for names in advertised(server).values()),
        "the server lists http.response.debug",
        expected="not listed",
        observed=shown,
    )


DEBUG_EVENT = {"type": DEBUG, "info": {"template": "page.html", "context": {"user": "x"}}}


@scenario(
    "ext.debug.before_start_once",
    "where http.response.debug is listed: one debug message before the start is accepted",
    level=INFO,
    spec=DEBUG_SPEC,
    impact="interop",
)
def test_debug_once(server: Server) -> None:
    """INFO (applies to test-client harnesses): the cell says what ``send()`` did. Invariant: a
    listed extension accepts its valid use, and the response after it arrives intact."""
    seen: dict[str, str] = {}
    bad: dict[str, str] = {}
    for version in versions_for(server, DEBUG):
        run = exchange(server, version, [send(dict(DEBUG_EVENT), probe="d"), *FINAL])
        seen[f"HTTP/{version}"] = run.probe("d")
        if run.raised("d") or not _final_intact(run):
            bad[f"HTTP/{version}"] = f"send(): {run.probe('d')}; {run.reply.describe()}"
    record(seen)
    check(not bad, "a listed debug extension refused its message", expected="accepted; 200 b'final'", observed=bad)


@scenario(
    "ext.debug.unadvertised_send",
    "http.response.debug where it is not listed: send() raises (unknown event)",
    level=SHOULD,
    spec="core › Error Handling",
    impact="interop",
)
def test_debug_unadvertised(server: Server) -> None:
    found = advertised(server).get("1.1")
    if found is None or DEBUG in found:
        unsupported("HTTP/1.1 lists http.response.debug: this case is for servers that do not")
    run = exchange(server, "1.1", [send(dict(DEBUG_EVENT), probe="p"), REPORT])
    record(run.probe("p"))
    check(
        run.raised("p"),
        "send() accepted an http.response.debug message the scope does not list",
        expected="an exception from send()",
        observed=run.probe("p"),
        level=Level.SHOULD,
    )
