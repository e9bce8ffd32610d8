"""Mutants for the framework scenarios."""

from __future__ import annotations
