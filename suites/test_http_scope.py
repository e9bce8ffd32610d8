"""HTTP connection scope (spec-catalogue §4; www › HTTP Connection Scope).

Every request goes out through the raw client, byte for byte, and the echo app
answers with the scope it was given. Plain HTTP/1.x over TCP (and a Unix socket
where a row is about one); the HTTP/2, TLS and IPv6 rows (pseudo-headers, streams,
``https``, v6 peers) belong to the suites for those transports.

Levels follow the catalogue. Where a row is "implied", the docstring says whether it
follows from the key's type or format (MUST) or is an inference about behaviour
(SHOULD). "unspecified" rows record what the target did (``info``), and still fail
when what it did is illegal by the parts the spec does fix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given

from asgi_conformance import (
    INFO,
    MUST,
    SHOULD,
    Echo,
    Launcher,
    Server,
    check,
    expect,
    fail,
    note,
    record,
    same,
    scenario,
    unsupported,
)
from asgi_conformance import client as wire
from asgi_conformance import strategies as gen
from asgi_conformance.dedicated import dedicated_run
from asgi_conformance.process import TargetDied, TargetUnresponsive
from asgi_conformance.server import parse_echo

SPEC = "www › HTTP Connection Scope"
ABSENT: Any = object()
ENUM_HTTP_VERSIONS = ("1.0", "1.1", "2")
ROOT_PATH = "/api"

Fields = Sequence[tuple[str | bytes, str | bytes]]


# -- helpers --------------------------------------------------------------------------------


def _get(seen: Echo, key: str) -> Any:
    return seen.scope.get(key, ABSENT)


def _optional(seen: Echo, key: str, why: str) -> Any:
    """The value of an optional key; ``unsupported`` when it is absent or None."""
    value = _get(seen, key)
    if value is ABSENT or value is None:
        unsupported(f"scope[{key!r}] is {'absent' if value is ABSENT else 'None'} ({why})")
    return value


def _headers(seen: Echo) -> list[tuple[Any, Any]]:
    """The header pairs, after checking only that they are pairs (``headers.type`` checks the rest)."""
    headers = _get(seen, "headers")
    check(
        isinstance(headers, list | tuple) and all(isinstance(h, list | tuple) and len(h) == 2 for h in headers),
        "scope['headers'] is not a list of [name, value] pairs",
        expected="[[name, value], ...]",
        observed=headers,
    )
    return [(h[0], h[1]) for h in headers]


def _values(seen: Echo, name: bytes) -> list[Any]:
    """Values of every header whose name equals ``name`` ignoring case, in scope order."""
    return [v for k, v in _headers(seen) if isinstance(k, bytes) and k.lower() == name]


def _spec_version(seen: Echo) -> tuple[int, ...]:
    asgi = _get(seen, "asgi")
    value = asgi.get("spec_version", "2.0") if isinstance(asgi, dict) else "2.0"
    found = re.fullmatch(r"(\d+)\.(\d+)", value) if isinstance(value, str) else None
    return (int(found[1]), int(found[2])) if found else (2, 0)


def _echo_alive(server: Server, target: str, headers: Fields = ()) -> Echo:
    """An echo for a property example; a dead or hung target is an error, not a falsifying example
    (checked once: shrinking replays then raise at once instead of each waiting for a deadline)."""
    if server.process.unresponsive is not None:
        raise TargetUnresponsive(server.process.unresponsive)
    outcome = server.request("GET", target, headers)
    if not isinstance(outcome, wire.Response):
        if server.process.exit_status() is not None:
            raise TargetDied(f"the server exited during the property run\n{server.process.log_tail()}")
        server.process.require_responsive(server.timeouts.request)
    return parse_echo(outcome)


def _served_or_refused(outcome: wire.Outcome) -> Echo | int:
    """The echo if the request reached the app; the status if the server refused it with a 4xx."""
    if isinstance(outcome, wire.Response) and 400 <= outcome.status < 500:
        return outcome.status
    if not isinstance(outcome, wire.Response) or outcome.status != 200:
        fail(
            "the request was neither served nor refused with a 4xx status",
            expected="the app's echo, or a 4xx response from the server",
            observed=wire.describe(outcome),
        )
    return parse_echo(outcome)


# -- type, asgi -----------------------------------------------------------------------------


@scenario("http.scope.type", "plain HTTP requests get scope type 'http'", level=MUST, spec="www › HTTP")
def test_type(server: Server) -> None:
    expect(server.echo("/echo").scope.get("type"), "http", "scope['type']")


@scenario("http.scope.asgi.version", "asgi['version'] is present and a str", level=MUST, spec=SPEC)
def test_asgi_version(server: Server) -> None:
    asgi = _get(server.echo("/echo"), "asgi")
    check(isinstance(asgi, dict), "scope['asgi'] is not a dict", expected="a dict with 'version'", observed=asgi)
    version = asgi.get("version", ABSENT)
    check(
        isinstance(version, str),
        "asgi['version'] is missing or not a str",
        expected="a str such as '3.0'",
        observed="absent" if version is ABSENT else version,
    )


@scenario(
    "http.scope.asgi.spec_version",
    "asgi['spec_version'] (optional; missing means '2.0') is a str naming the HTTP spec version",
    level=INFO,
    spec="www › HTTP Connection Scope, Spec Versions",
)
def test_asgi_spec_version(server: Server) -> None:
    """MAY: the cell is the advertised version; a value that is not a "major.minor" str is a fail."""
    asgi = _get(server.echo("/echo"), "asgi")
    check(isinstance(asgi, dict), "scope['asgi'] is not a dict", expected="a dict", observed=asgi)
    value = asgi.get("spec_version", ABSENT)
    if value is ABSENT:
        record("absent (means 2.0)")
        return
    check(
        isinstance(value, str) and re.fullmatch(r"\d+\.\d+", value) is not None,
        "asgi['spec_version'] is not a version string",
        expected="a str such as '2.3'",
        observed=value,
    )
    record(value)


# -- http_version, method, scheme ---------------------------------------------------------------


def _http_versions(server: Server) -> dict[str, Any]:
    return {v: server.echo("/echo", version=f"HTTP/{v}").scope.get("http_version", ABSENT) for v in ("1.0", "1.1")}


@scenario(
    "http.scope.http_version.enum",
    "http_version is exactly one of '1.0', '1.1' or '2'",
    level=MUST,
    spec=SPEC,
)
def test_http_version_enum(server: Server) -> None:
    seen = _http_versions(server)
    check(
        all(isinstance(v, str) and v in ENUM_HTTP_VERSIONS for v in seen.values()),
        "http_version is not one of the listed strings",
        expected={"HTTP/1.0": "1.0", "HTTP/1.1": "1.1"},
        observed={f"HTTP/{k}": v for k, v in seen.items()},
    )


@scenario(
    "http.scope.http_version.accurate",
    "http_version names the version the client used",
    level=SHOULD,
    spec="www › HTTP",
)
def test_http_version_accurate(server: Server) -> None:
    """SHOULD: the spec lists the values but never says the value must be the one used (inference).

    A value outside the list is ``http_version.enum``'s finding; here only naming a
    *different* listed version counts.
    """
    seen = _http_versions(server)
    wrong = {f"HTTP/{k}": v for k, v in seen.items() if isinstance(v, str) and v in ENUM_HTTP_VERSIONS and v != k}
    check(
        not wrong,
        "http_version names another version than the request line's",
        expected={"HTTP/1.0": "1.0", "HTTP/1.1": "1.1"},
        observed={f"HTTP/{k}": v for k, v in seen.items()},
    )


@scenario("http.scope.method.str", "method is a str", level=MUST, spec=SPEC)
def test_method_str(server: Server) -> None:
    method = _get(server.echo("/echo"), "method")
    check(isinstance(method, str), "method is not a str", expected="'GET' (str)", observed=method)


@scenario("http.scope.method.upper", "method is the upper-case method name", level=MUST, spec=SPEC)
def test_method_upper(server: Server) -> None:
    """MUST: the key is defined as the method name "uppercased" (format definition)."""
    for method in ("GET", "POST", "DELETE"):
        expect(_get(server.echo("/echo", method=method), "method"), method, f"method for a {method} request")


@scenario(
    "http.scope.method.extension",
    "extension methods (PURGE, FOO-BAR) reach the app unchanged",
    level=SHOULD,
    spec=SPEC,
)
def test_method_extension(server: Server) -> None:
    """SHOULD: the spec restricts no method, so any token should reach the app (inference)."""
    seen: dict[str, Any] = {}
    for method in ("PURGE", "FOO-BAR"):
        outcome = server.request(method, "/echo")
        if isinstance(outcome, wire.Response) and outcome.status == 200:
            seen[method] = _get(parse_echo(outcome), "method")
        else:
            seen[method] = f"not served: {wire.describe(outcome)}"
    expect(seen, {"PURGE": "PURGE", "FOO-BAR": "FOO-BAR"}, "the method each request reached the app with")


@scenario("http.scope.scheme", "scheme is 'http' on a plain TCP connection (never empty)", level=MUST, spec=SPEC)
def test_scheme(server: Server) -> None:
    """MUST: non-empty is stated; "http" on plain TCP is the only value that names the scheme used."""
    scheme = _optional(server.echo("/echo"), "scheme", "the spec's default 'http' applies")
    expect(scheme, "http", "scheme on a plain TCP connection")


# -- path, raw_path ------------------------------------------------------------------------------


@scenario(
    "http.scope.path.decoded",
    "path has %-escapes decoded, then UTF-8 decoded, and excludes the query",
    level=MUST,
    spec="www › HTTP Connection Scope; WSGI encoding differences",
)
def test_path_decoded(server: Server) -> None:
    expect(_get(server.echo("/echo/caf%C3%A9/a%20b?x=1"), "path"), "/echo/café/a b", "path")


@scenario(
    "http.scope.path.raw_utf8",
    "raw UTF-8 bytes in the request target: refused with a 4xx, or decoded into the path",
    level=INFO,
    spec="www › WSGI encoding differences",
)
def test_path_raw_utf8(server: Server) -> None:
    """Raw non-ASCII is not valid in a request target (RFC 3986), so a 4xx is fine; if served,
    the bytes must be decoded as UTF-8 like escapes are."""
    seen = _served_or_refused(server.request("GET", b"/echo/caf\xc3\xa9"))
    if isinstance(seen, int):
        record(f"refused with {seen}")
        return
    expect(_get(seen, "path"), "/echo/café", "path for raw UTF-8 bytes in the target")
    record("served, decoded as UTF-8")


@scenario(
    "http.scope.path.encoded_slash",
    "%2F becomes '/' in path; only raw_path keeps it",
    level=MUST,
    spec=SPEC,
)
def test_path_encoded_slash(server: Server) -> None:
    """MUST: follows from the format definition (every %-escape is decoded; raw_path is the original)."""
    seen = server.echo("/echo/a%2Fb")
    expect(_get(seen, "path"), "/echo/a/b", "path")
    raw = _get(seen, "raw_path")
    if raw is not ABSENT and raw is not None:
        expect(raw, b"/echo/a%2Fb", "raw_path")


@scenario(
    "http.scope.path.no_normalisation",
    "path keeps dot-segments, duplicate slashes and case as sent",
    level=SHOULD,
    spec=SPEC,
)
def test_path_no_normalisation(server: Server) -> None:
    """SHOULD: the spec never says a server may rewrite the path (inference about behaviour)."""
    target = "/echo/a/../b//C/./d"
    seen = server.echo(target)
    expect(_get(seen, "path"), target, "path")
    raw = _get(seen, "raw_path")
    if raw is not ABSENT and raw is not None:
        expect(raw, target.encode(), "raw_path")


@scenario(
    "http.scope.path.query_excluded",
    "path never includes the query; an escaped %3F decodes to '?' inside path",
    level=MUST,
    spec=SPEC,
)
def test_path_query_excluded(server: Server) -> None:
    expect(_get(server.echo("/echo/p?x=1"), "path"), "/echo/p", "path for /echo/p?x=1")
    seen = server.echo("/echo/p%3Fx")
    expect(
        (_get(seen, "path"), _get(seen, "query_string")),
        ("/echo/p?x", b""),
        "(path, query_string) for /echo/p%3Fx",
    )


def _decoding_label(path: str) -> str:
    if "\ufffd" in path:
        return "U+FFFD replacement"
    if any("\udc80" <= c <= "\udcff" for c in path):
        return "surrogateescape"
    if any("\x80" <= c <= "\xff" for c in path):
        return "Latin-1"
    return "other"


@scenario(
    "http.scope.path.invalid_utf8",
    "%-escapes that are not valid UTF-8 (%FF, overlong %C0%AF): recorded",
    level=INFO,
    spec=SPEC,
)
def test_path_invalid_utf8(server: Server) -> None:
    """Unspecified. Legal: a 4xx, or a str path whose overlong escape did not turn into '/'
    (RFC 3629 forbids decoding overlong forms: that is how path traversal slips past filters)."""
    seen = _served_or_refused(server.request("GET", "/echo/%FF/%C0%AF"))
    if isinstance(seen, int):
        record(f"refused with {seen}")
        return
    path = _get(seen, "path")
    check(
        isinstance(path, str) and path.startswith("/echo/") and path.count("/") == 3,
        "path is not a str with the request's three segments",
        expected="a str like '/echo/\\ufffd/\\ufffd\\ufffd'",
        observed=path,
    )
    record(f"served: {_decoding_label(path)} {path!r}")


@scenario(
    "http.scope.raw_path.value",
    "raw_path is the path as received: undecoded, without the query",
    level=MUST,
    spec=SPEC,
)
def test_raw_path(server: Server) -> None:
    seen = server.echo("/echo/a%2Fb%20c?q=1")
    raw = _optional(seen, "raw_path", "the spec lets a server that cannot provide it leave it out")
    expect(raw, b"/echo/a%2Fb%20c", "raw_path")


@scenario(
    "http.scope.path.roundtrip",
    "for generated paths (pchar and UTF-8 %-escapes), path is the decoded target and raw_path the exact bytes",
    level=MUST,
    spec=SPEC,
    covers=(
        "http.scope.path.decoded",
        "http.scope.raw_path.value",
        "http.scope.path.encoded_slash",
        "http.scope.path.query_excluded",
    ),
)
@gen.LIVE
@given(target=gen.request_paths("/echo/prop"))
def test_path_roundtrip(server: Server, target: str) -> None:
    seen = _echo_alive(server, target)
    expect(_get(seen, "path"), gen.decoded_path(target), f"path for {target!r}")
    raw = _get(seen, "raw_path")
    if raw is not ABSENT and raw is not None:
        expect(raw, target.encode("ascii"), f"raw_path for {target!r}")


# -- query_string --------------------------------------------------------------------------------


@scenario(
    "http.scope.query_string.raw",
    "query_string is the bytes after the first '?', still %-encoded ('+' intact)",
    level=MUST,
    spec="www › HTTP Connection Scope; WSGI encoding differences",
)
def test_query_string_raw(server: Server) -> None:
    expect(_get(server.echo("/echo?a=%20b&c=d+e&f"), "query_string"), b"a=%20b&c=d+e&f", "query_string")


@scenario("http.scope.query_string.empty", "no '?' or a bare '?' gives query_string b''", level=MUST, spec=SPEC)
def test_query_string_empty(server: Server) -> None:
    """MUST: the key is not optional and its type is bytes (format definition)."""
    seen = {t: _get(server.echo(t), "query_string") for t in ("/echo", "/echo?")}
    expect(seen, {"/echo": b"", "/echo?": b""}, "query_string per target")


@scenario(
    "http.scope.query_string.second_qmark",
    "only the first '?' splits path from query; later ones stay in query_string",
    level=MUST,
    spec=SPEC,
)
def test_query_string_second_qmark(server: Server) -> None:
    """MUST: "the portion after the ?" plus RFC 3986's query grammar, which allows '?'."""
    seen = server.echo("/echo/q?a=1?b=2")
    expect((_get(seen, "path"), _get(seen, "query_string")), ("/echo/q", b"a=1?b=2"), "(path, query_string)")


@scenario(
    "http.scope.query_string.roundtrip",
    "for generated queries, query_string is exactly the bytes after the first '?'",
    level=MUST,
    spec=SPEC,
    covers=(
        "http.scope.query_string.raw",
        "http.scope.query_string.second_qmark",
        "http.scope.query_string.empty",
        "http.scope.path.query_excluded",
    ),
)
@gen.LIVE
@given(query=gen.query_strings())
def test_query_string_roundtrip(server: Server, query: str) -> None:
    seen = _echo_alive(server, "/echo/q?" + query)
    expect(
        (_get(seen, "path"), _get(seen, "query_string")),
        ("/echo/q", query.encode("ascii")),
        f"(path, query_string) for /echo/q?{query}",
    )


# -- root_path -----------------------------------------------------------------------------------


@scenario("http.scope.root_path.default", "root_path is '' when none is configured", level=MUST, spec=SPEC)
def test_root_path_default(server: Server) -> None:
    root = _optional(server.echo("/echo"), "root_path", "the spec's default '' applies")
    expect(root, "", "root_path")


@pytest.fixture(scope="session")
@dedicated_run
def root_path_server(session_launcher: Launcher) -> Server:
    """One dedicated process per target, started with root path /api; both root_path scenarios read it."""
    process = session_launcher.start("app", root_path=ROOT_PATH)
    return Server(session_launcher.target, process, session_launcher.timeouts)


@scenario(
    "http.scope.root_path.configured",
    "the server's configured root path appears as root_path",
    level=SHOULD,
    spec="www › HTTP Connection Scope; WSGI Compatibility",
    requires=("root_path",),
)
def test_root_path_configured(root_path_server: Server) -> None:
    """SHOULD: that the option feeds this key is an inference; its type (str) is a MUST."""
    root = _get(root_path_server.echo(ROOT_PATH + "/echo/x"), "root_path")
    if root is not ABSENT:
        check(isinstance(root, str), "root_path is not a str", expected=ROOT_PATH, observed=root, level=MUST)
    expect(
        "absent" if root is ABSENT else root, ROOT_PATH, f"root_path with the server's root path set to {ROOT_PATH!r}"
    )


@scenario(
    "http.scope.root_path.path_relation",
    "with root path /api, a request to /api/echo/x: does path include root_path? (recorded)",
    level=INFO,
    spec="www › WSGI Compatibility",
    requires=("root_path",),
)
def test_root_path_path_relation(root_path_server: Server) -> None:
    """Unspecified. Legal: path is a str that still ends in the request's own tail, and
    raw_path (if given) is the same path undecoded."""
    sent = ROOT_PATH + "/echo/x"
    seen = root_path_server.echo(sent)
    path, raw = _get(seen, "path"), _get(seen, "raw_path")
    check(
        isinstance(path, str) and path.endswith("/echo/x"),
        "path is not a str ending in the request's tail",
        expected="a str ending in '/echo/x'",
        observed=path,
    )
    if raw is not ABSENT and raw is not None:
        check(
            isinstance(raw, bytes) and unquote(raw.decode("latin-1")) == path,
            "raw_path is not the undecoded form of path",
            expected=path.encode(),
            observed=raw,
        )
    labels = {sent: "unchanged (includes root_path)", ROOT_PATH + sent: "root_path prepended", "/echo/x": "stripped"}
    record(f"{labels.get(path, 'other')}: GET {sent} -> path {path!r}")


# -- headers -------------------------------------------------------------------------------------


@scenario(
    "http.scope.headers.type",
    "headers is an iterable of [name, value] pairs of byte strings",
    level=MUST,
    spec=SPEC,
)
def test_headers_type(server: Server) -> None:
    """Lists and tuples are the iterables the echo can carry back; both are accepted."""
    seen = server.echo("/echo", [("X-One", "1"), ("Accept", "*/*")])
    bad = [h for h in _headers(seen) if not (isinstance(h[0], bytes) and isinstance(h[1], bytes))]
    check(not bad, "some header names or values are not bytes", expected="(bytes, bytes) pairs", observed=bad)


@scenario("http.scope.headers.lowercase", "header names are lower-cased", level=SHOULD, spec=SPEC)
def test_headers_lowercase(server: Server) -> None:
    seen = server.echo("/echo", [("X-MiXeD-Case", "v"), ("ACCEPT", "*/*")])
    names = [k for k, _ in _headers(seen)]
    check(
        all(isinstance(k, bytes) and k == k.lower() for k in names),
        "some header names are not lower-case",
        expected=[k.lower() if isinstance(k, bytes) else k for k in names],
        observed=names,
    )


@scenario(
    "http.scope.headers.case_best_effort",
    "the case a mixed-case header name is delivered in (recorded)",
    level=INFO,
    spec=SPEC,
)
def test_headers_case_best_effort(server: Server) -> None:
    """The spec asks for lower case and for case preserved "best-effort": both are legal.
    Legal means the header is there under a name equal ignoring case, with its value."""
    sent = b"X-MiXeD-Case"
    seen = server.echo("/echo", [(sent, b"v")])
    found = [(k, v) for k, v in _headers(seen) if isinstance(k, bytes) and k.lower() == sent.lower()]
    expect([v for _, v in found], [b"v"], "the values of X-MiXeD-Case (matched ignoring case)")
    name = found[0][0]
    labels = {sent.lower(): "lower-cased", sent: "preserved", sent.upper(): "upper-cased"}
    record(labels.get(name, f"other: {name!r}"))


@scenario(
    "http.scope.headers.duplicates",
    "repeated fields stay separate entries, in arrival order",
    level=MUST,
    spec=SPEC,
)
def test_headers_duplicates(server: Server) -> None:
    seen = server.echo("/echo", [("X-Dup", "a"), ("X-Dup", "b")])
    expect(_values(seen, b"x-dup"), [b"a", b"b"], "values of X-Dup")


@scenario(
    "http.scope.headers.value_order",
    "values of one name keep their order (order between names may change)",
    level=MUST,
    spec=SPEC,
)
def test_headers_value_order(server: Server) -> None:
    seen = server.echo("/echo", [("X-A", "1"), ("X-B", "2"), ("X-A", "3")])
    expect((_values(seen, b"x-a"), _values(seen, b"x-b")), ([b"1", b"3"], [b"2"]), "(values of X-A, of X-B)")


@scenario(
    "http.scope.headers.exact_values",
    "header values are the received bytes: obs-text, inner spaces and quotes intact",
    level=MUST,
    spec="www › HTTP; WSGI encoding differences",
)
def test_headers_exact_values(server: Server) -> None:
    sent = [
        (b"X-Latin", b"caf\xe9"),
        (b"X-Utf8", "café".encode()),
        (b"X-Spaces", b"a  b\tc"),
        (b"X-Quoted", b'"q\\"x", w/"e"'),
        (b"X-Separators", b"a,b;c=d"),
    ]
    seen = server.echo("/echo", sent)
    got = {name.decode(): _values(seen, name.lower()) for name, _ in sent}
    expect(got, {name.decode(): [value] for name, value in sent}, "header values")


@scenario(
    "http.scope.headers.no_drop",
    "no received header is dropped, including names with '_'",
    level=SHOULD,
    spec=SPEC,
)
def test_headers_no_drop(server: Server) -> None:
    """SHOULD: inference from "preserved as received"; dropping '_' names is a deliberate
    anti-spoofing choice in some servers (CVE-2015-0219), so it is a warning, not a failure."""
    seen = server.echo("/echo", [("X_Custom", "1"), ("X-Custom", "2")])
    expect((_values(seen, b"x_custom"), _values(seen, b"x-custom")), ([b"1"], [b"2"]), "(X_Custom, X-Custom) values")


@scenario(
    "http.scope.headers.no_injection",
    "over HTTP/1.x the scope has no header the client did not send",
    level=SHOULD,
    spec="www › HTTP",
)
def test_headers_no_injection(server: Server) -> None:
    """SHOULD: inference; the spec describes the headers as those of the request."""
    sent = [("Host", "127.0.0.1"), ("User-Agent", "asgi-conformance"), ("Accept", "*/*"), ("X-One", "1")]
    seen = server.echo("/echo", sent)
    remaining = [k.lower().encode() for k, _ in sent]
    extra = []
    for name, _ in _headers(seen):
        key = name.lower() if isinstance(name, bytes) else name
        if key in remaining:
            remaining.remove(key)
        else:
            extra.append(name)
    check(not extra, "the scope has headers the client never sent", expected=[], observed=extra)


@scenario(
    "http.scope.headers.cookie_preserved",
    "several Cookie lines arrive as separate entries, not joined",
    level=MUST,
    spec="www › HTTP",
)
def test_headers_cookie_preserved(server: Server) -> None:
    seen = server.echo("/echo", [("Cookie", "a=1"), ("Cookie", "b=2")])
    expect(_values(seen, b"cookie"), [b"a=1", b"b=2"], "values of Cookie")


@scenario(
    "http.scope.headers.roundtrip",
    "for generated header sets, every value arrives exactly, in order, duplicates kept, under its name",
    level=MUST,
    spec=SPEC,
    covers=("http.scope.headers.duplicates", "http.scope.headers.value_order", "http.scope.headers.exact_values"),
)
@gen.LIVE
@given(fields=gen.header_fields())
def test_headers_roundtrip(server: Server, fields: list[tuple[str, str]]) -> None:
    seen = _echo_alive(server, "/echo", fields)
    names = list(dict.fromkeys(k.lower() for k, _ in fields))
    expected = {n: [v.encode("ascii") for k, v in fields if k.lower() == n] for n in names}
    got = {n: _values(seen, n.encode("ascii")) for n in names}
    expect(got, expected, f"values per name (lower-cased) for request headers {fields!r}")


# -- client, server ------------------------------------------------------------------------------


def _address(value: Any) -> Any:
    """A [host, port] iterable as a tuple, so list and tuple compare alike."""
    return tuple(value) if isinstance(value, list | tuple) else value


def _address_value(value: Any) -> Any:
    """``_address`` with a digit-string port read as its number: the port's type is
    ``client.port_int``'s finding, so the value rows judge only the value."""
    value = _address(value)
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], str) and value[1].isdigit():
        note(f"the port is a str ({value[1]!r}); judged by its number here, by http.scope.client.port_int as a type")
        return (value[0], int(value[1]))
    return value


def _echo_with_names(server: Server) -> tuple[Echo, tuple[str, int], tuple[str, int]]:
    """An echo plus the client socket's own address and the server address it connected to."""
    with server.connection() as conn:
        if conn.sock is None:
            fail("could not connect", expected="a connection", observed=conn.refused)
        local, peer = conn.sock.getsockname(), conn.sock.getpeername()
        return server.echo_over(conn, "/echo"), (local[0], local[1]), (peer[0], peer[1])


@scenario(
    "http.scope.client.value",
    "client is [host, port] of the peer, exactly as the client's socket sees itself",
    level=MUST,
    spec=SPEC,
)
def test_client_value(server: Server) -> None:
    seen, local, _ = _echo_with_names(server)
    value = _optional(seen, "client", "the spec allows None when unknown")
    expect(_address_value(value), local, "client (as a tuple)")


@scenario("http.scope.client.port_int", "the ports in client and server are int", level=MUST, spec=SPEC)
def test_client_port_int(server: Server) -> None:
    seen = server.echo("/echo")
    present = {k: _get(seen, k) for k in ("client", "server") if _get(seen, k) not in (ABSENT, None)}
    if not present:
        unsupported("neither client nor server is given")
    ports = {k: v[1] if isinstance(v, list | tuple) and len(v) == 2 else v for k, v in present.items()}
    check(
        all(type(p) is int for p in ports.values()),
        "a port is not an int",
        expected=dict.fromkeys(ports, "int"),
        observed={k: type(p).__name__ for k, p in ports.items()},  # types only: the ports change every run
    )


@scenario(
    "http.scope.server.tcp",
    "on TCP, server is [listen host, listen port] of the connection",
    level=MUST,
    spec=SPEC,
)
def test_server_tcp(server: Server) -> None:
    seen, _, peer = _echo_with_names(server)
    value = _optional(seen, "server", "the spec allows None when unknown")
    expect(_address_value(value), peer, "server (as a tuple)")


@pytest.fixture(scope="session")
@dedicated_run
def uds_server(session_launcher: Launcher) -> Server:
    """One dedicated process per target listening on a Unix socket; both UDS scenarios read it."""
    process = session_launcher.start("app", bind="uds")
    return Server(session_launcher.target, process, session_launcher.timeouts)


@scenario(
    "http.scope.server.uds",
    "on a Unix socket, server is [socket path, None] (spec 2.2)",
    level=MUST,
    spec="www › HTTP Connection Scope, Spec Versions 2.2",
    requires=("uds",),
)
def test_server_uds(uds_server: Server) -> None:
    seen = uds_server.echo("/echo")
    value = _optional(seen, "server", "the spec allows None when unknown")
    # The socket path changes every run; it is shown by name so the cell stays the same.
    value = _address(value)
    if isinstance(value, tuple):
        value = tuple("<socket path>" if v == uds_server.address.uds else v for v in value)
    expected = ("<socket path>", None)
    if not same(value, expected) and _spec_version(seen) < (2, 2):
        unsupported(f"server is {value!r}, and the target claims spec {_spec_version(seen)} (< 2.2)")
    expect(value, expected, "server (as a tuple)")


@scenario(
    "http.scope.client.uds",
    "client on a Unix-socket connection (recorded)",
    level=INFO,
    spec=SPEC,
    requires=("uds",),
)
def test_client_uds(uds_server: Server) -> None:
    """Unspecified value; legal: None, or a [str host, int port] pair (the key's type)."""
    value = _get(uds_server.echo("/echo"), "client")
    if value is not ABSENT and value is not None:
        check(
            isinstance(value, list | tuple) and len(value) == 2 and isinstance(value[0], str) and type(value[1]) is int,
            "client is neither None nor a [str, int] pair",
            expected="None or [host: str, port: int]",
            observed=value,
        )
    record("absent" if value is ABSENT else repr(_address(value)))


# -- extensions, connections, upgrade -------------------------------------------------------------


@scenario(
    "http.scope.extensions",
    "which extensions the HTTP scope advertises (recorded)",
    level=INFO,
    spec="core › Extensions",
)
def test_extensions(server: Server) -> None:
    """Absent, None and a dict are all legal (the HTTP key list omits the key); anything else fails."""
    value = _get(server.echo("/echo"), "extensions")
    if value is ABSENT or value is None:
        record("absent" if value is ABSENT else "None")
        return
    check(isinstance(value, dict), "extensions is not a dict", expected="a dict (or absent, or None)", observed=value)
    # Keys the echo app adds ("ac.<token>") show up here only if a server shares one dict
    # between scopes (core.extensions.not_shared): left out, so the cell does not depend
    # on which scenarios ran before it.
    names = sorted(str(k) for k in value)
    leaked = [k for k in names if k.startswith("ac.")]
    if leaked:
        note(f"{len(leaked)} key(s) added by earlier requests' apps are here too: the dict is shared")
    record(", ".join(k for k in names if k not in leaked) or "{}")


def _check_in_order(seen: Iterable[Echo], targets: list[str], how: str) -> None:
    got = [(_get(e, "path"), e.app.get("call")) for e in seen]
    calls = [c for _, c in got if isinstance(c, int)]
    check(
        [p for p, _ in got] == targets and len(calls) == len(got) and calls == sorted(set(calls)),
        f"{how} requests did not each get their own scope and app call, in order",
        expected=f"paths {targets}, increasing app call numbers",
        observed=got,
    )


@scenario(
    "http.scope.keepalive_distinct",
    "each request on a persistent connection gets its own scope and call, in order",
    level=MUST,
    spec=SPEC,
)
def test_keepalive_distinct(server: Server) -> None:
    targets = [f"/echo/ka/{n}" for n in range(1, 4)]
    with server.connection() as conn:
        _check_in_order([server.echo_over(conn, t) for t in targets], targets, "sequential")
    with server.connection() as conn:
        conn.send(b"".join(wire.build_request("GET", t) for t in targets))
        _check_in_order([parse_echo(conn.response("GET")) for _ in targets], targets, "pipelined")


@scenario(
    "http.scope.unsupported_upgrade",
    "a request to upgrade to an unknown protocol is served as ordinary HTTP",
    level=MUST,
    spec="www › HTTP",
)
def test_unsupported_upgrade(server: Server) -> None:
    """MUST: ASGI gives HTTP requests type "http", and RFC 9110 §7.8 lets a server ignore
    an Upgrade it does not support; switching (101) to an unknown protocol is impossible."""
    outcome = server.request("GET", "/echo", [("Upgrade", "foo/1"), ("Connection", "upgrade")])
    check(
        not (isinstance(outcome, wire.Response) and 101 in (outcome.status, *outcome.informational)),
        "the server switched protocols",
        expected="an ordinary response from the app",
        observed="101 Switching Protocols",
    )
    expect(_get(parse_echo(outcome), "type"), "http", "scope['type'] for the Upgrade request")
