"""The engine contract: plain dataclasses in, plain dataclasses out, callbacks for progress."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from desktop_app import defaults

if TYPE_CHECKING:
    from desktop_app.inference.adapter import VoiceAdapter

SAMPLE_RATE = defaults.SAMPLE_RATE

ProgressCallback = Callable[[int, float], None]
"""Called after each frame with (frames made so far, seconds of audio made so far)."""

StopCheck = Callable[[], bool]
"""Returns True when the user asked to cancel; checked before and after the prefill, between
frames, and after the decode."""


def check_stop(should_stop: StopCheck | None) -> None:
    """Raise GenerationCancelled when the user asked to cancel."""
    if should_stop is not None and should_stop():
        from desktop_app.errors import GenerationCancelled

        raise GenerationCancelled()


AudioCallback = Callable[[np.ndarray], None]
"""Called with each new piece of the take's 24 kHz audio as soon as it is decoded; the pieces,
joined, are the result's audio sample for sample."""

PartAudioCallback = Callable[[int, np.ndarray], None]
"""A batch's streaming: (index of the request, the audio its take adds), every request's audio in
order (request 1's pieces only once request 0's take has ended)."""


@dataclass(frozen=True)
class ReferenceClip:
    """One context turn of the voice prompt: 24 kHz mono float32 speech and its exact transcript.

    ``speaker`` is the turn's speaker id; None means the request's own (a single voice). A
    conversation gives each speaker's turns, and the lines already made, their own ids.
    ``codes`` (frames x codebooks) are the Mimi codes of ``audio`` when they are known (a line
    the model made): the fast engine then embeds them as they are instead of encoding the audio
    again, and keeps the conversation's cache across lines (one frame per 1920 samples).
    """

    audio: np.ndarray
    transcript: str
    speaker: int | None = None
    codes: np.ndarray | None = None

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE


@dataclass(frozen=True)
class GenerationRequest:
    """What to say, in which voice, with which sampling settings.

    A temperature of 0 means greedy decoding. ``seed=None`` picks a random seed, reported in the
    result so the take can be reproduced. ``max_seconds`` caps the generated audio.
    """

    text: str
    references: tuple[ReferenceClip, ...] = ()
    temperature: float = defaults.TEMPERATURE
    top_k: int = defaults.TOP_K
    top_p: float = defaults.TOP_P
    seed: int | None = None
    max_seconds: float = defaults.MAX_SECONDS
    speaker: int = 0
    adapter: VoiceAdapter | None = None
    """A trained voice's LoRA adapter to speak with (None: the base model)."""


@dataclass(frozen=True)
class GenerationTimings:
    """Where the time went, in seconds; ``real_time_factor`` < 1 is faster than real time."""

    prefill_s: float
    per_frame_s: float
    total_s: float
    real_time_factor: float
    first_audio_s: float | None = None  # from the call to the first audio handed to on_audio

    @classmethod
    def measured(
        cls, started: float, stamps: list[float], finished: float, audio_seconds: float
    ) -> GenerationTimings:
        """From the call's start, each frame's perf_counter stamp, and the call's end."""
        total = finished - started
        prefill = stamps[0] - started if stamps else total
        per_frame = (stamps[-1] - stamps[0]) / (len(stamps) - 1) if len(stamps) > 1 else prefill
        return cls(
            prefill_s=prefill,
            per_frame_s=per_frame,
            total_s=total,
            real_time_factor=total / audio_seconds if audio_seconds > 0 else math.inf,
        )


@dataclass(frozen=True)
class TakePart:
    """One chunk of a long take: its text, the pause after it, and the take made for it."""

    text: str
    pause_after: float
    result: GenerationResult


@dataclass(frozen=True)
class GenerationResult:
    """A finished take: audio, its codes (frames x codebooks) and how it was made."""

    audio: np.ndarray
    codes: np.ndarray
    frames: int
    stopped_by: str  # "end-frame" or "max-length"
    seed: int
    timings: GenerationTimings
    device: str
    dtype: str
    engine: str
    sample_rate: int = SAMPLE_RATE
    notices: tuple[str, ...] = field(default_factory=tuple)
    parts: tuple[TakePart, ...] = ()  # a long text's chunks, each its own take, in order

    @property
    def seconds(self) -> float:
        return len(self.audio) / self.sample_rate

    @property
    def codes_sha256(self) -> str:
        """A digest of the codes (their int64 bytes and shape): equal codes, equal digest."""
        codes = np.ascontiguousarray(self.codes, dtype=np.int64)
        return hashlib.sha256(codes.tobytes() + str(codes.shape).encode()).hexdigest()


class Engine(Protocol):
    """A loaded CSM model that turns requests into takes."""

    @property
    def name(self) -> str:
        """Short engine name ("transformers", "fast")."""
        ...

    @property
    def model_dir(self) -> Path:
        """The checkpoint folder it loaded."""
        ...

    @property
    def device(self) -> str:
        """torch device it runs on ("cpu", "cuda")."""
        ...

    @property
    def dtype(self) -> str:
        """Weight dtype ("float32", "bfloat16")."""
        ...

    @property
    def device_name(self) -> str:
        """A human name for the device: the GPU's name, or "CPU"."""
        ...

    @property
    def load_seconds(self) -> float:
        """How long loading took."""
        ...

    def generate(
        self,
        request: GenerationRequest,
        on_progress: ProgressCallback | None = None,
        should_stop: StopCheck | None = None,
        on_audio: AudioCallback | None = None,
    ) -> GenerationResult:
        """Speak ``request.text`` in the voice of ``request.references``.

        With ``on_audio`` the take's audio is handed over in pieces while it is generated (the
        fast engine streams; the transformers engine hands it over in one piece at the end).
        """
        ...


class BatchEngine(Engine, Protocol):
    """An engine that also makes several takes in one voice at once.

    Callers go through :func:`desktop_app.inference.batch.generate_batch`, which checks that the
    requests share one voice prompt and one set of sampling settings.
    """

    def generate_batch(
        self,
        requests: Sequence[GenerationRequest],
        on_progress: ProgressCallback | None = None,
        should_stop: StopCheck | None = None,
        on_part_audio: PartAudioCallback | None = None,
    ) -> list[GenerationResult]:
        """One take per request, in order; ``on_part_audio`` streams them one after another."""
        ...
