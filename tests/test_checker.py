"""The app-side protocol checker (asgi_conformance.apps.checker), in process: no server.

For each rule, a fake app that breaks it and one that does not, run under the checker
with a scripted ``receive`` and a recording ``send``; the test asserts the exact rule
IDs recorded, and that every event and exception passes through unchanged.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from asgi_conformance.apps import checker

Message = dict[str, Any]
App = Callable[[dict[str, Any], Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[Any]]

GET: list[Message] = [{"type": "http.request", "body": b"", "more_body": False}]
POST: list[Message] = [
    {"type": "http.request", "body": b"ab", "more_body": True},
    {"type": "http.request", "body": b"cd", "more_body": False},
]
WS: list[Message] = [{"type": "websocket.connect"}, {"type": "websocket.disconnect", "code": 1000}]
LIFESPAN: list[Message] = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
START = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
BODY = {"type": "http.response.body", "body": b"ok", "more_body": False}


def call(app: Any, scope: dict[str, Any], receive: Any, send: Any) -> Any:
    async def main() -> Any:
        return await app(scope, receive, send)

    return asyncio.run(main())


class Run:
    """One call of a checked app: the records, what the server got, what the app got back."""

    def __init__(
        self,
        app: App,
        kind: str = "http",
        events: list[Message] | None = None,
        headers: list[Any] | None = None,
        *,
        inner: bool = False,
    ) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = []
        self.sent: list[Any] = []
        self.received: list[Message] = []
        defaults: dict[str, list[Message]] = {"http": GET, "websocket": WS}
        default = defaults.get(kind, LIFESPAN)
        self.script: list[Message] = list(events if events is not None else default)
        self.scope: dict[str, Any] = {"type": kind, "asgi": {"version": "3.0"}}
        if kind != "lifespan":
            self.scope.update(path="/t/abc", headers=headers or [])
        self.exception: BaseException | None = None
        self.result: Any = None
        wrapped = checker.wrap(app, "fake", sink=lambda s, r: self.records.append((s, r)), inner=inner)
        try:
            self.result = call(wrapped, self.scope, self.receive, self.send)
        except Exception as exc:
            self.exception = exc

    async def receive(self) -> Message:
        message = self.script.pop(0) if self.script else {"type": f"{self.scope['type']}.disconnect"}
        self.received.append(message)
        return message

    async def send(self, message: Any) -> None:
        self.sent.append(message)

    @property
    def rules(self) -> list[str]:
        return [r["rule"] for _, r in self.records if r["kind"] == "violation"]

    @property
    def summary(self) -> dict[str, Any]:
        found = [r for _, r in self.records if r["kind"] == "connection"]
        assert len(found) == 1
        return found[0]


def sender(*events: Any, read: int = 1, after: Callable[[Any, Any], Awaitable[None]] | None = None) -> App:
    """An app that receives ``read`` times, sends ``events`` as they are, then runs ``after``."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        for _ in range(read):
            await receive()
        for event in events:
            await send(event)
        if after is not None:
            await after(receive, send)

    return app


async def _nothing(receive: Any, send: Any) -> None:
    return None


# (rule name, a breaking app and its run arguments, a clean app and its run arguments)
CASES: list[tuple[str, tuple[App, dict[str, Any]], tuple[App, dict[str, Any]]]] = [
    (
        "send_invalid_type",
        (sender({"type": "http.response.bogus"}, START, BODY), {}),
        (sender(START, BODY), {}),
    ),
    ("http_start_twice", (sender(START, START, BODY), {}), (sender(START, BODY), {})),
    ("http_body_before_start", (sender(BODY, START, BODY), {}), (sender(START, BODY), {})),
    (
        "http_send_after_complete",
        (sender(START, BODY, BODY), {}),
        (sender(START, {**BODY, "more_body": True}, BODY), {}),
    ),
    ("http_status_type", (sender({**START, "status": "200"}, BODY), {}), (sender({**START, "status": 404}, BODY), {})),
    ("http_status_range", (sender({**START, "status": 600}, BODY), {}), (sender({**START, "status": 599}, BODY), {})),
    (
        "http_headers_type",
        (sender({**START, "headers": [("content-type", "text/plain")]}, BODY), {}),
        (sender({**START, "headers": ((b"a", b"1"), [b"b", b"2"])}, BODY), {}),
    ),
    (
        "http_headers_lowercase",
        (sender({**START, "headers": [(b"Content-Type", b"text/plain")]}, BODY), {}),
        (sender({**START, "headers": [(b"content-type", b"Text/Plain")]}, BODY), {}),
    ),
    (
        "http_body_type",
        (sender(START, {**BODY, "body": "ok"}), {}),
        (sender(START, {"type": "http.response.body"}), {}),
    ),
    ("http_return_incomplete", (sender(START, {**BODY, "more_body": True}), {}), (sender(START, BODY), {})),
    (
        "http_body_unread",
        (sender(START, BODY, read=1), {"events": POST}),
        (sender(START, BODY, read=2), {"events": POST}),
    ),
    (
        "send_after_disconnect",
        (sender(START, BODY, read=1), {"events": [{"type": "http.disconnect"}]}),
        (sender(read=1), {"events": [{"type": "http.disconnect"}]}),
    ),
    (
        "receive_after_disconnect",
        (sender(START, BODY, after=lambda receive, send: _receive(receive, 2)), {}),
        (sender(START, BODY, after=lambda receive, send: _receive(receive, 1)), {}),
    ),
    (
        "ws_send_before_accept",
        (sender({"type": "websocket.send", "text": "x"}, {"type": "websocket.close"}), {"kind": "websocket"}),
        (sender({"type": "websocket.accept"}, {"type": "websocket.send", "text": "x"}), {"kind": "websocket"}),
    ),
    (
        "ws_accept_twice",
        (sender({"type": "websocket.accept"}, {"type": "websocket.accept"}), {"kind": "websocket"}),
        (sender({"type": "websocket.accept"}, {"type": "websocket.close", "code": 4000}), {"kind": "websocket"}),
    ),
    (
        "ws_send_after_close",
        (sender({"type": "websocket.close"}, {"type": "websocket.send", "text": "x"}), {"kind": "websocket"}),
        (sender({"type": "websocket.close", "reason": "bye"}), {"kind": "websocket"}),
    ),
    (
        "ws_send_keys",
        (
            sender({"type": "websocket.accept"}, {"type": "websocket.send", "text": "a", "bytes": b"b"}),
            {"kind": "websocket"},
        ),
        (
            sender({"type": "websocket.accept"}, {"type": "websocket.send", "text": None, "bytes": b"b"}),
            {"kind": "websocket"},
        ),
    ),
    (
        "ws_accept_keys",
        (
            sender({"type": "websocket.accept", "headers": [(b"sec-websocket-protocol", b"x")]}),
            {"kind": "websocket"},
        ),
        (sender({"type": "websocket.accept", "subprotocol": "x", "headers": [(b"x-a", b"1")]}), {"kind": "websocket"}),
    ),
    (
        "ws_close_keys",
        (sender({"type": "websocket.close", "code": "1000"}), {"kind": "websocket"}),
        (sender({"type": "websocket.close", "code": 1000, "reason": None}), {"kind": "websocket"}),
    ),
    (
        "ws_connect_unanswered",
        (sender(), {"kind": "websocket"}),
        (sender(read=2), {"kind": "websocket"}),  # the client went away before an answer: nothing to answer
    ),
    (
        "lifespan_order",
        (
            sender({"type": "lifespan.startup.complete"}, {"type": "lifespan.startup.complete"}),
            {"kind": "lifespan", "events": LIFESPAN},
        ),
        (
            sender(
                after=lambda receive, send: _answer_both(receive, send),
                read=0,
            ),
            {"kind": "lifespan", "events": LIFESPAN},
        ),
    ),
    (
        "lifespan_raised",
        (sender(after=lambda receive, send: _answer_both(receive, send, fail=True), read=0), {"kind": "lifespan"}),
        (sender(after=lambda receive, send: _raise(), read=1), {"kind": "lifespan", "events": LIFESPAN}),
    ),
    (
        "lifespan_unanswered",
        (sender(read=1), {"kind": "lifespan", "events": LIFESPAN}),
        (sender(read=0), {"kind": "lifespan", "events": LIFESPAN}),  # never asked: not unanswered
    ),
]


async def _answer_both(receive: Any, send: Any, *, fail: bool = False) -> None:
    await receive()
    await send({"type": "lifespan.startup.complete"})
    await receive()
    if fail:
        raise RuntimeError("cleanup failed")
    await send({"type": "lifespan.shutdown.failed", "message": "x"})


async def _raise() -> None:
    raise RuntimeError("lifespan unsupported")  # before startup completes: the spec's signal


async def _receive(receive: Any, times: int) -> None:
    for _ in range(times):
        await receive()


@pytest.mark.parametrize(("rule", "broken", "clean"), CASES, ids=[c[0] for c in CASES])
def test_rule(rule: str, broken: tuple[App, dict[str, Any]], clean: tuple[App, dict[str, Any]]) -> None:
    bad = Run(broken[0], **broken[1])
    assert bad.rules == [f"chk.{rule}"], bad.records
    good = Run(clean[0], **clean[1])
    assert good.rules == [], good.records
    assert {s for s, _ in bad.records + good.records} == {"checker.fake"}


def test_every_rule_has_a_case() -> None:
    assert sorted(f"chk.{c[0]}" for c in CASES) == sorted(checker.RULES)


def test_rules_are_stable_snake_case_with_level_and_spec() -> None:
    for rule_id, rule in checker.RULES.items():
        assert rule_id == f"chk.{rule.name}"
        assert re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)*", rule.name)
        assert rule.level in ("MUST", "SHOULD")
        assert rule.spec
        assert rule.title
        assert rule.kinds


def test_events_pass_through_unchanged_even_invalid_ones() -> None:
    invalid = {"type": "http.response.start", "status": "x", "headers": "nope"}
    body = {"type": "http.response.body", "body": "str"}
    run = Run(sender(invalid, body, {"type": "bogus"}, BODY, read=2), events=POST)
    assert run.sent == [invalid, body, {"type": "bogus"}, BODY]
    assert all(a is b for a, b in zip(run.sent, [invalid, body], strict=False))
    assert [m["body"] for m in run.received] == [b"ab", b"cd"]
    assert run.summary["sends"] == ["http.response.start", "http.response.body", "bogus", "http.response.body"]
    assert run.summary["receives"] == 2
    assert run.summary["outcome"] == "returned"


def test_generator_headers_are_not_consumed() -> None:
    got: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({**START, "headers": ((b"x-" + bytes([97 + i]), b"1") for i in range(3))})
        await send(BODY)

    class Consumer(Run):
        async def send(self, message: Any) -> None:
            if message["type"] == "http.response.start":
                got.extend(message["headers"])
            await super().send(message)

    run = Consumer(app)
    assert run.rules == []
    assert got == [(b"x-a", b"1"), (b"x-b", b"1"), (b"x-c", b"1")]


def test_exceptions_propagate_unchanged_and_are_kept_in_the_connection_record() -> None:
    error = ValueError("boom")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(START)
        await send(BODY)
        raise error

    run = Run(app)
    assert run.exception is error
    assert run.rules == []  # raising out of an http call is no violation (core › Error Handling)
    assert run.summary["outcome"] == "raised ValueError"


def test_return_value_passes_through() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> int:
        await receive()
        await send(START)
        await send(BODY)
        return 7

    assert Run(app).result == 7


def test_send_errors_propagate_and_re_raising_them_is_not_a_violation() -> None:
    failure = OSError("client gone")

    class Failing(Run):
        async def send(self, message: Any) -> None:
            raise failure

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(START)

    run = Failing(app)
    assert run.exception is failure
    assert run.rules == []  # not http_return_incomplete: the client had gone

    async def swallowing(scope: Any, receive: Any, send: Any) -> None:
        try:
            await send(START)
        except OSError:
            return

    assert Failing(swallowing).rules == []


def test_lifespan_raising_before_startup_completes_is_the_unsupported_signal() -> None:
    async def unsupported(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        raise RuntimeError("no lifespan here")

    run = Run(unsupported, kind="lifespan", events=LIFESPAN)
    assert isinstance(run.exception, RuntimeError)
    assert run.rules == []

    async def late(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        raise RuntimeError("cleanup failed")

    assert Run(late, kind="lifespan", events=LIFESPAN).rules == ["chk.lifespan_raised"]


def test_unread_body_announced_by_headers_only() -> None:
    app = sender(START, BODY, read=0)
    assert Run(app, headers=[(b"content-length", b"5")]).rules == ["chk.http_body_unread"]
    assert Run(app, headers=[(b"transfer-encoding", b"chunked")]).rules == ["chk.http_body_unread"]
    assert Run(app, headers=[(b"content-length", b"0")]).rules == []
    assert Run(app).rules == []


def test_trailers_complete_the_response() -> None:
    app = sender(
        {**START, "trailers": True},
        BODY,
        {"type": "http.response.trailers", "headers": [(b"x-t", b"1")], "more_trailers": False},
    )
    assert Run(app).rules == []
    assert Run(sender({**START, "trailers": True}, BODY)).rules == ["chk.http_return_incomplete"]


def test_each_rule_is_reported_once_per_connection() -> None:
    run = Run(sender(START, START, START, BODY))
    assert run.rules == ["chk.http_start_twice"]
    assert run.summary["violations"] == ["chk.http_start_twice"]


def test_other_scope_types_are_passed_on_unchecked() -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> str:
        seen.append(scope)
        await send({"type": "whatever"})
        return "done"

    records: list[Any] = []
    wrapped = checker.wrap(app, "fake", sink=lambda s, r: records.append(r), inner=False)

    async def send(message: Any) -> None:
        seen.append(message)

    async def receive() -> Message:
        return {}

    assert call(wrapped, {"type": "custom"}, receive, send) == "done"
    assert records == []
    assert seen == [{"type": "custom"}, {"type": "whatever"}]


def test_stream_names_are_journal_safe() -> None:
    assert checker.stream("starlette") == "checker.starlette"
    assert checker.stream("a b/c") == "checker.a_b_c"


def test_inner_mutants_sit_between_checker_and_app(monkeypatch: pytest.MonkeyPatch) -> None:
    def doubling(app: Any) -> Any:
        async def mutated(scope: Any, receive: Any, send: Any) -> None:
            async def twice(message: Any) -> None:
                await send(message)
                if message["type"] == "http.response.start":
                    await send(message)

            await app(scope, receive, twice)

        return mutated

    monkeypatch.setitem(checker.INNER, "test-doubling", doubling)
    monkeypatch.setenv("ASGI_CONFORMANCE_MUTANT", "test-doubling")
    records: list[Any] = []
    wrapped = checker.wrap(sender(START, BODY), "fake", sink=lambda s, r: records.append(r))
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Message:
        return GET[0]

    call(wrapped, {"type": "http", "path": "/", "headers": []}, receive, send)
    assert [r["rule"] for r in records if r["kind"] == "violation"] == ["chk.http_start_twice"]
    assert sent == [START, START, BODY]


# -- the checker mutants, in process ------------------------------------------------------


async def _plain_http(scope: Any, receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            break
    await send(START)
    await send(BODY)


async def _plain_websocket(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": "hi"})
    await send({"type": "websocket.close", "code": 1000})


async def _plain_lifespan(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "lifespan.startup.complete"})
    await receive()
    await send({"type": "lifespan.shutdown.complete"})


PLAIN: dict[str, tuple[App, dict[str, Any]]] = {
    "http": (_plain_http, {"events": POST, "headers": [(b"content-length", b"4")]}),
    "websocket": (_plain_websocket, {"kind": "websocket"}),
    "lifespan": (_plain_lifespan, {"kind": "lifespan"}),
}


def _checker_mutants() -> list[Any]:
    from asgi_conformance.apps import mutants

    mutants._load_all()
    return sorted((m for m in mutants.MUTANTS.values() if m.name in checker.INNER), key=lambda m: m.name)


def test_a_mutant_per_rule() -> None:
    rules = sorted({f"chk.{s.split('.', 2)[2]}" for m in _checker_mutants() for s in m.scenarios})
    assert rules == sorted(checker.RULES)
    assert len(_checker_mutants()) == len(checker.RULES)


@pytest.mark.parametrize("mutant", _checker_mutants(), ids=lambda m: m.name)
def test_mutant_breaks_its_rule_inside_the_checker(mutant: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    rule = checker.RULES[f"chk.{mutant.scenarios[0].split('.', 2)[2]}"]
    app, arguments = PLAIN[rule.kinds[0]]

    if mutant.base is not None:
        monkeypatch.setenv("ASGI_CONFORMANCE_MUTANT", mutant.base)
        assert rule.id not in Run(app, **arguments, inner=True).rules
    monkeypatch.setenv("ASGI_CONFORMANCE_MUTANT", mutant.chain)
    assert rule.id in Run(app, **arguments, inner=True).rules
    monkeypatch.delenv("ASGI_CONFORMANCE_MUTANT")
    assert Run(app, **arguments, inner=True).rules == []


def test_a_send_racing_from_another_task_is_not_counted() -> None:
    """www › Disconnect: concurrent code may find send() failing slightly before it sees the event."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()

        async def listener() -> None:
            await receive()  # http.disconnect, in another task

        await asyncio.create_task(listener())
        await send(START)
        await send(BODY)

    run = Run(app, events=[GET[0], {"type": "http.disconnect"}])
    assert run.rules == []


def test_the_checker_runs_under_trio() -> None:
    trio = pytest.importorskip("trio")
    records: list[Any] = []
    sent: list[Any] = []
    script = [GET[0], {"type": "http.disconnect"}]

    async def receive() -> Message:
        return script.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await receive()
        await send(START)

    wrapped = checker.wrap(app, "fake", sink=lambda s, r: records.append(r), inner=False)

    async def main() -> None:
        await wrapped({"type": "http", "path": "/", "headers": []}, receive, send)

    trio.run(main)
    assert sent == [START]
    assert [r["rule"] for r in records if r["kind"] == "violation"] == ["chk.send_after_disconnect"]
