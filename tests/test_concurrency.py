"""Cases side by side (asgi_conformance.concurrency): the scheduling on its own, with events.

The plugin's use of it (cells identical one at a time and side by side, ``alone`` cases
last, chaos targets) is in test_plugin.py and test_chaos.py.
"""

from __future__ import annotations

import functools
import threading

import pytest

from asgi_conformance.concurrency import MAX_SIDE_BY_SIDE, Outcome, RunAhead, side_by_side
from asgi_conformance.verdicts import Cell, activate, current_cell, deactivate, note

WAIT = 10.0
"""Every wait on an event here is bounded by this; each is set long before in a passing run."""


def test_outcome_keeps_each_phase_exception_and_time() -> None:
    outcome = Outcome()
    with outcome.phase("setup"):
        pass
    with outcome.phase("call"):
        pytest.skip("not offered")
    with outcome.phase("teardown"):
        raise RuntimeError("boom")
    assert set(outcome.durations) == {"setup", "call", "teardown"}
    assert "setup" not in outcome.errors
    assert isinstance(outcome.errors["call"], pytest.skip.Exception)
    assert str(outcome.errors["teardown"]) == "boom"
    assert set(outcome.errors) == {"call", "teardown"}


def test_items_run_side_by_side_and_each_gets_its_own_cell() -> None:
    """Four items that each wait for all four to have started: they can only finish if they run
    at once. Each sees its own current cell, never another's."""
    started = threading.Barrier(4, timeout=WAIT)

    def run(item: str) -> Outcome:
        outcome = Outcome()
        activate(outcome.cell)
        with outcome.phase("call"):
            started.wait()
            note(f"ran {item}")
            assert current_cell() is outcome.cell
        return outcome

    ahead: RunAhead[str] = RunAhead(4, run)
    items = ["a", "b", "c", "d"]
    assert ahead.submit("target", items) == 4
    assert ahead.submit("target", items) == 0  # a group is submitted once
    assert all(ahead.planned(i) for i in items)
    for item in items:
        outcome = ahead.take(item, WAIT)
        assert outcome.errors == {}
        assert outcome.cell.notes == [f"ran {item}"]
    ahead.close()


def test_drain_cancels_what_has_not_started_and_waits_for_what_has() -> None:
    both_running = threading.Barrier(3, timeout=WAIT)  # the two workers and this test
    release = threading.Event()
    ran: list[str] = []

    def run(item: str) -> Outcome:
        both_running.wait()
        assert release.wait(WAIT)
        ran.append(item)
        return Outcome()

    ahead: RunAhead[str] = RunAhead(2, run)
    # Two workers: "first" and "second" start, the rest wait in the queue.
    ahead.submit("target", ["first", "second", "third", "fourth"])
    both_running.wait()
    timer = threading.Timer(0.05, release.set)  # lets the running ones end while drain waits
    timer.start()
    ahead.drain("target", WAIT)
    timer.join(WAIT)
    assert sorted(ran) == ["first", "second"]  # drain returned only once both had ended
    assert not ahead.planned("third")
    assert not ahead.planned("fourth")  # cancelled: pytest's loop runs them the ordinary way
    ahead.close()


def test_take_is_bounded() -> None:
    release = threading.Event()

    def run(item: str) -> Outcome:
        release.wait(WAIT)
        return Outcome()

    ahead: RunAhead[str] = RunAhead(2, run)
    ahead.submit("target", ["stuck"])
    outcome = ahead.take("stuck", 0.01)
    assert isinstance(outcome.errors["setup"], TimeoutError)
    release.set()
    ahead.close()


def test_one_worker_is_not_running_ahead() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        RunAhead(1, lambda item: Outcome())


def test_side_by_side_overlaps_and_keeps_order() -> None:
    """The probes must be running at once (a barrier of all of them), the results come back in
    the order given, and what each noted joins the case's cell in that order too."""
    count = 5
    together = threading.Barrier(count, timeout=WAIT)

    def probe(n: int) -> int:
        together.wait()
        note(f"probe {n}")
        return n * n

    cell = Cell()
    token = activate(cell)
    try:
        got = side_by_side([functools.partial(probe, n) for n in reversed(range(count))])
    finally:
        deactivate(token)
    assert got == [n * n for n in reversed(range(count))]
    assert cell.notes == [f"probe {n}" for n in reversed(range(count))]


def test_side_by_side_raises_the_first_failure_in_order_after_all_ended() -> None:
    ended: list[int] = []

    def probe(n: int) -> int:
        ended.append(n)
        if n in (1, 2):
            raise ValueError(f"probe {n}")
        return n

    with pytest.raises(ValueError, match="probe 1"):
        side_by_side([functools.partial(probe, n) for n in range(4)])
    assert sorted(ended) == [0, 1, 2, 3]
    assert side_by_side([]) == []
    assert MAX_SIDE_BY_SIDE >= 2


def test_a_chain_runs_in_order_in_one_thread_beside_the_rest() -> None:
    """c1, c2, c3 share a chain: one thread, in order, never two at once. "solo" runs beside
    them: c1 waits until "solo" has started, which only happens if they run side by side."""
    solo_started = threading.Event()
    seen: list[tuple[str, str]] = []

    def run(item: str) -> Outcome:
        if item == "solo":
            solo_started.set()
        elif item == "c1":
            assert solo_started.wait(WAIT)
        seen.append((item, threading.current_thread().name))
        return Outcome()

    ahead: RunAhead[str] = RunAhead(2, run)
    items = ["c1", "solo", "c2", "c3"]
    assert ahead.submit("target", items, chain=lambda i: "chain" if i.startswith("c") else None) == 4
    for item in items:
        assert ahead.take(item, WAIT).errors == {}
    chained = [(i, t) for i, t in seen if i.startswith("c")]
    assert [i for i, _ in chained] == ["c1", "c2", "c3"]
    assert len({t for _, t in chained}) == 1
    ahead.close()


def test_a_task_runs_in_the_pool_and_drain_waits_for_it() -> None:
    started = threading.Event()
    release = threading.Event()
    done: list[str] = []

    def task() -> None:
        started.set()
        assert release.wait(WAIT)
        done.append("task")

    ahead: RunAhead[str] = RunAhead(2, lambda item: Outcome())
    ahead.call("target", task)
    assert started.wait(WAIT)
    timer = threading.Timer(0.05, release.set)
    timer.start()
    ahead.drain("target", WAIT)  # returns only once the task has ended
    timer.join(WAIT)
    assert done == ["task"]
    ahead.close()


def test_waiting_cases_and_tasks_have_a_lane_of_their_own() -> None:
    """Two workers, both held by ordinary items until a waiting item and a task have run: that
    only happens if those run in the waiting lane, beside the workers."""
    lane_ran = threading.Barrier(4, timeout=WAIT)  # o1, o2, the waiting item, the task
    threads: dict[str, str] = {}

    def run(item: str) -> Outcome:
        threads[item] = threading.current_thread().name
        lane_ran.wait()
        return Outcome()

    ahead: RunAhead[str] = RunAhead(2, run, waiting=2)
    ahead.call("target", lambda: (threads.setdefault("task", threading.current_thread().name), lane_ran.wait()))
    items = ["o1", "o2", "w"]
    assert ahead.submit("target", items, waits=lambda i: i == "w") == 3
    for item in items:
        assert ahead.take(item, WAIT).errors == {}
    ahead.drain("target", WAIT)
    assert "waiting" in threads["w"]
    assert "waiting" in threads["task"]
    assert "waiting" not in threads["o1"]
    assert "waiting" not in threads["o2"]
    ahead.close()


def test_without_a_waiting_lane_every_item_shares_the_workers() -> None:
    threads: list[str] = []

    def run(item: str) -> Outcome:
        threads.append(threading.current_thread().name)
        return Outcome()

    ahead: RunAhead[str] = RunAhead(2, run)
    assert ahead.submit("target", ["a", "w"], waits=lambda i: i == "w") == 2
    for item in ("a", "w"):
        assert ahead.take(item, WAIT).errors == {}
    assert not any("waiting" in name for name in threads)
    with pytest.raises(ValueError, match="negative"):
        RunAhead(2, run, waiting=-1)
    ahead.close()


def test_a_case_in_overtime_lets_one_more_start_up_to_the_overtime_threads() -> None:
    """Two workers and one overtime thread: every item holds on until three run at once, which
    only happens once the first two are past their overtime; a fourth never joins them (three
    threads in all), so the peak is exactly three."""
    lock = threading.Lock()
    three_running = threading.Event()
    counts = {"running": 0, "peak": 0}

    def run(item: str) -> Outcome:
        with lock:
            counts["running"] += 1
            counts["peak"] = max(counts["peak"], counts["running"])
            if counts["running"] == 3:
                three_running.set()
        assert three_running.wait(WAIT)
        with lock:
            counts["running"] -= 1
        return Outcome()

    ahead: RunAhead[str] = RunAhead(2, run, overtime=0.01, overtime_threads=1)
    items = ["a", "b", "c", "d"]
    ahead.submit("target", items)
    for item in items:
        assert ahead.take(item, WAIT).errors == {}
    assert counts["peak"] == 3
    ahead.close()


def test_overtime_is_checked() -> None:
    with pytest.raises(ValueError, match="positive"):
        RunAhead(2, lambda item: Outcome(), overtime=0)
    with pytest.raises(ValueError, match="negative"):
        RunAhead(2, lambda item: Outcome(), overtime=1.0, overtime_threads=-1)
