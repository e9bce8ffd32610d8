"""Session fixtures for the HTTP/2 scenarios (imported by suites/conftest.py).

``h2`` (per test): an ``H2Transport`` to the current target over HTTP/2, the way the target
offers it:

* cleartext HTTP/2 with prior knowledge (h2c) on the shared server (the ``server`` fixture's
  address), when the target declares ``h2c``;
* else HTTP/2 over TLS, negotiated by ALPN, on the TLS helper's ``tls_server`` (a dedicated
  process of the target serving TLS), when the target declares ``http2`` and ``tls``;
* else the scenario is ``unsupported``.

Scenarios that use it declare ``requires=["http2"]`` (targets that speak h2c declare
``http2`` too), so targets without HTTP/2 get ``unsupported`` cells before any fixture runs.

``h2.client(enable_push=..., settings=..., connection_window=..., timeout=...)`` opens an
``H2Client`` (asgi_conformance.h2client) on a new connection; ``h2.server`` is the ``Server``
behind it (journal, timeouts, process); ``h2.kind`` is ``"h2c"`` or ``"h2-tls"``;
``h2.scheme`` the scheme the scope should show ("http" or "https"); ``h2.authority`` the
``:authority`` the client sends by default.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping

import pytest

from asgi_conformance.h2client import H2Client, SettingCodes
from asgi_conformance.journal import Journal
from asgi_conformance.server import Server
from asgi_conformance.targets import Target
from asgi_conformance.timing import Timeouts
from asgi_conformance.verdicts import unsupported

__all__ = ["H2Transport", "h2", "transport_for", "transports_for"]

KINDS = {"h2c": "cleartext HTTP/2 with prior knowledge (h2c)", "h2-tls": "HTTP/2 over TLS (ALPN h2)"}


class H2Transport:
    """How this test reaches the target over HTTP/2 (see the module docstring)."""

    def __init__(self, server: Server, kind: str, ssl_context: ssl.SSLContext | None) -> None:
        self.server = server
        self.kind = kind
        self.ssl_context = ssl_context

    @property
    def timeouts(self) -> Timeouts:
        return self.server.timeouts

    @property
    def journal(self) -> Journal:
        return self.server.journal

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_context is not None else "http"

    @property
    def authority(self) -> str:
        address = self.server.address
        return "localhost" if address.host is None else f"{address.host}:{address.port}"

    @property
    def description(self) -> str:
        return KINDS[self.kind]

    def client(
        self,
        *,
        enable_push: bool = True,
        settings: Mapping[SettingCodes, int] | None = None,
        connection_window: int | None = None,
        timeout: float | None = None,
    ) -> H2Client:
        """A new HTTP/2 connection to the target (use it as a context manager)."""
        return H2Client(
            self.server.address,
            timeout=self.timeouts.request if timeout is None else timeout,
            ssl_context=self.ssl_context,
            enable_push=enable_push,
            settings=settings,
            connection_window=connection_window,
        )


def transport_for(request: pytest.FixtureRequest, target: Target) -> H2Transport | None:
    """The target's preferred HTTP/2 transport, or None when it offers none (fixtures start on demand)."""
    found = transports_for(request, target, prefer=True)
    return found[0] if found else None


def transports_for(request: pytest.FixtureRequest, target: Target, *, prefer: bool = False) -> list[H2Transport]:
    """Every HTTP/2 transport the target declares: h2c, then h2 over TLS (only the first with ``prefer``)."""
    caps = target.all_capabilities
    found: list[H2Transport] = []
    if "h2c" in caps:
        server: Server = request.getfixturevalue("server")
        found.append(H2Transport(server, "h2c", None))
        if prefer:
            return found
    if "http2" in caps and "tls" in caps:
        tls_server = request.getfixturevalue("tls_server")
        attach = getattr(tls_server, "attach_log", None)
        if attach is not None:
            attach("TLS server log")
        found.append(H2Transport(tls_server, "h2-tls", tls_server.client_context(alpn=["h2"])))
    return found


@pytest.fixture
def h2(request: pytest.FixtureRequest, target: Target) -> H2Transport:
    """The current target over HTTP/2 (see the module docstring); unsupported without it."""
    found = transport_for(request, target)
    if found is None:
        unsupported(f"{target.id} declares neither h2c nor http2 with tls")
    return found
