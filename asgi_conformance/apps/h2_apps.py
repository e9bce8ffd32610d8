"""Scenario apps for suites/test_wire_h2.py (registered with routes.route). Standard library only.

Paths are ``/app/<name>/<token>[/<part>]``; the token names the journal stream and gates, so
records of different requests cannot be confused. Limits come in the query string (seconds,
chosen by the harness from its scaled deadlines) and are clamped here. They run on asyncio and
trio. The scenarios also use the echo app and ``req-log`` / ``req-digest`` / ``req-stream``
(apps/http_request.py).

``h2-gated``    ``/<token>/<i>``: journals ``start`` (with ``id(scope)``) to ``h2-<token>``, waits on
                gate ``h2-<token>-<i>``, reads the body, answers JSON naming the path and scope it saw.
``h2-headers``  ``/<token>/<mode>``: answers 200 ``ok`` with response fields chosen by ``mode``:
                ``connection`` (connection-specific fields), ``upper`` (an upper-case name).
``h2-trailers`` ``/<token>/<mode>``: answers ``data`` (mode ``empty``: an empty body) with
                ``trailers: True``, then ``http.response.trailers`` (``x-checksum: c0ffee``),
                when the scope advertises the extension; else JSON ``{"advertised": false}``.
``h2-bytes``    ``?n=<bytes>``: answers ``n`` bytes of ``pattern()`` in 64 KiB chunks.
``h2-drip``     answers ``first`` (``more_body``), journals ``sent-first``, waits on gate
                ``h2-<token>``, then ``second``.
``h2-push``     ``/<token>/<mode>``: a response that pushes (see ``push_app``), reporting what each
                ``http.response.push`` did (``ok`` or the exception raised) in its JSON body and in
                the journal (``h2push-<token>``).
``h2-pushed``   the pushed path: journals what its scope says (method, path, headers,
                http_version) to ``h2push-<token>`` and answers ``pushed <name>``.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from . import journal
from .catalogue import read_body
from .http_request import receive_within
from .routes import Message, Receive, Scope, Send, route

__all__ = ["PUSHED", "pattern"]

GATE_LIMIT = 30.0
MAX_BYTES = 64 * 1024 * 1024
CHUNK = 64 * 1024
PUSHED = "/app/h2-pushed/"


def pattern(n: int) -> bytes:
    """The ``n`` bytes ``h2-bytes`` sends: a repeating 251-byte ramp (a prime, so chunks differ)."""
    ramp = bytes(range(251))
    return (ramp * (n // 251 + 1))[:n]


def _parts(scope: Scope) -> list[str]:
    """The path segments after ``/app/<name>/``: ``[token, part, ...]`` (padded)."""
    path = scope.get("path")
    parts = path.split("/")[3:] if isinstance(path, str) else []
    return [*parts, "", ""]


def _param(scope: Scope, name: str, default: float, limit: float) -> float:
    raw = scope.get("query_string", b"")
    query = parse_qs(raw.decode("latin-1")) if isinstance(raw, bytes) else {}
    try:
        return min(max(float(query[name][0]), 0.0), limit)
    except (KeyError, ValueError, IndexError):
        return default


async def _answer(send: Send, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode("ascii")),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _raised(exc: BaseException) -> str:
    return f"raised {type(exc).__module__}.{type(exc).__qualname__}"


@route("h2-gated")
async def gated(scope: Scope, receive: Receive, send: Send) -> None:
    token, part = _parts(scope)[:2]
    stream = f"h2-{token}"
    journal.write(stream, {"event": "start", "i": part, "scope_id": id(scope), "path": scope.get("path")})
    opened = await journal.wait_gate(f"{stream}-{part}", _param(scope, "limit", 10.0, GATE_LIMIT))
    await read_body(receive)
    body = json.dumps({"path": scope.get("path"), "i": part, "scope_id": id(scope), "gate": opened}).encode()
    await _answer(send, body)


@route("h2-headers")
async def headers_app(scope: Scope, receive: Receive, send: Send) -> None:
    mode = _parts(scope)[1]
    await read_body(receive)
    if mode == "connection":
        extra = [
            (b"connection", b"close"),
            (b"keep-alive", b"timeout=5"),
            (b"proxy-connection", b"keep-alive"),
            (b"transfer-encoding", b"chunked"),
            (b"upgrade", b"h2c"),
        ]
    elif mode == "upper":
        extra = [(b"X-Upper-Case", b"1")]
    else:
        extra = []
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-ok", b"1"), *extra]})
    await send({"type": "http.response.body", "body": b"ok"})


@route("h2-trailers")
async def trailers_app(scope: Scope, receive: Receive, send: Send) -> None:
    await read_body(receive)
    extensions = scope.get("extensions") or {}
    if not isinstance(extensions, dict) or "http.response.trailers" not in extensions:
        await _answer(send, b'{"advertised": false}')
        return
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")], "trailers": True}
    )
    await send({"type": "http.response.body", "body": b"" if _parts(scope)[1] == "empty" else b"data"})
    await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"c0ffee")], "more_trailers": False})


@route("h2-bytes")
async def bytes_app(scope: Scope, receive: Receive, send: Send) -> None:
    n = int(_param(scope, "n", 0, MAX_BYTES))
    await read_body(receive)
    data = pattern(n)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/octet-stream"), (b"content-length", str(n).encode())],
        }
    )
    for start in range(0, n, CHUNK):
        await send({"type": "http.response.body", "body": data[start : start + CHUNK], "more_body": True})
    await send({"type": "http.response.body", "body": b""})


@route("h2-drip")
async def drip(scope: Scope, receive: Receive, send: Send) -> None:
    token = _parts(scope)[0]
    stream = f"h2-{token}"
    await read_body(receive)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"first;", "more_body": True})
    journal.write(stream, {"event": "sent-first"})
    opened = await journal.wait_gate(stream, _param(scope, "limit", 10.0, GATE_LIMIT))
    await send({"type": "http.response.body", "body": b"second" if opened else b"gate-timeout"})


async def _push(send: Send, message: Message, results: dict[str, str], key: str) -> None:
    try:
        await send(message)
        results[key] = "ok"
    except Exception as exc:  # what send() does with the push is the observation
        results[key] = _raised(exc)


@route("h2-push")
async def push_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Modes: ``one`` pushes ``/app/h2-pushed/<token>/p1`` between start and the final body;
    ``window`` pushes ``before`` start, ``inside`` the window and ``after`` the final body;
    ``types`` sends invalid pushes (``bytes_path``, ``pseudo_header``, ``str_header``) and a
    valid one (``valid``). Each result is ``ok`` or ``raised <exception>``."""
    token, mode = _parts(scope)[:2]
    stream = f"h2push-{token}"
    await read_body(receive)
    extensions = scope.get("extensions") or {}
    advertised = isinstance(extensions, dict) and "http.response.push" in extensions
    results: dict[str, str] = {}

    def push(name: str, **fields: Any) -> Message:
        return {"type": "http.response.push", "path": f"{PUSHED}{token}/{name}", "headers": [], **fields}

    if advertised and mode == "window":
        await _push(send, push("before"), results, "before")
    start: Message = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
    try:
        await send(start)
    except Exception as exc:
        journal.write(stream, {"event": "start_raised", "error": _raised(exc)})
        raise
    if advertised:
        if mode in ("one", "window"):
            await _push(send, push("p1" if mode == "one" else "inside", headers=[(b"x-pushed", b"1")]), results, "p1")
        elif mode == "types":
            await _push(send, push("bytes", path=f"{PUSHED}{token}/bytes".encode()), results, "bytes_path")
            await _push(send, push("pseudo", headers=[(b":path", b"/other")]), results, "pseudo_header")
            await _push(send, push("strh", headers=[("x-str", "1")]), results, "str_header")
            await _push(send, push("valid"), results, "valid")
    body = json.dumps({"advertised": advertised, "results": results}).encode()
    await send({"type": "http.response.body", "body": body})
    if advertised and mode == "window":
        after: dict[str, str] = {}
        await _push(send, push("after"), after, "after")
        journal.write(stream, {"event": "after", "results": after})
    journal.write(stream, {"event": "done", "results": results})


@route("h2-pushed")
async def pushed_app(scope: Scope, receive: Receive, send: Send) -> None:
    token, name = _parts(scope)[:2]
    first = await receive_within(receive, 5.0) or {"type": None}
    record = {
        "event": "pushed",
        "name": name,
        "method": scope.get("method"),
        "path": scope.get("path"),
        "http_version": scope.get("http_version"),
        "headers": [list(pair) for pair in scope.get("headers") or []],
        "first_event": first.get("type"),
    }
    journal.write(f"h2push-{token}", record)
    await _answer(send, f"pushed {name}".encode())
