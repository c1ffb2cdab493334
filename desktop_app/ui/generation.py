"""The window's side of the job queue: one job of its own at a time.

:class:`GenerationController` owns the window's :class:`~desktop_app.session.jobs.JobQueue` (the
local API's jobs wait in it too, behind the window's) and the
:class:`~desktop_app.ui.workers.InferenceWorker` whose methods are the jobs. The window asks it
to load a model, make a take, speak a conversation, transcribe a clip or run the self-test; it
refuses a second job while one runs (a model load in the middle of a take would pull the engine
from under it). Each job has its own :class:`~desktop_app.ui.job_bridge.JobBridge`, and says at
submission what to do with its result (and, through :class:`JobHooks`, with its progress, a
cancel or a failure): there is no dispatch on kinds of job. The controller's signals carry what
every job shares (progress, audio, cancelled, failed) and each kind of result.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from desktop_app.errors import UserError
from desktop_app.session.jobs import JobQueue, Ticket
from desktop_app.ui.job_bridge import JobBridge
from desktop_app.ui.workers import (
    ClipAudio,
    ConversationWork,
    GenerateWork,
    InferenceWorker,
    LoadWork,
    Outcome,
    SelfTestWork,
    TranscribeWork,
)

if TYPE_CHECKING:
    import numpy as np

    from desktop_app.inference.engine import GenerationRequest
    from desktop_app.ui.takes_panel import Take

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobHooks:
    """What the window does for one job besides what every job gets: its own progress or share
    display (instead of the shared signal), and what a cancel or a failure means for it."""

    on_progress: Callable[[int, float], None] | None = None
    on_share: Callable[[float, str], None] | None = None
    on_cancelled: Callable[[], None] | None = None
    on_failed: Callable[[object], None] | None = None


@dataclass(eq=False)
class Job:
    """One piece of work the window waits for."""

    doing: str  # what it is, for a refusal: "a take is being made"
    makes_take: bool = False
    precious: bool = False  # quitting would lose work: the window asks first
    voice: str | None = None  # the saved voice whose clips make the take, if any
    part: tuple[Take, int] | None = None  # the long take and the part being made again
    target: object = None  # what a transcription is for (the clip)
    hooks: JobHooks = field(default_factory=JobHooks)
    started: float = field(default_factory=time.monotonic)
    check: object = None  # once finished: the take's TakeCheck, when it was checked
    best_of: object = None  # once finished: the BestOf of a take made as the best of several
    ticket: Ticket[Any] | None = None
    bridge: JobBridge | None = None


class GenerationController(QObject):
    """Loads models and makes takes on the queue's thread, one window job at a time."""

    load_progressed = Signal(str)
    loaded = Signal(object)  # EngineInfo
    progressed = Signal(int, float)  # frames, seconds of audio
    chunk_ready = Signal(object)  # np.ndarray: a piece of the take being made
    share_progressed = Signal(float, str)  # share done (0-1), what is happening
    finished = Signal(object, object, object)  # Job, GenerationRequest, GenerationResult
    transcribed = Signal(object, object)  # Job, Transcript
    line_ready = Signal(object)  # SpokenLine of the conversation being made
    conversed = Signal(object, object)  # Job, list of SpokenLine
    self_tested = Signal(object)  # SelfTestReport
    cancelled = Signal(object)  # Job
    failed = Signal(object, object)  # Job, UserError or InternalError
    busy_changed = Signal(bool)  # a window job started (True) or ended (False)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.job: Job | None = None
        self.queue = JobQueue(name="inference")
        self.worker = InferenceWorker()

    @property
    def busy(self) -> bool:
        """A job is running (or queued and not yet answered)."""
        return self.job is not None

    @property
    def generating(self) -> bool:
        return self.job is not None and self.job.makes_take

    # -- asking --------------------------------------------------------------------------------

    def load(
        self,
        model: str,
        engine: str,
        device: str,
        quantize: str = "",
        asr_model: str = "",
        speaker_model: str = "",
        hooks: JobHooks | None = None,
    ) -> Job:
        """Load ``model``, and beside it the listen-back models (each when it is there).

        Raises:
            UserError: another job is running (wait for it, or cancel it first).
        """
        self._refuse_while_busy("load a model")
        work = LoadWork(model, engine, device, quantize, asr_model, speaker_model)
        job = Job("a model is loading", hooks=hooks or JobHooks())
        return self._submit(job, lambda t: self.worker.load(t, work), self.loaded.emit)

    def generate(
        self,
        request: GenerationRequest,
        *,
        clips: tuple[ClipAudio, ...] = (),
        denoise: bool = False,
        stream: bool = False,
        voice: str | None = None,
        part: tuple[Take, int] | None = None,
        check: bool = True,
        candidates: int = 1,
        coherent: bool = False,
        hooks: JobHooks | None = None,
    ) -> Job:
        """Make a take of ``request`` (its voice prompt from ``clips``, prepared in the worker,
        or the request's own references), checked unless ``check`` is off, or the best of
        ``candidates``; with ``part``, it replaces that part of a long take.

        Raises:
            UserError: another job is running.
        """
        self._refuse_while_busy("start another take")
        job = Job(
            "a take is being made",
            True,
            precious=True,
            voice=voice,
            part=part,
            hooks=hooks or JobHooks(),
        )
        part_of = (part[0].request, part[0].result, part[1]) if part is not None else None
        work = GenerateWork(request, clips, denoise, stream, check, candidates, coherent, part_of)

        def took(outcome: Outcome) -> None:  # for a part: the whole take, the part put back
            job.check, job.best_of = outcome.check, outcome.best_of
            self.finished.emit(job, outcome.request, outcome.result)

        return self._submit(job, lambda t: self.worker.generate(t, work), took)

    def converse(
        self,
        script: object,
        voices: dict[str, tuple[ClipAudio, ...]],
        settings: GenerationRequest,
        check: bool = True,
        candidates: int = 1,
        lines: tuple[int, ...] | None = None,
        made: tuple[object, ...] = (),
        hooks: JobHooks | None = None,
        adapters: dict[str, object] | None = None,
    ) -> Job:
        """Speak a conversation's script (see :class:`ConversationWork`).

        Raises:
            UserError: another job is running.
        """
        self._refuse_while_busy("speak the conversation")
        job = Job("a conversation is being spoken", precious=True, hooks=hooks or JobHooks())
        work = ConversationWork(
            script, voices, settings, check, candidates, lines, made, dict(adapters or {})
        )
        return self._submit(
            job,
            lambda t: self.worker.converse(t, work),
            lambda lines: self.conversed.emit(job, lines),
        )

    def transcribe(
        self, audio: np.ndarray, what: str, target: object, hooks: JobHooks | None = None
    ) -> Job:
        """Transcribe ``audio`` (24 kHz) with the loaded recogniser; ``target`` rides along.

        Raises:
            UserError: another job is running.
        """
        self._refuse_while_busy("transcribe a clip")
        job = Job("a clip is being transcribed", target=target, hooks=hooks or JobHooks())
        work = TranscribeWork(audio, what)
        return self._submit(
            job,
            lambda t: self.worker.transcribe(t, work),
            lambda transcript: self.transcribed.emit(job, transcript),
        )

    def self_test(self, model: str, hooks: JobHooks | None = None) -> Job:
        """Run the self-test on the loaded fast engine.

        Raises:
            UserError: another job is running.
        """
        self._refuse_while_busy("run the self-test")
        job = Job("the self-test is running", hooks=hooks or JobHooks())
        work = SelfTestWork(model)
        return self._submit(job, lambda t: self.worker.self_test(t, work), self.self_tested.emit)

    def cancel(self) -> None:
        """Stop the current job after its current frame (a load: drop the model when loaded)."""
        if self.job is not None and self.job.ticket is not None:
            self.job.ticket.cancel()

    def shutdown(self, timeout_s: float = 30.0) -> None:
        """Cancel everything and stop the queue's thread."""
        self.queue.close(timeout_s)

    def _refuse_while_busy(self, what: str) -> None:
        if self.job is not None:
            raise UserError(f"cannot {what} now: {self.job.doing}; wait for it or cancel it (Esc)")

    def _submit(
        self, job: Job, run: Callable[[Ticket[Any]], Any], done: Callable[[Any], None]
    ) -> Job:
        bridge = JobBridge()  # no parent: it lives as long as its job (and a late report)
        hooks = job.hooks
        while_current = self._while_current
        bridge.status_changed.connect(while_current(job, self.load_progressed.emit))
        bridge.progressed.connect(while_current(job, hooks.on_progress or self.progressed.emit))
        bridge.shared.connect(while_current(job, hooks.on_share or self.share_progressed.emit))
        bridge.audio_ready.connect(while_current(job, self.chunk_ready.emit))
        bridge.item_ready.connect(while_current(job, self.line_ready.emit))
        bridge.finished.connect(lambda result: self._finished(job, done, result))
        bridge.cancelled.connect(lambda: self._cancelled(job))
        bridge.failed.connect(lambda error: self._failed(job, error))
        job.bridge = bridge
        self.job = job
        job.ticket = self.queue.submit(run, listener=bridge.listener(), bounded=False)
        self.busy_changed.emit(True)
        return job

    # -- the job's answers (queued onto the GUI thread) ----------------------------------------

    def _while_current(self, job: Job, then: Callable[..., None]) -> Callable[..., None]:
        """``then`` for a report of ``job`` while the window waits for it; a late report of a
        job no longer waited for is dropped."""

        def relay(*args: Any) -> None:
            if self.job is job:
                then(*args)
            else:
                log.debug("dropped a report of a job no longer waited for")

        return relay

    def _finished(self, job: Job, done: Callable[[Any], None], result: Any) -> None:
        if self._end(job):
            done(result)

    def _end(self, job: Job) -> bool:
        """The job has ended: True when the window still waited for it."""
        if self.job is not job:
            return False
        self.job = None
        self.busy_changed.emit(False)
        return True

    def _cancelled(self, job: Job) -> None:
        if self._end(job):  # what every job does first, then this job's own
            self.cancelled.emit(job)
            if job.hooks.on_cancelled is not None:
                job.hooks.on_cancelled()

    def _failed(self, job: Job, error: object) -> None:
        if self._end(job):
            self.failed.emit(job, error)
            if job.hooks.on_failed is not None:
                job.hooks.on_failed(error)
