"""How the lifespan suites observe dedicated server runs.

A dedicated run starts the target on an app whose lifespan handler misbehaves on
purpose (see asgi_conformance.apps.lifespan), drives it (a request, the stop signal,
gates the app waits on) and returns one frozen observation that several scenarios
judge. The app records what happened in the journal stream ``lifespan``; records of
one process are in the order they happened. Every wait has a deadline from the run's
``Timeouts``; the waits for something *not* to happen are bounded by ``hold`` and say so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from asgi_conformance import Launcher, Server, ServerProcess, check, client
from asgi_conformance.apps.lifespan import HOLD_PREFIX
from asgi_conformance.timing import Deadline

Record = dict[str, Any]
EXIT_CHECK_S = 0.05  # how often a journal wait also looks whether the process has exited

# -- waiting on the journal ------------------------------------------------------------


def is_event(kind: str) -> Callable[[Record], bool]:
    return lambda r: r.get("kind") == "event" and r.get("type") == kind


def is_send(kind: str, label: str | None = None) -> Callable[[Record], bool]:
    return lambda r: r.get("kind") == "send" and r.get("type") == kind and r.get("label") == label


def is_hold(phase: str) -> Callable[[Record], bool]:
    return lambda r: r.get("kind") == "hold" and r.get("phase") == phase


def wait_record(process: ServerProcess, match: Callable[[Record], bool], seconds: float) -> Record | None:
    """The first ``lifespan`` record that matches, waiting up to ``seconds``.

    Gives up early once the process has exited (after one last look): nothing more
    can be written then.
    """
    deadline = Deadline(seconds)
    while True:
        exited = process.exit_status() is not None
        found = process.journal.wait_for("lifespan", match, min(EXIT_CHECK_S, deadline.remaining()))
        if found is not None or exited or deadline.expired:
            return found


def index_of(records: list[Record], match: Callable[[Record], bool]) -> int | None:
    return next((i for i, r in enumerate(records) if match(r)), None)


def describe_sends(records: list[Record]) -> str:
    """What the app's sends met, for notes: ``type: raised X`` per send."""
    parts = [
        f"send({r.get('type')}): {'raised ' + str(r['raised']) if r.get('raised') else 'returned'}"
        for r in records
        if r.get("kind") == "send"
    ]
    return "; ".join(parts) or "the app sent nothing"


# -- stopping --------------------------------------------------------------------------


@dataclass(frozen=True)
class StopInfo:
    """How a dedicated process ended after the harness asked it to stop."""

    signal: str
    exit_status: int | None
    forced: bool

    def describe(self) -> str:
        how = " (still running after the grace period: killed)" if self.forced else ""
        return f"stop signal {self.signal}, exit status {self.exit_status}{how}"


def finish_stop(process: ServerProcess, sent: str) -> StopInfo:
    """After the stop signal went out: wait for the exit (grace period), then make sure."""
    status = process.wait_exit(process.timeouts.stop_grace)
    result = process.stop()
    return StopInfo(sent, result.exit_status, status is None)


def graceful_stop(process: ServerProcess) -> StopInfo:
    """Send the target's stop signal to the leader and wait for the exit."""
    if process.exit_status() is not None:
        return StopInfo("none (had already exited)", process.stop().exit_status, False)
    sig = process.target.stop_signal
    process.signal(sig)
    return finish_stop(process, sig.name)


@dataclass(frozen=True)
class ExitObservation:
    """What a dedicated process did first: exit (with which status) or serve a request."""

    first: str
    exit_status: int | None
    log: str
    records: tuple[Record, ...] = ()


def exit_or_serve(launcher: Launcher, app: str) -> tuple[ServerProcess, ExitObservation]:
    process = launcher.start(app, wait_ready=False)
    first = process.wait_exit_or_ready(launcher.timeouts.startup)
    records = tuple(process.journal.records("lifespan"))
    return process, ExitObservation(first, process.exit_status(), process.log_tail(16_000), records)


def observe_exit_or_serve(launcher: Launcher, app: str) -> ExitObservation:
    return exit_or_serve(launcher, app)[1]


@dataclass(frozen=True)
class ErrorRun:
    """A run whose lifespan app raised: did it serve, what did lifespan get, how did it stop."""

    first: str
    request: client.Outcome | None
    stop: StopInfo
    records: tuple[Record, ...]
    log: str

    def count(self, match: Callable[[Record], bool]) -> int:
        return sum(1 for r in self.records if match(r))


def observe_error_run(launcher: Launcher, app: str) -> ErrorRun:
    """Start ``app`` (its lifespan raises), send one request if it serves, then stop it."""
    process = launcher.start(app, wait_ready=False)
    first = process.wait_exit_or_ready(launcher.timeouts.startup)
    request = None
    if first == "ready":
        assert process.address is not None
        request = client.exchange(
            process.address,
            client.build_request("GET", "/echo/after-lifespan-error"),
            timeout=launcher.timeouts.request,
        )
    stop = graceful_stop(process)
    records = tuple(process.journal.records("lifespan"))
    return ErrorRun(first, request, stop, records, process.log_tail(16_000))


@dataclass(frozen=True)
class StopRun:
    """A stop with one request in flight and a lifespan cleanup the harness holds open.

    ``shutdown`` is the journal record of ``lifespan.shutdown`` (None if never sent);
    ``open_at_shutdown`` whether the client's connection was still open when it was
    first seen; ``exited_before_complete`` whether the process ended while the app
    was still cleaning up (shutdown gate closed).
    """

    stop: StopInfo
    held: str
    shutdown: Record | None
    shutdown_while_held: bool
    open_at_shutdown: bool | None
    exited_before_complete: bool
    complete_sent: Record | None
    records: tuple[Record, ...]
    log: str


def _drain(conn: client.Connection) -> tuple[bytes, bool]:
    """Read what the server has sent so far without waiting; and whether it closed."""
    sock = conn.sock
    if sock is None:
        return b"", True
    received = b""
    sock.setblocking(False)
    try:
        while len(received) < 65536:
            data = sock.recv(4096)
            if not data:
                return received, True
            received += data
    except BlockingIOError:
        return received, False
    except OSError:
        return received, True
    finally:
        sock.setblocking(True)
    return received, False


def observe_stop_run(launcher: Launcher, app: str) -> StopRun:
    """Hold a request, send the stop signal, release the request, then let cleanup finish."""
    t = launcher.timeouts
    process = launcher.start(app)
    assert process.address is not None
    with client.Connection(process.address, t.request) as conn:
        conn.send(client.build_request("GET", f"{HOLD_PREFIX}stop", [("Connection", "close")]))
        if wait_record(process, is_hold("start"), t.event) is None:
            raise RuntimeError(f"the held request never reached the app: {client.describe(conn.response(timeout=0))}")
        sig = process.target.stop_signal
        process.signal(sig)
        # Negative wait, bounded by timeouts.hold: lifespan.shutdown must not come while a request is in flight.
        shutdown = wait_record(process, is_event("lifespan.shutdown"), t.hold)
        shutdown_while_held = shutdown is not None
        open_at_shutdown: bool | None = None
        if shutdown is not None:
            early, closed = _drain(conn)
            open_at_shutdown = not closed
            held = f"the server closed it before shutdown ({len(early)} bytes)" if closed else "still open"
            process.journal.open_gate("release")
        else:
            process.journal.open_gate("release")
            held = client.describe(conn.response(timeout=t.request))
            shutdown = wait_record(process, is_event("lifespan.shutdown"), t.stop_grace)
            if shutdown is not None:
                open_at_shutdown = not _drain(conn)[1]
        exited_before_complete = False
        complete_sent = None
        if shutdown is not None:
            # Negative wait, bounded by timeouts.hold: the process must not end while the app cleans up.
            exited_before_complete = process.wait_exit(t.hold) is not None
            process.journal.open_gate("shutdown")
            complete_sent = wait_record(process, is_send("lifespan.shutdown.complete"), t.event)
        stop = finish_stop(process, sig.name)
    return StopRun(
        stop=stop,
        held=held,
        shutdown=shutdown,
        shutdown_while_held=shutdown_while_held,
        open_at_shutdown=open_at_shutdown,
        exited_before_complete=exited_before_complete,
        complete_sent=complete_sent,
        records=tuple(process.journal.records("lifespan")),
        log=process.log_tail(16_000),
    )


def first_words(observed: str) -> str:
    return {
        "ready": "it answered a request",
        "exited": "it exited",
        "timeout": "neither exited nor answered before the deadline",
    }.get(observed, observed)


def lifespan_stash(server: Server) -> dict[str, Any]:
    """What the shared server's lifespan task saw; fails if lifespan never ran."""
    stash: dict[str, Any] = server.control("lifespan")
    check(
        isinstance(stash.get("calls"), int) and stash["calls"] >= 1,
        "the app's lifespan handler was never called with a scope of type 'lifespan'",
        expected="one lifespan call before serving",
        observed=stash,
    )
    return stash
