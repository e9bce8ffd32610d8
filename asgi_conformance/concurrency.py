"""Cases side by side: the bodies of independent cases run ahead of pytest's loop, in threads.

A case spends its time waiting on the target (a hold to see that something does not happen,
a server's own timeout), not computing, so one case at a time leaves the machine idle: the
catalogue against one target was a minute of mostly sleeping sockets. pytest's loop stays
serial and reports every cell in collection order; ``RunAhead`` runs the cells' bodies in a
bounded pool of threads before pytest gets to them, and pytest's phases then replay what
happened there (the exception of each phase, the cell, the time each phase took).

What may run ahead, and when it starts, is the plugin's decision (it knows what a case
needs); this module only schedules: ``submit`` a batch, ``take`` one item's ``Outcome``
(waiting for it), ``drain`` a group before its server stops, ``close`` at the end.

Inside one case, ``side_by_side`` runs independent probes at once (each on a connection of its
own), so a case of six malformed variants that each wait out a hold takes one hold, not six.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextvars
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .verdicts import Cell, activate, current_cell

__all__ = ["MAX_SIDE_BY_SIDE", "Outcome", "RunAhead", "side_by_side"]

Item = TypeVar("Item")
T = TypeVar("T")
MAX_SIDE_BY_SIDE = 16
"""At most this many probes of one case run at once."""


@dataclass
class Outcome:
    """What running one case's phases in a thread gave: what pytest replays."""

    cell: Cell = field(default_factory=Cell)
    errors: dict[str, BaseException] = field(default_factory=dict)
    """Phase ("setup", "call", "teardown") -> the exception it raised; absent: it passed."""
    durations: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time one phase and keep what it raised (anything: the replay re-raises it)."""
        began = time.perf_counter()
        try:
            yield
        except BaseException as exc:  # a skip, a failed check, an error: all are outcomes
            self.errors.setdefault(name, exc)
        finally:
            self.durations[name] = self.durations.get(name, 0.0) + time.perf_counter() - began


class _Slots:
    """``count`` slots handed out in the order asked for; a slot held past ``overtime``
    seconds is given back while its holder goes on.

    A case still running after a second is, by then, waiting for something (an answer the
    target never gives, its deadline) rather than working: it no longer counts against the
    cases that may run at once, and the next one starts. The number of threads bounds how
    many run in all."""

    def __init__(self, count: int, overtime: float | None) -> None:
        self._condition = threading.Condition()
        self._free = count
        self._overtime = overtime
        self._deadlines: dict[int, float] = {}
        """Ticket of a held slot -> when it is given back if still held."""
        self._line: collections.deque[int] = collections.deque()
        self._tickets = itertools.count()

    def acquire(self) -> int:
        """Wait for a slot (first asked, first served); the ticket to ``release`` it with."""
        with self._condition:
            ticket = next(self._tickets)
            self._line.append(ticket)
            while self._line[0] != ticket or self._count_free() == 0:
                self._condition.wait(self._until_next_overtime())
            self._line.popleft()
            self._free -= 1
            overtime = self._overtime if self._overtime is not None else float("inf")
            self._deadlines[ticket] = time.monotonic() + overtime
            self._condition.notify_all()  # the next in line may find a slot too
            return ticket

    def release(self, ticket: int) -> None:
        """Give the slot back (a no-op once its overtime gave it back)."""
        with self._condition:
            if self._deadlines.pop(ticket, None) is not None:
                self._free += 1
            self._condition.notify_all()

    def _count_free(self) -> int:
        now = time.monotonic()
        for ticket, deadline in list(self._deadlines.items()):
            if deadline <= now:
                del self._deadlines[ticket]
                self._free += 1
        return self._free

    def _until_next_overtime(self) -> float | None:
        finite = [d for d in self._deadlines.values() if d != float("inf")]
        return max(0.0, min(finite) - time.monotonic()) if finite else None


class RunAhead(Generic[Item]):
    """A pool of ``workers`` threads running ``run(item)`` for submitted items, per group.

    A group is what shares a server (a target): ``drain(group)`` cancels what has not
    started and waits for what has, so the server is stopped only once no case uses it.
    Items that share a chain (``submit``'s ``chain``) run one after another in one thread, in
    the order given: cases that observe one dedicated process in turn.

    With ``waiting`` threads, the units ``submit``'s ``waits`` picks (cases that wait out a
    server's own timeout, most of their time asleep) and the tasks given to ``call`` run in a
    lane of their own: they do not hold back the ``workers`` that run the other cases, and
    those can stay few. On a busy machine, many cases at once each wait long for a core, and
    a wait for an event that was met at low concurrency can run out.

    With ``overtime`` seconds, a case that runs longer than that stops counting against the
    ``workers`` (it is waiting for a deadline, not working), and one more starts beside it, up
    to ``overtime_threads`` beyond the ``workers``: a target that leaves many cases to their
    deadlines has them wait together, not in waves of ``workers``.
    """

    def __init__(
        self,
        workers: int,
        run: Callable[[Item], Outcome],
        waiting: int = 0,
        overtime: float | None = None,
        overtime_threads: int = 0,
    ) -> None:
        if workers < 2:
            raise ValueError("running ahead needs at least 2 workers")
        if waiting < 0 or overtime_threads < 0:
            raise ValueError("waiting and overtime threads cannot be negative")
        if overtime is not None and overtime <= 0:
            raise ValueError("overtime must be positive")
        self.workers = workers
        self.waiting = waiting
        self._run = run
        self._overtime_threads = overtime_threads if overtime is not None else 0
        self._slots = _Slots(workers, overtime)
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._waiting_pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._futures: dict[int, tuple[str, concurrent.futures.Future[Outcome]]] = {}
        self._tasks: dict[str, list[concurrent.futures.Future[object]]] = {}
        self._started: set[str] = set()
        self._lock = threading.Lock()

    def started(self, group: str) -> bool:
        return group in self._started

    def submit(
        self,
        group: str,
        items: Iterable[Item],
        chain: Callable[[Item], str | None] | None = None,
        waits: Callable[[Item], bool] | None = None,
    ) -> int:
        """Run ``items`` (in this order) as threads come free; a group is submitted once.

        Items for which ``chain`` gives the same name form one unit, placed where its first
        item is, and run in order in one thread. A unit whose first item ``waits`` picks runs
        in the waiting lane (when there is one)."""
        with self._lock:
            if group in self._started:
                return 0
            self._started.add(group)
            pool = self._ensure_pool()
            units: list[list[tuple[Item, concurrent.futures.Future[Outcome]]]] = []
            chains: dict[str, list[tuple[Item, concurrent.futures.Future[Outcome]]]] = {}
            for item in items:
                future: concurrent.futures.Future[Outcome] = concurrent.futures.Future()
                self._futures[id(item)] = (group, future)
                name = chain(item) if chain is not None else None
                if name is None:
                    units.append([(item, future)])
                elif name in chains:
                    chains[name].append((item, future))
                else:
                    chains[name] = [(item, future)]
                    units.append(chains[name])
            for unit in units:
                waiting = waits is not None and self.waiting > 0 and waits(unit[0][0])
                if waiting:
                    self._ensure_waiting_pool().submit(self._run_unit, unit, None)
                else:
                    pool.submit(self._run_unit, unit, self._slots)
            return sum(len(unit) for unit in units)

    def call(self, group: str, task: Callable[[], object]) -> None:
        """Run ``task`` in the pool (the waiting lane, when there is one), before what is
        submitted after it; ``drain(group)`` waits for it too. For work a group's cases will
        need (a dedicated server's run), not a case itself."""
        with self._lock:
            pool = self._ensure_waiting_pool() if self.waiting > 0 else self._ensure_pool()
            self._tasks.setdefault(group, []).append(pool.submit(task))

    def _ensure_pool(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                self.workers + self._overtime_threads, thread_name_prefix="asgi-conformance"
            )
        return self._pool

    def _ensure_waiting_pool(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._waiting_pool is None:
            self._waiting_pool = concurrent.futures.ThreadPoolExecutor(
                self.waiting, thread_name_prefix="asgi-conformance-waiting"
            )
        return self._waiting_pool

    def _run_unit(self, unit: list[tuple[Item, concurrent.futures.Future[Outcome]]], slots: _Slots | None) -> None:
        for item, future in unit:
            ticket = slots.acquire() if slots is not None else None
            try:
                if not future.set_running_or_notify_cancel():
                    continue  # cancelled by drain or close: pytest's loop runs it, or the run ended
                try:
                    # Each case gets an empty context: the current cell (a context variable) is its own.
                    future.set_result(contextvars.Context().run(self._run, item))
                except BaseException as exc:
                    future.set_exception(exc)
            finally:
                if slots is not None and ticket is not None:
                    slots.release(ticket)

    def planned(self, item: Item) -> bool:
        """True when ``item`` was submitted: its phases run (or ran) in a thread."""
        return id(item) in self._futures

    def take(self, item: Item, timeout: float) -> Outcome:
        """The item's outcome, waiting up to ``timeout`` seconds for its thread to finish it."""
        _, future = self._futures.pop(id(item))
        try:
            return future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            outcome = Outcome()
            outcome.errors["setup"] = TimeoutError(
                f"the case ran ahead in a thread and had not finished after {timeout:.0f}s"
            )
            return outcome
        except concurrent.futures.CancelledError:
            outcome = Outcome()
            outcome.errors["setup"] = RuntimeError("the case was cancelled before it ran (the run is ending)")
            return outcome

    def drain(self, group: str, timeout: float) -> None:
        """Cancel the group's cases that have not started; wait (bounded) for those that have."""
        with self._lock:
            mine = [(key, f) for key, (g, f) in self._futures.items() if g == group]
            for key, future in mine:
                if future.cancel():
                    del self._futures[key]
            tasks = self._tasks.pop(group, [])
            for task in tasks:
                task.cancel()
        waiting: list[concurrent.futures.Future[Any]] = [f for _, f in mine]
        waiting.extend(tasks)
        concurrent.futures.wait(waiting, timeout=timeout)

    def close(self) -> None:
        """Cancel everything not started and wait for the cases in progress (each is bounded)."""
        with self._lock:
            pools = [p for p in (self._pool, self._waiting_pool) if p is not None]
            self._pool = self._waiting_pool = None
            for _, future in self._futures.values():
                future.cancel()
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)


def side_by_side(probes: Sequence[Callable[[], T]]) -> list[T]:
    """Run a case's independent probes at once; their results in the order given.

    Each probe runs with a cell of its own; their traces, notes and logs join the case's
    cell in the order given, so what a cell shows does not depend on which probe ended
    first. The first exception (in that order) is raised once every probe has ended.
    """
    parent = current_cell()
    cells = [Cell() for _ in probes]

    def run(index: int) -> T:
        activate(cells[index])
        return probes[index]()

    if not probes:
        return []
    with concurrent.futures.ThreadPoolExecutor(min(len(probes), MAX_SIDE_BY_SIDE)) as pool:
        futures = [pool.submit(contextvars.Context().run, run, i) for i in range(len(probes))]
        concurrent.futures.wait(futures)
    if parent is not None:
        for cell in cells:
            parent.trace.extend(cell.trace)
            parent.notes.extend(cell.notes)
            parent.logs.extend(cell.logs)
    return [f.result() for f in futures]
