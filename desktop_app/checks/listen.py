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


MISMATCH_CER = 0.5
"""A given transcript whose characters differ this much from what is heard is flagged."""


def mismatched_transcripts(
    recognizer: SpeechRecognizer, clips: list[tuple[str, np.ndarray, str]], rate: int
) -> list[str]:
    """Notes for the clips whose given transcript does not match their audio: (name, audio,
    transcript) each. A wrong transcript (another clip's, another language's) makes CSM
    mumble, and nothing else would tell the user."""
    from desktop_app.checks.text_match import compare_text

    notes = []
    for name, audio, transcript in clips:
        if not transcript.strip():
            continue
        try:
            heard = transcribe_audio(recognizer, audio, rate, what=name).text
        except NoSpeechError:
            notes.append(f"no speech was heard in {name}; choose a clip of someone speaking")
            continue
        match = compare_text(transcript, heard, recognizer.normalize)
        if match.cer > MISMATCH_CER:
            notes.append(
                f"the transcript of {name} does not match what is heard in it (heard: "
                f"{heard[:80]!r}); a wrong transcript makes the voice mumble: correct it, or "
                f"leave it out to have the clip transcribed"
            )
    return notes
