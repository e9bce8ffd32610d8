"""Mutants for the tls scenarios."""

from __future__ import annotations
