"""The app-side protocol checker: an ASGI middleware that watches what an app does.

The rest of the catalogue judges servers. This middleware judges the *app* a server
runs (a framework: Starlette, FastAPI, Litestar, Quart, Django): placed between the
server and the app, it validates every event the app sends and every ``receive`` it
makes, per connection (http, websocket, lifespan), and reports each violation of an
ASGI rule to the journal with a stable rule ID. It only observes: every event passes
through unchanged (invalid ones too), every exception propagates unchanged, and the
return value is the app's.

Public API
----------
``wrap(app, label, *, sink=None, inner=True) -> App``
    The checked app. ``label`` names what is checked (a framework: ``"starlette"``);
    records go to the journal stream ``stream(label)``. ``sink(stream, record)``
    replaces ``journal.write`` (the unit tests collect records in a list). With
    ``inner`` (the default) the checker mutants named by ``ASGI_CONFORMANCE_MUTANT``
    sit between the checker and ``app`` (see ``INNER``), so the checker sees the bug
    they imitate, as it would see a broken framework.
``RULES``: ``{rule ID: Rule}``
    Every rule: ``Rule.id`` (``chk.<name>``, stable), ``name``, ``level`` (``"MUST"`` or
    ``"SHOULD"``: the honest level of the spec text), ``spec`` (where the rule comes
    from), ``title``, ``kinds`` (the scope types it applies to). The suite makes one
    cell per framework and rule from this table (suites/test_checker.py).
``stream(label) -> str``
    The journal stream of a label: ``checker.<label>``.
``INNER``: ``{mutant name: wrapper}``
    Filled by apps/mutants_checker.py on import: the wrappers ``wrap`` places inside
    itself when the environment names the mutant.

Records (typed JSON, one per line in ``<journal>/checker.<label>.jsonl``)
-------------------------------------------------------------------------
``{"kind": "violation", "rule", "level", "label", "type", "conn", "path", "detail"}``
    One per rule and connection (the first occurrence); ``conn`` numbers the
    connections of a process; ``path`` is the scope's (None for lifespan); ``detail``
    is bounded text (reprs cut short).
``{"kind": "connection", "label", "type", "conn", "path", "sends", "receives", "outcome", "violations"}``
    One when each connection ends: what was exercised (the send event types, at most
    ``MAX_LISTED``; the number of receive calls), how the app ended (``returned``,
    ``raised <Class>``, ``cancelled``) and the rule IDs it broke.

An exception out of an http or websocket call is not a violation (core › Error Handling
lets servers surface what bubbles up out of an app); the connection record keeps it.
Raising out of the lifespan call is the spec's "lifespan unsupported" signal until
startup has completed; after that it is ``chk.lifespan_raised``.

Runs inside the server: standard library only; works on asyncio and trio (it awaits
nothing but the server's own ``receive`` and ``send``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import aio, journal

__all__ = ["INNER", "MAX_DETAIL", "RULES", "Rule", "inner_wrappers", "stream", "wrap"]

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[Any]]
Wrapper = Callable[[App], App]
Sink = Callable[[str, dict[str, Any]], None]

MAX_DETAIL = 300
MAX_LISTED = 20
MAX_RECORDS = 5000
"""Violation records per process and label, at most (a looping app cannot fill the disk)."""


@dataclass(frozen=True)
class Rule:
    name: str
    level: str
    spec: str
    title: str
    kinds: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"chk.{self.name}"


_RULES = (
    Rule(
        "send_invalid_type",
        "MUST",
        "core › Error Handling (an event with an unknown type is invalid)",
        "every event sent is a dict whose type is one the scope's protocol defines",
        ("http", "websocket", "lifespan"),
    ),
    Rule(
        "http_start_twice",
        "MUST",
        "www › Response Start (one start, then content messages)",
        "http.response.start is sent once",
        ("http",),
    ),
    Rule(
        "http_body_before_start",
        "MUST",
        "www › Response Start, Response Body (a body continues a started response)",
        "no response body is sent before http.response.start",
        ("http",),
    ),
    Rule(
        "http_send_after_complete",
        "SHOULD",
        "www › Response Body (after more_body False, further messages are ignored)",
        "nothing is sent after the response is complete",
        ("http",),
    ),
    Rule(
        "http_status_type",
        "MUST",
        "www › Response Start (status: int)",
        "the status is an int",
        ("http",),
    ),
    Rule(
        "http_status_range",
        "SHOULD",
        "RFC 9110 §15 (values outside 100..599 are invalid); ASGI says only int",
        "the status is in 100..599",
        ("http",),
    ),
    Rule(
        "http_headers_type",
        "MUST",
        "www › Response Start, Response Trailers (headers: iterable of [bytes, bytes]; no pseudo headers)",
        "response headers are [name, value] pairs of byte strings, without pseudo headers",
        ("http",),
    ),
    Rule(
        "http_headers_lowercase",
        "MUST",
        "www › Response Start (header names must be lowercased)",
        "response header names are lower-case",
        ("http",),
    ),
    Rule(
        "http_body_type",
        "MUST",
        "www › Response Body (body: byte string; more_body: bool)",
        "a response body is bytes and more_body a bool",
        ("http",),
    ),
    Rule(
        "http_return_incomplete",
        "MUST",
        "www › Response Start (needs to be followed by at least one response content message), Response Body",
        "the app does not return before its response is complete (unless the client has gone)",
        ("http",),
    ),
    Rule(
        "http_body_unread",
        "SHOULD",
        "www › Request (with more_body True the application should wait for the chunk with more_body False)",
        "the app reads the request body to the end before it completes its response",
        ("http",),
    ),
    Rule(
        "send_after_disconnect",
        "SHOULD",
        "www › Disconnect, HTTP and WebSocket (once received, send() is expected to fail; concurrent code "
        "may race with it, so only a send from the task that received the disconnect counts)",
        "the app sends nothing after it has received http.disconnect / websocket.disconnect",
        ("http", "websocket"),
    ),
    Rule(
        "receive_after_disconnect",
        "SHOULD",
        "www › Disconnect (the last event of the connection; inferred)",
        "the app does not call receive() again after a disconnect event",
        ("http", "websocket"),
    ),
    Rule(
        "ws_send_before_accept",
        "MUST",
        "www › Connect (answered with Accept or Close before messages flow)",
        "no websocket.send before websocket.accept",
        ("websocket",),
    ),
    Rule(
        "ws_accept_twice",
        "SHOULD",
        "www › Accept (answers websocket.connect once; inferred)",
        "websocket.accept is sent at most once, and not after websocket.close",
        ("websocket",),
    ),
    Rule(
        "ws_send_after_close",
        "SHOULD",
        "www › Close; core › Error Handling (messages after close are no-ops)",
        "nothing is sent after websocket.close (or a denial response)",
        ("websocket",),
    ),
    Rule(
        "ws_send_keys",
        "MUST",
        "www › Send (exactly one of bytes or text must be non-None)",
        "websocket.send carries exactly one of text (str) and bytes (bytes)",
        ("websocket",),
    ),
    Rule(
        "ws_accept_keys",
        "MUST",
        "www › Accept (subprotocol: str; headers: [bytes, bytes], lower-case, no sec-websocket-protocol)",
        "websocket.accept has a str subprotocol (or none) and valid headers",
        ("websocket",),
    ),
    Rule(
        "ws_close_keys",
        "MUST",
        "www › Close (code: int; reason: str)",
        "websocket.close has an int code and a str reason (or none)",
        ("websocket",),
    ),
    Rule(
        "ws_connect_unanswered",
        "MUST",
        "www › Connect (must be responded to with either an Accept or a Close message)",
        "the app answers websocket.connect before it returns (unless the client has gone)",
        ("websocket",),
    ),
    Rule(
        "lifespan_order",
        "MUST",
        "ls › Startup Complete, Shutdown Complete (each answers its event, once)",
        "startup.complete/failed once after lifespan.startup; shutdown.complete/failed once after lifespan.shutdown",
        ("lifespan",),
    ),
    Rule(
        "lifespan_unanswered",
        "MUST",
        "ls › Startup Complete, Shutdown Complete (the server must wait for this message)",
        "the app does not return after lifespan.startup / lifespan.shutdown without answering it",
        ("lifespan",),
    ),
    Rule(
        "lifespan_raised",
        "SHOULD",
        "ls › Scope (raising is the signal for 'lifespan unsupported'; a failure is reported with "
        "lifespan.startup.failed / lifespan.shutdown.failed)",
        "after startup has completed, the app does not raise out of the lifespan call",
        ("lifespan",),
    ),
)
RULES: dict[str, Rule] = {rule.id: rule for rule in _RULES}

SEND_TYPES: dict[str, frozenset[str]] = {
    "http": frozenset(
        {
            "http.response.start",
            "http.response.body",
            "http.response.trailers",
            "http.response.push",
            "http.response.zerocopy",
            "http.response.pathsend",
            "http.response.early_hint",
            "http.response.debug",
        }
    ),
    "websocket": frozenset(
        {
            "websocket.accept",
            "websocket.send",
            "websocket.close",
            "websocket.http.response.start",
            "websocket.http.response.body",
        }
    ),
    "lifespan": frozenset(
        {
            "lifespan.startup.complete",
            "lifespan.startup.failed",
            "lifespan.shutdown.complete",
            "lifespan.shutdown.failed",
        }
    ),
}

INNER: dict[str, Wrapper] = {}
"""Checker mutants by name (filled by apps/mutants_checker.py on import)."""

_MUTANT_ENV = "ASGI_CONFORMANCE_MUTANT"  # = apps.mutants.ENV (not imported: no cycle at import)
_STREAM_SAFE = re.compile(r"[^A-Za-z0-9_.-]")
_CONNECTIONS = itertools.count(1)
_WRITTEN: dict[str, int] = {}


def stream(label: str) -> str:
    """The journal stream the checker writes for ``label``."""
    return "checker." + (_STREAM_SAFE.sub("_", label)[:80] or "_")


def short(value: Any, limit: int = MAX_DETAIL) -> str:
    """A bounded repr (never raises)."""
    try:
        text = repr(value)
    except Exception as exc:  # a hostile __repr__
        text = f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def inner_wrappers() -> list[Wrapper]:
    """The checker mutants the environment names, outermost first."""
    chain = os.environ.get(_MUTANT_ENV)
    if not chain:
        return []
    from . import mutants_checker  # noqa: F401  (fills INNER)

    return [INNER[name] for name in chain.split("+") if name in INNER]


def wrap(app: App, label: str, *, sink: Sink | None = None, inner: bool = True) -> App:
    """``app`` behind the protocol checker (see the module docstring)."""
    checked = app
    if inner:
        for wrapper in reversed(inner_wrappers()):
            checked = wrapper(checked)
    write = sink if sink is not None else journal.write
    name = stream(label)

    async def checker(scope: Scope, receive: Receive, send: Send) -> Any:
        kind = scope.get("type") if isinstance(scope, Mapping) else None
        if kind not in SEND_TYPES:
            return await checked(scope, receive, send)
        conn = _Connection(str(kind), scope, label, name, write)
        return await conn.run(checked, receive, send)

    return checker


def current_task() -> int | None:
    """An identity of the running task (asyncio or trio); None if there is none."""
    if aio.library() == "asyncio":
        task: Any = asyncio.current_task()
    else:
        trio: Any = sys.modules.get("trio")
        try:
            task = trio.lowlevel.current_task() if trio is not None else None
        except RuntimeError:
            task = None
    return id(task) if task is not None else None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def header_problems(headers: Any) -> tuple[list[str], list[str]]:
    """(type problems, case problems) of a headers value; an iterator is not consumed."""
    if headers is None:
        return ["headers is None"], []
    if isinstance(headers, str | bytes | bytearray | memoryview | Mapping) or not hasattr(headers, "__iter__"):
        return [f"headers is not an iterable of pairs: {short(headers, 80)}"], []
    if not isinstance(headers, list | tuple):
        return [], []  # an iterator or other iterable: checking it would consume what the server reads
    invalid: list[str] = []
    upper: list[str] = []
    for item in headers:
        if not isinstance(item, list | tuple) or len(item) != 2:
            invalid.append(f"not a [name, value] pair: {short(item, 80)}")
            continue
        key, value = item
        if not isinstance(key, bytes) or not isinstance(value, bytes):
            invalid.append(f"not bytes: {short(item, 80)}")
            continue
        if key.startswith(b":"):
            invalid.append(f"pseudo header: {short(key, 80)}")
        elif key != key.lower():
            upper.append(short(key, 80))
    return invalid, upper


class _Connection:
    """The state of one app call, and what it has broken so far."""

    def __init__(self, kind: str, scope: Scope, label: str, name: str, write: Sink) -> None:
        self.kind = kind
        self.scope = scope
        self.label = label
        self.name = name
        self.write = write
        self.conn = next(_CONNECTIONS)
        path = scope.get("path")
        self.path = path[:200] if isinstance(path, str) else None
        self.broken: list[str] = []
        self.sends: list[str] = []
        self.receives = 0
        self.disconnected = False
        self.send_error: BaseException | None = None
        self.disconnect_task: int | None = None
        """The task that received the disconnect (sends from other tasks may race with it)."""
        # http
        self.started = False
        self.trailers = False
        self.awaiting_trailers = False
        self.complete = False
        self.body_events = 0
        self.body_done = False
        # websocket
        self.connected = False  # websocket.connect received
        self.accepted = False
        self.closed = False  # websocket.close sent, or a denial response completed
        self.denial_started = False
        # lifespan
        self.startup_received = False
        self.startup_answered = False
        self.startup_completed = False
        self.shutdown_received = False
        self.shutdown_answered = False

    # -- reporting -----------------------------------------------------------------

    def violation(self, name: str, detail: str) -> None:
        rule = RULES[f"chk.{name}"]
        if rule.id in self.broken:
            return
        self.broken.append(rule.id)
        if _WRITTEN.get(self.name, 0) >= MAX_RECORDS:
            return
        _WRITTEN[self.name] = _WRITTEN.get(self.name, 0) + 1
        record = {
            "kind": "violation",
            "rule": rule.id,
            "level": rule.level,
            "label": self.label,
            "type": self.kind,
            "conn": self.conn,
            "path": self.path,
            "detail": detail[:MAX_DETAIL],
        }
        self._emit(record)

    def _emit(self, record: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):  # the checker must never break the app it watches
            self.write(self.name, record)

    # -- the call --------------------------------------------------------------------

    async def run(self, app: App, receive: Receive, send: Send) -> Any:
        outcome = "cancelled"
        try:
            result = await app(self.scope, self.checked_receive(receive), self.checked_send(send))
        except Exception as exc:
            outcome = f"raised {type(exc).__name__}"
            self.raised(exc)
            raise
        except BaseException as exc:
            outcome = f"cancelled ({type(exc).__name__})"
            raise
        else:
            outcome = "returned"
            self.returned()
            return result
        finally:
            self._emit(
                {
                    "kind": "connection",
                    "label": self.label,
                    "type": self.kind,
                    "conn": self.conn,
                    "path": self.path,
                    "sends": self.sends[:MAX_LISTED],
                    "send_count": len(self.sends),
                    "receives": self.receives,
                    "outcome": outcome,
                    "violations": list(self.broken),
                }
            )

    def checked_receive(self, receive: Receive) -> Receive:
        async def checked() -> Message:
            if self.disconnected:
                self.violation("receive_after_disconnect", f"receive() called again after {self.kind} disconnect")
            self.receives += 1
            message = await receive()
            self.received(message)
            return message

        return checked

    def checked_send(self, send: Send) -> Send:
        async def checked(message: Message) -> None:
            try:
                self.sent(message)
            except Exception as exc:  # a bug here must not change what the app sees
                self._emit({"kind": "checker-error", "label": self.label, "error": short(exc)})
            try:
                await send(message)
            except Exception as exc:
                self.send_error = exc
                raise

        return checked

    # -- receive ---------------------------------------------------------------------

    def received(self, message: Any) -> None:
        kind = message.get("type") if isinstance(message, Mapping) else None
        if kind in ("http.disconnect", "websocket.disconnect"):
            self.disconnected = True
            self.disconnect_task = current_task()
        elif kind == "http.request":
            self.body_events += 1
            if not message.get("more_body", False):
                self.body_done = True
        elif kind == "websocket.connect":
            self.connected = True
        elif kind == "lifespan.startup":
            self.startup_received = True
        elif kind == "lifespan.shutdown":
            self.shutdown_received = True

    # -- send ------------------------------------------------------------------------

    def sent(self, message: Any) -> None:
        kind = message.get("type") if isinstance(message, Mapping) else None
        self.sends.append(kind if isinstance(kind, str) else short(kind, 40))
        if not isinstance(message, Mapping) or not isinstance(kind, str) or kind not in SEND_TYPES[self.kind]:
            shown = short(kind, 80) if isinstance(message, Mapping) else f"a {type(message).__name__}"
            self.violation("send_invalid_type", f"{shown} is not a {self.kind} send event")
            return
        if self.disconnected and self.kind != "lifespan" and self.disconnect_task in (None, current_task()):
            self.violation("send_after_disconnect", f"{kind} sent after {self.kind} disconnect was received")
        if self.kind == "http":
            self.sent_http(kind, message)
        elif self.kind == "websocket":
            self.sent_websocket(kind, message)
        else:
            self.sent_lifespan(kind, message)

    def sent_http(self, kind: str, message: Mapping[str, Any]) -> None:
        if kind in ("http.response.push", "http.response.early_hint", "http.response.debug"):
            return
        if self.complete:
            self.violation("http_send_after_complete", f"{kind} sent after the response was complete")
            return
        if kind == "http.response.start":
            if self.started:
                self.violation("http_start_twice", "a second http.response.start")
                return
            self.started = True
            status = message.get("status")
            if not isinstance(status, int) or isinstance(status, bool):
                self.violation("http_status_type", f"status {short(status, 80)} is not an int")
            elif not 100 <= status <= 599:
                self.violation("http_status_range", f"status {status} is outside 100..599")
            self.check_headers(message.get("headers", []), "http_headers_type", "http_headers_lowercase")
            trailers = message.get("trailers", False)
            if not isinstance(trailers, bool):
                self.violation("http_headers_type", f"trailers {short(trailers, 80)} is not a bool")
            self.trailers = trailers is True
            return
        if kind == "http.response.trailers":
            self.check_headers(message.get("headers", []), "http_headers_type", "http_headers_lowercase")
            if not self.started:
                self.violation("http_body_before_start", "http.response.trailers before http.response.start")
            if not message.get("more_trailers", False) and self.awaiting_trailers:
                self.complete = True
            return
        # a content message: http.response.body, zerocopy, pathsend
        if not self.started:
            self.violation("http_body_before_start", f"{kind} before http.response.start")
            return
        if kind == "http.response.body" and "body" in message and not isinstance(message["body"], bytes):
            self.violation("http_body_type", f"body is a {type(message['body']).__name__}, not bytes")
        more = message.get("more_body", False)
        if "more_body" in message and not isinstance(more, bool):
            self.violation("http_body_type", f"more_body {short(more, 80)} is not a bool")
        if kind == "http.response.pathsend" or not more:
            if self.trailers:
                self.awaiting_trailers = True
            else:
                self.complete = True

    def check_headers(self, headers: Any, invalid_rule: str, case_rule: str) -> None:
        invalid, upper = header_problems(headers)
        if invalid:
            self.violation(invalid_rule, "; ".join(invalid[:3]))
        if upper:
            self.violation(case_rule, "upper-case header names: " + ", ".join(upper[:5]))

    def sent_websocket(self, kind: str, message: Mapping[str, Any]) -> None:
        if self.closed:
            self.violation("ws_send_after_close", f"{kind} sent after the connection was closed by the app")
            return
        if kind == "websocket.accept":
            if self.accepted or self.denial_started:
                self.violation("ws_accept_twice", "websocket.accept after the connection was already answered")
            self.accepted = True
            subprotocol = message.get("subprotocol")
            problems = [] if subprotocol is None or isinstance(subprotocol, str) else ["subprotocol is not a str"]
            invalid, upper = header_problems(message.get("headers", []))
            problems += invalid + [f"upper-case header name {name}" for name in upper]
            headers = message.get("headers")
            if isinstance(headers, list | tuple) and any(
                isinstance(item, list | tuple) and len(item) == 2 and item[0] == b"sec-websocket-protocol"
                for item in headers
            ):
                problems.append("a sec-websocket-protocol header (use the subprotocol key)")
            if problems:
                self.violation("ws_accept_keys", "; ".join(problems[:3]))
        elif kind == "websocket.send":
            if not self.accepted:
                self.violation("ws_send_before_accept", "websocket.send before websocket.accept")
            text, data = message.get("text"), message.get("bytes")
            problems = []
            if text is not None and not isinstance(text, str):
                problems.append(f"text is a {type(text).__name__}")
            if data is not None and not isinstance(data, bytes):
                problems.append(f"bytes is a {type(data).__name__}")
            if (text is None) == (data is None):
                problems.append("both text and bytes" if text is not None else "neither text nor bytes")
            if problems:
                self.violation("ws_send_keys", "; ".join(problems))
        elif kind == "websocket.close":
            self.closed = True
            code, reason = message.get("code", 1000), message.get("reason")
            problems = [] if _is_int(code) else [f"code {short(code, 80)} is not an int"]
            if reason is not None and not isinstance(reason, str):
                problems.append(f"reason is a {type(reason).__name__}")
            if problems:
                self.violation("ws_close_keys", "; ".join(problems))
        elif kind == "websocket.http.response.start":
            if self.accepted or self.denial_started:
                self.violation("ws_accept_twice", "a denial response after the connection was already answered")
            self.denial_started = True
        elif kind == "websocket.http.response.body" and not message.get("more_body", False):
            self.closed = True

    def sent_lifespan(self, kind: str, message: Mapping[str, Any]) -> None:
        if kind.startswith("lifespan.startup."):
            if not self.startup_received or self.startup_answered:
                why = "before lifespan.startup was received" if not self.startup_received else "a second answer"
                self.violation("lifespan_order", f"{kind}: {why}")
            self.startup_answered = True
            self.startup_completed = self.startup_completed or kind == "lifespan.startup.complete"
        else:
            if not self.shutdown_received or self.shutdown_answered:
                why = "before lifespan.shutdown was received" if not self.shutdown_received else "a second answer"
                self.violation("lifespan_order", f"{kind}: {why}")
            self.shutdown_answered = True

    # -- the end -----------------------------------------------------------------------

    def client_gone(self) -> bool:
        return self.disconnected or self.send_error is not None

    def returned(self) -> None:
        if self.kind == "http":
            if not self.complete and not self.client_gone():
                if not self.started:
                    self.violation("http_return_incomplete", "returned without sending http.response.start")
                elif self.awaiting_trailers:
                    self.violation("http_return_incomplete", "returned without the promised trailers")
                else:
                    self.violation("http_return_incomplete", "returned before a body with more_body False")
            self.check_body_read()
        elif self.kind == "websocket":
            if not (self.accepted or self.closed or self.denial_started) and not self.disconnected:
                self.violation("ws_connect_unanswered", "returned without answering websocket.connect")
        else:
            if self.startup_received and not self.startup_answered:
                self.violation("lifespan_unanswered", "returned after lifespan.startup without answering it")
            if self.shutdown_received and not self.shutdown_answered:
                self.violation("lifespan_unanswered", "returned after lifespan.shutdown without answering it")

    def raised(self, exc: Exception) -> None:
        """An exception out of an http or websocket call is no violation: core › Error Handling
        lets servers surface what bubbles up out of an app (the connection record keeps it)."""
        if self.kind == "http":
            self.check_body_read()
        if self.kind == "lifespan" and self.startup_completed:
            self.violation("lifespan_raised", f"{type(exc).__name__}: {short(str(exc), 200)}")

    def check_body_read(self) -> None:
        """After a complete response: was the request body read to the end (or the client gone)?"""
        if not self.complete or self.body_done or self.disconnected:
            return
        # One text for both cases: how far a framework with a concurrent receiver got is timing.
        if self.body_events or self.declares_body():
            self.violation("http_body_unread", "completed the response before the request body was read to the end")

    def declares_body(self) -> bool:
        """Whether the request headers announce a body (Content-Length > 0, or Transfer-Encoding)."""
        headers = self.scope.get("headers")
        if not isinstance(headers, list | tuple):
            return False
        for item in headers:
            if not isinstance(item, list | tuple) or len(item) != 2:
                continue
            key, value = item
            if not isinstance(key, bytes) or not isinstance(value, bytes):
                continue
            key = key.lower()
            if key == b"transfer-encoding":
                return True
            if key == b"content-length":
                return value.strip() not in (b"0", b"")
        return False
