"""Scenario apps for tls_apps (filled in by its issue)."""

from __future__ import annotations
