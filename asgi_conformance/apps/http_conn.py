"""Scenario apps for suites/test_wire_h1_conn.py (registered with routes.route). Standard library only.

Paths are ``/app/<name>/<token>[/<part>]``; the token names the journal stream and
gate, so records of different requests cannot be confused.
"""

from __future__ import annotations

import json

from . import journal, routes
from .catalogue import read_body
from .routes import Receive, Scope, Send

__all__: list[str] = []

GATE_LIMIT = 30.0  # an app never holds longer than this, whatever the harness does


def _parts(scope: Scope) -> list[str]:
    """The path segments after ``/app/<name>/``: ``[token, part, ...]``."""
    path = scope.get("path")
    if not isinstance(path, str):
        return ["", ""]
    parts = path.split("/")[3:]
    return [*parts, "", ""]


async def _plain(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain"),
                (b"content-length", str(len(body)).encode("ascii")),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


@routes.route("conn-pipe")
async def pipe(scope: Scope, receive: Receive, send: Send) -> None:
    """``/app/conn-pipe/<token>/<n>``: notes its start; request "1" waits on gate ``conn-pipe-<token>``.

    The body is ``<n>`` as the app saw it in the path, so the client can tell which
    request each response answers.
    """
    token, part = _parts(scope)[:2]
    stream = f"conn-pipe-{token}"
    journal.write(stream, {"event": "start", "n": part})
    if part == "1":
        opened = await journal.wait_gate(stream, GATE_LIMIT)
        journal.write(stream, {"event": "gate", "n": part, "opened": opened})
    await read_body(receive)
    await _plain(send, 200, part.encode("ascii", "replace"))


@routes.route("conn-mark")
async def mark(scope: Scope, receive: Receive, send: Send) -> None:
    """``/app/conn-mark/<token>``: records that the request reached the app, then answers 200."""
    token = _parts(scope)[0]
    journal.write(f"conn-mark-{token}", {"event": "called"})
    await read_body(receive)
    await _plain(send, 200, b"marked")


@routes.route("conn-close")
async def close(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers 200 with ``connection: close`` set by the app."""
    await read_body(receive)
    await _plain(send, 200, b"closing", [(b"connection", b"close")])


@routes.route("conn-expect")
async def expect(scope: Scope, receive: Receive, send: Send) -> None:
    """``/app/conn-expect/<token>/<mode>``: ``now`` reads the body at once; ``gate`` first
    records ``holding`` and waits on gate ``conn-expect-<token>``. Answers with the body
    length and the Expect header it saw."""
    token, mode = _parts(scope)[:2]
    stream = f"conn-expect-{token}"
    if mode == "gate":
        journal.write(stream, {"event": "holding"})
        await journal.wait_gate(stream, GATE_LIMIT)
    journal.write(stream, {"event": "receive"})
    _, _, length = await read_body(receive)
    seen = [bytes(v).decode("latin-1") for k, v in scope.get("headers") or () if bytes(k).lower() == b"expect"]
    await _plain(send, 200, json.dumps({"body_length": length, "expect": seen}).encode())


@routes.route("conn-hints")
async def hints(scope: Scope, receive: Receive, send: Send) -> None:
    """Sends an early hint (103) when the server offers ``http.response.early_hint``, then 200."""
    extensions = scope.get("extensions")
    offered = isinstance(extensions, dict) and "http.response.early_hint" in extensions
    error = None
    if offered:
        try:
            await send({"type": "http.response.early_hint", "links": [b"</style.css>; rel=preload; as=style"]})
        except Exception as exc:  # the server refused it: reported, not fatal
            error = f"{type(exc).__name__}: {exc}"
    await read_body(receive)
    await _plain(send, 200, json.dumps({"hint_offered": offered, "hint_error": error}).encode())


@routes.route("conn-idle")
async def idle(scope: Scope, receive: Receive, send: Send) -> None:
    """``/app/conn-idle/<token>/<n>``: answers 200 with ``<n>``."""
    part = _parts(scope)[1]
    await read_body(receive)
    await _plain(send, 200, part.encode("ascii", "replace"))
