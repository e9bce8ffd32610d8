"""Dedicated runs started ahead of the case that reads them (asgi_conformance.dedicated)."""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from asgi_conformance import dedicated
from asgi_conformance.server import Launcher
from asgi_conformance.targets import BUILTIN_TARGETS
from asgi_conformance.timing import Timeouts
from asgi_conformance.verdicts import Cell, activate, deactivate, note

WAIT = 10.0


def _launcher(tmp_path: Path) -> Launcher:
    return Launcher(BUILTIN_TARGETS["uvicorn"], tmp_path, Timeouts(), "port", {})


def test_without_start_the_fixture_observes_itself(tmp_path: Path) -> None:
    calls: list[Launcher] = []

    @dedicated.dedicated_run
    def observed_inline(session_launcher: Launcher) -> str:
        calls.append(session_launcher)
        return "seen"

    launcher = _launcher(tmp_path)
    assert observed_inline(launcher) == "seen"
    assert calls == [launcher]


def test_started_runs_once_in_a_thread_and_its_cell_joins_the_first_reader(tmp_path: Path) -> None:
    threads: list[str] = []

    @dedicated.dedicated_run
    def observed_ahead(session_launcher: Launcher) -> str:
        threads.append(threading.current_thread().name)
        note("from the dedicated run")
        return "seen ahead"

    launcher = _launcher(tmp_path)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="pool") as pool:
        submit: Callable[[Callable[[], None]], Any] = pool.submit
        assert dedicated.start(launcher, ["server", "observed_ahead", "observed_ahead"], submit) == 1
        assert dedicated.start(launcher, ["observed_ahead"], submit) == 0  # once per launcher
        cell = Cell()
        token = activate(cell)
        try:
            assert observed_ahead(launcher) == "seen ahead"
        finally:
            deactivate(token)
    assert len(threads) == 1
    assert threads[0].startswith("pool")
    assert "from the dedicated run" in cell.notes


def test_an_exception_reaches_the_fixture(tmp_path: Path) -> None:
    @dedicated.dedicated_run
    def observed_failing(session_launcher: Launcher) -> str:
        raise RuntimeError("the run broke")

    launcher = _launcher(tmp_path)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        dedicated.start(launcher, ["observed_failing"], pool.submit)
    with pytest.raises(RuntimeError, match="the run broke"):
        observed_failing(launcher)


def test_registered_keeps_only_dedicated_runs() -> None:
    @dedicated.dedicated_run
    def observed_listed(session_launcher: Launcher) -> int:
        return 1

    assert dedicated.registered(["server", "observed_listed", "target"]) == ["observed_listed"]
