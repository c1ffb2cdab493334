"""The end of a take, and its sound: where the speech stops, trimming what follows, long pauses
inside and clipping.

CSM often runs on past the text without its end frame (to the length cap), ending in silence or
babble. The speech detector (silero-vad) finds the last speech; what follows is cut a moment
after it with a short fade. The codes are not touched: the history keeps the whole take's codes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from desktop_app.audio import dsp
from desktop_app.audio.speech import VAD_RATE, Span, speech_spans

KEEP_AFTER_SPEECH = 0.2
"""Seconds kept after the last speech (breath, decay) before the fade."""
FADE_SECONDS = 0.05
LONG_PAUSE = 1.5
"""A silence inside the take this long or longer is flagged (a long text's own pauses are
0.25-0.7 s)."""
FULL_SCALE = 0.999
CLIPPED_RUN = 3
"""This many samples in a row at full scale count as one clipped spot."""


@dataclass(frozen=True)
class Ending:
    """What was found about a take's sound."""

    speech: tuple[Span, ...]  # where there is speech, seconds into the untrimmed take
    trimmed_s: float  # how much was cut off the end
    long_pauses: tuple[Span, ...]
    clipped_spots: int

    @property
    def speech_end(self) -> float | None:
        return self.speech[-1].end if self.speech else None


def examine(audio: np.ndarray, rate: int) -> tuple[np.ndarray, Ending]:
    """The take with its tail of non-speech trimmed (faded), and what was found."""
    audio = np.asarray(audio, dtype=np.float32)
    spans = tuple(speech_spans(dsp.resample(audio, rate, VAD_RATE)))
    trimmed = trim_after(audio, rate, spans[-1].end) if spans else audio
    pauses = tuple(
        Span(a.end, b.start) for a, b in itertools.pairwise(spans) if b.start - a.end >= LONG_PAUSE
    )
    ending = Ending(spans, (audio.size - trimmed.size) / rate, pauses, clipped_spots(audio))
    return trimmed, ending


def trim_after(audio: np.ndarray, rate: int, speech_end: float) -> np.ndarray:
    """``audio`` cut :data:`KEEP_AFTER_SPEECH` after ``speech_end``, its last part faded out.

    Nothing is cut when less than the fade would be removed.
    """
    cut = round((speech_end + KEEP_AFTER_SPEECH) * rate)
    fade = int(FADE_SECONDS * rate)
    if cut + fade >= audio.size:
        return audio
    out = audio[: cut + fade].copy()
    out[cut:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return out


def clipped_spots(audio: np.ndarray) -> int:
    """How many runs of :data:`CLIPPED_RUN` or more samples sit at full scale."""
    hot = np.abs(audio) >= FULL_SCALE
    if not hot.any():
        return 0
    edges = np.flatnonzero(np.diff(np.concatenate([[0], hot.astype(np.int8), [0]])))
    starts, ends = edges[::2], edges[1::2]
    return int(np.count_nonzero(ends - starts >= CLIPPED_RUN))
