"""Conformance cases: the app-side protocol checker, per framework and rule.

Every framework app runs behind the checker (asgi_conformance.apps.checker), which
journals each ASGI rule the app breaks. Here each framework is driven once per target
in a dedicated process serving it at the top level (``serve:fw_<framework>``, so the
framework's own lifespan handler runs too), then the process is stopped (lifespan
shutdown) and the journal is read. The drive:

- every HTTP path the framework app serves (apps/frameworks ``PATHS``: a JSON answer,
  a streamed request body, a background task, a mount, an exception, a handled
  exception, a file, HEAD), a POST with a body to a GET-only route (405) and an unknown
  path (404), each by a client that reads the response and keeps its connection open
  until the app has ended, so no app meets a disconnect it could race with;
- two clients that leave: one part way through the streamed response, one part way
  through a declared request body (the app is reading it);
- the WebSocket route (accept, close with a code) and an unknown WebSocket path.

Each rule of ``checker.RULES`` is one cell ``chk.<framework>.<rule>``: fail (MUST) or
warn (SHOULD) with the violations observed, pass with what was exercised, unsupported
where the framework cannot run (Quart and Django under trio) or no connection of the
rule's kind reached the app (lifespan on daphne). Lifespan rules exist only for
frameworks with a lifespan handler (not Django).

The verdict is the framework's, under this server: a server can change what a
framework does (a spec_version that switches code paths, when http.disconnect comes,
whether the app is called before the body is complete).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from asgi_conformance import MUST, SHOULD, Launcher, Target, client, fail, note, record, scenario, unsupported
from asgi_conformance.apps import checker
from asgi_conformance.apps.frameworks import PATHS
from asgi_conformance.apps.mutants_checker import frameworks_for
from asgi_conformance.process import ServerProcess
from asgi_conformance.wsclient import Accepted, CloseFrame, WebSocket

__all__: list[str] = []

TOKEN = re.compile(r"[0-9a-f]{12}")
MAX_SHOWN = 8
IMPACT = {
    "http_return_incomplete": "hang",
    "ws_connect_unanswered": "hang",
    "lifespan_unanswered": "hang",
    "http_send_after_complete": "data-loss",
    "send_after_disconnect": "data-loss",
    "http_body_type": "data-loss",
}
WS_CLOSE_CODE = 4000
UNREAD_BODY = b"x" * 2048


@dataclass
class CheckerRun:
    """What the checker journaled while one framework was driven on one target."""

    framework: str
    unsupported: str | None = None
    violations: list[dict[str, Any]] = field(default_factory=list)
    connections: list[dict[str, Any]] = field(default_factory=list)
    driven: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    """The path of each driven connection (with its token), in the order of ``driven``."""
    missing: list[str] = field(default_factory=list)
    """Driven connections whose record never came (the app was not called, or did not end in time)."""


def mask(text: object) -> str:
    """Tokens out of a path or detail, so a cell reads the same run after run."""
    return TOKEN.sub("{token}", str(text))


class CheckerRuns:
    """One dedicated run per framework for this target, made on first use and cached."""

    def __init__(self, launcher: Launcher) -> None:
        self.launcher = launcher
        self.runs: dict[str, CheckerRun | BaseException] = {}

    def get(self, framework: str) -> CheckerRun:
        if framework not in self.runs:
            try:
                self.runs[framework] = self.drive(framework)
            except Exception as exc:
                self.runs[framework] = exc
        found = self.runs[framework]
        if isinstance(found, BaseException):
            raise RuntimeError(f"driving {framework} failed: {type(found).__name__}: {found}") from found
        return found

    def drive(self, framework: str) -> CheckerRun:
        run = CheckerRun(framework)
        process = self.launcher.start(f"fw_{framework}")
        try:
            self.requests(process, run)
            if run.unsupported is None:
                self.websockets(process, run)
                self.wait_for_connections(process, run)
        finally:
            process.stop()
        records = process.journal.records(checker.stream(f"fw-{framework}"))
        run.violations = [r for r in records if r.get("kind") == "violation"]
        run.connections = [r for r in records if r.get("kind") == "connection"]
        return run

    def requests(self, process: ServerProcess, run: CheckerRun) -> None:
        timeout = self.launcher.timeouts.request
        address = process.address
        assert address is not None
        info = client.exchange(address, client.build_request("GET", "/info"), timeout=timeout)
        run.driven.append(f"GET /info: {client.describe(info)}")
        run.paths.append("/info")
        if isinstance(info, client.Response) and info.status == 501:
            try:
                why = json.loads(info.body).get("unsupported")
            except (ValueError, AttributeError):
                why = None
            if why:
                run.unsupported = str(why)
                return
        paths = list(PATHS[run.framework]["http"])
        paths += ["POST /info", "/chk-unknown/{token}"]
        for entry in paths:
            method, _, template = entry.rpartition(" ")
            method = method or "GET"
            path = template.replace("{token}", secrets.token_hex(6))
            if template.startswith("/stream/"):
                outcome = self.leave_stream(address, path, timeout)
            else:
                outcome = self.stay(process, run, method, path, UNREAD_BODY if method == "POST" else b"")
            run.driven.append(f"{method} {mask(path)}: {outcome}")
            run.paths.append(path)
            if template.startswith("/body/"):
                path = template.replace("{token}", secrets.token_hex(6))
                run.driven.append(f"{method} {mask(path)}: {self.leave_upload(address, path, timeout)}")
                run.paths.append(path)

    def stay(self, process: ServerProcess, run: CheckerRun, method: str, path: str, body: bytes) -> str:
        """A client that reads the response, then keeps its connection open until the app has ended
        (its connection record), so no app sees a disconnect it could race with."""
        address = process.address
        assert address is not None
        with client.Connection(address, self.launcher.timeouts.request) as conn:
            conn.send(client.build_request(method, path, body=body))
            outcome = conn.response(method)
            token = TOKEN.search(path)
            if path.startswith("/background/") and token is not None:
                process.journal.open_gate(f"bg-{token.group(0)}")

            def ended(r: dict[str, Any]) -> bool:
                return r.get("kind") == "connection" and r.get("path") == path

            stream = checker.stream(f"fw-{run.framework}")
            process.journal.wait_for(stream, ended, self.launcher.timeouts.event)
        return client.describe(outcome)

    def leave_stream(self, address: client.Address, path: str, timeout: float) -> str:
        """Read the streamed response until its first body bytes, then leave (a FIN)."""
        with client.Connection(address, timeout) as conn:
            conn.send(client.build_request("GET", path))
            got = conn.read_until(lambda progress: len(progress.body) > 0)
            if isinstance(got, client.Progress):
                return f"left after {len(got.body)} body bytes"
            return client.describe(got)

    def leave_upload(self, address: client.Address, path: str, timeout: float) -> str:
        """Send a quarter of the declared body, then leave (a FIN) while the app waits for the rest.

        Uses ``timeouts.hold`` (negative evidence): no response is expected before the body is
        complete; the hold gives the server time to call the app before the client leaves.
        """
        with client.Connection(address, timeout) as conn:
            head = client.build_request("POST", path, [("Content-Length", str(len(UNREAD_BODY) * 4))])
            conn.send(head + UNREAD_BODY)
            got = conn.read_until(lambda progress: progress.status is not None, timeout=self.launcher.timeouts.hold)
        if isinstance(got, client.Progress):
            return f"a response ({got.status}) before the body was complete; left"
        return f"left part way through the body ({client.describe(got)} before)"

    def websockets(self, process: ServerProcess, run: CheckerRun) -> None:
        timeout = self.launcher.timeouts.request
        address = process.address
        assert address is not None
        templates = [t.replace("{code}", str(WS_CLOSE_CODE)) for t in PATHS[run.framework]["websocket"]]
        for template in [*templates, "/chk-unknown-ws/{token}"]:
            path = template.replace("{token}", secrets.token_hex(6))
            with WebSocket(address, timeout) as ws:
                outcome = ws.handshake(path)
                shown = type(outcome).__name__.lower()
                if isinstance(outcome, Accepted):
                    event = ws.receive()
                    shown += f", then {type(event).__name__}"
                    if isinstance(event, CloseFrame):
                        shown += f" {event.code}"
                    else:
                        ws.close()
            run.driven.append(f"WS {mask(path)}: {shown}")
            run.paths.append(path)

    def wait_for_connections(self, process: ServerProcess, run: CheckerRun) -> None:
        """Wait until each driven connection has ended in the app (its connection record),
        each within an event deadline of its own: on a loaded machine the first one also
        pays for the framework's import inside the server."""
        stream = checker.stream(f"fw-{run.framework}")
        for line, path in zip(run.driven, run.paths, strict=True):

            def ended(r: dict[str, Any], path: str = path) -> bool:
                return r.get("kind") == "connection" and r.get("path") == path

            if process.journal.wait_for(stream, ended, self.launcher.timeouts.event) is None:
                run.missing.append(line)


@pytest.fixture(scope="session")
def checker_runs(session_launcher: Launcher, target: Target) -> CheckerRuns:
    """The checker's records per framework, for this target (one dedicated run each)."""
    return CheckerRuns(session_launcher)


def judge(runs: CheckerRuns, framework: str, rule: checker.Rule) -> None:
    run = runs.get(framework)
    if run.unsupported is not None:
        unsupported(run.unsupported)
    for line in run.driven:
        note(line)
    if run.missing:
        note(f"no end of connection recorded (yet) for: {'; '.join(run.missing)}")
    counts = {
        kind: sum(1 for c in run.connections if c.get("type") == kind) for kind in ("http", "websocket", "lifespan")
    }
    exercised = {kind: counts[kind] for kind in rule.kinds}
    if not any(exercised.values()):
        unsupported(f"no {'/'.join(rule.kinds)} connection reached the {framework} app on this target")
    found = sorted(
        {
            f"{v.get('type')} {mask(v.get('path')) if v.get('path') is not None else ''}: {mask(v.get('detail'))}"
            for v in run.violations
            if v.get("rule") == rule.id
        }
    )
    if found:
        shown = found[:MAX_SHOWN] + ([f"... and {len(found) - MAX_SHOWN} more"] if len(found) > MAX_SHOWN else [])
        fail(
            f"{framework} broke {rule.id} ({rule.level}: {rule.spec})",
            expected=rule.title,
            observed=shown,
        )
    record({"violations": 0, "connections": exercised})


def _case(framework: str, rule: checker.Rule) -> Callable[..., None]:
    @scenario(
        f"chk.{framework}.{rule.name}",
        f"{framework}: {rule.title}",
        level=MUST if rule.level == "MUST" else SHOULD,
        spec=rule.spec,
        impact=IMPACT.get(rule.name, "interop"),
        framework=framework,
    )
    def case(target: Target, checker_runs: CheckerRuns) -> None:
        judge(checker_runs, framework, rule)

    case.__name__ = case.__qualname__ = f"test_chk_{framework}_{rule.name}"
    case.__doc__ = f"The checker's rule {rule.id} ({rule.level}; {rule.spec}) on the {framework} app."
    return case


for _rule in checker.RULES.values():
    for _framework in frameworks_for(_rule):
        _test = _case(_framework, _rule)
        globals()[_test.__name__] = _test
