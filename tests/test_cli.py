"""The asgi-conformance command."""

from __future__ import annotations

import subprocess
import sys

import pytest

from asgi_conformance.cli import main


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


def test_run_passes_arguments_to_pytest_and_returns_its_code(tmp_path: object, run_token: str) -> None:
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
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert "asgi-conformance 0.1.0" in capsys.readouterr().out
