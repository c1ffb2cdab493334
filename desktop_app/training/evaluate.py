"""What training bought, measured: the held-out sentences spoken by the base model and by the
trained voice (both with the same reference clips and seeds), every take checked (words, voice
match against the held-out recording of that sentence, ending), side by side."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from desktop_app.audio import dsp
from desktop_app.checks.take_check import TakeChecker
from desktop_app.inference import GenerationRequest, ReferenceClip
from desktop_app.inference.adapter import VoiceAdapter
from desktop_app.inference.engine import BatchEngine, StopCheck, check_stop
from desktop_app.inference.speaker import SPEAKER_RATE, similarity
from desktop_app.training.training_set import TrainingSet
from desktop_app.training.utterances import RATE, Utterance

MAX_SENTENCES = 10
"""At most this many sentences are spoken per side."""
PROXY_NOTE = "measured with random test weights: a proxy of the plumbing, not a measure of quality"


@dataclass(frozen=True)
class Side:
    """One side of the table: its takes' mean scores (None: not measured)."""

    takes: int
    wer: float | None
    voice_match: float | None
    ended: float
    """The share of takes that ended by themselves."""

    def as_json(self) -> dict[str, Any]:
        return {
            "takes": self.takes,
            "wer": None if self.wer is None else round(self.wer, 4),
            "voice_match": None if self.voice_match is None else round(self.voice_match, 4),
            "ended": round(self.ended, 4),
        }


def sentences_of(training_set: TrainingSet) -> tuple[list[Utterance], bool]:
    """The sentences to speak: the held-out ones (True), else some training ones (False)."""
    held = training_set.held_out()
    if held:
        return held[:MAX_SENTENCES], True
    return training_set.training()[:MAX_SENTENCES], False


def evaluate(
    engine: BatchEngine,
    checker: TakeChecker,
    training_set: TrainingSet,
    adapter: VoiceAdapter,
    references: Sequence[ReferenceClip],
    *,
    seed: int = 0,
    test_weights: bool = False,
    on_progress: Callable[[float], None] | None = None,
    should_stop: StopCheck | None = None,
) -> dict[str, Any]:
    """``{"before": Side, "after": Side, "sentences", "held_out", "notes"}`` as JSON-ready data.

    Raises:
        GenerationCancelled: ``should_stop`` said so.
    """
    targets, held_out = sentences_of(training_set)
    sides: dict[str, Side] = {}
    for number, (name, voice) in enumerate((("before", None), ("after", adapter))):
        requests = [
            GenerationRequest(
                u.transcript,
                tuple(references),
                seed=seed + i,
                max_seconds=min(20.0, max(4.0, 1.5 * u.seconds + 1.0)),
                adapter=voice,
            )
            for i, u in enumerate(targets)
        ]
        results = engine.generate_batch(requests, should_stop=should_stop)
        wers, matches, ended = [], [], []
        for request, result, target in zip(requests, results, targets, strict=True):
            check_stop(should_stop)
            checked = checker.check(request, result)
            if checked.check.wer is not None:
                wers.append(checked.check.wer)
            ended.append(result.stopped_by == "end-frame")
            if checker.speaker is not None and checked.result.audio.size:
                take = checker.speaker.embed(
                    dsp.resample(checked.result.audio, result.sample_rate, SPEAKER_RATE)
                )
                recorded = checker.speaker.embed(dsp.resample(target.audio, RATE, SPEAKER_RATE))
                matches.append(similarity(take, recorded))
        sides[name] = Side(
            len(results),
            float(np.mean(wers)) if wers else None,
            float(np.mean(matches)) if matches else None,
            float(np.mean(ended)) if ended else 0.0,
        )
        if on_progress is not None:
            on_progress((number + 1) / 2)
    notes = []
    if not held_out:
        notes.append("no sentence was held out: training sentences were spoken")
    if checker.recognizer is None:
        notes.append("words not checked: no speech-recognition model")
    if checker.speaker is None:
        notes.append("voice match not measured: no speaker model")
    if test_weights:
        notes.append(PROXY_NOTE)
    return {
        "before": sides["before"].as_json(),
        "after": sides["after"].as_json(),
        "sentences": len(targets),
        "held_out": held_out,
        "notes": notes,
    }
