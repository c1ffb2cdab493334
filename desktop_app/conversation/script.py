"""A conversation's script and cast.

Plain text, one turn per line::

    # a comment
    Ada: Good morning. Did you sleep at all?
    Ben: Not a wink.

    [pause 1.5]
    Ada: Then coffee first.

A blank line is a longer pause after the turn before it, ``[pause 1.5]`` on its own line an
explicit one (seconds), ``#`` starts a comment line. JSON Lines work too (a ``.jsonl`` file):
``{"speaker": "Ada", "text": "...", "pause_after": 0.5}`` per line. Every problem names its line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from desktop_app.errors import RequestError

BLANK_LINE_PAUSE = 0.6
"""Seconds a blank line adds after the turn before it."""
MAX_PAUSE = 30.0
MAX_NAME = 40

_PAUSE = re.compile(r"^\[\s*pause\s+([0-9]+(?:\.[0-9]+)?)\s*s?\s*\]$", re.IGNORECASE)
_TURN = re.compile(r"^([^:\[\]#][^:]{0," + str(MAX_NAME - 1) + r"}?)\s*:\s*(.*)$")


@dataclass(frozen=True)
class Turn:
    """One line of the script: who says what, and the pause after it (on top of the gap)."""

    line: int  # in the script file, from 1
    speaker: str
    text: str
    pause_after: float = 0.0


@dataclass(frozen=True)
class Script:
    """The turns in order; ``speakers`` in the order they first speak; silence before the
    first turn (a pause at the very top)."""

    turns: tuple[Turn, ...]
    lead_in: float = 0.0

    @property
    def speakers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(turn.speaker for turn in self.turns))


def parse_script(text: str, source: str = "the script") -> Script:
    """Parse a plain-text script (see the module).

    Raises:
        RequestError: a line that is not ``Name: text``, an empty text, a bad pause, or no turn.
    """
    turns: list[Turn] = []
    lead_in = 0.0

    def add_pause(seconds: float) -> None:
        nonlocal lead_in
        if turns:
            last = turns[-1]
            turns[-1] = Turn(last.line, last.speaker, last.text, last.pause_after + seconds)
        else:
            lead_in += seconds

    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip().lstrip("\ufeff")
        if not line:
            if turns:
                add_pause(BLANK_LINE_PAUSE)
            continue
        if line.startswith("#"):
            continue
        pause = _PAUSE.match(line)
        if pause:
            seconds = float(pause.group(1))
            if seconds > MAX_PAUSE:
                raise RequestError(
                    f"{source} line {number}: a pause of {seconds:g} s is longer than the "
                    f"{MAX_PAUSE:g} s allowed"
                )
            add_pause(seconds)
            continue
        if line.startswith("["):
            raise RequestError(
                f"{source} line {number}: {line[:40]!r} is not a pause; write [pause 1.5]"
            )
        turn = _TURN.match(line)
        if not turn:
            raise RequestError(
                f"{source} line {number}: expected `Name: what they say`, got {line[:60]!r}"
            )
        speaker, said = _check_name(turn.group(1), source, number), turn.group(2).strip()
        if not said:
            raise RequestError(f"{source} line {number}: {speaker} says nothing; give the text")
        turns.append(Turn(number, speaker, said))
    if not turns:
        raise RequestError(f"{source} holds no turn: write one `Name: what they say` per line")
    return Script(tuple(turns), lead_in)


def parse_jsonl(text: str, source: str = "the script") -> Script:
    """Parse a JSON Lines script: ``{"speaker", "text", "pause_after"?}`` per line.

    Raises:
        RequestError: bad JSON, a missing or empty field, a bad pause, or no turn.
    """
    turns: list[Turn] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
            speaker, said = str(item["speaker"]), str(item["text"]).strip()
            pause = float(item.get("pause_after", 0.0))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RequestError(
                f'{source} line {number}: not a JSON object with "speaker" and "text" ({exc})'
            ) from exc
        speaker = _check_name(speaker, source, number)
        if not said:
            raise RequestError(f"{source} line {number}: {speaker} says nothing; give the text")
        if not 0 <= pause <= MAX_PAUSE:
            raise RequestError(
                f"{source} line {number}: pause_after must be 0 to {MAX_PAUSE:g} s, not {pause:g}"
            )
        turns.append(Turn(number, speaker, said, pause))
    if not turns:
        raise RequestError(f"{source} holds no turn: one JSON object per line")
    return Script(tuple(turns))


def read_script(path: Path) -> Script:
    """A script file: JSON Lines for ``.jsonl``, else plain text.

    Raises:
        RequestError: it cannot be read, or it does not parse (naming the line).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RequestError(f"cannot read the script {path}: {exc}") from exc
    if path.suffix.lower() == ".jsonl":
        return parse_jsonl(text, str(path))
    return parse_script(text, str(path))


def _check_name(name: str, source: str, number: int) -> str:
    name = " ".join(name.split())
    if not name or len(name) > MAX_NAME or any(c in name for c in ":[]#"):
        raise RequestError(
            f"{source} line {number}: {name[:50]!r} is not a speaker name (1-{MAX_NAME} "
            f"characters, no ':', '[', ']' or '#')"
        )
    return name


@dataclass(frozen=True)
class CastMember:
    """Who speaks a part: a library voice, or a clip file (with its transcript, if given)."""

    name: str
    voice: str | None = None
    clip: Path | None = None
    transcript: str = ""


def parse_cast(items: list[str], script: Script) -> dict[str, CastMember]:
    """``NAME=VOICE`` (a library voice) or ``NAME=FILE`` / ``NAME=FILE|TRANSCRIPT`` (a clip),
    one per speaker of ``script``.

    Raises:
        RequestError: a malformed item, a name not in the script, or a speaker without a voice
            (naming the script line where they first speak).
    """
    cast: dict[str, CastMember] = {}
    for item in items:
        name, sep, who = item.partition("=")
        name, who = " ".join(name.split()), who.strip()
        if not sep or not name or not who:
            raise RequestError(f"--cast {item!r}: write NAME=VOICE (or NAME=clip.wav|transcript)")
        if name not in script.speakers:
            raise RequestError(
                f"--cast {name}: nobody called {name!r} speaks in the script (speakers: "
                f"{', '.join(script.speakers)})"
            )
        path_part, bar, transcript = who.partition("|")
        path = Path(path_part).expanduser()
        if bar or (path.suffix and path.is_file()):
            cast[name] = CastMember(name, clip=path, transcript=transcript.strip())
        else:
            cast[name] = CastMember(name, voice=who)
    for speaker in script.speakers:
        if speaker not in cast:
            first = next(t.line for t in script.turns if t.speaker == speaker)
            raise RequestError(
                f"{speaker} (script line {first}) has no voice: add --cast {speaker}=VOICE"
            )
    return cast
