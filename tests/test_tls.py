"""The run's certificate authority and client contexts (asgi_conformance.tls), against a local TLS server."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from asgi_conformance import client
from asgi_conformance.tls import (
    CIPHER_SUITES,
    Authority,
    cipher_number,
    normalise_pem,
    pem_certificates,
    subject_rfc4514,
    version_number,
)


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    return Authority(tmp_path_factory.mktemp("tls"))


def test_files_written(authority: Authority) -> None:
    files = authority.files
    for path in (files.ca, files.server_chain, files.server_key, files.client_chain, files.client_key):
        assert path.exists()
        assert path.stat().st_mode & 0o077 == 0
    assert files.server_key.read_text().startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8 (granian)
    assert set(authority.values()) == {
        "certfile",
        "keyfile",
        "ca_certs",
        *(f"{k}_endpoint" for k in ("certfile", "keyfile", "ca_certs")),
    }
    server = x509.load_pem_x509_certificate(authority.server_cert_pem.encode())
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def test_client_chain_is_leaf_then_intermediate(authority: Authority) -> None:
    leaf, intermediate = (x509.load_pem_x509_certificate(p.encode()) for p in authority.client_chain_pems)
    assert leaf.issuer == intermediate.subject
    leaf.verify_directly_issued_by(intermediate)
    assert "CN=asgi-conformance client" in authority.client_subject
    assert authority.client_subject == subject_rfc4514(authority.client_cert_pem)


def test_pem_helpers(authority: Authority) -> None:
    pem = authority.server_cert_pem
    squashed = pem.replace("\n", "\r\n").replace("-----\r\n", "-----\r\n\r\n") + "  \n"
    assert normalise_pem(squashed) == normalise_pem(pem)
    assert pem_certificates("".join(authority.client_chain_pems)) == [
        normalise_pem(p) for p in authority.client_chain_pems
    ]
    assert pem_certificates("no certificate here") == []


def test_tables() -> None:
    assert cipher_number("TLS_AES_128_GCM_SHA256") == 4865
    assert cipher_number("nonsense") is None
    assert version_number("TLSv1.2") == 0x0303
    assert version_number("TLSv1.3") == 0x0304
    assert version_number(None) is None
    assert len(set(CIPHER_SUITES.values())) == len(CIPHER_SUITES)


def _serve_once(authority: Authority, cert_reqs: ssl.VerifyMode) -> tuple[int, Iterator[dict[str, object]]]:
    """A one-connection TLS server on the run's certificate; yields what it saw of the client."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(authority.files.server_chain), str(authority.files.server_key))
    ctx.load_verify_locations(str(authority.files.ca))
    ctx.verify_mode = cert_reqs
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)
    seen: dict[str, object] = {}

    def run() -> None:
        try:
            conn, _ = listener.accept()
            with ctx.wrap_socket(conn, server_side=True) as tls:
                seen["peer"] = tls.getpeercert()
                seen["alpn"] = tls.selected_alpn_protocol()
                seen["version"] = tls.version()
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                tls.recv(10)
        except (OSError, ssl.SSLError) as exc:
            seen["error"] = exc
        finally:
            listener.close()

    thread = threading.Thread(target=run)
    thread.start()

    def result() -> Iterator[dict[str, object]]:
        thread.join(5)
        yield seen

    return listener.getsockname()[1], result()


def test_client_context_talks_to_the_run_server(authority: Authority) -> None:
    port, result = _serve_once(authority, ssl.CERT_OPTIONAL)
    ctx = authority.client_context(alpn=["h2"], client_cert=True, version=ssl.TLSVersion.TLSv1_2)
    address = client.Address(host="127.0.0.1", port=port, tls=ctx)
    assert str(address).endswith("(TLS)")
    outcome = client.exchange(address, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", timeout=5)
    assert isinstance(outcome, client.Response)
    assert outcome.body == b"ok"
    seen = next(result)
    assert seen["alpn"] == "h2"
    assert seen["version"] == "TLSv1.2"
    peer = seen["peer"]
    assert isinstance(peer, dict)
    assert ("commonName", "asgi-conformance client") in [pair for rdn in peer["subject"] for pair in rdn]


def test_client_context_refuses_a_stranger(authority: Authority, tmp_path: Path) -> None:
    other = Authority(tmp_path / "other")
    port, result = _serve_once(other, ssl.CERT_NONE)
    outcome = client.exchange(
        client.Address(host="127.0.0.1", port=port, tls=authority.client_context()),
        b"GET / HTTP/1.1\r\n\r\n",
        timeout=5,
    )
    assert isinstance(outcome, client.Refused)
    assert "CERTIFICATE_VERIFY_FAILED" in outcome.error
    next(result)


def test_endpoint_escaping(tmp_path: Path) -> None:
    odd = Authority(tmp_path / "a:b")
    values = odd.values()
    assert values["keyfile_endpoint"].endswith("a\\:b/server-key.pem")
    assert values["keyfile"].endswith("a:b/server-key.pem")
