"""Benchmark: run the catalogue per target and print where the time goes.

For each target, one pytest process runs the whole catalogue (as `pytest --target=X`
would); the script prints its wall time, the shared server's start-up time, per-case
time percentiles (setup + call + teardown of each cell, from the results JSON) and
the slowest cases. ``--matrix`` also times the whole matrix through ``asgi-conformance run``
(one pytest process per target, in parallel).

    python benchmarks/run.py                       # every installed built-in target
    python benchmarks/run.py --target uvicorn --target daphne --matrix
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def run(args: list[str], out: Path, *, matrix: bool = False) -> tuple[float, dict[str, Any]]:
    """One target: a plain pytest run. The matrix: ``asgi-conformance run`` (targets in parallel)."""
    if matrix:
        command = [sys.executable, "-m", "asgi_conformance", "run", "--json", str(out), "--no-html", *args]
    else:
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--conformance-json={out}", *args]
    began = time.monotonic()
    subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
    wall = time.monotonic() - began
    return wall, json.loads(out.read_text())


def percentile(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def report(name: str, wall: float, data: dict[str, Any]) -> None:
    times = sorted((r["duration_s"], r["scenario"]) for r in data["results"] if r["target"] == name)
    values = [t for t, _ in times]
    target = next(t for t in data["targets"] if t["id"] == name)
    ready = target.get("ready_after_s")
    print(
        f"{name:<18} cells {len(values):>3}  wall {wall:6.2f}s  start-up {ready if ready is not None else '-':>6}s  "
        f"p50 {percentile(values, 50) * 1000:7.1f}ms  p95 {percentile(values, 95) * 1000:7.1f}ms  "
        f"max {values[-1] * 1000:7.1f}ms"
    )
    slow = ", ".join(f"{s} {t * 1000:.0f}ms" for t, s in reversed(times[-3:]))
    print(f"{'':<18} slowest: {slow}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", action="append", help="target to time (default: every installed built-in)")
    parser.add_argument("--matrix", action="store_true", help="also time one run with every target together")
    args = parser.parse_args()
    from asgi_conformance.targets import BUILTIN_TARGETS

    names = args.target or [t.id for t in BUILTIN_TARGETS.values() if t.installed]
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            wall, data = run([f"--target={name}"], Path(tmp) / f"{name}.json")
            report(name, wall, data)
        if args.matrix:
            wall, data = run([f"--target={n}" for n in names], Path(tmp) / "matrix.json", matrix=True)
            print(f"matrix of {len(names)} targets, {len(data['results'])} cells: wall {wall:.2f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
