"""Mutants that break lifespan and lifespan state rules (suites/test_lifespan*.py)."""

from __future__ import annotations

__all__: list[str] = []
