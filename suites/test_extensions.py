"""Conformance cases: extensions."""

from __future__ import annotations
