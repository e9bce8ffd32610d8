"""Every scenario can fail: under its mutant it fails (or warns), on the reference it does not.

A mutant (asgi_conformance.apps.mutants) wraps the catalogue app in a real server and
imitates one server bug. For each mutant this runs the scenarios it names against its
reference target, once plain and once mutated, through the real plugin.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from asgi_conformance.apps.mutants import MUTANTS, Mutant, _load_all
from asgi_conformance.timing import Deadline

from .conftest import load_results, processes_tagged, verdicts

_load_all()
BROKEN = {"fail", "warn"}
JUDGED_OK = {"pass", "info"}
# Mutants whose scenarios can only conclude "it hangs" at a deadline: scaled down here,
# since the reference target answers within a fraction of even the scaled deadline.
WAITS_OUT_A_DEADLINE = {"ls-hang-without-startup": 0.25}
REFERENCE_WAIT = 900.0


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


class References:
    """The plain verdict of every mutated scenario, per reference: one run per reference.

    Under xdist the workers share the runs through files in the session's temporary root:
    the first worker to need a reference runs it (an O_EXCL lock file says so) and the
    others wait for its result, with a deadline.
    """

    def __init__(self, root: Path, shared: bool) -> None:
        self.root = root
        self.shared = shared
        self.known: dict[str, dict[str, str]] = {}

    def __call__(self, reference: str) -> dict[str, str]:
        if reference not in self.known:
            self.known[reference] = self._load(reference)
        return self.known[reference]

    def _load(self, reference: str) -> dict[str, str]:
        done = self.root / f"reference-{reference}.json"
        if self.shared:
            try:
                os.close(os.open(done.with_suffix(".lock"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                deadline = Deadline(REFERENCE_WAIT)
                while not done.exists():
                    assert not deadline.expired, f"the reference run for {reference} did not finish"
                    time.sleep(0.1)  # another worker is running it: poll, bounded by the deadline
                found: dict[str, str] = json.loads(done.read_text())
                return found
        found = self._run(reference)
        partial = done.with_suffix(".part")
        partial.write_text(json.dumps(found))
        partial.rename(done)
        return found

    def _run(self, reference: str) -> dict[str, str]:
        wanted = sorted({s for m in MUTANTS.values() if _reference(m) == reference for s in m.scenarios})
        target, _, base = reference.partition("+")
        workdir = Path(tempfile.mkdtemp(prefix=f"reference-{target}-", dir=self.root))
        fixed = [f"--conformance-mutant={base}"] if base else []
        results = _run(workdir, f"--target={target}", *fixed, *(f"--scenario={s}" for s in wanted))
        return {
            scenario: _with_reason(verdict, results, scenario) for (_, scenario), verdict in verdicts(results).items()
        }


@pytest.fixture(scope="session")
def reference_verdicts(tmp_path_factory: pytest.TempPathFactory) -> References:
    shared = "PYTEST_XDIST_WORKER" in os.environ
    base = tmp_path_factory.getbasetemp()
    return References(base.parent if shared else base, shared)


def _with_reason(verdict: str, results: dict[str, Any], scenario: str) -> str:
    """A verdict as compared, followed (when it is not an OK one) by why, so that a reference
    cell that misses a deadline under load says so in the assertion."""
    if verdict in JUDGED_OK:
        return verdict
    why: dict[str, Any] = next((r for r in results["results"] if r["scenario"] == scenario), {})
    return f"{verdict}: {str(why.get('message') or '')[:400]} {[str(n)[:200] for n in (why.get('notes') or [])[:3]]}"


def _reference(mutant: Mutant) -> str:
    """The reference target, with the fixer it runs under if any ("uvicorn+strict-send")."""
    return mutant.reference if mutant.base is None else f"{mutant.reference}+{mutant.base}"


def _mutant_id(mutant: Mutant) -> str:
    return mutant.name


ALL_MUTANTS: list[Mutant] = sorted(MUTANTS.values(), key=_mutant_id)


@pytest.mark.parametrize("mutant", ALL_MUTANTS, ids=_mutant_id)
def test_mutant_is_caught(mutant: Mutant, reference_verdicts: References, tmp_path: Path, run_token: str) -> None:
    plain = reference_verdicts(_reference(mutant))
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
