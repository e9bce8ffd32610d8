"""Shared helpers for the harness's own tests."""

from __future__ import annotations

import json
import os
import shlex
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHAOS = Path(__file__).parent / "chaos"
RUN_ENV = "ASGI_CONFORMANCE_TEST_RUN"
PYTHON = sys.executable


def processes_tagged(token: str) -> list[int]:
    """PIDs of live processes whose environment carries ``token`` (the orphan check)."""
    found = []
    needle = f"{RUN_ENV}={token}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = next(
                (line for line in (entry / "status").read_text().splitlines() if line.startswith("State:")), ""
            )
        except OSError:
            continue
        if needle in environ.split(b"\0") and "zombie" not in state:
            found.append(int(entry.name))
    return found


@pytest.fixture
def run_token(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Tag every process started by this test; fail it if any is alive afterwards."""
    token = uuid.uuid4().hex
    monkeypatch.setenv(RUN_ENV, token)
    yield token
    left = processes_tagged(token)
    assert not left, f"processes left behind: {left}"


def load_results(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def verdicts(results: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(r["target"], r["scenario"]): r["verdict"] for r in results["results"]}


def chaos_cmd(script: str, *args: str) -> str:
    return shlex.join([PYTHON, str(CHAOS / script), *args])
