"""HTTP/2 on the wire (spec-catalogue §25; RFC 9113, RFC 8441), with the push rows (§15) and
``ext.trailers.h2_emission`` (§14).

Every case talks HTTP/2 through the ``h2`` fixture (suites/fixtures_h2.py): cleartext with
prior knowledge on the shared server where the target declares ``h2c``, else over TLS with
ALPN on the target's TLS process. Targets without HTTP/2 get ``unsupported`` cells. The
client is asgi_conformance.h2client: every read bounded, every wait with a deadline, and
whatever the server does (RST_STREAM, GOAWAY, broken framing) is an outcome the case judges.

The app side is the echo app, the apps of apps/h2_apps.py, and ``req-log`` / ``req-digest``
/ ``req-stream`` (apps/http_request.py). Streams run concurrently where a case says so;
gates (harness -> app) order what happens, never a sleep.
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
from collections.abc import Iterable
from typing import Any

import pytest

from asgi_conformance import INFO, MAY, MUST, SHOULD, Server, check, expect, fail, note, record, scenario, unsupported
from asgi_conformance.apps.h2_apps import pattern
from asgi_conformance.apps.typedjson import loads
from asgi_conformance.h2client import H2Client, H2Response, SettingCodes
from asgi_conformance.targets import Target
from asgi_conformance.wsclient import OP_CLOSE, FrameError, FrameParser, close_payload, encode_frame

from .fixtures_h2 import H2Transport, transport_for, transports_for

WWW = "www › HTTP Connection Scope"
H2 = ["http2"]
CONNECTION_SPECIFIC = (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade")
BIG = 8 * 1024 * 1024


def _token() -> str:
    return secrets.token_hex(8)


def _answered(resp: H2Response, what: str, level: Any = None) -> H2Response:
    """The complete 200 response of ``what``; a failed check otherwise."""
    if not resp.complete or resp.status != 200:
        fail(
            f"{what} was not answered on its HTTP/2 stream",
            expected="a complete 200 response",
            observed=resp.describe() + (f": {resp.body[:200]!r}" if resp.body else ""),
            level=level,
        )
    return resp


def _json(resp: H2Response, what: str) -> Any:
    _answered(resp, what)
    try:
        return loads(resp.body)
    except ValueError:
        fail(f"the body of {what} is not the app's JSON", expected="JSON", observed=resp.body[:200])


def _object(resp: H2Response, what: str) -> dict[str, Any]:
    """The app's JSON object in the body of ``what``."""
    data = _json(resp, what)
    if not isinstance(data, dict):
        fail(f"the body of {what} is not a JSON object", expected="{...}", observed=resp.body[:200])
    return data


def _scope(resp: H2Response, what: str = "the echo request") -> dict[str, Any]:
    data = _json(resp, what)
    if not isinstance(data, dict) or not isinstance(data.get("scope"), dict):
        fail("the response body is not the echo app's", expected="the echo JSON", observed=resp.body[:200])
    scope: dict[str, Any] = data["scope"]
    return scope


def _headers(scope: dict[str, Any]) -> list[tuple[Any, Any]]:
    found = scope.get("headers")
    pairs: list[tuple[Any, Any]] = []
    for item in found if isinstance(found, list | tuple) else []:
        if isinstance(item, list | tuple) and len(item) == 2:
            pairs.append((item[0], item[1]))
    return pairs


def _values(pairs: Iterable[tuple[Any, Any]], name: bytes) -> list[Any]:
    return [v for k, v in pairs if isinstance(k, bytes) and k.lower() == name]


def _describe_head(resp: H2Response) -> list[str]:
    return [f"{k.decode('latin-1')}: {v[:80].decode('latin-1')}" for k, v in resp.raw_headers]


def _ended(c: H2Client, sid: int) -> bool:
    return c.progress(sid).outcome != "pending"


def _transport(h2: H2Transport) -> None:
    note(f"over {h2.description}")


# -- scope ----------------------------------------------------------------------------------------


@scenario("wire.h2.http_version", "HTTP/2 requests have http_version '2'", level=MUST, spec=WWW, requires=H2)
def test_http_version(request: pytest.FixtureRequest, target: Target) -> None:
    """MUST: ``http_version`` is one of "1.0", "1.1", "2": the version the client used, so "2".
    Checked on every HTTP/2 transport the target declares: h2c with prior knowledge on its
    plain listener and h2 over TLS negotiated by ALPN (its TLS process); the scheme must
    follow ("http", "https")."""
    transports = transports_for(request, target)
    if not transports:
        unsupported(f"{target.id} declares neither h2c nor http2 with tls")
    seen: dict[str, Any] = {}
    for h2 in transports:
        with h2.client() as c:
            scope = _scope(c.response(c.request("GET", f"/echo/h2/{_token()}")), f"the echo request ({h2.kind})")
        expect(scope.get("http_version"), "2", f"http_version of an HTTP/2 request ({h2.description})")
        expect(scope.get("scheme", "http"), h2.scheme, f'scheme, default "http" ({h2.description})')
        seen[h2.kind] = scope.get("http_version")
    record(seen)


@scenario(
    "wire.h2.stream_scopes",
    "concurrent streams on one connection get their own scopes and answers on their own streams",
    level=SHOULD,
    spec="www › HTTP",
    covers=["wire.h2.stream_scopes", "http.scope.h2_streams"],
    requires=H2,
)
def test_stream_scopes(h2: H2Transport) -> None:
    """SHOULD: "A protocol server should give different requests on the same HTTP/2 connection
    different scopes, and correctly multiplex the responses back into the same stream".
    Five streams open at once; each app call journals its start and waits on its own gate;
    the harness opens the gates in reverse order, so the answers come back out of order. Each
    response must name its own path; the five concurrent calls must have five scopes."""
    _transport(h2)
    token = _token()
    stream = f"h2-{token}"
    count = 5
    limit = h2.timeouts.event * 2
    with h2.client() as c:
        sids = {i: c.request("GET", f"/app/h2-gated/{token}/{i}?limit={limit:.1f}") for i in range(count)}

        def starts() -> dict[str, dict[str, Any]]:
            return {str(r.get("i")): r for r in h2.journal.records(stream) if r.get("event") == "start"}

        h2.journal.wait_for(stream, lambda r: len(starts()) >= count, timeout=h2.timeouts.event)
        started = starts()
        concurrent = len(started) == count
        if not concurrent:
            note(f"only {len(started)} of the {count} app calls were running at once")
            for i in range(count):
                h2.journal.open_gate(f"{stream}-{i}")
        for i in reversed(range(count)):
            h2.journal.open_gate(f"{stream}-{i}")
            c.read_until(functools.partial(_ended, c, sids[i]), timeout=h2.timeouts.request)
        responses = {i: c.response(sid) for i, sid in sids.items()}
    for i, resp in responses.items():
        data = _json(resp, f"stream {sids[i]} (request {i})")
        check(
            isinstance(data, dict) and data.get("path") == f"/app/h2-gated/{token}/{i}",
            f"stream {sids[i]} carried the answer to another request",
            expected=f"/app/h2-gated/{token}/{i}",
            observed=data.get("path") if isinstance(data, dict) else data,
        )
    if concurrent:
        ids = {r.get("scope_id") for r in started.values()}
        check(
            len(ids) == count,
            "concurrent streams shared a scope object",
            expected=f"{count} distinct scopes",
            observed=f"{len(ids)} distinct scopes",
        )


@scenario(
    "wire.h2.pseudo_mapping",
    "pseudo-headers are not in the scope; :authority is the host entry, first, replacing a host field",
    level=MUST,
    spec=WWW,
    covers=["wire.h2.pseudo_mapping", "http.scope.headers.pseudo_removed"],
    requires=H2,
)
def test_pseudo_mapping(h2: H2Transport) -> None:
    """MUST: "Pseudo headers (present in HTTP/2 and HTTP/3) must be removed; if :authority is
    present its value must be added to the start of the iterable with host as the header name
    or replace any existing host header already present". Also :method, :scheme and :path
    become ``method``, ``scheme``, ``path`` and ``query_string``. Three requests: :authority
    alone; with the same ``host``; with a different ``host`` (on its own connection, since
    RFC 9113 §8.3.1 lets a server treat that as malformed: refusing it is fine, but if the app
    is called it must see the :authority value). The first header must be ``host`` with the
    :authority value; a client host field kept after it is noted (the spec's "added to the
    start" read literally), not failed."""
    _transport(h2)
    token = _token()
    with h2.client() as c:
        alone = c.request("POST", f"/echo/h2/{token}/a%20b?x=1", [(b"x-probe", b"1")], b"hi", authority="a.example")
        same = c.request("GET", f"/echo/h2/{token}/same", [(b"host", b"a.example")], authority="a.example")
        scopes = {"alone": _scope(c.response(alone), ":authority alone"), "same": _scope(c.response(same), "same")}
    with h2.client() as c:
        other = c.response(
            c.request("GET", f"/echo/h2/{token}/other", [(b"host", b"b.example")], authority="a.example")
        )
    if other.complete and other.status == 200:
        scopes["different host"] = _scope(other, "the request with a different host field")
    else:
        note(f"a host field that differs from :authority was refused: {other.describe()}")
    first = scopes["alone"]
    expect(first.get("method"), "POST", "method from :method")
    expect(first.get("scheme", "http"), h2.scheme, 'scheme from :scheme (default "http")')
    expect(first.get("path"), f"/echo/h2/{token}/a b", "path from :path")
    expect(first.get("query_string"), b"x=1", "query_string from :path")
    extra: list[str] = []
    for name, scope in scopes.items():
        pairs = _headers(scope)
        pseudo = [k for k, _ in pairs if isinstance(k, bytes | str) and k[:1] in (b":", ":")]
        check(not pseudo, f"pseudo-headers are in the scope ({name})", expected="none", observed=pseudo)
        check(
            bool(pairs) and pairs[0] == (b"host", b"a.example"),
            f"the scope's first header is not host with the :authority value ({name})",
            expected="(b'host', b'a.example') first",
            observed=pairs[:4],
        )
        hosts = _values(pairs, b"host")
        if len(hosts) > 1:
            extra.append(f"{name}: {hosts}")
    if extra:
        # "added to the start ... or replace any existing host header": keeping the client's
        # host field after the :authority entry is the first option read literally.
        note(f"more than one host entry (the :authority one is first): {'; '.join(extra)}")
        record("the :authority host first; the host field kept as well")
    else:
        record("one host entry, the :authority value, first")


@scenario(
    "wire.h2.cookie_crumbs",
    "several cookie fields (crumbs) reach the app without any crumb lost or altered",
    level=INFO,
    spec="www › HTTP (cookie note); RFC 9113 §8.2.3",
    requires=H2,
)
def test_cookie_crumbs(h2: H2Transport) -> None:
    """INFO, because the specs disagree: ASGI preserves headers "exactly as they were provided"
    (the catalogue: crumbs arrive as sent, the app joins them), while RFC 9113 §8.2.3 says the
    crumbs MUST be joined with "; " before they are passed to "a generic HTTP server
    application". The cell records which the server does; it fails only if a crumb is lost,
    altered or reordered (neither form)."""
    _transport(h2)
    crumbs = [b"a=1", b"b=2", b"c=3"]
    with h2.client() as c:
        scope = _scope(c.response(c.request("GET", f"/echo/h2/{_token()}", [(b"cookie", v) for v in crumbs])))
    cookies = _values(_headers(scope), b"cookie")
    if cookies == crumbs:
        record("as sent: one cookie entry per crumb (ASGI)")
    elif cookies == [b"; ".join(crumbs)]:
        record('joined with "; " into one entry (RFC 9113 §8.2.3)')
    else:
        fail(
            "the cookie crumbs did not reach the app intact",
            expected=f"{crumbs} (as sent) or [{b'; '.join(crumbs)!r}] (joined)",
            observed=cookies,
        )


# -- response fields --------------------------------------------------------------------------------


@scenario(
    "wire.h2.no_connection_headers",
    "connection-specific fields from the app never go out on HTTP/2",
    level=MUST,
    spec="RFC 9113 §8.2.2",
    impact="interop",
    requires=H2,
)
def test_no_connection_headers(h2: H2Transport) -> None:
    """MUST NOT (RFC 9113 §8.2.2): a response carrying connection-specific fields is malformed,
    and clients reset it. The app sends ``connection``, ``keep-alive``, ``proxy-connection``,
    ``transfer-encoding`` and ``upgrade``; none may reach the client. The server strips them
    (or rejects the response); losing the response to a reset is a SHOULD failure (warn)."""
    _transport(h2)
    with h2.client() as c:
        resp = c.response(c.request("GET", f"/app/h2-headers/{_token()}/connection"))
    sent = sorted({k.decode("latin-1") for k, _ in resp.raw_headers if k.lower() in CONNECTION_SPECIFIC})
    check(not sent, "connection-specific fields went out on HTTP/2", expected="none", observed=sent)
    if not resp.complete:
        fail(
            "the response was lost instead of sent without the connection-specific fields",
            expected="the app's 200 without those fields",
            observed=resp.describe(),
            level=SHOULD,
        )
    record(f"{resp.status}, stripped" if resp.status == 200 else f"{resp.status} (refused by the server)")


@scenario(
    "wire.h2.lowercase_names",
    "an upper-case field name from the app is lower-cased or refused on HTTP/2",
    level=MUST,
    spec="RFC 9113 §8.2.1",
    requires=H2,
)
def test_lowercase_names(h2: H2Transport) -> None:
    """MUST (RFC 9113 §8.2.1): field names with upper-case letters are malformed in HTTP/2.
    The app sends ``X-Upper-Case: 1``: the client must see ``x-upper-case`` (or no such
    field, if the server refuses it); losing the response to a reset is a SHOULD failure."""
    _transport(h2)
    with h2.client() as c:
        resp = c.response(c.request("GET", f"/app/h2-headers/{_token()}/upper"))
    upper = [k.decode("latin-1") for k, _ in resp.raw_headers if k != k.lower()]
    check(not upper, "upper-case field names went out on HTTP/2", expected="lower-case names", observed=upper)
    if not resp.complete:
        fail(
            "the response was lost instead of sent with a lower-cased name",
            expected="the app's 200",
            observed=resp.describe(),
            level=SHOULD,
        )
    record("lower-cased" if resp.header(b"x-upper-case") == b"1" else "the field was dropped")


HEAD_BYTES = 4096


def _head_exchange(h2: H2Transport, head_path: str, get_path: str) -> tuple[H2Response, int, H2Response | None]:
    """HEAD ``head_path``, then (if the connection survived) GET ``get_path`` on the same
    connection: the HEAD response, the DATA frames received by the time it ended, the GET's."""
    with h2.client() as c:
        head = c.response(c.request("HEAD", head_path))
        data_frames = c.frames_received["DataFrame"]
        after = c.response(c.request("GET", get_path)) if c.alive else None
    return head, data_frames, after


def _head_fields(head: H2Response) -> str:
    if head.status is None:
        return "its HEADERS block was not parsed (lost with the connection error)"
    return f"content-length {head.header(b'content-length')!r}"


@scenario(
    "wire.h2.head_no_body",
    "a HEAD response over HTTP/2 carries no content even when the app sends a body; the connection carries on",
    level=MUST,
    spec="RFC 9110 §9.3.2; RFC 9113 §8.1",
    covers=["http.resp.head"],
    impact="interop",
    requires=H2,
)
def test_head_no_body(h2: H2Transport) -> None:
    """MUST (RFC 9110 §9.3.2): "The server SHOULD send the same header fields in response to a
    HEAD request as it would have sent if the request method had been GET. However, a server
    MUST NOT send content in the response to HEAD". Frameworks answer HEAD as they answer GET,
    so the app sends a start with a ``content-length`` and the body: ``h2-bytes`` (content-length
    4096, the body in a ``more_body`` event and an empty final one) and the echo app (one body
    event). Over HTTP/2 (RFC 9113 §8.1) the response must end with HEADERS carrying END_STREAM
    or an empty DATA frame with END_STREAM, with zero content bytes (a client treats DATA
    content on a HEAD response as malformed, RFC 9113 §8.1.1: h2 fails the connection); a
    reset, a protocol error or no end by the request deadline is a fail. A GET on the same
    connection after each HEAD must then be answered in full."""
    _transport(h2)
    token = _token()
    variants = {
        f"h2-bytes (content-length {HEAD_BYTES}, body in two events)": (
            f"/app/h2-bytes/{token}/head?n={HEAD_BYTES}",
            f"/app/h2-bytes/{token}/get?n={HEAD_BYTES}",
            pattern(HEAD_BYTES),
        ),
        "echo (content-length, one body event)": (f"/echo/h2/{token}/head", f"/echo/h2/{token}/get", None),
    }
    seen: dict[str, tuple[H2Response, int, H2Response | None, bytes | None]] = {}
    for name, (head_path, get_path, expected) in variants.items():
        head, data_frames, after = _head_exchange(h2, head_path, get_path)
        ending = "HEADERS with END_STREAM" if data_frames == 0 else f"{data_frames} DATA frame(s), the last ending it"
        note(
            f"{name}: {head.describe()}; {_head_fields(head)}; "
            f"{ending if head.complete else f'{data_frames} DATA frame(s) received'}; "
            f"GET after it: {'not sent (the connection is gone)' if after is None else after.describe()}"
        )
        seen[name] = (head, data_frames, after, expected)
    for name, (head, data_frames, after, expected) in seen.items():
        check(
            head.complete and head.status == 200 and head.body == b"",
            f"the HEAD response over HTTP/2 did not end cleanly without content ({name})",
            expected="status 200, HEADERS (or an empty DATA) with END_STREAM, 0 content bytes",
            observed=(f"{head.describe()}; {data_frames} DATA frame(s); {_head_fields(head)}; body {head.body[:80]!r}"),
        )
        if after is None:
            fail(
                f"the connection was gone after the HEAD response ({name})",
                expected="a GET on the same connection answered",
                observed=head.describe(),
            )
        _answered(after, f"the GET after the HEAD on the same connection ({name})")
        if expected is not None:
            check(
                after.body == expected,
                f"the GET after the HEAD got another body ({name})",
                expected=f"the app's {len(expected)} bytes",
                observed=f"{len(after.body)} bytes: {after.body[:60]!r}",
            )
        else:
            _scope(after, f"the GET after the HEAD ({name})")
    endings = {
        "HEADERS with END_STREAM" if frames == 0 else "empty DATA with END_STREAM" for _, frames, _, _ in seen.values()
    }
    record(f"no content ({', '.join(sorted(endings))}); the next stream on the connection was answered")


def _trailers_case(h2: H2Transport, mode: str, body: bytes) -> None:
    """Ask ``h2-trailers`` (``mode``) with ``te: trailers``; judge the trailing HEADERS block."""
    _transport(h2)
    with h2.client() as c:
        resp = c.response(c.request("GET", f"/app/h2-trailers/{_token()}/{mode}", [(b"te", b"trailers")]))
    if resp.complete and resp.body.startswith(b'{"advertised": false'):
        unsupported("the HTTP/2 scope does not advertise http.response.trailers")
    _answered(resp, "the trailers response")
    expect(resp.body, body, "the body before the trailers")
    check(
        resp.trailers is not None,
        "no trailing HEADERS frame ended the stream",
        expected="a HEADERS block with END_STREAM after the body: x-checksum: c0ffee",
        observed=f"{resp.describe()}; head: {_describe_head(resp)}",
    )
    assert resp.trailers is not None
    expect(list(resp.trailers), [(b"x-checksum", b"c0ffee")], "the trailer fields (no pseudo-headers)")


@scenario(
    "ext.trailers.h2_emission",
    "over HTTP/2 the app's trailers go out in a trailing HEADERS frame with END_STREAM",
    level=MUST,
    spec="ext › HTTP Trailers; RFC 9113 §8.1",
    requires=H2,
)
def test_trailers_h2_emission(h2: H2Transport) -> None:
    """Implied by the trailers extension and RFC 9113 §8.1: with ``te: trailers`` sent and the
    extension advertised in the HTTP/2 scope, the app's ``http.response.trailers`` fields
    arrive in a HEADERS block after the body (``data``); that block ends the stream and has no
    pseudo-headers (h2's framing check: trailers without END_STREAM are a protocol error).
    Unsupported where the HTTP/2 scope does not advertise ``http.response.trailers``."""
    _trailers_case(h2, "data", b"data")


@scenario(
    "wire.h2.trailers",
    "trailers after an empty body: HEADERS, then the trailing HEADERS with END_STREAM",
    level=MUST,
    spec="ext › HTTP Trailers; RFC 9113 §8.1",
    requires=H2,
)
def test_trailers_empty_body(h2: H2Transport) -> None:
    """Implied (the extension maps to a trailing HEADERS frame; RFC 9113 §8.1): the frame
    mapping where it is easiest to get wrong, a response whose body is empty. The app sends
    start (``trailers: True``), an empty final body, then its trailers: the stream must not end
    with the empty body (no END_STREAM before the trailers), and the trailing HEADERS block
    must carry the fields and END_STREAM. Unsupported where the HTTP/2 scope does not
    advertise ``http.response.trailers``."""
    _trailers_case(h2, "empty", b"")


# -- streams, resets, flow control -----------------------------------------------------------------


@scenario(
    "wire.h2.rst_stream",
    "RST_STREAM from the client gives that stream's app http.disconnect; other streams carry on",
    level=MUST,
    spec="www › Disconnect",
    impact="hang",
    requires=H2,
)
def test_rst_stream(h2: H2Transport) -> None:
    """Implied by the disconnect event: a stream the client resets is that request's
    connection going away. Stream A sends its whole (small) body; its app reads it and waits
    in ``receive()`` (a long poll). Once the app has the body (journal), the client resets A
    (CANCEL): the app must get ``http.disconnect`` (journal, event deadline). Stream B, opened
    before the reset, and stream C, opened after it, must be answered."""
    _transport(h2)
    token = _token()
    wait = h2.timeouts.event * 2
    with h2.client() as c:
        a = c.request("POST", f"/app/req-log/{token}?wait={wait:.1f}", body=b"x" * 1000)
        polling = h2.journal.wait_for(f"req-{token}", lambda r: r.get("kind") == "body_done", timeout=h2.timeouts.event)
        if polling is None:
            fail(
                "the app of stream A never got its request body",
                expected="http.request with more_body False",
                observed=h2.journal.records(f"req-{token}")[-3:],
            )
        b = c.request("GET", f"/echo/h2/{token}/before")
        c.reset_stream(a)
        after = c.request("GET", f"/echo/h2/{token}/after")
        others = {"opened before the reset": c.response(b), "opened after the reset": c.response(after)}
    end = h2.journal.wait_for(f"req-{token}", lambda r: r.get("kind") == "end", timeout=wait + h2.timeouts.event)
    events = [e.get("type") for e in (end or {}).get("events", []) if isinstance(e, dict)]
    check(
        end is not None and end.get("reason") == "disconnect",
        "the reset stream's app did not get http.disconnect",
        expected="http.request, then http.disconnect",
        observed=f"{events}, then {'nothing' if end is None else end.get('reason')}",
    )
    for name, resp in others.items():
        _answered(resp, f"the stream {name}")
    record("http.disconnect; the other streams were answered")


@scenario(
    "wire.h2.request_streaming",
    "over HTTP/2 the app gets the first body bytes before the rest of the body is sent",
    level=MAY,
    spec="www › Request",
    impact="hang",
    requires=H2,
)
def test_request_streaming(h2: H2Transport) -> None:
    """MAY: the body message "serves as a way to stream large incoming HTTP bodies in chunks".
    The client sends 128 KiB in DATA frames and waits (event deadline) for the app's
    "got-first-chunk" before sending the other 128 KiB; the app's digest must match either
    way. A server that buffers the whole body first is ``unsupported``."""
    _transport(h2)
    body = pattern(256 * 1024)
    half = len(body) // 2
    with h2.client() as c:
        sid = c.request(
            "POST", f"/app/req-stream/{_token()}", [(b"content-type", b"application/octet-stream")], end_stream=False
        )
        c.send_data(sid, body[:half])
        streamed = c.read_until(lambda: b"\n" in c.progress(sid).body, timeout=h2.timeouts.event)
        c.send_data(sid, body[half:], end_stream=True)
        resp = c.response(sid)
    _answered(resp, "the streamed upload")
    line, _, rest = resp.body.partition(b"\n") if resp.body.startswith(b"got-first-chunk") else (b"", b"", resp.body)
    try:
        summary = json.loads(rest)
    except ValueError:
        summary = None
    if not isinstance(summary, dict):
        fail("the app's summary is not a JSON object", expected="JSON", observed=rest[:200])
    expect(
        (summary.get("length"), summary.get("sha256")),
        (len(body), hashlib.sha256(body).hexdigest()),
        "length and sha256 of the body the app read",
    )
    if not streamed:
        unsupported("no body bytes reached the app before the whole body was sent (the server buffers uploads)")
    note(line.decode("latin-1", "replace"))
    record("streamed")


@scenario(
    "wire.h2.response_streaming",
    "over HTTP/2 each response body chunk reaches the client when it is sent",
    level=MUST,
    spec="www › Response Body",
    impact="hang",
    requires=H2,
)
def test_response_streaming(h2: H2Transport) -> None:
    """MUST: "Protocol servers must flush any data passed to them into the send buffer before
    returning from a send call". The app sends ``first;`` with ``more_body`` and waits on a
    gate; the client must read ``first;`` (event deadline) before it opens the gate."""
    _transport(h2)
    token = _token()
    with h2.client() as c:
        sid = c.request("GET", f"/app/h2-drip/{token}?limit={h2.timeouts.event * 2:.1f}")
        arrived = c.read_until(lambda: b"first;" in c.progress(sid).body, timeout=h2.timeouts.event)
        seen = c.progress(sid)
        h2.journal.open_gate(f"h2-{token}")
        resp = c.response(sid)
    check(
        arrived,
        "the first body chunk did not reach the client while the app held the rest",
        expected="first; before the gate opens",
        observed=f"{seen.describe()}: {seen.body[:60]!r}",
    )
    _answered(resp, "the streamed response")
    expect(resp.body, b"first;second", "the whole body")


@scenario(
    "wire.h2.flow_control",
    "8 MiB up and 8 MiB down on one connection at once, within HTTP/2 flow control, intact",
    level=MUST,
    spec="RFC 9113 §5.2, §6.9; www › Request, Response Body",
    impact="data-loss",
    requires=H2,
)
def test_flow_control(h2: H2Transport) -> None:
    """MUST (RFC 9113 §6.9, and ASGI's body concatenation): with the default 65,535-byte
    windows both sides must wait for WINDOW_UPDATE frames; nothing may be lost, duplicated
    or reordered. One stream uploads 8 MiB to ``req-digest``, another downloads 8 MiB from
    ``h2-bytes``, concurrently; sha256 compared both ways. Deadline: four request deadlines."""
    _transport(h2)
    token = _token()
    up = pattern(BIG)[::-1]
    deadline = h2.timeouts.request * 4
    with h2.client(timeout=deadline) as c:
        down = c.request("GET", f"/app/h2-bytes/{token}?n={BIG}")
        upload = c.request(
            "POST", f"/app/req-digest/{token}", [(b"content-type", b"application/octet-stream")], end_stream=False
        )
        sent = c.send_data(upload, up, end_stream=True)
        got_down = c.response(down)
        got_up = c.response(upload)
        window = c.remote_settings.get(SettingCodes.INITIAL_WINDOW_SIZE)
    note(f"server's initial window: {window if window is not None else 65535}; upload sent {sent} bytes")
    _answered(got_down, "the 8 MiB download")
    expect(len(got_down.body), BIG, "downloaded length")
    check(
        hashlib.sha256(got_down.body).digest() == hashlib.sha256(pattern(BIG)).digest(),
        "the downloaded body is not the bytes the app sent",
        expected="sha256 of the app's 8 MiB",
        observed=hashlib.sha256(got_down.body).hexdigest(),
    )
    summary = _object(got_up, "the 8 MiB upload")
    expect(
        (summary.get("length"), summary.get("sha256")),
        (BIG, hashlib.sha256(up).hexdigest()),
        "length and sha256 of the upload as the app read it",
    )


# -- server push ------------------------------------------------------------------------------------


_ABSENT = object()


def _extension(scope: dict[str, Any], name: str) -> Any:
    """The value of ``scope["extensions"][name]``, or _ABSENT (also when extensions is not a dict)."""
    extensions = scope.get("extensions")
    return extensions.get(name, _ABSENT) if isinstance(extensions, dict) else _ABSENT


def _push_exchange(h2: H2Transport, mode: str, *, authority: str | None = None) -> tuple[H2Response, str]:
    token = _token()
    with h2.client() as c:
        resp = c.response(c.request("GET", f"/app/h2-push/{token}/{mode}", authority=authority))
    return resp, token


def _push_report(resp: H2Response) -> dict[str, Any]:
    """The push app's JSON; unsupported when the HTTP/2 scope does not advertise push."""
    data = _object(resp, "the pushing response")
    if not data.get("advertised"):
        unsupported("the HTTP/2 scope does not advertise http.response.push")
    return data


def _pushed_records(h2: H2Transport, token: str, count: int) -> list[dict[str, Any]]:
    """The journal records of the app calls for pushed paths, once ``count`` are in (event deadline)."""
    stream = f"h2push-{token}"

    def pushed() -> list[dict[str, Any]]:
        return [r for r in h2.journal.records(stream) if r.get("event") == "pushed"]

    h2.journal.wait_for(stream, lambda r: len(pushed()) >= count, timeout=h2.timeouts.event)
    return pushed()


@scenario(
    "ext.push.advertised",
    "which HTTP versions advertise http.response.push (and its value is a dict)",
    level=INFO,
    spec="ext › HTTP/2 Server Push",
)
def test_push_advertised(server: Server, request: pytest.FixtureRequest, target: Target) -> None:
    """SHOULD (if supported), so INFO: records, per ``http_version``, whether the scope lists
    ``http.response.push``. An extension's value is a dict (``{}``) wherever it is listed."""
    found: dict[str, Any] = {}
    values: dict[str, Any] = {}
    values["1.1"] = _extension(server.echo(f"/echo/h1/{_token()}").scope, "http.response.push")
    transport = transport_for(request, target) if "http2" in target.all_capabilities else None
    if transport is None:
        found["2"] = "no HTTP/2"
    else:
        with transport.client() as c:
            h2_scope = _scope(c.response(c.request("GET", f"/echo/h2/{_token()}")))
        values["2"] = _extension(h2_scope, "http.response.push")
    for version, value in values.items():
        found[version] = value is not _ABSENT
        check(
            value is _ABSENT or isinstance(value, dict),
            f"http.response.push is listed over HTTP/{version} with a value that is not a dict",
            expected="{}",
            observed=repr(value),
        )
    record({f"HTTP/{k}": found[k] for k in ("1.1", "2")})


@scenario(
    "wire.h2.push_disabled",
    "a client with SETTINGS_ENABLE_PUSH=0 gets no PUSH_PROMISE, and the app's push does not break the response",
    level=MUST,
    spec="RFC 9113 §6.5.2, §8.4",
    covers=["wire.h2.push_disabled", "ext.push.client_disabled"],
    requires=H2,
)
def test_push_disabled(h2: H2Transport) -> None:
    """MUST NOT (RFC 9113 §8.4): "A server MUST NOT send a PUSH_PROMISE" to a client that set
    SETTINGS_ENABLE_PUSH to 0; the app's ``http.response.push`` must not break its response
    (the server ignores it; send() raising counts as breaking it). Unsupported where the HTTP/2
    scope does not advertise push (the app cannot ask for one)."""
    _transport(h2)
    with h2.client(enable_push=False) as c:
        resp = c.response(c.request("GET", f"/app/h2-push/{_token()}/one"))
        promises = c.frames_received["PushPromiseFrame"]
    check(promises == 0, "the server sent PUSH_PROMISE to a client that disabled push", expected=0, observed=promises)
    report = _push_report(resp)
    expect(report.get("results"), {"p1": "ok"}, "what the app's push send() did")
    record("no PUSH_PROMISE; the push was ignored")


@scenario(
    "ext.push.promise_and_app_call",
    "a push sends PUSH_PROMISE and calls the app for the pushed path as a GET",
    level=SHOULD,
    spec="ext › HTTP/2 Server Push",
    requires=H2,
)
def test_push_promise(h2: H2Transport) -> None:
    """SHOULD: "The ASGI server should then attempt to send a server push (or push promise)
    to the client. If the client supports server push, the server should create a new
    connection to a new instance of the application and treat it as if the client had made a
    request." The app pushes ``/app/h2-pushed/<token>/p1`` between start and body: the client
    must get a PUSH_PROMISE (GET, that path) and its response, and the app a GET scope for it."""
    _transport(h2)
    resp, token = _push_exchange(h2, "one")
    report = _push_report(resp)
    expect(report.get("results"), {"p1": "ok"}, "what the app's push send() did")
    path = f"/app/h2-pushed/{token}/p1"
    promised = [p for p in resp.pushes if p.header(b":path") == path.encode()]
    check(
        bool(promised),
        "no PUSH_PROMISE for the pushed path",
        expected=f"PUSH_PROMISE :path {path}",
        observed=[dict(p.headers).get(b":path") for p in resp.pushes],
    )
    push = promised[0]
    expect(push.header(b":method"), b"GET", "the promised request's :method")
    pushed = push.response
    check(
        pushed is not None and pushed.complete and pushed.body == b"pushed p1",
        "the pushed stream did not carry the app's answer",
        expected="pushed p1",
        observed=pushed.describe() if pushed is not None else "no response",
    )
    calls = _pushed_records(h2, token, 1)
    check(bool(calls), "the app was not called for the pushed path", expected="a GET scope", observed="no call")
    expect((calls[0].get("method"), calls[0].get("path")), ("GET", path), "the pushed scope's method and path")


@scenario(
    "ext.push.authority",
    "the pushed request has the :authority of the request that triggered it",
    level=SHOULD,
    spec="ext › HTTP/2 Server Push",
    requires=H2,
)
def test_push_authority(h2: H2Transport) -> None:
    """SHOULD: a push is a request to the same origin. The triggering request uses
    ``:authority push.example``; the PUSH_PROMISE's :authority and the pushed scope's host
    entry must both be that value."""
    _transport(h2)
    resp, token = _push_exchange(h2, "one", authority="push.example")
    _push_report(resp)
    check(bool(resp.pushes), "no PUSH_PROMISE", expected="one push", observed=resp.describe())
    expect(resp.pushes[0].header(b":authority"), b"push.example", "the promised request's :authority")
    calls = _pushed_records(h2, token, 1)
    check(bool(calls), "the app was not called for the pushed path", expected="a GET scope", observed="no call")
    hosts = _values((tuple(h) for h in calls[0].get("headers") or [] if len(h) == 2), b"host")
    expect(hosts, [b"push.example"], "host entries of the pushed scope")


@scenario(
    "ext.push.window",
    "what a server does with pushes before http.response.start and after the final body",
    level=INFO,
    spec="ext › HTTP/2 Server Push",
    requires=H2,
)
def test_push_window(h2: H2Transport) -> None:
    """The rule binds the app ("push messages may only be sent after http.response.start and
    before the final body"), so INFO: records what the server does with a push before start
    (promised, ignored, or send() raised) and what send() does with one after the final body
    (accepted or raised; whether a PUSH_PROMISE still gets out then depends on how far the
    server's writer got, so it is only noted). Whatever it does, the response itself must
    arrive intact and the in-window push send() must succeed."""
    _transport(h2)
    resp, token = _push_exchange(h2, "window")
    report = _push_report(resp)
    results = report.get("results") or {}
    after = h2.journal.wait_for(f"h2push-{token}", lambda r: r.get("event") == "after", timeout=h2.timeouts.event)
    paths = [p.header(b":path") or b"" for p in resp.pushes]
    promised = {name: any(p.endswith(name.encode()) for p in paths) for name in ("before", "inside", "after")}
    before = results.get("before", "no result")
    late = ((after or {}).get("results") or {}).get("after", "no result")
    expect(results.get("p1"), "ok", "the in-window push send()")
    if promised["after"]:
        note("a PUSH_PROMISE for the push after the final body got out before the stream ended")
    record(
        {
            "before start": "promised" if promised["before"] else ("ignored" if before == "ok" else before),
            "after the body": "send() accepted it" if late == "ok" else late,
        }
    )


@scenario(
    "ext.push.message_types",
    "a push with a bytes path, a pseudo-header or str header names makes send() raise",
    level=SHOULD,
    spec="ext › HTTP/2 Server Push; core › Error Handling",
    requires=H2,
)
def test_push_message_types(h2: H2Transport) -> None:
    """SHOULD (implied): ``path`` is a str, ``headers`` are byte pairs with no pseudo-headers;
    an invalid message should make ``send()`` raise (core: servers "must raise" for messages
    they cannot accept, rather than silently doing something else). A valid push follows and
    must still work."""
    _transport(h2)
    resp, _ = _push_exchange(h2, "types")
    results = _push_report(resp).get("results") or {}
    expect(results.get("valid"), "ok", "the valid push after the invalid ones")
    accepted = {k: v for k, v in results.items() if k != "valid" and not str(v).startswith("raised")}
    check(
        not accepted,
        "send() accepted an invalid push message",
        expected="bytes_path, pseudo_header, str_header all raise",
        observed=results,
    )
    record(results)


# -- WebSocket over HTTP/2 ------------------------------------------------------------------------


@scenario(
    "wire.h2.websocket_8441",
    "WebSocket over HTTP/2 (RFC 8441 extended CONNECT): supported? and its scope",
    level=INFO,
    spec="RFC 8441; www › Websocket Connection Scope",
    covers=["wire.h2.websocket_8441", "ws.scope.headers.pseudo"],
    requires=H2,
)
def test_websocket_8441(h2: H2Transport) -> None:
    """MAY, so INFO: records whether the server sends SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 and
    accepts an extended CONNECT (``:protocol websocket``). Where it does, the WebSocket scope
    must say ``http_version`` "2", have no pseudo-headers and carry :authority as its host
    entry, first (ws.scope.headers.pseudo)."""
    _transport(h2)
    token = _token()
    with h2.client() as c:
        c.read_until(lambda: c.settings_received or not c.alive, timeout=h2.timeouts.event)
        advertised = c.remote_settings.get(SettingCodes.ENABLE_CONNECT_PROTOCOL) == 1
        if not advertised:
            record("not supported (no SETTINGS_ENABLE_CONNECT_PROTOCOL)")
            return
        sid = c.request(
            "CONNECT",
            f"/echo/ws8441/{token}",
            [(b"sec-websocket-version", b"13"), (b"x-probe", b"1")],
            authority="ws.example",
            extra_pseudo=[(b":protocol", b"websocket")],
            end_stream=False,
        )
        frames: list[Any] = []

        def first_frame() -> bool:
            seen = c.progress(sid)
            if seen.outcome != "pending" or (seen.status is not None and seen.status != 200):
                return True
            return _frames(seen.body, frames)

        c.read_until(first_frame, timeout=h2.timeouts.request)
        seen = c.progress(sid)
        if seen.status != 200:
            record(f"SETTINGS_ENABLE_CONNECT_PROTOCOL = 1, but the extended CONNECT got {seen.describe()}")
            return
        if frames:
            c.send_data(sid, encode_frame(OP_CLOSE, close_payload(1000)))
    data = [f for f in frames if f.opcode in (0x1, 0x2)]
    if not data:
        fail(
            "the accepted WebSocket sent no message",
            expected="the echo app's scope message",
            observed=f"{seen.describe()}; frames: {[f.describe() for f in frames]}",
        )
    try:
        scope = loads(data[0].payload)["scope"]
    except (ValueError, KeyError, TypeError):
        scope = None
    if not isinstance(scope, dict):
        fail("the first WebSocket message is not the echo app's scope", expected="JSON", observed=data[0].describe())
    expect(scope.get("type"), "websocket", "scope type")
    expect(scope.get("http_version"), "2", "http_version of the WebSocket-over-HTTP/2 scope")
    pairs = _headers(scope)
    pseudo = [k for k, _ in pairs if isinstance(k, bytes) and k[:1] == b":"]
    check(not pseudo, "pseudo-headers are in the WebSocket scope", expected="none", observed=pseudo)
    check(
        bool(pairs) and pairs[0] == (b"host", b"ws.example") and _values(pairs, b"host") == [b"ws.example"],
        "the WebSocket scope's host entry is not the :authority value, first",
        expected="host: ws.example, first",
        observed=pairs[:4],
    )
    record("supported: extended CONNECT accepted, scope http_version 2")


def _frames(body: bytes, out: list[Any]) -> bool:
    """Decode the WebSocket frames in ``body`` (all DATA so far) into ``out``; True once a
    data or close frame arrived (or the bytes are not frames: nothing more to wait for)."""
    try:
        found = FrameParser().feed(body)
    except FrameError:
        return True
    out[:] = found
    return any(f.opcode in (0x1, 0x2, OP_CLOSE) for f in found)
