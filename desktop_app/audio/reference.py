"""A voice reference: an audio file turned into clean 24 kHz mono speech the model can clone."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from desktop_app.audio import dsp
from desktop_app.audio.io import read_audio
from desktop_app.errors import AudioFileError

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


def load_reference(path: str | os.PathLike[str], *, denoise: bool = False) -> np.ndarray:
    """Read an audio file and prepare it as a voice reference (see :func:`prepare_reference`)."""
    decoded = read_audio(path)
    return prepare_reference(
        decoded.samples, decoded.sample_rate, denoise=denoise, source=str(Path(path))
    )
