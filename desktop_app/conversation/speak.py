"""Speaking a script: line after line, each on top of the conversation so far.

Each speaker gets its own speaker id (in the order they first speak) and its reference turns.
Line *k* is said with every speaker's reference turns, then the most recent lines already made
(their text and the audio that was kept, with their speakers), then its own text: CSM shapes
the new line from the lines before it, as it was trained. Line *k* uses seed ``seed + k``, so
any line can be made again alone. With a checker each line is checked (and trimmed) before it
becomes context, and ``candidates`` makes each line the best of several.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from desktop_app.checks.best_of import make_take
from desktop_app.checks.take_check import TakeCheck, TakeChecker
from desktop_app.conversation.context import ContextPlan, PromptTurn, plan_context
from desktop_app.conversation.script import Script, Turn
from desktop_app.inference.engine import (
    AudioCallback,
    BatchEngine,
    GenerationRequest,
    GenerationResult,
    GenerationTimings,
    ProgressCallback,
    ReferenceClip,
    StopCheck,
    TakePart,
    check_stop,
)
from desktop_app.inference.prompt import SAMPLES_PER_FRAME

if TYPE_CHECKING:
    from desktop_app.checks.best_of import MadeTake
    from desktop_app.inference.adapter import VoiceAdapter


class ConversationEngine(BatchEngine, Protocol):
    """An engine that can say how many context positions a prompt turn takes."""

    @property
    def context_positions(self) -> int: ...

    def max_frames(self, request: GenerationRequest) -> int: ...

    def turn_positions(self, speaker: int, text: str, samples: int) -> int: ...


@dataclass(frozen=True)
class SpokenLine:
    """One line as it was made: the script's turn, its speaker id, the request (its prompt),
    the kept take, its check, and what its prompt held."""

    index: int  # 0-based, in the script's order
    turn: Turn
    speaker_id: int
    request: GenerationRequest
    result: GenerationResult
    check: TakeCheck | None
    context: ContextPlan


LineCallback = Callable[[SpokenLine], None]


def kept_line(
    turn: Turn,
    entry: Mapping[str, object],
    audio: np.ndarray,
    codes: np.ndarray,
    check: TakeCheck | None = None,
) -> SpokenLine:
    """A line made in an earlier run or session, back from its report entry (see
    :func:`desktop_app.conversation.render.report`), its kept audio and its codes: the
    context of lines made again, and a part of the mix as it is."""
    frames = int(str(entry["frames"]))
    if codes.ndim != 2 or not codes.size:
        codes = np.zeros((frames, 0), np.int64)
    result = GenerationResult(
        np.asarray(audio, dtype=np.float32),
        codes,
        frames,
        str(entry["stopped_by"]),
        int(str(entry["seed"])),
        GenerationTimings(0.0, 0.0, 0.0, 0.0),
        "",
        "",
        "kept",
    )
    return SpokenLine(
        int(str(entry["index"])),
        turn,
        int(str(entry["speaker_id"])),
        GenerationRequest(turn.text, seed=result.seed),
        result,
        check,
        ContextPlan((), (), 0, 0, 0),
    )


def as_context(line: SpokenLine) -> ReferenceClip:
    """A made line as a turn of the next lines' prompts: its kept audio, its text, its speaker
    and its codes, cut to the whole frames the (perhaps trimmed) audio still covers, so that the
    fast engine can embed the codes as they are and keep the conversation's cache."""
    audio, codes = line.result.audio, line.result.codes
    frames = min(codes.shape[0], math.ceil(audio.size / SAMPLES_PER_FRAME))
    if codes.ndim != 2 or not codes.shape[1] or not frames:
        return ReferenceClip(audio, line.turn.text, line.speaker_id)
    size = frames * SAMPLES_PER_FRAME
    fitted = audio[:size] if audio.size >= size else np.pad(audio, (0, size - audio.size))
    return ReferenceClip(fitted, line.turn.text, line.speaker_id, codes[:frames])


def speaker_ids(script: Script) -> dict[str, int]:
    """Each speaker's id: 0, 1, 2, ... in the order they first speak."""
    return {name: i for i, name in enumerate(script.speakers)}


def speak_script(
    engine: ConversationEngine,
    script: Script,
    voices: Mapping[str, Sequence[ReferenceClip]],
    settings: GenerationRequest,
    *,
    checker: TakeChecker | None = None,
    candidates: int = 1,
    context_lines: int | None = None,
    lines: Sequence[int] | None = None,
    made: Sequence[SpokenLine] = (),
    on_line: LineCallback | None = None,
    on_progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
    adapters: Mapping[str, VoiceAdapter | None] | None = None,
) -> list[SpokenLine]:
    """Say the script's turns in order (``lines``: only those indices; ``made``: lines made
    before, kept as they are and used as context). ``settings`` gives the sampling settings and
    the base seed; ``voices`` each speaker's clips; ``adapters`` a trained speaker's adapter
    (each line is spoken with its own speaker's, the context included).

    Raises:
        RequestError: a voice's clips leave no room for a line (see :func:`plan_context`).
        GenerationCancelled: ``should_stop`` said so.
    """
    ids = speaker_ids(script)
    seed = settings.seed if settings.seed is not None else random.randrange(2**31)
    references: list[ReferenceClip] = []
    reference_turns: list[PromptTurn] = []
    for name in script.speakers:
        for clip in voices[name]:
            references.append(dataclasses.replace(clip, speaker=ids[name]))
            reference_turns.append(
                PromptTurn(
                    "reference",
                    name,
                    engine.turn_positions(ids[name], clip.transcript, clip.audio.size),
                )
            )
    done: dict[int, SpokenLine] = {line.index: line for line in made}
    keep_from = 0  # the oldest past line the previous prompt kept (its cache goes on)
    turns: dict[int, tuple[ReferenceClip, PromptTurn]] = {}  # made lines as prompt turns
    wanted = set(range(len(script.turns)) if lines is None else lines)
    for index, turn in enumerate(script.turns):
        if index not in wanted:
            continue
        check_stop(should_stop)
        speaker = ids[turn.speaker]
        before = [i for i in sorted(done) if i < index]
        for i in before:  # each made line becomes a prompt turn once
            if i not in turns:
                line = done[i]
                clip = as_context(line)
                positions = engine.turn_positions(line.speaker_id, line.turn.text, clip.audio.size)
                turns[i] = (clip, PromptTurn("line", line.turn.speaker, positions, line.turn.line))
        context = [turns[i][0] for i in before]
        history = [turns[i][1] for i in before]
        request = dataclasses.replace(
            settings,
            text=turn.text,
            speaker=speaker,
            seed=(seed + index) % 2**31,
            adapter=(adapters or {}).get(turn.speaker),
        )
        plan = plan_context(
            reference_turns,
            history,
            engine.turn_positions(speaker, turn.text, 0),
            engine.max_frames(request),
            engine.context_positions,
            context_lines,
            keep_from,
        )
        keep_from = plan.first_kept
        kept = context[len(context) - len(plan.history) :] if plan.history else []
        request = dataclasses.replace(request, references=(*references, *kept))
        take = make_take(
            engine, request, checker, candidates, on_progress=on_progress, should_stop=should_stop
        )
        spoken = SpokenLine(index, turn, speaker, request, take.result, take.check, plan)
        done[index] = spoken
        if on_line is not None:
            on_line(spoken)
    return [done[i] for i in sorted(done)]


def speak_coherent(
    engine: ConversationEngine,
    request: GenerationRequest,
    *,
    checker: TakeChecker | None = None,
    candidates: int = 1,
    on_progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
    on_audio: AudioCallback | None = None,
) -> MadeTake:
    """A long text in one voice said chunk after chunk, each with the chunks before it as
    context (a conversation of one speaker): steadier voice and prosody across sentences than
    the batched way (:func:`~desktop_app.inference.long_text.generate_long`), at the price of
    one prefill and one decode after another. Chunk ``i`` has seed ``seed + i``, as there.
    ``on_audio`` gets each chunk, joined as the take is, once it is made (and checked).
    """
    from desktop_app.checks.best_of import MadeTake
    from desktop_app.checks.take_check import combine_checks
    from desktop_app.inference.long_text import JoinedStream, assemble, chunk_requests

    started = time.perf_counter()
    requests, pauses, seed = chunk_requests(request)
    script = Script(
        tuple(
            Turn(i + 1, "voice", r.text, pause)
            for i, (r, pause) in enumerate(zip(requests, pauses, strict=True))
        )
    )
    joiner = JoinedStream(on_audio, pauses) if on_audio is not None else None
    lines = speak_script(
        engine,
        script,
        {"voice": request.references},
        dataclasses.replace(request, seed=seed),
        checker=checker,
        candidates=candidates,
        on_line=(lambda line: joiner.feed(line.index, line.result.audio)) if joiner else None,
        on_progress=on_progress,
        should_stop=should_stop,
    )
    if joiner is not None:
        joiner.close()
    parts = tuple(TakePart(line.turn.text, line.turn.pause_after, line.result) for line in lines)
    take = assemble(parts, seed, time.perf_counter() - started)
    checks = [line.check for line in lines]
    check = combine_checks([c for c in checks if c is not None]) if all(checks) else None
    return MadeTake(take, check)
