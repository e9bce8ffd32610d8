"""Join the results of separate runs (per target, per CI job, per machine) into one matrix.

Targets and scenarios are unioned (the first description of each wins, except that a
target's provenance comes from the input that holds its cells last); a cell (target ×
scenario) may come from one input only, unless ``prefer_last`` lets a later input
replace an earlier one. Inputs must share the schema version. The merged ``run`` keeps
every source run in ``run.sources``.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from . import differential, framework_view
from .results import SCHEMA_VERSION

__all__ = ["MergeError", "merge"]


class MergeError(Exception):
    """The inputs cannot be merged (one line)."""


def merge(inputs: Sequence[tuple[str, dict[str, Any]]], prefer_last: bool = False) -> dict[str, Any]:
    """One results document from ``(name, document)`` pairs, in order (validated documents)."""
    if not inputs:
        raise MergeError("nothing to merge")
    versions = {name: doc.get("schema") for name, doc in inputs}
    if len(set(versions.values())) > 1 or next(iter(versions.values())) != SCHEMA_VERSION:
        listed = ", ".join(f"{name}: {v!r}" for name, v in versions.items())
        raise MergeError(f"cannot merge results of different schema versions ({listed}); this reads {SCHEMA_VERSION}")
    targets: dict[str, dict[str, Any]] = {}
    scenarios: dict[str, dict[str, Any]] = {}
    cells: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    duplicates: list[str] = []
    sources = []
    for name, doc in inputs:
        for target in doc["targets"]:
            targets.setdefault(target["id"], target)
        for declared in doc["scenarios"]:
            scenarios.setdefault(declared["id"], declared)
        contributed: list[str] = []
        for cell in doc["results"]:
            key = (cell["target"], cell["scenario"])
            if key in cells and not prefer_last:
                duplicates.append(f"{key[0]} x {key[1]} ({cells[key][0]} and {name})")
            cells[key] = (name, cell)
            if cell["target"] not in contributed:
                contributed.append(cell["target"])
        for tid in contributed:
            provenance = next((t for t in doc["targets"] if t["id"] == tid), None)
            if provenance is not None:
                targets[tid] = provenance
        if isinstance(doc["run"].get("sources"), list):
            sources.extend(doc["run"]["sources"])  # an already merged input: keep its sources
        else:
            sources.append({"file": name, **doc["run"], "targets": [t["id"] for t in doc["targets"]]})
    if duplicates:
        more = f" and {len(duplicates) - 1} more" if len(duplicates) > 1 else ""
        raise MergeError(f"duplicate cells: {duplicates[0]}{more} (use --prefer-last to keep the later input's)")
    runs = [doc["run"] for _, doc in inputs]

    def joined(key: str) -> str:
        return ", ".join(dict.fromkeys(str(r.get(key)) for r in runs if r.get(key) is not None))

    run: dict[str, Any] = {
        "started": min(str(r["started"]) for r in runs),
        "duration_s": round(sum(float(r.get("duration_s") or 0) for r in runs), 3),
        "harness_version": joined("harness_version"),
        "python": joined("python"),
        "platform": joined("platform"),
        "merged": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "sources": sources,
    }
    for extra in ("pytest", "implementation"):
        if joined(extra):
            run[extra] = joined(extra)
    order = {tid: n for n, tid in enumerate(targets)}
    results = [cell for _, cell in cells.values()]
    results.sort(key=lambda c: (order.get(c["target"], len(order)), c["scenario"]))
    merged: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "run": run,
        "targets": list(targets.values()),
        "scenarios": [scenarios[s] for s in sorted(scenarios)],
        "results": results,
    }
    # The views computed from cells are recomputed over the joined matrix, as a run makes them.
    rows = differential.build(merged)
    if rows:
        merged["differential"] = differential.to_json(rows)
    grids = framework_view.build(merged)
    if grids:
        merged["frameworks"] = framework_view.to_json(grids)
    return merged
