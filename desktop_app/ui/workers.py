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
import gc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, Signal, Slot

from desktop_app.errors import GenerationCancelled, UserError, as_internal
from desktop_app.session.models import LoadedModels, ModelSpec, listener_names, load_checker

if TYPE_CHECKING:
    import numpy as np

    from desktop_app.checks.take_check import TakeChecker
    from desktop_app.inference.engine import BatchEngine, GenerationRequest, GenerationResult

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
    asr_model: str = ""  # the speech-recognition checkpoint loaded beside it ("" none)
    speaker_model: str = ""  # the speaker checkpoint loaded beside it ("" none)
    notes: tuple[str, ...] = ()  # why a listen-back model is not there

    @property
    def checks(self) -> str:
        """What the takes are checked with, in a few words."""
        parts = [f"words ({self.asr_model})"] if self.asr_model else []
        parts += [f"voice ({self.speaker_model})"] if self.speaker_model else []
        return "checks: " + (", ".join(parts) if parts else "ending only")


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
    asr_model: str = ""  # "": the device's default, when it is installed
    speaker_model: str = ""


@dataclass(frozen=True)
class GenerateWork:
    """Say ``request``. With ``clips`` the worker prepares them (resample, trim, loudness,
    optional denoise) and they become the request's voice prompt; without, the request's own
    references are used (a take made again). ``stream`` hands the audio over as it is made."""

    request: GenerationRequest
    clips: tuple[ClipAudio, ...] = ()
    denoise: bool = False
    stream: bool = False
    check: bool = True  # listen back (with the models loaded beside the engine)
    candidates: int = 1  # best of N
    coherent: bool = False  # a long text chunk after chunk, each on the ones before
    part_of: tuple[GenerationRequest, GenerationResult, int] | None = None
    """A long take (its request and result) whose part ``index`` this request makes again: the
    part goes back into it and the whole take is checked."""


@dataclass(frozen=True)
class TranscribeWork:
    """Transcribe one clip (24 kHz audio) with the loaded recogniser."""

    audio: np.ndarray
    what: str = "the clip"


@dataclass(frozen=True)
class SelfTestWork:
    """Run the self-test (fast engine against transformers) on the loaded fast engine."""

    model: str


@dataclass(frozen=True)
class ConversationWork:
    """Speak a script: each speaker's clips (24 kHz, prepared in the worker), the sampling
    settings and base seed, the checks and best of N per line; ``lines`` only those (None:
    all), on top of the lines ``made`` before (kept as they are)."""

    script: object  # conversation.script.Script
    voices: dict[str, tuple[ClipAudio, ...]]
    settings: GenerationRequest
    check: bool = True
    candidates: int = 1
    lines: tuple[int, ...] | None = None
    made: tuple[object, ...] = ()  # conversation.speak.SpokenLine


@dataclass(frozen=True)
class OutsideWork:
    """Work of another face (the local API's queue) run here, in order with the window's own,
    on the thread that owns the engine; it reports through its own channels, not the signals."""

    run: Callable[[], None]


Work = LoadWork | GenerateWork | SelfTestWork | TranscribeWork | ConversationWork | OutsideWork


@dataclass(frozen=True)
class Outcome:
    """A finished take as the worker hands it over: the request, the (trimmed) result, its
    check and, for best of N, every candidate."""

    request: GenerationRequest
    result: GenerationResult
    check: object = None  # TakeCheck | None
    best_of: object = None  # BestOf | None


class InferenceWorker(QObject):
    """Owns the loaded engine; loads and generates, one queued job after another."""

    load_progressed = Signal(int, str)  # job id, what is happening
    loaded = Signal(int, object)  # job id, EngineInfo
    progressed = Signal(int, int, float)  # job id, frames, seconds of audio
    chunk_ready = Signal(int, object)  # job id, a piece of the take's audio while streaming
    share_progressed = Signal(int, float, str)  # job id, share done (0-1), what is happening
    line_ready = Signal(int, object)  # job id, a SpokenLine of a conversation, once it is made
    finished = Signal(int, object)  # job id, an Outcome, a SelfTestReport or a Transcript
    cancelled = Signal(int)  # job id
    failed = Signal(int, object)  # job id, UserError or InternalError
    _wake = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.engine: BatchEngine | None = None
        self.checker: TakeChecker | None = None  # the listen-back models beside the engine
        self.models: LoadedModels | None = None  # both, as every face's session holds them
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
            # the local API's work is not the window's to cancel: its clients cancel it
            queued = [i for i, w in self._queue if not isinstance(w, OutsideWork)]
            if job_id is None:
                self._skip.update(queued)
                self._stop.set()
            elif job_id == self._running:
                self._stop.set()
            elif job_id in queued:
                self._skip.add(job_id)

    def run_outside(self, run: Callable[[], None]) -> None:
        """Queue a callable of the local API behind the jobs queued now (any thread)."""
        self.submit(-1, OutsideWork(run))

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
        if isinstance(work, OutsideWork):
            try:
                work.run()  # it answers its own caller (a future) and never raises
            finally:
                with self._lock:
                    self._running = None
            return
        try:
            if isinstance(work, LoadWork):
                self._load(job_id, work)
            elif isinstance(work, SelfTestWork):
                self._self_test(job_id, work)
            elif isinstance(work, TranscribeWork):
                self._transcribe(job_id, work)
            elif isinstance(work, ConversationWork):
                self._converse(job_id, work)
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
        if self.engine is not None:  # a reload: let the old engine's objects be collected
            self.engine = None
            self.checker = None
            self.models = None
            gc.unfreeze()
            gc.collect()
        # torch, transformers and the engines are hundreds of thousands of long-lived objects:
        # a full garbage collection walks them all (0.3 s and more here) holding the GIL, and
        # the window froze that long while a model loaded. Frozen, they are left out of every
        # later collection; a reload unfreezes them first (above), so nothing dropped stays.
        gc.freeze()
        self.load_progressed.emit(job_id, f"loading {folder.name} ({work.engine})")
        started = time.perf_counter()
        engine = load_engine(work.engine, folder, work.device, work.quantize)
        if self._stop.is_set():
            raise GenerationCancelled()
        self.engine = engine
        gc.freeze()
        self.load_progressed.emit(job_id, "loading the listen-back models")
        spec = ModelSpec(
            work.model,
            work.engine,
            work.device,
            work.quantize,
            work.asr_model or None,
            work.speaker_model or None,
        )
        checker, notes = load_checker(spec, engine.device)  # a missing one is a note
        gc.freeze()
        if self._stop.is_set():
            self.engine = None
            raise GenerationCancelled()
        self.checker = checker
        self.models = LoadedModels(engine, work.model, folder, checker, notes)
        asr, speaker = listener_names(spec, engine.device, checker)
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
                asr_model=asr,
                speaker_model=speaker,
                notes=notes,
            ),
        )

    def _generate(self, job_id: int, work: GenerateWork) -> None:
        if self.engine is None:
            raise UserError("no model is loaded yet; choose a model first")
        from desktop_app.audio.reference import prepare_clips
        from desktop_app.inference import ReferenceClip
        from desktop_app.session.say import Control, SayOptions, say

        request = work.request
        if work.clips:
            prepared = prepare_clips(work.clips, denoise=work.denoise)
            references = tuple(
                ReferenceClip(audio, clip.transcript)
                for audio, clip in zip(prepared, work.clips, strict=True)
            )
            request = dataclasses.replace(request, references=references)
        checker = self.checker if work.check else None
        if work.part_of is not None:
            self._generate_part(job_id, work, checker)
            return
        on_progress = lambda frames, seconds: self.progressed.emit(  # noqa: E731
            job_id, frames, seconds
        )
        on_audio = (lambda piece: self.chunk_ready.emit(job_id, piece)) if work.stream else None
        assert self.models is not None
        options = SayOptions(work.candidates, work.coherent, "full" if work.check else "off")
        control = Control(
            on_progress,
            self._stop.is_set,
            on_audio,
            lambda done, total: self.share_progressed.emit(
                job_id, done / max(1, total), "listening back"
            ),
        )
        made = say(self.models, request, options, control)
        self.finished.emit(job_id, Outcome(request, made.result, made.check, made.best_of))

    def _generate_part(self, job_id: int, work: GenerateWork, checker: TakeChecker | None) -> None:
        """Make one part of a long take again, put it back, and check the whole take."""
        from desktop_app.checks.best_of import make_take
        from desktop_app.inference.long_text import replace_part

        assert self.engine is not None and work.part_of is not None
        base_request, base, index = work.part_of
        made = make_take(
            self.engine,
            work.request,
            None,
            on_progress=lambda frames, seconds: self.progressed.emit(job_id, frames, seconds),
            should_stop=self._stop.is_set,
            on_audio=(lambda piece: self.chunk_ready.emit(job_id, piece)) if work.stream else None,
        )
        whole = replace_part(base, index, made.result)
        check = None
        if checker is not None:
            self.share_progressed.emit(job_id, 0.0, "listening back")
            checked = checker.check(base_request, whole, should_stop=self._stop.is_set)
            whole, check = checked.result, checked.check
        self.finished.emit(job_id, Outcome(base_request, whole, check))

    def _converse(self, job_id: int, work: ConversationWork) -> None:
        """Say the script line after line; each line is handed over as soon as it is made."""
        if self.engine is None:
            raise UserError("no model is loaded yet; choose a model first")
        from desktop_app.audio.reference import prepare_clips
        from desktop_app.conversation.script import Script
        from desktop_app.conversation.speak import speak_script
        from desktop_app.inference import ReferenceClip

        assert isinstance(work.script, Script)
        voices = {
            name: tuple(
                ReferenceClip(audio, clip.transcript)
                for audio, clip in zip(prepare_clips(clips), clips, strict=True)
            )
            for name, clips in work.voices.items()
        }
        lines = speak_script(
            self.engine,  # type: ignore[arg-type]  # both engines count prompt positions
            work.script,
            voices,
            work.settings,
            checker=self.checker if work.check else None,
            candidates=work.candidates,
            lines=work.lines,
            made=work.made,  # type: ignore[arg-type]  # SpokenLines, typed loosely for Qt
            on_line=lambda line: self.line_ready.emit(job_id, line),
            on_progress=lambda frames, seconds: self.progressed.emit(job_id, frames, seconds),
            should_stop=self._stop.is_set,
        )
        self.finished.emit(job_id, lines)

    def _transcribe(self, job_id: int, work: TranscribeWork) -> None:
        from desktop_app.checks.listen import transcribe_audio
        from desktop_app.defaults import SAMPLE_RATE

        recognizer = self.checker.recognizer if self.checker is not None else None
        if recognizer is None:
            from desktop_app.inference.model_store import ASR, how_to_get

            raise UserError(
                "no speech-recognition model is loaded to transcribe the clip; type the "
                f"transcript, or {how_to_get(ASR.default_id, ASR)} and reload the model"
            )
        transcript = transcribe_audio(
            recognizer,
            work.audio,
            SAMPLE_RATE,
            what=work.what,
            on_progress=lambda share: self.share_progressed.emit(job_id, share, "transcribing"),
            should_stop=self._stop.is_set,
        )
        self.finished.emit(job_id, transcript)

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
