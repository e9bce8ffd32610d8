"""The asgi-conformance command."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from asgi_conformance.cli import main

from .conftest import load_results, verdicts
from .test_results import SCHEMA, make_results


def test_targets_lists_the_builtins(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["targets"]) == 0
    out = capsys.readouterr().out
    for name in ("uvicorn-h11", "hypercorn-trio", "daphne", "granian", "gunicorn-uvicorn"):
        assert name in out
    assert "asgi-conformance[hypercorn]" in out


def test_list_and_coverage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "http.scope"]) == 0
    out = capsys.readouterr().out
    assert "http.scope.type" in out
    assert "ls." not in out
    assert main(["list", "--coverage", "--section", "4", "-v"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("§4 HTTP connection scope")
    assert "x http.scope.type" in out


def test_run_passes_arguments_to_pytest_and_returns_its_code(tmp_path: Path, run_token: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "asgi_conformance", "run", "--target=nosuch"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 4
    assert "unknown target 'nosuch'" in proc.stderr
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "asgi_conformance",
            "run",
            "--target=uvicorn-h11",
            "--scenario=http.scope.type",
            "-q",
            "-p",
            "no:cacheprovider",
            "--no-html",
            "--json",
            str(tmp_path / "out.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout  # one target: pytest's own output is shown
    assert re.search(r"\[1/1\] uvicorn-h11  \S+ +1 pass  \(\d+\.\d s, exit 0\)", proc.stdout), proc.stdout
    assert verdicts(load_results(tmp_path / "out.json")) == {("uvicorn-h11", "http.scope.type"): "pass"}


def test_run_without_a_target_is_a_usage_error(tmp_path: Path) -> None:
    """Not a plain pytest run of whatever tests the directory holds."""
    (tmp_path / "test_other.py").write_text("def test_other() -> None:\n    pass\n")
    proc = subprocess.run(
        [sys.executable, "-m", "asgi_conformance", "run", "--no-html", "-p", "no:cacheprovider"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "asgi-conformance run: no target; pass --target=NAME" in proc.stderr
    assert "test_other" not in proc.stdout


def test_run_targets_in_parallel_then_merge_and_render(tmp_path: Path, run_token: str) -> None:
    out, html = tmp_path / "merged.json", tmp_path / "report" / "index.html"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "asgi_conformance",
            "run",
            "--target",
            "uvicorn-h11",
            "--target=hypercorn",
            "--jobs=2",
            f"--json={out}",
            "--html",
            str(html),
            "--scenario=http.scope.type",
            "--scenario=core.selftest.none_such_prefix",
            "-p",
            "no:cacheprovider",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    progress = [line for line in proc.stdout.splitlines() if line.startswith("[")]
    assert sorted(line.split()[1] for line in progress) == ["hypercorn", "uvicorn-h11"]
    assert all("1 pass" in line for line in progress)
    assert "collected" not in proc.stdout  # several targets: one line each, pytest's output in logs
    data = load_results(out)
    jsonschema.validate(data, SCHEMA)
    assert verdicts(data) == {("uvicorn-h11", "http.scope.type"): "pass", ("hypercorn", "http.scope.type"): "pass"}
    assert len(data["run"]["sources"]) == 2
    assert "http.scope.type" in html.read_text()


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("asgi-conformance: ")
    return lines[0]


def _write(path: Path, data: Any) -> str:
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def test_merge_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _write(tmp_path / "a.json", make_results({("uvicorn", "http.a"): "pass"}))
    b = _write(tmp_path / "b.json", make_results({("granian", "http.a"): "fail"}))
    out = tmp_path / "out" / "merged.json"
    assert main(["merge", a, b, "-o", str(out)]) == 0
    assert "merged 2 runs: 2 targets, 2 cells" in capsys.readouterr().out
    merged = load_results(out)
    jsonschema.validate(merged, SCHEMA)
    assert verdicts(merged) == {("uvicorn", "http.a"): "pass", ("granian", "http.a"): "fail"}
    # A directory stands for the *.json files in it.
    assert main(["merge", str(tmp_path), "-o", str(tmp_path / "again.json")]) == 0
    assert verdicts(load_results(tmp_path / "again.json")) == verdicts(merged)
    capsys.readouterr()
    # The same cell in two inputs: an error unless --prefer-last.
    assert main(["merge", a, a, "-o", str(out)]) == 2
    assert "duplicate cells: uvicorn x http.a" in _error_line(capsys)
    assert main(["merge", a, a, "-o", str(out), "--prefer-last"]) == 0
    # Another schema version: refused as a whole, one line.
    newer = _write(tmp_path / "newer.json", {**make_results({("x", "http.a"): "pass"}), "schema": 2})
    assert main(["merge", a, newer, "-o", str(out)]) == 2
    assert "newer.json: results schema 2; this asgi-conformance" in _error_line(capsys)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "missing.json: no such file"),
        ("<html>", "bad.json: not JSON"),
        (
            {"schema": 1, "run": {}, "targets": [], "scenarios": []},
            "does not match the results schema: (top): 'results'",
        ),
    ],
)
@pytest.mark.parametrize("command", ["merge", "report", "diff"])
def test_bad_input_files_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, content: Any, message: str
) -> None:
    name = message.split(":")[0] if content is None or isinstance(content, str) else "bad.json"
    path = str(tmp_path / name) if content is None else _write(tmp_path / name, content)
    good = _write(tmp_path / "good.json", make_results({("a", "http.a"): "pass"}))
    argv = {
        "merge": ["merge", good, path, "-o", str(tmp_path / "o.json")],
        "report": ["report", path, "-o", str(tmp_path / "o.html")],
        "diff": ["diff", good, path],
    }[command]
    assert main(argv) == 2
    assert message in _error_line(capsys)


def test_report_command_writes_the_html(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path / "r.json", make_results({("uvicorn", "http.scope.type"): "fail"}))
    out = tmp_path / "site" / "index.html"
    assert main(["report", path, "-o", str(out)]) == 0
    assert f"report: {out}" in capsys.readouterr().out
    text = out.read_text()
    assert text.lstrip().lower().startswith("<!doctype html")
    assert "http.scope.type" in text


def test_diff_command_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = _write(tmp_path / "old.json", make_results({("u", "http.a"): "pass", ("u", "http.b"): "fail"}))
    better = _write(tmp_path / "better.json", make_results({("u", "http.a"): "pass", ("u", "http.b"): "pass"}))
    worse = _write(tmp_path / "worse.json", make_results({("u", "http.a"): "fail", ("u", "http.b"): "fail"}))
    assert main(["diff", old, better]) == 0
    assert "http.b" in capsys.readouterr().out
    html = tmp_path / "diff.html"
    assert main(["diff", old, worse, "--html", str(html)]) == 1
    out = capsys.readouterr().out
    assert "http.a" in out
    assert "http.a" in html.read_text()
    assert main(["diff", old, old]) == 0


def test_list_filters_by_area_and_level(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--area", "http_scope", "--level", "must"]) == 0
    rows = capsys.readouterr().out.splitlines()[1:-1]
    assert rows
    assert all(row.split()[1] == "MUST" and row.split()[2] == "http_scope" for row in rows)
    assert main(["list", "--level", "info", "ls"]) == 0
    rows = capsys.readouterr().out.splitlines()[1:-1]
    assert all(row.split()[1] == "info" and row.startswith("ls.") for row in rows)


@pytest.mark.parametrize("command", ["report", "diff", "merge", "targets", "list"])
def test_help_for_every_command(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    assert f"usage: asgi-conformance {command}" in capsys.readouterr().out


def test_run_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--jobs=N" in out
    assert "goes to each pytest process" in out


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert "asgi-conformance 0.1.0" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--jobs=0"], "run: --jobs must be at least 1"),
        (["run", "-j", "many"], "run: --jobs must be a whole number, not 'many'"),
        (["run", "--html"], "run: --html needs a value"),
    ],
)
def test_run_option_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert message in _error_line(capsys)


def test_list_shows_and_filters_the_framework(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--framework", "starlette", "fw"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:5] == ["scenario", "level", "area", "requires", "framework"]
    rows = lines[1:-1]
    assert rows
    assert all(row.startswith("fw.starlette.") and "starlette" in row.split()[3:5] for row in rows)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--framework=nosuch"], "unknown framework 'nosuch'; choose from: starlette, fastapi"),
        (["run", "--framework"], "run: --framework needs a value"),
    ],
)
def test_run_checks_the_framework_first(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 4
    assert message in _error_line(capsys)
