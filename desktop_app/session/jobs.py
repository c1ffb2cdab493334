"""One model, one worker, jobs in order: the queue every face's model work goes through.

Every piece of model work (a take, a transcription, loading the model, a conversation) is a job:
a function of its :class:`Ticket`, run on the queue's one thread (the one that uses the engine)
in the order the jobs came. A job tells how it goes through its ticket (:meth:`Ticket.progress`,
:meth:`Ticket.share`, :meth:`Ticket.audio`, :meth:`Ticket.item`, :meth:`Ticket.status`) and
stops at the next frame when :meth:`Ticket.should_stop` says so: cancelled (a client gone, Esc in
the window) or past its time limit (:class:`TimedOut`). Its result or error comes in the
ticket's future, and to the ticket's :class:`Listener` (a face's own: the window's Qt bridge
re-emits it as signals). A bounded submission (the API's) is refused at once when ``max_waiting``
jobs wait (:class:`QueueFull`, a 503 with Retry-After); the window's own jobs are not bounded.

``serve`` and the window use this one queue; in the window the local API's jobs wait behind the
window's own, on the same thread.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

import numpy as np

from desktop_app.errors import GenerationCancelled, UserError
from desktop_app.session.say import Control

log = logging.getLogger(__name__)

T = TypeVar("T")


class QueueFull(UserError):
    """Too many requests are waiting for the model."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TimedOut(UserError):
    """A job ran past its time limit (its take was stopped)."""


class Listener:
    """What a job tells while it runs and when it ends, called on the queue's thread. Each
    method does nothing here: a face overrides what it shows."""

    def on_progress(self, frames: int, seconds: float) -> None:
        """Frames made so far of the take being made, and the seconds of audio they are."""

    def on_share(self, done: float, what: str) -> None:
        """A share (0-1) of some longer step done ("transcribing", "listening back")."""

    def on_audio(self, piece: np.ndarray) -> None:
        """A piece of the take's audio, as it is made (streaming)."""

    def on_item(self, item: object) -> None:
        """One made part of a job of several (a conversation's line)."""

    def on_status(self, text: str) -> None:
        """What is happening now, in a few words."""

    def on_finished(self, result: Any) -> None:
        """The job's result."""

    def on_failed(self, error: BaseException) -> None:
        """The job raised ``error`` (a time limit: :class:`TimedOut`)."""

    def on_cancelled(self) -> None:
        """The job was cancelled (before it started, or at a frame)."""


class Ticket(Generic[T]):
    """A job in the queue: its future, its listener, and the flag that cancels it."""

    def __init__(
        self,
        run: Callable[[Ticket[T]], T],
        time_limit: float = math.inf,
        listener: Listener | None = None,
    ) -> None:
        self.run = run
        self.time_limit = time_limit
        self.deadline = time.monotonic() + time_limit
        self.listener = listener or Listener()
        self.future: Future[T] = Future()
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        """Stop the job at its next frame (or before it starts); any thread."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def should_stop(self) -> bool:
        """Cancelled, or past the time limit: the job stops at its next frame."""
        return self._cancelled.is_set() or time.monotonic() > self.deadline

    # -- what the job tells (the queue's thread) -----------------------------------------------

    def progress(self, frames: int, seconds: float) -> None:
        self.listener.on_progress(frames, seconds)

    def share(self, done: float, what: str) -> None:
        self.listener.on_share(done, what)

    def audio(self, piece: np.ndarray) -> None:
        self.listener.on_audio(piece)

    def item(self, item: object) -> None:
        self.listener.on_item(item)

    def status(self, text: str) -> None:
        self.listener.on_status(text)

    def control(self, stream: bool = False) -> Control:
        """The session's callbacks for :func:`~desktop_app.session.say.say` over this ticket:
        progress, stop, the audio when ``stream``, and the listening back as a share."""
        return Control(
            self.progress,
            self.should_stop,
            self.audio if stream else None,
            lambda done, total: self.share(done / max(1, total), "listening back"),
        )


class JobQueue:
    """In-order jobs on one worker thread of its own; a bounded wait for bounded jobs."""

    def __init__(self, max_waiting: int = 8, name: str = "jobs") -> None:
        self.max_waiting = max_waiting
        self._waiting: deque[Ticket[Any]] = deque()
        self._lock = threading.Condition()
        self.running: Ticket[Any] | None = None
        self._durations: deque[float] = deque(maxlen=8)
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    @property
    def alive(self) -> bool:
        """Whether the worker thread still runs (until :meth:`close`)."""
        return self._thread.is_alive()

    def submit(
        self,
        run: Callable[[Ticket[T]], T],
        time_limit: float = math.inf,
        *,
        listener: Listener | None = None,
        bounded: bool = True,
    ) -> Ticket[T]:
        """Queue ``run(ticket)``; its result or error comes in the ticket's future and to
        ``listener``.

        Raises:
            QueueFull: the queue is closed, or (``bounded``) ``max_waiting`` jobs already wait.
        """
        ticket = Ticket(run, time_limit, listener)
        with self._lock:
            if self._closed:
                raise QueueFull("the server is shutting down", 5)
            if bounded and len(self._waiting) >= self.max_waiting:
                raise QueueFull(
                    f"{len(self._waiting)} requests are already waiting for the model; try "
                    "again later",
                    self._retry_after(),
                )
            self._waiting.append(ticket)
            self._lock.notify()
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
                if not self._waiting:
                    return
                ticket = self._waiting.popleft()
                self.running = ticket
            started = time.monotonic()
            try:
                self._run(ticket)
            finally:
                with self._lock:
                    self.running = None
                    self._durations.append(time.monotonic() - started)

    @staticmethod
    def _run(ticket: Ticket[Any]) -> None:
        listener = ticket.listener
        try:
            if ticket.should_stop():
                raise GenerationCancelled("the job was cancelled before it started")
            result = ticket.run(ticket)
        except GenerationCancelled as exc:
            if ticket.cancelled:
                ticket.future.set_exception(exc)
                listener.on_cancelled()
                return
            timed_out = TimedOut(
                f"the request took longer than its time limit of {ticket.time_limit:g} s "
                "and was stopped; ask for a shorter text or raise the server's time limit"
            )
            ticket.future.set_exception(timed_out)
            listener.on_failed(timed_out)
        except Exception as exc:  # every failure reaches the job's owner, through its future
            ticket.future.set_exception(exc)
            listener.on_failed(exc)
        except BaseException as exc:
            ticket.future.set_exception(exc)
            raise
        else:
            ticket.future.set_result(result)
            listener.on_finished(result)

    def close(self, wait: float = 30.0) -> None:
        """Cancel what waits and the running job, and end the worker thread (the waiting jobs
        end as cancelled). Waits up to ``wait`` seconds for the thread."""
        with self._lock:
            self._closed = True
            for ticket in self._waiting:
                ticket.cancel()
            if self.running is not None:
                self.running.cancel()
            self._lock.notify_all()
        self._thread.join(timeout=wait)
        if self._thread.is_alive():
            log.warning("the %s thread did not stop within %g s", self._thread.name, wait)
