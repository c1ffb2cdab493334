"""Long texts: one chunk per sentence (or clause), generated as one batch, joined seamlessly.

The chunks share the request's voice and settings; chunk ``i`` uses seed ``seed + i``, so any
chunk can be made again alone with the same result, or with a new seed to replace just that
part. The joined take puts the chunker's pause (longer after a paragraph) between chunks; each
chunk fades out and the next fades in over a few milliseconds, so the join has no step. Streamed,
the chunks are joined the same way as they arrive (:class:`JoinedStream`), so what was heard is
the take sample for sample.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Sequence

import numpy as np

from desktop_app.inference.batch import generate_batch
from desktop_app.inference.engine import (
    SAMPLE_RATE,
    AudioCallback,
    BatchEngine,
    GenerationRequest,
    GenerationResult,
    GenerationTimings,
    ProgressCallback,
    StopCheck,
    TakePart,
)
from desktop_app.inference.text import MAX_CHARS, split_text

FADE_SECONDS = 0.012
"""Length of the fade at each side of a join."""


def is_long(text: str, max_chars: int = MAX_CHARS) -> bool:
    """Whether ``text`` is said in more than one chunk."""
    return len(split_text(text, max_chars)) > 1


def longest_take_seconds(request: GenerationRequest, max_chars: int = MAX_CHARS) -> float:
    """The most audio ``request`` can make: each chunk's cap plus the pauses between them."""
    chunks = split_text(request.text, max_chars)
    if len(chunks) <= 1:
        return request.max_seconds
    return len(chunks) * request.max_seconds + sum(chunk.pause_after for chunk in chunks)


def chunk_requests(
    request: GenerationRequest, max_chars: int = MAX_CHARS
) -> tuple[list[GenerationRequest], list[float], int]:
    """One request per chunk (``max_seconds`` caps each), the pauses, and the base seed."""
    seed = request.seed if request.seed is not None else random.randrange(2**31)
    chunks = split_text(request.text, max_chars)
    requests = [
        dataclasses.replace(request, text=chunk.text, seed=(seed + i) % 2**31)
        for i, chunk in enumerate(chunks)
    ]
    return requests, [chunk.pause_after for chunk in chunks], seed


def speak(
    engine: BatchEngine,
    request: GenerationRequest,
    on_progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
    on_audio: AudioCallback | None = None,
) -> GenerationResult:
    """Say ``request.text``: one take, or for a text of several chunks one batch joined; either
    way ``on_audio`` gets the take's audio as it is made (see :func:`generate_long`)."""
    if not is_long(request.text):
        return engine.generate(request, on_progress, should_stop, on_audio)
    return generate_long(engine, request, on_progress, should_stop, on_audio=on_audio)


def generate_long(
    engine: BatchEngine,
    request: GenerationRequest,
    on_progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
    max_chars: int = MAX_CHARS,
    on_audio: AudioCallback | None = None,
) -> GenerationResult:
    """Say a long text: its chunks in one batch, joined; the parts are kept in the result.

    With ``on_audio`` the joined take streams while the batch runs: the first chunk as it is
    made, each later one once the chunk before it has ended (catching up on what it has made by
    then). A chunk's last few milliseconds wait until it has ended, for the join's fade. The
    pieces, joined, are the take sample for sample.
    """
    started = time.perf_counter()
    requests, pauses, seed = chunk_requests(request, max_chars)
    joiner = JoinedStream(on_audio, pauses) if on_audio else None
    results = generate_batch(
        engine, requests, on_progress, should_stop, joiner.feed if joiner else None
    )
    parts = tuple(
        TakePart(r.text, pause, result)
        for r, pause, result in zip(requests, pauses, results, strict=True)
    )
    take = assemble(parts, seed, time.perf_counter() - started)
    if joiner is not None:
        joiner.close()
        first = joiner.first_at - started if joiner.first_at is not None else take.timings.total_s
        take = dataclasses.replace(
            take, timings=dataclasses.replace(take.timings, first_audio_s=first)
        )
    return take


class JoinedStream:
    """Joins parts that arrive piece by piece, as :func:`join_audio` joins whole ones.

    Part ``i`` is faded in over its first samples (``i > 0``) and, unless it is the last, faded
    out over its last ones, then followed by ``pauses[i]`` of silence. Samples go on to
    ``on_audio`` as soon as their fade is known: a part's last fade length is held back until
    the part has ended (a piece of a later part, or :meth:`close`).
    """

    def __init__(
        self,
        on_audio: AudioCallback,
        pauses: Sequence[float],
        rate: int = SAMPLE_RATE,
    ) -> None:
        self.on_audio, self.pauses, self.rate = on_audio, list(pauses), rate
        self.fade = max(1, int(FADE_SECONDS * rate))
        self.ramp = (0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, self.fade))).astype(np.float32)
        self.part = 0  # the part now arriving
        self.samples = np.zeros(0, dtype=np.float32)  # all of it so far
        self.emitted = 0  # how many of those went on
        self.first_at: float | None = None  # perf_counter when the first samples went on

    def feed(self, index: int, piece: np.ndarray) -> None:
        """Part ``index`` goes on with ``piece``; the parts before it have ended."""
        while self.part < index:
            self._end_part()
        self.samples = np.concatenate([self.samples, np.asarray(piece, dtype=np.float32)])
        last = self.part == len(self.pauses) - 1
        self._emit(self.samples.size if last else self.samples.size - self.fade, ended=False)

    def close(self) -> None:
        """All parts have ended: hand over what was held back, and any pauses still due."""
        while self.part < len(self.pauses):
            self._end_part()

    def _end_part(self) -> None:
        self._emit(self.samples.size, ended=True)
        if self.part < len(self.pauses) - 1:
            self._send(np.zeros(round(self.pauses[self.part] * self.rate), dtype=np.float32))
        self.part += 1
        self.samples = np.zeros(0, dtype=np.float32)
        self.emitted = 0

    def _emit(self, upto: int, ended: bool) -> None:
        if upto <= self.emitted:
            return
        out = self.samples[self.emitted : upto].copy()
        at = np.arange(self.emitted, upto)
        if self.part > 0:
            fading = at < self.fade
            out[fading] *= self.ramp[at[fading]]
        if ended and self.part < len(self.pauses) - 1:
            size = self.samples.size
            fading = at >= size - min(self.fade, size)
            out[fading] *= self.ramp[size - 1 - at[fading]]
        self.emitted = upto
        self._send(out)

    def _send(self, audio: np.ndarray) -> None:
        if audio.size:
            if self.first_at is None:
                self.first_at = time.perf_counter()
            self.on_audio(audio)


def replace_part(take: GenerationResult, index: int, result: GenerationResult) -> GenerationResult:
    """The same long take with part ``index`` made again (``result``)."""
    parts = list(take.parts)
    parts[index] = dataclasses.replace(parts[index], result=result)
    return assemble(tuple(parts), take.seed, result.timings.total_s)


def assemble(parts: Sequence[TakePart], seed: int, seconds: float) -> GenerationResult:
    """Join the parts into one take; ``seconds`` is the wall time it took."""
    first = parts[0].result
    audio = join_audio([p.result.audio for p in parts], [p.pause_after for p in parts])
    audio_seconds = len(audio) / SAMPLE_RATE
    frames = sum(p.result.frames for p in parts)
    timings = GenerationTimings(
        prefill_s=max(p.result.timings.prefill_s for p in parts),
        per_frame_s=seconds / frames if frames else 0.0,
        total_s=seconds,
        real_time_factor=seconds / audio_seconds if audio_seconds else float("inf"),
    )
    ended = all(p.result.stopped_by == "end-frame" for p in parts)
    return GenerationResult(
        audio=audio,
        codes=np.concatenate([p.result.codes for p in parts], axis=0),
        frames=frames,
        stopped_by="end-frame" if ended else "max-length",
        seed=seed,
        timings=timings,
        device=first.device,
        dtype=first.dtype,
        engine=first.engine,
        notices=tuple(dict.fromkeys(n for p in parts for n in p.result.notices)),
        parts=tuple(parts),
    )


def join_audio(
    pieces: Sequence[np.ndarray], pauses: Sequence[float], rate: int = SAMPLE_RATE
) -> np.ndarray:
    """Pieces with the given pauses between them, each join faded out and in (no step)."""
    out: list[np.ndarray] = []
    joiner = JoinedStream(out.append, list(pauses)[: len(pieces)], rate)
    for index, piece in enumerate(pieces):
        joiner.feed(index, piece)
    joiner.close()
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)
