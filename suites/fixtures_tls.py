"""Session fixtures for the tls scenarios (imported by suites/conftest.py)."""

from __future__ import annotations

__all__: list[str] = []
