"""The differential view: for each wire payload, what each target did, side by side.

The wire scenarios (suites/test_wire_h1.py) record a stable, comparable summary per
payload in the cell's observed value: ``variant=summary`` parts joined by `` | ``
("cl.te=400, then closed | te.cl=app saw POST body 44, then follow-up answered").
``build`` splits those into one row per (scenario, variant) and lines the targets up;
rows where targets disagree come first. A cell without an observed value shows its
verdict in parentheses; a target without the cell shows ``-``.

    rows = build(results.load("results.json"))
    print(format_text(rows))
    document["differential"] = to_json(rows)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["PREFIX", "Row", "build", "format_text", "to_json"]

PREFIX = "wire.h1."
MISSING = "-"
_VARIANT = re.compile(r"^([^\s=|]{1,60})=(.*)$", re.S)


@dataclass(frozen=True)
class Row:
    """One payload: the scenario, its variant ("" if the cell has one value), what each target did."""

    scenario: str
    variant: str
    observed: dict[str, str]  # target -> summary, in the run's target order
    verdicts: dict[str, str]  # target -> verdict of the whole cell

    @property
    def disagree(self) -> bool:
        seen = {v for v in self.observed.values() if v != MISSING}
        return len(seen) > 1

    @property
    def label(self) -> str:
        return f"{self.scenario} [{self.variant}]" if self.variant else self.scenario


def _parts(observed: Any) -> list[tuple[str, str]]:
    """``[(variant, summary)]`` from an observed value; one ``("", value)`` if it has no variants."""
    if observed is None:
        return []
    text = observed if isinstance(observed, str) else repr(observed)
    pieces = text.split(" | ")
    matches = [_VARIANT.match(p) for p in pieces]
    if all(m is not None for m in matches):
        return [(m.group(1), m.group(2).strip()) for m in matches if m is not None]
    return [("", text.strip())]


def build(results: dict[str, Any], prefix: str = PREFIX) -> list[Row]:
    """Rows for every cell whose scenario starts with ``prefix``: disagreements first, then by ID."""
    targets = [t["id"] for t in results.get("targets", []) if isinstance(t, dict) and "id" in t]
    cells = [c for c in results.get("results", []) if str(c.get("scenario", "")).startswith(prefix)]
    for cell in cells:
        if cell.get("target") not in targets:
            targets.append(cell["target"])
    table: dict[tuple[str, str], dict[str, str]] = {}
    verdicts: dict[str, dict[str, str]] = {}
    order: dict[tuple[str, str], int] = {}
    for cell in cells:
        scenario, target = cell["scenario"], cell["target"]
        verdicts.setdefault(scenario, {})[target] = str(cell.get("verdict", ""))
        parts = _parts(cell.get("observed"))
        if not parts:
            parts = [("", f"({cell.get('verdict', '?')})")]
        for n, (variant, summary) in enumerate(parts):
            key = (scenario, variant)
            order.setdefault(key, n)
            table.setdefault(key, {})[target] = summary
    rows = []
    for (scenario, variant), by_target in table.items():
        observed = {t: by_target.get(t, MISSING) for t in targets}
        shown = {t: verdicts.get(scenario, {}).get(t, MISSING) for t in targets}
        rows.append(Row(scenario, variant, observed, shown))
    rows.sort(key=lambda r: (not r.disagree, r.scenario, order[(r.scenario, r.variant)], r.variant))
    return rows


def _groups(row: Row) -> list[tuple[str, list[str]]]:
    """Targets grouped by identical summary, largest group first."""
    groups: dict[str, list[str]] = {}
    for target, summary in row.observed.items():
        groups.setdefault(summary, []).append(target)
    return sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))


def format_text(rows: list[Row], width: int = 120, *, agreeing: bool = True) -> str:
    """Plain text for the terminal: each disagreement with targets grouped by what they did;
    then (with ``agreeing``) the payloads all targets handled alike, one line each."""
    if not rows:
        return "differential: no wire cells in these results"
    lines = []
    disagreeing = [r for r in rows if r.disagree]
    alike = [r for r in rows if not r.disagree]
    lines.append(f"differential: {len(disagreeing)} of {len(rows)} wire payloads handled differently across targets")
    for row in disagreeing:
        lines.append(row.label)
        for summary, targets in _groups(row):
            text = f"    {', '.join(targets)}: {summary}"
            lines.append(text if len(text) <= width else text[: width - 3] + "...")
    if alike and agreeing:
        lines.append(f"handled alike by every target ({len(alike)}):")
        for row in alike:
            summary = next((v for v in row.observed.values() if v != MISSING), MISSING)
            text = f"    {row.label}: {summary}"
            lines.append(text if len(text) <= width else text[: width - 3] + "...")
    return "\n".join(lines)


def to_json(rows: list[Row]) -> list[dict[str, Any]]:
    """A JSON-safe list for the results document (key ``differential``)."""
    return [
        {
            "scenario": r.scenario,
            "variant": r.variant,
            "disagree": r.disagree,
            "observed": dict(r.observed),
            "verdicts": dict(r.verdicts),
        }
        for r in rows
    ]
