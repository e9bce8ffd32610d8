"""Scenario apps by name: ``/app/<name>/...`` is served by the app registered as ``name``.

Most cases talk to the echo app; a case that needs the app to behave in a particular
way (stream with gates, raise, return early, send an invalid event) registers a small
ASGI app here under a name and requests ``/app/<name>/<token>``. The same path works
for WebSocket scopes. Modules that register apps are listed in ``MODULES`` and
imported when the catalogue is built. Runs inside the server: standard library only.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["APPS", "MODULES", "PREFIX", "find", "load", "route"]

PREFIX = "/app/"
Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[Any]]

APPS: dict[str, App] = {}
MODULES = (
    "asgi_conformance.apps.http_request",
    "asgi_conformance.apps.http_response",
    "asgi_conformance.apps.http_errors",
    "asgi_conformance.apps.http_conn",
    "asgi_conformance.apps.http_wire",
    "asgi_conformance.apps.websocket",
    "asgi_conformance.apps.wire_ws",
    "asgi_conformance.apps.extensions",
    "asgi_conformance.apps.h2_apps",
    "asgi_conformance.apps.tls_apps",
    "asgi_conformance.apps.frameworks",  # registers fw-<name>; each framework is imported at first use
)


def route(name: str) -> Callable[[App], App]:
    """Register ``app`` as the scenario app served under ``/app/<name>/``."""

    def register(app: App) -> App:
        if name in APPS and APPS[name] is not app:
            raise ValueError(f"duplicate scenario app {name!r}")
        APPS[name] = app
        return app

    return register


def load() -> None:
    for module in MODULES:
        importlib.import_module(module)


def find(path: object) -> tuple[str, App | None] | None:
    """``(name, app)`` for a path under ``/app/`` (app None if unknown); None otherwise."""
    if not isinstance(path, str) or not path.startswith(PREFIX):
        return None
    name = path[len(PREFIX) :].split("/", 1)[0]
    return name, APPS.get(name)
