"""Mutants for the checker scenarios."""

from __future__ import annotations
