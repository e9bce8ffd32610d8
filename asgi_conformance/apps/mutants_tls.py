"""Mutants for the TLS scenarios (suites/test_tls.py).

No built-in target provides the ``tls`` extension today, so the field rows have no passing
reference of their own. The fixer ``tls-extension`` makes uvicorn-h11 provide it, from the
real TLS session of each connection: at import it patches uvicorn's h11
``RequestResponseCycle.run_asgi`` and websockets ``WebSocketProtocol.run_asgi`` (inside the
reference server's process only) to add ``scope["extensions"]["tls"]`` built from the
transport's ``ssl_object``: the peer's certificate chain as received
(``_sslobj.get_unverified_chain()``, or the leaf alone), its subject from ``getpeercert()``
formatted as RFC 4514 here (not with the library the scenarios compare with), the protocol
version and cipher the session negotiated, and the certificate file the server was started
with (its ``--ssl-certfile``). Plain connections get nothing. Mutants imitate real bugs on
top of it; the scheme mutants need no fixer (uvicorn already sets https/wss).

Runs inside the server: standard library only.
"""

from __future__ import annotations

import ssl
import sys
from collections.abc import Callable
from typing import Any

from ..tls import CIPHER_SUITES, TLS_VERSIONS, pem_certificates
from .mutants import App, Receive, Scope, Send, copy_scope, fixer, mutant

__all__: list[str] = []

FIXER = "tls-extension"
REFERENCE = "uvicorn-h11"

_SHORT_NAMES = {
    "commonName": "CN",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "streetAddress": "STREET",
    "domainComponent": "DC",
    "userId": "UID",
}


def _escape(value: str) -> str:
    """An attribute value escaped as RFC 4514 section 2.4 asks."""
    out = []
    for i, char in enumerate(value):
        if char in '"+,;<>\\' or (char == "#" and i == 0) or (char == " " and i in (0, len(value) - 1)):
            out.append("\\" + char)
        elif char == "\0":
            out.append("\\00")
        else:
            out.append(char)
    return "".join(out)


def rfc4514(subject: Any) -> str | None:
    """``getpeercert()["subject"]`` (RDNs in certificate order) as an RFC 4514 string (last RDN first)."""
    if not subject:
        return None
    rdns = []
    for rdn in reversed(subject):
        rdns.append("+".join(f"{_SHORT_NAMES.get(kind, kind)}={_escape(value)}" for kind, value in rdn))
    return ",".join(rdns)


def _server_cert() -> str | None:
    """The first certificate of the file this server was started with (``--ssl-certfile``)."""
    argv = sys.argv
    for i, part in enumerate(argv):
        path = argv[i + 1] if part == "--ssl-certfile" and i + 1 < len(argv) else None
        if part.startswith("--ssl-certfile="):
            path = part.split("=", 1)[1]
        if path:
            try:
                with open(path, encoding="ascii") as f:
                    blocks = pem_certificates(f.read())
            except OSError:
                return None
            return blocks[0] if blocks else None
    return None


def tls_dict(ssl_object: Any) -> dict[str, Any]:
    """The ``tls`` extension for the connection of ``ssl_object`` (an ``ssl.SSLObject``)."""
    chain: list[str] = []
    inner = getattr(ssl_object, "_sslobj", None)
    certs = inner.get_unverified_chain() if inner is not None and hasattr(inner, "get_unverified_chain") else None
    certs = [cert for cert in certs or () if cert is not None]  # no peer certificate: [None]
    if certs:
        chain = [str(cert.public_bytes()) for cert in certs]  # PEM by default
    else:
        der = ssl_object.getpeercert(binary_form=True)
        if der:
            chain = [ssl.DER_cert_to_PEM_cert(der)]
    peer = ssl_object.getpeercert() or {}
    cipher = ssl_object.cipher()
    return {
        "server_cert": _server_cert(),
        "client_cert_chain": chain,
        "client_cert_name": rfc4514(peer.get("subject")) if chain else None,
        # The server asks with CERT_OPTIONAL: a certificate that fails verification ends the handshake.
        "client_cert_error": None,
        "tls_version": TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": CIPHER_SUITES.get(cipher[0]) if cipher else None,
    }


def _add_tls(scope: Any, transport: Any) -> None:
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if ssl_object is None or not isinstance(scope, dict):
        return
    extensions = scope.setdefault("extensions", {})
    if isinstance(extensions, dict) and "tls" not in extensions:
        extensions["tls"] = tls_dict(ssl_object)


_PATCHED: list[str] = []


def _patch_uvicorn() -> None:
    """Make this process's uvicorn (h11 and websockets protocols) provide the tls extension."""
    if _PATCHED:
        return
    try:
        from uvicorn.protocols.http import h11_impl
        from uvicorn.protocols.websockets import websockets_impl
    except ImportError as exc:
        raise RuntimeError(f"{FIXER}: runs on {REFERENCE} only (cannot import uvicorn's protocols: {exc})") from exc
    cycle: Any = getattr(h11_impl, "RequestResponseCycle", None)
    protocol: Any = getattr(websockets_impl, "WebSocketProtocol", None)
    if cycle is None or not hasattr(cycle, "run_asgi") or protocol is None or not hasattr(protocol, "run_asgi"):
        raise RuntimeError(f"{FIXER}: uvicorn's RequestResponseCycle/WebSocketProtocol.run_asgi not found")
    http_run = cycle.run_asgi
    ws_run = protocol.run_asgi

    async def http_run_asgi(self: Any, app: Any) -> None:
        _add_tls(getattr(self, "scope", None), getattr(self, "transport", None))
        await http_run(self, app)

    async def ws_run_asgi(self: Any) -> None:
        _add_tls(getattr(self, "scope", None), getattr(self, "transport", None))
        await ws_run(self)

    cycle.run_asgi = http_run_asgi
    protocol.run_asgi = ws_run_asgi
    _PATCHED.append("uvicorn")


@fixer(FIXER)
def tls_extension(app: App) -> App:
    """uvicorn-h11 providing the ``tls`` extension from each connection's TLS session."""
    _patch_uvicorn()
    return app


# -- helpers ---------------------------------------------------------------------------------


def _tls_mutant(change: Callable[[Scope, dict[str, Any]], Any], *types: str) -> Callable[[App], App]:
    """Wrap an app so ``change(scope, tls)`` edits a copy of the tls dict of each TLS scope."""
    kinds = types or ("http",)

    def wrap(app: App) -> App:
        async def mutated(scope: Scope, receive: Receive, send: Send) -> Any:
            extensions = scope.get("extensions")
            if scope.get("type") in kinds and isinstance(extensions, dict) and isinstance(extensions.get("tls"), dict):
                scope = copy_scope(scope)
                tls = dict(scope["extensions"]["tls"])
                scope["extensions"]["tls"] = tls
                change(scope, tls)
            return await app(scope, receive, send)

        return mutated

    return wrap


# -- the mutants -------------------------------------------------------------------------------


@mutant(
    "tls-on-plain",
    "a server that adds a tls entry (with None values) to every scope, TLS or not",
    "ext.tls.absent_plain",
    reference=REFERENCE,
)
def tls_on_plain(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> Any:
        if scope.get("type") in ("http", "websocket") and scope.get("scheme") in ("http", "ws", None):
            scope = copy_scope(scope)
            empty = {"server_cert": None, "tls_version": None, "cipher_suite": None}
            scope.setdefault("extensions", {})["tls"] = empty
        return await app(scope, receive, send)

    return mutated


@mutant(
    "tls-not-a-dict",
    "a server that advertises the tls extension with a flag (True) instead of the dict of fields",
    "ext.tls.present_on_tls",
    reference=REFERENCE,
)
def tls_not_a_dict(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> Any:
        if scope.get("type") == "http" and scope.get("scheme") == "https":
            scope = copy_scope(scope)
            scope.setdefault("extensions", {})["tls"] = True
        return await app(scope, receive, send)

    return mutated


_FIRST: dict[str, Any] = {}


@mutant(
    "tls-shared-dict",
    "a server that builds the tls dict once (for the first TLS connection) and hands it to every scope",
    "ext.tls.single_connection",
    reference=REFERENCE,
    base=FIXER,
)
def tls_shared_dict(app: App) -> App:
    def change(scope: Scope, tls: dict[str, Any]) -> None:
        first = _FIRST.setdefault("tls", dict(tls))
        tls.clear()
        tls.update(first)

    return _tls_mutant(change)(app)


@mutant(
    "tls-no-server-cert",
    "a server that leaves out server_cert (a mandatory key) when it cannot tell which certificate it sent",
    "ext.tls.server_cert",
    reference=REFERENCE,
    base=FIXER,
)
def tls_no_server_cert(app: App) -> App:
    return _tls_mutant(lambda scope, tls: tls.pop("server_cert", None))(app)


@mutant(
    "tls-chain-reversed",
    "a server that lists the client's chain root-side first (the intermediate before the client certificate)",
    "ext.tls.client_cert_chain",
    reference=REFERENCE,
    base=FIXER,
)
def tls_chain_reversed(app: App) -> App:
    def change(scope: Scope, tls: dict[str, Any]) -> None:
        tls["client_cert_chain"] = list(reversed(list(tls.get("client_cert_chain") or [])))

    return _tls_mutant(change)(app)


@mutant(
    "tls-name-der-order",
    "a server that writes client_cert_name in certificate (DER) order, not RFC 4514's last-RDN-first order",
    "ext.tls.client_cert_name",
    reference=REFERENCE,
    base=FIXER,
)
def tls_name_der_order(app: App) -> App:
    def change(scope: Scope, tls: dict[str, Any]) -> None:
        name = tls.get("client_cert_name")
        if isinstance(name, str):
            tls["client_cert_name"] = ",".join(reversed(name.split(",")))

    return _tls_mutant(change)(app)


@mutant(
    "tls-error-on-success",
    "a server that reports the verification result code ('X509_V_OK') as client_cert_error for a verified certificate",
    "ext.tls.client_cert_error",
    reference=REFERENCE,
    base=FIXER,
)
def tls_error_on_success(app: App) -> App:
    def change(scope: Scope, tls: dict[str, Any]) -> None:
        if tls.get("client_cert_chain"):
            tls["client_cert_error"] = "X509_V_OK"

    return _tls_mutant(change)(app)


@mutant(
    "tls-version-hardcoded",
    "a server that always reports tls_version 0x0304 (TLS 1.3), whatever the session negotiated",
    "ext.tls.tls_version",
    reference=REFERENCE,
    base=FIXER,
)
def tls_version_hardcoded(app: App) -> App:
    return _tls_mutant(lambda scope, tls: tls.__setitem__("tls_version", 0x0304))(app)


@mutant(
    "tls-cipher-name",
    "a server that reports cipher_suite as its TLS library's cipher name instead of the IANA number",
    "ext.tls.cipher_suite",
    reference=REFERENCE,
    base=FIXER,
)
def tls_cipher_name(app: App) -> App:
    names = {number: name for name, number in CIPHER_SUITES.items()}

    def change(scope: Scope, tls: dict[str, Any]) -> None:
        tls["cipher_suite"] = names.get(tls.get("cipher_suite"), "unknown")  # type: ignore[arg-type]

    return _tls_mutant(change)(app)


@mutant(
    "tls-empty-name",
    "a server that reports client_cert_name as '' (not None) when the client sent no certificate",
    "ext.tls.no_client_cert_values",
    reference=REFERENCE,
    base=FIXER,
)
def tls_empty_name(app: App) -> App:
    def change(scope: Scope, tls: dict[str, Any]) -> None:
        if not tls.get("client_cert_chain"):
            tls["client_cert_name"] = ""

    return _tls_mutant(change)(app)


@mutant(
    "tls-http-only",
    "a server that provides the tls extension on HTTP scopes but not on wss WebSocket scopes",
    "ext.tls.websocket",
    reference=REFERENCE,
    base=FIXER,
)
def tls_http_only(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> Any:
        extensions = scope.get("extensions")
        if scope.get("type") == "websocket" and isinstance(extensions, dict) and "tls" in extensions:
            scope = copy_scope(scope)
            del scope["extensions"]["tls"]
        return await app(scope, receive, send)

    return mutated


@mutant(
    "tls-scheme-from-port",
    "a server that guesses the scheme from the port (not 443: 'http'/'ws') while it provides the tls extension",
    "ext.tls.scheme_consistency",
    reference=REFERENCE,
    base=FIXER,
)
def tls_scheme_from_port(app: App) -> App:
    def change(scope: Scope, tls: dict[str, Any]) -> None:
        scope["scheme"] = "ws" if scope.get("type") == "websocket" else "http"

    return _tls_mutant(change, "http", "websocket")(app)


@mutant(
    "tls-scheme-http",
    "a server that reports scheme 'http' on TLS connections (it never looks at the transport)",
    "ext.tls.scheme_https",
    reference=REFERENCE,
)
def tls_scheme_http(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> Any:
        if scope.get("type") == "http" and scope.get("scheme") == "https":
            scope = copy_scope(scope)
            scope["scheme"] = "http"
        return await app(scope, receive, send)

    return mutated


@mutant(
    "tls-scheme-https-ws",
    "a server that reports scheme 'https' (the HTTP name) for a wss WebSocket",
    "ext.tls.scheme_wss",
    reference=REFERENCE,
)
def tls_scheme_https_ws(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> Any:
        if scope.get("type") == "websocket" and scope.get("scheme") == "wss":
            scope = copy_scope(scope)
            scope["scheme"] = "https"
        return await app(scope, receive, send)

    return mutated
