"""Conformance cases: wire_h2."""

from __future__ import annotations
