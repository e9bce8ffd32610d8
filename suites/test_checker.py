"""Conformance cases: checker."""

from __future__ import annotations
