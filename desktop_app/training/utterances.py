"""A recording session cut into utterances at its pauses, transcribed, and screened for what would
teach a voice the wrong thing.

Every step is measured on the audio itself; each utterance that is left out carries the reason in
words a user can act on. The thresholds are the field's own where one exists (Whisper's
``avg_logprob`` below -1.0 and a compression ratio above 2.4 are what its reference decoder calls a
failed window).
"""

from __future__ import annotations

import difflib
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from desktop_app import defaults
from desktop_app.audio import dsp
from desktop_app.audio.speech import VAD_RATE, Span, speech_spans
from desktop_app.inference.asr import ASR_RATE, SpeechRecognizer
from desktop_app.inference.engine import StopCheck, check_stop
from desktop_app.inference.speaker import SPEAKER_RATE, SpeakerEncoder, similarity

RATE = defaults.SAMPLE_RATE
LONGEST = 15.0
"""Utterances are cut at pauses to at most this many seconds."""
SHORTEST = 2.0
"""Shorter speech teaches little and is left out."""
PAD = 0.15
"""Silence kept either side of the speech, so no word is cut."""
JOIN_GAP = 0.35
"""Speech across a shorter pause is one utterance; a longer pause ends one."""
EDGE = 0.05
"""Speech closer than this to the start or end of a recording was cut off there."""
CLIPPED_LEVEL = 0.999
CLIPPED_SHARE = 0.001
"""More than 0.1 % of the samples at full scale: the recording clipped."""
QUIET_DBFS = -40.0
"""Speech whose level is below this is too quiet to learn a voice from."""
UNSURE_LOGPROB = -1.0
REPEATING_RATIO = 2.4
"""Whisper's own limits for a failed window (mean log-probability, zlib compression ratio)."""
OTHER_VOICE_MARGIN = 0.15
"""An utterance whose voice match to the session's voice is this far below the session's median
is taken for another speaker."""

Progress = Callable[[str, float], None]
"""Called with what is being done and the share of it done (0 to 1)."""


@dataclass
class Utterance:
    """One stretch of speech of a session, and what the screening and the user made of it."""

    key: str
    source: str
    start: float
    end: float
    audio: np.ndarray
    """24 kHz mono float32."""
    transcript: str = ""
    given: bool = False
    """The transcript was given (a clip's, or the session's aligned), not heard."""
    problem: str = ""
    """Why the screening leaves it out ("" when it is usable)."""
    excluded: bool = False
    """The user left it out in the review."""

    @property
    def seconds(self) -> float:
        return self.audio.size / RATE

    @property
    def usable(self) -> bool:
        return not self.problem and not self.excluded and bool(self.transcript.strip())


def cut_session(
    audio: np.ndarray, source: str, *, on_progress: Callable[[float], None] | None = None
) -> list[Utterance]:
    """The utterances of one recording (24 kHz mono): speech found by silero-vad, grouped at
    pauses into stretches of at most :data:`LONGEST` seconds. Too short ones and ones cut at the
    recording's edges are kept, marked with their problem, so the review shows them."""
    total = audio.size / RATE
    spans = speech_spans(
        dsp.resample(audio, RATE, VAD_RATE),
        max_span_seconds=LONGEST - 2 * PAD,
        on_progress=on_progress,
    )
    out: list[Utterance] = []
    for span in group_spans(spans, total):
        piece = audio[int(span.start * RATE) : int(span.end * RATE)].copy()
        utterance = Utterance(f"{source}@{span.start:09.3f}", source, span.start, span.end, piece)
        utterance.problem = _edge_problem(span, spans, total) or _length_problem(utterance)
        out.append(utterance)
    return out


def group_spans(spans: Sequence[Span], total: float) -> list[Span]:
    """Speech spans joined across pauses shorter than :data:`JOIN_GAP` (a breath inside a
    sentence) while the group stays within :data:`LONGEST`; a longer pause ends an utterance.
    Each group reaches :data:`PAD` seconds beyond its speech (not past the recording)."""
    groups: list[Span] = []
    for span in spans:
        last = groups[-1] if groups else None
        if (
            last is not None
            and span.start - last.end < JOIN_GAP
            and span.end - last.start <= LONGEST - 2 * PAD
        ):
            groups[-1] = Span(last.start, span.end)
        else:
            groups.append(span)
    return [Span(max(0.0, g.start - PAD), min(total, g.end + PAD)) for g in groups]


def _edge_problem(window: Span, spans: Sequence[Span], total: float) -> str:
    inside = [s for s in spans if window.start <= s.start and s.end <= window.end] or [window]
    if inside[0].start < EDGE:
        return "cut off at the start of the recording"
    if inside[-1].end > total - EDGE:
        return "cut off at the end of the recording"
    return ""


def _length_problem(utterance: Utterance) -> str:
    if utterance.seconds < SHORTEST:
        return f"shorter than {SHORTEST:g} s ({utterance.seconds:.1f} s)"
    return ""


def level_problem(audio: np.ndarray) -> str:
    """Why a stretch of speech is too damaged to learn from ("" when it is not)."""
    clipped = float(np.mean(np.abs(audio) >= CLIPPED_LEVEL)) if audio.size else 0.0
    if clipped > CLIPPED_SHARE:
        return f"clipped ({clipped:.1%} of the samples at full scale; record with less gain)"
    level = dsp.dbfs(dsp.rms(audio))
    if level < QUIET_DBFS:
        return f"too quiet ({level:.0f} dBFS; speak closer or raise the input level)"
    return ""


def transcript_problem(text: str, mean_logprob: float) -> str:
    """Why a heard transcript cannot be trusted ("" when it can)."""
    if not text.strip():
        return "no words were recognised"
    if mean_logprob < UNSURE_LOGPROB:
        return f"the recogniser was unsure of the words (mean log-probability {mean_logprob:.2f})"
    data = text.encode()
    if len(data) > 40 and len(data) / len(zlib.compress(data)) > REPEATING_RATIO:
        return "the recogniser repeated itself (a sign it heard no clear words)"
    return ""


def transcribe(
    utterances: Sequence[Utterance],
    recognizer: SpeechRecognizer,
    *,
    language: str | None = None,
    on_progress: Progress | None = None,
    should_stop: StopCheck | None = None,
) -> list[str]:
    """What Whisper heard in each utterance; those with a given transcript keep it (it wins), the
    others get what was heard, and a problem when the recogniser was unsure."""
    heard: list[str] = []
    for index, utterance in enumerate(utterances):
        check_stop(should_stop)
        if on_progress:
            on_progress("transcribing", index / max(len(utterances), 1))
        scored = recognizer.transcribe_scored(
            dsp.resample(utterance.audio, RATE, ASR_RATE), language=language
        )
        heard.append(scored.text)
        if not utterance.given:
            utterance.transcript = scored.text
            if not utterance.problem:
                utterance.problem = transcript_problem(scored.text, scored.mean_logprob)
    return heard


def align_transcript(text: str, heard: Sequence[str]) -> list[str]:
    """A session's given transcript split among its utterances, by aligning its words with what
    the recogniser heard in each (difflib's opcodes over normalised words): a given word goes to
    the utterance of the heard word it matches or replaces (spread evenly over a replaced run);
    a word the recogniser did not hear stays with the word before it."""
    given = text.split()
    owners = [i for i, part in enumerate(heard) for _ in part.split()]
    matcher = difflib.SequenceMatcher(
        None, [_norm(w) for w in given], [_norm(w) for w in " ".join(heard).split()], False
    )
    owner_of = [0] * len(given)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        for k in range(i1, i2):
            if tag in ("equal", "replace"):
                owner_of[k] = owners[j1 + (k - i1) * (j2 - j1) // (i2 - i1)]
            elif k:  # "delete": not heard
                owner_of[k] = owner_of[k - 1]
    parts: list[list[str]] = [[] for _ in heard]
    current = 0
    for word, owner in zip(given, owner_of, strict=True):
        current = max(current, owner)
        parts[current].append(word)
    return [" ".join(p) for p in parts]


def _norm(word: str) -> str:
    return re.sub(r"[^\w']", "", word.lower())


def screen_levels(utterances: Sequence[Utterance]) -> None:
    """Mark clipped and too quiet utterances."""
    for utterance in utterances:
        if not utterance.problem:
            utterance.problem = level_problem(utterance.audio)


def screen_voices(
    utterances: Sequence[Utterance],
    encoder: SpeakerEncoder,
    *,
    on_progress: Progress | None = None,
    should_stop: StopCheck | None = None,
) -> list[float]:
    """Mark utterances that sound like another speaker than the session's voice.

    The session's voice is the mean embedding of its usable utterances; an utterance whose match
    to it is :data:`OTHER_VOICE_MARGIN` below the median match is taken for another speaker (a
    relative rule: a session of one voice keeps all of it). Returns each utterance's match."""
    vectors = []
    for index, utterance in enumerate(utterances):
        check_stop(should_stop)
        if on_progress:
            on_progress("comparing voices", index / max(len(utterances), 1))
        vectors.append(encoder.embed(dsp.resample(utterance.audio, RATE, SPEAKER_RATE)))
    kept = [v for v, u in zip(vectors, utterances, strict=True) if not u.problem] or vectors
    if not kept:
        return []
    mean = np.mean(kept, axis=0)
    mean = mean / (np.linalg.norm(mean) or 1.0)
    matches = [similarity(v, mean) for v in vectors]
    usual = float(
        np.median([m for m, u in zip(matches, utterances, strict=True) if not u.problem] or matches)
    )
    for match, utterance in zip(matches, utterances, strict=True):
        if not utterance.problem and match < usual - OTHER_VOICE_MARGIN:
            utterance.problem = (
                f"another speaker? (voice match {match:.2f}; the session's usual {usual:.2f})"
            )
    return matches
