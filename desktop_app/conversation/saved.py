"""Conversations kept in the library: the script, its cast and base seed, and each line's take.

Each line made is a take of the history like any other (source ``"conversation"``, the voice of
its speaker), and the conversation's row points at it together with the line's codes, so that a
conversation reopened after a restart plays, mixes and exports as it was, and a line made again
has the others as its context exactly as they were said.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from desktop_app.checks.take_check import TakeCheck
from desktop_app.conversation.render import line_entry
from desktop_app.conversation.script import Script, parse_script
from desktop_app.conversation.speak import SpokenLine, kept_line
from desktop_app.errors import UserError
from desktop_app.library.records import ConversationRecord, TakeRecord
from desktop_app.library.store import Library

log = logging.getLogger(__name__)

SOURCE = "conversation"


def save_script(
    library: Library, name: str, text: str, script: Script, cast: dict[str, str], seed: int
) -> ConversationRecord:
    """Keep (or update) a conversation's script text, cast and seed; made lines whose turn
    changed are let go."""
    turns = [(t.speaker, t.text) for t in script.turns]
    return library.conversations.save(name, text, cast, seed, turns)


def keep_line(
    library: Library,
    name: str,
    line: SpokenLine,
    *,
    voice: str | None,
    model: str,
    model_revision: str = "",
) -> TakeRecord:
    """Record a made line as a take and as line ``line.index`` of conversation ``name``."""
    record = library.takes.record_result(
        line.request,
        line.result,
        model,
        voice=voice,
        model_revision=model_revision,
        check=line.check.as_json() if line.check is not None else None,
        source=SOURCE,
    )
    library.conversations.set_line(
        name,
        line.index,
        line.turn.speaker,
        line.turn.text,
        record.id,
        line.result.codes,
        line_entry(line),
    )
    return record


@dataclass(frozen=True)
class Reopened:
    """A stored conversation as the Conversation tab shows it again."""

    record: ConversationRecord
    script: Script | None  # None when the stored text no longer parses
    lines: list[SpokenLine]
    lost: int  # lines whose audio could not be read (to be made again)


def reopen(record: ConversationRecord) -> Reopened:
    """The script and the made lines of a stored conversation."""
    try:
        script = parse_script(record.script)
    except UserError:
        return Reopened(record, None, [], 0)
    lines: list[SpokenLine] = []
    lost = 0
    for stored in record.lines:
        if stored.index >= len(script.turns):
            continue
        turn = script.turns[stored.index]
        if (turn.speaker, turn.text) != (stored.speaker, stored.text):
            continue
        try:
            audio = stored.take.audio()
        except UserError as exc:
            log.warning("line %d of %r cannot be read: %s", stored.index + 1, record.name, exc)
            lost += 1
            continue
        check = TakeCheck.from_json(stored.take.check) if stored.take.verdict else None
        lines.append(kept_line(turn, stored.report, audio, stored.codes(), check))
    return Reopened(record, script, lines, lost)
