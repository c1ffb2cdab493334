"""A voice reference: an audio file turned into clean 24 kHz mono speech the model can clone."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from desktop_app.audio import dsp
from desktop_app.audio.io import StopCheck, read_audio, read_audio_bytes
from desktop_app.errors import AudioFileError, RequestError

MIN_REFERENCE_SECONDS = 2.0
RECOMMENDED = "6-30 s of clean natural speech"


def prepare_reference(
    samples: np.ndarray, rate: int, *, denoise: bool = False, source: str = "the recording"
) -> np.ndarray:
    """Mix to mono, resample to 24 kHz, trim silence, normalize, optionally denoise.

    Raises:
        AudioFileError: the audio is silent or shorter than two seconds once silence is trimmed.
    """
    mono = dsp.remove_dc(dsp.to_mono(samples))
    if mono.size == 0:
        raise AudioFileError(f"{source} holds no audio; record or choose another file")
    audio = dsp.resample(mono, rate, dsp.MODEL_RATE)
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if dsp.dbfs(peak) < dsp.SILENCE_FLOOR_DBFS:
        raise AudioFileError(
            f"{source} is silent (peak {dsp.dbfs(peak):.0f} dBFS); check the microphone and "
            f"record {RECOMMENDED}"
        )
    audio = dsp.trim_silence(audio, dsp.MODEL_RATE)
    seconds = audio.size / dsp.MODEL_RATE
    if seconds < MIN_REFERENCE_SECONDS:
        raise AudioFileError(
            f"{source} has only {seconds:.1f} s of sound; a voice reference needs at least "
            f"{MIN_REFERENCE_SECONDS:.0f} s ({RECOMMENDED} works best)"
        )
    if denoise:
        audio = dsp.denoise(audio, dsp.MODEL_RATE)
    return dsp.normalize_loudness(audio)


def load_reference(
    path: str | os.PathLike[str], *, denoise: bool = False, source: str | None = None
) -> np.ndarray:
    """Read an audio file (at most :data:`~desktop_app.defaults.MAX_CLIP_SECONDS`) and prepare
    it as a voice reference (see :func:`prepare_reference`); ``source`` names it in errors
    (default: its path)."""
    decoded = read_audio(path)
    return prepare_reference(
        decoded.samples, decoded.sample_rate, denoise=denoise, source=source or str(Path(path))
    )


def reference_from_bytes(
    data: bytes, *, what: str, should_stop: StopCheck | None = None
) -> np.ndarray:
    """:func:`load_reference` for bytes from outside (an upload, a bundle's member), opened by
    their content and decoded in blocks that ``should_stop`` can end."""
    decoded = read_audio_bytes(data, what=what, should_stop=should_stop)
    return prepare_reference(decoded.samples, decoded.sample_rate, source=what)


class ClipLike(Protocol):
    """A clip as the window or the library holds it: audio at ``rate`` and its transcript."""

    @property
    def audio(self) -> np.ndarray: ...

    @property
    def transcript(self) -> str: ...


def check_transcripts(clips: Sequence[ClipLike]) -> None:
    """Every clip has a transcript.

    Raises:
        RequestError: names the first clip without one.
    """
    for number, clip in enumerate(clips, start=1):
        if not clip.transcript.strip():
            raise RequestError(
                f"clip {number} has no transcript; select it and type exactly what is said in it"
            )


def prepare_clips(
    clips: Sequence[ClipLike], *, rate: int = dsp.MODEL_RATE, denoise: bool = False
) -> list[np.ndarray]:
    """Each clip's audio prepared as a voice reference (see :func:`prepare_reference`), in order.

    The one way clips become what the model gets: for a take (in the worker thread) and for a
    voice saved in the library.

    Raises:
        RequestError: a clip without transcript.
        AudioFileError: a clip that is silent or too short.
    """
    check_transcripts(clips)
    return [
        prepare_reference(clip.audio, rate, denoise=denoise, source=f"clip {number}")
        for number, clip in enumerate(clips, start=1)
    ]
