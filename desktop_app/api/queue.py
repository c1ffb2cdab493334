"""One model, one worker, requests in order: the API's take queue.

Every piece of model work of the API (a take, a transcription, loading the model) is a job run
on one thread, the one that owns the engine, in the order the requests came. At most
``max_waiting`` jobs wait; another is refused at once (:class:`QueueFull`, a 503 with
Retry-After). A job stops at the next frame when its client goes away (:meth:`Ticket.cancel`)
or when its time is up (:class:`TimedOut`). The worker is either the queue's own thread
(``csm-studio-cli serve``) or, in the window, the inference worker's thread: then ``post`` hands
each job to that thread, behind the window's own work.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from desktop_app.errors import GenerationCancelled, UserError

log = logging.getLogger(__name__)

StopCheck = Callable[[], bool]
Post = Callable[[Callable[[], None]], None]


class QueueFull(UserError):
    """Too many requests are waiting for the model."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TimedOut(UserError):
    """A request ran past its time limit (its take was stopped)."""


class Ticket:
    """A job in the queue: its future, and the flag that cancels it."""

    def __init__(self, run: Callable[[StopCheck], Any], time_limit: float) -> None:
        self.run = run
        self.deadline = time.monotonic() + time_limit
        self.time_limit = time_limit
        self.future: Future[Any] = Future()
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        """Stop the job at its next frame (or before it starts)."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def should_stop(self) -> bool:
        return self._cancelled.is_set() or time.monotonic() > self.deadline


class TakeQueue:
    """In-order jobs on one worker; a bounded wait."""

    def __init__(self, max_waiting: int = 8, post: Post | None = None) -> None:
        self.max_waiting = max_waiting
        self._waiting: deque[Ticket] = deque()
        self._lock = threading.Condition()
        self.running: Ticket | None = None
        self._durations: deque[float] = deque(maxlen=8)
        self._closed = False
        self._post = post
        if post is None:
            self._thread = threading.Thread(target=self._loop, name="api-worker", daemon=True)
            self._thread.start()

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    def submit(self, run: Callable[[StopCheck], Any], time_limit: float) -> Ticket:
        """Queue ``run(should_stop)``; its result or error comes in the ticket's future.

        Raises:
            QueueFull: ``max_waiting`` jobs already wait.
        """
        ticket = Ticket(run, time_limit)
        with self._lock:
            if self._closed:
                raise QueueFull("the server is shutting down", 5)
            if len(self._waiting) >= self.max_waiting:
                raise QueueFull(
                    f"{len(self._waiting)} requests are already waiting for the model; try "
                    "again later",
                    self._retry_after(),
                )
            self._waiting.append(ticket)
            self._lock.notify()
        if self._post is not None:
            self._post(self.run_next)
        return ticket

    def _retry_after(self) -> int:
        """Seconds until a place is likely free: the recent jobs' mean time times the queue."""
        mean = sum(self._durations) / len(self._durations) if self._durations else 5.0
        return max(1, math.ceil(mean * (len(self._waiting) + 1)))

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._waiting and not self._closed:
                    self._lock.wait()
                if self._closed and not self._waiting:
                    return
            self.run_next()

    def run_next(self) -> None:
        """Run the oldest waiting job (on the worker's thread)."""
        with self._lock:
            if not self._waiting:
                return
            ticket = self._waiting.popleft()
            self.running = ticket
        started = time.monotonic()
        try:
            if ticket.should_stop():
                raise GenerationCancelled("the request was cancelled before it started")
            result = ticket.run(ticket.should_stop)
        except BaseException as exc:
            if isinstance(exc, GenerationCancelled) and not ticket.cancelled:
                exc = TimedOut(
                    f"the request took longer than its time limit of {ticket.time_limit:g} s "
                    "and was stopped; ask for a shorter text or raise the server's time limit"
                )
            ticket.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            ticket.future.set_result(result)
        finally:
            with self._lock:
                self.running = None
                self._durations.append(time.monotonic() - started)

    def close(self) -> None:
        """Cancel what waits and end the worker thread (after the running job)."""
        with self._lock:
            self._closed = True
            waiting = list(self._waiting)
            for ticket in waiting:
                ticket.cancel()
            self._lock.notify_all()
        if self._post is None:  # the worker runs out what waits as cancelled jobs, then ends
            self._thread.join(timeout=30)
