"""Lifespan (spec-catalogue §2; lifespan.rst).

Three kinds of observation:

* the shared server's lifespan stash (``server.control("lifespan")``): the scope and
  the events the lifespan task saw under the normal handler;
* dedicated runs that several scenarios judge, started once per target (the session
  fixtures in conftest.py): a failed startup, an app that raises, a stop with a
  request in flight and a slow cleanup;
* dedicated runs for one scenario (``launcher``): a gated startup, odd sends.

How runs are driven and observed is in lifespan_runs.py.
"""

from __future__ import annotations

import select
import socket
import time

from asgi_conformance import (
    INFO,
    MAY,
    MUST,
    SHOULD,
    Launcher,
    Server,
    check,
    client,
    fail,
    note,
    record,
    scenario,
    unsupported,
)
from asgi_conformance.apps.lifespan import FAILED_MARKER
from asgi_conformance.apps.typedjson import loads
from asgi_conformance.process import ServerProcess
from asgi_conformance.server import parse_echo
from asgi_conformance.timing import Deadline

from .lifespan_runs import (
    ErrorRun,
    ExitObservation,
    StopRun,
    describe_sends,
    exit_or_serve,
    first_words,
    graceful_stop,
    index_of,
    is_event,
    is_hold,
    is_send,
    lifespan_stash,
    wait_record,
)

LIFESPAN_SPEC_VERSIONS = ("1.0", "2.0")


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
    waits="a server that holds the request while startup is pending (the event deadline, negative evidence)",
)
def test_startup_blocks(launcher: Launcher) -> None:
    """The app's startup waits on a gate; a request sent meanwhile must not reach the app."""
    t = launcher.timeouts
    process = launcher.start("gated_startup", wait_ready=False)
    if wait_record(process, is_event("lifespan.startup"), t.startup) is None:
        fail(
            "the app never received lifespan.startup",
            expected="lifespan.startup",
            observed=f"exit status {process.exit_status()}",
        )
    assert process.address is not None
    # Negative wait, bounded by timeouts.event (not the shorter hold: on a loaded machine a
    # server that serves too early could take longer than a hold to answer, and the gate then
    # opened first): nothing may answer while startup is pending. A refused connection is
    # tried again meanwhile: a server that starts listening before startup completes must
    # still not serve.
    pending = Deadline(t.event)
    with _connect_while_pending(process, pending) as conn:
        conn.send(client.build_request("GET", "/echo/during-startup", [("Connection", "close")]))
        readable = conn.sock is not None and _readable(conn.sock, pending.remaining())
        early = conn.response() if readable else None
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
            late = conn.response()
            note(f"held during startup; after startup.complete: {client.describe(late)}")
            # Timing alone cannot tell a held request from one the app answered slowly while
            # startup was pending (a busy machine): the app says whether it had sent complete.
            if isinstance(late, client.Response) and _is_echo(late):
                check(
                    loads(late.body)["app"].get("startup_complete_sent") is not False,
                    "the app handled a request before it had sent lifespan.startup.complete",
                    expected="the request reaches the app only after lifespan.startup.complete",
                    observed="the echo app reports startup_complete_sent: False",
                )
    first = process.wait_exit_or_ready(t.startup)
    check(
        first == "ready",
        "the server did not serve after lifespan.startup.complete",
        expected="it answers requests",
        observed=first_words(first),
    )


def _connect_while_pending(process: ServerProcess, pending: Deadline) -> client.Connection:
    """A connection to a server whose startup is pending: refused ones are tried again until
    ``pending`` ends (or the process exits); the last attempt is returned either way."""
    assert process.address is not None
    pause = 0.005
    while True:
        conn = client.Connection(process.address, process.timeouts.request)
        if conn.refused is None or pending.expired or process.exit_status() is not None:
            return conn
        conn.close()
        time.sleep(min(pause, pending.remaining()))  # poll for a listener, bounded by the deadline
        pause = min(pause * 2, 0.1)


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
    note(describe_sends(list(startup_failed_run.records)))
    check(
        startup_failed_run.first == "exited",
        "the server went on after lifespan.startup.failed",
        expected="the process exits without serving",
        observed=first_words(startup_failed_run.first),
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
    note(describe_sends(list(without.records)))
    check(
        without.first != "timeout",
        "the server neither exited nor served after lifespan.startup.failed without a message",
        expected="exits (or reacts as with a message)",
        observed=first_words(without.first),
    )
    check(
        without.first == startup_failed_run.first,
        "the server reacts differently when 'message' is missing",
        expected=f"as with a message: {first_words(startup_failed_run.first)}",
        observed=first_words(without.first),
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
        observed=first_words(startup_failed_run.first),
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
        observed=first_words(run.first),
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
    if raise_after_startup_run.count(is_event("lifespan.startup")) == 0:
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
    count = sum(1 for r in stop_run.records if is_event("lifespan.shutdown")(r))
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
    ended = index_of(records, is_hold("end"))
    began = index_of(records, is_event("lifespan.shutdown"))
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
    note(f"{stop.describe()}; {describe_sends(records)}")
    check(
        any(is_send("lifespan.shutdown.failed")(r) for r in records),
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
    sent = wait_record(process, is_send("lifespan.bogus"), launcher.timeouts.startup)
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
    early = wait_record(process, is_send("lifespan.shutdown.complete", "before-startup-complete"), t.startup)
    duplicate = wait_record(process, is_send("lifespan.startup.complete", "duplicate"), t.event)
    first = process.wait_exit_or_ready(t.startup)
    seen = {
        "shutdown.complete before startup.complete": "never returned" if early is None else early.get("raised"),
        "startup.complete twice": "never returned" if duplicate is None else duplicate.get("raised"),
    }
    note(f"afterwards: {first_words(first)}")
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
    observed = exit_or_serve(launcher, "returns_early")[1]
    check(
        observed.first != "timeout",
        "after the lifespan app returned early the server neither served nor exited",
        expected="serve or exit",
        observed=first_words(observed.first),
    )
    record("serves" if observed.first == "ready" else f"exits (status {observed.exit_status})")
