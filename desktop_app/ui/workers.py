"""Long-lived worker objects living on QThreads; the window talks to them by queued signals.

The :class:`InferenceWorker` owns the loaded engine and works through a queue of jobs in order
(the window's takes now; the local API's later, through the same queue). Every signal it emits
carries the id of the job it belongs to, so a listener can ignore a job it no longer waits for.
Cancelling is a thread-safe flag the engine checks between frames, set directly from the
calling thread (a queued slot would wait behind the running job); a job cancelled before it
starts is skipped.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, Signal, Slot

from desktop_app.errors import GenerationCancelled, UserError, as_internal

if TYPE_CHECKING:
    import numpy as np

    from desktop_app.inference.engine import BatchEngine, GenerationRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineInfo:
    """What the status bar shows about a loaded model."""

    model: str
    model_dir: Path
    engine: str
    device: str
    device_name: str
    dtype: str
    load_seconds: float


@dataclass(frozen=True)
class ClipAudio:
    """A reference clip as the worker gets it: 24 kHz audio, not yet prepared, and its text."""

    audio: np.ndarray
    transcript: str


@dataclass(frozen=True)
class LoadWork:
    """Load ``model`` with ``engine`` on ``device`` (the previous engine is dropped first)."""

    model: str
    engine: str
    device: str
    quantize: str = ""


@dataclass(frozen=True)
class GenerateWork:
    """Say ``request``. With ``clips`` the worker prepares them (resample, trim, loudness,
    optional denoise) and they become the request's voice prompt; without, the request's own
    references are used (a take made again). ``stream`` hands the audio over as it is made."""

    request: GenerationRequest
    clips: tuple[ClipAudio, ...] = ()
    denoise: bool = False
    stream: bool = False


@dataclass(frozen=True)
class SelfTestWork:
    """Run the self-test (fast engine against transformers) on the loaded fast engine."""

    model: str


Work = LoadWork | GenerateWork | SelfTestWork


class InferenceWorker(QObject):
    """Owns the loaded engine; loads and generates, one queued job after another."""

    load_progressed = Signal(int, str)  # job id, what is happening
    loaded = Signal(int, object)  # job id, EngineInfo
    progressed = Signal(int, int, float)  # job id, frames, seconds of audio
    chunk_ready = Signal(int, object)  # job id, a piece of the take's audio while streaming
    finished = Signal(int, object)  # job id, (request, GenerationResult) or a SelfTestReport
    cancelled = Signal(int)  # job id
    failed = Signal(int, object)  # job id, UserError or InternalError
    _wake = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.engine: BatchEngine | None = None
        self._lock = threading.Lock()
        self._queue: collections.deque[tuple[int, Work]] = collections.deque()
        self._skip: set[int] = set()  # jobs cancelled before they started
        self._running: int | None = None
        self._stop = threading.Event()
        # always queued: a job runs from the worker thread's event loop, never on the caller's stack
        self._wake.connect(self._run_next, Qt.ConnectionType.QueuedConnection)

    # -- any thread ----------------------------------------------------------------------------

    def submit(self, job_id: int, work: Work) -> None:
        """Queue ``work`` as job ``job_id``; it runs after the jobs queued before it."""
        with self._lock:
            self._queue.append((job_id, work))
        self._wake.emit()

    def cancel(self, job_id: int | None = None) -> None:
        """Stop job ``job_id`` after its current frame, or skip it if it has not started;
        ``None`` means the running job and every queued one."""
        with self._lock:
            queued = [queued_id for queued_id, _ in self._queue]
            if job_id is None:
                self._skip.update(queued)
                self._stop.set()
            elif job_id == self._running:
                self._stop.set()
            elif job_id in queued:
                self._skip.add(job_id)

    @property
    def waiting(self) -> int:
        """Jobs queued and not started."""
        with self._lock:
            return len(self._queue)

    # -- the worker's thread -------------------------------------------------------------------

    @Slot()
    def _run_next(self) -> None:
        with self._lock:
            if not self._queue:
                return
            job_id, work = self._queue.popleft()
            if job_id in self._skip:
                self._skip.discard(job_id)
                skipped = True
            else:
                skipped = False
                self._running = job_id
                self._stop.clear()
        if skipped:
            self.cancelled.emit(job_id)
            return
        try:
            if isinstance(work, LoadWork):
                self._load(job_id, work)
            elif isinstance(work, SelfTestWork):
                self._self_test(job_id, work)
            else:
                self._generate(job_id, work)
        except GenerationCancelled:
            self.cancelled.emit(job_id)
        except Exception as exc:  # every failure reaches the window, described once
            self.failed.emit(job_id, as_internal(exc))
        finally:
            with self._lock:
                self._running = None

    def _load(self, job_id: int, work: LoadWork) -> None:
        """Find the checkpoint and load it.

        Loading cannot stop half-way inside transformers; a cancel asked meanwhile is honoured
        as soon as it returns: the engine is dropped and ``cancelled`` is emitted.
        """
        from desktop_app.inference import load_engine
        from desktop_app.inference.model_store import resolve_model

        self.load_progressed.emit(job_id, f"finding {work.model}")
        folder = resolve_model(work.model)
        self.engine = None
        self.load_progressed.emit(job_id, f"loading {folder.name} ({work.engine})")
        started = time.perf_counter()
        engine = load_engine(work.engine, folder, work.device, work.quantize)
        if self._stop.is_set():
            raise GenerationCancelled()
        self.engine = engine
        self.loaded.emit(
            job_id,
            EngineInfo(
                model=work.model,
                model_dir=folder,
                engine=engine.name,
                device=engine.device,
                device_name=engine.device_name,
                dtype=engine.dtype,
                load_seconds=time.perf_counter() - started,
            ),
        )

    def _generate(self, job_id: int, work: GenerateWork) -> None:
        if self.engine is None:
            raise UserError("no model is loaded yet; choose a model first")
        from desktop_app.audio.reference import prepare_clips
        from desktop_app.inference import ReferenceClip
        from desktop_app.inference.long_text import speak

        request = work.request
        if work.clips:
            prepared = prepare_clips(work.clips, denoise=work.denoise)
            references = tuple(
                ReferenceClip(audio, clip.transcript)
                for audio, clip in zip(prepared, work.clips, strict=True)
            )
            request = dataclasses.replace(request, references=references)
        result = speak(
            self.engine,
            request,
            on_progress=lambda frames, seconds: self.progressed.emit(job_id, frames, seconds),
            should_stop=self._stop.is_set,
            on_audio=(lambda piece: self.chunk_ready.emit(job_id, piece)) if work.stream else None,
        )
        self.finished.emit(job_id, (request, result))

    def _self_test(self, job_id: int, work: SelfTestWork) -> None:
        from desktop_app.inference.fast_engine import FastEngine
        from desktop_app.inference.self_test import run_self_test

        if not isinstance(self.engine, FastEngine):
            raise UserError(
                "the self-test compares the fast engine with transformers: load the model with "
                "the fast engine first"
            )
        report = run_self_test(
            self.engine,
            work.model,
            on_progress=lambda frames, seconds: self.progressed.emit(job_id, frames, seconds),
            should_stop=self._stop.is_set,
        )
        self.finished.emit(job_id, report)


class DownloadWorker(QObject):
    """Runs the explicit model download on its own thread."""

    progressed = Signal(str)
    finished = Signal(str)  # folder
    failed = Signal(object)

    def __init__(self, model: str, token: str) -> None:
        super().__init__()
        self.model = model
        self.token = token

    @Slot()
    def run(self) -> None:
        try:
            from desktop_app.inference.model_store import download_model

            folder = download_model(
                self.model,
                token=self.token or None,
                progress=self.progressed.emit,
                force_online=True,
            )
            self.finished.emit(str(folder))
        except Exception as exc:
            self.failed.emit(as_internal(exc))
