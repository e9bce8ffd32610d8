"""Every scenario can fail: under its mutant it fails (or warns), on the reference it does not.

A mutant (asgi_conformance.apps.mutants) wraps the catalogue app in a real server and
imitates one server bug. For each mutant this runs the scenarios it names against its
reference target, once plain and once mutated, through the real plugin.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from asgi_conformance.apps.mutants import MUTANTS, Mutant, _load_all

from .conftest import load_results, processes_tagged, verdicts

_load_all()
BROKEN = {"fail", "warn"}
JUDGED_OK = {"pass", "info"}
# Mutants whose scenarios can only conclude "it hangs" at a deadline: scaled down here,
# since the reference target answers within a fraction of even the scaled deadline.
WAITS_OUT_A_DEADLINE = {"ls-hang-without-startup": 0.25}


def _run(workdir: Path, *args: str) -> dict[str, Any]:
    out = workdir / "out.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--conformance-json={out}", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return load_results(out)


@pytest.fixture(scope="module")
def reference_verdicts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """The plain verdict of every mutated scenario, per reference target (one run each)."""
    found: dict[str, dict[str, str]] = {}
    for reference in sorted({_reference(m) for m in MUTANTS.values()}):
        wanted = sorted({s for m in MUTANTS.values() if _reference(m) == reference for s in m.scenarios})
        target, _, base = reference.partition("+")
        workdir = tmp_path_factory.mktemp(f"reference-{target}")
        fixed = [f"--conformance-mutant={base}"] if base else []
        results = _run(workdir, f"--target={target}", *fixed, *(f"--scenario={s}" for s in wanted))
        found[reference] = {scenario: verdict for (_, scenario), verdict in verdicts(results).items()}
    return found


def _reference(mutant: Mutant) -> str:
    """The reference target, with the fixer it runs under if any ("uvicorn+strict-send")."""
    return mutant.reference if mutant.base is None else f"{mutant.reference}+{mutant.base}"


def _mutant_id(mutant: Mutant) -> str:
    return mutant.name


ALL_MUTANTS: list[Mutant] = sorted(MUTANTS.values(), key=_mutant_id)


@pytest.mark.parametrize("mutant", ALL_MUTANTS, ids=_mutant_id)
def test_mutant_is_caught(
    mutant: Mutant, reference_verdicts: dict[str, dict[str, str]], tmp_path: Path, run_token: str
) -> None:
    plain = reference_verdicts[_reference(mutant)]
    results = _run(
        tmp_path,
        f"--target={mutant.reference}",
        f"--conformance-mutant={mutant.chain}",
        f"--conformance-timeout-scale={WAITS_OUT_A_DEADLINE.get(mutant.name, 1.0)}",
        *(f"--scenario={s}" for s in mutant.scenarios),
    )
    mutated = {scenario: verdict for (_, scenario), verdict in verdicts(results).items()}
    for scenario in mutant.scenarios:
        assert plain.get(scenario) in JUDGED_OK, (
            f"{scenario} on {_reference(mutant)} without the mutant: {plain.get(scenario)}"
        )
        assert mutated.get(scenario) in BROKEN, (
            f"{scenario} did not catch mutant {mutant.name!r} ({mutant.bug}): verdict {mutated.get(scenario)}"
        )
    assert processes_tagged(run_token) == []
