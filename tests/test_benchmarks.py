"""The benchmark scripts' own arithmetic: which cells changed between runs, why, and percentiles."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _load(name: str) -> ModuleType:
    """A script beside ``_proc.py`` (which it imports as a sibling), loaded as a module."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", BENCHMARKS / f"{name}.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCHMARKS))


flake = _load("flake")
run = _load("run")


def _results(*rows: dict[str, Any]) -> dict[str, Any]:
    return {"results": [{"target": "t", **row} for row in rows]}


def test_a_cell_that_keeps_its_value_is_not_changed() -> None:
    data = _results({"scenario": "a", "verdict": "pass", "observed": "x"})
    runs = [flake.cells(data), flake.cells(data), flake.cells(data)]
    assert flake.changed_cells(runs) == {}


def test_a_changed_verdict_or_value_or_a_missing_cell_is_listed_run_by_run() -> None:
    first = flake.cells(
        _results(
            {"scenario": "a", "verdict": "pass", "observed": "x"},
            {"scenario": "b", "verdict": "info", "observed": {"n": 1}},
            {"scenario": "c", "verdict": "pass"},
        )
    )
    second = flake.cells(
        _results(
            {"scenario": "a", "verdict": "fail", "observed": "x"},
            {"scenario": "b", "verdict": "info", "observed": {"n": 2}},
        )
    )
    changed = flake.changed_cells([first, second])
    assert changed == {
        ("t", "a"): [("pass", '"x"'), ("fail", '"x"')],
        ("t", "b"): [("info", '{"n": 1}'), ("info", '{"n": 2}')],
        ("t", "c"): [("pass", "null"), None],
    }


def test_why_a_cell_failed_is_its_message_and_first_notes_shortened() -> None:
    data = _results(
        {"scenario": "a", "verdict": "fail", "message": "m" * 400, "notes": ["n1", "n2", "n3", "n4"]},
        {"scenario": "b", "verdict": "pass", "message": "not shown", "notes": ["not shown"]},
        {"scenario": "c", "verdict": "error", "notes": ["only a note"]},
    )
    why = flake.messages(data)
    assert why == {("t", "a"): "m" * 300 + " | n1 | n2 | n3", ("t", "c"): "only a note"}


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [([7.0], 50, 7.0), ([1.0, 2.0, 3.0, 4.0, 5.0], 50, 3.0), ([float(n) for n in range(1, 102)], 95, 96.0)],
)
def test_percentile(values: list[float], q: int, expected: float) -> None:
    assert run.percentile(values, q) == pytest.approx(expected)


def test_cpu_split_reads_what_the_plugin_wrote(tmp_path: Path) -> None:
    out = tmp_path / "uvicorn.json"
    split = {"harness_cpu_s": 3.64, "servers_cpu_s": 5.4, "server_starts": {"app": 21, "legacy": 1}}
    (tmp_path / "uvicorn.json.cpu.json").write_text(json.dumps(split))
    assert run.cpu_split(out) == " (harness 3.6s, servers 5.4s over 22 starts)"


def test_cpu_split_of_a_run_without_the_plugin_is_left_out(tmp_path: Path) -> None:
    assert run.cpu_split(tmp_path / "none.json") == ""


def test_the_cpu_split_plugin_writes_its_file(tmp_path: Path) -> None:
    """Loaded into a pytest run as the benchmark loads it, it writes both shares and the starts."""
    (tmp_path / "test_one.py").write_text("def test_one() -> None:\n    assert True\n")
    out = tmp_path / "split.json"
    env = {**os.environ, "PYTHONPATH": str(BENCHMARKS)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "_cpu_split"]
    done = subprocess.run(
        [*command, f"--bench-cpu-file={out}", str(tmp_path)], env=env, cwd=tmp_path, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stdout.decode(errors="replace")
    split = json.loads(out.read_text())
    assert split["harness_cpu_s"] > 0
    assert split["servers_cpu_s"] >= 0
    assert split["server_starts"] == {}
