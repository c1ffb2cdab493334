"""What the library hands out: voices, clips, takes and conversations as plain records, and
how a row becomes one (by column name). The columns of a take are declared once here."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import soundfile as sf

from desktop_app.library.database import LibraryError

if TYPE_CHECKING:
    from desktop_app.inference.engine import GenerationRequest


@dataclass(frozen=True)
class ClipRecord:
    """A stored reference clip."""

    file: Path
    transcript: str
    duration: float
    source: str

    def audio(self) -> np.ndarray:
        """The clip's 24 kHz mono samples.

        Raises:
            LibraryError: the file is gone or unreadable.
        """
        return read_stored(self.file, f"a clip ({self.transcript[:40]!r})")


@dataclass(frozen=True)
class VoiceRecord:
    """A stored voice and its clips."""

    id: int
    name: str
    notes: str
    created: float
    consent_confirmed: bool
    clips: tuple[ClipRecord, ...]


@dataclass(frozen=True)
class TakeRecord:
    """A stored take."""

    id: int
    voice: str | None
    text: str
    settings: dict[str, Any]
    seed: int
    model: str
    model_revision: str
    engine: str
    device: str
    timings: dict[str, float]
    file: Path
    created: float
    favourite: bool
    duration: float  # seconds of audio (0 when made before version 3 of the schema)
    verdict: str = ""  # "good", "check", "bad"; "" when the take was not checked
    check: dict[str, Any] = dataclasses.field(default_factory=dict)  # TakeCheck.as_json()
    source: str = ""  # where it was made: "", "conversation", "api", "batch", ...

    @property
    def flagged(self) -> bool:
        """Whether the listen-back check found something ("check" or "bad")."""
        return self.verdict in ("check", "bad")

    def audio(self) -> np.ndarray:
        """The take's 24 kHz mono samples.

        Raises:
            LibraryError: the file is gone or unreadable.
        """
        return read_stored(self.file, f"take {self.id}")


@dataclass(frozen=True)
class ConversationLineRecord:
    """A made line of a stored conversation: its take and the codes it was made of."""

    index: int  # 0-based, in the script's order
    speaker: str
    text: str
    take: TakeRecord
    codes_file: Path
    report: dict[str, Any]  # its report entry: speaker id, frames, stop reason, context

    def codes(self) -> np.ndarray:
        """frames x codebooks (empty when the file is gone: the audio is then encoded again)."""
        try:
            return np.asarray(np.load(self.codes_file), dtype=np.int64)
        except (OSError, ValueError):
            return np.zeros((0, 0), np.int64)


@dataclass(frozen=True)
class ConversationRecord:
    """A stored conversation: its script text, cast, base seed and the lines made so far."""

    id: int
    name: str
    script: str
    cast: dict[str, str]  # speaker -> library voice name
    seed: int
    created: float
    modified: float
    lines: tuple[ConversationLineRecord, ...]


def read_stored(file: Path, what: str) -> np.ndarray:
    """A stored audio file's samples, or a LibraryError saying whose audio is missing."""
    try:
        data, _ = sf.read(file, dtype="float32")
    except (OSError, sf.LibsndfileError) as exc:
        raise LibraryError(
            f"the audio of {what} cannot be read ({exc}); the library folder {file.parents[2]} "
            f"may have been changed by hand: restore it from a backup"
        ) from exc
    return np.asarray(data, dtype=np.float32)


@dataclass(frozen=True)
class RemovedVoice:
    """What :meth:`Voices.remove <desktop_app.library.voices.Voices.remove>` took away, so that
    it can be put back."""

    voice: VoiceRecord
    take_ids: tuple[int, ...]
    adapter: dict[str, Any] | None = None
    """The voice's adapters row (a trained voice), put back with it."""

    def files(self) -> list[Path]:
        """The files an undo would bring back into use: the clips and the adapter's two."""
        found = [clip.file for clip in self.voice.clips]
        if self.adapter is not None:
            found += [self.folder / self.adapter["config_file"],
                      self.folder / self.adapter["weights_file"]]  # fmt: skip
        return found

    folder: Path = Path()
    """The library folder the adapter's files are named relative to."""


def settings_of(request: GenerationRequest) -> dict[str, float]:
    """The sampling settings of a generation request, as kept in the history and reports."""
    return {
        "temperature": request.temperature,
        "top_k": request.top_k,
        "top_p": request.top_p,
        "max_seconds": request.max_seconds,
    }


TAKE_COLUMNS = (
    "voice_id", "text", "settings", "seed", "model", "model_revision", "engine", "device",
    "timings", "file", "created", "favourite", "duration", "verdict", "check_report", "source",
)  # fmt: skip
"""The columns of a take's row, as written (the query that reads takes names its voice too)."""

TAKE_QUERY = (
    "SELECT t.id, v.name AS voice, "
    + ", ".join(f"t.{column}" for column in TAKE_COLUMNS if column != "voice_id")
    + " FROM takes t LEFT JOIN voices v ON v.id = t.voice_id"
)
"""Takes with their voice's name; a WHERE or ORDER clause follows."""


def take_row(take: TakeRecord, voice_id: int | None, file: str) -> dict[str, Any]:
    """The row of ``take`` (``file`` relative to the library folder), by column."""
    return {
        "voice_id": voice_id,
        "text": take.text,
        "settings": json.dumps(take.settings),
        "seed": take.seed,
        "model": take.model,
        "model_revision": take.model_revision,
        "engine": take.engine,
        "device": take.device,
        "timings": json.dumps(take.timings),
        "file": file,
        "created": take.created,
        "favourite": int(take.favourite),
        "duration": take.duration,
        "verdict": take.verdict,
        "check_report": json.dumps(take.check),
        "source": take.source,
    }


def take_of(row: sqlite3.Row, folder: Path) -> TakeRecord:
    """The take of a :data:`TAKE_QUERY` row."""
    return TakeRecord(
        id=row["id"],
        voice=row["voice"],
        text=row["text"],
        settings=json.loads(row["settings"]),
        seed=row["seed"],
        model=row["model"],
        model_revision=row["model_revision"],
        engine=row["engine"],
        device=row["device"],
        timings=json.loads(row["timings"]),
        file=folder / row["file"],
        created=row["created"],
        favourite=bool(row["favourite"]),
        duration=row["duration"],
        verdict=row["verdict"],
        check=json.loads(row["check_report"]),
        source=row["source"],
    )


def clip_of(row: sqlite3.Row, folder: Path) -> ClipRecord:
    """The clip of a row of ``clips``."""
    return ClipRecord(folder / row["file"], row["transcript"], row["duration"], row["source"])
