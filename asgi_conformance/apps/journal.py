"""The app side of the journal: what happened after the connection was gone.

The harness names a directory in ``ASGI_CONFORMANCE_JOURNAL``; apps append one JSON
line per record to ``<dir>/<stream>.jsonl`` with a single ``write`` on an
``O_APPEND`` descriptor, so records from several worker processes never interleave.
The harness waits for a record with a deadline (asgi_conformance.journal). Gates go
the other way: the harness creates ``<dir>/gate.<name>`` and an app waits for it.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

from . import aio
from .typedjson import dumps

__all__ = ["ENV", "directory", "gate_open", "wait_gate", "write"]

ENV = "ASGI_CONFORMANCE_JOURNAL"
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def directory() -> str | None:
    return os.environ.get(ENV) or None


def write(stream: str, record: dict[str, Any]) -> None:
    """Append ``record`` (plus pid and wall time) to the stream; no-op without a journal."""
    base = directory()
    if base is None or not _NAME.match(stream):
        return
    line = dumps({"pid": os.getpid(), "t": time.time(), **record}) + b"\n"
    fd = os.open(os.path.join(base, f"{stream}.jsonl"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def gate_open(name: str) -> bool:
    base = directory()
    return base is not None and _NAME.match(name) is not None and os.path.exists(os.path.join(base, f"gate.{name}"))


async def wait_gate(name: str, limit: float = 120.0) -> bool:
    """Wait until the harness opens the gate; give up after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while not gate_open(name):
        if time.monotonic() > deadline:
            return False
        await aio.sleep(0.005)
    return True
