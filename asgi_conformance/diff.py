"""Differences between two results documents: which cells changed, regressions first.

Cells are keyed by ``(target, scenario)``. A verdict's severity orders it:
``pass`` / ``info`` / ``unsupported`` < ``warn`` < ``fail`` / ``error`` (an unknown verdict
counts as the worst). Between an old and a new document a cell is

``regression``   its verdict got worse, or it passed (``pass`` or ``info``) and is gone
``improvement``  its verdict got better
``changed``      same severity, but a different verdict or a different observed value
``added``        present only in the new document
``removed``      present only in the old document (and did not pass there)

Everything shown in the terminal came from a target: :func:`format_text` prints it with
control characters escaped, so a target cannot drive the terminal.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["KINDS", "SEVERITY", "Change", "compute", "format_text", "has_regressions", "severity"]

KINDS = ("regression", "improvement", "changed", "added", "removed")
SEVERITY: dict[str, int] = {"pass": 0, "info": 0, "unsupported": 0, "warn": 1, "fail": 2, "error": 2}
PASSED = frozenset({"pass", "info"})
TEXT_VALUE_CHARS = 60

_MISSING = object()


@dataclass(frozen=True)
class Change:
    target: str
    scenario: str
    kind: str  # "regression" | "improvement" | "changed" | "added" | "removed"
    old_verdict: str | None
    new_verdict: str | None
    old_observed: Any
    new_observed: Any


def severity(verdict: str | None) -> int:
    """0 (fine), 1 (a SHOULD not met), 2 (broken or not judged); unknown verdicts count as 2."""
    return SEVERITY.get(str(verdict), 2)


def _cells(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for cell in document.get("results") or []:
        if isinstance(cell, dict) and "target" in cell and "scenario" in cell:
            cells[(str(cell["target"]), str(cell["scenario"]))] = cell
    return cells


def _target_order(*documents: dict[str, Any]) -> dict[str, int]:
    order: dict[str, int] = {}
    for document in documents:
        for target in document.get("targets") or []:
            if isinstance(target, dict) and "id" in target:
                order.setdefault(str(target["id"]), len(order))
    return order


def _kind(old: dict[str, Any] | None, new: dict[str, Any] | None) -> str | None:
    if old is None and new is None:
        return None
    if old is None:
        return "added"
    if new is None:
        return "regression" if old.get("verdict") in PASSED else "removed"
    before, after = severity(old.get("verdict")), severity(new.get("verdict"))
    if after > before:
        return "regression"
    if after < before:
        return "improvement"
    if old.get("verdict") != new.get("verdict") or old.get("observed", _MISSING) != new.get("observed", _MISSING):
        return "changed"
    return None


def compute(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Every cell whose verdict or observed value differs, regressions first, then by target and scenario."""
    before, after = _cells(old), _cells(new)
    changes: list[Change] = []
    for key in before.keys() | after.keys():
        was, now = before.get(key), after.get(key)
        kind = _kind(was, now)
        if kind is None:
            continue
        changes.append(
            Change(
                target=key[0],
                scenario=key[1],
                kind=kind,
                old_verdict=None if was is None else was.get("verdict"),
                new_verdict=None if now is None else now.get("verdict"),
                old_observed=None if was is None else was.get("observed"),
                new_observed=None if now is None else now.get("observed"),
            )
        )
    order = _target_order(new, old)
    rank = {kind: i for i, kind in enumerate(KINDS)}
    changes.sort(key=lambda c: (rank[c.kind], order.get(c.target, len(order)), c.target, c.scenario))
    return changes


def has_regressions(changes: Iterable[Change]) -> bool:
    return any(change.kind == "regression" for change in changes)


def printable(value: Any, limit: int = TEXT_VALUE_CHARS) -> str:
    """One line, control characters escaped, at most ``limit`` characters (target data is untrusted)."""
    text = value if isinstance(value, str) else repr(value)
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        elif ch in "\n\r\t":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
        else:
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}")
    line = "".join(out)
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _describe(change: Change) -> str:
    old = printable(change.old_verdict or "-")
    new = printable(change.new_verdict or "-")
    verdicts = f"{old} -> {new}"
    if change.old_observed != change.new_observed and (
        change.old_observed is not None or change.new_observed is not None
    ):
        return f"{verdicts}  observed {printable(change.old_observed)} -> {printable(change.new_observed)}"
    return verdicts


def format_text(changes: list[Change]) -> str:
    """The terminal listing: a summary line, then one line per change (in the given order)."""
    if not changes:
        return "no changes\n"
    counts = {kind: sum(1 for c in changes if c.kind == kind) for kind in KINDS}
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.items() if n)
    rows = [(c.kind.upper(), printable(c.target, 40), printable(c.scenario, 80), _describe(c)) for c in changes]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"{len(changes)} changed cell{'s' if len(changes) != 1 else ''}: {summary}"]
    for row in rows:
        lines.append("  ".join(part.ljust(widths[i]) for i, part in enumerate(row[:3])) + "  " + row[3])
    return "\n".join(lines) + "\n"
