"""Lifespan (spec-catalogue §2; lifespan.rst).

Three kinds of observation:

* the shared server's lifespan stash (``server.control("lifespan")``): the scope and
  the events the lifespan task saw under the normal handler;
* dedicated runs that several scenarios judge, started once per target
  (``session_launcher`` + ``shared_run``): a failed startup, an app that raises, a stop
  with a request in flight and a slow cleanup;
* dedicated runs for one scenario (``launcher``): a gated startup, odd sends.

The app records what it saw in the journal stream ``lifespan`` (records of one process
are in the order they happened). Every wait has a deadline from ``Timeouts``; the few
waits for something *not* to happen are bounded by ``timeouts.hold`` and say so.
"""

from __future__ import annotations

import select
import socket
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import pytest

from asgi_conformance import (
    INFO,
    MAY,
    MUST,
    SHOULD,
    Launcher,
    Server,
    ServerProcess,
    check,
    client,
    fail,
    note,
    record,
    scenario,
    unsupported,
)
from asgi_conformance.apps.lifespan import FAILED_MARKER, HOLD_PREFIX
from asgi_conformance.apps.typedjson import loads
from asgi_conformance.server import parse_echo
from asgi_conformance.timing import Deadline

Record = dict[str, Any]
T = TypeVar("T")

LIFESPAN_SPEC_VERSIONS = ("1.0", "2.0")
EXIT_CHECK_S = 0.05  # how often a journal wait also looks whether the process has exited


# -- waiting on the journal ------------------------------------------------------------


def _event(kind: str) -> Callable[[Record], bool]:
    return lambda r: r.get("kind") == "event" and r.get("type") == kind


def _sent(kind: str, label: str | None = None) -> Callable[[Record], bool]:
    return lambda r: r.get("kind") == "send" and r.get("type") == kind and r.get("label") == label


def _hold(phase: str) -> Callable[[Record], bool]:
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


def _index(records: list[Record], match: Callable[[Record], bool]) -> int | None:
    return next((i for i, r in enumerate(records) if match(r)), None)


def _sends(records: list[Record]) -> str:
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


# -- runs shared between scenarios (and suites) ---------------------------------------

_RUNS: weakref.WeakKeyDictionary[Launcher, dict[str, Any]] = weakref.WeakKeyDictionary()


def shared_run(launcher: Launcher, app: str, observe: Callable[[Launcher, str], T]) -> T:
    """One dedicated run of ``app`` per session launcher (so per target), whoever asks first."""
    runs = _RUNS.setdefault(launcher, {})
    if app not in runs:
        runs[app] = observe(launcher, app)
    return cast(T, runs[app])


@dataclass(frozen=True)
class ExitObservation:
    """What a dedicated process did first: exit (with which status) or serve a request."""

    first: str
    exit_status: int | None
    log: str
    records: tuple[Record, ...] = ()


def _exit_or_serve(launcher: Launcher, app: str) -> tuple[ServerProcess, ExitObservation]:
    process = launcher.start(app, wait_ready=False)
    first = process.wait_exit_or_ready(launcher.timeouts.startup)
    records = tuple(process.journal.records("lifespan"))
    return process, ExitObservation(first, process.exit_status(), process.log_tail(16_000), records)


def observe_exit_or_serve(launcher: Launcher, app: str) -> ExitObservation:
    return _exit_or_serve(launcher, app)[1]


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
        if wait_record(process, _hold("start"), t.event) is None:
            raise RuntimeError(f"the held request never reached the app: {client.describe(conn.response(timeout=0))}")
        sig = process.target.stop_signal
        process.signal(sig)
        # Negative wait, bounded by timeouts.hold: lifespan.shutdown must not come while a request is in flight.
        shutdown = wait_record(process, _event("lifespan.shutdown"), t.hold)
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
            shutdown = wait_record(process, _event("lifespan.shutdown"), t.stop_grace)
            if shutdown is not None:
                open_at_shutdown = not _drain(conn)[1]
        exited_before_complete = False
        complete_sent = None
        if shutdown is not None:
            # Negative wait, bounded by timeouts.hold: the process must not end while the app cleans up.
            exited_before_complete = process.wait_exit(t.hold) is not None
            process.journal.open_gate("shutdown")
            complete_sent = wait_record(process, _sent("lifespan.shutdown.complete"), t.event)
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


@pytest.fixture(scope="session")
def startup_failed_run(session_launcher: Launcher) -> ExitObservation:
    return shared_run(session_launcher, "startup_failed", observe_exit_or_serve)


@pytest.fixture(scope="session")
def startup_failed_no_message_run(session_launcher: Launcher) -> ExitObservation:
    return shared_run(session_launcher, "startup_failed_no_message", observe_exit_or_serve)


@pytest.fixture(scope="session")
def raise_on_scope_run(session_launcher: Launcher) -> ErrorRun:
    return shared_run(session_launcher, "raise_on_scope", observe_error_run)


@pytest.fixture(scope="session")
def raise_after_startup_run(session_launcher: Launcher) -> ErrorRun:
    return shared_run(session_launcher, "raise_after_startup", observe_error_run)


@pytest.fixture(scope="session")
def stop_run(session_launcher: Launcher) -> StopRun:
    return shared_run(session_launcher, "stop_probe", observe_stop_run)


def _first(observed: str) -> str:
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


# -- scope -----------------------------------------------------------------------------


@scenario(
    "ls.scope.type",
    "the lifespan scope has type 'lifespan'",
    level=MUST,
    spec="ls › Scope",
    requires=("lifespan",),
)
def test_scope_type(server: Server) -> None:
    """A server that sends another type never reaches the app's lifespan branch: the stash stays empty."""
    stash = lifespan_stash(server)
    check(
        stash["scope"].get("type") == "lifespan",
        "lifespan scope type",
        expected="lifespan",
        observed=stash["scope"].get("type"),
    )


@scenario(
    "ls.scope.asgi_version",
    "the lifespan scope has asgi['version'], a string",
    level=MUST,
    spec="ls › Scope",
    requires=("lifespan",),
)
def test_scope_asgi_version(server: Server) -> None:
    asgi = lifespan_stash(server)["scope"].get("asgi")
    check(isinstance(asgi, dict), "scope['asgi'] is not a dict", expected="a dict", observed=asgi)
    version = asgi.get("version")
    check(
        isinstance(version, str) and version != "",
        "asgi['version'] is missing or not a string",
        expected="a str such as '3.0'",
        observed=version,
    )
    note(f"asgi version {version!r}")


@scenario(
    "ls.scope.spec_version",
    "asgi['spec_version'], if present, names a lifespan spec version ('1.0' or '2.0')",
    level=MAY,
    spec="ls › Scope, Version History",
    requires=("lifespan",),
)
def test_scope_spec_version(server: Server) -> None:
    """The key is optional (MAY); its values come from the lifespan spec's version history (by definition)."""
    asgi = lifespan_stash(server)["scope"].get("asgi")
    if not isinstance(asgi, dict) or "spec_version" not in asgi:
        unsupported("the lifespan scope has no asgi['spec_version'] (it reads as '1.0')")
    value = asgi["spec_version"]
    check(
        value in LIFESPAN_SPEC_VERSIONS and isinstance(value, str),
        "asgi['spec_version'] is not a lifespan spec version",
        expected=f"one of {LIFESPAN_SPEC_VERSIONS}",
        observed=value,
        level=MUST,
    )


@scenario(
    "ls.scope.state_initial",
    "a lifespan scope with 'state' starts it as an empty dict",
    level=MAY,
    spec="ls › Scope, Lifespan State",
    requires=("lifespan",),
)
def test_scope_state_initial(server: Server) -> None:
    """The feature is optional; if offered, the namespace must start empty (checked as a MUST)."""
    initial = lifespan_stash(server)["state_initial"]
    if initial == "ABSENT":
        unsupported("the lifespan scope has no 'state'")
    check(
        isinstance(initial, dict) and not initial,
        "lifespan state is not an empty dict when the app gets it",
        expected={},
        observed=initial,
        level=MUST,
    )


# -- calls and startup -----------------------------------------------------------------


@scenario(
    "ls.call.same_loop",
    "lifespan and the requests it serves run on the same event loop",
    level=SHOULD,
    spec="ls › (intro)",
    requires=("lifespan",),
)
def test_same_loop(server: Server) -> None:
    """Implied, and an inference about behaviour (the spec calls it "the important part"): SHOULD."""
    seen = server.echo("/echo/loop")
    lifespan_loop = seen.app.get("lifespan_loop")
    check(lifespan_loop is not None, "lifespan never ran in this process", expected="a loop", observed=None)
    check(
        seen.app.get("loop") == lifespan_loop,
        "the request ran on another event loop than lifespan",
        expected=lifespan_loop,
        observed=seen.app.get("loop"),
    )


@scenario(
    "ls.startup.first_event",
    "the first event lifespan receives is lifespan.startup",
    level=MUST,
    spec="ls › Startup",
    requires=("lifespan",),
)
def test_first_event(server: Server) -> None:
    events = lifespan_stash(server)["events"]
    types = [e.get("type") for e in events if isinstance(e, dict)]
    check(
        bool(types) and types[0] == "lifespan.startup",
        "the first lifespan event",
        expected="lifespan.startup",
        observed=types,
    )


def _is_echo(outcome: client.Outcome | None) -> bool:
    if not isinstance(outcome, client.Response) or outcome.status != 200:
        return False
    try:
        return "scope" in loads(outcome.body)
    except (ValueError, TypeError):
        return False


@scenario(
    "ls.startup.block_until_complete",
    "no connection is processed before the app sends lifespan.startup.complete",
    level=MUST,
    spec="ls › Startup Complete",
    requires=("lifespan",),
)
def test_startup_blocks(launcher: Launcher) -> None:
    """The app's startup waits on a gate; a request sent meanwhile must not reach the app."""
    t = launcher.timeouts
    process = launcher.start("gated_startup", wait_ready=False)
    if wait_record(process, _event("lifespan.startup"), t.startup) is None:
        fail(
            "the app never received lifespan.startup",
            expected="lifespan.startup",
            observed=f"exit status {process.exit_status()}",
        )
    assert process.address is not None
    with client.Connection(process.address, t.request) as conn:
        conn.send(client.build_request("GET", "/echo/during-startup", [("Connection", "close")]))
        # Negative wait, bounded by timeouts.hold: nothing may answer while startup is pending.
        early = conn.response() if conn.sock is not None and _readable(conn.sock, t.hold) else None
        process.journal.open_gate("startup")
        check(
            not _is_echo(early),
            "the app answered a request while lifespan startup was still pending",
            expected="refused, held, or answered only after lifespan.startup.complete",
            observed=client.describe(early),
        )
        if conn.refused is not None:
            note("connections are refused while startup is pending")
        elif early is not None:
            note(f"answered during startup without the app: {client.describe(early)}")
        else:
            note(f"held during startup; after startup.complete: {client.describe(conn.response())}")
    first = process.wait_exit_or_ready(t.startup)
    check(
        first == "ready",
        "the server did not serve after lifespan.startup.complete",
        expected="it answers requests",
        observed=_first(first),
    )


def _readable(sock: socket.socket, seconds: float) -> bool:
    return bool(select.select([sock], [], [], seconds)[0])


@scenario(
    "ls.startup.failed_exit",
    "after lifespan.startup.failed the server exits without serving, showing the message",
    level=SHOULD,
    spec="ls › Startup Failed",
    requires=("lifespan",),
)
def test_startup_failed_exits(startup_failed_run: ExitObservation) -> None:
    note(_sends(list(startup_failed_run.records)))
    check(
        startup_failed_run.first == "exited",
        "the server went on after lifespan.startup.failed",
        expected="the process exits without serving",
        observed=_first(startup_failed_run.first),
    )
    check(
        FAILED_MARKER in startup_failed_run.log,
        "the failure message is not in the server's output",
        expected=f"log contains {FAILED_MARKER!r}",
        observed=startup_failed_run.log[-500:],
    )


@scenario(
    "ls.startup.failed_message_optional",
    "lifespan.startup.failed without 'message' is handled like one with it",
    level=MUST,
    spec="ls › Startup Failed",
    requires=("lifespan",),
)
def test_startup_failed_without_message(
    startup_failed_run: ExitObservation, startup_failed_no_message_run: ExitObservation
) -> None:
    """Implied by the event's definition ('message' is optional, default ""): MUST.

    Whether the server exits at all is ls.startup.failed_exit; here it must react
    as it does when the message is there, and not trip over the missing key.
    """
    without = startup_failed_no_message_run
    note(_sends(list(without.records)))
    check(
        without.first != "timeout",
        "the server neither exited nor served after lifespan.startup.failed without a message",
        expected="exits (or reacts as with a message)",
        observed=_first(without.first),
    )
    check(
        without.first == startup_failed_run.first,
        "the server reacts differently when 'message' is missing",
        expected=f"as with a message: {_first(startup_failed_run.first)}",
        observed=_first(without.first),
    )
    check(
        "KeyError: 'message'" not in without.log,
        "the server failed on the missing 'message' key",
        expected="no KeyError",
        observed=without.log[-800:],
    )


@scenario(
    "ls.startup.failed_exit_status",
    "the exit status after lifespan.startup.failed (not specified)",
    level=INFO,
    spec="ls › Startup Failed",
    requires=("lifespan",),
)
def test_startup_failed_exit_status(startup_failed_run: ExitObservation) -> None:
    """The cell is the exit status; legal outcomes are exiting or serving, never hanging."""
    check(
        startup_failed_run.first != "timeout",
        "after lifespan.startup.failed the server neither exited nor served",
        expected="exit (any status) or serve",
        observed=_first(startup_failed_run.first),
    )
    if startup_failed_run.first == "exited":
        record(startup_failed_run.exit_status)
    else:
        record("does not exit (serves)")


# -- the app raises ---------------------------------------------------------------------


def _judge_continues(run: ErrorRun, what: str) -> None:
    note(f"{run.count(lambda r: r.get('kind') == 'call')} lifespan call(s); {run.stop.describe()}")
    check(
        run.first == "ready",
        f"the server did not go on serving after {what}",
        expected="it serves requests without lifespan",
        observed=_first(run.first),
    )
    assert run.request is not None
    parse_echo(run.request, "the echo app's 200 response after the lifespan error")


@scenario(
    "ls.error.unsupported_continue",
    "if the app raises on the lifespan scope, the server goes on without lifespan",
    level=MUST,
    spec="ls › Scope",
    requires=("lifespan",),
)
def test_raise_on_scope_continues(raise_on_scope_run: ErrorRun) -> None:
    _judge_continues(raise_on_scope_run, "the app raised on the lifespan scope")


@scenario(
    "ls.error.raise_after_startup_received",
    "if the app raises after receiving lifespan.startup, the server goes on without lifespan",
    level=MUST,
    spec="ls › Scope",
    requires=("lifespan",),
)
def test_raise_after_startup_continues(raise_after_startup_run: ErrorRun) -> None:
    if raise_after_startup_run.count(_event("lifespan.startup")) == 0:
        note("the app never received lifespan.startup before raising")
    _judge_continues(raise_after_startup_run, "the app raised after receiving lifespan.startup")


@scenario(
    "ls.error.no_more_events",
    "after the lifespan app raised, no more lifespan events and no second call",
    level=MUST,
    spec="ls › Scope",
    requires=("lifespan",),
)
def test_no_more_events_after_error(raise_on_scope_run: ErrorRun, raise_after_startup_run: ErrorRun) -> None:
    """Both runs are stopped with the target's stop signal before the journal is judged."""
    for name, run, startups in (
        ("raised on the scope", raise_on_scope_run, 0),
        ("raised after lifespan.startup", raise_after_startup_run, 1),
    ):
        note(f"{name}: {run.stop.describe()}")
        calls = run.count(lambda r: r.get("kind") == "call")
        events = [r.get("type") for r in run.records if r.get("kind") == "event"]
        check(calls <= 1, f"lifespan was called again after the app {name}", expected=1, observed=calls)
        check(
            "lifespan.shutdown" not in events and len(events) <= startups,
            f"lifespan events after the app {name}",
            expected=["lifespan.startup"] * startups,
            observed=events,
        )


# -- shutdown --------------------------------------------------------------------------


@scenario(
    "ls.shutdown.sent_on_stop",
    "an orderly stop sends lifespan.shutdown exactly once",
    level=MUST,
    spec="ls › Shutdown",
    requires=("lifespan",),
)
def test_shutdown_sent_on_stop(stop_run: StopRun) -> None:
    """Implied by the definition of lifespan.shutdown (the event exists for this moment): MUST."""
    note(stop_run.stop.describe())
    count = sum(1 for r in stop_run.records if _event("lifespan.shutdown")(r))
    check(
        count == 1,
        f"lifespan.shutdown after {stop_run.stop.signal}",
        expected="exactly once",
        observed=f"{count} times",
    )


@scenario(
    "ls.shutdown.after_connections_closed",
    "lifespan.shutdown comes only after every active connection is closed",
    level=MUST,
    spec="ls › Shutdown",
    requires=("lifespan",),
)
def test_shutdown_after_connections(stop_run: StopRun) -> None:
    """A request is in flight (held by the app) when the stop signal arrives.

    Correct: the server waits for it (the harness then releases it), or ends it (cancel,
    close) before lifespan.shutdown. Wrong: lifespan.shutdown while it is still open.
    """
    note(f"held request: {stop_run.held}; {stop_run.stop.describe()}")
    if stop_run.shutdown is None:
        note("no lifespan.shutdown was sent (ls.shutdown.sent_on_stop judges that)")
        return
    records = list(stop_run.records)
    ended = _index(records, _hold("end"))
    began = _index(records, _event("lifespan.shutdown"))
    request_over = ended is not None and began is not None and ended < began
    if stop_run.shutdown_while_held:
        how = records[ended].get("how") if ended is not None else "still running"
        note(f"lifespan.shutdown came before the harness released the request; the request: {how}")
    check(
        request_over or stop_run.open_at_shutdown is False,
        "lifespan.shutdown was sent while a request was still in flight on an open connection",
        expected="the request finished or its connection closed before lifespan.shutdown",
        observed=f"connection open at shutdown: {stop_run.open_at_shutdown}; held request: {stop_run.held}",
    )


@scenario(
    "ls.shutdown.wait_complete",
    "the server waits for lifespan.shutdown.complete before it terminates",
    level=MUST,
    spec="ls › Shutdown Complete",
    requires=("lifespan",),
)
def test_shutdown_waits_for_complete(stop_run: StopRun) -> None:
    """The app's cleanup waits on a gate; the process must still be there when it opens."""
    note(stop_run.stop.describe())
    if stop_run.shutdown is None:
        note("no lifespan.shutdown was sent (ls.shutdown.sent_on_stop judges that)")
        return
    check(
        not stop_run.exited_before_complete,
        "the server terminated while the app was still handling lifespan.shutdown",
        expected="still running until lifespan.shutdown.complete",
        observed=f"exited with status {stop_run.stop.exit_status} before the app completed",
    )
    if stop_run.complete_sent is not None and stop_run.complete_sent.get("raised"):
        note(f"send(lifespan.shutdown.complete) raised {stop_run.complete_sent['raised']}")


@scenario(
    "ls.shutdown.failed",
    "after lifespan.shutdown.failed the server shows the message and terminates",
    level=SHOULD,
    spec="ls › Shutdown Failed",
    requires=("lifespan",),
)
def test_shutdown_failed(launcher: Launcher) -> None:
    process = launcher.start("shutdown_failed")
    offset = process.log_offset()
    stop = graceful_stop(process)
    log = process.log_slice(offset)
    records = process.journal.records("lifespan")
    note(f"{stop.describe()}; {_sends(records)}")
    check(
        any(_sent("lifespan.shutdown.failed")(r) for r in records),
        "the app never got to send lifespan.shutdown.failed",
        expected="lifespan.shutdown then the app's failed message",
        observed=[r.get("type") for r in records],
    )
    check(not stop.forced, "the server did not terminate", expected="it exits", observed=stop.describe())
    check(
        FAILED_MARKER in log,
        "the failure message is not in the server's output",
        expected=f"log contains {FAILED_MARKER!r}",
        observed=log[-500:],
    )


# -- what the app sends ----------------------------------------------------------------


@scenario(
    "ls.send.invalid_type",
    "send() raises for an unknown lifespan message type",
    level=SHOULD,
    spec="core › Error Handling",
    requires=("lifespan",),
)
def test_send_invalid_type(launcher: Launcher) -> None:
    process = launcher.start("invalid_send", wait_ready=False)
    sent = wait_record(process, _sent("lifespan.bogus"), launcher.timeouts.startup)
    check(
        sent is not None and sent.get("raised") is not None,
        "send({'type': 'lifespan.bogus'}) did not raise",
        expected="an exception",
        observed="send() never returned" if sent is None else "it returned normally",
    )
    assert sent is not None
    note(f"raised {sent['raised']}")


@scenario(
    "ls.send.out_of_order",
    "send() raises for lifespan messages sent in the wrong state",
    level=SHOULD,
    spec="core › Error Handling",
    requires=("lifespan",),
)
def test_send_out_of_order(launcher: Launcher) -> None:
    """Implied (the events are invalid in that state), so "should raise" applies: SHOULD.

    The app sends shutdown.complete before startup.complete, and startup.complete twice.
    """
    process = launcher.start("out_of_order", wait_ready=False)
    t = launcher.timeouts
    early = wait_record(process, _sent("lifespan.shutdown.complete", "before-startup-complete"), t.startup)
    duplicate = wait_record(process, _sent("lifespan.startup.complete", "duplicate"), t.event)
    first = process.wait_exit_or_ready(t.startup)
    seen = {
        "shutdown.complete before startup.complete": "never returned" if early is None else early.get("raised"),
        "startup.complete twice": "never returned" if duplicate is None else duplicate.get("raised"),
    }
    note(f"afterwards: {_first(first)}")
    silent = [what for what, raised in seen.items() if raised is None]
    check(
        not silent and early is not None and duplicate is not None,
        "send() did not raise for an out-of-order lifespan message",
        expected="an exception for each",
        observed=seen,
    )


@scenario(
    "ls.app_returns_early",
    "what the server does when lifespan returns without complete or failed (not specified)",
    level=INFO,
    spec="ls › Startup",
    requires=("lifespan",),
)
def test_app_returns_early(launcher: Launcher) -> None:
    """The cell is serve / exit; hanging is the one illegal outcome."""
    observed = _exit_or_serve(launcher, "returns_early")[1]
    check(
        observed.first != "timeout",
        "after the lifespan app returned early the server neither served nor exited",
        expected="serve or exit",
        observed=_first(observed.first),
    )
    record("serves" if observed.first == "ready" else f"exits (status {observed.exit_status})")
