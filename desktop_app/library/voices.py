"""Voices and their clips in the library."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from desktop_app.defaults import SAMPLE_RATE as MODEL_RATE
from desktop_app.library.database import Database, LibraryConflict, LibraryError
from desktop_app.library.files import FileStore
from desktop_app.library.records import ClipRecord, RemovedVoice, VoiceRecord, clip_of
from desktop_app.library.schema import CLIP_SOURCES

VOICE_QUERY = "SELECT id, name, notes, created, consent_confirmed FROM voices"
CLIP_QUERY = "SELECT voice_id, file, transcript, duration, source FROM clips"


class Voices:
    """Add, list, rename, remove (and restore) voices."""

    def __init__(self, db: Database, files: FileStore) -> None:
        self.db, self.files = db, files

    def add(
        self,
        name: str,
        clips: list[tuple[np.ndarray, str, str]],
        notes: str = "",
        consent_confirmed: bool = False,
        rate: int = MODEL_RATE,
    ) -> VoiceRecord:
        """Store a voice from (audio, transcript, source) clips.

        Raises:
            LibraryError: an empty or taken name, no clips, or a clip without transcript.
        """
        name = name.strip()
        if not name:
            raise LibraryError("a voice needs a name")
        if not clips:
            raise LibraryError(f"voice {name!r} needs at least one clip")
        for number, (_, transcript, source) in enumerate(clips, start=1):
            if not transcript.strip():
                raise LibraryError(f"clip {number} of voice {name!r} has no transcript")
            if source not in CLIP_SOURCES:
                raise LibraryError(
                    f"clip {number} of voice {name!r} has an unknown source {source!r}; "
                    f"it must be one of {', '.join(CLIP_SOURCES)}"
                )
        files = [self.files.store_audio(audio, rate) for audio, _, _ in clips]  # files first
        try:
            with self.db.transaction():
                cursor = self.db.insert(
                    "voices",
                    {
                        "name": name,
                        "notes": notes,
                        "created": time.time(),
                        "consent_confirmed": int(consent_confirmed),
                    },
                )
                self._insert_clips(
                    cursor.lastrowid,
                    [
                        ClipRecord(file, transcript.strip(), len(audio) / rate, source)
                        for (audio, transcript, source), file in zip(clips, files, strict=True)
                    ],
                )
        except LibraryConflict as exc:
            if "voices.name" in str(exc):
                raise LibraryError(
                    f"a voice called {name!r} already exists; choose another name"
                ) from exc
            raise LibraryError(f"the library refused the voice {name!r} ({exc})") from exc
        return self.get(name)

    def _insert_clips(self, voice_id: Any, clips: Sequence[ClipRecord]) -> None:
        """Rows for ``clips`` of voice ``voice_id``, in order (inside the caller's transaction)."""
        self.db.executemany(
            "INSERT INTO clips (voice_id, file, transcript, duration, source, position) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [
                (voice_id, self.files.relative(c.file), c.transcript, c.duration, c.source, n)
                for n, c in enumerate(clips)
            ],
        )

    def all(self) -> list[VoiceRecord]:
        """All voices, by name (two queries, whatever their number)."""
        return self._voices("ORDER BY name COLLATE NOCASE", ())

    def get(self, name: str) -> VoiceRecord:
        """One voice by name.

        Raises:
            LibraryError: no such voice.
        """
        found = self._voices("WHERE name = ?", (name,))
        if not found:
            known = ", ".join(row[0] for row in self.db.rows("SELECT name FROM voices")) or "none"
            raise LibraryError(f"no voice called {name!r} in the library (voices: {known})")
        return found[0]

    def id_of(self, name: str) -> int | None:
        """The id of the voice ``name``, None when there is none."""
        rows = self.db.rows("SELECT id FROM voices WHERE name = ?", (name,))
        return int(rows[0]["id"]) if rows else None

    def _voices(self, clause: str, args: tuple[Any, ...]) -> list[VoiceRecord]:
        rows = self.db.rows(f"{VOICE_QUERY} {clause}", args)
        ids = [row["id"] for row in rows]
        clips: dict[int, list[ClipRecord]] = {voice_id: [] for voice_id in ids}
        if ids:
            marks = ", ".join("?" for _ in ids)
            for clip in self.db.rows(
                f"{CLIP_QUERY} WHERE voice_id IN ({marks}) ORDER BY voice_id, position", ids
            ):
                clips[clip["voice_id"]].append(clip_of(clip, self.files.folder))
        return [
            VoiceRecord(
                row["id"],
                row["name"],
                row["notes"],
                row["created"],
                bool(row["consent_confirmed"]),
                tuple(clips[row["id"]]),
            )
            for row in rows
        ]

    def rename(self, name: str, new_name: str) -> None:
        """Rename a voice.

        Raises:
            LibraryError: no such voice, or the new name is taken or empty.
        """
        self.get(name)
        if not new_name.strip():
            raise LibraryError("a voice needs a name")
        try:
            with self.db.transaction():
                self.db.execute(
                    "UPDATE voices SET name = ? WHERE name = ?", (new_name.strip(), name)
                )
        except LibraryConflict as exc:
            raise LibraryError(f"a voice called {new_name!r} already exists") from exc

    def remove(self, name: str) -> RemovedVoice:
        """Remove a voice and its clips (its takes stay, without a voice).

        The clip files stay on disk, so :meth:`restore` can put the voice back.
        """
        voice = self.get(name)
        with self.db.transaction():
            take_ids = tuple(
                row[0]
                for row in self.db.rows("SELECT id FROM takes WHERE voice_id = ?", (voice.id,))
            )
            rows = self.db.rows(
                "SELECT config_file, weights_file, info, created FROM adapters WHERE voice_id = ?",
                (voice.id,),
            )
            self.db.execute("DELETE FROM voices WHERE id = ?", (voice.id,))
        adapter = dict(rows[0]) if rows else None
        return RemovedVoice(voice, take_ids, adapter, self.files.folder)

    def restore(self, removed: RemovedVoice) -> VoiceRecord:
        """Put back a voice removed in this session, with its clips and the link to its takes.

        Raises:
            LibraryError: a voice of that name was made since, or a clip file is gone.
        """
        voice = removed.voice
        for clip in voice.clips:
            if not clip.file.exists():
                raise LibraryError(f"cannot restore {voice.name!r}: {clip.file} is gone")
        try:
            with self.db.transaction():
                self.db.insert(
                    "voices",
                    {
                        "id": voice.id,
                        "name": voice.name,
                        "notes": voice.notes,
                        "created": voice.created,
                        "consent_confirmed": int(voice.consent_confirmed),
                    },
                )
                self._insert_clips(voice.id, voice.clips)
                self.db.executemany(
                    "UPDATE takes SET voice_id = ? WHERE id = ? AND voice_id IS NULL",
                    [(voice.id, take_id) for take_id in removed.take_ids],
                )
                if removed.adapter is not None and all(f.exists() for f in removed.files()):
                    self.db.insert("adapters", {**removed.adapter, "voice_id": voice.id})
        except LibraryConflict as exc:
            raise LibraryError(
                f"cannot restore {voice.name!r}: a voice of that name exists again"
            ) from exc
        return self.get(voice.name)
