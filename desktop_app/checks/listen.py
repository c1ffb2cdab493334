"""Transcribing audio of any length: find the speech, cut it into windows Whisper hears at once
(at pauses), transcribe window by window with progress and cancel, and join the words."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from desktop_app.audio import dsp
from desktop_app.audio.speech import VAD_RATE, speech_spans, windows
from desktop_app.errors import UserError
from desktop_app.inference.asr import ASR_RATE, SpeechRecognizer, Transcript
from desktop_app.inference.engine import StopCheck, check_stop

WINDOW_SECONDS = 28.0
"""Speech is cut at pauses into windows this long at most (Whisper hears 30 s)."""

Progress = Callable[[float], None]
"""Called with the share done, 0 to 1."""


class NoSpeechError(UserError):
    """The audio holds no speech to transcribe."""


def transcribe_audio(
    recognizer: SpeechRecognizer,
    audio: np.ndarray,
    rate: int,
    *,
    what: str = "the audio",
    language: str | None = None,
    on_progress: Progress | None = None,
    should_stop: StopCheck | None = None,
) -> Transcript:
    """The transcript of ``audio`` (any length, any rate), with word times into it.

    Raises:
        NoSpeechError: the speech detector heard no speech in it.
        GenerationCancelled: ``should_stop`` said so (checked between windows).
    """
    assert ASR_RATE == VAD_RATE
    samples = dsp.resample(np.asarray(audio, dtype=np.float32), rate, ASR_RATE)
    total = samples.size / ASR_RATE
    spans = speech_spans(
        samples,
        max_span_seconds=WINDOW_SECONDS - 1.0,
        on_progress=(lambda share: on_progress(0.2 * share)) if on_progress else None,
    )
    if not spans:
        raise NoSpeechError(
            f"no speech was heard in {what}; choose or record a clip of someone speaking"
        )
    parts: list[Transcript] = []
    cut = windows(spans, WINDOW_SECONDS, total=total)
    for index, window in enumerate(cut):
        check_stop(should_stop)
        piece = samples[int(window.start * ASR_RATE) : int(window.end * ASR_RATE)]
        parts.append(recognizer.transcribe(piece, offset=window.start, language=language))
        if on_progress is not None:
            on_progress(0.2 + 0.8 * (index + 1) / len(cut))
    return Transcript(
        " ".join(p.text for p in parts if p.text),
        tuple(w for p in parts for w in p.words),
        language or "",
    )


def trim_to_words(
    audio: np.ndarray, rate: int, transcript: Transcript, start: float, end: float
) -> tuple[int, int]:
    """The sample range of ``[start, end]`` widened so that no word is cut in two.

    A word that the range cuts is kept whole: a clip cut mid-word is a known cause of
    artefacts in the cloned voice.
    """
    for word in transcript.words:
        if word.start < start < word.end:
            start = word.start
        if word.start < end < word.end:
            end = word.end
    return max(0, int(start * rate)), min(audio.size, round(end * rate))
