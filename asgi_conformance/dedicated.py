"""Dedicated runs that several cases judge, observed before the first of them asks.

A session fixture of the form ``f(session_launcher) -> observation`` starts a process of the
target on its own (a lifespan app that fails on purpose, a server with a root path), drives it
and returns one frozen observation. pytest computes such a fixture when the first case that
needs it runs, one after another in its loop: against a slow-starting target, half a run.
Decorated with ``dedicated_run``, the plugin starts the observation in a thread as soon as the
target's cases run side by side (``start``), and the fixture then waits for that result; what
the run put in its cell (trace, notes, logs) joins the cell of the case that first asks, as if
pytest had computed it there. Without running ahead, the fixture computes it itself, as before.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import functools
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from .server import Launcher
from .verdicts import Cell, activate, current_cell

__all__ = ["dedicated_run", "registered", "start"]

T = TypeVar("T")
WAIT_S = 600.0
"""How long a fixture waits for its run in a thread (each of the run's own waits is bounded far below)."""

_REGISTRY: dict[str, Callable[[Launcher], Any]] = {}
_STARTED: dict[tuple[int, str], concurrent.futures.Future[tuple[Any, Cell]]] = {}
_LOCK = threading.Lock()


def dedicated_run(observe: Callable[[Launcher], T]) -> Callable[[Launcher], T]:
    """Mark ``observe(session_launcher)`` (a session fixture's body) as one the plugin may start
    early; use it under ``@pytest.fixture(scope="session")``. The fixture's name is the function's."""
    _REGISTRY[observe.__name__] = observe

    @functools.wraps(observe)
    def fixture(session_launcher: Launcher) -> T:
        with _LOCK:
            future = _STARTED.pop((id(session_launcher), observe.__name__), None)
        if future is None:
            return observe(session_launcher)
        value, cell = future.result(timeout=WAIT_S * session_launcher.timeouts.scale)
        mine = current_cell()
        if mine is not None:
            mine.trace.extend(cell.trace)
            mine.notes.extend(cell.notes)
            mine.logs.extend(cell.logs)
        result: T = value
        return result

    return fixture


def registered(names: Iterable[str]) -> list[str]:
    """Those of ``names`` (a case's fixture names) that are dedicated runs, in their order."""
    return [name for name in names if name in _REGISTRY]


def start(
    session_launcher: Launcher,
    names: Iterable[str],
    submit: Callable[[Callable[[], None]], object],
) -> int:
    """Start the named dedicated runs (each once per launcher) through ``submit``, which runs a
    callable in a thread; returns how many it started."""
    started = 0
    for name in dict.fromkeys(registered(names)):
        key = (id(session_launcher), name)
        with _LOCK:
            if key in _STARTED:
                continue
            future: concurrent.futures.Future[tuple[Any, Cell]] = concurrent.futures.Future()
            _STARTED[key] = future
        submit(functools.partial(_observe, _REGISTRY[name], session_launcher, future))
        started += 1
    return started


def _observe(
    observe: Callable[[Launcher], Any],
    session_launcher: Launcher,
    future: concurrent.futures.Future[tuple[Any, Cell]],
) -> None:
    if not future.set_running_or_notify_cancel():
        return
    cell = Cell()

    def run() -> Any:
        activate(cell)
        return observe(session_launcher)

    try:
        future.set_result((contextvars.Context().run(run), cell))
    except BaseException as exc:  # the fixture re-raises it, as pytest would have
        future.set_exception(exc)


def forget(session_launcher: Launcher) -> None:
    """Drop what was started for a launcher that is stopping (its runs are over or cancelled)."""
    with _LOCK:
        for key in [k for k in _STARTED if k[0] == id(session_launcher)]:
            future = _STARTED.pop(key)
            future.cancel()
