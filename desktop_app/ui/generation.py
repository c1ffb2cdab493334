"""The window's side of the inference worker: one job at a time, each with an id.

:class:`GenerationController` owns the :class:`~desktop_app.ui.workers.InferenceWorker` and its
QThread. The window asks it to load a model or make a take; it refuses a second job while one
runs (a model load in the middle of a take would pull the engine from under it), passes on the
worker's signals for the current job only (a late signal of a cancelled job is dropped). Jobs:
loading a model (and the listen-back models beside it), making a take (checked, or the best of
several), making one part of a long take again, transcribing a clip, the self-test.
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
    ConversationWork,
    GenerateWork,
    InferenceWorker,
    LoadWork,
    Outcome,
    SelfTestWork,
    TranscribeWork,
    Work,
)

if TYPE_CHECKING:
    import numpy as np

    from desktop_app.inference.engine import GenerationRequest
    from desktop_app.ui.takes_panel import Take

log = logging.getLogger(__name__)

_job_ids = itertools.count(1)


@dataclass
class Job:
    """One piece of work the window waits for: a model load or a take."""

    id: int
    kind: str  # "load", "generate", "transcribe", "conversation" or "self-test"
    voice: str | None = None  # the saved voice whose clips make the take, if any
    part: tuple[Take, int] | None = None  # the long take and the part being made again
    target: object = None  # what a transcription is for (the clip)
    started: float = field(default_factory=time.monotonic)
    check: object = None  # once finished: the take's TakeCheck, when it was checked
    best_of: object = None  # once finished: the BestOf of a take made as the best of several


class GenerationController(QObject):
    """Loads models and makes takes on the inference thread, one job at a time."""

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
        self.worker.share_progressed.connect(self._share_progressed)
        self.worker.line_ready.connect(self._line_ready)
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

    def load(
        self,
        model: str,
        engine: str,
        device: str,
        quantize: str = "",
        asr_model: str = "",
        speaker_model: str = "",
    ) -> Job:
        """Load ``model``, and beside it the listen-back models (each when it is there).

        Raises:
            UserError: a take is being made (wait for it, or cancel it first).
        """
        self._refuse_while_busy("load a model")
        work = LoadWork(model, engine, device, quantize, asr_model, speaker_model)
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
        check: bool = True,
        candidates: int = 1,
        coherent: bool = False,
    ) -> Job:
        """Make a take of ``request`` (its voice prompt from ``clips``, prepared in the worker,
        or the request's own references), checked unless ``check`` is off, or the best of
        ``candidates``; with ``part``, it replaces that part of a long take.

        Raises:
            UserError: another job is running.
        """
        self._refuse_while_busy("start another take")
        job = Job(next(_job_ids), "generate", voice=voice, part=part)
        part_of = (part[0].request, part[0].result, part[1]) if part is not None else None
        work = GenerateWork(request, clips, denoise, stream, check, candidates, coherent, part_of)
        return self._submit(job, work)

    def converse(
        self,
        script: object,
        voices: dict[str, tuple[ClipAudio, ...]],
        settings: GenerationRequest,
        check: bool = True,
        candidates: int = 1,
        lines: tuple[int, ...] | None = None,
        made: tuple[object, ...] = (),
    ) -> Job:
        """Speak a conversation's script (see :class:`ConversationWork`).

        Raises:
            UserError: another job is running.
        """
        self._refuse_while_busy("speak the conversation")
        job = Job(next(_job_ids), "conversation")
        work = ConversationWork(script, voices, settings, check, candidates, lines, made)
        return self._submit(job, work)

    def transcribe(self, audio: np.ndarray, what: str, target: object) -> Job:
        """Transcribe ``audio`` (24 kHz) with the loaded recogniser; ``target`` rides along.

        Raises:
            UserError: another job is running.
        """
        self._refuse_while_busy("transcribe a clip")
        job = Job(next(_job_ids), "transcribe", target=target)
        return self._submit(job, TranscribeWork(audio, what))

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
            "transcribe": "a clip is being transcribed",
            "conversation": "a conversation is being spoken",
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

    def _line_ready(self, job_id: int, line: object) -> None:
        if self._current(job_id):
            self.line_ready.emit(line)

    def _share_progressed(self, job_id: int, share: float, what: str) -> None:
        if self._current(job_id):
            self.share_progressed.emit(share, what)

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
        if job.kind == "transcribe":
            self.transcribed.emit(job, outcome)
            return
        if job.kind == "conversation":
            self.conversed.emit(job, outcome)
            return
        made = cast("Outcome", outcome)  # for a part: the whole take, the part put back
        job.check, job.best_of = made.check, made.best_of
        self.finished.emit(job, made.request, made.result)

    def _cancelled(self, job_id: int) -> None:
        job = self._end(job_id)
        if job is not None:
            self.cancelled.emit(job)

    def _failed(self, job_id: int, error: object) -> None:
        job = self._end(job_id)
        if job is not None:
            self.failed.emit(job, error)
