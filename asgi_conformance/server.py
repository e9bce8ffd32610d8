"""What a test holds: the target's shared server, and a launcher for dedicated ones.

``Server`` is one test's view of the process that serves the catalogue for the whole
run: it sends requests (raw bytes on a new connection each time, so tests cannot see
each other) and reads back what the app saw. ``Launcher`` starts extra processes of
the same target for cases that need their own (a failing lifespan, a shutdown, a
root path), and stops every one of them when the test or session ends.
"""

from __future__ import annotations

import itertools
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import client
from .apps.typedjson import loads
from .journal import Journal
from .process import ServerProcess, stop_together
from .targets import BindMode, Target
from .timing import Timeouts
from .tls import run_authority
from .verdicts import Level, current_cell, fail

__all__ = ["APP_MODULE", "Echo", "Launcher", "Server", "parse_echo"]

APP_MODULE = "asgi_conformance.apps.serve"
_LAUNCHES = itertools.count(1)
"""Numbers dedicated processes across every launcher of this pytest process, so no two
share a log file or journal directory (a session launcher and a test's launcher)."""
Headers = Iterable[tuple[str | bytes, str | bytes]]


@dataclass(frozen=True)
class Echo:
    """What the echo app saw: the scope, the receive events, and facts about itself."""

    scope: dict[str, Any]
    events: list[Any]
    app: dict[str, Any]
    response: client.Response


def parse_echo(outcome: client.Outcome, what: str = "the echo app's 200 response") -> Echo:
    """The echo in ``outcome``; a failed check if the app's answer did not come back."""
    if not isinstance(outcome, client.Response) or outcome.status != 200:
        fail(
            "the request did not reach the app, or its answer did not come back",
            expected=what,
            observed=client.describe(outcome)
            + (f": {outcome.body[:200]!r}" if isinstance(outcome, client.Response) else ""),
        )
    try:
        data = loads(outcome.body)
        return Echo(data["scope"], data["events"], data["app"], outcome)
    except (ValueError, KeyError, TypeError) as exc:
        fail("the response body is not the echo app's", expected=what, observed=f"{outcome.body[:200]!r} ({exc})")


class Server:
    """The target's shared server process, as one test uses it."""

    def __init__(
        self, target: Target, process: ServerProcess, timeouts: Timeouts, *, address: client.Address | None = None
    ) -> None:
        self.target = target
        self.process = process
        self.timeouts = timeouts
        assert process.address is not None
        self.address: client.Address = address or process.address
        """Where requests go; over TLS (a process launched with ``tls=True``) it carries the
        client context, so ``connection``, ``raw``, ``request``, ``echo`` and a
        ``wsclient.WebSocket(server.address, ...)`` all speak TLS."""

    @property
    def tls(self) -> bool:
        """True when this server's connections are TLS."""
        return self.address.tls is not None

    def using(self, context: ssl.SSLContext, server_hostname: str | None = None) -> Server:
        """The same server reached with another client context (a client certificate, a
        pinned TLS version, ALPN): see ``tls.Authority.client_context``."""
        return Server(self.target, self.process, self.timeouts, address=self.address.with_tls(context, server_hostname))

    @property
    def journal(self) -> Journal:
        return Journal(self.process.journal_dir)

    def connection(self) -> client.Connection:
        return client.Connection(self.address, self.timeouts.request)

    def raw(self, data: bytes, *, method: str | bytes | None = None, timeout: float | None = None) -> client.Outcome:
        """Send ``data`` as is on a new connection; read one response (within ``timeout``,
        by default ``timeouts.request``)."""
        return client.exchange(
            self.address, data, method=method, timeout=self.timeouts.request if timeout is None else timeout
        )

    def request(
        self,
        method: str = "GET",
        target: str | bytes = "/",
        headers: Headers = (),
        body: bytes = b"",
        *,
        version: str = "HTTP/1.1",
        host: str | bytes | None = "127.0.0.1",
        timeout: float | None = None,
    ) -> client.Outcome:
        data = client.build_request(method, target, headers, body, version=version, host=host)
        return self.raw(data, method=method, timeout=timeout)

    def echo(
        self,
        target: str | bytes = "/echo",
        headers: Headers = (),
        body: bytes = b"",
        *,
        method: str = "GET",
        version: str = "HTTP/1.1",
        host: str | bytes | None = "127.0.0.1",
    ) -> Echo:
        """Send a request to the echo app and return what it saw (fails the check if it can't)."""
        return parse_echo(self.request(method, target, headers, body, version=version, host=host))

    def echo_over(
        self, conn: client.Connection, target: str | bytes = "/echo", headers: Headers = (), *, method: str = "GET"
    ) -> Echo:
        """Send a request to the echo app on an open connection (keep-alive, pipelining)."""
        conn.send(client.build_request(method, target, headers))
        return parse_echo(conn.response(method))

    def control(self, name: str) -> Any:
        """GET a control path of the catalogue app and decode its JSON."""
        outcome = self.request("GET", f"/__asgi_conformance__/{name}")
        if not isinstance(outcome, client.Response) or outcome.status != 200:
            fail(
                f"control path {name!r} did not answer",
                expected="200",
                observed=client.describe(outcome),
                level=Level.MUST,
            )
        return loads(outcome.body)


class Launcher:
    """Starts dedicated processes of one target; ``stop_all`` ends every one."""

    def __init__(self, target: Target, workdir: Path, timeouts: Timeouts, bind: BindMode, env: dict[str, str]) -> None:
        self.target = target
        self.workdir = workdir
        self.timeouts = timeouts
        self.bind = bind
        self.env = env
        self.started: list[ServerProcess] = []

    def start(
        self,
        app: str = "app",
        *,
        wait_ready: bool = True,
        root_path: str | None = None,
        bind: BindMode | None = None,
        ws_ping_interval: float | None = None,
        tls: bool = False,
    ) -> ServerProcess:
        """Start ``asgi_conformance.apps.serve:<app>`` on this target in a new process.

        ``bind`` overrides the run's bind mode (it must be one the target supports);
        ``ws_ping_interval`` appends the target's ``ws_ping_args`` with that many seconds.
        ``tls`` serves TLS with the run's certificate (``tls.run_authority``, written next to
        this launcher's work directory), bound by port unless ``bind`` says otherwise; the
        process's ``address`` then carries a client context trusting the run's CA.
        """
        authority = None
        if tls:
            authority = run_authority(self.workdir.parent / "tls")
            if bind is None:
                modes = self.target.tls_bind_modes
                bind = "port" if "port" in modes else (self.bind if self.bind in modes or not modes else modes[0])
        process = ServerProcess(
            self.target,
            app=f"{APP_MODULE}:{app}",
            workdir=self.workdir,
            timeouts=self.timeouts,
            bind=bind or self.bind,
            root_path=root_path,
            env=self.env,
            label=f"{app}{'-tls' if tls else ''}-{next(_LAUNCHES)}",
            ws_ping_interval=ws_ping_interval,
            tls=authority,
        )
        self.started.append(process)
        cell = current_cell()
        if cell is not None:
            cell.logs.append((f"{app} server log", process, 0))
        process.start(wait_ready=wait_ready)
        return process

    def stop_all(self) -> None:
        stop_together(self.started)
