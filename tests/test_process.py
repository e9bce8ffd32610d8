"""Server process control: start, readiness, failure to start, hangs, stop, no orphans."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from asgi_conformance import client
from asgi_conformance.process import ServerProcess, TargetStartError, inherited_environment
from asgi_conformance.targets import BUILTIN_TARGETS, BindMode, from_command
from asgi_conformance.timing import Timeouts

from .conftest import chaos_cmd, processes_tagged

FAST = Timeouts(scale=0.2)  # 4 s startup, 1 s stop grace: chaos targets never need more


def _process(tmp_path: Path, command: str, app: str = "asgi_conformance.apps.serve:app") -> ServerProcess:
    target = from_command(command, "chaos", None)
    return ServerProcess(target, app=app, workdir=tmp_path, timeouts=FAST)


@pytest.mark.parametrize("target_id", ["uvicorn-h11", "hypercorn", "daphne"])
def test_starts_serves_and_stops_a_real_server(tmp_path: Path, run_token: str, target_id: str) -> None:
    process = ServerProcess(
        BUILTIN_TARGETS[target_id], app="asgi_conformance.apps.serve:app", workdir=tmp_path, timeouts=Timeouts()
    )
    process.start()
    try:
        assert process.alive
        assert process.ready_after is not None
        assert process.address is not None
        outcome = client.exchange(process.address, client.build_request("GET", "/echo"), timeout=5)
        assert isinstance(outcome, client.Response)
        assert outcome.status == 200
    finally:
        result = process.stop()
    assert not result.forced
    assert result.signal == "SIGTERM"
    assert result.exit_status in (0, -signal.SIGTERM)
    assert process.stop() is result  # idempotent


def test_exit_at_start_is_a_start_error_with_the_log_tail(tmp_path: Path, run_token: str) -> None:
    process = _process(tmp_path, chaos_cmd("exit_at_start.py") + " {app} {port}")
    began = time.monotonic()
    with pytest.raises(TargetStartError) as raised:
        process.start()
    assert time.monotonic() - began < 3
    assert "exited with status 3" in str(raised.value)
    assert "refuses to start" in str(raised.value)


@pytest.mark.parametrize("script", ["never_ready.py", "garbage.py"])
def test_a_server_that_never_answers_well_fails_at_the_deadline(tmp_path: Path, run_token: str, script: str) -> None:
    process = _process(tmp_path, chaos_cmd(script, "{port}") + " {app}")
    began = time.monotonic()
    with pytest.raises(TargetStartError) as raised:
        process.start()
    elapsed = time.monotonic() - began
    assert FAST.startup <= elapsed < FAST.startup + FAST.stop_grace + 3
    assert "not ready after" in str(raised.value)
    assert not process.alive


def test_sigterm_ignored_with_children_is_killed_as_a_group(tmp_path: Path, run_token: str) -> None:
    process = _process(tmp_path, chaos_cmd("stubborn.py", "{app}", "{port}"))
    process.start()
    assert len(processes_tagged(run_token)) >= 3  # leader, uvicorn, sleeper
    result = process.stop()
    assert result.forced
    assert result.exit_status == -signal.SIGKILL
    assert result.seconds < 2 * FAST.stop_grace + 2
    assert result.survivors == ()
    assert processes_tagged(run_token) == []


@pytest.fixture
def kernel_offers(monkeypatch: pytest.MonkeyPatch) -> Callable[[list[int]], None]:
    """``kernel_offers(ports)``: from then on, a socket's bind to port 0 gets the next of
    ``ports`` (a stand-in for ``socket.socket`` with just enough of a socket), and no port
    counts as given out before."""
    import asgi_conformance.process as process_module

    def offer(ports: list[int]) -> None:
        offered = iter(ports)

        class Offering:
            def __init__(self, *args: object) -> None:
                self.port = 0

            def __enter__(self) -> Offering:
                return self

            def __exit__(self, *exc: object) -> None:
                return None

            def bind(self, address: tuple[str, int]) -> None:
                self.port = next(offered)

            def getsockname(self) -> tuple[str, int]:
                return ("127.0.0.1", self.port)

            def close(self) -> None:
                return None

        monkeypatch.setattr(process_module, "_GIVEN_PORTS", set())
        monkeypatch.setattr("asgi_conformance.process.socket.socket", Offering)

    return offer


@pytest.fixture
def private_claims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Port claims in a file of this test's own: a claim lasts as long as the process holding
    it, and an xdist worker runs many tests (a port the last test claimed stays claimed)."""
    import asgi_conformance.process as process_module

    path = tmp_path / "claims"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    monkeypatch.setattr(process_module, "_claims_fd", fd)
    try:
        yield path
    finally:
        os.close(fd)  # (releases this process's claims in it)


def test_a_port_is_given_to_one_server_only(kernel_offers: Callable[[list[int]], None], private_claims: Path) -> None:
    """The kernel may offer a port again before the server it was given to has bound it; a
    server with SO_REUSEPORT would then share it with the next one (granian does)."""
    import asgi_conformance.process as process_module

    kernel_offers([61_001, 61_001, 61_001, 61_002])
    assert [process_module._free_port(), process_module._free_port()] == [61_001, 61_002]


@pytest.mark.parametrize("bind", ["port", "fd"])
def test_a_port_claimed_by_another_harness_process_is_not_given(
    bind: str, kernel_offers: Callable[[list[int]], None], private_claims: Path
) -> None:
    """Two harness processes side by side (``asgi-conformance run``): a port one of them gave a
    server that has not bound it yet (a lifespan startup runs first) is not given again by
    the other, to a server that binds it (port) nor to a listener handed over (fd). A child
    process claims the first offered port and holds it."""
    import subprocess

    import asgi_conformance.process as process_module

    claimed = 61_101
    with subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, sys; import asgi_conformance.process as p; p._claims_fd = os.open(sys.argv[1], os.O_RDWR); "
            f"print(p._claim({claimed}), flush=True); sys.stdin.read()",
            str(private_claims),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "True"  # it holds the claim until its stdin closes
            kernel_offers([claimed, claimed + 1])
            if bind == "port":
                assert process_module._free_port() == claimed + 1
            else:
                assert process_module._unclaimed_listener().getsockname()[1] == claimed + 1
        finally:
            assert holder.stdin is not None
            holder.stdin.close()
            holder.wait(10)


def test_port_already_taken_is_retried(tmp_path: Path, run_token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import asgi_conformance.process as process_module

    taken = process_module._free_port()
    blocker = __import__("socket").create_server(("127.0.0.1", taken))
    ports = iter([taken])
    real = process_module._free_port
    monkeypatch.setattr(process_module, "_free_port", lambda: next(ports, None) or real())
    process = ServerProcess(
        BUILTIN_TARGETS["uvicorn-h11"], app="asgi_conformance.apps.serve:app", workdir=tmp_path, timeouts=Timeouts()
    )
    try:
        process.start()
        assert process.address is not None
        assert process.address.port != taken
        # uvicorn ran the lifespan around the failed bind; its journal is not the new launch's.
        lifespan = process.journal.records("lifespan")
        assert [r.get("type") for r in lifespan if r.get("kind") == "event"] == ["lifespan.startup"]
    finally:
        process.stop()
        blocker.close()


def test_uds_and_fd_binds(tmp_path: Path, run_token: str) -> None:
    binds: tuple[BindMode, ...] = ("uds", "fd")
    for bind in binds:
        process = ServerProcess(
            BUILTIN_TARGETS["hypercorn"],
            app="asgi_conformance.apps.serve:app",
            workdir=tmp_path / bind,
            timeouts=Timeouts(),
            bind=bind,
        )
        process.start()
        try:
            assert process.address is not None
            outcome = client.exchange(process.address, client.build_request("GET", "/echo"), timeout=5)
            assert isinstance(outcome, client.Response)
            assert outcome.status == 200
        finally:
            process.stop()
        if bind == "uds":
            assert process.address.uds is not None
            assert not os.path.exists(process.address.uds)


def test_log_slices(tmp_path: Path, run_token: str) -> None:
    process = ServerProcess(
        BUILTIN_TARGETS["uvicorn-h11"], app="asgi_conformance.apps.serve:app", workdir=tmp_path, timeouts=Timeouts()
    )
    process.start()
    try:
        assert process.address is not None
        offset = process.log_offset()
        client.exchange(process.address, client.build_request("GET", "/echo/slice-marker"), timeout=5)
        assert process.wait_exit(0.0) is None
        deadline = time.monotonic() + 5
        while "slice-marker" not in process.log_slice(offset) and time.monotonic() < deadline:
            time.sleep(0.01)  # the access log line is written after the response
        assert "slice-marker" in process.log_slice(offset)
        assert "slice-marker" not in process.log_slice(0)[:offset]
    finally:
        process.stop()


def test_a_readiness_answer_from_another_launch_is_not_ours(tmp_path: Path, run_token: str) -> None:
    """Another harness process on the machine may have given the same port to its server: the
    readiness answer names the journal of the launch that answered, and only ours counts."""
    import json

    ours = ServerProcess(
        BUILTIN_TARGETS["uvicorn-h11"], app="asgi_conformance.apps.serve:app", workdir=tmp_path, timeouts=Timeouts()
    )

    def answer(body: dict[str, object]) -> client.Response:
        return client.Response(200, b"OK", b"1.1", (), json.dumps(body).encode())

    assert ours._answered_by_another(answer({"pid": 1, "journal": "/elsewhere/journal"}))
    assert not ours._answered_by_another(answer({"pid": 1, "journal": str(ours.journal_dir)}))
    assert not ours._answered_by_another(answer({"pid": 1}))  # an app that does not say
    assert not ours._answered_by_another(client.Response(200, b"OK", b"1.1", (), b"not json"))
    try:
        ours.start()
        assert ours.address is not None
        ready = client.exchange(
            ours.address, client.build_request("GET", "/__asgi_conformance__/ready"), timeout=5.0, record=False
        )
        assert isinstance(ready, client.Response)
        assert json.loads(ready.body)["journal"] == str(ours.journal_dir)
    finally:
        ours.stop()


def test_inherited_environment_survives_another_thread_changing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """pytest changes PYTEST_CURRENT_TEST in its thread while cases running ahead start servers:
    a plain copy of os.environ then raises now and again (KeyError, RuntimeError); this one
    does not, and leaves pytest's per-test variable out."""
    assert "PYTEST_CURRENT_TEST" in os.environ  # pytest's, set for this test
    name = "ASGI_CONFORMANCE_TEST_TOGGLED"
    monkeypatch.delenv(name, raising=False)
    stop = threading.Event()

    def toggle() -> None:
        for _ in range(2_000_000):  # bounded; stopped long before
            if stop.is_set():
                return
            os.environ[name] = "x"
            del os.environ[name]

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: the race shows at once
    thread = threading.Thread(target=toggle)
    thread.start()
    try:
        copies = [inherited_environment() for _ in range(5000)]
    finally:
        stop.set()
        thread.join(timeout=10)
        sys.setswitchinterval(interval)
        os.environ.pop(name, None)
    assert not thread.is_alive()
    assert all("PYTEST_CURRENT_TEST" not in env and "PATH" in env for env in copies)
