"""Flake check: run the catalogue N times and list every cell that changed between runs.

A cell "changes" when its verdict or its observed value differs from the first run's.
``--busy`` keeps the other core busy during every run with a second process (a bounded
spin loop that ends with the run), to show that verdicts do not depend on a quiet machine.

    python benchmarks/flake.py --runs 10 --target all
    python benchmarks/flake.py --runs 10 --target all --busy
    python benchmarks/flake.py --runs 10 --matrix --busy     # each run through asgi-conformance run
    python benchmarks/flake.py --runs 3 --target uvicorn -- --scenario=http.request

Exit status 1 if any cell changed, 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _proc import run_bounded, stop_on_sigterm  # beside this script

Cell = tuple[str, str]
SPIN = "import time\nend = time.monotonic() + {limit}\nwhile time.monotonic() < end:\n    pass\n"


def one_run(targets: list[str], extra: list[str], out: Path, busy: bool, limit: float, matrix: bool) -> float:
    """Run the catalogue once (one pytest process, or ``asgi-conformance run`` with ``matrix``);
    with ``busy``, a spinning process shares the machine meanwhile."""
    spinner = None
    if busy:
        # Bounded by ``limit`` on its own, and ended (by its own process group) with the run.
        spinner = subprocess.Popen(
            [sys.executable, "-c", SPIN.format(limit=limit)], start_new_session=True, stdout=subprocess.DEVNULL
        )
    if matrix:
        command = [sys.executable, "-m", "asgi_conformance", "run", "--json", str(out), "--no-html"]
    else:
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--conformance-json={out}"]
    began = time.monotonic()
    try:
        run_bounded([*command, *(f"--target={t}" for t in targets), *extra], limit)
    finally:
        if spinner is not None:
            os.killpg(spinner.pid, signal.SIGKILL)
            spinner.wait(timeout=10)
    return time.monotonic() - began


def cells(data: dict[str, Any]) -> dict[Cell, tuple[str, str]]:
    """(target, scenario) -> (verdict, observed as canonical JSON)."""
    return {
        (r["target"], r["scenario"]): (r["verdict"], json.dumps(r.get("observed"), sort_keys=True))
        for r in data["results"]
    }


def messages(data: dict[str, Any]) -> dict[Cell, str]:
    """(target, scenario) -> why a cell failed or errored: its message and first notes, shortened."""
    found = {}
    for r in data["results"]:
        if r["verdict"] in ("fail", "error"):
            parts = [str(r.get("message") or "")[:300], *(str(n)[:200] for n in (r.get("notes") or [])[:3])]
            found[(r["target"], r["scenario"])] = " | ".join(p for p in parts if p)
    return found


def changed_cells(runs: list[dict[Cell, tuple[str, str]]]) -> dict[Cell, list[tuple[str, str] | None]]:
    """Every cell whose (verdict, observed) differs in some run from the first, or is missing
    from some run: its value in each run (None where missing), in cell order."""
    first = runs[0]
    changed: dict[Cell, list[tuple[str, str] | None]] = {}
    for key in sorted(set().union(*runs)):
        seen = [run.get(key) for run in runs]
        if any(value != first.get(key) for value in seen):
            changed[key] = seen
    return changed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10, help="how many runs (default 10)")
    parser.add_argument("--target", action="append", help="target(s) to run (default: all)")
    parser.add_argument("--busy", action="store_true", help="keep the other core busy during every run")
    parser.add_argument("--matrix", action="store_true", help="run through asgi-conformance run (targets in parallel)")
    parser.add_argument("--limit", type=float, default=900.0, help="seconds one run may take (default 900)")
    parser.add_argument("extra", nargs="*", help="more pytest arguments (after --)")
    args = parser.parse_args()
    stop_on_sigterm()
    if args.runs < 2:
        parser.error("--runs must be at least 2")
    targets = args.target or ["all"]
    runs: list[dict[Cell, tuple[str, str]]] = []
    why: list[dict[Cell, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.runs):
            out = Path(tmp) / f"run{n}.json"
            wall = one_run(targets, args.extra, out, args.busy, args.limit, args.matrix)
            if not out.exists():
                print(f"run {n + 1}: no results written (wall {wall:.1f}s)")
                return 2
            data = json.loads(out.read_text())
            runs.append(cells(data))
            why.append(messages(data))
            print(f"run {n + 1}/{args.runs}: {len(runs[-1])} cells, wall {wall:.1f}s", flush=True)
    first = runs[0]
    changed = changed_cells(runs)
    load = "with the other core busy" if args.busy else "idle"
    print(f"{args.runs} runs ({load}): {len(first)} cells, {len(changed)} changed")
    for (target, scenario), seen in changed.items():
        print(f"  {target} {scenario}:")
        for n, value in enumerate(seen, 1):
            print(f"    run {n}: {value[0] if value else 'missing'} {value[1] if value else ''}")
            if value and value[0] in ("fail", "error") and (target, scenario) in why[n - 1]:
                print(f"      why: {why[n - 1][(target, scenario)]}")
    return 1 if changed else 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the runs were stopped, their processes too
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
