"""Scenario apps for suites/test_http_conn.py (registered with routes.route). Standard library only."""

from __future__ import annotations

__all__: list[str] = []
