"""Known-failure baselines: the file format, and --baseline / --baseline-update end to end."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import jsonschema
import pytest

from asgi_conformance.baseline import Baseline, BaselineError, Entry, load, parse_version, version_matches
from asgi_conformance.results import SCHEMA_PATH

from .conftest import load_results, verdicts

SCHEMA = json.loads(SCHEMA_PATH.read_text())

SUITE = """
from asgi_conformance import MUST, SHOULD, Server, expect, scenario

@scenario("core.selftest.passes", "passes", level=MUST, spec="selftest")
def test_passes(server: Server) -> None:
    expect(server.echo("/echo").scope.get("type"), "http", "type")

@scenario("core.selftest.fails", "fails", level=MUST, spec="selftest")
def test_fails(server: Server) -> None:
    expect(server.echo("/echo").scope.get("type"), "websocket", "type")

@scenario("core.selftest.warns", "warns", level=SHOULD, spec="selftest")
def test_warns(server: Server) -> None:
    expect(server.echo("/echo").scope.get("type"), "websocket", "type")

@scenario("core.selftest.errors", "harness error", level=MUST, spec="selftest")
def test_errors(server: Server) -> None:
    raise RuntimeError("the harness could not judge")

@scenario("core.selftest.flaky_pass", "flaky, passed this time", level=MUST, spec="selftest")
def test_flaky_pass(server: Server) -> None:
    expect(server.echo("/echo").scope.get("type"), "http", "type")

@scenario("core.selftest.flaky_fail", "flaky, failed this time", level=MUST, spec="selftest")
def test_flaky_fail(server: Server) -> None:
    expect(server.echo("/echo").scope.get("type"), "websocket", "type")
"""

FULL = """\
target = "uvicorn-h11"

[[known_failure]]
scenario = "core.selftest.fails"
reason = "kept reason: sends the wrong type"

[[known_failure]]
scenario = "core.selftest.warns"
reason = "a SHOULD it does not meet"
versions = ">=0.1"

[[known_failure]]
scenario = "core.selftest.errors"
reason = "cannot be judged"

[[known_flaky]]
scenario = "core.selftest.flaky_pass"
reason = "races"

[[known_flaky]]
scenario = "core.selftest.flaky_fail"
reason = "races"
"""


# -- the file format -------------------------------------------------------------------------


def test_parse_version_and_version_matches() -> None:
    assert parse_version("2.8.7") == (2, 8, 7)
    assert parse_version("1.0.0") == parse_version("1.0") == (1,)
    assert parse_version("2.8.0rc1") == (2, 8)
    assert parse_version("0.30.6.post1") == (0, 30, 6)
    assert version_matches(None, None)
    assert version_matches(">=2.8,<3", "2.8.7")
    assert version_matches(">=2.8,<3", "2.10")
    assert not version_matches(">=2.8,<3", "3.0")
    assert not version_matches(">=2.8,<3", "2.7.9")
    assert version_matches("2.8.7", "2.8.7")
    assert version_matches("!=2.8.6", "2.8.7")
    assert version_matches(["2.8.6", "2.8.7"], "2.8.7")
    assert not version_matches(["2.8.6"], "2.8.7")
    assert not version_matches(">=1", None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("target = ", "not valid TOML"),
        ('[[known_failure]]\nscenario = "a.b"\nreason = "r"\n', 'the target it is for is required (target = "NAME")'),
        ('target = "x"\nknown_failures = []\n', "unknown key(s) known_failures"),
        ('target = "x"\n[[known_failure]]\nscenario = "a.b"\n', "known_failure #1 (a.b): 'reason' is required"),
        ('target = "x"\n[[known_flaky]]\nreason = "r"\n', "known_flaky #1: 'scenario' (a scenario ID) is required"),
        (
            'target = "x"\n[[known_failure]]\nscenario = "a.b"\nreason = "r"\nversions = "~=2"\n',
            "versions clause '~=2' is not like",
        ),
        ('target = "x"\n[[known_failure]]\nscenario = "a.b"\nreason = "r"\nversions = 2\n', "versions must be"),
    ],
)
def test_bad_baseline_files_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "b.toml"
    path.write_text(text)
    with pytest.raises(BaselineError) as raised:
        load(path)
    assert message in str(raised.value)
    assert str(raised.value).startswith(f"baseline {path}")
    assert "\n" not in str(raised.value)


def test_dumps_round_trips_through_tomllib(tmp_path: Path) -> None:
    book = Baseline(
        tmp_path / "b.toml",
        'gran"ian',
        [
            Entry("a.b", 'quote " backslash \\ newline \n tab \t bell \x07 é'),
            Entry("a.c", "r", ">=2.8,<3"),
            Entry("a.d", "r", ["1.0", "1.1"]),
            Entry("a.e", "flaky", flaky=True),
        ],
    )
    book.write()
    again = load(book.path)
    assert again.target == book.target
    assert sorted(again.entries, key=lambda e: e.scenario) == book.entries
    assert tomllib.loads(book.dumps())["known_flaky"] == [{"scenario": "a.e", "reason": "flaky"}]


def test_updated_keeps_reasons_drops_fixed_and_adds_new(tmp_path: Path) -> None:
    book = Baseline(
        tmp_path / "b.toml",
        "t",
        [
            Entry("a.kept", "kept reason"),
            Entry("a.fixed", "was broken"),
            Entry("a.not_run", "not judged this time"),
            Entry("a.other_version", "only old ones", "<1"),
            Entry("a.flaky", "races", flaky=True),
        ],
    )
    cells = [
        {"scenario": "a.kept", "verdict": "fail"},
        {"scenario": "a.fixed", "verdict": "pass"},
        {"scenario": "a.other_version", "verdict": "pass"},
        {"scenario": "a.flaky", "verdict": "pass"},
        {"scenario": "a.new", "verdict": "warn", "message": "a SHOULD\nsecond line", "observed": "x"},
        {"scenario": "a.fine", "verdict": "info"},
    ]
    updated = book.updated(cells, "1.5")
    assert {e.scenario: e.reason for e in updated.entries} == {
        "a.kept": "kept reason",
        "a.not_run": "not judged this time",
        "a.other_version": "only old ones",
        "a.flaky": "races",
        "a.new": "warn: a SHOULD (observed: x)",
    }


# -- --baseline in a run ---------------------------------------------------------------------


def _run(pytester: pytest.Pytester, baseline: str | None, *args: str) -> tuple[pytest.RunResult, Path]:
    pytester.makepyfile(test_selftest=SUITE)
    out = pytester.path / "out.json"
    extra = []
    if baseline is not None:
        (pytester.path / "b.toml").write_text(baseline)
        extra.append(f"--baseline={pytester.path / 'b.toml'}")
    result = pytester.runpytest_subprocess(
        "test_selftest.py", "--target=uvicorn-h11", f"--conformance-json={out}", "-p", "no:cacheprovider", *extra, *args
    )
    return result, out


def test_listed_failures_are_expected_and_the_run_passes(pytester: pytest.Pytester, run_token: str) -> None:
    result, out = _run(pytester, FULL, "-rx")
    result.assert_outcomes(passed=2, xfailed=4)
    assert result.ret == pytest.ExitCode.OK
    assert "XFAIL (baseline) test_selftest.py::test_fails[uvicorn-h11] - baseline (b.toml): kept reason" in (
        result.stdout.str()
    )
    assert "baseline: 4 known failures expected (xfailed), 0 stale entries" in result.stdout.str()
    data = load_results(out)
    jsonschema.validate(data, SCHEMA)
    # The verdicts are recorded as they were; the baseline only marks them.
    cells = {c["scenario"]: c for c in data["results"]}
    assert {s: (c["verdict"], c.get("baseline")) for s, c in cells.items()} == {
        "core.selftest.passes": ("pass", None),
        "core.selftest.fails": ("fail", "known"),
        "core.selftest.warns": ("warn", "known"),
        "core.selftest.errors": ("error", "known"),
        "core.selftest.flaky_pass": ("pass", "flaky"),
        "core.selftest.flaky_fail": ("fail", "flaky"),
    }


def test_a_failure_not_listed_fails_the_run(pytester: pytest.Pytester, run_token: str) -> None:
    missing = FULL.replace('scenario = "core.selftest.fails"', 'scenario = "core.selftest.passes"', 1)
    missing = missing.replace('versions = ">=0.1"', 'versions = "<0.1"')  # applies to other versions only
    result, out = _run(pytester, missing)
    # fails: not listed; warns: listed for other versions (a warn never fails a run); passes: stale.
    result.assert_outcomes(passed=1, failed=2, xfailed=2, warnings=0)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "STALE baseline entry: core.selftest.passes on uvicorn-h11" in result.stdout.str()
    assert "Remove the entry, or rewrite the file with --baseline-update." in result.stdout.str()
    assert verdicts(load_results(out))[("uvicorn-h11", "core.selftest.passes")] == "pass"


def test_a_baseline_for_another_target_does_not_apply(pytester: pytest.Pytester, run_token: str) -> None:
    result, _ = _run(pytester, FULL.replace('target = "uvicorn-h11"', 'target = "granian"'))
    result.assert_outcomes(passed=2, failed=2, errors=1)  # and 1 warned


def test_unknown_scenario_in_a_baseline_is_a_one_line_usage_error(pytester: pytest.Pytester) -> None:
    result, _ = _run(pytester, FULL + '\n[[known_failure]]\nscenario = "core.selftest.nosuch"\nreason = "r"\n')
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.strip()]
    assert len(errors) == 1, result.errlines
    assert "b.toml: scenario 'core.selftest.nosuch' does not exist" in errors[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--baseline-update"], "--baseline-update needs --baseline=PATH"),
        (["--baseline=nosuch.toml"], "baseline nosuch.toml: no such file"),
    ],
)
def test_baseline_option_errors(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    result = pytester.runpytest_subprocess("--target=uvicorn-h11", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_baseline_update_writes_the_current_failures(pytester: pytest.Pytester, run_token: str) -> None:
    stale = FULL.replace('scenario = "core.selftest.warns"', 'scenario = "core.selftest.passes"')
    result, _ = _run(pytester, stale, "--baseline-update")
    assert "baseline updated: " in result.stdout.str()
    book = load(pytester.path / "b.toml")
    assert {(e.scenario, e.flaky): e.reason for e in book.entries} == {
        ("core.selftest.fails", False): "kept reason: sends the wrong type",
        ("core.selftest.errors", False): "cannot be judged",
        ("core.selftest.warns", False): "warn: type differs (observed: http)",
        ("core.selftest.flaky_pass", True): "races",
        ("core.selftest.flaky_fail", True): "races",
    }
    # A file that does not exist yet is created for the run's target; then the run passes with it.
    new = pytester.path / "new.toml"
    pytester.runpytest_subprocess("test_selftest.py", "--target=uvicorn-h11", f"--baseline={new}", "--baseline-update")
    created = load(new)
    assert created.target == "uvicorn-h11"
    assert sorted(e.scenario for e in created.entries) == [
        "core.selftest.errors",
        "core.selftest.fails",
        "core.selftest.flaky_fail",
        "core.selftest.warns",
    ]
    again = pytester.runpytest_subprocess("test_selftest.py", "--target=uvicorn-h11", f"--baseline={new}")
    assert again.ret == pytest.ExitCode.OK
    again.assert_outcomes(passed=2, xfailed=4)


def test_stale_entry_against_the_real_catalogue(pytester: pytest.Pytester, run_token: str) -> None:
    """http.scope.type passes on uvicorn-h11: listing it as a known failure fails the run."""
    path = pytester.path / "uvicorn-h11.toml"
    path.write_text('target = "uvicorn-h11"\n\n[[known_failure]]\nscenario = "http.scope.type"\nreason = "fixed"\n')
    result = pytester.runpytest_subprocess(
        "--target=uvicorn-h11", "--scenario=http.scope.type", f"--baseline={path}", "-p", "no:cacheprovider"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(failed=1)
    assert "STALE baseline entry: http.scope.type on uvicorn-h11" in result.stdout.str()


def test_unknown_scenario_is_a_usage_error_with_xdist_too(pytester: pytest.Pytester) -> None:
    """With -n the controller collects nothing: it checks the packaged catalogue at session start."""
    path = pytester.path / "b.toml"
    path.write_text('target = "uvicorn-h11"\n\n[[known_failure]]\nscenario = "http.scope.nosuch"\nreason = "r"\n')
    result = pytester.runpytest_subprocess("--target=uvicorn-h11", "-n", "2", f"--baseline={path}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "scenario 'http.scope.nosuch' does not exist" in result.stderr.str()
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_entries_for_areas_a_scenario_run_skips_are_known(pytester: pytest.Pytester, run_token: str) -> None:
    """--scenario collects only its areas' suite files; entries for other areas still exist."""
    (pytester.path / "b.toml").write_text(
        'target = "uvicorn-h11"\n\n[[known_failure]]\nscenario = "wire.h1.clte.both"\nreason = "frames by TE"\n'
    )
    result = pytester.runpytest_subprocess(
        "--target=uvicorn-h11", "--scenario=http.scope.type", f"--baseline={pytester.path / 'b.toml'}"
    )
    assert "does not exist" not in result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=1)
