"""Session fixtures shared by the suites: dedicated runs that several scenarios judge.

Each starts once per target (pytest caches session fixtures per ``target`` parameter)
and only when a selected scenario asks for it; when cases run side by side, the plugin starts
it in a thread before that scenario's turn (asgi_conformance.dedicated).
"""

from __future__ import annotations

import pytest

from asgi_conformance import Launcher
from asgi_conformance.dedicated import dedicated_run

from .fixtures_framework import *  # noqa: F403  (fixtures of the framework scenarios)
from .fixtures_h2 import *  # noqa: F403  (fixtures of the HTTP/2 scenarios)
from .fixtures_tls import *  # noqa: F403  (fixtures of the TLS scenarios)
from .lifespan_runs import (
    ErrorRun,
    ExitObservation,
    StopRun,
    observe_error_run,
    observe_exit_or_serve,
    observe_stop_run,
)


@pytest.fixture(scope="session")
@dedicated_run
def startup_failed_run(session_launcher: Launcher) -> ExitObservation:
    """The app sends lifespan.startup.failed with a message."""
    return observe_exit_or_serve(session_launcher, "startup_failed")


@pytest.fixture(scope="session")
@dedicated_run
def startup_failed_no_message_run(session_launcher: Launcher) -> ExitObservation:
    """The app sends lifespan.startup.failed without a message."""
    return observe_exit_or_serve(session_launcher, "startup_failed_no_message")


@pytest.fixture(scope="session")
@dedicated_run
def raise_on_scope_run(session_launcher: Launcher) -> ErrorRun:
    """The app raises as soon as it is called with a lifespan scope."""
    return observe_error_run(session_launcher, "raise_on_scope")


@pytest.fixture(scope="session")
@dedicated_run
def raise_after_startup_run(session_launcher: Launcher) -> ErrorRun:
    """The app raises after receiving lifespan.startup."""
    return observe_error_run(session_launcher, "raise_after_startup")


@pytest.fixture(scope="session")
@dedicated_run
def stop_run(session_launcher: Launcher) -> StopRun:
    """A stop with a request in flight and a lifespan cleanup the harness holds open."""
    return observe_stop_run(session_launcher, "stop_probe")
