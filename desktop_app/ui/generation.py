"""The window's side of the inference worker: one job at a time, each with an id.

:class:`GenerationController` owns the :class:`~desktop_app.ui.workers.InferenceWorker` and its
QThread. The window asks it to load a model or make a take; it refuses a second job while one
runs (a model load in the middle of a take would pull the engine from under it), passes on the
worker's signals for the current job only (a late signal of a cancelled job is dropped), and
puts a remade part of a long take back into that take.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from PySide6.QtCore import QObject, QThread, Signal

from desktop_app.errors import UserError
from desktop_app.ui.workers import (
    ClipAudio,
    GenerateWork,
    InferenceWorker,
    LoadWork,
    SelfTestWork,
    Work,
)

if TYPE_CHECKING:
    from desktop_app.inference.engine import GenerationRequest, GenerationResult
    from desktop_app.ui.takes_panel import Take

log = logging.getLogger(__name__)

_job_ids = itertools.count(1)


@dataclass
class Job:
    """One piece of work the window waits for: a model load or a take."""

    id: int
    kind: str  # "load", "generate" or "self-test"
    voice: str | None = None  # the saved voice whose clips make the take, if any
    part: tuple[Take, int] | None = None  # the long take and the part being made again
    started: float = field(default_factory=time.monotonic)


class GenerationController(QObject):
    """Loads models and makes takes on the inference thread, one job at a time."""

    load_progressed = Signal(str)
    loaded = Signal(object)  # EngineInfo
    progressed = Signal(int, float)  # frames, seconds of audio
    chunk_ready = Signal(object)  # np.ndarray: a piece of the take being made
    finished = Signal(object, object, object)  # Job, GenerationRequest, GenerationResult
    self_tested = Signal(object)  # SelfTestReport
    cancelled = Signal(object)  # Job
    failed = Signal(object, object)  # Job, UserError or InternalError

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.job: Job | None = None
        self.inference_thread = QThread(self)
        self.inference_thread.setObjectName("inference")
        self.worker = InferenceWorker()
        self.worker.moveToThread(self.inference_thread)
        self.worker.load_progressed.connect(self._load_progressed)
        self.worker.loaded.connect(self._loaded)
        self.worker.progressed.connect(self._progressed)
        self.worker.chunk_ready.connect(self._chunk_ready)
        self.worker.finished.connect(self._finished)
        self.worker.cancelled.connect(self._cancelled)
        self.worker.failed.connect(self._failed)
        self.inference_thread.start()

    @property
    def busy(self) -> bool:
        """A job is running (or queued and not yet answered)."""
        return self.job is not None

    @property
    def generating(self) -> bool:
        return self.job is not None and self.job.kind == "generate"

    # -- asking --------------------------------------------------------------------------------

    def load(self, model: str, engine: str, device: str, quantize: str = "") -> Job:
        """Load ``model``.

        Raises:
            UserError: a take is being made (wait for it, or cancel it first).
        """
        self._refuse_while_busy("load a model")
        work = LoadWork(model, engine, device, quantize)
        return self._submit(Job(next(_job_ids), "load"), work)

    def generate(
        self,
        request: GenerationRequest,
        *,
        clips: tuple[ClipAudio, ...] = (),
        denoise: bool = False,
        stream: bool = False,
        voice: str | None = None,
        part: tuple[Take, int] | None = None,
    ) -> Job:
        """Make a take of ``request`` (its voice prompt from ``clips``, prepared in the worker,
        or the request's own references); with ``part``, it replaces that part of a long take.

        Raises:
            UserError: another job is running.
        """
        self._refuse_while_busy("start another take")
        job = Job(next(_job_ids), "generate", voice=voice, part=part)
        return self._submit(job, GenerateWork(request, clips, denoise, stream))

    def self_test(self, model: str) -> Job:
        """Run the self-test on the loaded fast engine.

        Raises:
            UserError: another job is running.
        """
        self._refuse_while_busy("run the self-test")
        return self._submit(Job(next(_job_ids), "self-test"), SelfTestWork(model))

    def cancel(self) -> None:
        """Stop the current job after its current frame (a load: drop the model when loaded)."""
        if self.job is not None:
            self.worker.cancel(self.job.id)

    def shutdown(self, timeout_ms: int = 30_000) -> None:
        """Cancel everything and stop the thread."""
        self.worker.cancel()
        self.inference_thread.quit()
        if not self.inference_thread.wait(timeout_ms):
            log.warning("the inference thread did not stop within %d ms", timeout_ms)

    def _refuse_while_busy(self, what: str) -> None:
        if self.job is None:
            return
        doing = {
            "load": "a model is loading",
            "generate": "a take is being made",
            "self-test": "the self-test is running",
        }[self.job.kind]
        raise UserError(f"cannot {what} now: {doing}; wait for it or cancel it (Esc)")

    def _submit(self, job: Job, work: Work) -> Job:
        self.job = job
        self.worker.submit(job.id, work)
        return job

    # -- the worker's answers (queued onto the GUI thread) -------------------------------------

    def _current(self, job_id: int) -> Job | None:
        job = self.job
        if job is None or job.id != job_id:
            log.debug("dropped a signal of job %d (current: %s)", job_id, job and job.id)
            return None
        return job

    def _end(self, job_id: int) -> Job | None:
        job = self._current(job_id)
        if job is not None:
            self.job = None
        return job

    def _load_progressed(self, job_id: int, text: str) -> None:
        if self._current(job_id):
            self.load_progressed.emit(text)

    def _loaded(self, job_id: int, info: object) -> None:
        if self._end(job_id):
            self.loaded.emit(info)

    def _progressed(self, job_id: int, frames: int, seconds: float) -> None:
        if self._current(job_id):
            self.progressed.emit(frames, seconds)

    def _chunk_ready(self, job_id: int, piece: object) -> None:
        if self._current(job_id):
            self.chunk_ready.emit(piece)

    def _finished(self, job_id: int, outcome: object) -> None:
        job = self._end(job_id)
        if job is None:
            return
        if job.kind == "self-test":
            self.self_tested.emit(outcome)
            return
        request, result = cast("tuple[GenerationRequest, GenerationResult]", outcome)
        if job.part is not None:  # one part of a long take made again: the whole take back
            from desktop_app.inference.long_text import replace_part

            base, index = job.part
            result = replace_part(base.result, index, result)
            request = base.request
        self.finished.emit(job, request, result)

    def _cancelled(self, job_id: int) -> None:
        job = self._end(job_id)
        if job is not None:
            self.cancelled.emit(job)

    def _failed(self, job_id: int, error: object) -> None:
        job = self._end(job_id)
        if job is not None:
            self.failed.emit(job, error)
