"""Checking a take: intelligibility (WER/CER against the text), voice match (speaker-embedding
cosine against the reference clips), the ending (end frame or length cap; the tail trimmed),
long pauses and clipping; then one verdict with reasons in the user's words.

Each part runs when its model is there: without a recognition model the words are not checked,
without a speaker model the voice is not; the ending, pauses and clipping need none (the speech
detector ships with silero-vad).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from desktop_app.audio import dsp
from desktop_app.checks.ending import Ending, examine
from desktop_app.checks.listen import NoSpeechError, Progress, transcribe_audio
from desktop_app.checks.text_match import TextMatch, compare_text, describe_differences
from desktop_app.inference.asr import SpeechRecognizer
from desktop_app.inference.engine import (
    GenerationRequest,
    GenerationResult,
    ReferenceClip,
    StopCheck,
)
from desktop_app.inference.speaker import SPEAKER_RATE, SpeakerEncoder, similarity

GOOD, CHECK, BAD = "good", "check", "bad"
VERDICTS = (GOOD, CHECK, BAD)

WER_BAD = 0.3
"""Above this share of wrong words the take is bad; any word wrong makes it worth a check."""
VOICE_CHECK = 0.80
VOICE_BAD = 0.60
"""Speaker similarity under which a take is worth a check / bad. WavLM x-vectors of one speaker
usually score above 0.86 (the model card's threshold); these are starting points for cloned
speech, not measured on CSM here."""


@dataclass(frozen=True)
class TakeCheck:
    """The scores of one take and what they mean. ``None``: not measured (no model)."""

    verdict: str
    reasons: tuple[str, ...]
    wer: float | None = None
    cer: float | None = None
    similarity: float | None = None
    ended: bool = False
    trimmed_s: float = 0.0
    heard: str = ""
    word_errors: int | None = None
    words: int | None = None  # words in the (normalised) text
    skipped: tuple[str, ...] = ()
    changed: tuple[tuple[str, str], ...] = ()
    added: tuple[str, ...] = ()
    long_pauses: tuple[tuple[float, float], ...] = ()
    clipped_spots: int = 0
    not_checked: tuple[str, ...] = field(default_factory=tuple)

    def as_json(self) -> dict[str, Any]:
        """The report's ``"check"``: wer, cer, similarity, ended, trimmed_s, verdict, reasons
        (and the details behind them)."""
        return {
            "wer": _round(self.wer),
            "cer": _round(self.cer),
            "similarity": _round(self.similarity),
            "ended": self.ended,
            "trimmed_s": round(self.trimmed_s, 3),
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "heard": self.heard,
            "word_errors": self.word_errors,
            "words": self.words,
            "skipped": list(self.skipped),
            "changed": [list(pair) for pair in self.changed],
            "added": list(self.added),
            "long_pauses": [list(p) for p in self.long_pauses],
            "clipped_spots": self.clipped_spots,
            "not_checked": list(self.not_checked),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TakeCheck:
        """Back from :meth:`as_json` (as kept in the library)."""
        return cls(
            verdict=str(data["verdict"]),
            reasons=tuple(data.get("reasons", ())),
            wer=data.get("wer"),
            cer=data.get("cer"),
            similarity=data.get("similarity"),
            ended=bool(data.get("ended", False)),
            trimmed_s=float(data.get("trimmed_s", 0.0)),
            heard=str(data.get("heard", "")),
            word_errors=data.get("word_errors"),
            words=data.get("words"),
            skipped=tuple(data.get("skipped", ())),
            changed=tuple((a, b) for a, b in data.get("changed", ())),
            added=tuple(data.get("added", ())),
            long_pauses=tuple((a, b) for a, b in data.get("long_pauses", ())),
            clipped_spots=int(data.get("clipped_spots", 0)),
            not_checked=tuple(data.get("not_checked", ())),
        )

    @property
    def summary(self) -> str:
        """One line: the verdict, then the reasons ("good" alone when there are none)."""
        return self.verdict if not self.reasons else f"{self.verdict}: {'; '.join(self.reasons)}"


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


@dataclass(frozen=True)
class CheckedTake:
    """A take after listening back: its audio trimmed (codes untouched) and its check."""

    result: GenerationResult
    check: TakeCheck


class TakeChecker:
    """Listens to takes with the loaded recogniser and speaker model (either may be absent)."""

    def __init__(
        self,
        recognizer: SpeechRecognizer | None = None,
        speaker: SpeakerEncoder | None = None,
    ) -> None:
        self.recognizer = recognizer
        self.speaker = speaker
        self._voice: tuple[tuple[bytes, ...], np.ndarray] | None = None  # by the clips' content

    def voice_embedding(self, references: Sequence[ReferenceClip]) -> np.ndarray | None:
        """The reference clips' speaker embedding (kept for the next take of the same voice)."""
        if self.speaker is None or not references:
            return None
        key = tuple(hashlib.blake2b(r.audio.tobytes(), digest_size=16).digest() for r in references)
        if self._voice is None or self._voice[0] != key:
            clips = [dsp.resample(r.audio, 24_000, SPEAKER_RATE) for r in references]
            self._voice = (key, self.speaker.embed_clips(clips))
        return self._voice[1]

    def check(
        self,
        request: GenerationRequest,
        result: GenerationResult,
        on_progress: Progress | None = None,
        should_stop: StopCheck | None = None,
    ) -> CheckedTake:
        """Listen to ``result`` (a take of ``request``): trim its tail and score it."""
        trimmed, ending = examine(result.audio, result.sample_rate)
        match: TextMatch | None = None
        not_checked: list[str] = []
        heard = ""
        if self.recognizer is None:
            not_checked.append("words (no speech-recognition model)")
        else:
            if ending.speech:
                with contextlib.suppress(NoSpeechError):  # heard nothing: every word skipped
                    heard = transcribe_audio(
                        self.recognizer,
                        trimmed,
                        result.sample_rate,
                        what="the take",
                        on_progress=on_progress,
                        should_stop=should_stop,
                    ).text
            match = compare_text(request.text, heard, self.recognizer.normalize)
        voice: float | None = None
        reference = self.voice_embedding(request.references)
        if self.speaker is None:
            not_checked.append("voice (no speaker model)")
        elif reference is None:
            not_checked.append("voice (no reference clips)")
        elif ending.speech:
            take = self.speaker.embed(dsp.resample(trimmed, result.sample_rate, SPEAKER_RATE))
            voice = similarity(take, reference)
        ended = result.stopped_by == "end-frame"
        verdict, reasons = judge(match, voice, result, ending.speech != (), ending, request)
        check = TakeCheck(
            verdict=verdict,
            reasons=tuple(reasons),
            wer=match.wer if match else None,
            cer=match.cer if match else None,
            similarity=voice,
            ended=ended,
            trimmed_s=ending.trimmed_s,
            heard=heard,
            word_errors=match.errors if match else None,
            words=len(match.expected.split()) if match else None,
            skipped=match.skipped if match else (),
            changed=match.changed if match else (),
            added=match.added if match else (),
            long_pauses=tuple((round(p.start, 2), round(p.end, 2)) for p in ending.long_pauses),
            clipped_spots=ending.clipped_spots,
            not_checked=tuple(not_checked),
        )
        return CheckedTake(dataclasses.replace(result, audio=trimmed), check)


def judge(
    match: TextMatch | None,
    voice: float | None,
    result: GenerationResult,
    heard_speech: bool,
    ending: Ending,
    request: GenerationRequest,
) -> tuple[str, list[str]]:
    """The verdict and its reasons, worst first."""
    bad: list[str] = []
    check: list[str] = []
    if not heard_speech:
        bad.append("no speech was heard in the take")
    if match is not None and heard_speech:
        differences = describe_differences(match)
        if match.wer > WER_BAD:
            bad.append(f"{match.wer:.0%} of the words are wrong")
            bad += differences
        else:
            check += differences
    if voice is not None:
        if voice < VOICE_BAD:
            bad.append(f"voice differs from the reference: {voice:.2f}")
        elif voice < VOICE_CHECK:
            check.append(f"voice differs from the reference: {voice:.2f}")
    unended = _unended(result, request)
    if unended:
        check.append(unended)
    for pause in ending.long_pauses:
        check.append(f"a {pause.seconds:.1f} s silence at {pause.start:.1f} s")
    if ending.clipped_spots:
        check.append(f"clipped in {ending.clipped_spots} place(s)")
    if bad:
        return BAD, bad + check
    return (CHECK, check) if check else (GOOD, [])


def _unended(result: GenerationResult, request: GenerationRequest) -> str:
    limit = f"{request.max_seconds:g} s limit"
    if result.parts:
        open_ended = [
            i + 1 for i, p in enumerate(result.parts) if p.result.stopped_by != "end-frame"
        ]
        if not open_ended:
            return ""
        which = ", ".join(map(str, open_ended[:5])) + ("..." if len(open_ended) > 5 else "")
        return f"chunk(s) {which} ran to the {limit} without ending"
    if result.stopped_by != "end-frame":
        return f"ran to the {limit} without ending"
    return ""


def rank_key(check: TakeCheck) -> tuple[float, float, int]:
    """Sorts the best candidate first: fewest word errors, then the highest voice match, then
    ended by the end frame."""
    errors = float(check.word_errors) if check.word_errors is not None else float("inf")
    voice = -(check.similarity if check.similarity is not None else -1.0)
    return (errors, voice, 0 if check.ended else 1)


def combine_checks(checks: Sequence[TakeCheck], pauses: Sequence[float] = ()) -> TakeCheck:
    """One check for a take joined from checked chunks: errors and words added up (so the WER is
    the whole text's), the voice averaged, ended only if every chunk ended, the worst verdict,
    and each chunk's reasons labelled with its number."""
    if len(checks) == 1:
        return checks[0]
    errors = [c.word_errors for c in checks]
    words = [c.words for c in checks]
    total_errors = None if None in errors else sum(e or 0 for e in errors)
    total_words = None if None in words else sum(w or 0 for w in words)
    wer = (
        total_errors / total_words
        if total_errors is not None and total_words
        else (None if total_errors is None else float(total_errors > 0))
    )
    cers = [c.cer for c in checks if c.cer is not None]
    voices = [c.similarity for c in checks if c.similarity is not None]
    verdict = max((c.verdict for c in checks), key=VERDICTS.index)
    return TakeCheck(
        verdict=verdict,
        reasons=tuple(
            f"chunk {i + 1}: {reason}" for i, c in enumerate(checks) for reason in c.reasons
        ),
        wer=wer,
        cer=sum(cers) / len(cers) if len(cers) == len(checks) else None,
        similarity=sum(voices) / len(voices) if voices else None,
        ended=all(c.ended for c in checks),
        trimmed_s=checks[-1].trimmed_s,
        heard=" ".join(c.heard for c in checks if c.heard),
        word_errors=total_errors,
        words=total_words,
        skipped=tuple(s for c in checks for s in c.skipped),
        changed=tuple(s for c in checks for s in c.changed),
        added=tuple(s for c in checks for s in c.added),
        clipped_spots=sum(c.clipped_spots for c in checks),
        not_checked=tuple(dict.fromkeys(n for c in checks for n in c.not_checked)),
    )
