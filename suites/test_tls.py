"""The TLS extension and the scheme over TLS (spec-catalogue §20; tls.rst 0.2, www › scopes).

Each target serves the catalogue over TLS in a dedicated process (``tls_server``, see
suites/fixtures_tls.py) with a certificate made for the run, and asks for an optional
client certificate where it can. The client trusts only the run's CA; it pins TLS 1.2
and TLS 1.3 where a row compares versions, and presents a client certificate (issued by
an intermediate CA, sent with that intermediate) where a row is about one.

The extension is optional: where a target does not put ``tls`` in a TLS scope's
``extensions``, the field rows are ``unsupported`` (``ext.tls.present_on_tls`` records
it). ``scheme`` over TLS ("https", "wss") is core, judged on every target that serves TLS.
What the client negotiated is read from its own socket (``SSLSocket.version()``,
``cipher()``) and compared with what the server reported; the cipher name is mapped to its
IANA number with asgi_conformance.tls.CIPHER_SUITES.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography import x509

from asgi_conformance import INFO, MUST, SHOULD, Echo, Server, check, expect, fail, note, record, scenario, unsupported
from asgi_conformance import client as wire
from asgi_conformance.apps.typedjson import loads
from asgi_conformance.tls import (
    cipher_number,
    dn_equivalent,
    normalise_pem,
    pem_certificates,
    subject_rfc4514,
    version_number,
)
from asgi_conformance.wsclient import Accepted, Binary, WebSocket, describe

from .fixtures_tls import TLSServer

SPEC = "tls › TLS Connection Scope"
BASE = "tls › The Base Protocol"
WHEN = "tls › When to use this extension"
ABSENT: Any = object()
TLS = ["tls"]
PINS = (("TLS 1.2", ssl.TLSVersion.TLSv1_2), ("TLS 1.3", ssl.TLSVersion.TLSv1_3))


@pytest.fixture
def https(tls_server: TLSServer) -> Iterator[TLSServer]:
    """The target's TLS server, its log attached to this cell."""
    tls_server.require_alive()
    tls_server.attach_log()
    yield tls_server
    tls_server.require_alive()


# -- helpers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """What the app saw on one TLS connection, and what the client negotiated there."""

    echoes: list[Echo]
    version: str | None
    cipher: str | None

    @property
    def echo(self) -> Echo:
        return self.echoes[0]


def _over_tls(server: Server, requests: int = 1, what: str = "a TLS connection") -> Seen | wire.Outcome:
    """``requests`` echo requests on one TLS connection; the failed outcome if it did not get through."""
    with server.connection() as conn:
        if conn.refused is not None:
            return conn.refused
        sock = conn.sock
        assert isinstance(sock, ssl.SSLSocket)
        version, cipher = sock.version(), sock.cipher()
        echoes = []
        for _ in range(requests):
            conn.send(wire.build_request("GET", "/echo"))
            outcome = conn.response("GET")
            if not isinstance(outcome, wire.Response) or outcome.status != 200:
                return outcome
            try:
                data = loads(outcome.body)
                echoes.append(Echo(data["scope"], data["events"], data["app"], outcome))
            except (ValueError, KeyError, TypeError) as exc:
                fail(f"the echo app's answer on {what} is not its JSON", expected="typed JSON", observed=str(exc))
        return Seen(echoes, version, cipher[0] if cipher else None)


def _seen(server: Server, requests: int = 1, what: str = "a TLS connection") -> Seen:
    """Like ``_over_tls``, failing the check if the request did not get an echo."""
    got = _over_tls(server, requests, what)
    if not isinstance(got, Seen):
        fail(
            f"no echo over {what}",
            expected="the echo app's 200 response over TLS",
            observed=wire.describe(got) + (f": {got.error}" if isinstance(got, wire.Refused) else ""),
            level=MUST,
        )
    return got


def _tls_of(scope: dict[str, Any]) -> Any:
    """``scope["extensions"]["tls"]``, or ABSENT."""
    extensions = scope.get("extensions")
    if not isinstance(extensions, dict):
        return ABSENT
    return extensions.get("tls", ABSENT)


def _tls(scope: dict[str, Any], what: str = "an HTTPS request") -> dict[str, Any]:
    """The tls dict of a TLS scope; ``unsupported`` if the target does not advertise the extension."""
    value = _tls_of(scope)
    if value is ABSENT:
        unsupported(f"the target does not provide the tls extension (no extensions['tls'] in the scope of {what})")
    check(isinstance(value, dict), "extensions['tls'] is not a dict", expected="a dict of fields", observed=value)
    return value  # type: ignore[no-any-return]


def _mandatory(tls: dict[str, Any], key: str) -> Any:
    check(key in tls, f"the mandatory key {key!r} is missing from the tls dict", expected=key, observed=sorted(tls))
    return tls[key]


def _chain(tls: dict[str, Any]) -> list[Any]:
    """``client_cert_chain`` as a list (absent: the default, empty); fails if it is not an iterable of strings."""
    chain = tls.get("client_cert_chain", [])
    check(
        isinstance(chain, list | tuple) and all(isinstance(c, str) for c in chain),
        "client_cert_chain is not an iterable of PEM strings",
        expected="a list of str",
        observed=chain,
    )
    return list(chain)


def _pinned(server: TLSServer, label: str, version: ssl.TLSVersion, **kwargs: Any) -> Seen | None:
    """An echo over a connection pinned to ``version``; None (noted) if the target refuses that version."""
    got = _over_tls(server.using(server.client_context(version=version, **kwargs)), what=label)
    if isinstance(got, wire.Refused):
        note(f"{label}: the handshake failed ({got.error}); the target does not serve {label}")
        return None
    if not isinstance(got, Seen):
        fail(f"no echo over {label}", expected="the echo app's 200 response", observed=wire.describe(got), level=MUST)
    return got


def _ws_scope(server: Server, what: str = "a wss WebSocket") -> dict[str, Any]:
    """Open a WebSocket to the catalogue's echo over ``server``'s address; the scope the app got."""
    with WebSocket(server.address, server.timeouts.request) as ws:
        outcome = ws.handshake("/ws/echo")
        check(
            isinstance(outcome, Accepted),
            f"the handshake of {what} failed",
            expected="101",
            observed=describe(outcome) + (f": {ws.refused.error}" if ws.refused else ""),
            level=MUST,
        )
        message = ws.receive(server.timeouts.event)
        ws.close(1000, timeout=server.timeouts.event)
    if not isinstance(message, Binary):
        fail("the echo app's scope did not arrive", expected="a binary message", observed=describe(message), level=MUST)
    try:
        scope = loads(message.data)["scope"]
    except (ValueError, KeyError, TypeError) as exc:
        fail("the message is not the echo app's", expected="typed JSON", observed=f"{message.data[:200]!r} ({exc})")
    if not isinstance(scope, dict):
        fail("the scope the app got is not a dict", expected="a dict", observed=scope, level=MUST)
    return scope


def _check_version(tls: dict[str, Any], seen: Seen, label: str) -> None:
    value = _mandatory(tls, "tls_version")
    if value is None:
        note(f"{label}: tls_version is None (allowed where the server cannot tell)")
        return
    expect(
        value,
        version_number(seen.version),
        f"tls_version on a {label} connection (the client negotiated {seen.version})",
    )


def _check_cipher(tls: dict[str, Any], seen: Seen, label: str) -> None:
    value = _mandatory(tls, "cipher_suite")
    if value is None:
        note(f"{label}: cipher_suite is None (allowed where the server cannot tell)")
        return
    check(
        isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0xFFFF,
        "cipher_suite is not a 16-bit unsigned integer",
        expected="an int in 0..65535 (e.g. 4865 for TLS_AES_128_GCM_SHA256)",
        observed=value,
    )
    number = cipher_number(seen.cipher or "")
    if number is None:
        note(f"{label}: the client's cipher {seen.cipher} is not in the harness's table; only the type was checked")
        return
    expect(value, number, f"cipher_suite on a {label} connection (the client negotiated {seen.cipher})")


# -- when the extension appears -------------------------------------------------------------------


@scenario(
    "ext.tls.absent_plain",
    "no tls extension on a plain (non-TLS) connection",
    level=MUST,
    spec=WHEN,
    impact="security",
)
def test_absent_plain(server: Server) -> None:
    """MUST NOT ("forbidden"): an app that sees ``tls`` believes the connection is encrypted.
    Checked on plain HTTP, and on a plain WebSocket where the target serves them."""
    value = _tls_of(server.echo("/echo").scope)
    check(
        value is ABSENT,
        "extensions['tls'] is present on a plain HTTP connection",
        expected="no 'tls' key",
        observed=value,
    )
    if "websocket" in server.target.all_capabilities:
        value = _tls_of(_ws_scope(server, "a plain WebSocket"))
        check(
            value is ABSENT,
            "extensions['tls'] is present on a plain WebSocket connection",
            expected="no 'tls' key",
            observed=value,
        )
    record("absent")


@scenario(
    "ext.tls.present_on_tls",
    "whether the tls extension is provided on a TLS connection",
    level=INFO,
    spec=WHEN,
    requires=TLS,
)
def test_present_on_tls(https: TLSServer) -> None:
    """MAY (an optional extension): records whether it is there and which keys it has; what is there must be a dict."""
    value = _tls_of(_seen(https).echo.scope)
    if value is ABSENT:
        record("not provided")
        return
    check(isinstance(value, dict), "extensions['tls'] is not a dict", expected="a dict of fields", observed=value)
    record(f"provided: {', '.join(sorted(str(k) for k in value))}")


@scenario(
    "ext.tls.single_connection",
    "the tls dict describes the one TLS connection the scope came on",
    level=MUST,
    spec=BASE,
    requires=TLS,
)
def test_single_connection(https: TLSServer) -> None:
    """MUST: two keep-alive requests on one connection report the same dict, and two connections
    that differ (TLS 1.2 with a client certificate, TLS 1.3 without) each report their own."""
    plans = [
        ("TLS 1.2 with a client certificate", https.client_context(version=ssl.TLSVersion.TLSv1_2, client_cert=True)),
        ("TLS 1.3 without a client certificate", https.client_context(version=ssl.TLSVersion.TLSv1_3)),
    ]
    judged = 0
    for label, ctx in plans:
        got = _over_tls(https.using(ctx), requests=2, what=label)
        if isinstance(got, wire.Refused):
            note(f"{label}: the handshake failed ({got.error})")
            continue
        if not isinstance(got, Seen):
            fail(f"no echo over {label}", expected="two echo responses", observed=wire.describe(got), level=MUST)
        first, second = (_tls(e.scope, label) for e in got.echoes)
        expect(second, first, f"the tls dict of the second request on one {label} connection")
        _check_version(first, got, label)
        sent_cert = "with a client" in label
        chain = _chain(first)
        if not sent_cert:
            expect(chain, [], f"client_cert_chain on the {label} connection (it sent none)")
        judged += 1
    check(judged > 0, "no TLS connection could be made", expected="at least one handshake", observed="none")
    record("one dict per connection")


# -- the fields ------------------------------------------------------------------------------


@scenario(
    "ext.tls.server_cert",
    "server_cert is present and is the certificate the server presented (or None)",
    level=MUST,
    spec=SPEC,
    requires=TLS,
)
def test_server_cert(https: TLSServer) -> None:
    """MUST (key present): None is allowed; a string must be the PEM of the run's server certificate
    (compared after normalising PEM whitespace)."""
    tls = _tls(_seen(https).echo.scope)
    value = _mandatory(tls, "server_cert")
    if value is None:
        record("None")
        note("server_cert is None (allowed where the server cannot tell)")
        return
    check(isinstance(value, str), "server_cert is not a string", expected="a PEM string or None", observed=value)
    blocks = pem_certificates(value)
    check(
        bool(blocks), "server_cert holds no PEM certificate", expected="-----BEGIN CERTIFICATE-----...", observed=value
    )
    expect(blocks[0], normalise_pem(https.authority.server_cert_pem), "server_cert (the certificate the server sent)")
    if len(blocks) > 1:
        note(f"server_cert holds {len(blocks)} certificates; the spec names one")
    record("the presented certificate")


@scenario(
    "ext.tls.client_cert_chain",
    "client_cert_chain lists the client certificate first, each next one signing the one before",
    level=MUST,
    spec=SPEC,
    requires=TLS,
)
def test_client_cert_chain(https: TLSServer) -> None:
    """MUST (format): the client sends its certificate and the intermediate that signed it. An empty
    chain is allowed (a server unable to provide it); a non-empty one starts with the client's
    certificate and each certificate signs the one before."""
    label = "a connection with a client certificate"
    tls = _tls(_seen(https.using(https.client_context(client_cert=True)), what=label).echo.scope, label)
    chain = _chain(tls)
    if not chain:
        record("empty")
        note("the server did not report the client certificate (allowed: empty where it cannot provide it)")
        return
    certs = []
    for i, pem in enumerate(chain):
        blocks = pem_certificates(pem)
        check(len(blocks) == 1, f"client_cert_chain[{i}] is not one PEM certificate", expected="one", observed=pem)
        try:
            certs.append(x509.load_pem_x509_certificate(blocks[0].encode("ascii")))
        except ValueError as exc:
            fail(f"client_cert_chain[{i}] does not parse", expected="an x509 certificate", observed=str(exc))
    expect(
        normalise_pem(chain[0]),
        normalise_pem(https.authority.client_cert_pem),
        "client_cert_chain[0] (the client's own certificate)",
    )
    for i in range(1, len(certs)):
        try:
            certs[i - 1].verify_directly_issued_by(certs[i])
        except Exception as exc:  # cryptography's InvalidSignature, or ValueError/TypeError for a wrong key type
            fail(
                f"client_cert_chain[{i}] did not sign client_cert_chain[{i - 1}]",
                expected="each certificate signs the one before",
                observed=f"{certs[i].subject.rfc4514_string()} / {certs[i - 1].issuer.rfc4514_string()}: {exc!r}",
            )
    if len(chain) < len(https.authority.client_chain_pems):
        note(f"the chain has {len(chain)} of the {len(https.authority.client_chain_pems)} certificates the client sent")
    record(f"{len(chain)} certificates, client first")


@scenario(
    "ext.tls.client_cert_name",
    "client_cert_name is the RFC 4514 subject of the client certificate",
    level=MUST,
    spec=SPEC,
    requires=TLS,
)
def test_client_cert_name(https: TLSServer) -> None:
    """MUST: with a non-empty chain the name is present and consistent with chain[0]; any name given
    is the RFC 4514 form of the client's subject (compared with cryptography's ``rfc4514_string``;
    equivalent spellings, e.g. escapes or long type names, pass with a note)."""
    label = "a connection with a client certificate"
    tls = _tls(_seen(https.using(https.client_context(client_cert=True)), what=label).echo.scope, label)
    chain = _chain(tls)
    name = tls.get("client_cert_name")
    wanted = https.authority.client_subject
    if name is None:
        check(
            not chain,
            "client_cert_name is None although client_cert_chain is not empty",
            expected=wanted,
            observed=None,
        )
        record("None")
        note("the server reports no client certificate name (allowed where it cannot provide it)")
        return
    check(isinstance(name, str), "client_cert_name is not a string", expected=wanted, observed=name)
    if chain:
        first = pem_certificates(chain[0])
        if first:
            wanted = subject_rfc4514(first[0])
    if name != wanted:
        check(
            dn_equivalent(name, wanted),
            "client_cert_name is not the client's subject in RFC 4514 form",
            expected=wanted,
            observed=name,
        )
        note(f"client_cert_name {name!r} is an equivalent spelling of {wanted!r}")
    record("the client's subject")


@scenario(
    "ext.tls.client_cert_error",
    "client_cert_error is None for a verified or absent certificate, a non-empty string otherwise",
    level=MUST,
    spec=SPEC,
    requires=TLS,
)
def test_client_cert_error(https: TLSServer) -> None:
    """MUST (format): a verified certificate and no certificate give None (or no key); an untrusted
    certificate is either refused by the server (most do) or let through with a non-empty string."""
    label = "a connection with a verified client certificate"
    tls = _tls(_seen(https.using(https.client_context(client_cert=True)), what=label).echo.scope, label)
    expect(tls.get("client_cert_error"), None, f"client_cert_error on {label}")
    tls = _tls(_seen(https).echo.scope)
    expect(tls.get("client_cert_error"), None, "client_cert_error on a connection without a client certificate")
    label = "a connection with an untrusted client certificate"
    got = _over_tls(https.using(https.client_context(untrusted_client_cert=True)), what=label)
    if not isinstance(got, Seen):
        reason = got.error if isinstance(got, wire.Refused | wire.Malformed) else wire.describe(got)
        note(f"{label}: refused by the server ({reason})")
        record("untrusted certificate refused")
        return
    tls = _tls(got.echo.scope, label)
    error = tls.get("client_cert_error")
    if error is None:
        reported = bool(_chain(tls)) or tls.get("client_cert_name") is not None
        check(
            not reported,
            "an untrusted client certificate was let through with client_cert_error None",
            expected="a non-empty error string",
            observed=None,
        )
        note(f"{label}: let through, no certificate reported (the server may not have asked for one)")
        record("untrusted certificate not asked for")
        return
    check(
        isinstance(error, str) and error != "",
        "client_cert_error is not a non-empty string",
        expected="a non-empty string",
        observed=error,
    )
    record("untrusted certificate let through with an error")


@scenario(
    "ext.tls.tls_version",
    "tls_version is the negotiated version: 0x0303 for TLS 1.2, 0x0304 for TLS 1.3 (or None)",
    level=MUST,
    spec=SPEC,
    requires=TLS,
)
def test_tls_version(https: TLSServer) -> None:
    """MUST (key present): the client pins TLS 1.2, then TLS 1.3."""
    judged = []
    for label, version in PINS:
        seen = _pinned(https, label, version)
        if seen is None:
            continue
        _check_version(_tls(seen.echo.scope, f"a {label} connection"), seen, label)
        judged.append(label)
    check(bool(judged), "neither TLS 1.2 nor TLS 1.3 could be negotiated", expected="one of them", observed="none")
    record(", ".join(judged))


@scenario(
    "ext.tls.cipher_suite",
    "cipher_suite is the IANA number of the negotiated cipher suite (or None)",
    level=MUST,
    spec=SPEC,
    requires=TLS,
)
def test_cipher_suite(https: TLSServer) -> None:
    """MUST (key present): the client pins TLS 1.2, then TLS 1.3, and maps the cipher it negotiated
    (``SSLSocket.cipher()``) to its IANA number (TLS_AES_128_GCM_SHA256 is 4865)."""
    judged = []
    for label, version in PINS:
        seen = _pinned(https, label, version)
        if seen is None:
            continue
        _check_cipher(_tls(seen.echo.scope, f"a {label} connection"), seen, label)
        judged.append(label)
    check(bool(judged), "neither TLS 1.2 nor TLS 1.3 could be negotiated", expected="one of them", observed="none")
    record(", ".join(judged))


@scenario(
    "ext.tls.no_client_cert_values",
    "without a client certificate: chain empty, name None, error None",
    level=MUST,
    spec=SPEC,
    requires=TLS,
)
def test_no_client_cert_values(https: TLSServer) -> None:
    """MUST: the three client fields (optional keys, with these defaults) on a plain TLS client."""
    tls = _tls(_seen(https).echo.scope)
    expect(_chain(tls), [], "client_cert_chain without a client certificate")
    expect(tls.get("client_cert_name"), None, "client_cert_name without a client certificate")
    expect(tls.get("client_cert_error"), None, "client_cert_error without a client certificate")
    record("empty, None, None")


@scenario(
    "ext.tls.websocket",
    "the tls dict appears in wss WebSocket scopes too",
    level=MUST,
    spec=BASE,
    requires=["tls", "websocket"],
)
def test_websocket(https: TLSServer) -> None:
    """MUST (where the extension is supported): a server that gives HTTPS scopes the dict gives it
    to wss scopes as well, with the mandatory keys, describing that connection."""
    http_tls = _tls_of(_seen(https).echo.scope)
    scope = _ws_scope(https)
    ws_tls = _tls_of(scope)
    if http_tls is ABSENT and ws_tls is ABSENT:
        unsupported("the target does not provide the tls extension (on HTTPS or wss)")
    check(
        ws_tls is not ABSENT,
        "extensions['tls'] is on HTTPS scopes but not on the wss WebSocket scope",
        expected="a tls dict",
        observed="absent",
    )
    check(isinstance(ws_tls, dict), "extensions['tls'] is not a dict", expected="a dict of fields", observed=ws_tls)
    for key in ("server_cert", "tls_version", "cipher_suite"):
        _mandatory(ws_tls, key)
    if isinstance(http_tls, dict):
        expect(ws_tls.get("server_cert"), http_tls.get("server_cert"), "server_cert on wss (as on HTTPS)")
    record("present on wss")


# -- the scheme over TLS (core) -----------------------------------------------------------------


@scenario(
    "ext.tls.scheme_https",
    "scheme is 'https' on a TLS connection",
    level=MUST,
    spec="www › HTTP Connection Scope",
    covers=["http.scope.scheme"],
    requires=TLS,
)
def test_scheme_https(https: TLSServer) -> None:
    """MUST: absent means the default "http", which names the wrong scheme over TLS."""
    value = _seen(https).echo.scope.get("scheme", ABSENT)
    record("absent (means 'http')" if value is ABSENT else repr(value))
    expect("http" if value is ABSENT else value, "https", "scheme on a TLS connection (absent: the default 'http')")


@scenario(
    "ext.tls.scheme_wss",
    "scheme is 'wss' on a WebSocket over TLS",
    level=MUST,
    spec="www › Websocket Connection Scope",
    covers=["ws.scope.scheme"],
    requires=["tls", "websocket"],
)
def test_scheme_wss(https: TLSServer) -> None:
    """MUST: "wss", not "https"; absent means the default "ws", the wrong scheme over TLS."""
    value = _ws_scope(https).get("scheme", ABSENT)
    record("absent (means 'ws')" if value is ABSENT else repr(value))
    expect("ws" if value is ABSENT else value, "wss", "scheme of a WebSocket over TLS (absent: the default 'ws')")


@scenario(
    "ext.tls.scheme_consistency",
    "scheme is 'https' or 'wss' whenever the tls extension is present",
    level=SHOULD,
    spec="www › HTTP/Websocket Connection Scope",
    requires=TLS,
)
def test_scheme_consistency(https: TLSServer) -> None:
    """Implied, an inference (SHOULD): a scope that says TLS and names a plain scheme contradicts itself."""
    scope = _seen(https).echo.scope
    _tls(scope)
    expect(scope.get("scheme", "http"), "https", "scheme of an HTTPS scope that carries the tls extension")
    if "websocket" in https.target.all_capabilities:
        ws = _ws_scope(https)
        if _tls_of(ws) is not ABSENT:
            expect(ws.get("scheme", "ws"), "wss", "scheme of a wss scope that carries the tls extension")
    record("consistent")
