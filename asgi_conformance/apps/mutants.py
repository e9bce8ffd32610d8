"""Mutants: middlewares that make a correct server break exactly one rule.

A conformance case that cannot fail proves nothing. Each mutant sits between the
server and the catalogue app and imitates one server bug (a mangled scope value, an
ignored ``lifespan.startup.failed``, a shared state dict, ...). The harness's own
tests run a real server with ``ASGI_CONFORMANCE_MUTANT=<name>`` (the pytest option
``--conformance-mutant``) and check that every scenario the mutant names now fails.

Runs inside the server: standard library only.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .catalogue import CONTROL_PREFIX

__all__ = ["ENV", "MUTANTS", "Mutant", "wrap_from_environment"]

ENV = "ASGI_CONFORMANCE_MUTANT"

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]
Wrapper = Callable[[App], App]


@dataclass(frozen=True)
class Mutant:
    """One deliberate bug and the scenarios that must catch it."""

    name: str
    bug: str
    scenarios: tuple[str, ...]
    wrap: Wrapper
    reference: str = "uvicorn-h11"
    """A target on which the scenarios pass without the mutant (the harness tests use it)."""


MUTANTS: dict[str, Mutant] = {}


def mutant(name: str, bug: str, *scenarios: str, reference: str = "uvicorn-h11") -> Callable[[Wrapper], Wrapper]:
    """Register ``wrap`` as mutant ``name``: it imitates ``bug``, which ``scenarios`` must catch."""

    def register(wrap: Wrapper) -> Wrapper:
        if name in MUTANTS:
            raise ValueError(f"duplicate mutant {name!r}")
        MUTANTS[name] = Mutant(name, bug, scenarios, wrap, reference)
        return wrap

    return register


def wrap_from_environment(app: App) -> App:
    name = os.environ.get(ENV)
    if not name:
        return app
    _load_all()
    if name not in MUTANTS:
        raise RuntimeError(f"asgi-conformance: unknown mutant {name!r}")
    mutated = MUTANTS[name].wrap(app)

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        # The harness's control paths (readiness, the lifespan stash) stay intact: a
        # mutant imitates a bug the scenario app sees, not a broken harness.
        path = scope.get("path")
        if scope.get("type") == "http" and isinstance(path, str) and path.startswith(CONTROL_PREFIX):
            await app(scope, receive, send)
        else:
            await mutated(scope, receive, send)

    return guarded


def _load_all() -> None:
    """Import the modules that define mutants (they register on import)."""
    from . import (  # noqa: F401
        mutants_conn,
        mutants_errors,
        mutants_http,
        mutants_lifespan,
        mutants_request,
        mutants_response,
        mutants_websocket,
    )


# Building blocks --------------------------------------------------------------------


def copy_scope(scope: Scope) -> Scope:
    """A copy a mutant may change without touching the server's own objects."""
    copied = dict(scope)
    for key in ("asgi", "extensions", "state"):
        if isinstance(copied.get(key), dict):
            copied[key] = dict(copied[key])
    if isinstance(copied.get("headers"), list | tuple):
        copied["headers"] = list(copied["headers"])
    return copied


def scope_mutant(change: Callable[[Scope], Scope | None], *types: str) -> Wrapper:
    """Wrap an app so scopes of the given types are changed before the app sees them."""
    kinds = types or ("http",)

    def wrap(app: App) -> App:
        async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
            if scope.get("type") in kinds:
                scope = copy_scope(scope)
                scope = change(scope) or scope
            await app(scope, receive, send)

        return mutated

    return wrap
