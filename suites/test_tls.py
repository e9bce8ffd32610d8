"""Conformance cases: tls."""

from __future__ import annotations
