"""The one job queue (desktop_app.session.jobs) without Qt: order, what a listener hears,
cancelling before and during a job, failures, and the window's unbounded jobs beside the API's
bounded ones (the API's refusal and time limit: tests/api/test_api.py)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from desktop_app.errors import GenerationCancelled
from desktop_app.session.jobs import JobQueue, Listener, QueueFull, Ticket


class Heard(Listener):
    def __init__(self, name: str, log: list[tuple[str, str, object]]) -> None:
        self.name, self.log = name, log

    def on_progress(self, frames: int, seconds: float) -> None:
        self.log.append((self.name, "progress", frames))

    def on_item(self, item: object) -> None:
        self.log.append((self.name, "item", item))

    def on_finished(self, result: Any) -> None:
        self.log.append((self.name, "finished", result))

    def on_failed(self, error: BaseException) -> None:
        self.log.append((self.name, "failed", type(error).__name__))

    def on_cancelled(self) -> None:
        self.log.append((self.name, "cancelled", None))


def test_jobs_run_in_order_and_tell_their_listener() -> None:
    queue = JobQueue(max_waiting=1)
    log: list[tuple[str, str, object]] = []
    gate = threading.Event()

    def first(ticket: Ticket[int]) -> int:
        gate.wait(10)
        ticket.progress(1, 0.08)
        ticket.item("line 1")
        return 1

    def broken(ticket: Ticket[int]) -> int:
        raise ValueError("a bug")

    def stops(ticket: Ticket[int]) -> int:
        while not ticket.should_stop():
            ticket.progress(0, 0.0)
            gate.wait(0.01)
        raise GenerationCancelled()

    tickets = [queue.submit(first, listener=Heard("a", log))]
    skipped = queue.submit(broken, listener=Heard("b", log), bounded=False)
    tickets.append(queue.submit(broken, listener=Heard("c", log), bounded=False))
    with pytest.raises(QueueFull):  # two wait already: a bounded job is refused
        queue.submit(first)
    skipped.cancel()  # cancelled before it starts: never runs
    gate.set()
    assert tickets[0].future.result(10) == 1
    with pytest.raises(ValueError, match="a bug"):
        tickets[1].future.result(10)
    running = queue.submit(stops, listener=Heard("d", log))
    while not any(entry[0] == "d" for entry in log):
        gate.wait(0.01)
    running.cancel()
    with pytest.raises(GenerationCancelled):
        running.future.result(10)
    queue.close()
    assert not queue.alive
    assert [entry for entry in log if entry[0] != "d"] == [
        ("a", "progress", 1),
        ("a", "item", "line 1"),
        ("a", "finished", 1),
        ("b", "cancelled", None),
        ("c", "failed", "ValueError"),
    ]
    assert log[-1] == ("d", "cancelled", None)


def test_closing_cancels_what_waits_and_what_runs() -> None:
    queue = JobQueue()
    started = threading.Event()

    def long_take(ticket: Ticket[None]) -> None:
        started.set()
        while not ticket.should_stop():
            started.wait(0.01)
        raise GenerationCancelled()

    running = queue.submit(long_take)
    waiting = queue.submit(long_take)
    assert started.wait(10)
    queue.close()
    for ticket in (running, waiting):
        assert ticket.cancelled
        with pytest.raises(GenerationCancelled):
            ticket.future.result(0)
    with pytest.raises(QueueFull, match="shutting down"):
        queue.submit(long_take)
