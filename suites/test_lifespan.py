"""Lifespan (spec-catalogue §2; lifespan.rst).

Scenarios about failure and shutdown run a dedicated server process whose app
attribute selects a lifespan handler (asgi_conformance.apps.lifespan). A dedicated
run that several scenarios judge is started once per target (session scope).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from asgi_conformance import SHOULD, Launcher, ServerProcess, check, scenario
from asgi_conformance.apps.lifespan import FAILED_MARKER


@dataclass(frozen=True)
class ExitObservation:
    """What a dedicated process did first: exit (with which status) or serve a request."""

    first: str
    exit_status: int | None
    log: str


def _exit_or_serve(launcher: Launcher, app: str) -> tuple[ServerProcess, ExitObservation]:
    process = launcher.start(app, wait_ready=False)
    first = process.wait_exit_or_ready(launcher.timeouts.startup)
    return process, ExitObservation(first, process.exit_status(), process.log_tail(16_000))


@pytest.fixture(scope="session")
def startup_failed_run(session_launcher: Launcher) -> ExitObservation:
    return _exit_or_serve(session_launcher, "startup_failed")[1]


@scenario(
    "ls.startup.failed_exit",
    "after lifespan.startup.failed the server exits without serving, showing the message",
    level=SHOULD,
    spec="ls › Startup Failed",
    requires=("lifespan",),
)
def test_startup_failed_exits(startup_failed_run: ExitObservation) -> None:
    check(
        startup_failed_run.first == "exited",
        "the server went on after lifespan.startup.failed",
        expected="the process exits without serving",
        observed="it answered a request" if startup_failed_run.first == "ready" else "still running at the deadline",
    )
    check(
        FAILED_MARKER in startup_failed_run.log,
        "the failure message is not in the server's output",
        expected=f"log contains {FAILED_MARKER!r}",
        observed=startup_failed_run.log[-500:],
    )
