"""The harness side of the journal: wait for what the app recorded, open gates.

The scenario app appends typed-JSON lines to ``<dir>/<stream>.jsonl`` (see
asgi_conformance.apps.journal). A case waits for a matching record with a deadline;
the file is polled at a short, growing interval, bounded by that deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .apps.typedjson import loads
from .timing import Deadline

__all__ = ["Journal"]

Record = dict[str, Any]
MAX_JOURNAL_BYTES = 4 * 1024 * 1024


class Journal:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def records(self, stream: str) -> list[Record]:
        path = self.directory / f"{stream}.jsonl"
        try:
            with path.open("rb") as f:
                data = f.read(MAX_JOURNAL_BYTES)
        except FileNotFoundError:
            return []
        found: list[Record] = []
        for line in data.splitlines():
            try:
                value = loads(line)
            except ValueError:
                continue  # a line still being written, or garbage: not a record
            if isinstance(value, dict):
                found.append(value)
        return found

    def wait_for(
        self,
        stream: str,
        match: Callable[[Record], bool],
        timeout: float,
        *,
        give_up: Callable[[], bool] | None = None,
    ) -> Record | None:
        """The first record of ``stream`` that matches, waiting up to ``timeout`` seconds.

        ``give_up`` ends the wait early (after one last look) once it returns True, e.g.
        when the process that would write the record has exited.
        """
        deadline = Deadline(timeout)
        pause = 0.002
        while True:
            stop = give_up is not None and give_up()
            for record in self.records(stream):
                if match(record):
                    return record
            if stop or deadline.expired:
                return None
            time.sleep(min(pause, deadline.remaining()))  # poll interval, bounded by the deadline
            pause = min(pause * 2, 0.05)

    def open_gate(self, name: str) -> None:
        (self.directory / f"gate.{name}").touch()
