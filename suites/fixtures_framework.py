"""Session fixtures for the framework scenarios (imported by suites/conftest.py)."""

from __future__ import annotations

__all__: list[str] = []
