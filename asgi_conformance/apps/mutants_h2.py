"""Mutants for the h2 scenarios."""

from __future__ import annotations
