"""Deadlines, all scaled by one knob (``--conformance-timeout-scale``).

A case waits for an event with one of these deadlines; it never sleeps a fixed time
to learn what happened. The values are generous so a busy CI machine still meets
them; a conformant target answers long before any is reached. ``hold`` is the one
exception: how long a case waits to see that something does *not* happen (a
response before lifespan startup completes, say), listed per case that uses it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

__all__ = ["Deadline", "Timeouts"]


@dataclass(frozen=True)
class Timeouts:
    scale: float = 1.0
    startup_s: float = 20.0
    stop_grace_s: float = 5.0
    request_s: float = 5.0
    event_s: float = 5.0
    hold_s: float = 0.3

    @property
    def startup(self) -> float:
        return self.startup_s * self.scale

    @property
    def stop_grace(self) -> float:
        return self.stop_grace_s * self.scale

    @property
    def request(self) -> float:
        return self.request_s * self.scale

    @property
    def event(self) -> float:
        return self.event_s * self.scale

    @property
    def hold(self) -> float:
        return self.hold_s * self.scale


class Deadline:
    """A point in monotonic time; ``remaining`` never goes below zero."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.at
