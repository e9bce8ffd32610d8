"""Mutants that break rules of the HTTP connection scope (suites/test_http_scope.py, test_core.py)."""

from __future__ import annotations

from .mutants import mutant, scope_mutant

__all__: list[str] = []

mutant("scope-type-wrong", "http scopes get type 'HTTP'", "http.scope.type")(
    scope_mutant(lambda s: s.update(type="HTTP"))
)
