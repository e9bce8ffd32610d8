"""Levels, verdicts, and the calls a scenario uses to judge what it observed.

A scenario judges by calling ``expect`` / ``check`` / ``fail`` (which raise
``ScenarioFailed``), ``unsupported`` (which skips) and ``record`` (which stores the
observed value for ``info`` cells). The plugin turns the outcome into a verdict:

===============  ==================================================  =================
verdict          meaning                                             pytest outcome
===============  ==================================================  =================
``pass``         every checked rule held                             passed
``fail``         a MUST was broken                                   failed
``warn``         a SHOULD was broken (non-strict)                    passed (+ WARN)
``info``         behaviour the spec leaves open; observed is the     passed (+ INFO)
                 cell value
``unsupported``  an optional feature the target does not offer       skipped
``error``        the harness could not judge (crash, hang, no start) error
===============  ==================================================  =================
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NoReturn

import pytest

__all__ = [
    "Cell",
    "Level",
    "ScenarioFailed",
    "Unsupported",
    "Verdict",
    "check",
    "current_cell",
    "expect",
    "fail",
    "record",
    "same",
    "unsupported",
]


class Level(StrEnum):
    """How strongly the spec states what a scenario checks."""

    MUST = "MUST"
    SHOULD = "SHOULD"
    MAY = "MAY"
    INFO = "info"


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    INFO = "info"
    UNSUPPORTED = "unsupported"
    ERROR = "error"


_MISSING: Any = object()


class ScenarioFailed(Exception):
    """A checked rule did not hold. ``level`` overrides the scenario's own level."""

    def __init__(
        self, message: str, *, expected: Any = _MISSING, observed: Any = _MISSING, level: Level | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.expected = expected
        self.observed = observed
        self.level = level


class Unsupported(pytest.skip.Exception):  # type: ignore[name-defined,misc]
    """The target does not offer the optional feature this scenario checks."""

    # As pytest does for Skipped: reports show "Unsupported: <reason>", no module path.
    __module__ = "builtins"


@dataclass
class Cell:
    """What one test learned about one target: filled while the test runs."""

    observed: Any = _MISSING
    notes: list[str] = field(default_factory=list)
    trace: list[str] = field(default_factory=list)
    logs: list[tuple[str, Any, int]] = field(default_factory=list)

    @property
    def has_observed(self) -> bool:
        return self.observed is not _MISSING


_CURRENT: contextvars.ContextVar[Cell | None] = contextvars.ContextVar("asgi_conformance_cell", default=None)


def current_cell() -> Cell | None:
    return _CURRENT.get()


def activate(cell: Cell | None) -> contextvars.Token[Cell | None]:
    return _CURRENT.set(cell)


def deactivate(token: contextvars.Token[Cell | None]) -> None:
    _CURRENT.reset(token)


def same(a: Any, b: Any) -> bool:
    """Equality that also compares types: ``b"x" != "x"``, ``1 != True``, ``(1,) != [1]``."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def record(observed: Any) -> None:
    """Store the value this cell shows (the observed behaviour of an ``info`` scenario)."""
    cell = current_cell()
    if cell is not None:
        cell.observed = observed


def note(text: str) -> None:
    """Add a line of context to the cell (shown with failures and in the results)."""
    cell = current_cell()
    if cell is not None:
        cell.notes.append(text)


def fail(message: str, *, expected: Any = _MISSING, observed: Any = _MISSING, level: Level | None = None) -> NoReturn:
    raise ScenarioFailed(message, expected=expected, observed=observed, level=level)


def check(condition: bool, message: str, *, expected: Any, observed: Any, level: Level | None = None) -> None:
    if not condition:
        fail(message, expected=expected, observed=observed, level=level)


def expect(observed: Any, expected: Any, what: str, *, level: Level | None = None) -> None:
    """Fail unless ``observed`` equals ``expected`` in value *and* type."""
    if not same(observed, expected):
        fail(f"{what} differs", expected=expected, observed=observed, level=level)


def unsupported(reason: str) -> NoReturn:
    raise Unsupported(reason)


def is_missing(value: Any) -> bool:
    return value is _MISSING
