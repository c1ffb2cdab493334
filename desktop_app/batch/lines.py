"""The lines of a batch input: a text file (one utterance per non-empty line) or JSON Lines
(``{"text", "voice"?, "out"?}``). A malformed file is an error; a line that cannot be said (an
empty text) fails alone and is listed in the summary."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from desktop_app.errors import RequestError


@dataclass
class Line:
    """One utterance of the input and where its take goes; ``error`` when it cannot be made."""

    number: int  # its line number in the input file
    text: str
    voice: str | None
    out: Path
    error: str = ""


def read_lines(path: Path, out_dir: Path, default_voice: str | None, fmt: str) -> list[Line]:
    """The utterances of ``path``.

    Raises:
        RequestError: unreadable file, bad JSON, an unsafe file name, no line at all.
    """
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RequestError(f"cannot read {path}: {exc}") from exc
    lines: list[Line] = []
    names: set[str] = set()
    for number, row in enumerate(raw.splitlines(), start=1):
        if not row.strip():
            continue
        voice, name = default_voice, f"{len(lines) + 1:03d}.{fmt}"
        if path.suffix.lower() == ".jsonl":
            try:
                item = json.loads(row)
                text = str(item["text"])
            except (ValueError, KeyError, TypeError) as exc:
                raise RequestError(
                    f'{path} line {number}: not a JSON object with a "text" ({exc})'
                ) from exc
            voice = item.get("voice") or default_voice
            if item.get("out"):
                name = str(item["out"])
                if Path(name).name != name or Path(name).suffix.lower() not in (".wav", ".flac"):
                    raise RequestError(
                        f'{path} line {number}: "out" must be a plain .wav or .flac file name'
                    )
        else:
            text = row
        if name in names:
            raise RequestError(f"{path} line {number}: a second line writes {name}")
        names.add(name)
        line = Line(number, text.strip(), voice, out_dir / name)
        if not line.text:
            line.error = "the text is empty"
        lines.append(line)
    if not lines:
        raise RequestError(f"{path} holds no text: write one utterance per line")
    return lines
