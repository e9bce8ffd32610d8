"""Conformance cases: framework."""

from __future__ import annotations
