"""Scenario apps for suites/test_http_response.py (registered with routes.route). Standard library only.

``resp-script`` runs a script the test sends: a list of steps, each a send event (sent
as given, so invalid events reach the server exactly), a gate to wait for, a report of
what the probes saw, or a bounded stream. The script travels typed-JSON encoded (bytes
stay bytes, str stays str) in the request body, or base64url in the query (``s=``) for
requests without a body (HEAD). Path: ``/app/resp-script/<token>``; the token names the
journal stream ``resp-<token>`` and prefixes the gates ``resp-<token>-<name>``.

Steps:

``{"op": "send", "event": {...}}``
    ``send(event)``. With ``"probe": name`` an exception is caught and noted under
    ``name`` (class, whether an OSError) and the script goes on; without it, an
    exception is journalled and ends the script. ``"headers_as"`` rebuilds the headers
    as ``"tuple"`` (tuple of tuples), ``"list"`` (list of lists) or ``"generator"``;
    ``"body_as"`` turns the body into a ``"bytearray"`` or ``"memoryview"``.
``{"op": "gate", "name": str, "limit": float}``
    journal ``at-gate`` (with the name), then wait (bounded) until the harness opens the gate.
``{"op": "report"}`` / ``{"op": "report_body"}``
    a 200 response (start and body) / a final body whose content is the probes as typed JSON.
``{"op": "stream", "chunk": int, "limit_bytes": int, "limit_s": float, "slow_s": float}``
    send ``chunk``-byte bodies with ``more_body`` until a send raises or a limit is
    reached; journals ``stream-begin``, progress every MiB and how the loop ended, then a
    final body.

Every run ends with a ``done`` journal record (probes, errors, step reached).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

from . import journal
from .routes import Receive, Scope, Send, route
from .typedjson import dumps, loads

__all__: list[str] = []

MAX_SCRIPT_BYTES = 1024 * 1024
MAX_STEPS = 1000
MAX_LIMIT_S = 60.0
MAX_STREAM_BYTES = 256 * 1024 * 1024


async def _read_all(receive: Receive) -> bytes:
    data = bytearray()
    for _ in range(100_000):
        message = await receive()
        if message.get("type") != "http.request":
            break
        body = message.get("body", b"")
        if isinstance(body, bytes | bytearray) and len(data) + len(body) <= MAX_SCRIPT_BYTES:
            data += body
        if not message.get("more_body", False):
            break
    return bytes(data)


def _headers(value: Any, shape: str) -> Any:
    pairs = list(value)
    if shape == "tuple":
        return tuple(tuple(p) for p in pairs)
    if shape == "list":
        return [list(p) for p in pairs]
    if shape == "generator":

        def generate() -> Iterator[Any]:
            yield from (tuple(p) for p in pairs)

        return generate()
    return value


def _body(value: Any, shape: str) -> Any:
    if shape == "bytearray":
        return bytearray(value)
    if shape == "memoryview":
        return memoryview(bytes(value))
    return value


def _describe(exc: BaseException) -> dict[str, Any]:
    return {"raised": type(exc).__name__, "oserror": isinstance(exc, OSError), "message": str(exc)[:200]}


class _Run:
    def __init__(self, token: str, send: Send) -> None:
        self.token = token
        self.send = send
        self.probes: dict[str, Any] = {}
        self.errors: list[dict[str, Any]] = []
        self.stream = f"resp-{token}"

    async def report(self, start: bool) -> None:
        body = dumps(self.probes)
        if start:
            await self.send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
                }
            )
        await self.send({"type": "http.response.body", "body": body})

    async def stream_body(self, step: dict[str, Any]) -> None:
        size = max(1, min(int(step.get("chunk", 65536)), 4 * 1024 * 1024))
        limit_bytes = min(int(step.get("limit_bytes", 1024 * 1024)), MAX_STREAM_BYTES)
        limit_s = min(float(step.get("limit_s", 5.0)), MAX_LIMIT_S)
        slow_s = float(step.get("slow_s", 0.1))
        chunk = bytes(range(256)) * (size // 256) + bytes(size % 256)
        began = time.monotonic()
        sent = 0
        slowest = 0.0
        first_slow: int | None = None
        ended = "byte limit"
        error: dict[str, Any] | None = None
        next_mark = 1024 * 1024
        journal.write(self.stream, {"kind": "stream-begin"})
        while True:
            if sent >= limit_bytes:
                break
            if time.monotonic() - began > limit_s:
                ended = "time limit"
                break
            t0 = time.monotonic()
            try:
                await self.send({"type": "http.response.body", "body": chunk, "more_body": True})
            except Exception as exc:
                ended = "raised"
                error = _describe(exc)
                break
            took = time.monotonic() - t0
            slowest = max(slowest, took)
            if took >= slow_s and first_slow is None:
                first_slow = sent
            sent += len(chunk)
            if sent >= next_mark:
                journal.write(self.stream, {"kind": "progress", "sent": sent, "slowest": slowest})
                next_mark += 1024 * 1024
        journal.write(
            self.stream,
            {
                "kind": "stream-end",
                "ended": ended,
                "error": error,
                "sent": sent,
                "elapsed": time.monotonic() - began,
                "slowest": slowest,
                "first_slow_at": first_slow,
            },
        )
        if error is None:
            try:
                await self.send({"type": "http.response.body", "body": b""})
            except Exception as exc:
                self.errors.append({"step": "stream-final", **_describe(exc)})

    async def run(self, steps: list[Any]) -> str:
        for index, step in enumerate(steps[:MAX_STEPS]):
            if not isinstance(step, dict):
                return f"bad step {index}"
            op = step.get("op")
            if op == "gate":
                name = f"resp-{self.token}-{step.get('name')}"
                # The harness may time what the server does from here (what the app sent is out).
                journal.write(self.stream, {"kind": "at-gate", "name": step.get("name")})
                opened = await journal.wait_gate(name, min(float(step.get("limit", 10.0)), MAX_LIMIT_S))
                self.probes[f"gate:{step.get('name')}"] = opened
                continue
            try:
                if op == "send":
                    event = dict(step.get("event") or {})
                    if "headers_as" in step and "headers" in event:
                        event["headers"] = _headers(event["headers"], str(step["headers_as"]))
                    if "body_as" in step and "body" in event:
                        event["body"] = _body(event["body"], str(step["body_as"]))
                    probe = step.get("probe")
                    if probe is None:
                        await self.send(event)
                    else:
                        try:
                            await self.send(event)
                        except Exception as exc:
                            self.probes[str(probe)] = _describe(exc)
                        else:
                            self.probes[str(probe)] = {"raised": None}
                elif op == "report":
                    await self.report(start=True)
                elif op == "report_body":
                    await self.report(start=False)
                elif op == "journal":
                    journal.write(self.stream, {"kind": "probes", "probes": self.probes})
                elif op == "stream":
                    await self.stream_body(step)
                else:
                    return f"unknown op at step {index}"
            except Exception as exc:
                self.errors.append({"step": index, **_describe(exc)})
                return f"error at step {index}"
        return "complete"


@route("resp-script")
async def script(scope: Scope, receive: Receive, send: Send) -> None:
    """Run the script in the query (``s=``) or the request body; see the module docstring."""
    if scope.get("type") != "http":
        return
    parts = str(scope.get("path", "")).split("/")
    token = parts[3] if len(parts) > 3 and parts[3] else "none"
    query = parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1"))
    if "s" in query:
        raw = base64.urlsafe_b64decode(query["s"][0].encode("ascii"))
        await _read_all(receive)
    else:
        raw = await _read_all(receive)
    try:
        program = loads(raw)
        steps = list(program["steps"])
    except (ValueError, KeyError, TypeError) as exc:
        journal.write(f"resp-{token}", {"kind": "done", "reached": f"bad script: {exc}", "probes": {}, "errors": []})
        await send({"type": "http.response.start", "status": 400, "headers": [(b"content-length", b"10")]})
        await send({"type": "http.response.body", "body": b"bad script"})
        return
    run = _Run(token, send)
    reached = await run.run(steps)
    journal.write(run.stream, {"kind": "done", "reached": reached, "probes": run.probes, "errors": run.errors})
