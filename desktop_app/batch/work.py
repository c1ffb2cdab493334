"""Making one voice's lines: what the local batch and every Ray actor run.

Short lines go as one batch on the fast engine (each row seeded on its own, so a line's codes do
not depend on which lines share its batch: the same seeds give the same codes locally and on a
cluster); a line long enough for several chunks is said as a long take; with ``candidates`` each
line is the best of N. With a checker every take is checked (and its tail trimmed). A line whose
request is refused (a setting, a text that cannot be said) fails alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from desktop_app.errors import GenerationCancelled, UserError
from desktop_app.inference.engine import GenerationRequest, GenerationResult

if TYPE_CHECKING:
    from desktop_app.checks.take_check import TakeChecker
    from desktop_app.inference.engine import BatchEngine

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LineJob:
    """A line to make: its number in the input and its request (references and seed set)."""

    number: int
    request: GenerationRequest


@dataclass(frozen=True)
class MadeLine:
    """What became of a line: its take (and check) or the reason it failed."""

    number: int
    result: GenerationResult | None
    check: dict[str, Any] | None = None  # TakeCheck.as_json()
    error: str = ""
    worker: str = ""  # who made it ("local", or the Ray actor)

    @property
    def codes_hash(self) -> str:
        return self.result.codes_sha256 if self.result is not None else ""


def make_lines(
    engine: BatchEngine,
    jobs: Sequence[LineJob],
    checker: TakeChecker | None = None,
    candidates: int = 1,
    worker: str = "local",
    on_progress: Callable[[int, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[MadeLine]:
    """Make ``jobs`` (lines of one voice), in their order."""
    from desktop_app.checks.best_of import make_take
    from desktop_app.inference.batch import generate_batch
    from desktop_app.inference.long_text import is_long, speak
    from desktop_app.inference.prompt import check_request

    made: dict[int, MadeLine] = {}
    ready: list[LineJob] = []
    for job in jobs:
        try:
            check_request(job.request)
        except UserError as exc:
            made[job.number] = MadeLine(job.number, None, error=str(exc), worker=worker)
        else:
            ready.append(job)
    results: dict[int, GenerationResult] = {}
    if candidates > 1:
        for job in ready:
            take = make_take(
                engine, job.request, checker, candidates, on_progress, should_stop=should_stop
            )
            check = take.check.as_json() if take.check is not None else None
            made[job.number] = MadeLine(job.number, take.result, check, worker=worker)
    else:
        short = [job for job in ready if not is_long(job.request.text)]
        if short:
            batch = generate_batch(engine, [job.request for job in short], on_progress, should_stop)
            results.update(zip((job.number for job in short), batch, strict=True))
        for job in ready:
            if job.number not in results:
                results[job.number] = speak(engine, job.request, on_progress, should_stop)
        for job in ready:
            result, check = results[job.number], None
            if checker is not None:
                checked = checker.check(job.request, result, should_stop=should_stop)
                result, check = checked.result, checked.check.as_json()
            made[job.number] = MadeLine(job.number, result, check, worker=worker)
    return [made[job.number] for job in jobs]


def safe_make_lines(engine: BatchEngine, jobs: Sequence[LineJob], **options: Any) -> list[MadeLine]:
    """:func:`make_lines`, but a user error of the batch fails its lines alone (not the run)."""
    try:
        return make_lines(engine, jobs, **options)
    except GenerationCancelled:
        raise
    except UserError as exc:
        if len(jobs) == 1:
            return [
                MadeLine(jobs[0].number, None, error=str(exc), worker=options.get("worker", ""))
            ]
        # one line spoiled the batch: make each alone, so only that one fails
        out: list[MadeLine] = []
        for job in jobs:
            out += safe_make_lines(engine, [job], **options)
        return out
