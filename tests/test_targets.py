"""Target adapters: the built-in commands, resolution and --target-cmd parsing."""

from __future__ import annotations

import sys
from dataclasses import replace

import pytest

from asgi_conformance.targets import BUILTIN_TARGETS, TargetError, from_command, resolve

EIGHT = [
    "uvicorn",
    "uvicorn-h11",
    "uvicorn-wsproto",
    "hypercorn",
    "hypercorn-trio",
    "daphne",
    "granian",
    "gunicorn-uvicorn",
]


def test_the_eight_builtins() -> None:
    assert list(BUILTIN_TARGETS) == EIGHT
    for target in BUILTIN_TARGETS.values():
        assert target.default_bind in target.bind_modes
        assert target.extra
        for bind in target.bind_modes:
            argv = target.command("m:app", bind, {"host": "127.0.0.1", "port": "1", "uds": "/s", "fd": "3"})
            assert argv[0] == sys.executable
            assert "m:app" in argv
            assert not any("{" in part for part in argv), argv


def test_uvicorn_commands() -> None:
    argv = BUILTIN_TARGETS["uvicorn-h11"].command("m:app", "port", {"host": "127.0.0.1", "port": "8"}, "/api")
    assert argv[1:] == [
        "-m",
        "uvicorn",
        "m:app",
        "--http",
        "h11",
        "--ws",
        "websockets",
        "--loop",
        "uvloop",
        "--host",
        "127.0.0.1",
        "--port",
        "8",
        "--root-path",
        "/api",
    ]
    with pytest.raises(TargetError, match="cannot bind by fd"):
        BUILTIN_TARGETS["granian"].command("m:app", "fd", {})


def test_resolve_all_unknown_and_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    assert [t.id for t in resolve(["all"])] == EIGHT
    assert [t.id for t in resolve(["uvicorn,daphne", "uvicorn"])] == ["uvicorn", "daphne"]
    with pytest.raises(TargetError, match="unknown target 'nosuch'"):
        resolve(["nosuch"])
    broken = replace(BUILTIN_TARGETS["daphne"], modules=("no_such_module_xyz",))
    monkeypatch.setitem(BUILTIN_TARGETS, "daphne", broken)
    with pytest.raises(TargetError, match=r"pip install 'asgi-conformance\[daphne\]'"):
        resolve(["daphne"])
    assert "daphne" not in [t.id for t in resolve(["all"])]


def test_from_command() -> None:
    target = from_command("myserver {app} --bind unix:{uds}", "mine", "lifespan")
    assert (target.id, target.default_bind, target.capabilities) == ("mine", "uds", frozenset({"lifespan"}))
    assert "uds" in target.all_capabilities
    assert target.command("m:a", "uds", {"uds": "/tmp/s"}) == ["myserver", "m:a", "--bind", "unix:/tmp/s"]
    assert from_command("{python} -m x {app} --fd {fd}", None, None).id == "custom"
    with pytest.raises(TargetError, match="built-in"):
        from_command("x {app} {port}", "uvicorn", None)
    with pytest.raises(TargetError, match="cannot parse"):
        from_command("x {app} '{port}", None, None)


def test_tls_commands() -> None:
    """Every built-in serves TLS: its tls_args (or daphne's tls_bind_args) fill every placeholder."""
    paths = {"certfile": "/c.pem", "keyfile": "/k.pem", "ca_certs": "/ca.pem"}
    values = {**paths, **{f"{k}_endpoint": v for k, v in paths.items()}}
    for target in BUILTIN_TARGETS.values():
        assert "tls" in target.capabilities, target.id
        for bind in target.tls_bind_modes:
            argv = target.command("m:app", bind, {"host": "127.0.0.1", "port": "1", "uds": "/s", "fd": "3"}, tls=values)
            assert not any("{" in part for part in argv), argv
            assert any("/k.pem" in part for part in argv), argv
    daphne = BUILTIN_TARGETS["daphne"]
    assert daphne.tls_bind_modes == ("port",)
    argv = daphne.command("m:app", "port", {"host": "127.0.0.1", "port": "9"}, tls=values)
    assert "-e" in argv
    assert "-b" not in argv
    with pytest.raises(TargetError, match="cannot serve TLS bound by fd"):
        daphne.command("m:app", "fd", {"fd": "3"}, tls=values)
