"""Several takes in one voice, made together: the public way to batch.

The requests must share the voice prompt (references, speaker) and the sampling settings; text,
seed and maximum length may differ. :func:`generate_batch` checks that and hands them to the
engine's own batched call (:class:`~desktop_app.inference.engine.BatchEngine`): the fast engine
decodes them as one batch, the transformers reference one after another.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from desktop_app.inference.engine import (
    AudioCallback,
    BatchEngine,
    Engine,
    GenerationRequest,
    GenerationResult,
    PartAudioCallback,
    ProgressCallback,
    StopCheck,
)


class BatchError(ValueError):
    """The requests cannot share one batch."""


def generate_batch(
    engine: BatchEngine,
    requests: Sequence[GenerationRequest],
    on_progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
    on_part_audio: PartAudioCallback | None = None,
) -> list[GenerationResult]:
    """One take per request, in order (see the module's docstring).

    ``on_part_audio`` streams the takes one after another: it gets (index of the request, the
    audio its take adds), every request's audio in order. ``on_progress`` gets the frames of the
    longest row so far.

    Raises:
        BatchError: the requests do not share one voice prompt and one set of settings.
    """
    if not requests:
        return []
    check_shared(requests)
    return engine.generate_batch(requests, on_progress, should_stop, on_part_audio)


def check_shared(requests: Sequence[GenerationRequest]) -> None:
    """Raise BatchError unless all requests share the first one's voice prompt and settings."""
    first = requests[0]
    wanted = (first.speaker, first.temperature, first.top_k, first.top_p)
    for request in requests[1:]:
        settings = (request.speaker, request.temperature, request.top_k, request.top_p)
        if settings != wanted or not _same_clips(request.references, first.references):
            raise BatchError("a batch shares one voice prompt and one set of sampling settings")


def one_by_one(
    engine: Engine,
    requests: Sequence[GenerationRequest],
    on_progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
    on_part_audio: PartAudioCallback | None = None,
) -> list[GenerationResult]:
    """The batch made one take after another: for engines without a batched loop."""
    return [
        engine.generate(r, on_progress, should_stop, part_stream(on_part_audio, i))
        for i, r in enumerate(requests)
    ]


def part_stream(on_part_audio: PartAudioCallback | None, index: int) -> AudioCallback | None:
    """An engine's ``on_audio`` that hands request ``index``'s pieces to ``on_part_audio``."""
    if on_part_audio is None:
        return None
    return lambda piece: on_part_audio(index, piece)


def _same_clips(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    return len(a) == len(b) and all(
        x is y
        or (
            x.transcript == y.transcript
            and x.speaker == y.speaker
            and np.array_equal(x.audio, y.audio)
        )
        for x, y in zip(a, b, strict=True)
    )
