"""The results JSON: every target × scenario cell of a run, with provenance.

This document is the single source of truth every report is made from. Shape
(``schema`` 1, described property by property in ``results.schema.json``)::

    {"schema": 1,
     "run": {started, duration_s, harness_version, python, platform, pytest, timeout_scale, mutant,
             merged?, sources?},
     "targets": [{id, name, version, variant, command, bind, capabilities, source, stop, ...}],
     "scenarios": [{id, title, area, level, spec, requirements, requires, impact}],
     "results": [{target, scenario, verdict, expected?, observed?, message?, notes?, duration_s, trace?, log?,
                  rerun, baseline?}]}

Keys may be added within a schema version (readers ignore unknown keys); an incompatible
change of shape makes a new version, and :func:`load` refuses versions it does not read.

Cells are gathered on the controller from ``report.user_properties`` (so they survive
pytest-xdist); a cell's verdict is settled by its setup, call and teardown reports.
"""

from __future__ import annotations

import datetime
import importlib
import json
import platform
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from . import differential, framework_view
from ._version import __version__
from .verdicts import Verdict

__all__ = [
    "PROPERTY",
    "SCHEMA_PATH",
    "SCHEMA_VERSION",
    "VERDICT_ORDER",
    "ResultsCollector",
    "ResultsError",
    "load",
    "render_value",
    "validate",
]

SCHEMA_VERSION = 1
PROPERTY = "asgi_conformance"
VERDICT_ORDER = [v.value for v in Verdict]
_FAILING = ("fail", "warn", "error")
MAX_VALUE_CHARS = 2000
SCHEMA_PATH = Path(__file__).with_name("results.schema.json")


class ResultsError(Exception):
    """A results file cannot be used (one line, names the file)."""


def _schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return loaded


def validate(data: Any, source: str = "results") -> dict[str, Any]:
    """Check a results document against the schema; problems raise a one-line ResultsError.

    The schema version is checked first (a document of another version is refused as a
    whole). Full validation uses jsonschema when it is installed (the ``test`` extra);
    without it the top-level shape and every cell's keys are checked by hand.
    """
    if not isinstance(data, dict):
        raise ResultsError(f"{source}: not a results document (a JSON object with schema, run, targets, ...)")
    version = data.get("schema")
    if version != SCHEMA_VERSION:
        raise ResultsError(
            f"{source}: results schema {version!r}; this asgi-conformance {__version__} reads schema {SCHEMA_VERSION}"
        )
    try:
        import jsonschema
    except ImportError:
        problems = _shape_problems(data)
    else:
        validator = jsonschema.Draft202012Validator(_schema())
        problems = [
            f"{'/'.join(str(p) for p in error.absolute_path) or '(top)'}: {error.message[:160]}"
            for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
        ]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ResultsError(f"{source}: does not match the results schema: {problems[0]}{more}")
    return data


def _shape_problems(data: dict[str, Any]) -> list[str]:
    problems = [
        f"(top): {key!r} is a required property"
        for key in ("run", "targets", "scenarios", "results")
        if key not in data
    ]
    if problems:
        return problems
    if not isinstance(data["run"], dict):
        problems.append("run: is not an object")
    for key, required in (
        ("targets", ("id",)),
        ("scenarios", ("id", "level")),
        ("results", ("target", "scenario", "verdict")),
    ):
        items = data[key]
        if not isinstance(items, list):
            problems.append(f"{key}: is not an array")
            continue
        for n, item in enumerate(items):
            missing = [k for k in required if not isinstance(item, dict) or k not in item]
            if missing:
                problems.append(f"{key}/{n}: {missing[0]!r} is a required property")
            elif key == "results" and item["verdict"] not in VERDICT_ORDER:
                problems.append(f"results/{n}/verdict: {item['verdict']!r} is not one of {VERDICT_ORDER}")
    return problems


def load(path: str | Path) -> dict[str, Any]:
    """Read and validate a results JSON file (one-line ResultsError if it cannot be used)."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: cannot read: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: not JSON ({exc})") from None
    return validate(data, str(path))


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
        self,
        config: pytest.Config,
        json_path: str | None,
        target_order: Iterable[str],
        run: dict[str, Any],
        html_path: str | None = None,
    ) -> None:
        self.config = config
        self.run = run
        self.json_path = Path(json_path) if json_path else None
        self.html_path = Path(html_path) if html_path else None
        # Called with the finished document at session end (e.g. --baseline-update).
        self.finishers: list[Callable[[dict[str, Any]], str | None]] = []
        self.finished: list[str] = []
        self.target_order = list(target_order)
        self.started = datetime.datetime.now(datetime.UTC)
        self.t0 = time.monotonic()
        self.phases: dict[str, dict[str, dict[str, Any]]] = {}
        self.targets: dict[str, dict[str, Any]] = {}
        self.scenarios: dict[str, dict[str, Any]] = {}
        self.processes: dict[str, dict[str, Any]] = {}
        self.nodeids: dict[str, str] = {}

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, payload in report.user_properties:
            if name == PROPERTY and isinstance(payload, dict):
                # Keyed by cell, not node ID: the catalogue run from outside the rootdir gives
                # node IDs without the file ("::test_scope_type[uvicorn]"), so names may repeat.
                key = f"{payload['target']['id']}\0{payload['scenario']['id']}"
                self.phases.setdefault(key, {})[report.when] = payload
                self.nodeids[key] = report.nodeid
                self.targets.setdefault(payload["target"]["id"], payload["target"])
                self.scenarios.setdefault(payload["scenario"]["id"], payload["scenario"])

    def add_processes(self, described: dict[str, dict[str, Any]]) -> None:
        """Provenance of the shared server per target (bind, command, how it stopped)."""
        self.processes.update(described)

    def cells(self) -> list[dict[str, Any]]:
        cells = []
        for key, phases in self.phases.items():
            cell = settle(phases)
            if cell is not None:
                cell = {k: v for k, v in cell.items() if k not in ("target", "scenario", "phase")}
                cell["nodeid"] = self.nodeids.get(key)
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
        document = {
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
        rows = differential.build(document)
        if rows:
            document["differential"] = differential.to_json(rows)
        grids = framework_view.build(document)
        if grids:
            document["frameworks"] = framework_view.to_json(grids)
        return document

    def security_failures(self) -> dict[str, int]:
        """Failed cells per target whose scenario's impact is ``security`` (the summary's last column)."""
        found: dict[str, int] = {}
        for cell in self.cells():
            if cell["verdict"] == Verdict.FAIL and self.scenarios.get(cell["scenario"], {}).get("impact") == "security":
                found[cell["target"]] = found.get(cell["target"], 0) + 1
        return found

    def counts(self) -> dict[str, dict[str, int]]:
        table: dict[str, dict[str, int]] = {}
        for cell in self.cells():
            row = table.setdefault(cell["target"], dict.fromkeys(VERDICT_ORDER, 0))
            row[cell["verdict"]] = row.get(cell["verdict"], 0) + 1
        return table

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not self.phases:
            return
        document = self.document()
        if self.json_path is not None:
            self.json_path.parent.mkdir(parents=True, exist_ok=True)
            self.json_path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
        if self.html_path is not None:
            # The renderer (asgi_conformance.report) is imported only when a report is asked for.
            report = importlib.import_module(f"{__package__}.report")
            self.html_path.parent.mkdir(parents=True, exist_ok=True)
            report.write_html(document, self.html_path)
        for finish in self.finishers:
            line = finish(document)
            if line:
                self.finished.append(line)

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.phases:
            return
        tr = terminalreporter
        counts = self.counts()
        tr.write_sep("=", f"asgi-conformance: {len(self.scenarios)} scenarios x {len(counts)} targets")
        width = max([len("target"), *(len(t) for t in counts)])
        head = f"{'target':<{width}}  {'version':<10}" + "".join(f"{v:>12}" for v in VERDICT_ORDER)
        tr.write_line(head + f"{'security':>12}")
        security = self.security_failures()
        for tid in sorted(counts, key=lambda t: (self.target_order.index(t) if t in self.target_order else 99, t)):
            version = str(self.targets.get(tid, {}).get("version") or "-")
            row = counts[tid]
            line = f"{tid:<{width}}  {version:<10}" + "".join(f"{row.get(v, 0):>12}" for v in VERDICT_ORDER)
            line += f"{security.get(tid, 0):>12}"
            markup = {"red": True} if row.get("fail") or row.get("error") else {"green": True}
            tr.write_line(line, **markup)
        warned = [c for c in self.cells() if c["verdict"] == Verdict.WARN]
        if warned and self.config.get_verbosity() >= 0:
            tr.write_line(f"warn (a SHOULD not met): {len(warned)} cells", yellow=True)
            for cell in warned[:40]:
                tr.write_line(f"  {cell['target']:<{width}}  {cell['scenario']}: {cell.get('message', '')}")
            if len(warned) > 40:
                tr.write_line(f"  ... and {len(warned) - 40} more (see the results JSON)")
        known = [c for c in self.cells() if c.get("baseline") in ("known", "flaky") and c["verdict"] in _FAILING]
        stale = [c for c in self.cells() if c.get("baseline") == "stale"]
        if known or stale:
            tr.write_line(f"baseline: {len(known)} known failures expected (xfailed), {len(stale)} stale entries")
            for cell in stale:
                tr.write_line(f"  STALE {cell['target']:<{width}}  {cell['scenario']}: now {cell['verdict']}", red=True)
        if len(counts) > 1 and self.config.get_verbosity() >= 0:
            rows = differential.build(self.document())
            if rows:
                tr.write_sep("-", "differential view (wire payloads; -v also lists those handled alike)")
                text = differential.format_text(rows, agreeing=self.config.get_verbosity() > 0)
                for line in text.splitlines():
                    tr.write_line(line)
        grids = framework_view.build(self.document())
        if grids and self.config.get_verbosity() >= 0:
            tr.write_sep("-", "frameworks x servers (key behaviours; the checker's rules broken)")
            for line in framework_view.format_text(grids).splitlines():
                tr.write_line(line)
        if self.json_path is not None:
            tr.write_line(f"results: {self.json_path}")
        if self.html_path is not None:
            tr.write_line(f"report: {self.html_path}")
        for line in self.finished:
            tr.write_line(line)
