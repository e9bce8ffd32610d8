"""Server processes: launch a target on an app, know when it is ready, stop it for sure.

Rules (each learnt the hard way, see DESIGN.md):

* own process group (``start_new_session``), so the whole tree can be ended;
* output to a log file, never an undrained pipe (uvicorn stalled after 256 requests);
* bind by pre-bound socket (``pass_fds``), by a port chosen here (retried if taken, never
  given to two servers), or by a Unix socket, as the adapter allows;
* ready = a real HTTP request to the control path answered 200, never a TCP connect
  (a pre-bound socket accepts connects before the server runs);
* stop = the adapter's signal to the leader (SIGTERM to hypercorn's whole group loses
  ``lifespan.shutdown``), a grace period, then SIGKILL to the group; the group is
  killed while the leader is still an unreaped zombie, so its id cannot be reused.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import fcntl
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from . import client
from .journal import Journal
from .targets import BindMode, Target, fill
from .timing import Deadline, Timeouts
from .tls import Authority

__all__ = [
    "READY_PATH",
    "ServerProcess",
    "StopResult",
    "TargetDied",
    "TargetStartError",
    "TargetUnresponsive",
    "inherited_environment",
    "stop_together",
]

READY_PATH = "/__asgi_conformance__/ready"
LOG_TAIL_BYTES = 4000
ENV_RUN_TOKEN = "ASGI_CONFORMANCE_RUN"
_PORT_RETRIES = 3
_ENVIRON_COPIES = 100
_PER_TEST_VARIABLE = "PYTEST_CURRENT_TEST"


class TargetStartError(Exception):
    """The target did not start or never became ready; carries the log tail."""


class TargetDied(Exception):
    """The target's process exited while cells still needed it."""


class TargetUnresponsive(TargetDied):
    """The target's process is alive but no longer answers its control path: it cannot be judged."""


@dataclass(frozen=True)
class StopResult:
    """How a stop went: the signal sent, the leader's exit status, whether SIGKILL was
    needed, and any process of the group still alive afterwards (should be none)."""

    signal: str
    exit_status: int | None
    forced: bool
    seconds: float
    survivors: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "signal": self.signal,
            "exit_status": self.exit_status,
            "forced": self.forced,
            "seconds": round(self.seconds, 3),
            "survivors": list(self.survivors),
        }


class ServerProcess:
    """One running target: started by ``start``, ended by ``stop`` (idempotent)."""

    def __init__(
        self,
        target: Target,
        *,
        app: str,
        workdir: Path,
        timeouts: Timeouts,
        bind: BindMode | None = None,
        root_path: str | None = None,
        env: dict[str, str] | None = None,
        label: str = "server",
        ws_ping_interval: float | None = None,
        tls: Authority | None = None,
    ) -> None:
        self.target = target
        self.tls = tls
        """With an authority, the target serves TLS with its certificate (``Target.tls_args``),
        and ``address`` carries a client context that trusts it (offering ALPN http/1.1)."""
        self.app = app
        self.bind: BindMode = bind or target.default_bind
        self.root_path = root_path
        self.ws_ping_interval = ws_ping_interval
        self.timeouts = timeouts
        self.workdir = workdir
        self.label = label
        self.journal_dir = workdir / f"{label}.journal"
        self.journal_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / f"{label}.log"
        self.extra_env = env or {}
        self.popen: subprocess.Popen[bytes] | None = None
        self.address: client.Address | None = None
        self.argv: list[str] = []
        self.started_at = 0.0
        self.ready_after: float | None = None
        self.stop_result: StopResult | None = None
        self.unresponsive: str | None = None
        """Why the server is taken as hung (set by ``require_responsive``, never cleared)."""
        self._listener: socket.socket | None = None
        self._uds_dir: str | None = None

    # -- launch ---------------------------------------------------------------------

    def start(self, *, wait_ready: bool = True) -> None:
        """Launch (retrying a taken port) and, by default, wait until ready."""
        for attempt in range(_PORT_RETRIES):
            self._launch()
            if not wait_ready:
                return
            try:
                self.wait_ready()
                return
            except TargetStartError:
                if self.bind == "port" and attempt + 1 < _PORT_RETRIES and self._port_was_taken():
                    self.stop()
                    self._clear_journal()
                    continue
                self.stop()
                raise

    def _clear_journal(self) -> None:
        """Forget what a launch that did not serve recorded: uvicorn runs the app's lifespan
        startup, and its shutdown, around a bind that fails, and the next launch's cases
        would read that ``lifespan.shutdown`` as their own."""
        shutil.rmtree(self.journal_dir, ignore_errors=True)
        self.journal_dir.mkdir(parents=True, exist_ok=True)

    def _launch(self) -> None:
        self.stop_result = None  # a relaunch (port retry) must be stopped again
        values: dict[str, str] = {}
        pass_fds: tuple[int, ...] = ()
        if self.bind == "fd":
            listener = _unclaimed_listener()
            listener.listen(128)
            listener.set_inheritable(True)
            self._listener = listener
            host, port = listener.getsockname()[:2]
            values = {"fd": str(listener.fileno()), "host": host, "port": str(port)}
            pass_fds = (listener.fileno(),)
            self.address = client.Address(host=host, port=port)
        elif self.bind == "port":
            port = _free_port()
            values = {"host": "127.0.0.1", "port": str(port)}
            self.address = client.Address(host="127.0.0.1", port=port)
        else:
            # AF_UNIX paths are limited to ~107 bytes: keep them short, outside workdir.
            self._uds_dir = tempfile.mkdtemp(prefix="ac-")
            path = os.path.join(self._uds_dir, "s")
            values = {"uds": path}
            self.address = client.Address(uds=path)
        tls_values = self.tls.values() if self.tls is not None else None
        self.argv = self.target.command(self.app, self.bind, values, root_path=self.root_path, tls=tls_values)
        if self.tls is not None:
            self.address = self.address.with_tls(
                self.tls.client_context(alpn=["http/1.1"]), server_hostname="127.0.0.1"
            )
        if self.ws_ping_interval is not None:
            seconds = {
                "seconds": f"{self.ws_ping_interval:g}",
                "whole_seconds": str(max(1, math.ceil(self.ws_ping_interval))),
            }
            self.argv += [fill(part, seconds) for part in self.target.ws_ping_args]
        env = {
            **inherited_environment(),
            **self.target.env,
            **self.extra_env,
            "PYTHONUNBUFFERED": "1",
            "ASGI_CONFORMANCE_JOURNAL": str(self.journal_dir),
        }
        log = self.log_path.open("ab")
        try:
            log.write(f"--- asgi-conformance: starting {' '.join(self.argv)}\n".encode())
            log.flush()
            self.started_at = time.monotonic()
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=str(self.workdir),
                start_new_session=True,
                pass_fds=pass_fds,
            )
        except OSError as exc:
            raise TargetStartError(f"{self.target.id}: cannot run {self.argv[0]!r}: {exc}") from exc
        finally:
            log.close()
        if self._listener is not None:
            # The child holds its copy; ours only keeps the port reserved until then.
            self._listener.close()
            self._listener = None

    def wait_ready(self) -> None:
        """Wait until the control path answers 200; TargetStartError on exit or deadline."""
        outcome, last = self._wait_ready_or_exit(self.timeouts.startup)
        if outcome == "ready":
            return
        if outcome == "exited":
            raise TargetStartError(
                f"{self.target.id}: exited with status {self.exit_status()} before it was ready\n{self.log_tail()}"
            )
        raise TargetStartError(
            f"{self.target.id}: not ready after {self.timeouts.startup:.1f}s (last probe: {client.describe(last)})\n"
            f"{self.log_tail()}"
        )

    def wait_exit_or_ready(self, seconds: float) -> Literal["exited", "ready", "timeout"]:
        """Which comes first: the process exits, or it answers a request (it is serving)."""
        return self._wait_ready_or_exit(seconds)[0]

    def _wait_ready_or_exit(self, seconds: float) -> tuple[Literal["exited", "ready", "timeout"], object]:
        deadline = Deadline(seconds)
        assert self.address is not None
        pause = 0.005
        last: object = None
        while True:
            if self.exit_status() is not None:
                return "exited", last
            if deadline.expired:
                return "timeout", last
            last = client.exchange(
                self.address,
                client.build_request("GET", READY_PATH),
                timeout=min(1.0 * self.timeouts.scale, max(deadline.remaining(), 0.05)),
                record=False,
            )
            if isinstance(last, client.Response) and last.status == 200 and not self._answered_by_another(last):
                if self.ready_after is None:
                    self.ready_after = time.monotonic() - self.started_at
                return "ready", last
            time.sleep(min(pause, deadline.remaining()))  # poll interval, bounded by the deadline
            pause = min(pause * 2, 0.1)

    def _answered_by_another(self, response: client.Response) -> bool:
        """True when the readiness answer names another launch's journal: a server of another
        run (another harness process on this machine) holds the port we chose, and ours has
        not bound it (it will exit with "address already in use", and the port is retried)."""
        try:
            found = json.loads(response.body)
        except ValueError:
            return False
        journal = found.get("journal") if isinstance(found, dict) else None
        return isinstance(journal, str) and journal != str(self.journal_dir)

    def require_responsive(self, seconds: float) -> None:
        """Return if the server answers its control path within ``seconds``; else raise
        TargetDied (it exited) or TargetUnresponsive (remembered: later calls raise at once)."""
        if self.unresponsive is None:
            outcome = self.wait_exit_or_ready(seconds)
            if outcome == "ready":
                return
            if outcome == "exited":
                raise TargetDied(
                    f"{self.target.id}: the server exited (status {self.exit_status()})\n{self.log_tail()}"
                )
            self.unresponsive = (
                f"{self.target.id}: the server stopped answering (its control path got no 200 within {seconds:.1f}s);"
                f" its remaining cells cannot be judged\n{self.log_tail()}"
            )
        raise TargetUnresponsive(self.unresponsive)

    def _port_was_taken(self) -> bool:
        tail = self.log_tail().lower()
        return "address already in use" in tail or f"errno {errno.EADDRINUSE}" in tail

    # -- state ------------------------------------------------------------------------

    @property
    def journal(self) -> Journal:
        """What the app in this process recorded (see asgi_conformance.journal)."""
        return Journal(self.journal_dir)

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    def exit_status(self) -> int | None:
        """The leader's exit status if it has exited, without reaping it."""
        if self.popen is None:
            return None
        if self.popen.returncode is not None:
            return self.popen.returncode
        try:
            info = os.waitid(os.P_PID, self.popen.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return self.popen.poll()
        if info is None:
            return None
        return -info.si_status if info.si_code in (os.CLD_KILLED, os.CLD_DUMPED) else info.si_status

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.exit_status() is None

    def wait_exit(self, seconds: float) -> int | None:
        """Wait (without reaping) until the leader exits; its status, or None on timeout."""
        deadline = Deadline(seconds)
        pause = 0.002
        while True:
            status = self.exit_status()
            if status is not None or deadline.expired:
                return status
            time.sleep(min(pause, deadline.remaining()))  # poll interval, bounded by the deadline
            pause = min(pause * 2, 0.05)

    # -- logs -------------------------------------------------------------------------

    def log_offset(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_slice(self, start: int, limit: int = 16_000) -> str:
        """The log written since ``start`` (its last ``limit`` bytes), as text."""
        try:
            with self.log_path.open("rb") as f:
                end = f.seek(0, os.SEEK_END)
                f.seek(max(start, end - limit))
                data = f.read(limit)
        except FileNotFoundError:
            return ""
        return data.decode("utf-8", "replace")

    def log_tail(self, limit: int = LOG_TAIL_BYTES) -> str:
        return self.log_slice(0, limit)

    # -- stop -------------------------------------------------------------------------

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the leader only (if it has not exited)."""
        # os.kill, not Popen.send_signal: the latter polls first and may reap the leader,
        # after which its pid (the group id) could be reused.
        if self.alive and self.popen is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, sig)

    def stop(self) -> StopResult:
        """Graceful stop, then SIGKILL to the whole group; always reaps the leader."""
        if self.stop_result is not None:
            return self.stop_result
        if self.popen is None:
            self.stop_result = StopResult("none", None, False, 0.0)
            return self.stop_result
        began = time.monotonic()
        sig = self.target.stop_signal
        forced = False
        if self.exit_status() is None:
            self.signal(sig)
            if self.wait_exit(self.timeouts.stop_grace) is None:
                forced = True
        # Leader exited (a zombie, not reaped) or overstayed: end the whole group, and
        # wait until the kill has landed (SIGKILL is certain but not instant).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        survivors = _wait_group_gone(self.popen.pid, self.timeouts.stop_grace)
        status = self.popen.wait()
        self.stop_result = StopResult(sig.name, status, forced, time.monotonic() - began, survivors)
        self._cleanup()
        return self.stop_result

    def _cleanup(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._uds_dir is not None:
            with contextlib.suppress(OSError):
                for name in os.listdir(self._uds_dir):
                    os.unlink(os.path.join(self._uds_dir, name))
                os.rmdir(self._uds_dir)
            self._uds_dir = None

    def describe(self) -> dict[str, Any]:
        """Provenance for the results: what ran, bound how, and how it ended."""
        return {
            "bind": self.bind,
            "command": self.target.template
            or " ".join(self.target.command_template(self.bind, tls=self.tls is not None)),
            "argv": self.argv,
            "tls": self.tls is not None,
            "ready_after_s": round(self.ready_after, 3) if self.ready_after is not None else None,
            "stop": self.stop_result.to_json() if self.stop_result else None,
        }


def inherited_environment() -> dict[str, str]:
    """This process's environment, as a server inherits it: without pytest's per-test variable.

    pytest sets and deletes ``PYTEST_CURRENT_TEST`` in its own thread at every phase, while
    cases running ahead start servers from other threads; a copy of ``os.environ`` (made
    key by key) can then meet a key that has just gone (KeyError) or a mapping that changed
    size (RuntimeError), so the copy is tried again, a bounded number of times. The variable
    is left out: it names whichever test pytest's loop is at, not the case starting the server.
    """
    for _ in range(_ENVIRON_COPIES):
        try:
            env = dict(os.environ)
        except (KeyError, RuntimeError):
            continue  # pytest changed its variable during the copy
        env.pop(_PER_TEST_VARIABLE, None)
        return env
    raise RuntimeError(f"os.environ changed during each of {_ENVIRON_COPIES} copies")


def stop_together(processes: Iterable[ServerProcess]) -> None:
    """Stop processes side by side: together they take as long as the slowest, not the sum of
    their grace periods."""
    running = [p for p in processes if p.stop_result is None]
    if len(running) < 2:
        for process in running:
            process.stop()
        return
    with concurrent.futures.ThreadPoolExecutor(len(running), thread_name_prefix="asgi-conformance-stop") as pool:
        for future in [pool.submit(p.stop) for p in running]:
            future.result()


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes in process group ``pgid``, read from /proc."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(os.path.join(entry.path, "stat"), "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            members.append(int(entry.name))
    return members


def _wait_group_gone(pgid: int, seconds: float) -> tuple[int, ...]:
    """Wait until group ``pgid`` has no live member; the ones left at the deadline."""
    if not os.path.isdir("/proc"):
        return ()
    deadline = Deadline(seconds)
    pause = 0.001
    while True:
        members = _group_members(pgid)
        if not members or deadline.expired:
            return tuple(members)
        time.sleep(min(pause, deadline.remaining()))  # poll interval, bounded by the deadline
        pause = min(pause * 2, 0.05)


_GIVEN_PORTS: set[int] = set()
_GIVEN_PORTS_LOCK = threading.Lock()
_PORT_PICKS = 64
"""How many ports the kernel may offer before one not given out yet is taken anyway."""


def _free_port() -> int:
    """A free loopback port, never one this process gave a server before, nor one another
    harness process on this machine has claimed.

    A server that binds with SO_REUSEPORT (granian) shares a port with another such server
    instead of failing to bind: the kernel then spreads connections over both. Launches run
    side by side, so the kernel may offer a port that was just given to a server that has not
    bound it yet; a port is therefore handed out once per harness process. Harness processes
    run side by side too (``asgi-conformance run``), and a server that binds only after its
    lifespan startup leaves its port unbound for as long as the startup takes: each port
    given out is also claimed for the whole machine (``_claim``)."""
    port = 0
    for _ in range(_PORT_PICKS):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        with _GIVEN_PORTS_LOCK:
            if port not in _GIVEN_PORTS and _claim(port):
                _GIVEN_PORTS.add(port)
                return port
    return port


def _unclaimed_listener() -> socket.socket:
    """A socket bound to a loopback port that no other harness process has claimed (and now
    claimed by this one): the kernel would offer a port another process gave a server that
    has not bound it yet, and this listener would then take that server's connections."""
    for _ in range(_PORT_PICKS):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        with _GIVEN_PORTS_LOCK:
            if _claim(int(listener.getsockname()[1])):
                return listener
        listener.close()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    return listener


_CLAIMS_FILE = f"asgi-conformance-ports-{os.getuid()}"
_claims_fd: int | None = None


def _claim(port: int) -> bool:
    """Claim ``port`` for this process against the other harness processes of this user: an
    exclusive lock on byte ``port`` of one shared file, which the kernel releases when this
    process ends (however it ends). False: another process holds it. Without the file (it
    cannot be opened), every port is claimable, as before claims existed."""
    global _claims_fd
    if _claims_fd is None:
        try:
            path = os.path.join(tempfile.gettempdir(), _CLAIMS_FILE)
            _claims_fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)  # never through a link
        except OSError:
            return True
    try:
        fcntl.lockf(_claims_fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, port)
    except OSError:
        return False
    return True
