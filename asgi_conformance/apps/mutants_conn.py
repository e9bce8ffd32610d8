"""Mutants for the scenarios of this area (registered with mutants.mutant). Standard library only."""

from __future__ import annotations

__all__: list[str] = []
