"""Mutants for the checker scenarios (``chk.<framework>.<rule>``): a framework breaking a rule.

The checker judges the app, so a mutant here imitates a broken *framework*: it has to
sit between the checker and the framework app, where the checker sees what it does
(an outer mutant would be seen by the server, not by the checker). Each one is
registered twice: in ``mutants.MUTANTS`` (so ``--conformance-mutant`` and the harness
tests know it; its outer wrapper changes nothing) and in ``checker.INNER``, from where
``checker.wrap`` puts it inside itself when ``ASGI_CONFORMANCE_MUTANT`` names it.

One mutant per checker rule; each names that rule's cell for every framework. Extra
events a mutant sends itself are sent through the checker and whatever the server
raises for them is swallowed, so the framework goes on as it would.

Runs inside the server: standard library only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from . import aio, checker
from .frameworks import FRAMEWORKS
from .mutants import App, Message, Receive, Scope, Send, Wrapper, fixer, mutant

__all__: list[str] = []


def _unchanged(app: App) -> App:
    """The outer wrapper of every checker mutant: the real one is inside the checker."""
    return app


def frameworks_for(rule: checker.Rule) -> list[str]:
    """The frameworks a rule is judged on: lifespan rules only where the framework has a
    lifespan handler (Django's ASGIHandler has none: its process answers lifespan itself)."""
    return [
        name
        for name, framework in FRAMEWORKS.items()
        if "lifespan" not in rule.kinds or "lifespan_state" in framework.behaviours
    ]


def inner(
    name: str, rule: str, bug: str, *, base: str | None = None, reference: str = "uvicorn-h11"
) -> Callable[[Wrapper], Wrapper]:
    """Register ``wrapper`` as checker mutant ``name``, caught by ``chk.<framework>.<rule>``.

    With ``base`` (an inner fixer, see ``inner_fixer``) the mutant sits between the checker
    and the fixer: the reference runs with the fixer alone.
    """
    if f"chk.{rule}" not in checker.RULES:
        raise ValueError(f"mutant {name!r}: no checker rule {rule!r}")

    def register(wrapper: Wrapper) -> Wrapper:
        checker.INNER[name] = wrapper
        scenarios = (f"chk.{framework}.{rule}" for framework in frameworks_for(checker.RULES[f"chk.{rule}"]))
        mutant(name, bug, *scenarios, reference=reference, base=base, outer=base is not None)(_unchanged)
        return wrapper

    return register


def inner_fixer(name: str) -> Callable[[Wrapper], Wrapper]:
    """Register ``wrapper`` as a fixer that sits inside the checker (a base for ``inner``)."""

    def register(wrapper: Wrapper) -> Wrapper:
        checker.INNER[name] = wrapper
        fixer(name)(_unchanged)
        return wrapper

    return register


async def _try(send: Send, message: Message) -> None:
    """Send an event of the mutant's own; whatever the server raises for it is swallowed."""
    with contextlib.suppress(Exception):
        await send(message)


SendChange = Callable[[Message, Send], Any]


def on_send(kinds: tuple[str, ...], change: Callable[[Message, Send], Any]) -> Wrapper:
    """A wrapper whose ``change(message, send)`` replaces the app's send (scope types ``kinds``)."""

    def wrap(app: App) -> App:
        async def mutated(scope: Scope, receive: Receive, send: Send) -> Any:
            if scope.get("type") not in kinds:
                return await app(scope, receive, send)

            async def changed(message: Message) -> None:
                await change(message, send)

            return await app(scope, receive, changed)

        return mutated

    return wrap


def _final(message: Message) -> bool:
    return message.get("type") == "http.response.body" and not message.get("more_body", False)


# -- any scope ---------------------------------------------------------------------------


class _First:
    """Does something before the app's first send on each connection."""

    def __init__(self, kinds: tuple[str, ...], before: Message) -> None:
        self.kinds = kinds
        self.before = before

    def __call__(self, app: App) -> App:
        async def mutated(scope: Scope, receive: Receive, send: Send) -> Any:
            if scope.get("type") not in self.kinds:
                return await app(scope, receive, send)
            first = True

            async def changed(message: Message) -> None:
                nonlocal first
                if first:
                    first = False
                    await _try(send, dict(self.before))
                await send(message)

            return await app(scope, receive, changed)

        return mutated


inner(
    "chk-send-unknown-type",
    "send_invalid_type",
    "the framework sends an event type the protocol does not define (http.response.bogus)",
)(_First(("http",), {"type": "http.response.bogus"}))


# -- http ------------------------------------------------------------------------------


async def _start_twice(message: Message, send: Send) -> None:
    await send(message)
    if message.get("type") == "http.response.start":
        await _try(send, dict(message))


inner("chk-start-twice", "http_start_twice", "the framework sends http.response.start twice")(
    on_send(("http",), _start_twice)
)

inner(
    "chk-body-before-start",
    "http_body_before_start",
    "the framework sends an (empty, more_body) body before http.response.start",
)(_First(("http",), {"type": "http.response.body", "body": b"", "more_body": True}))


async def _after_complete(message: Message, send: Send) -> None:
    await send(message)
    if _final(message):
        await _try(send, {"type": "http.response.body", "body": b"late", "more_body": False})


inner(
    "chk-send-after-complete",
    "http_send_after_complete",
    "the framework sends another body after the final one",
)(on_send(("http",), _after_complete))


async def _status_str(message: Message, send: Send) -> None:
    if message.get("type") == "http.response.start":
        message = {**message, "status": str(message.get("status"))}
    await send(message)


inner("chk-status-str", "http_status_type", "the framework sends the status as a str ('200')")(
    on_send(("http",), _status_str)
)


async def _status_600(message: Message, send: Send) -> None:
    if message.get("type") == "http.response.start":
        message = {**message, "status": 600}
    await send(message)


inner("chk-status-600", "http_status_range", "the framework sends status 600")(on_send(("http",), _status_600))


def _add_header(item: Any) -> SendChange:
    async def change(message: Message, send: Send) -> None:
        if message.get("type") in ("http.response.start", "websocket.accept"):
            message = {**message, "headers": [*list(message.get("headers") or []), item]}
        await send(message)

    return change


inner("chk-header-str", "http_headers_type", "the framework sends a response header as (str, str)")(
    on_send(("http",), _add_header(("x-chk", "1")))
)


async def _lowercase(message: Message, send: Send) -> None:
    headers = message.get("headers")
    if message.get("type") in ("http.response.start", "http.response.trailers") and isinstance(headers, list | tuple):
        lowered = [
            (item[0].lower(), item[1])
            if isinstance(item, list | tuple) and len(item) == 2 and isinstance(item[0], bytes)
            else item
            for item in headers
        ]
        message = {**message, "headers": lowered}
    await send(message)


inner_fixer("chk-lowercase-headers")(on_send(("http",), _lowercase))
"""A framework that sends lower-case header names (Django sends ``Content-Type``): the reference
``chk-header-upper`` breaks."""

inner(
    "chk-header-upper",
    "http_headers_lowercase",
    "the framework sends an upper-case header name (X-Chk)",
    base="chk-lowercase-headers",
)(on_send(("http",), _add_header((b"X-Chk", b"1"))))


async def _bytearray_body(message: Message, send: Send) -> None:
    if message.get("type") == "http.response.body" and isinstance(message.get("body"), bytes):
        message = {**message, "body": bytearray(message["body"])}
    await send(message)


inner("chk-body-bytearray", "http_body_type", "the framework sends the body as a bytearray")(
    on_send(("http",), _bytearray_body)
)


async def _never_final(message: Message, send: Send) -> None:
    if _final(message):
        message = {**message, "more_body": True}
    await send(message)


inner(
    "chk-never-final",
    "http_return_incomplete",
    "the framework's last body says more_body True: it returns before completing the response",
)(on_send(("http",), _never_final))


@inner_fixer("chk-drain-body")
def _drain_body(app: App) -> App:
    """A framework that reads every request body to the end before it answers (none of them
    does for a route that ignores the body, a 405 say): the reference ``chk-skip-body`` breaks.
    The events read are handed to the app as they came, then ``receive`` is the server's."""

    async def mutated(scope: Scope, receive: Receive, send: Send) -> Any:
        if scope.get("type") != "http":
            return await app(scope, receive, send)
        read: list[Message] = []
        for _ in range(10_000):
            message = await receive()
            read.append(message)
            if message.get("type") != "http.request" or not message.get("more_body", False):
                break

        async def replay() -> Message:
            return read.pop(0) if read else await receive()

        return await app(scope, replay, send)

    return mutated


def _skip_body(app: App) -> App:
    """The app is told the body is empty; the checker sees no receive() at all. A later
    receive() waits (bounded) until the response is complete, then says http.disconnect."""

    async def mutated(scope: Scope, receive: Receive, send: Send) -> Any:
        if scope.get("type") != "http":
            return await app(scope, receive, send)
        told = False
        complete = False

        async def fake() -> Message:
            nonlocal told
            if not told:
                told = True
                return {"type": "http.request", "body": b"", "more_body": False}
            for _ in range(6000):  # at most 30 s
                if complete:
                    break
                await aio.sleep(0.005)
            return {"type": "http.disconnect"}

        async def sending(message: Message) -> None:
            nonlocal complete
            await send(message)
            complete = complete or _final(message)

        return await app(scope, fake, sending)

    return mutated


inner(
    "chk-skip-body",
    "http_body_unread",
    "the framework responds without reading the request body (it is handed an empty one)",
    base="chk-drain-body",
)(_skip_body)


def _after_final(extra: Callable[[Receive, Send], Any]) -> Wrapper:
    """Runs ``extra(receive, send)`` once the app's final body has been sent."""

    def wrap(app: App) -> App:
        async def mutated(scope: Scope, receive: Receive, send: Send) -> Any:
            if scope.get("type") != "http":
                return await app(scope, receive, send)

            async def changed(message: Message) -> None:
                await send(message)
                if _final(message):
                    await extra(receive, send)

            return await app(scope, receive, changed)

        return mutated

    return wrap


async def _disconnect_then_send(receive: Receive, send: Send) -> None:
    message = await receive()  # after a complete response: http.disconnect
    if message.get("type") == "http.disconnect":
        await _try(send, {"type": "http.response.body", "body": b"", "more_body": False})


inner(
    "chk-send-after-disconnect",
    "send_after_disconnect",
    "the framework receives http.disconnect, then sends anyway",
    # Starlette and FastAPI send a 500 after http.disconnect when the client leaves during
    # the body under every server that calls the app before the body is complete; daphne
    # buffers the body first, so there the rule holds and the mutant has something to break.
    reference="daphne",
)(_after_final(_disconnect_then_send))


async def _receive_twice(receive: Receive, send: Send) -> None:
    if (await receive()).get("type") == "http.disconnect":
        await receive()


inner(
    "chk-receive-after-disconnect",
    "receive_after_disconnect",
    "the framework calls receive() again after http.disconnect",
)(_after_final(_receive_twice))


# -- websocket -------------------------------------------------------------------------

inner(
    "chk-ws-send-before-accept",
    "ws_send_before_accept",
    "the framework sends a websocket.send before it answers websocket.connect",
)(_First(("websocket",), {"type": "websocket.send", "text": "chk"}))


async def _accept_twice(message: Message, send: Send) -> None:
    await send(message)
    if message.get("type") == "websocket.accept":
        await _try(send, {"type": "websocket.accept"})


inner("chk-ws-accept-twice", "ws_accept_twice", "the framework sends websocket.accept twice")(
    on_send(("websocket",), _accept_twice)
)


async def _send_after_close(message: Message, send: Send) -> None:
    await send(message)
    if message.get("type") == "websocket.accept":
        # Right after the accept, while the app is surely still running (a framework may
        # cancel its sender as soon as its own close has gone out).
        await _try(send, {"type": "websocket.close", "code": 1000})
        await _try(send, {"type": "websocket.send", "text": "late"})


inner(
    "chk-ws-send-after-close",
    "ws_send_after_close",
    "the framework closes the connection, then sends a message on it",
    # uvicorn's wsproto implementation returns from websocket.close at once; its websockets
    # one waits for the closing handshake, and Quart cancels the sender meanwhile.
    reference="uvicorn-wsproto",
)(on_send(("websocket",), _send_after_close))


async def _send_both(message: Message, send: Send) -> None:
    if message.get("type") in ("websocket.accept", "websocket.close"):
        await _try(send, {"type": "websocket.send", "text": "a", "bytes": b"b"})
    await send(message)


inner("chk-ws-send-both", "ws_send_keys", "the framework sends a websocket.send with both text and bytes")(
    on_send(("websocket",), _send_both)
)
inner(
    "chk-ws-accept-swp-header",
    "ws_accept_keys",
    "the framework puts sec-websocket-protocol in websocket.accept's headers",
)(on_send(("websocket",), _add_header((b"sec-websocket-protocol", b"chk"))))


async def _close_code_str(message: Message, send: Send) -> None:
    if message.get("type") == "websocket.close":
        message = {**message, "code": str(message.get("code", 1000))}
    await send(message)


inner("chk-ws-close-code-str", "ws_close_keys", "the framework sends the close code as a str")(
    on_send(("websocket",), _close_code_str)
)


def _ws_no_answer(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> Any:
        if scope.get("type") != "websocket":
            return await app(scope, receive, send)
        await receive()  # websocket.connect, never answered
        return None

    return mutated


inner(
    "chk-ws-no-answer",
    "ws_connect_unanswered",
    "the framework returns from a websocket call without answering websocket.connect",
)(_ws_no_answer)


# -- lifespan --------------------------------------------------------------------------


async def _complete_twice(message: Message, send: Send) -> None:
    await send(message)
    if message.get("type") == "lifespan.startup.complete":
        await _try(send, {"type": "lifespan.startup.complete"})


inner("chk-lifespan-complete-twice", "lifespan_order", "the framework sends lifespan.startup.complete twice")(
    on_send(("lifespan",), _complete_twice)
)


def _lifespan_no_answer(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> Any:
        if scope.get("type") != "lifespan":
            return await app(scope, receive, send)
        await receive()  # lifespan.startup, never answered
        return None

    return mutated


inner(
    "chk-lifespan-no-answer",
    "lifespan_unanswered",
    "the framework returns from the lifespan call after lifespan.startup without answering it",
)(_lifespan_no_answer)


def _lifespan_raise(app: App) -> App:
    async def mutated(scope: Scope, receive: Receive, send: Send) -> Any:
        result = await app(scope, receive, send)
        if scope.get("type") == "lifespan":
            raise RuntimeError("asgi-conformance mutant: raised after the lifespan protocol ended")
        return result

    return mutated


inner(
    "chk-lifespan-raise",
    "lifespan_raised",
    "the framework raises out of the lifespan call after startup completed (at shutdown)",
)(_lifespan_raise)
