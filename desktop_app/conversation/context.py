"""What of the conversation fits the context before each new line.

CSM's prompt for line *k* holds every speaker's reference turns, then the most recent lines
already made (their text and their audio, with their speakers), then line *k*'s text, within
the model's 2048 positions (with room left for the line's own frames). When it no longer fits,
the oldest made lines go first; the reference turns always stay. ``context_lines`` caps how many
made lines are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from desktop_app import defaults
from desktop_app.errors import RequestError


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
        }


def plan_context(
    references: Sequence[PromptTurn],
    history: Sequence[PromptTurn],
    text_positions: int,
    frames: int,
    window: int = defaults.CONTEXT_POSITIONS,
    context_lines: int | None = None,
) -> ContextPlan:
    """Keep the newest made lines that fit beside the references, the text and the frames.

    Raises:
        RequestError: the references alone (with the text and the frames) do not fit; the
            message says how many seconds of each voice would.
    """
    fixed = sum(t.positions for t in references) + text_positions + frames
    if fixed > window:
        raise references_too_long(references, text_positions, frames, window)
    room = window - fixed
    kept: list[PromptTurn] = []
    candidates = list(history)
    if context_lines is not None:
        candidates = candidates[len(candidates) - context_lines :] if context_lines > 0 else []
    for turn in reversed(candidates):
        if turn.positions > room:
            break
        kept.append(turn)
        room -= turn.positions
    kept.reverse()
    return ContextPlan(
        tuple(references), tuple(kept), text_positions, frames, len(history) - len(kept)
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
