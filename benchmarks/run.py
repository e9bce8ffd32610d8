"""Benchmark: run the catalogue per target and print where the time goes.

For each target, one pytest process runs the whole catalogue as ``pytest --target=X`` would
(cases side by side, the default concurrency unless ``--concurrency`` says otherwise): its
wall time, its CPU time (the harness and every server it started, and how that splits
between the pytest process and the servers, with the number of server processes started:
``_cpu_split``) and the shared server's start-up time. A second run takes one case at a time
(``--conformance-concurrency=1``) for the per-case figures: a case's time is its setup +
call + teardown against the already running server, which side by side would include waiting
for a core. The percentiles are over the cases that ran (``unsupported`` cells, mostly
skipped before running, are left out). Cases declared ``waits=...`` (they wait out a
server's own timeout) are listed apart; any other case over a second is listed as OVER with
its verdict (a cell that did not pass there has mostly waited out its own deadline for an
answer the target never gave). ``--quick`` skips the one-at-a-time run (the per-case figures
then come from the side-by-side run). ``--matrix`` also times the whole matrix through
``asgi-conformance run`` (one pytest process per target, ``--jobs`` at a time).

    python benchmarks/run.py                       # every installed built-in target
    python benchmarks/run.py --matrix              # ... and the matrix
    python benchmarks/run.py --target uvicorn --quick
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _proc import run_bounded, stop_on_sigterm  # beside this script

LIMIT_S = 1.0
"""A case over this (not declared ``waits``) is listed as OVER."""


def run(args: list[str], out: Path, *, matrix: bool = False) -> tuple[float, float, dict[str, Any]]:
    """One target: a plain pytest run. The matrix: ``asgi-conformance run`` (targets in parallel).

    Returns the wall time, the CPU time of the run and every process it started (the servers
    too: each is reaped by its parent), and the results. A pytest run also loads
    ``_cpu_split``, which writes ``<out>.cpu.json`` (read by ``cpu_split``)."""
    env = None
    if matrix:
        command = [sys.executable, "-m", "asgi_conformance", "run", "--json", str(out), "--no-html", *args]
    else:
        here = str(Path(__file__).resolve().parent)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))}
        split = ["-p", "_cpu_split", f"--bench-cpu-file={out}.cpu.json"]
        command = [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *split, f"--conformance-json={out}", *args
        ]  # fmt: skip
    began, cpu = time.monotonic(), _children_cpu()
    _, tail = run_bounded(command, 1800, env)
    wall, cpu = time.monotonic() - began, _children_cpu() - cpu
    if not out.exists():
        raise SystemExit(f"no results from {' '.join(command)}:\n{tail}")
    return wall, cpu, json.loads(out.read_text())


def cpu_split(out: Path) -> str:
    """The harness's and the servers' shares of a pytest run's CPU time, and the server starts."""
    try:
        split = json.loads(Path(f"{out}.cpu.json").read_text())
    except (OSError, ValueError):
        return ""
    starts = sum(split["server_starts"].values())
    return f" (harness {split['harness_cpu_s']:.1f}s, servers {split['servers_cpu_s']:.1f}s over {starts} starts)"


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def percentile(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def report(
    name: str, wall: float, cpu: float, data: dict[str, Any], serial: float | None, split: str = ""
) -> list[tuple[str, str]]:
    """Print the target's lines (``data``: the run the per-case figures come from; ``serial``:
    its wall time when it ran one case at a time; ``split``: from ``cpu_split``); return the
    OVER cases with their verdicts."""
    waits = {s["id"]: s["waits"] for s in data["scenarios"] if s.get("waits")}
    cells = [r for r in data["results"] if r["target"] == name]
    ran = sorted((r["duration_s"], r["scenario"]) for r in cells if r["verdict"] != "unsupported")
    verdicts = {r["scenario"]: r["verdict"] for r in cells}
    values = [t for t, _ in ran] or [0.0]
    target = next(t for t in data["targets"] if t["id"] == name)
    ready = target.get("ready_after_s")
    started = f"{ready:.2f}s" if isinstance(ready, int | float) else "-"
    print(
        f"{name:<17} {len(cells):>4} cells ({len(ran)} ran)  wall {wall:6.2f}s  cpu {cpu:5.1f}s{split}  "
        f"start-up {started}"
    )
    alone = f" (one at a time: {serial:.1f}s)" if serial is not None else " (side by side)"
    print(
        f"{'':<17} per case{alone}: p50 {percentile(values, 50) * 1000:.1f}ms  "
        f"p95 {percentile(values, 95) * 1000:.1f}ms  max {values[-1] * 1000:.1f}ms"
    )
    unmarked = [(t, s) for t, s in ran if s not in waits]
    print(f"{'':<17} slowest: " + ", ".join(f"{s} {t * 1000:.0f}ms" for t, s in reversed(unmarked[-3:])))
    marked = [(t, s) for t, s in ran if s in waits]
    if marked:
        print(f"{'':<17} waits:   " + ", ".join(f"{s} {t:.2f}s" for t, s in reversed(marked)))
    over = [(f"{name} {s} {t:.2f}s ({verdicts[s]})", verdicts[s]) for t, s in reversed(unmarked) if t > LIMIT_S]
    for line, _ in over:
        print(f"{'':<17} OVER:    {line}")
    return over


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", action="append", help="target to time (default: every installed built-in)")
    parser.add_argument("--matrix", action="store_true", help="also time the matrix with asgi-conformance run")
    parser.add_argument("--concurrency", type=int, help="--conformance-concurrency for every run (default: its own)")
    parser.add_argument("--jobs", type=int, help="with --matrix: asgi-conformance run --jobs (default: its own)")
    parser.add_argument(
        "--quick", action="store_true", help="skip the one-at-a-time run (per-case figures side by side)"
    )
    parser.add_argument("extra", nargs="*", help="more pytest arguments (after --)")
    args = parser.parse_args()
    stop_on_sigterm()
    from asgi_conformance.targets import BUILTIN_TARGETS

    names = args.target or [t.id for t in BUILTIN_TARGETS.values() if t.installed]
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        print("note: PYTHONDONTWRITEBYTECODE is set: each pytest process compiles the harness anew (CPU time)")
    extra = list(args.extra)
    if args.concurrency is not None:
        extra.append(f"--conformance-concurrency={args.concurrency}")
    over: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        total = total_cpu = 0.0
        for name in names:
            wall, cpu, data = run([f"--target={name}", *extra], Path(tmp) / f"{name}.json")
            total += wall
            total_cpu += cpu
            serial: float | None = None
            if not args.quick:
                one = [f"--target={name}", *extra, "--conformance-concurrency=1"]
                serial, _, data = run(one, Path(tmp) / f"{name}-serial.json")
            over += report(name, wall, cpu, data, serial, cpu_split(Path(tmp) / f"{name}.json"))
        print(f"{len(names)} target(s) one after another: {total:.2f}s (cpu {total_cpu:.1f}s)")
        if args.matrix:
            jobs = [f"--jobs={args.jobs}"] if args.jobs else []
            wall, cpu, data = run(
                [*jobs, *(f"--target={n}" for n in names), *extra], Path(tmp) / "matrix.json", matrix=True
            )
            errors = sum(1 for r in data["results"] if r["verdict"] == "error")
            print(
                f"matrix of {len(names)} targets, {len(data['results'])} cells ({errors} error): wall {wall:.2f}s, "
                f"cpu {cpu:.1f}s ({os.cpu_count()} CPUs)"
            )
    passed = sum(1 for _, verdict in over if verdict in ("pass", "info"))
    print(
        f"cases over {LIMIT_S:.0f}s not declared waits=...: {len(over)} "
        f"({len(over) - passed} did not pass: mostly a deadline the target let run out; {passed} passed)"
    )
    return 1 if over else 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the runs were stopped, their processes too
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
