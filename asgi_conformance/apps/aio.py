"""The few async primitives scenario apps need, for asyncio and trio alike.

hypercorn's trio worker runs the app under trio, every other target under an
asyncio loop (uvloop, rloop, ...). Apps call these instead of asyncio directly.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

__all__ = ["library", "loop_identity", "sleep"]


def library() -> str:
    """Name of the async library running the current task."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return "trio" if "trio" in sys.modules else "unknown"
    return "asyncio"


async def sleep(seconds: float) -> None:
    if library() == "trio":
        trio: Any = sys.modules["trio"]
        await trio.sleep(seconds)
    else:
        await asyncio.sleep(seconds)


def loop_identity() -> str:
    """A string equal for two tasks exactly when they run on the same event loop."""
    if library() == "trio":
        trio: Any = sys.modules["trio"]
        return f"trio:{id(trio.lowlevel.current_trio_token())}"
    loop = asyncio.get_running_loop()
    return f"{type(loop).__module__}.{type(loop).__qualname__}:{id(loop)}"
