"""Scenario apps for suites/test_extensions.py (registered with routes.route). Standard library only.

``ext-script`` runs a script the test sends in the query (``s=``: typed JSON, base64url), so
the same request works for GET, HEAD, HTTP/1.0, HTTP/1.1 and HTTP/2. Path:
``/app/ext-script/<token>?s=...``; the token names the journal stream ``ext-<token>`` and
prefixes the gates ``ext-<token>-<name>``. Files the script makes live in a temporary
directory of their own inside the server, hold deterministic content (``content(seed, size)``,
which the harness computes too) and are removed when the script ends.

Steps:

``{"op": "file", "name": str, "size": int, "seed": int}``
    write ``content(seed, size)`` to a new file ``name`` in the script's directory.
``{"op": "open", "name": str, "as": str, "seek": int}``
    open file ``name`` for reading (binary) as handle ``as``, at position ``seek``.
``{"op": "send", "event": {...}, "probe": str?}``
    ``send(event)`` after placeholders in the event are replaced: ``{"@path": name}`` the
    file's absolute path, ``{"@relpath": name}`` its path relative to the working directory,
    ``{"@missing": name}`` an absolute path that does not exist, ``{"@file": handle}`` the
    open file object, ``{"@bytesio": bytes}`` an ``io.BytesIO``. With ``probe`` an exception
    is caught and noted under that name and the script goes on; without it, an exception is
    journalled and ends the script.
``{"op": "fdstat", "as": handle, "probe": str}``
    note whether the handle's OS descriptor is still open (``os.fstat``) and ``closed``.
``{"op": "gate", "name": str, "limit": float}``
    wait (bounded) until the harness opens the gate.
``{"op": "report"}`` / ``{"op": "report_body"}``
    a 200 response with the probes as typed JSON (Content-Length) / a final body holding them.

A script that made files and sent the end of its response waits (bounded) for the gate
``ext-<token>-cleanup`` before it removes them: ``send()`` may return before the server has read a file. Every run ends
with a ``done`` journal record (probes, errors, the step reached, the
extensions the scope listed and its ``http_version``), after the files are closed and removed.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import random
import shutil
import tempfile
from typing import Any
from urllib.parse import parse_qs

from . import journal
from .routes import Receive, Scope, Send, route
from .typedjson import dumps, loads

__all__ = ["MAX_FILE", "content"]

MAX_FILE = 16 * 1024 * 1024
MAX_STEPS = 200
MAX_LIMIT_S = 60.0
MAX_BODY_EVENTS = 10_000
CLEANUP_LIMIT = 30.0


def content(seed: int, size: int) -> bytes:
    """The deterministic content of a scenario file (the harness computes the same bytes)."""
    return random.Random(seed).randbytes(size) if size > 0 else b""


def _describe(exc: BaseException) -> dict[str, Any]:
    return {"raised": type(exc).__name__, "message": str(exc)[:200]}


async def _drain(receive: Receive) -> None:
    for _ in range(MAX_BODY_EVENTS):
        message = await receive()
        if message.get("type") != "http.request" or not message.get("more_body", False):
            return


class _Run:
    def __init__(self, token: str, send: Send) -> None:
        self.token = token
        self.send = send
        self.stream = f"ext-{token}"
        self.directory: str | None = None
        self.files: dict[str, str] = {}
        self.handles: dict[str, Any] = {}
        self.probes: dict[str, Any] = {}
        self.errors: list[dict[str, Any]] = []
        self.trailers = False
        self.ended = False
        """The app sent what ends its response (and send() returned): files may still be read."""

    async def deliver(self, event: dict[str, Any]) -> None:
        await self.send(event)
        kind = event.get("type")
        if kind == "http.response.start":
            self.trailers = bool(event.get("trailers", False))
        elif kind in ("http.response.body", "http.response.zerocopysend") and not event.get("more_body", False):
            self.ended = self.ended or not self.trailers
        elif kind == "http.response.pathsend" or (
            kind == "http.response.trailers" and not event.get("more_trailers", False)
        ):
            self.ended = True

    def path(self, name: str) -> str:
        if name not in self.files:
            raise KeyError(f"no file {name!r}")
        return self.files[name]

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.resolve(v) for v in value)
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            key, arg = next(iter(value.items()))
            if key == "@path":
                return self.path(str(arg))
            if key == "@relpath":
                return os.path.relpath(self.path(str(arg)), os.getcwd())
            if key == "@missing":
                return os.path.join(self.directory or tempfile.gettempdir(), f"missing-{self.token}-{arg}")
            if key == "@file":
                return self.handles[str(arg)]
            if key == "@bytesio":
                return io.BytesIO(bytes(arg))
        return {k: self.resolve(v) for k, v in value.items()}

    def make_file(self, step: dict[str, Any]) -> None:
        if self.directory is None:
            self.directory = tempfile.mkdtemp(prefix="ac-ext-")
        name = str(step.get("name"))
        size = max(0, min(int(step.get("size", 0)), MAX_FILE))
        path = os.path.join(self.directory, f"{name}.bin")
        with open(path, "wb") as f:
            f.write(content(int(step.get("seed", 0)), size))
        self.files[name] = path

    def open_file(self, step: dict[str, Any]) -> None:
        handle = open(self.path(str(step.get("name"))), "rb")  # noqa: SIM115 (closed in cleanup)
        handle.seek(int(step.get("seek", 0)))
        self.handles[str(step.get("as"))] = handle

    def fdstat(self, step: dict[str, Any]) -> None:
        handle = self.handles.get(str(step.get("as")))
        found: dict[str, Any] = {"closed_attr": getattr(handle, "closed", None)}
        try:
            if handle is None:
                raise ValueError("no such handle")
            os.fstat(handle.fileno())
            found["fd_open"] = True
        except (OSError, ValueError) as exc:
            found["fd_open"] = False
            found["error"] = type(exc).__name__
        self.probes[str(step.get("probe", "fdstat"))] = found

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

    async def run(self, steps: list[Any]) -> str:
        for index, step in enumerate(steps[:MAX_STEPS]):
            if not isinstance(step, dict):
                return f"bad step {index}"
            op = step.get("op")
            if op == "gate":
                name = f"ext-{self.token}-{step.get('name')}"
                opened = await journal.wait_gate(name, min(float(step.get("limit", 10.0)), MAX_LIMIT_S))
                self.probes[f"gate:{step.get('name')}"] = opened
                continue
            try:
                if op == "file":
                    self.make_file(step)
                elif op == "open":
                    self.open_file(step)
                elif op == "fdstat":
                    self.fdstat(step)
                elif op == "send":
                    event = self.resolve(dict(step.get("event") or {}))
                    probe = step.get("probe")
                    if probe is None:
                        await self.deliver(event)
                    else:
                        try:
                            await self.deliver(event)
                        except Exception as exc:
                            self.probes[str(probe)] = _describe(exc)
                        else:
                            self.probes[str(probe)] = {"raised": None}
                elif op == "report":
                    await self.report(start=True)
                elif op == "report_body":
                    await self.report(start=False)
                else:
                    return f"unknown op at step {index}"
            except Exception as exc:
                self.errors.append({"step": index, **_describe(exc)})
                return f"error at step {index}"
        return "complete"

    def cleanup(self) -> None:
        for handle in self.handles.values():
            with contextlib.suppress(OSError):
                handle.close()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)


def _advertised(scope: Scope) -> list[str]:
    extensions = scope.get("extensions")
    if not isinstance(extensions, dict):
        return []
    return sorted(str(k) for k in extensions if not str(k).startswith("ac."))


@route("ext-script")
async def script(scope: Scope, receive: Receive, send: Send) -> None:
    """Run the script in the query (``s=``); see the module docstring."""
    if scope.get("type") != "http":
        return
    parts = str(scope.get("path", "")).split("/")
    token = parts[3] if len(parts) > 3 and parts[3] else "none"
    await _drain(receive)
    run = _Run(token, send)
    try:
        query = parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1"))
        steps = list(loads(base64.urlsafe_b64decode(query["s"][0].encode("ascii")))["steps"])
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        journal.write(run.stream, {"kind": "done", "reached": f"bad script: {exc}", "probes": {}, "errors": []})
        await send({"type": "http.response.start", "status": 400, "headers": [(b"content-length", b"10")]})
        await send({"type": "http.response.body", "body": b"bad script"})
        return
    reached = "cancelled"
    try:
        reached = await run.run(steps)
        if run.directory is not None and run.ended:
            # send() may return before the server has read the file (pathsend): keep the
            # files until the harness has read the response.
            await journal.wait_gate(f"ext-{token}-cleanup", CLEANUP_LIMIT)
    finally:
        run.cleanup()
        journal.write(
            run.stream,
            {
                "kind": "done",
                "reached": reached,
                "probes": run.probes,
                "errors": run.errors,
                "extensions": _advertised(scope),
                "http_version": scope.get("http_version"),
            },
        )
