"""The window's model work, as jobs of the one queue (:mod:`desktop_app.session.jobs`).

:class:`InferenceWorker` owns the loaded models; each of its methods is one job of the window
(load, a take, a conversation, a transcription, the self-test), run on the queue's thread over
the session layer. A job tells how it goes through its ticket and stops when the ticket says
(Esc cancels between frames); the window's Qt bridge (:mod:`.job_bridge`) turns what the ticket
tells into signals. Nothing here imports Qt.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from desktop_app.errors import GenerationCancelled, UserError
from desktop_app.session.models import LoadedModels, ModelSpec, listener_names, load_models

if TYPE_CHECKING:
    import numpy as np

    from desktop_app.checks.take_check import TakeChecker
    from desktop_app.inference.engine import BatchEngine, GenerationRequest, GenerationResult
    from desktop_app.session.jobs import Ticket

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
    adapters: dict[str, object] = field(default_factory=dict)
    """A trained speaker's adapter (inference.adapter.VoiceAdapter), by speaker."""


@dataclass(frozen=True)
class Outcome:
    """A finished take as the worker hands it over: the request, the (trimmed) result, its
    check and, for best of N, every candidate."""

    request: GenerationRequest
    result: GenerationResult
    check: object = None  # TakeCheck | None
    best_of: object = None  # BestOf | None


class InferenceWorker:
    """Owns the loaded models; each method is a job run on the queue's thread."""

    def __init__(self) -> None:
        self.models: LoadedModels | None = None  # the engine and the listen-back models

    @property
    def engine(self) -> BatchEngine | None:
        return self.models.engine if self.models is not None else None

    @property
    def checker(self) -> TakeChecker | None:
        """The listen-back models beside the engine."""
        return self.models.checker if self.models is not None else None

    def load(self, ticket: Ticket[Any], work: LoadWork) -> EngineInfo:
        """Load the model and the listen-back models beside it (:func:`load_models`).

        Loading cannot stop half-way inside transformers; a cancel asked meanwhile is honoured
        at the next step: nothing is kept and the job ends cancelled.
        """
        if self.models is not None:  # a reload: let the old engine's objects be collected
            self.models = None
            gc.unfreeze()
            gc.collect()
        # torch, transformers and the engines are hundreds of thousands of long-lived objects:
        # a full garbage collection walks them all (0.3 s and more here) holding the GIL, and
        # the window froze that long while a model loaded. Frozen after each step, they are
        # left out of every later collection; a reload unfreezes them first (above).
        gc.freeze()

        def status(text: str) -> None:
            gc.freeze()
            ticket.status(text)

        spec = ModelSpec(
            work.model,
            work.engine,
            work.device,
            work.quantize,
            work.asr_model or None,
            work.speaker_model or None,
        )
        started = time.perf_counter()
        models = load_models(spec, on_status=status, should_stop=ticket.should_stop)
        if ticket.should_stop():
            raise GenerationCancelled()
        engine, checker = models.engine, models.checker
        assert checker is not None  # the spec checks
        self.models = models
        asr, speaker = listener_names(spec, engine.device, checker)
        return EngineInfo(
            model=work.model,
            model_dir=models.model_dir,
            engine=engine.name,
            device=engine.device,
            device_name=engine.device_name,
            dtype=engine.dtype,
            load_seconds=time.perf_counter() - started,
            asr_model=asr,
            speaker_model=speaker,
            notes=models.notes,
        )

    def generate(self, ticket: Ticket[Any], work: GenerateWork) -> Outcome:
        if self.engine is None:
            raise UserError("no model is loaded yet; choose a model first")
        from desktop_app.audio.reference import prepare_clips
        from desktop_app.inference import ReferenceClip
        from desktop_app.session.say import SayOptions, say

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
            return self._generate_part(ticket, work, checker)
        assert self.models is not None
        options = SayOptions(work.candidates, work.coherent, "full" if work.check else "off")
        made = say(self.models, request, options, ticket.control(work.stream))
        return Outcome(request, made.result, made.check, made.best_of)

    def _generate_part(
        self, ticket: Ticket[Any], work: GenerateWork, checker: TakeChecker | None
    ) -> Outcome:
        """Make one part of a long take again, put it back, and check the whole take."""
        from desktop_app.checks.best_of import make_take
        from desktop_app.inference.long_text import replace_part

        assert self.engine is not None and work.part_of is not None
        base_request, base, index = work.part_of
        made = make_take(
            self.engine,
            work.request,
            None,
            on_progress=ticket.progress,
            should_stop=ticket.should_stop,
            on_audio=ticket.audio if work.stream else None,
        )
        whole = replace_part(base, index, made.result)
        check = None
        if checker is not None:
            ticket.share(0.0, "listening back")
            checked = checker.check(base_request, whole, should_stop=ticket.should_stop)
            whole, check = checked.result, checked.check
        return Outcome(base_request, whole, check)

    def converse(self, ticket: Ticket[Any], work: ConversationWork) -> list[Any]:
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
        return speak_script(
            self.engine,  # type: ignore[arg-type]  # both engines count prompt positions
            work.script,
            voices,
            work.settings,
            checker=self.checker if work.check else None,
            candidates=work.candidates,
            lines=work.lines,
            made=work.made,  # type: ignore[arg-type]  # SpokenLines, typed loosely for Qt
            on_line=ticket.item,
            on_progress=ticket.progress,
            should_stop=ticket.should_stop,
            adapters=work.adapters,  # type: ignore[arg-type]  # VoiceAdapters, typed loosely
        )

    def transcribe(self, ticket: Ticket[Any], work: TranscribeWork) -> Any:
        from desktop_app.checks.listen import transcribe_audio
        from desktop_app.defaults import SAMPLE_RATE

        recognizer = self.checker.recognizer if self.checker is not None else None
        if recognizer is None:
            from desktop_app.inference.model_store import ASR, how_to_get

            raise UserError(
                "no speech-recognition model is loaded to transcribe the clip; type the "
                f"transcript, or {how_to_get(ASR.default_id, ASR)} and reload the model"
            )
        return transcribe_audio(
            recognizer,
            work.audio,
            SAMPLE_RATE,
            what=work.what,
            on_progress=lambda share: ticket.share(share, "transcribing"),
            should_stop=ticket.should_stop,
        )

    def self_test(self, ticket: Ticket[Any], work: SelfTestWork) -> Any:
        from desktop_app.inference.fast_engine import FastEngine
        from desktop_app.inference.self_test import run_self_test

        if not isinstance(self.engine, FastEngine):
            raise UserError(
                "the self-test compares the fast engine with transformers: load the model with "
                "the fast engine first"
            )
        return run_self_test(
            self.engine,
            work.model,
            on_progress=ticket.progress,
            should_stop=ticket.should_stop,
        )
