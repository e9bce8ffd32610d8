"""The pytest plugin, run as users run it (pytester, in a subprocess)."""

from __future__ import annotations

import json
import shlex
import sys
import textwrap
from pathlib import Path

import jsonschema
import pytest

from .conftest import chaos_cmd, load_results, verdicts

SCHEMA = json.loads((Path(__file__).parent.parent / "asgi_conformance" / "results.schema.json").read_text())

# One scenario per verdict, against a real server: the verdict mapping end to end.
VERDICT_SUITE = """
from asgi_conformance import INFO, MUST, SHOULD, Server, expect, record, scenario, unsupported

@scenario("core.selftest.passes", "passes", level=MUST, spec="selftest")
def test_passes(server: Server) -> None:
    expect(server.echo("/echo").scope.get("type"), "http", "type")

@scenario("core.selftest.fails", "fails", level=MUST, spec="selftest")
def test_fails(server: Server) -> None:
    expect(server.echo("/echo").scope.get("type"), "websocket", "type")

@scenario("core.selftest.warns", "warns", level=SHOULD, spec="selftest")
def test_warns(server: Server) -> None:
    expect(server.echo("/echo").scope.get("type"), "websocket", "type")

@scenario("core.selftest.info", "info", level=INFO, spec="selftest")
def test_info(server: Server) -> None:
    record(server.echo("/echo").scope.get("http_version"))

@scenario("core.selftest.unsupported", "unsupported", level=MUST, spec="selftest")
def test_unsupported(server: Server) -> None:
    unsupported("not offered")

@scenario("core.selftest.needs_h2", "needs a capability", level=MUST, spec="selftest", requires=("http2",))
def test_needs_h2(server: Server) -> None:
    raise AssertionError("never runs")

@scenario("core.selftest.errors", "harness error", level=MUST, spec="selftest")
def test_errors(server: Server) -> None:
    raise RuntimeError("the harness could not judge")
"""


def test_unknown_target_is_one_line_and_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--target=nosuch")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.strip()]
    assert len(errors) == 1, result.errlines
    assert "unknown target 'nosuch'" in errors[0]
    assert "uvicorn" in errors[0]
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target-cmd=myserver --port {port}"], "must contain {app}"),
        (["--target-cmd=myserver {app}"], "exactly one of {port}, {uds} or {fd}"),
        (["--target-cmd=x {app} {port}", "--target-capabilities=telepathy"], "unknown ['telepathy']"),
        (["--target-name=x"], "only apply to --target-cmd"),
        (["--target=uvicorn", "--conformance-timeout-scale=0"], "positive number"),
        (["--target=uvicorn", "--conformance-mutant=nosuch"], "unknown mutant 'nosuch'"),
        (["--target=uvicorn", "--conformance-concurrency=0"], "must be at least 1"),
    ],
)
def test_bad_options_are_usage_errors(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()
    assert "Traceback" not in result.stderr.str()


def test_target_not_installed_names_the_extra(pytester: pytest.Pytester) -> None:
    """A third-party adapter (entry point) whose server is missing: one line, exit 4."""
    dist = pytester.mkdir("site") / "fakeserver-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeserver\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[asgi_conformance.targets]\nfake = fakeadapter:TARGETS\n")
    pytester.makepyfile(
        fakeadapter="""
        from asgi_conformance.targets import BUILTIN_TARGETS, Target
        from dataclasses import replace
        TARGETS = [
            replace(BUILTIN_TARGETS["uvicorn-h11"], id="fake-missing", modules=("no_such_server_module",),
                    extra="fake"),
            replace(BUILTIN_TARGETS["uvicorn-h11"], id="fake-ok"),
        ]
        """
    )
    pytester.syspathinsert(pytester.path / "site")
    env_path = f"{pytester.path / 'site'}:{pytester.path}"
    pytester._monkeypatch.setenv("PYTHONPATH", env_path)
    missing = pytester.runpytest_subprocess("--target=fake-missing")
    assert missing.ret == pytest.ExitCode.USAGE_ERROR
    assert "target 'fake-missing' is not installed (missing: no_such_server_module)" in missing.stderr.str()
    assert "pip install 'asgi-conformance[fake]'" in missing.stderr.str()
    ok = pytester.runpytest_subprocess("--target=fake-ok", "--scenario=http.scope.type", "-q")
    assert ok.ret == pytest.ExitCode.OK, ok.stdout.str()
    ok.assert_outcomes(passed=1)


@pytest.mark.parametrize("concurrency", [1, 8], ids=["one-at-a-time", "side-by-side"])
def test_verdicts_outcomes_and_results_json(pytester: pytest.Pytester, run_token: str, concurrency: int) -> None:
    """The same cells, messages and report whether cases run one at a time or ahead in threads
    (after the first, every case here runs ahead: pytest replays what each phase raised)."""
    pytester.makepyfile(test_selftest=VERDICT_SUITE)
    out = pytester.path / "out.json"
    result = pytester.runpytest_subprocess(
        "test_selftest.py",
        "--target=uvicorn-h11",
        f"--conformance-json={out}",
        f"--conformance-concurrency={concurrency}",
        "-rA",
    )
    # pass and info are passed, warn its own category; fail failed; error error; unsupported skipped.
    result.assert_outcomes(passed=2, failed=1, skipped=2, errors=1)
    assert "1 warned" in result.stdout.lines[-1]
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    data = load_results(out)
    jsonschema.validate(data, SCHEMA)
    got = {scenario: verdict for (_, scenario), verdict in verdicts(data).items()}
    assert got == {
        "core.selftest.passes": "pass",
        "core.selftest.fails": "fail",
        "core.selftest.warns": "warn",
        "core.selftest.info": "info",
        "core.selftest.unsupported": "unsupported",
        "core.selftest.needs_h2": "unsupported",
        "core.selftest.errors": "error",
    }
    cells = {r["scenario"]: r for r in data["results"]}
    assert cells["core.selftest.info"]["observed"] == "1.1"
    assert cells["core.selftest.fails"]["expected"] == "websocket"
    assert cells["core.selftest.fails"]["observed"] == "http"
    assert cells["core.selftest.fails"]["rerun"] == "pytest --target=uvicorn-h11 --scenario=core.selftest.fails"
    assert "does not declare http2" in cells["core.selftest.needs_h2"]["message"]
    assert "RuntimeError: the harness could not judge" in cells["core.selftest.errors"]["message"]
    assert "(at test_selftest.py:" in cells["core.selftest.errors"]["message"]  # where it was raised
    target = data["targets"][0]
    assert target["id"] == "uvicorn-h11"
    assert target["version"]
    assert target["stop"]["signal"] == "SIGTERM"
    assert "{port}" in target["command"]
    stdout = result.stdout.str()
    # The failure reads: requirement, expected, observed, how to re-run just this cell.
    for line in (
        "FAIL: core.selftest.fails on uvicorn-h11",
        "expected:    websocket",
        "observed:    http",
        "re-run:      pytest --target=uvicorn-h11 --scenario=core.selftest.fails",
        "wire trace",
    ):
        assert line in stdout
    result.stdout.fnmatch_lines(
        ["*asgi-conformance: 7 scenarios x 1 targets*", "uvicorn-h11 * 1 * 1 * 1 * 1 * 2 * 1 * 0"]
    )


SIDE_BY_SIDE_SUITE = """
import threading

from asgi_conformance import MUST, Server, check, expect, scenario

BOTH = threading.Barrier(2, timeout=5)
LOCK = threading.Lock()
RUNNING = {}


def _running(name, server):
    # The cases running on the same server process as this one, as it starts.
    address = repr(server.address)
    with LOCK:
        others = sorted(n for n, a in RUNNING.items() if a == address)
        RUNNING[name] = address
    try:
        expect(server.echo("/echo").scope.get("type"), "http", "type")
        if name in ("a", "b"):
            BOTH.wait()  # only passes when a and b run at the same time
    finally:
        with LOCK:
            RUNNING.pop(name, None)
    return others


@scenario("core.selftest.first", "the first case runs the ordinary way", level=MUST, spec="selftest")
def test_first(server: Server) -> None:
    _running("first", server)


@scenario("core.selftest.alone1", "sees no other case on its server", level=MUST, spec="selftest", alone=True)
def test_alone1(server: Server) -> None:
    others = _running("alone1", server)
    check(others == [], "another case ran beside an alone case", expected=[], observed=others)


@scenario("core.selftest.a", "runs beside b", level=MUST, spec="selftest")
def test_a(server: Server) -> None:
    _running("a", server)


@scenario("core.selftest.serial", "asks for a fixture the plugin does not give threads", level=MUST, spec="selftest")
def test_serial(server: Server, tmp_path) -> None:
    _running("serial", server)


@scenario("core.selftest.alone2", "sees no other case on its server", level=MUST, spec="selftest", alone=True)
def test_alone2(server: Server) -> None:
    others = _running("alone2", server)
    check(others == [], "another case ran beside an alone case", expected=[], observed=others)


@scenario("core.selftest.b", "runs beside a", level=MUST, spec="selftest")
def test_b(server: Server) -> None:
    _running("b", server)
"""


def test_cases_run_side_by_side_and_alone_cases_on_their_own_server(pytester: pytest.Pytester, run_token: str) -> None:
    """a and b can only pass together (a barrier of two); the ``alone`` cases share a server
    process that no other case uses, one at a time (each would see another on its server);
    the case that asks for another fixture (it cannot run ahead) comes right after the first
    case; the results carry each case's own time."""
    pytester.makepyfile(test_side=SIDE_BY_SIDE_SUITE)
    out = pytester.path / "out.json"
    result = pytester.runpytest_subprocess(
        "test_side.py", "--target=uvicorn-h11", "--conformance-concurrency=4", f"--conformance-json={out}", "-v"
    )
    result.assert_outcomes(passed=6)
    order = [line.split("::")[1].split("[")[0] for line in result.stdout.lines if "PASSED" in line]
    assert order == ["test_first", "test_serial", "test_alone1", "test_a", "test_alone2", "test_b"]
    data = load_results(out)
    assert all(0 < r["duration_s"] < 10 for r in data["results"]), data["results"]
    serial = pytester.runpytest_subprocess("test_side.py", "--target=uvicorn-h11", "--conformance-concurrency=1")
    serial.assert_outcomes(passed=4, errors=2)  # one at a time, a and b cannot meet: the proof can fail


def test_target_cmd_runs_the_catalogue(pytester: pytest.Pytester, run_token: str) -> None:
    out = pytester.path / "out.json"
    command = f"{shlex.quote(sys.executable)} -m uvicorn {{app}} --http h11 --host {{host}} --port {{port}}"
    result = pytester.runpytest_subprocess(
        f"--target-cmd={command}", "--target-name=mine", f"--conformance-json={out}", "--scenario=http.scope", "-q"
    )
    data = load_results(out)
    assert [t["id"] for t in data["targets"]] == ["mine"]
    assert data["targets"][0]["command"] == command
    assert data["results"], result.stdout.str()
    assert all(r["target"] == "mine" for r in data["results"])
    assert {r["verdict"] for r in data["results"]} <= {"pass", "warn", "info", "unsupported", "fail"}
    assert all(
        r["rerun"].startswith(f"pytest --target-cmd={shlex.quote(command)} --target-name=mine") for r in data["results"]
    )


def test_scenario_option_selects_by_id_and_prefix(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_selftest=VERDICT_SUITE)
    result = pytester.runpytest_subprocess(
        "test_selftest.py", "--target=uvicorn-h11", "--scenario=core.selftest.passes", "--scenario=core.selftest.info"
    )
    result.assert_outcomes(passed=2, deselected=5)


def test_no_paths_runs_the_packaged_catalogue(pytester: pytest.Pytester) -> None:
    """`pytest --target=X` in someone else's repository runs our suites, not theirs."""
    pytester.makepyfile(test_theirs="def test_theirs():\n    raise AssertionError('must not run')\n")
    result = pytester.runpytest_subprocess("--target=uvicorn-h11", "--scenario=http.scope.type", "-q")
    result.assert_outcomes(passed=1)


def test_plugin_is_inert_without_a_target(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    result = pytester.runpytest_subprocess("-q")
    result.assert_outcomes(passed=1)
    assert "asgi-conformance" not in result.stdout.str()


def test_target_fixture_without_a_target_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_selftest=VERDICT_SUITE)
    result = pytester.runpytest_subprocess("test_selftest.py")
    assert result.ret in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERRUPTED)
    assert "no target chosen" in result.stdout.str() + result.stderr.str()


def test_start_failure_makes_error_cells_and_the_run_goes_on(pytester: pytest.Pytester, run_token: str) -> None:
    out = pytester.path / "out.json"
    result = pytester.runpytest_subprocess(
        "--target=uvicorn-h11",
        f"--target-cmd={chaos_cmd('exit_at_start.py')} {{app}} {{port}}",
        "--target-name=broken",
        "--scenario=http.scope.type",
        "--scenario=http.scope.raw_path",
        f"--conformance-json={out}",
    )
    data = load_results(out)
    got = verdicts(data)
    assert got[("uvicorn-h11", "http.scope.type")] == "pass"
    assert got[("broken", "http.scope.type")] == "error"
    assert got[("broken", "http.scope.raw_path.value")] == "error"
    broken = [r for r in data["results"] if r["target"] == "broken"]
    assert all("exited with status 3" in r["message"] and "refuses to start" in r["message"] for r in broken)
    assert result.ret == pytest.ExitCode.TESTS_FAILED


@pytest.mark.parametrize("concurrency", [1, 8], ids=["one-at-a-time", "side-by-side"])
def test_crash_mid_run_turns_the_rest_into_errors(pytester: pytest.Pytester, run_token: str, concurrency: int) -> None:
    """The server dies on its third scenario request. One at a time, cases 1 and 2 pass and the
    rest are `error`; side by side, cases 2-5 race for the second request after the first case
    (always run the ordinary way): still two passes, and the other three are `error`."""
    out = pytester.path / "out.json"
    pytester.makepyfile(
        test_many=textwrap.dedent(
            """
            from asgi_conformance import MUST, Server, expect, scenario

            def make(n):
                @scenario(f"core.selftest.n{n}", f"case {n}", level=MUST, spec="selftest")
                def case(server: Server) -> None:
                    expect(server.echo("/echo").scope.get("type"), "http", "type")
                return case

            test_1, test_2, test_3, test_4, test_5 = (make(n) for n in range(1, 6))
            """
        )
    )
    result = pytester.runpytest_subprocess(
        "test_many.py",
        f"--target-cmd={chaos_cmd('die_after.py', '{app}', '{port}', '2')}",
        "--target-name=dies",
        f"--conformance-json={out}",
        f"--conformance-concurrency={concurrency}",
    )
    got = [r["verdict"] for r in load_results(out)["results"]]
    assert got[0] == "pass", got
    if concurrency == 1:
        assert got[:2] == ["pass", "pass"]
        assert set(got[2:]) == {"error"}, got
    assert sorted(got) == ["error", "error", "error", "pass", "pass"], got
    assert "exited" in result.stdout.str()


def test_xdist_keeps_verdicts(pytester: pytest.Pytester, run_token: str) -> None:
    pytester.makepyfile(test_selftest=VERDICT_SUITE)
    out = pytester.path / "out.json"
    result = pytester.runpytest_subprocess(
        "test_selftest.py", "--target=uvicorn-h11", "-n", "2", f"--conformance-json={out}"
    )
    result.assert_outcomes(passed=2, failed=1, skipped=2, errors=1)
    data = load_results(out)
    jsonschema.validate(data, SCHEMA)
    assert len(data["results"]) == 7
    assert data["targets"][0]["stop"]["signal"] == "SIGTERM"


def test_conformance_html_writes_the_report(pytester: pytest.Pytester, run_token: str) -> None:
    html, out = pytester.path / "site" / "index.html", pytester.path / "out.json"
    result = pytester.runpytest_subprocess(
        "--target=uvicorn-h11",
        "--scenario=http.scope.type",
        f"--conformance-html={html}",
        f"--conformance-json={out}",
        "-p",
        "no:cacheprovider",
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert f"report: {html}" in result.stdout.str()
    jsonschema.validate(load_results(out), SCHEMA)
    assert "http.scope.type" in html.read_text()


# -- --framework: framework scenarios run only when their framework is chosen ---------------------

FRAMEWORK_SUITE = """
from asgi_conformance import MUST, Server, expect, scenario

@scenario("fw.starlette.selftest_fails", "a framework scenario", level=MUST, spec="selftest", framework="starlette")
def test_framework_fails(server: Server) -> None:
    expect(server.echo("/echo").scope.get("type"), "websocket", "type")

@scenario("core.selftest.plain", "a plain scenario", level=MUST, spec="selftest")
def test_plain(server: Server) -> None:
    expect(server.echo("/echo").scope.get("type"), "http", "type")
"""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--framework=nosuch"], "unknown framework 'nosuch'; choose from: starlette, fastapi, litestar, quart"),
        (["--framework=starlette,bottle"], "unknown framework 'bottle'"),
    ],
)
def test_bad_framework_is_a_one_line_usage_error(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    result = pytester.runpytest_subprocess("--target=uvicorn-h11", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.strip()]
    assert len(errors) == 1, result.errlines
    assert message in errors[0]
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_framework_not_installed_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from asgi_conformance.apps import frameworks

    fake = frameworks.Framework("fakefw", "fakefw", "fakefw-extra", ("no_such_framework_module",), ("head",))
    monkeypatch.setitem(frameworks.FRAMEWORKS, "fakefw", fake)
    with pytest.raises(frameworks.FrameworkError, match=r"pip install 'asgi-conformance\[fakefw-extra\]'"):
        frameworks.resolve(["fakefw"])
    assert "fakefw" not in frameworks.resolve(["all"])  # 'all' = the installed ones
    assert frameworks.resolve(["fastapi, starlette", "starlette"]) == ["starlette", "fastapi"]


def test_framework_scenarios_are_deselected_unless_chosen(pytester: pytest.Pytester, run_token: str) -> None:
    pytester.makepyfile(test_selftest=FRAMEWORK_SUITE)
    plain = pytester.runpytest_subprocess("test_selftest.py", "--target=uvicorn-h11")
    plain.assert_outcomes(passed=1, deselected=1)
    out = pytester.path / "out.json"
    chosen = pytester.runpytest_subprocess(
        "test_selftest.py", "--target=uvicorn-h11", "--framework=starlette", f"--conformance-json={out}"
    )
    chosen.assert_outcomes(passed=1, failed=1)
    assert "frameworks: starlette" in chosen.stdout.str()
    data = load_results(out)
    jsonschema.validate(data, SCHEMA)
    cell = next(r for r in data["results"] if r["scenario"] == "fw.starlette.selftest_fails")
    assert cell["rerun"] == "pytest --target=uvicorn-h11 --framework=starlette --scenario=fw.starlette.selftest_fails"
    declared = next(s for s in data["scenarios"] if s["id"] == "fw.starlette.selftest_fails")
    assert declared["framework"] == "starlette"
    assert "framework" not in next(s for s in data["scenarios"] if s["id"] == "core.selftest.plain")
    # Naming the framework's IDs with --scenario runs them too (what a re-run command or a mutant test does).
    named = pytester.runpytest_subprocess(
        "test_selftest.py", "--target=uvicorn-h11", "--scenario=fw.starlette.selftest_fails"
    )
    named.assert_outcomes(failed=1, deselected=1)
    prefix_only = pytester.runpytest_subprocess("test_selftest.py", "--target=uvicorn-h11", "--scenario=fw")
    prefix_only.assert_outcomes(deselected=2)
