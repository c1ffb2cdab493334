"""The take history: every take kept, with its settings, check and where it was made."""

from __future__ import annotations

import builtins
import dataclasses
import json
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from desktop_app.defaults import SAMPLE_RATE as MODEL_RATE
from desktop_app.library.database import Database, LibraryError
from desktop_app.library.files import FileStore
from desktop_app.library.records import TAKE_QUERY, TakeRecord, settings_of, take_of, take_row
from desktop_app.library.voices import Voices

if TYPE_CHECKING:
    from desktop_app.inference.engine import GenerationRequest, GenerationResult


class Takes:
    """Record, list, mark and delete (and restore) takes."""

    def __init__(self, db: Database, files: FileStore, voices: Voices) -> None:
        self.db, self.files, self.voices = db, files, voices

    def add(
        self,
        *,
        text: str,
        audio: np.ndarray,
        settings: dict[str, Any],
        seed: int,
        model: str,
        engine: str,
        device: str,
        timings: dict[str, float],
        voice: str | None = None,
        model_revision: str = "",
        rate: int = MODEL_RATE,
        check: dict[str, Any] | None = None,
        source: str = "",
    ) -> TakeRecord:
        """Record a finished take: its audio file is complete before the row exists.

        ``check`` is the listen-back check (``TakeCheck.as_json()``), with its ``"verdict"``;
        ``source`` says where it was made ("" for the window and the CLI, "api", ...).
        """
        voice_id = self.voices.get(voice).id if voice else None
        file = self.files.store_audio(audio, rate)
        take = TakeRecord(
            id=0,
            voice=voice,
            text=text,
            settings=settings,
            seed=seed,
            model=model,
            model_revision=model_revision,
            engine=engine,
            device=device,
            timings=timings,
            file=file,
            created=time.time(),
            favourite=False,
            duration=len(audio) / rate,
            verdict=str((check or {}).get("verdict", "")),
            check=check or {},
            source=source,
        )
        with self.db.transaction():
            cursor = self.db.insert("takes", take_row(take, voice_id, self.files.relative(file)))
        assert cursor.lastrowid is not None
        return self.get(cursor.lastrowid)

    def record_result(
        self,
        request: GenerationRequest,
        result: GenerationResult,
        model: str,
        voice: str | None = None,
        model_revision: str = "",
        check: dict[str, Any] | None = None,
        source: str = "",
    ) -> TakeRecord:
        """Record a generation (a ``GenerationRequest`` and its ``GenerationResult``) as a take."""
        return self.add(
            model_revision=model_revision,
            text=request.text,
            audio=result.audio,
            seed=result.seed,
            model=model,
            engine=result.engine,
            device=result.device,
            voice=voice,
            settings=settings_of(request),
            timings=dataclasses.asdict(result.timings),
            rate=result.sample_rate,
            check=check,
            source=source,
        )

    def restore(self, take: TakeRecord) -> TakeRecord:
        """Put back a take deleted in this session (same id; its file is still on disk)."""
        voice_id = self.voices.id_of(take.voice) if take.voice is not None else None
        row = {"id": take.id, **take_row(take, voice_id, self.files.relative(take.file))}
        with self.db.transaction():
            self.db.insert("takes", row)
        return self.get(take.id)

    def get(self, take_id: int) -> TakeRecord:
        """One take by id.

        Raises:
            LibraryError: no such take.
        """
        rows = self._takes("WHERE t.id = ?", (take_id,))
        if not rows:
            raise LibraryError(f"no take with id {take_id} in the history")
        return rows[0]

    def list(
        self,
        voice: str | None = None,
        search: str = "",
        favourites_only: bool = False,
        limit: int | None = None,
        flagged_only: bool = False,
        source: str | None = None,
    ) -> builtins.list[TakeRecord]:
        """Takes, newest first, optionally of one voice, containing ``search``, favourites,
        flagged by the listen-back check, made by one face (``source``); at most ``limit``."""
        where: builtins.list[str] = ["1 = 1"]
        args: builtins.list[Any] = []
        if source is not None:
            where.append("t.source = ?")
            args.append(source)
        if voice:
            where.append("v.name = ?")
            args.append(voice)
        if favourites_only:
            where.append("t.favourite = 1")
        if flagged_only:
            where.append("t.verdict IN ('check', 'bad')")
        if search:
            where.append("t.text LIKE ? ESCAPE '\\'")
            escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            args.append(f"%{escaped}%")
        clause = "WHERE " + " AND ".join(where) + " ORDER BY t.created DESC, t.id DESC"
        if limit is not None:
            clause += f" LIMIT {int(limit)}"
        return self._takes(clause, tuple(args))

    def _takes(self, clause: str, args: tuple[Any, ...]) -> builtins.list[TakeRecord]:
        folder = self.files.folder
        return [take_of(row, folder) for row in self.db.rows(f"{TAKE_QUERY} {clause}", args)]

    def set_favourite(self, take_id: int, favourite: bool) -> None:
        self.get(take_id)
        with self.db.transaction():
            self.db.execute(
                "UPDATE takes SET favourite = ? WHERE id = ?", (int(favourite), take_id)
            )

    def set_check(self, take_id: int, check: dict[str, Any]) -> None:
        """Keep a (new) listen-back check of a take: ``TakeCheck.as_json()``."""
        self.get(take_id)
        with self.db.transaction():
            self.db.execute(
                "UPDATE takes SET verdict = ?, check_report = ? WHERE id = ?",
                (str(check.get("verdict", "")), json.dumps(check), take_id),
            )

    def delete(self, take_id: int) -> None:
        self.get(take_id)
        with self.db.transaction():
            self.db.execute("DELETE FROM takes WHERE id = ?", (take_id,))
