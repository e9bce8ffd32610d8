"""Scenario apps for h2_apps (filled in by its issue)."""

from __future__ import annotations
