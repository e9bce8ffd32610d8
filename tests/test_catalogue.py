"""The catalogue's own consistency: IDs, areas, files, requirement rows, mutants."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import pytest

from asgi_conformance.apps.mutants import MUTANTS, _load_all
from asgi_conformance.cli import SUITES_PACKAGE, load_suites
from asgi_conformance.plugin import suites_dir
from asgi_conformance.requirements import all_requirements
from asgi_conformance.scenarios import Scenario, all_scenarios, area_of, scenario_of
from asgi_conformance.targets import BUILTIN_TARGETS


@pytest.fixture(scope="module")
def scenarios() -> dict[str, Scenario]:
    load_suites()
    return all_scenarios()


def test_requirements_are_the_432_catalogue_rows() -> None:
    rows = all_requirements()
    assert len(rows) == 432
    assert all(r.level and r.text and 1 <= r.section <= 25 for r in rows.values())


def test_at_least_forty_scenarios(scenarios: dict[str, Scenario]) -> None:
    assert len(scenarios) >= 40


def test_each_scenario_lives_in_the_file_its_area_names(scenarios: dict[str, Scenario]) -> None:
    seen = set()
    for name, module in list(sys.modules.items()):
        if not name.startswith(SUITES_PACKAGE + "."):
            continue
        path = Path(inspect.getfile(module))
        for func in vars(module).values():
            declared = scenario_of(func)
            if declared is not None:
                seen.add(declared.id)
                assert path.name == f"test_{area_of(declared.id)[0]}.py", f"{declared.id} is in {path.name}"
    assert seen == set(scenarios)


def test_scenarios_cover_real_rows_and_say_where_they_come_from(scenarios: dict[str, Scenario]) -> None:
    rows = all_requirements()
    for sid, declared in scenarios.items():
        assert declared.spec, sid
        assert declared.title, sid
        assert all(r in rows for r in declared.covers), sid
        if sid in rows:
            assert sid in declared.covers, sid


def test_every_scenario_has_a_mutant_and_every_mutant_real_scenarios(scenarios: dict[str, Scenario]) -> None:
    _load_all()
    caught = {sid for m in MUTANTS.values() for sid in m.scenarios}
    assert sorted(set(scenarios) - caught) == [], "scenarios that no mutant proves can fail"
    assert sorted(caught - set(scenarios)) == [], "mutants naming unknown scenarios"
    for m in MUTANTS.values():
        assert m.reference in BUILTIN_TARGETS, m.name
        assert m.bug, m.name


def test_suites_dir_is_the_repository_suites() -> None:
    assert suites_dir().name == "suites"
