"""The framework × server view: one grid per key behaviour, frameworks down, servers across.

Framework scenarios are named ``fw.<framework>.<behaviour>`` and the app-side checker's
cells ``chk.<framework>.<rule>``; both carry the framework in the results' scenario list
(older results without that key are read from the ID). The view answers the pair question
("does my StreamingResponse stop when the client leaves, under granian?") at a glance: the
HTML report draws it above the matrix, the terminal summary prints it after a run with
``--framework``, and ``asgi-conformance report`` takes it from any results file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["KEY_BEHAVIOURS", "Grid", "build", "format_text", "to_json"]

KEY_BEHAVIOURS: dict[str, str] = {
    "stream_disconnect": "a streaming response stops when the client disconnects",
    "lifespan_state": "lifespan handlers run and their state reaches requests",
    "websocket_close": "a WebSocket closes with the code and reason asked for",
    "root_path": "a mounted app honours root_path",
    "exception": "an unhandled error gives a 500 and the server keeps serving",
}
"""The behaviours the issue names, in the order the view shows them."""

CHECKER = "checker"
"""The pseudo-behaviour summing the protocol checker's cells of a pair."""

_PROBLEMS = ("fail", "warn", "error")


@dataclass
class Grid:
    """One behaviour: its cells keyed by (framework, target)."""

    behaviour: str
    title: str
    frameworks: list[str]
    targets: list[str]
    cells: dict[tuple[str, str], Pair] = field(default_factory=dict)


@dataclass(frozen=True)
class Pair:
    """What one framework × server cell says: the verdict, a short reason, the scenario(s)."""

    verdict: str
    summary: str
    scenarios: tuple[str, ...]


def _framework_of(scenario: dict[str, Any]) -> tuple[str, str, str] | None:
    """(kind, framework, behaviour) for an ``fw.*`` or ``chk.*`` scenario, else None."""
    sid = str(scenario.get("id") or "")
    parts = sid.split(".", 2)
    if len(parts) != 3 or parts[0] not in ("fw", "chk"):
        return None
    framework = scenario.get("framework")
    return parts[0], str(framework) if framework else parts[1], parts[2]


def _summary(cell: dict[str, Any]) -> str:
    for key in ("observed", "message"):
        value = cell.get(key)
        if value not in (None, ""):
            text = " ".join(str(value).split())
            return text if len(text) <= 120 else text[:119] + "…"
    return ""


def build(results: dict[str, Any]) -> list[Grid]:
    """The grids for the key behaviours and the checker; empty when no framework ran."""
    scenarios = [s for s in results.get("scenarios") or [] if isinstance(s, dict)]
    described = {str(s.get("id")): s for s in scenarios}
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for cell in results.get("results") or []:
        if isinstance(cell, dict) and cell.get("target") is not None and cell.get("scenario") is not None:
            cells[(str(cell["target"]), str(cell["scenario"]))] = cell
            described.setdefault(str(cell["scenario"]), {"id": str(cell["scenario"])})
    targets = [str(t["id"]) for t in results.get("targets") or [] if isinstance(t, dict) and t.get("id")]
    for target_id, _ in cells:
        if target_id not in targets:
            targets.append(target_id)

    behaviours: dict[str, dict[str, str]] = {}  # behaviour -> framework -> scenario ID
    checker: dict[str, list[str]] = {}  # framework -> chk scenario IDs
    for sid, scenario in described.items():
        parsed = _framework_of(scenario)
        if parsed is None:
            continue
        kind, framework, behaviour = parsed
        if kind == "fw":
            behaviours.setdefault(behaviour, {})[framework] = sid
        else:
            checker.setdefault(framework, []).append(sid)
    frameworks = sorted({f for per in behaviours.values() for f in per} | set(checker))
    if not frameworks:
        return []

    grids: list[Grid] = []
    for behaviour, title in KEY_BEHAVIOURS.items():
        per = behaviours.get(behaviour)
        if not per:
            continue
        grid = Grid(behaviour, title, sorted(per), targets)  # only frameworks that have the behaviour
        for framework, sid in per.items():
            for target in targets:
                cell = cells.get((target, sid))
                if cell is not None:
                    grid.cells[(framework, target)] = Pair(str(cell.get("verdict") or "?"), _summary(cell), (sid,))
        grids.append(grid)
    if checker:
        grid = Grid(CHECKER, "the app-side protocol checker: rules broken (of those judged)", frameworks, targets)
        for framework, sids in checker.items():
            for target in targets:
                judged = [(sid, cells[(target, sid)]) for sid in sorted(sids) if (target, sid) in cells]
                if not judged:
                    continue
                broken = [(sid, c) for sid, c in judged if c.get("verdict") in _PROBLEMS]
                verdicts = {str(c.get("verdict")) for _, c in judged}
                if broken:
                    verdict = "fail" if any(c.get("verdict") in ("fail", "error") for _, c in broken) else "warn"
                    names = ", ".join(sid.split(".", 2)[2] for sid, _ in broken)
                    summary = f"{len(broken)} of {len(judged)} broken: {names}"
                elif verdicts <= {"unsupported"}:
                    verdict, summary = "unsupported", _summary(judged[0][1])
                else:
                    verdict, summary = "pass", f"0 of {len(judged)} broken"
                grid.cells[(framework, target)] = Pair(verdict, summary, tuple(sid for sid, _ in broken or judged))
        grids.append(grid)
    return grids


def format_text(grids: list[Grid], width: int = 12) -> str:
    """The grids as plain-text tables for the terminal."""
    lines: list[str] = []
    width = max([width, *(len(p.verdict) for g in grids for p in g.cells.values())])
    for grid in grids:
        lines.append(f"{grid.behaviour}: {grid.title}")
        head = "  " + "framework".ljust(width) + "".join(t[:width].ljust(width + 1) for t in grid.targets)
        lines.append(head.rstrip())
        for framework in grid.frameworks:
            row = [grid.cells[(framework, t)].verdict if (framework, t) in grid.cells else "-" for t in grid.targets]
            lines.append(("  " + framework[:width].ljust(width) + "".join(v.ljust(width + 1) for v in row)).rstrip())
    return "\n".join(lines)


def to_json(grids: list[Grid]) -> list[dict[str, Any]]:
    """The grids for the results JSON: plain lists, stable order."""
    return [
        {
            "behaviour": g.behaviour,
            "title": g.title,
            "frameworks": g.frameworks,
            "targets": g.targets,
            "cells": [
                {
                    "framework": f,
                    "target": t,
                    "verdict": g.cells[(f, t)].verdict,
                    "summary": g.cells[(f, t)].summary,
                    "scenarios": list(g.cells[(f, t)].scenarios),
                }
                for f in g.frameworks
                for t in g.targets
                if (f, t) in g.cells
            ],
        }
        for g in grids
    ]
