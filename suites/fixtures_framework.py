"""Fixtures and helpers of the framework scenarios (suites/test_framework.py).

``dedicated`` starts a framework's app at the top of a dedicated process of the target
(``asgi_conformance.apps.serve:fw_<framework>``, the framework's own lifespan included);
``framework_base`` finds the framework app on a server and turns "this framework cannot
run here" (an asyncio-only framework under trio, say) into an ``unsupported`` cell, judged
from what the app reports, never from the target's name.

The request paths each framework app serves are listed in
``asgi_conformance.apps.frameworks.PATHS`` (re-exported here as ``FRAMEWORK_PATHS``), for
other suites that drive the framework routes (the checker's ``chk.<framework>.*``).
"""

from __future__ import annotations

import json
from typing import Any

from asgi_conformance import Launcher, Server, client, fail, unsupported
from asgi_conformance.apps.frameworks import PATHS, ROOT_PATH, route_name
from asgi_conformance.process import TargetStartError
from asgi_conformance.verdicts import Level

__all__ = ["FRAMEWORK_PATHS", "ROOT_PATH", "dedicated", "framework_base", "json_of", "unsupported_if"]

FRAMEWORK_PATHS = PATHS
_PROBED: dict[tuple[int, str, str], client.Outcome] = {}


def json_of(outcome: client.Outcome) -> Any:
    """The JSON body of a response, or None."""
    if not isinstance(outcome, client.Response):
        return None
    try:
        return json.loads(outcome.body)
    except ValueError:
        return None


def unsupported_if(outcome: client.Outcome) -> None:
    """A framework app's ``501 {"unsupported": why}`` becomes an unsupported cell."""
    if isinstance(outcome, client.Response) and outcome.status == 501:
        data = json_of(outcome)
        if isinstance(data, dict) and isinstance(data.get("unsupported"), str):
            unsupported(data["unsupported"])


def framework_base(server: Server, framework: str, base: str | None = None) -> str:
    """The path prefix of ``framework``'s app on ``server`` (``/app/fw-<name>`` by default),
    after one ``GET <base>/info`` per server process: unsupported if the app says it
    cannot run there, a failed MUST if it does not answer."""
    base = routes_base(framework) if base is None else base
    key = (id(server.process), framework, base)
    if key not in _PROBED:
        _PROBED[key] = server.request("GET", f"{base}/info")
    outcome = _PROBED[key]
    unsupported_if(outcome)
    info = json_of(outcome)
    if not (isinstance(outcome, client.Response) and outcome.status == 200 and isinstance(info, dict)):
        del _PROBED[key]
        fail(
            f"the {framework} app did not answer {base}/info",
            expected="200 with the framework's name and version",
            observed=client.describe(outcome)
            + (f": {outcome.body[:300]!r}" if isinstance(outcome, client.Response) else ""),
            level=Level.MUST,
        )
    return base


def routes_base(framework: str) -> str:
    return f"/app/{route_name(framework)}"


def dedicated(launcher: Launcher, framework: str, root_path: str | None = None) -> Server:
    """The framework's app at the top of a new process of the target (``serve.fw_<framework>``,
    stopped with the test's launcher). A process that does not start is a failed MUST with its
    log: the framework app (its lifespan startup) broke the server's start. Without a root
    path, the app is probed (``GET /info``) for an unsupported answer first."""
    try:
        process = launcher.start(f"fw_{framework}", root_path=root_path)
    except TargetStartError as exc:
        fail(
            f"the target did not start serving the {framework} app",
            expected="ready (the framework's lifespan startup completes)",
            observed=str(exc)[-1500:],
            level=Level.MUST,
        )
    server = Server(launcher.target, process, launcher.timeouts)
    if root_path is None:
        framework_base(server, framework, "")
    return server
