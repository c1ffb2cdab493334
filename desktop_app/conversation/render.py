"""A made conversation as files: the mix, one stem per speaker, subtitles, the report.

Lines follow each other with ``gap`` seconds between them plus each line's own pause (the
script's blank lines and ``[pause]`` marks), after the script's lead-in. Every stem is as long
as the mix and silent where the others speak, so the stems line up in a DAW.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from desktop_app.conversation.speak import SpokenLine

DEFAULT_GAP = 0.3


@dataclass(frozen=True)
class Placement:
    """Where a line sits in the mix, in samples."""

    start: int
    end: int


def place(
    lines: Sequence[SpokenLine], rate: int, gap: float = DEFAULT_GAP, lead_in: float = 0.0
) -> list[Placement]:
    """Each line's span in the mix."""
    at = round(lead_in * rate)
    out: list[Placement] = []
    for line in lines:
        end = at + line.result.audio.size
        out.append(Placement(at, end))
        at = end + round((gap + line.turn.pause_after) * rate)
    return out


def mix(lines: Sequence[SpokenLine], spans: Sequence[Placement]) -> np.ndarray:
    """The lines at their places, one after another (they never overlap)."""
    total = spans[-1].end if spans else 0
    out = np.zeros(total, dtype=np.float32)
    for line, span in zip(lines, spans, strict=True):
        out[span.start : span.end] += line.result.audio
    return out


def stems(lines: Sequence[SpokenLine], spans: Sequence[Placement]) -> dict[str, np.ndarray]:
    """One track per speaker, each as long as the mix, silent where the others speak."""
    total = spans[-1].end if spans else 0
    tracks: dict[str, np.ndarray] = {}
    for line, span in zip(lines, spans, strict=True):
        track = tracks.setdefault(line.turn.speaker, np.zeros(total, dtype=np.float32))
        track[span.start : span.end] += line.result.audio
    return tracks


def subtitles(lines: Sequence[SpokenLine], spans: Sequence[Placement], rate: int, fmt: str) -> str:
    """SubRip (``srt``) or WebVTT (``vtt``) cues: the speaker's name and the line, from its
    real start to its real end in the mix."""
    cues = []
    for number, (line, span) in enumerate(zip(lines, spans, strict=True), start=1):
        start, end = _stamp(span.start / rate, fmt), _stamp(span.end / rate, fmt)
        head = f"{number}\n" if fmt == "srt" else ""
        cues.append(f"{head}{start} --> {end}\n{line.turn.speaker}: {line.turn.text}\n")
    body = "\n".join(cues)
    return f"WEBVTT\n\n{body}" if fmt == "vtt" else body


def file_part(name: str) -> str:
    """A speaker's name as part of a file name (a stem's)."""
    kept = "".join(c if c.isalnum() or c in "-_" else "-" for c in name).strip("-")
    return kept or "speaker"


def _stamp(seconds: float, fmt: str) -> str:
    ms = round(seconds * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{',' if fmt == 'srt' else '.'}{ms:03d}"


def line_entry(line: SpokenLine) -> dict[str, object]:
    """What the report and the library keep of a line, apart from its place in the mix."""
    return {
        "line": line.turn.line,
        "index": line.index,
        "speaker": line.turn.speaker,
        "speaker_id": line.speaker_id,
        "text": line.turn.text,
        "seed": line.result.seed,
        "frames": line.result.frames,
        "stopped_by": line.result.stopped_by,
        "codes_sha256": line.result.codes_sha256,
        "check": line.check.as_json() if line.check is not None else None,
        "context": line.context.as_json(),
    }


def report(
    lines: Sequence[SpokenLine], spans: Sequence[Placement], rate: int
) -> list[dict[str, object]]:
    """Each line: speaker, text, start and end in the mix, seed, frames, stop reason, its
    check and what its prompt held."""
    return [
        {
            **line_entry(line),
            "start_s": round(span.start / rate, 3),
            "end_s": round(span.end / rate, 3),
        }
        for line, span in zip(lines, spans, strict=True)
    ]
