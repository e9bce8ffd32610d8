"""Mutants for the extensions scenarios."""

from __future__ import annotations
