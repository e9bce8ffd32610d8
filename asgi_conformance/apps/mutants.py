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

__all__ = ["ENV", "FIXERS", "MUTANTS", "Mutant", "fixer", "resolve", "wrap_from_environment"]

ENV = "ASGI_CONFORMANCE_MUTANT"

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[Any]]
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
    base: str | None = None
    """A fixer (see ``fixer``) applied on the reference first, where no real server follows the rule."""
    outer: bool = False
    """With a base: the mutant sits nearer the server than the fixer (it changes what the fixer
    is given, e.g. hides an invalid Host from a validating layer), instead of inside it."""

    @property
    def chain(self) -> str:
        """The ``ASGI_CONFORMANCE_MUTANT`` value that runs this mutant (with its base, if any)."""
        if self.base is None:
            return self.name
        return f"{self.name}+{self.base}" if self.outer else f"{self.base}+{self.name}"


MUTANTS: dict[str, Mutant] = {}
FIXERS: dict[str, Wrapper] = {}
"""Middlewares that make a server follow a rule no real server follows yet (strict event
validation, say), so a mutant that breaks the rule has a passing reference to break."""


def mutant(
    name: str,
    bug: str,
    *scenarios: str,
    reference: str = "uvicorn-h11",
    base: str | None = None,
    outer: bool = False,
) -> Callable[[Wrapper], Wrapper]:
    """Register ``wrap`` as mutant ``name``: it imitates ``bug``, which ``scenarios`` must catch."""

    def register(wrap: Wrapper) -> Wrapper:
        if name in MUTANTS or name in FIXERS:
            raise ValueError(f"duplicate mutant {name!r}")
        MUTANTS[name] = Mutant(name, bug, scenarios, wrap, reference, base, outer)
        return wrap

    return register


def fixer(name: str) -> Callable[[Wrapper], Wrapper]:
    """Register ``wrap`` as fixer ``name``: a base for mutants (``mutant(..., base=name)``)."""

    def register(wrap: Wrapper) -> Wrapper:
        if name in MUTANTS or name in FIXERS:
            raise ValueError(f"duplicate mutant or fixer {name!r}")
        FIXERS[name] = wrap
        return wrap

    return register


def resolve(chain: str) -> list[Wrapper]:
    """The wrappers named by ``chain`` ("name" or "fixer+name"), server side first; KeyError if unknown."""
    _load_all()
    found: list[Wrapper] = []
    for name in chain.split("+"):
        if name in MUTANTS:
            found.append(MUTANTS[name].wrap)
        elif name in FIXERS:
            found.append(FIXERS[name])
        else:
            raise KeyError(name)
    return found


def wrap_from_environment(app: App) -> App:
    chain = os.environ.get(ENV)
    if not chain:
        return app
    try:
        wrappers = resolve(chain)
    except KeyError as exc:
        raise RuntimeError(f"asgi-conformance: unknown mutant {exc.args[0]!r}") from None
    mutated = app
    for wrap in reversed(wrappers):  # the first name ends up outermost: nearest the server
        mutated = wrap(mutated)

    async def guarded(scope: Scope, receive: Receive, send: Send) -> Any:
        # The harness's control paths (readiness, the lifespan stash) stay intact: a
        # mutant imitates a bug the scenario app sees, not a broken harness.
        path = scope.get("path")
        if scope.get("type") == "http" and isinstance(path, str) and path.startswith(CONTROL_PREFIX):
            await app(scope, receive, send)
        else:
            return await mutated(scope, receive, send)
        return None

    return guarded


def _load_all() -> None:
    """Import the modules that define mutants (they register on import)."""
    from . import (  # noqa: F401
        mutants_checker,
        mutants_conn,
        mutants_core,
        mutants_errors,
        mutants_extensions,
        mutants_framework,
        mutants_h2,
        mutants_http,
        mutants_lifespan,
        mutants_request,
        mutants_response,
        mutants_tls,
        mutants_websocket,
        mutants_wire,
        mutants_wire_ws,
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


def send_mutant(change: Callable[[Scope, Message, Send], Awaitable[None]], *types: str) -> Wrapper:
    """Wrap an app so, for scopes of the given types, each event it sends goes through
    ``change(scope, message, send)``, which decides what (if anything) reaches the server."""
    kinds = types or ("http",)

    def wrap(app: App) -> App:
        async def mutated(scope: Scope, receive: Receive, send: Send) -> Any:
            if scope.get("type") not in kinds:
                return await app(scope, receive, send)

            async def changed(message: Message) -> None:
                await change(scope, message, send)

            return await app(scope, receive, changed)

        return mutated

    return wrap
