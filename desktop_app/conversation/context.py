"""What of the conversation fits the context before each new line.

CSM's prompt for line *k* holds every speaker's reference turns, then the most recent lines
already made (their text and their audio, with their speakers), then line *k*'s text, within
the model's 2048 positions (with room left for the line's own frames). When it no longer fits,
the oldest made lines go first; the reference turns always stay. ``context_lines`` caps how many
made lines are kept.

The window slides in steps: while the lines kept for the previous line still fit (with the
newest added), nothing is dropped, so the engine's cache of the previous prompt goes on
(``keep_from``); when they no longer fit, the oldest lines are dropped until a quarter of the
room is free (:data:`SLIDE_SLACK`), so one full prefill buys several lines of cache again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from desktop_app import defaults
from desktop_app.errors import RequestError

SLIDE_SLACK = 0.25
"""Share of the room for past lines left free when the window slides."""


@dataclass(frozen=True)
class PromptTurn:
    """One turn of a prompt, with the positions it takes."""

    kind: str  # "reference" or "line"
    speaker: str
    positions: int
    line: int | None = None  # the script line of a made line


@dataclass(frozen=True)
class ContextPlan:
    """The prompt of one line: which turns, and the positions they and the line take."""

    references: tuple[PromptTurn, ...]
    history: tuple[PromptTurn, ...]  # the made lines kept, oldest first
    text_positions: int
    frames: int  # room kept for the line's own audio
    dropped: int  # made lines left out (too many for the context, or over the cap)
    first_kept: int = 0  # index in the history of the oldest line kept (for ``keep_from``)
    slid: bool = False  # lines were dropped that the previous line's prompt held

    @property
    def positions(self) -> int:
        """Positions the prompt takes (without the line's frames)."""
        turns = self.references + self.history
        return sum(t.positions for t in turns) + self.text_positions

    def as_json(self) -> dict[str, object]:
        return {
            "reference_turns": [
                {"speaker": t.speaker, "positions": t.positions} for t in self.references
            ],
            "lines": [
                {"line": t.line, "speaker": t.speaker, "positions": t.positions}
                for t in self.history
            ],
            "text_positions": self.text_positions,
            "prompt_positions": self.positions,
            "frames_reserved": self.frames,
            "dropped_lines": self.dropped,
            "window_slid": self.slid,
        }


def plan_context(
    references: Sequence[PromptTurn],
    history: Sequence[PromptTurn],
    text_positions: int,
    frames: int,
    window: int = defaults.CONTEXT_POSITIONS,
    context_lines: int | None = None,
    keep_from: int = 0,
) -> ContextPlan:
    """The made lines this line's prompt keeps: from ``keep_from`` (the previous line's oldest)
    on while they fit; else the newest that fit in three quarters of the room (see the module).

    Raises:
        RequestError: the references alone (with the text and the frames) do not fit; the
            message says how many seconds of each voice would.
    """
    fixed = sum(t.positions for t in references) + text_positions + frames
    if fixed > window:
        raise references_too_long(references, text_positions, frames, window)
    room = window - fixed
    first = max(keep_from, len(history) - context_lines if context_lines is not None else 0)
    first = min(max(first, 0), len(history))
    slid = first > keep_from
    if sum(t.positions for t in history[first:]) > room:
        budget, first, used = room * (1 - SLIDE_SLACK), len(history), 0
        while first > 0 and used + history[first - 1].positions <= budget:
            first -= 1
            used += history[first].positions
        slid = True
    kept = tuple(history[first:])
    return ContextPlan(
        tuple(references), kept, text_positions, frames, len(history) - len(kept), first, slid
    )


def references_too_long(
    references: Sequence[PromptTurn], text_positions: int, frames: int, window: int
) -> RequestError:
    """The error for voices whose clips leave no room for the line: how much of each fits."""
    speakers = list(dict.fromkeys(t.speaker for t in references)) or ["the voice"]
    room = max(0, window - text_positions - frames)
    each = room / len(speakers) / defaults.FRAME_RATE
    given = sum(t.positions for t in references)
    return RequestError(
        f"the voices' clips take {given} of the model's {window} positions, and the line needs "
        f"{text_positions + frames} more: about {each:.1f} s of each voice "
        f"({', '.join(speakers)}) fit; use shorter clips or a lower maximum length"
    )
