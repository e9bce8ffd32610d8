"""TLS for a run: a certificate authority made for it (trustme), and client contexts that trust it.

One ``Authority`` per pytest process (``run_authority``), created on first use in the run's
work directory. It writes:

``ca.pem``                the root CA certificate (what servers check client certs against)
``server-chain.pem``      the server certificate (for 127.0.0.1 and localhost), leaf first
``server-key.pem``        its private key, PKCS#8 (granian accepts only PKCS#8)
``client-chain.pem``      a client certificate issued by an intermediate CA, then that intermediate
``client-key.pem``        its private key
``untrusted-chain.pem``   a client certificate from another CA (servers must not trust it)
``untrusted-key.pem``     its private key

Targets fill ``tls_args`` from ``Authority.values()``: ``{certfile}`` (the server chain),
``{keyfile}``, ``{ca_certs}`` (and ``{certfile_endpoint}`` etc., escaped for twisted endpoints).

``client_context(alpn=..., client_cert=..., version=...)`` is an ``ssl.SSLContext`` that
trusts only the run's CA and checks the server's name (connect with ``server_hostname``
"127.0.0.1", which ``client.Address`` does for TCP addresses). A ``client.Address`` with
``tls=`` set wraps every connection it opens, so the HTTP and WebSocket clients speak TLS
without change.

The ``cipher_number`` table maps OpenSSL's cipher names (``SSLSocket.cipher()[0]``) to the
16-bit IANA numbers the ``tls`` extension reports.
"""

from __future__ import annotations

import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CIPHER_SUITES",
    "TLS_VERSIONS",
    "Authority",
    "TLSFiles",
    "cipher_number",
    "client_context",
    "dn_equivalent",
    "normalise_pem",
    "parse_rfc4514",
    "pem_certificates",
    "run_authority",
    "subject_rfc4514",
    "version_number",
]

CLIENT_COMMON_NAME = "asgi-conformance client"
SERVER_IDENTITIES = ("127.0.0.1", "localhost")

TLS_VERSIONS: dict[str, int] = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
"""``SSLSocket.version()`` names to the numbers the ``tls`` extension reports."""

CIPHER_SUITES: dict[str, int] = {
    # TLS 1.3 (RFC 8446 B.4): OpenSSL uses the IANA names.
    "TLS_AES_128_GCM_SHA256": 0x1301,
    "TLS_AES_256_GCM_SHA384": 0x1302,
    "TLS_CHACHA20_POLY1305_SHA256": 0x1303,
    "TLS_AES_128_CCM_SHA256": 0x1304,
    "TLS_AES_128_CCM_8_SHA256": 0x1305,
    # TLS 1.2 AEAD suites (RFC 5289, RFC 7905, RFC 5288), by OpenSSL name.
    "ECDHE-ECDSA-AES128-GCM-SHA256": 0xC02B,
    "ECDHE-ECDSA-AES256-GCM-SHA384": 0xC02C,
    "ECDHE-RSA-AES128-GCM-SHA256": 0xC02F,
    "ECDHE-RSA-AES256-GCM-SHA384": 0xC030,
    "ECDHE-ECDSA-CHACHA20-POLY1305": 0xCCA9,
    "ECDHE-RSA-CHACHA20-POLY1305": 0xCCA8,
    "DHE-RSA-AES128-GCM-SHA256": 0x009E,
    "DHE-RSA-AES256-GCM-SHA384": 0x009F,
    "DHE-RSA-CHACHA20-POLY1305": 0xCCAA,
    "AES128-GCM-SHA256": 0x009C,
    "AES256-GCM-SHA384": 0x009D,
    # TLS 1.2 CBC suites still found in default lists.
    "ECDHE-ECDSA-AES128-SHA256": 0xC023,
    "ECDHE-ECDSA-AES256-SHA384": 0xC024,
    "ECDHE-RSA-AES128-SHA256": 0xC027,
    "ECDHE-RSA-AES256-SHA384": 0xC028,
    "ECDHE-ECDSA-AES128-SHA": 0xC009,
    "ECDHE-ECDSA-AES256-SHA": 0xC00A,
    "ECDHE-RSA-AES128-SHA": 0xC013,
    "ECDHE-RSA-AES256-SHA": 0xC014,
}
"""OpenSSL cipher names to IANA TLS cipher-suite numbers (TLS 1.3 and common TLS 1.2 suites)."""

_PEM_BEGIN = "-----BEGIN CERTIFICATE-----"
_PEM_END = "-----END CERTIFICATE-----"


def cipher_number(name: str) -> int | None:
    """The IANA number of an OpenSSL cipher name, or None if the table does not know it."""
    return CIPHER_SUITES.get(name)


def version_number(name: str | None) -> int | None:
    """The protocol number (0x0303, 0x0304) of an ``SSLSocket.version()`` name."""
    return None if name is None else TLS_VERSIONS.get(name)


def pem_certificates(text: str) -> list[str]:
    """The PEM certificate blocks in ``text``, each normalised (see ``normalise_pem``)."""
    blocks: list[str] = []
    rest = text
    while True:
        start = rest.find(_PEM_BEGIN)
        if start < 0:
            return blocks
        end = rest.find(_PEM_END, start)
        if end < 0:
            return blocks
        blocks.append(normalise_pem(rest[start : end + len(_PEM_END)]))
        rest = rest[end + len(_PEM_END) :]


def normalise_pem(text: str) -> str:
    """One PEM certificate with line endings and base64 line breaks made canonical.

    Two PEM texts of the same certificate compare equal after this, whatever their
    line length, CR/LF use or surrounding whitespace.
    """
    body = text.strip()
    if body.startswith(_PEM_BEGIN):
        body = body[len(_PEM_BEGIN) :]
    if body.endswith(_PEM_END):
        body = body[: -len(_PEM_END)]
    data = "".join(body.split())
    lines = [data[i : i + 64] for i in range(0, len(data), 64)]
    return "\n".join([_PEM_BEGIN, *lines, _PEM_END]) + "\n"


def subject_rfc4514(pem: str) -> str:
    """The RFC 4514 subject string of a PEM certificate (cryptography's ``rfc4514_string``)."""
    from cryptography import x509

    return x509.load_pem_x509_certificate(pem.encode("ascii")).subject.rfc4514_string()


_DN_TYPES: dict[str, str] = {
    "cn": "2.5.4.3",
    "commonname": "2.5.4.3",
    "l": "2.5.4.7",
    "localityname": "2.5.4.7",
    "st": "2.5.4.8",
    "stateorprovincename": "2.5.4.8",
    "o": "2.5.4.10",
    "organizationname": "2.5.4.10",
    "ou": "2.5.4.11",
    "organizationalunitname": "2.5.4.11",
    "c": "2.5.4.6",
    "countryname": "2.5.4.6",
    "street": "2.5.4.9",
    "streetaddress": "2.5.4.9",
    "dc": "0.9.2342.19200300.100.1.25",
    "domaincomponent": "0.9.2342.19200300.100.1.25",
    "uid": "0.9.2342.19200300.100.1.1",
    "userid": "0.9.2342.19200300.100.1.1",
    "emailaddress": "1.2.840.113549.1.9.1",
    "serialnumber": "2.5.4.5",
}
"""RFC 4514 attribute type names (and the long names some libraries print) to their OIDs."""


def parse_rfc4514(text: str) -> list[list[tuple[str, str]]]:
    """An RFC 4514 DN string as RDNs (in string order) of (type OID or lower-case name, value).

    Escapes (``\\,`` and ``\\hh``) are undone, so two spellings of one name compare equal;
    ValueError if ``text`` is not an RFC 4514 string.
    """
    rdns: list[list[tuple[str, str]]] = []
    if text == "":
        return rdns
    current: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while True:
        eq = text.find("=", i)
        if eq < 0:
            raise ValueError(f"no '=' after position {i}")
        kind = text[i:eq].strip()
        if not kind:
            raise ValueError(f"an empty attribute type at position {i}")
        i = eq + 1
        raw = bytearray()
        while i < n and text[i] not in ",+":
            char = text[i]
            if char == "\\":
                if i + 1 >= n:
                    raise ValueError("a trailing backslash")
                pair = text[i + 1 : i + 3]
                if len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair):
                    raw.append(int(pair, 16))
                    i += 3
                    continue
                raw += text[i + 1].encode()
                i += 2
                continue
            raw += char.encode()
            i += 1
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"a value that is not UTF-8: {exc}") from None
        current.append((_DN_TYPES.get(kind.lower(), kind.lower()), value))
        if i >= n:
            rdns.append(current)
            return rdns
        if text[i] == ",":
            rdns.append(current)
            current = []
        i += 1


def dn_equivalent(a: str, b: str) -> bool:
    """Whether two RFC 4514 strings name the same DN (types by OID, escapes undone, RDN order kept)."""
    try:
        left, right = parse_rfc4514(a), parse_rfc4514(b)
    except ValueError:
        return False
    return [sorted(rdn) for rdn in left] == [sorted(rdn) for rdn in right]


@dataclass(frozen=True)
class TLSFiles:
    """Where the run's certificates and keys were written."""

    directory: Path
    ca: Path
    server_chain: Path
    server_key: Path
    client_chain: Path
    client_key: Path
    untrusted_chain: Path
    untrusted_key: Path


class Authority:
    """The run's certificate authority and the certificates it issued, written to ``directory``."""

    def __init__(self, directory: Path) -> None:
        import trustme
        from cryptography.hazmat.primitives import serialization

        directory.mkdir(parents=True, exist_ok=True)
        self._ca = trustme.CA(organization_name="asgi-conformance")
        server = self._ca.issue_cert(*SERVER_IDENTITIES, organization_name="asgi-conformance")
        intermediate = self._ca.create_child_ca()
        client = intermediate.issue_cert(
            "client@asgi-conformance.invalid", common_name=CLIENT_COMMON_NAME, organization_name="asgi-conformance"
        )
        stranger = trustme.CA(organization_name="not the run's CA").issue_cert(
            "stranger@asgi-conformance.invalid", common_name="untrusted client"
        )

        def pkcs8(pem: bytes) -> bytes:
            key = serialization.load_pem_private_key(pem, password=None)
            return key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )

        def write(name: str, data: bytes) -> Path:
            path = directory / name
            path.write_bytes(data)
            path.chmod(0o600)
            return path

        self.ca_pem: str = self._ca.cert_pem.bytes().decode("ascii")
        self.server_chain_pems: list[str] = [b.bytes().decode("ascii") for b in server.cert_chain_pems]
        self.client_chain_pems: list[str] = [b.bytes().decode("ascii") for b in client.cert_chain_pems]
        """The client certificate first, then the intermediate CA that signed it."""
        self.untrusted_chain_pems: list[str] = [b.bytes().decode("ascii") for b in stranger.cert_chain_pems]
        self.files = TLSFiles(
            directory=directory,
            ca=write("ca.pem", self.ca_pem.encode("ascii")),
            server_chain=write("server-chain.pem", "".join(self.server_chain_pems).encode("ascii")),
            server_key=write("server-key.pem", pkcs8(server.private_key_pem.bytes())),
            client_chain=write("client-chain.pem", "".join(self.client_chain_pems).encode("ascii")),
            client_key=write("client-key.pem", pkcs8(client.private_key_pem.bytes())),
            untrusted_chain=write("untrusted-chain.pem", "".join(self.untrusted_chain_pems).encode("ascii")),
            untrusted_key=write("untrusted-key.pem", pkcs8(stranger.private_key_pem.bytes())),
        )

    @property
    def server_cert_pem(self) -> str:
        """The server's own certificate (the leaf it presents), as written."""
        return self.server_chain_pems[0]

    @property
    def client_cert_pem(self) -> str:
        return self.client_chain_pems[0]

    @property
    def client_subject(self) -> str:
        """The client certificate's subject as an RFC 4514 string."""
        return subject_rfc4514(self.client_cert_pem)

    def values(self) -> dict[str, str]:
        """Placeholders for ``Target.tls_args``: ``{certfile}``, ``{keyfile}``, ``{ca_certs}``, and
        the same paths escaped for a twisted endpoint string (``{certfile_endpoint}``, ...)."""
        paths = {
            "certfile": str(self.files.server_chain),
            "keyfile": str(self.files.server_key),
            "ca_certs": str(self.files.ca),
        }
        escaped = {f"{k}_endpoint": v.replace("\\", "\\\\").replace(":", "\\:") for k, v in paths.items()}
        return {**paths, **escaped}

    def client_context(
        self,
        *,
        alpn: list[str] | None = None,
        client_cert: bool = False,
        untrusted_client_cert: bool = False,
        version: ssl.TLSVersion | None = None,
    ) -> ssl.SSLContext:
        """A client context that trusts only this run's CA and checks the server's name.

        ``alpn`` offers those protocols (None: no ALPN extension); ``client_cert`` presents
        the run's client certificate and its intermediate; ``untrusted_client_cert`` presents
        one from a CA the server does not know; ``version`` pins the protocol (both minimum
        and maximum), e.g. ``ssl.TLSVersion.TLSv1_2``.
        """
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.files.ca))
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
        if version is not None:
            ctx.minimum_version = version
            ctx.maximum_version = version
        if alpn is not None:
            ctx.set_alpn_protocols(alpn)
        if client_cert and untrusted_client_cert:
            raise ValueError("client_cert and untrusted_client_cert exclude each other")
        if client_cert:
            ctx.load_cert_chain(str(self.files.client_chain), str(self.files.client_key))
        elif untrusted_client_cert:
            ctx.load_cert_chain(str(self.files.untrusted_chain), str(self.files.untrusted_key))
        return ctx


_AUTHORITY: Authority | None = None
_LOCK = threading.Lock()


def run_authority(directory: Path | None = None) -> Authority:
    """This process's ``Authority``: made on the first call, in ``directory`` (or a temporary one)."""
    global _AUTHORITY
    with _LOCK:
        if _AUTHORITY is None:
            if directory is None:
                import tempfile

                directory = Path(tempfile.mkdtemp(prefix="asgi-conformance-tls-"))
            _AUTHORITY = Authority(directory)
        return _AUTHORITY


def client_context(
    *,
    alpn: list[str] | None = None,
    client_cert: bool = False,
    untrusted_client_cert: bool = False,
    version: ssl.TLSVersion | None = None,
    authority: Authority | None = None,
) -> ssl.SSLContext:
    """``Authority.client_context`` of ``authority`` (default: this process's ``run_authority()``)."""
    return (authority or run_authority()).client_context(
        alpn=alpn, client_cert=client_cert, untrusted_client_cert=untrusted_client_cert, version=version
    )
