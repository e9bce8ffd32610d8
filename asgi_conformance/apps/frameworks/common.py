"""What every framework app shares: the streaming producer, the file, the journal records.

Standard library only; the framework modules wrap these in their own API (a
``StreamingResponse`` over ``produce``, a ``FileResponse`` of ``file_path()``, ...).
Every loop is bounded and every wait has a limit.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
from collections.abc import AsyncIterator
from typing import Any

from .. import aio, journal

__all__ = [
    "BACKGROUND_LIMIT",
    "FILE_SIZE",
    "MAX_CHUNKS",
    "PACE",
    "CustomError",
    "background",
    "body_report",
    "chunk",
    "file_bytes",
    "file_path",
    "info",
    "lifespan_shutdown",
    "lifespan_startup",
    "produce",
]

PACE = 0.01
"""Seconds between two chunks of a stream."""
MAX_CHUNKS = 2000
"""A stream ends by itself after this many chunks (about 20 s): bounded even if nobody stops it."""
IDLE_AFTER = 3
IDLE_LIMIT = 15.0
"""With the gate ``idle-<token>`` open when the stream starts, it waits IDLE_LIMIT seconds
after IDLE_AFTER chunks (a long poll, an SSE stream between events)."""
BACKGROUND_LIMIT = 15.0
"""How long a background task waits for its gate."""
FILE_SIZE = 300_001
LIFESPAN_STREAM = "fw-lifespan"


class CustomError(Exception):
    """Raised by ``/custom/<token>``; each app registers a handler answering 418."""


def chunk(n: int) -> bytes:
    """Stream chunk ``n``: one line of 32 bytes."""
    return b"chunk %06d %s\n" % (n, b"." * 17)


async def produce(token: str) -> AsyncIterator[int]:
    """Numbers 0, 1, ... one every PACE seconds, until closed (or MAX_CHUNKS).

    With the gate ``idle-<token>`` open at the start, it pauses (IDLE_LIMIT seconds) after
    IDLE_AFTER numbers: the client then leaves while the generator is waiting, not sending.
    Journals to ``fw-<token>``: ``{"kind": "after", "n"}`` for each number produced once
    the harness has opened the gate ``left-<token>`` (the client has gone), and at the end
    ``{"kind": "end", "produced", "how": "closed"|"exhausted", "exception"}``.
    """
    stream = f"fw-{token}"
    gate = f"left-{token}"
    idle = journal.gate_open(f"idle-{token}")
    n = 0
    how = "exhausted"
    exception: str | None = None
    try:
        while n < MAX_CHUNKS:
            yield n
            n += 1
            if journal.gate_open(gate):
                journal.write(stream, {"kind": "after", "n": n})
            if idle and n == IDLE_AFTER:
                await aio.sleep(IDLE_LIMIT)  # a long poll: nothing to send for a while
            await aio.sleep(PACE)
    except BaseException as exc:  # GeneratorExit, CancelledError, trio.Cancelled: closed from outside
        how = "closed"
        exception = type(exc).__name__
        raise
    finally:
        journal.write(stream, {"kind": "end", "produced": n, "how": how, "exception": exception})


async def background(token: str) -> None:
    """A background task: waits for the gate ``bg-<token>`` (the harness opens it once it has
    the whole response), then journals ``{"kind": "background", "gate": opened?}``."""
    opened = await journal.wait_gate(f"bg-{token}", BACKGROUND_LIMIT)
    journal.write(f"fw-{token}", {"kind": "background", "gate": opened})


def body_report(data: bytes, parts: int) -> dict[str, Any]:
    return {"length": len(data), "sha256": hashlib.sha256(data).hexdigest(), "parts": parts}


def file_bytes() -> bytes:
    """The file served by ``/file/<token>``: FILE_SIZE bytes of a fixed pattern."""
    return bytes((i * 7 + 3) % 251 for i in range(FILE_SIZE))


_FILE: list[str] = []


def file_path() -> str:
    """The file's absolute path, written once per process (in its journal directory)."""
    if not _FILE:
        base = journal.directory() or tempfile.gettempdir()
        path = os.path.join(base, f"fw-file-{os.getpid()}-{secrets.token_hex(4)}.bin")
        with open(path, "wb") as f:
            f.write(file_bytes())
        _FILE.append(path)
    return _FILE[0]


def lifespan_startup(framework: str) -> str:
    """Called by a framework's startup handler: journals it; returns the state value to keep."""
    value = f"{framework}-{secrets.token_hex(6)}"
    journal.write(LIFESPAN_STREAM, {"kind": "startup", "framework": framework, "value": value, "loop": aio.library()})
    return value


def lifespan_shutdown(framework: str, value: object) -> None:
    """Called by a framework's shutdown handler with the state value it still sees."""
    journal.write(LIFESPAN_STREAM, {"kind": "shutdown", "framework": framework, "value": value})


def info(framework: str, version: str | None) -> dict[str, Any]:
    return {"framework": framework, "version": version, "library": aio.library()}
