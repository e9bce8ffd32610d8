"""Session fixtures for the TLS scenarios (imported by suites/conftest.py).

``tls_server`` (session scope, once per target): a dedicated process of the current target
serving the catalogue app over TLS with the run's certificate (``asgi_conformance.tls``),
started only when a selected scenario asks for it. Scenarios that use it declare
``requires=["tls"]`` (targets without the capability get ``unsupported`` cells before the
fixture runs; if asked anyway, the fixture skips as unsupported). It is a ``TLSServer``, a
``Server`` whose address carries a client context (trusting only the run's CA, offering
ALPN ``http/1.1``, no client certificate), so ``connection()``, ``raw()``, ``request()``,
``echo()`` and ``wsclient.WebSocket(tls_server.address, ...)`` speak TLS. Besides:

``tls_server.authority``       the run's ``tls.Authority``: ``files`` (CA, server chain and key,
                               client chain and key), ``server_cert_pem``, ``client_chain_pems``,
                               ``client_subject`` (RFC 4514)
``tls_server.client_context(alpn=None, client_cert=False, untrusted_client_cert=False, version=None)``
                               an ``ssl.SSLContext`` for this run (``tls.client_context``)
``tls_server.using(context)``  the same server reached with another context (a ``Server``)
``tls_server.address``         ``client.Address`` (host 127.0.0.1, port, ``tls`` = the default
                               context, ``server_hostname`` "127.0.0.1");
                               ``address.with_tls(ctx).connect(timeout)`` returns a connected,
                               handshaken ``ssl.SSLSocket`` (check ``selected_alpn_protocol()``)
``tls_server.process``         the ``ServerProcess`` (log, journal, ``alive``)
``tls_server.attach_log()``    adds this process's log (from now on) to the current cell

For HTTP/2 over TLS: ``sock = tls_server.address.with_tls(tls_server.client_context(alpn=["h2",
"http/1.1"])).connect(timeout)``; ``sock.selected_alpn_protocol() == "h2"`` when the server
chose h2. Targets launched with TLS: uvicorn (3 variants), gunicorn-uvicorn (no ALPN h2),
hypercorn (2 workers), granian (h2 and http/1.1 by ALPN), daphne (twisted ``ssl:`` endpoint,
h2 by ALPN, no client certificate requested).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest

from asgi_conformance.process import ServerProcess, TargetDied
from asgi_conformance.server import Launcher, Server
from asgi_conformance.targets import Target
from asgi_conformance.timing import Timeouts
from asgi_conformance.tls import Authority
from asgi_conformance.verdicts import current_cell, unsupported

__all__ = ["TLSServer", "tls_server"]


class TLSServer(Server):
    """A ``Server`` over TLS, with the run's certificate authority at hand."""

    def __init__(self, target: Target, process: ServerProcess, timeouts: Timeouts, authority: Authority) -> None:
        super().__init__(target, process, timeouts)
        self.authority = authority

    def client_context(
        self,
        *,
        alpn: list[str] | None = None,
        client_cert: bool = False,
        untrusted_client_cert: bool = False,
        version: ssl.TLSVersion | None = None,
    ) -> ssl.SSLContext:
        return self.authority.client_context(
            alpn=alpn, client_cert=client_cert, untrusted_client_cert=untrusted_client_cert, version=version
        )

    def attach_log(self, title: str = "TLS server log") -> None:
        """Add this process's log, from here on, to the current cell (shown on failure)."""
        cell = current_cell()
        if cell is not None:
            cell.logs.append((title, self.process, self.process.log_offset()))

    def require_alive(self) -> None:
        status = self.process.exit_status()
        if status is not None:
            raise TargetDied(f"{self.target.id}: the TLS server exited (status {status})\n{self.process.log_tail()}")


@pytest.fixture(scope="session")
def tls_server(target: Target, session_launcher: Launcher) -> Iterator[TLSServer]:
    """The current target serving the catalogue app over TLS (see the module docstring)."""
    if "tls" not in target.all_capabilities:
        unsupported(f"{target.id} does not declare tls")
    if not target.tls_bind_modes:
        unsupported(f"{target.id} declares tls but has no options to launch with a certificate (Target.tls_args)")
    process = session_launcher.start(tls=True)
    authority = process.tls
    assert authority is not None
    yield TLSServer(target, process, session_launcher.timeouts, authority)
    process.stop()
