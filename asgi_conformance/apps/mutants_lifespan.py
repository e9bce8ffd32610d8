"""Mutants that break lifespan and lifespan state rules (suites/test_lifespan*.py).

Each imitates one server bug seen from the app's side: it changes the lifespan scope,
what ``receive()`` hands the app, what ``send()`` passes on to the server, or the
``state`` a request gets. Lifespan mutants never copy the lifespan scope's ``state``
dict: the app must fill the very dict the server copies for requests (see
``lifespan_scope_copy``). The reference target for all of them is uvicorn-h11; some
use asyncio directly (threads, signal chaining), which is fine there.

Runs inside the server: standard library only.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import signal
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from . import aio
from .lifespan import MAX_EVENTS
from .mutants import App, Message, Receive, Scope, Send, Wrapper, copy_scope, mutant

__all__ = ["lifespan_scope_copy", "on_lifespan", "request_state_mutant"]

STARTUP_DONE = ("lifespan.startup.complete", "lifespan.startup.failed")
KNOWN_SENDS = (*STARTUP_DONE, "lifespan.shutdown.complete", "lifespan.shutdown.failed")

T = TypeVar("T")
Lifespan = Callable[[App, Scope, Receive, Send], Awaitable[None]]


# Building blocks --------------------------------------------------------------------


def lifespan_scope_copy(scope: Scope) -> Scope:
    """A lifespan scope a mutant may change: ``asgi`` copied, ``state`` the very same dict."""
    copied = dict(scope)
    if isinstance(copied.get("asgi"), dict):
        copied["asgi"] = dict(copied["asgi"])
    return copied


def on_lifespan(run: Lifespan) -> Wrapper:
    """Wrap an app so ``run(app, scope, receive, send)`` handles its lifespan calls."""

    def wrap(app: App) -> App:
        async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
            if scope.get("type") == "lifespan":
                await run(app, scope, receive, send)
            else:
                await app(scope, receive, send)

        return mutated

    return wrap


def request_state_mutant(change: Callable[[Scope, dict[str, Any]], None]) -> Wrapper:
    """Wrap an app so each HTTP/WebSocket scope (a copy) is changed by ``change(scope, seen)``.

    ``seen`` holds what passed by on the lifespan side: ``"state"`` is the lifespan
    scope's own state dict (never copied here).
    """

    def wrap(app: App) -> App:
        seen: dict[str, Any] = {}

        async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
            kind = scope.get("type")
            if kind == "lifespan":
                seen["state"] = scope.get("state")
            elif kind in ("http", "websocket"):
                scope = copy_scope(scope)
                change(scope, seen)
            await app(scope, receive, send)

        return mutated

    return wrap


async def forever() -> None:
    """Do not return for an hour (a server stuck waiting); the harness kills the process first."""
    await aio.sleep(3600)


# Scope ------------------------------------------------------------------------------


async def _scope_type(app: App, scope: Scope, receive: Receive, send: Send) -> None:
    await app({**lifespan_scope_copy(scope), "type": "Lifespan"}, receive, send)


mutant("ls-scope-type", "the lifespan scope has type 'Lifespan'", "ls.scope.type")(on_lifespan(_scope_type))


async def _no_asgi_version(app: App, scope: Scope, receive: Receive, send: Send) -> None:
    changed = lifespan_scope_copy(scope)
    if isinstance(changed.get("asgi"), dict):
        changed["asgi"].pop("version", None)
    await app(changed, receive, send)


mutant("ls-scope-no-asgi-version", "the lifespan scope's asgi dict has no 'version'", "ls.scope.asgi_version")(
    on_lifespan(_no_asgi_version)
)


async def _spec_version(app: App, scope: Scope, receive: Receive, send: Send) -> None:
    changed = lifespan_scope_copy(scope)
    changed["asgi"] = {**(changed.get("asgi") or {}), "spec_version": "2.3"}
    await app(changed, receive, send)


mutant(
    "ls-scope-spec-version",
    "the lifespan scope claims spec_version '2.3' (an HTTP spec version)",
    "ls.scope.spec_version",
)(on_lifespan(_spec_version))


async def _state_prefilled(app: App, scope: Scope, receive: Receive, send: Send) -> None:
    state = scope.get("state")
    if isinstance(state, dict):
        state["server.started"] = True  # into the server's own dict: it reaches requests too
    await app(scope, receive, send)


mutant(
    "ls-state-prefilled",
    "the server puts a key of its own into lifespan state before calling the app",
    "ls.scope.state_initial",
    "state.server_hands_off",
)(on_lifespan(_state_prefilled))


# Calls and startup --------------------------------------------------------------------


async def _other_loop(app: App, scope: Scope, receive: Receive, send: Send) -> None:
    """Run lifespan on a new event loop in a thread; receive/send hop back to the server's loop."""
    main = asyncio.get_running_loop()
    done: asyncio.Future[None] = main.create_future()

    async def on_main(awaitable: Awaitable[T]) -> T:
        return await awaitable

    async def hop_receive() -> Message:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(on_main(receive()), main))

    async def hop_send(message: Message) -> None:
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(on_main(send(message)), main))

    def settle(exc: BaseException | None) -> None:
        if done.done():
            return
        if exc is None:
            done.set_result(None)
        else:
            done.set_exception(exc)

    def run() -> None:
        try:
            asyncio.run(on_main(app(scope, hop_receive, hop_send)))
        except BaseException as exc:  # handed to the server's loop, which re-raises it
            main.call_soon_threadsafe(settle, exc)
        else:
            main.call_soon_threadsafe(settle, None)

    threading.Thread(target=run, name="lifespan-on-other-loop", daemon=True).start()
    await done


mutant("ls-other-loop", "lifespan runs on another event loop (in a thread) than requests", "ls.call.same_loop")(
    on_lifespan(_other_loop)
)


async def _extra_first_event(app: App, scope: Scope, receive: Receive, send: Send) -> None:
    first = True

    async def mutated_receive() -> Message:
        nonlocal first
        if first:
            first = False
            return {"type": "lifespan.init"}
        return await receive()

    await app(scope, mutated_receive, send)


mutant(
    "ls-extra-first-event",
    "the server sends an event before lifespan.startup",
    "ls.startup.first_event",
)(on_lifespan(_extra_first_event))


async def _early_startup_complete(app: App, scope: Scope, receive: Receive, send: Send) -> None:
    async def mutated_receive() -> Message:
        message = await receive()
        if message.get("type") == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})  # serve at once
        return message

    async def mutated_send(message: Message) -> None:
        if message.get("type") not in STARTUP_DONE:  # already "completed" for the app
            await send(message)

    await app(scope, mutated_receive, mutated_send)


mutant(
    "ls-early-startup-complete",
    "the server starts serving as soon as it has sent lifespan.startup",
    "ls.startup.block_until_complete",
)(on_lifespan(_early_startup_complete))


async def _startup_failed_as_complete(app: App, scope: Scope, receive: Receive, send: Send) -> None:
    async def mutated_send(message: Message) -> None:
        if message.get("type") == "lifespan.startup.failed":
            message = {"type": "lifespan.startup.complete"}
        await send(message)

    await app(scope, receive, mutated_send)


mutant(
    "ls-startup-failed-as-complete",
    "the server treats lifespan.startup.failed like startup.complete and serves",
    "ls.startup.failed_exit",
)(on_lifespan(_startup_failed_as_complete))


async def _failed_needs_message(app: App, scope: Scope, receive: Receive, send: Send) -> None:
    async def mutated_send(message: Message) -> None:
        if message.get("type") == "lifespan.startup.failed" and "message" not in message:
            raise KeyError("message")  # as a server doing message["message"]
        await send(message)

    await app(scope, receive, mutated_send)


mutant(
    "ls-failed-needs-message",
    "the server reads message['message'] of startup.failed unguarded (KeyError, then serves)",
    "ls.startup.failed_message_optional",
)(on_lifespan(_failed_needs_message))


async def _hang_without_startup(app: App, scope: Scope, receive: Receive, send: Send) -> None:
    completed = False

    async def mutated_send(message: Message) -> None:
        nonlocal completed
        if message.get("type") == "lifespan.startup.failed":
            return  # lost: the server keeps waiting
        completed = completed or message.get("type") == "lifespan.startup.complete"
        await send(message)

    try:
        await app(scope, receive, mutated_send)
    finally:
        if not completed:
            await forever()


mutant(
    "ls-hang-without-startup",
    "the server waits forever when lifespan fails or returns without startup.complete",
    "ls.startup.failed_exit_status",
    "ls.startup.failed_message_optional",
    "ls.app_returns_early",
)(on_lifespan(_hang_without_startup))


# The app raises -----------------------------------------------------------------------


async def _exit_on_error(app: App, scope: Scope, receive: Receive, send: Send) -> None:
    started = False

    async def watching_send(message: Message) -> None:
        nonlocal started
        started = started or message.get("type") in STARTUP_DONE
        await send(message)

    try:
        await app(scope, receive, watching_send)
    except Exception as exc:
        if started:
            raise
        await send({"type": "lifespan.startup.failed", "message": f"lifespan raised {exc!r}"})


mutant(
    "ls-exit-on-error",
    "the server exits when the lifespan app raises (uvicorn's --lifespan on)",
    "ls.error.unsupported_continue",
    "ls.error.raise_after_startup_received",
)(on_lifespan(_exit_on_error))


async def _retry_after_error(app: App, scope: Scope, receive: Receive, send: Send) -> None:
    try:
        await app(scope, receive, send)
    except Exception:
        given = False

        async def again_receive() -> Message:
            nonlocal given
            if given:
                raise RuntimeError("mutant: no more events")
            given = True
            return {"type": "lifespan.startup"}

        async def again_send(message: Message) -> None:
            return None

        with contextlib.suppress(Exception):
            await app(lifespan_scope_copy(scope), again_receive, again_send)
        raise


mutant(
    "ls-retry-after-error",
    "the server calls lifespan again (with lifespan.startup) after the app raised",
    "ls.error.no_more_events",
)(on_lifespan(_retry_after_error))


# Shutdown -----------------------------------------------------------------------------


async def _no_shutdown_event(app: App, scope: Scope, receive: Receive, send: Send) -> None:
    async def mutated_receive() -> Message:
        message = await receive()
        if message.get("type") == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})  # the app never hears of it
            await forever()
        return message

    await app(scope, mutated_receive, send)


mutant(
    "ls-no-shutdown-event",
    "the server stops without sending lifespan.shutdown to the app",
    "ls.shutdown.sent_on_stop",
)(on_lifespan(_no_shutdown_event))


async def _early_shutdown_complete(app: App, scope: Scope, receive: Receive, send: Send) -> None:
    async def mutated_receive() -> Message:
        message = await receive()
        if message.get("type") == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})  # terminate without waiting
        return message

    async def mutated_send(message: Message) -> None:
        if message.get("type") not in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            await send(message)

    await app(scope, mutated_receive, mutated_send)


mutant(
    "ls-early-shutdown-complete",
    "the server terminates right after sending lifespan.shutdown, without waiting for complete",
    "ls.shutdown.wait_complete",
)(on_lifespan(_early_shutdown_complete))


async def _shutdown_on_signal(app: App, scope: Scope, receive: Receive, send: Send) -> None:
    """Hand the app lifespan.shutdown the moment a stop signal arrives, connections or not.

    The server's own handlers stay chained (it still stops as usual); its later
    lifespan.shutdown is then one the app no longer waits for.
    """
    loop = asyncio.get_running_loop()
    merged: asyncio.Queue[Message] = asyncio.Queue()
    told = False

    async def pump() -> None:
        for _ in range(MAX_EVENTS):
            await merged.put(await receive())

    def chained(previous: Any) -> Callable[[int, Any], None]:
        def on_signal(signum: int, frame: Any) -> None:
            loop.call_soon_threadsafe(merged.put_nowait, {"type": "lifespan.shutdown"})
            if callable(previous):
                previous(signum, frame)

        return on_signal

    async def mutated_receive() -> Message:
        nonlocal told
        for _ in range(MAX_EVENTS):
            message = await merged.get()
            if message.get("type") != "lifespan.shutdown":
                return message
            if not told:
                told = True
                return message
        raise RuntimeError("asgi-conformance mutant: too many lifespan events")

    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.getsignal(sig)
            signal.signal(sig, chained(previous[sig]))
    pumping = loop.create_task(pump())
    try:
        await app(scope, mutated_receive, send)
    finally:
        pumping.cancel()
        for sig, old in previous.items():
            signal.signal(sig, old)


mutant(
    "ls-shutdown-on-signal",
    "the server sends lifespan.shutdown on the stop signal, before closing its connections",
    "ls.shutdown.after_connections_closed",
)(on_lifespan(_shutdown_on_signal))


async def _shutdown_failed_as_complete(app: App, scope: Scope, receive: Receive, send: Send) -> None:
    async def mutated_send(message: Message) -> None:
        if message.get("type") == "lifespan.shutdown.failed":
            message = {"type": "lifespan.shutdown.complete"}
        await send(message)

    await app(scope, receive, mutated_send)


mutant(
    "ls-shutdown-failed-as-complete",
    "the server treats lifespan.shutdown.failed like shutdown.complete (no message shown)",
    "ls.shutdown.failed",
)(on_lifespan(_shutdown_failed_as_complete))


# What the app sends -------------------------------------------------------------------


async def _ignore_unknown_type(app: App, scope: Scope, receive: Receive, send: Send) -> None:
    async def mutated_send(message: Message) -> None:
        if message.get("type") in KNOWN_SENDS:
            await send(message)

    await app(scope, receive, mutated_send)


mutant(
    "ls-ignore-unknown-type",
    "send() silently drops lifespan messages of an unknown type",
    "ls.send.invalid_type",
)(on_lifespan(_ignore_unknown_type))


async def _ignore_out_of_order(app: App, scope: Scope, receive: Receive, send: Send) -> None:
    phase = "starting"  # -> "started" -> "stopping" -> "stopped"

    async def mutated_receive() -> Message:
        nonlocal phase
        message = await receive()
        if message.get("type") == "lifespan.shutdown":
            phase = "stopping"
        return message

    async def mutated_send(message: Message) -> None:
        nonlocal phase
        kind = message.get("type")
        if kind in STARTUP_DONE:
            if phase != "starting":
                return  # dropped without a word
            phase = "started"
        elif kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            if phase != "stopping":
                return
            phase = "stopped"
        await send(message)

    await app(scope, mutated_receive, mutated_send)


mutant(
    "ls-ignore-out-of-order",
    "send() silently drops lifespan messages sent in the wrong state",
    "ls.send.out_of_order",
)(on_lifespan(_ignore_out_of_order))


# Lifespan state ---------------------------------------------------------------------


def _fresh_empty(scope: Scope, seen: dict[str, Any]) -> None:
    scope["state"] = {}


mutant(
    "state-fresh-empty",
    "requests get a new empty dict as state, not a copy of the lifespan namespace",
    "state.http.present",
    "state.ws.present",
    "state.identity_preserved",
    "state.startup_values_visible",
)(request_state_mutant(_fresh_empty))


def _dropped(scope: Scope, seen: dict[str, Any]) -> None:
    scope.pop("state", None)


mutant(
    "state-dropped",
    "requests carry no state although the lifespan scope had it",
    "state.consistency",
)(request_state_mutant(_dropped))


def _no_copy(scope: Scope, seen: dict[str, Any]) -> None:
    if isinstance(seen.get("state"), dict):
        scope["state"] = seen["state"]  # the lifespan's own dict: every change leaks


mutant(
    "state-no-copy",
    "requests get the lifespan state dict itself, not a copy",
    "state.shallow_copy_top_level",
)(request_state_mutant(_no_copy))


def _deep_copy(scope: Scope, seen: dict[str, Any]) -> None:
    if isinstance(scope.get("state"), dict):
        scope["state"] = copy.deepcopy(scope["state"])


mutant(
    "state-deep-copy",
    "requests get a deep copy of state: nested values and objects are not shared",
    "state.shallow_copy_nested_shared",
    "state.identity_preserved",
)(request_state_mutant(_deep_copy))


def _server_key(scope: Scope, seen: dict[str, Any]) -> None:
    if isinstance(scope.get("state"), dict):
        scope["state"]["server.request_id"] = 1


mutant(
    "state-server-key",
    "the server adds a key of its own to each request's state",
    "state.server_hands_off",
    "state.late_lifespan_mutation",
    "state.without_lifespan",
)(request_state_mutant(_server_key))


def _copied_at_startup() -> Wrapper:
    """Requests get copies of the namespace as it was when lifespan.startup went out (empty)."""

    def wrap(app: App) -> App:
        snapshot: dict[str, Any] = {}

        async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
            kind = scope.get("type")
            if kind == "lifespan":
                state = scope.get("state")

                async def snapshotting_receive() -> Message:
                    message = await receive()
                    if message.get("type") == "lifespan.startup" and isinstance(state, dict):
                        snapshot.clear()
                        snapshot.update(state)  # a copy kept by the server, not given to the app
                    return message

                await app(scope, snapshotting_receive, send)
                return
            if kind in ("http", "websocket") and isinstance(scope.get("state"), dict):
                scope = copy_scope(scope)
                scope["state"] = dict(snapshot)
            await app(scope, receive, send)

        return mutated

    return wrap


mutant(
    "state-copied-at-startup",
    "the server copies the namespace when it sends lifespan.startup, before the app fills it",
    "state.startup_values_visible",
)(_copied_at_startup())


async def _cleared_at_shutdown(app: App, scope: Scope, receive: Receive, send: Send) -> None:
    state = scope.get("state")

    async def mutated_receive() -> Message:
        message = await receive()
        if message.get("type") == "lifespan.shutdown" and isinstance(state, dict):
            state.clear()
        return message

    await app(scope, mutated_receive, send)


mutant(
    "state-cleared-at-shutdown",
    "the server empties the lifespan namespace before sending lifespan.shutdown",
    "state.server_hands_off",
)(on_lifespan(_cleared_at_shutdown))
