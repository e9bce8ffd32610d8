"""Lifespan handlers for the catalogue app, one per behaviour a scenario needs.

The shared server runs ``normal``. Scenarios about failure, raising and shutdown
start a dedicated server whose app attribute (asgi_conformance.apps.serve) selects
another handler. Each handler records what it received in the in-process stash
(read back through ``/__asgi_conformance__/lifespan``) and in the journal stream
``lifespan`` (read after the process is gone). Records of one process land in that
stream in the order they happened, so a scenario can judge order by position.

``HeldRequests`` adds the path ``/hold/<token>``: a request the app answers only
once the harness opens gate ``release``, for scenarios about what happens to
requests in flight when the server stops.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from . import aio, journal
from .typedjson import encode

__all__ = [
    "FAILED_MARKER",
    "HANDLERS",
    "HOLD_PREFIX",
    "STATE_KEYS_AT_STARTUP",
    "HeldRequests",
    "LifespanStash",
    "StateMarker",
]

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# What the app puts in startup.failed / shutdown.failed; scenarios look for it in the log.
FAILED_MARKER = "asgi-conformance-lifespan-failed-7f3a"
STATE_KEYS_AT_STARTUP = ("token", "counter", "obj", "startup_key")
HOLD_PREFIX = "/hold/"
# A server that keeps sending non-startup events first is judged on the first few.
MAX_EVENTS_BEFORE_STARTUP = 8
MAX_EVENTS = 10_000  # a server that never sends lifespan.shutdown cannot spin an app loop forever


class StateMarker:
    """An object stored in lifespan state to check that requests get the same object."""


@dataclass
class LifespanStash:
    """What the lifespan task saw, kept for the HTTP control path to echo."""

    calls: int = 0
    scope: Any = None
    state_initial: Any = "ABSENT"
    loop: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    sends: list[dict[str, Any]] = field(default_factory=list)
    startup_complete: bool = False
    startup_complete_sending: bool = False
    """Set as the app *starts* sending lifespan.startup.complete: a request the app handles
    before that was served while startup was still pending (ls.startup.block_until_complete)."""
    state: dict[str, Any] | None = None
    state_keys_at_complete: list[str] | None = None
    obj_id: int | None = None

    def on_call(self, scope: Scope) -> None:
        self.calls += 1
        state = scope.get("state", "ABSENT")
        self.state_initial = encode(dict(state) if isinstance(state, dict) else state)
        self.scope = encode(scope)
        self.loop = aio.loop_identity()
        journal.write("lifespan", {"kind": "call", "n": self.calls, "loop": self.loop})

    def on_event(self, message: Message) -> None:
        record: dict[str, Any] = {"kind": "event", "type": message.get("type"), "t": time.time()}
        if message.get("type") == "lifespan.shutdown" and self.state is not None:
            # What the app still finds in its namespace when asked to clean up.
            record["state_keys"] = sorted(self.state)
        self.events.append(record)
        journal.write("lifespan", record)

    async def send(self, send: Send, message: Message, label: str | None = None, *, reraise: bool = False) -> None:
        """Send a lifespan message and record whether ``send()`` raised.

        ``reraise`` lets the exception propagate after it is recorded, as a typical app
        does: a server may signal a failure that way (hypercorn raises from ``send`` on
        ``startup.failed`` and exits when the exception reaches it).
        """
        outcome: dict[str, Any] = {"type": message.get("type"), "raised": None}
        if label is not None:
            outcome["label"] = label
        raised: Exception | None = None
        if message.get("type") == "lifespan.startup.complete":
            self.startup_complete_sending = True
        try:
            await send(message)
        except Exception as exc:  # the exception *is* the observation
            raised = exc
            outcome["raised"] = type(exc).__name__
            outcome["oserror"] = isinstance(exc, OSError)
        self.sends.append(outcome)
        journal.write("lifespan", {"kind": "send", **outcome})
        if outcome["raised"] is None and message.get("type") == "lifespan.startup.complete":
            self.startup_complete = True
        if raised is not None and reraise:
            raise raised

    def setup_state(self, scope: Scope) -> None:
        state = scope.get("state")
        if not isinstance(state, dict):
            return
        obj = StateMarker()
        state.update(token="lifespan-token", counter={"n": 0}, obj=obj)
        self.obj_id = id(obj)
        self.state = state

    def snapshot(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "scope": self.scope,
            "state_initial": self.state_initial,
            "loop": self.loop,
            "events": self.events,
            "sends": self.sends,
            "startup_complete": self.startup_complete,
            "state_keys_at_complete": self.state_keys_at_complete,
            "state_keys_now": sorted(self.state) if self.state is not None else None,
            "obj_id": self.obj_id,
            "pid": os.getpid(),
        }


async def _startup(scope: Scope, receive: Receive, stash: LifespanStash) -> Message:
    stash.on_call(scope)
    message = await receive()
    stash.on_event(message)
    return message


async def _complete_startup(scope: Scope, send: Send, stash: LifespanStash) -> None:
    stash.setup_state(scope)
    await aio.sleep(0)  # a key stored after an await, still before complete
    if stash.state is not None:
        stash.state["startup_key"] = "set-before-complete"
        stash.state_keys_at_complete = sorted(stash.state)
    await stash.send(send, {"type": "lifespan.startup.complete"})


async def _until_shutdown(receive: Receive, stash: LifespanStash) -> None:
    """Receive (and record) events until ``lifespan.shutdown`` arrives (at most MAX_EVENTS)."""
    for _ in range(MAX_EVENTS):
        message = await receive()
        stash.on_event(message)
        if message.get("type") == "lifespan.shutdown":
            return


async def _serve_until_shutdown(receive: Receive, send: Send, stash: LifespanStash) -> None:
    await _until_shutdown(receive, stash)
    await stash.send(send, {"type": "lifespan.shutdown.complete"})


async def normal(scope: Scope, receive: Receive, send: Send, stash: LifespanStash) -> None:
    message = await _startup(scope, receive, stash)
    # Record whatever comes before lifespan.startup (ls.startup.first_event judges it),
    # but still start up, so a server that gets the order wrong keeps serving.
    for _ in range(MAX_EVENTS_BEFORE_STARTUP):
        if message.get("type") in ("lifespan.startup", "lifespan.shutdown"):
            break
        message = await receive()
        stash.on_event(message)
    if message.get("type") == "lifespan.startup":
        await _complete_startup(scope, send, stash)
    await _serve_until_shutdown(receive, send, stash)


async def startup_failed(scope: Scope, receive: Receive, send: Send, stash: LifespanStash) -> None:
    await _startup(scope, receive, stash)
    await stash.send(send, {"type": "lifespan.startup.failed", "message": FAILED_MARKER}, reraise=True)


async def startup_failed_no_message(scope: Scope, receive: Receive, send: Send, stash: LifespanStash) -> None:
    await _startup(scope, receive, stash)
    await stash.send(send, {"type": "lifespan.startup.failed"}, reraise=True)


async def raise_on_scope(scope: Scope, receive: Receive, send: Send, stash: LifespanStash) -> None:
    stash.on_call(scope)
    raise RuntimeError("asgi-conformance: this app does not support lifespan")


async def raise_after_startup(scope: Scope, receive: Receive, send: Send, stash: LifespanStash) -> None:
    await _startup(scope, receive, stash)
    raise RuntimeError("asgi-conformance: lifespan raised after receiving startup")


async def gated_startup(scope: Scope, receive: Receive, send: Send, stash: LifespanStash) -> None:
    """Completes startup only once the harness opens gate ``startup``."""
    await _startup(scope, receive, stash)
    opened = await journal.wait_gate("startup")
    journal.write("lifespan", {"kind": "gate", "name": "startup", "opened": opened})
    await _complete_startup(scope, send, stash)
    await _serve_until_shutdown(receive, send, stash)


async def gated_shutdown(scope: Scope, receive: Receive, send: Send, stash: LifespanStash) -> None:
    """Completes shutdown only once the harness opens gate ``shutdown``."""
    await _startup(scope, receive, stash)
    await _complete_startup(scope, send, stash)
    await _until_shutdown(receive, stash)
    opened = await journal.wait_gate("shutdown")
    journal.write("lifespan", {"kind": "gate", "name": "shutdown", "opened": opened})
    await stash.send(send, {"type": "lifespan.shutdown.complete"})


async def shutdown_failed(scope: Scope, receive: Receive, send: Send, stash: LifespanStash) -> None:
    await _startup(scope, receive, stash)
    await _complete_startup(scope, send, stash)
    await _until_shutdown(receive, stash)
    await stash.send(send, {"type": "lifespan.shutdown.failed", "message": FAILED_MARKER}, reraise=True)


async def returns_early(scope: Scope, receive: Receive, send: Send, stash: LifespanStash) -> None:
    """Receives startup, then returns without completing or failing."""
    await _startup(scope, receive, stash)


async def invalid_send(scope: Scope, receive: Receive, send: Send, stash: LifespanStash) -> None:
    """Sends an unknown lifespan message type, then completes normally."""
    await _startup(scope, receive, stash)
    await stash.send(send, {"type": "lifespan.bogus"})
    await _complete_startup(scope, send, stash)
    await _serve_until_shutdown(receive, send, stash)


async def out_of_order(scope: Scope, receive: Receive, send: Send, stash: LifespanStash) -> None:
    """Sends shutdown.complete during startup and startup.complete twice, then serves."""
    await _startup(scope, receive, stash)
    await stash.send(send, {"type": "lifespan.shutdown.complete"}, label="before-startup-complete")
    await _complete_startup(scope, send, stash)
    await stash.send(send, {"type": "lifespan.startup.complete"}, label="duplicate")
    await _serve_until_shutdown(receive, send, stash)


Handler = Callable[[Scope, Receive, Send, LifespanStash], Awaitable[None]]

HANDLERS: dict[str, Handler] = {
    "normal": normal,
    "startup_failed": startup_failed,
    "startup_failed_no_message": startup_failed_no_message,
    "raise_on_scope": raise_on_scope,
    "raise_after_startup": raise_after_startup,
    "gated_startup": gated_startup,
    "gated_shutdown": gated_shutdown,
    "shutdown_failed": shutdown_failed,
    "returns_early": returns_early,
    "invalid_send": invalid_send,
    "out_of_order": out_of_order,
}


App = Callable[[Scope, Receive, Send], Awaitable[None]]


class HeldRequests:
    """Serves ``/hold/<token>`` itself (answered once gate ``release`` opens); passes the rest on.

    The request journals ``hold``/``start`` when it arrives and ``hold``/``end`` (with how it
    ended: completed, cancelled, raised) when it is over, in the ``lifespan`` stream, so its
    records and the lifespan's are in one order.
    """

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path")
        if scope.get("type") == "http" and isinstance(path, str) and path.startswith(HOLD_PREFIX):
            await self.hold(receive, send)
        else:
            await self.app(scope, receive, send)

    @staticmethod
    async def hold(receive: Receive, send: Send) -> None:
        await receive()  # the (empty) request body
        journal.write("lifespan", {"kind": "hold", "phase": "start"})
        how = "cancelled"  # what is left if the server cancels the task (a BaseException)
        try:
            opened = await journal.wait_gate("release", limit=60.0)
            body = b"released" if opened else b"gave up waiting"
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": body})
            how = "completed" if opened else "gave-up"
        except Exception as exc:  # e.g. send() after the server closed the connection
            how = f"raised {type(exc).__name__}"
        finally:
            journal.write("lifespan", {"kind": "hold", "phase": "end", "how": how})
