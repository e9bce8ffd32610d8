"""asgi-conformance: a conformance suite and harness for ASGI servers.

The public API for writing scenarios::

    from asgi_conformance import MUST, Server, expect, scenario

Importing this package is cheap and imports nothing from pytest: server processes
import ``asgi_conformance.apps.serve`` under it, and the apps must stay free of the
test tooling. The names below load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .client import Outcome
    from .process import ServerProcess
    from .scenarios import Scenario, scenario
    from .server import Echo, Launcher, Server
    from .targets import Target
    from .verdicts import Level, Verdict, check, expect, fail, note, record, same, unsupported

__all__ = [
    "INFO",
    "MAY",
    "MUST",
    "SHOULD",
    "Echo",
    "Launcher",
    "Level",
    "Outcome",
    "Scenario",
    "Server",
    "ServerProcess",
    "Target",
    "Verdict",
    "__version__",
    "check",
    "expect",
    "fail",
    "note",
    "record",
    "same",
    "scenario",
    "unsupported",
]

_WHERE = {
    "Outcome": "client",
    "ServerProcess": "process",
    "Scenario": "scenarios",
    "scenario": "scenarios",
    "Echo": "server",
    "Launcher": "server",
    "Server": "server",
    "Target": "targets",
    "Level": "verdicts",
    "Verdict": "verdicts",
    "check": "verdicts",
    "expect": "verdicts",
    "fail": "verdicts",
    "note": "verdicts",
    "record": "verdicts",
    "same": "verdicts",
    "unsupported": "verdicts",
}
_LEVELS = {"MUST", "SHOULD", "MAY", "INFO"}


def __getattr__(name: str) -> Any:
    if name in _LEVELS:
        return getattr(importlib.import_module(".verdicts", __name__).Level, name)
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'asgi_conformance' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


if TYPE_CHECKING:
    MUST = Level.MUST
    SHOULD = Level.SHOULD
    MAY = Level.MAY
    INFO = Level.INFO
