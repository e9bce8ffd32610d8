"""Scenario apps for extensions (filled in by its issue)."""

from __future__ import annotations
