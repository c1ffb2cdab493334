"""Best of N: N candidates of a text with seeds ``seed, seed+1, ...`` made as one batch, each
checked, the best kept.

For a text of several chunks every candidate is a whole long take (candidate ``j``'s chunk ``i``
has seed ``seed + j + i``, exactly the chunk that the take with seed ``seed + j`` has), and the
choice is made chunk by chunk, so one bad sentence is replaced without redoing the others. All
``N x chunks`` takes go through the engine's batched loop together.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from desktop_app.checks.take_check import (
    CheckedTake,
    TakeCheck,
    TakeChecker,
    combine_checks,
    rank_key,
)
from desktop_app.inference.batch import generate_batch
from desktop_app.inference.engine import (
    AudioCallback,
    BatchEngine,
    GenerationRequest,
    GenerationResult,
    ProgressCallback,
    StopCheck,
    TakePart,
)
from desktop_app.inference.long_text import assemble, chunk_requests

MAX_CANDIDATES = 8


@dataclass(frozen=True)
class Candidate:
    """One candidate take (or chunk of one): its seed, the checked take and its check."""

    seed: int
    result: GenerationResult
    check: TakeCheck


@dataclass(frozen=True)
class ChunkChoice:
    """The candidates of one chunk (the whole text when it is one chunk) and the one kept."""

    text: str
    pause_after: float
    candidates: tuple[Candidate, ...]
    chosen: int

    @property
    def best(self) -> Candidate:
        return self.candidates[self.chosen]


@dataclass(frozen=True)
class BestOf:
    """The kept take (trimmed), its check, and every chunk's candidates."""

    result: GenerationResult
    check: TakeCheck
    chunks: tuple[ChunkChoice, ...]
    seed: int  # candidate j's seed is seed + j

    def with_choice(self, chunk: int, candidate: int) -> BestOf:
        """The same candidates with another one kept for ``chunk`` (the take joined again)."""
        chunks = list(self.chunks)
        chunks[chunk] = dataclasses.replace(chunks[chunk], chosen=candidate)
        result, check = _join(chunks, self.seed, self.result.timings.total_s)
        return BestOf(result, check, tuple(chunks), self.seed)


def make_best_of(
    engine: BatchEngine,
    request: GenerationRequest,
    candidates: int,
    checker: TakeChecker,
    on_progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
    on_audio: AudioCallback | None = None,
    on_checking: Callable[[int, int], None] | None = None,
) -> BestOf:
    """Make ``candidates`` takes of ``request`` in one batch, check them, keep the best.

    ``on_audio`` gets the kept take once it is chosen (so the first audio waits for the whole
    batch and its checks). ``on_checking`` gets (candidates checked, of how many).
    """
    if not 1 <= candidates <= MAX_CANDIDATES:
        from desktop_app.errors import RequestError

        raise RequestError(f"--candidates must be 1 to {MAX_CANDIDATES}, not {candidates}")
    started = time.perf_counter()
    seed = request.seed if request.seed is not None else random.randrange(2**31)
    base = dataclasses.replace(request, seed=seed)
    chunk_reqs, pauses, _ = chunk_requests(base)
    requests = [
        dataclasses.replace(r, seed=(seed + j + i) % 2**31)
        for j in range(candidates)
        for i, r in enumerate(chunk_reqs)
    ]
    results = generate_batch(engine, requests, on_progress, should_stop)
    count = len(chunk_reqs)
    chunks: list[ChunkChoice] = []
    done = 0
    for i, (chunk_req, pause) in enumerate(zip(chunk_reqs, pauses, strict=True)):
        found: list[Candidate] = []
        for j in range(candidates):
            row = requests[j * count + i]
            checked: CheckedTake = checker.check(
                row, results[j * count + i], should_stop=should_stop
            )
            found.append(Candidate(int(row.seed or 0), checked.result, checked.check))
            done += 1
            if on_checking is not None:
                on_checking(done, len(requests))
        chosen = min(range(candidates), key=lambda k: (rank_key(found[k].check), k))
        chunks.append(ChunkChoice(chunk_req.text, pause, tuple(found), chosen))
    result, check = _join(chunks, seed, time.perf_counter() - started)
    if on_audio is not None:
        on_audio(result.audio)
    return BestOf(result, check, tuple(chunks), seed)


def _join(
    chunks: list[ChunkChoice], seed: int, seconds: float
) -> tuple[GenerationResult, TakeCheck]:
    """The kept take: the chosen candidate, or the chosen chunks joined (each already trimmed)
    with their checks combined."""
    if len(chunks) == 1:
        best = chunks[0].best
        timings = dataclasses.replace(best.result.timings, total_s=seconds)
        return dataclasses.replace(best.result, timings=timings), best.check
    parts = tuple(TakePart(c.text, c.pause_after, c.best.result) for c in chunks)
    return assemble(parts, seed, seconds), combine_checks([c.best.check for c in chunks])


@dataclass(frozen=True)
class MadeTake:
    """A take as every face keeps it: the (trimmed) result, its check, and the candidates."""

    result: GenerationResult
    check: TakeCheck | None
    best_of: BestOf | None = None


def make_take(
    engine: BatchEngine,
    request: GenerationRequest,
    checker: TakeChecker | None,
    candidates: int = 1,
    on_progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
    on_audio: AudioCallback | None = None,
    on_checking: Callable[[int, int], None] | None = None,
) -> MadeTake:
    """Say ``request`` and listen back: one take checked, or the best of ``candidates``.

    Without a checker (checks off) the take is kept as made. With one take, ``on_audio`` hears
    it while it is made (untrimmed); with candidates, once the best is chosen.

    Raises:
        RequestError: candidates asked for with the checks off.
    """
    from desktop_app.inference.long_text import speak

    if candidates > 1:
        if checker is None:
            from desktop_app.errors import RequestError

            raise RequestError("best of N picks by the checks: turn the checks on (no --no-check)")
        best = make_best_of(
            engine, request, candidates, checker, on_progress, should_stop, on_audio, on_checking
        )
        return MadeTake(best.result, best.check, best)
    result = speak(engine, request, on_progress, should_stop, on_audio)
    if checker is None:
        return MadeTake(result, None)
    if on_checking is not None:
        on_checking(0, 1)
    checked = checker.check(request, result, should_stop=should_stop)
    if on_checking is not None:
        on_checking(1, 1)
    return MadeTake(checked.result, checked.check)
