"""The results JSON: every target × scenario cell of a run, with provenance.

This document is the single source of truth every report is made from. Shape
(``schema`` 1)::

    {"schema": 1,
     "run": {started, duration_s, harness_version, python, platform, pytest, timeout_scale, mutant},
     "targets": [{id, name, version, variant, command, bind, capabilities, source, stop, ...}],
     "scenarios": [{id, title, area, level, spec, requirements, requires}],
     "results": [{target, scenario, verdict, expected?, observed?, message?, duration_s, trace?, log?, rerun}]}

Cells are gathered on the controller from ``report.user_properties`` (so they survive
pytest-xdist); a cell's verdict is settled by its setup, call and teardown reports.
"""

from __future__ import annotations

import datetime
import json
import platform
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from ._version import __version__
from .verdicts import Verdict

__all__ = ["PROPERTY", "SCHEMA_VERSION", "VERDICT_ORDER", "ResultsCollector", "render_value"]

SCHEMA_VERSION = 1
PROPERTY = "asgi_conformance"
VERDICT_ORDER = [v.value for v in Verdict]
MAX_VALUE_CHARS = 2000


def render_value(value: Any) -> Any:
    """A JSON-safe rendering of an observed or expected value: scalars as is, else repr."""
    if value is None or isinstance(value, bool | int | float | str):
        return value if not isinstance(value, str) or len(value) <= MAX_VALUE_CHARS else value[:MAX_VALUE_CHARS]
    text = repr(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + "..."


def settle(phases: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """One cell from its phase payloads: setup decides if it failed; teardown errors win."""
    setup, call, teardown = phases.get("setup"), phases.get("call"), phases.get("teardown")
    if setup is not None and setup.get("verdict") is not None:
        cell = dict(setup)
    elif call is not None:
        cell = dict(call)
    else:
        return None
    if teardown is not None and teardown.get("verdict") == Verdict.ERROR and cell.get("verdict") != Verdict.ERROR:
        cell.update(verdict=Verdict.ERROR.value, message=teardown.get("message"), log=teardown.get("log"))
    # What the cell cost: its setup (a dedicated server, say), call and teardown.
    cell["duration_s"] = round(sum(float(p.get("duration_s") or 0) for p in phases.values()), 4)
    return cell


class ResultsCollector:
    """Registered on the controller only: gathers cells, writes JSON, prints the matrix."""

    def __init__(
        self, config: pytest.Config, json_path: str | None, target_order: Iterable[str], run: dict[str, Any]
    ) -> None:
        self.config = config
        self.run = run
        self.json_path = Path(json_path) if json_path else None
        self.target_order = list(target_order)
        self.started = datetime.datetime.now(datetime.UTC)
        self.t0 = time.monotonic()
        self.phases: dict[str, dict[str, dict[str, Any]]] = {}
        self.targets: dict[str, dict[str, Any]] = {}
        self.scenarios: dict[str, dict[str, Any]] = {}
        self.processes: dict[str, dict[str, Any]] = {}

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, payload in report.user_properties:
            if name == PROPERTY and isinstance(payload, dict):
                self.phases.setdefault(report.nodeid, {})[report.when] = payload
                self.targets.setdefault(payload["target"]["id"], payload["target"])
                self.scenarios.setdefault(payload["scenario"]["id"], payload["scenario"])

    def add_processes(self, described: dict[str, dict[str, Any]]) -> None:
        """Provenance of the shared server per target (bind, command, how it stopped)."""
        self.processes.update(described)

    def cells(self) -> list[dict[str, Any]]:
        cells = []
        for nodeid, phases in self.phases.items():
            cell = settle(phases)
            if cell is not None:
                cell = {k: v for k, v in cell.items() if k not in ("target", "scenario", "phase")}
                cell["nodeid"] = nodeid
                cell["target"] = (phases.get("call") or phases.get("setup") or {}).get("target", {}).get("id")
                cell["scenario"] = (phases.get("call") or phases.get("setup") or {}).get("scenario", {}).get("id")
                cells.append({k: v for k, v in cell.items() if v is not None})
        order = {t: i for i, t in enumerate(self.target_order)}
        cells.sort(key=lambda c: (order.get(c["target"], len(order)), c["target"], c["scenario"]))
        return cells

    def document(self) -> dict[str, Any]:
        order = {t: i for i, t in enumerate(self.target_order)}
        targets = []
        for tid in sorted(self.targets, key=lambda t: (order.get(t, len(order)), t)):
            entry = dict(self.targets[tid])
            entry.update({k: v for k, v in self.processes.get(tid, {}).items() if k != "argv"})
            targets.append(entry)
        return {
            "schema": SCHEMA_VERSION,
            "run": {
                "started": self.started.isoformat(timespec="seconds"),
                "duration_s": round(time.monotonic() - self.t0, 3),
                "harness_version": __version__,
                "python": platform.python_version(),
                "implementation": sys.implementation.name,
                "platform": platform.platform(),
                "pytest": pytest.__version__,
                **self.run,
            },
            "targets": targets,
            "scenarios": [self.scenarios[s] for s in sorted(self.scenarios)],
            "results": self.cells(),
        }

    def counts(self) -> dict[str, dict[str, int]]:
        table: dict[str, dict[str, int]] = {}
        for cell in self.cells():
            row = table.setdefault(cell["target"], dict.fromkeys(VERDICT_ORDER, 0))
            row[cell["verdict"]] = row.get(cell["verdict"], 0) + 1
        return table

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.json_path is None or not self.phases:
            return
        self.json_path.parent.mkdir(parents=True, exist_ok=True)
        self.json_path.write_text(json.dumps(self.document(), indent=1, ensure_ascii=False) + "\n")

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.phases:
            return
        tr = terminalreporter
        counts = self.counts()
        tr.write_sep("=", f"asgi-conformance: {len(self.scenarios)} scenarios x {len(counts)} targets")
        width = max([len("target"), *(len(t) for t in counts)])
        head = f"{'target':<{width}}  {'version':<10}" + "".join(f"{v:>12}" for v in VERDICT_ORDER)
        tr.write_line(head)
        for tid in sorted(counts, key=lambda t: (self.target_order.index(t) if t in self.target_order else 99, t)):
            version = str(self.targets.get(tid, {}).get("version") or "-")
            row = counts[tid]
            line = f"{tid:<{width}}  {version:<10}" + "".join(f"{row.get(v, 0):>12}" for v in VERDICT_ORDER)
            markup = {"red": True} if row.get("fail") or row.get("error") else {"green": True}
            tr.write_line(line, **markup)
        warned = [c for c in self.cells() if c["verdict"] == Verdict.WARN]
        if warned and self.config.get_verbosity() >= 0:
            tr.write_line(f"warn (a SHOULD not met): {len(warned)} cells", yellow=True)
            for cell in warned[:40]:
                tr.write_line(f"  {cell['target']:<{width}}  {cell['scenario']}: {cell.get('message', '')}")
            if len(warned) > 40:
                tr.write_line(f"  ... and {len(warned) - 40} more (see the results JSON)")
        if self.json_path is not None:
            tr.write_line(f"results: {self.json_path}")
