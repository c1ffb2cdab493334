"""The voice library and take history: SQLite (stdlib sqlite3, WAL) plus audio files beside it.

Audio is stored as WAV files named by the SHA-256 of their content, written atomically before the
row that points at them, so a row never names a half-written file. The schema version lives in
``PRAGMA user_version`` and moves forward one migration at a time; a database from a newer
version, or a damaged one, is refused with a clear message and left exactly as it is.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import sqlite3
import stat
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import soundfile as sf

from desktop_app import paths
from desktop_app.defaults import SAMPLE_RATE as MODEL_RATE
from desktop_app.errors import UserError
from desktop_app.files import atomic_write

if TYPE_CHECKING:
    from desktop_app.inference.engine import GenerationRequest, GenerationResult

SCHEMA_VERSION = 5

CLIP_SOURCES = ("recorded", "imported")
"""Where a clip came from (the clips table's CHECK constraint allows these only)."""

# Each entry takes the database from version i to i + 1.
MIGRATIONS: list[str] = [
    # 0 -> 1: voices, their clips, takes
    """
    CREATE TABLE voices (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        notes TEXT NOT NULL DEFAULT '',
        created REAL NOT NULL
    );
    CREATE TABLE clips (
        id INTEGER PRIMARY KEY,
        voice_id INTEGER NOT NULL REFERENCES voices(id) ON DELETE CASCADE,
        file TEXT NOT NULL,
        transcript TEXT NOT NULL,
        duration REAL NOT NULL,
        source TEXT NOT NULL CHECK (source IN ('recorded', 'imported')),
        position INTEGER NOT NULL
    );
    CREATE TABLE takes (
        id INTEGER PRIMARY KEY,
        voice_id INTEGER REFERENCES voices(id) ON DELETE SET NULL,
        text TEXT NOT NULL,
        settings TEXT NOT NULL,
        seed INTEGER NOT NULL,
        model TEXT NOT NULL,
        engine TEXT NOT NULL,
        device TEXT NOT NULL,
        timings TEXT NOT NULL,
        file TEXT NOT NULL,
        created REAL NOT NULL
    );
    CREATE INDEX takes_by_voice ON takes(voice_id, created);
    """,
    # 1 -> 2: consent on voices, favourites and the model revision on takes
    """
    ALTER TABLE voices ADD COLUMN consent_confirmed INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE takes ADD COLUMN favourite INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE takes ADD COLUMN model_revision TEXT NOT NULL DEFAULT '';
    """,
    # 2 -> 3: the take's length, for the history list (0 for takes made before)
    """
    ALTER TABLE takes ADD COLUMN duration REAL NOT NULL DEFAULT 0;
    """,
    # 3 -> 4: the listen-back check of a take: its verdict ('' = not checked) and scores (JSON)
    """
    ALTER TABLE takes ADD COLUMN verdict TEXT NOT NULL DEFAULT '';
    ALTER TABLE takes ADD COLUMN check_report TEXT NOT NULL DEFAULT '{}';
    CREATE INDEX takes_by_verdict ON takes(verdict, created);
    """,
    # 4 -> 5: where a take was made ('' before: the window or the CLI), and conversations: a
    # script, its cast (speaker -> voice name) and base seed, and the take of each line made
    # (with its codes, the next lines' context); a line goes with its take
    """
    ALTER TABLE takes ADD COLUMN source TEXT NOT NULL DEFAULT '';
    CREATE TABLE conversations (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        script TEXT NOT NULL,
        cast_json TEXT NOT NULL DEFAULT '{}',
        seed INTEGER NOT NULL,
        created REAL NOT NULL,
        modified REAL NOT NULL
    );
    CREATE TABLE conversation_lines (
        conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        line_index INTEGER NOT NULL,
        speaker TEXT NOT NULL,
        text TEXT NOT NULL,
        take_id INTEGER NOT NULL REFERENCES takes(id) ON DELETE CASCADE,
        codes_file TEXT NOT NULL,
        report TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (conversation_id, line_index)
    );
    """,
]
assert len(MIGRATIONS) == SCHEMA_VERSION


class LibraryError(UserError):
    """The library cannot be opened or changed as asked."""


class LibraryBusy(LibraryError):
    """Another program held the library's database for longer than the wait allowed."""


class LibraryConflict(LibraryError):
    """A change the database refused by its constraints (a taken name, a take restored twice)."""


BUSY_SECONDS = 10.0
"""How long a change waits for another program (another window, ``serve``, a batch) that is
writing to the library before it is refused with :class:`LibraryBusy`; ``CSM_STUDIO_LIBRARY_WAIT``
(seconds) sets another wait, e.g. for a library on a slow shared disk."""
WAIT_ENV = "CSM_STUDIO_LIBRARY_WAIT"


def busy_wait() -> float:
    """The wait for a busy library: ``CSM_STUDIO_LIBRARY_WAIT`` when it is a positive number,
    else :data:`BUSY_SECONDS`."""
    try:
        seconds = float(os.environ.get(WAIT_ENV, ""))
    except ValueError:
        return BUSY_SECONDS
    return seconds if 0 < seconds < 3600 else BUSY_SECONDS


GRACE_SECONDS = 600.0
"""Clean-up never removes a file written or reused this recently: another program may be about
to record a row that points at it."""


class Database:
    """The library's SQLite connection: every ``sqlite3`` error leaves it as a
    :class:`LibraryError` (:class:`LibraryBusy` when another program held the database past the
    wait, :class:`LibraryConflict` for a constraint), so no face ever sees a raw database error."""

    def __init__(self, path: Path, busy_seconds: float) -> None:
        self.path = path
        self.busy_seconds = busy_seconds
        with self.errors():
            self.connection = sqlite3.connect(path, timeout=busy_seconds, isolation_level=None)
            self.connection.execute(f"PRAGMA busy_timeout = {int(busy_seconds * 1000)}")

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        """Map the sqlite3 errors raised inside to library errors."""
        try:
            yield
        except sqlite3.IntegrityError as exc:
            raise LibraryConflict(str(exc)) from exc
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise LibraryBusy(
                    f"the library is busy: another program (another CSM Studio window, `serve`, "
                    f"a batch, or a tool with {self.path.name} open) kept it for over "
                    f"{self.busy_seconds:g} s; try again when it is done"
                ) from exc
            raise self._damaged(exc) from exc
        except sqlite3.ProgrammingError as exc:  # used after close()
            raise LibraryError(f"the library {self.path} is closed ({exc})") from exc
        except sqlite3.Error as exc:
            raise self._damaged(exc) from exc

    def _damaged(self, exc: sqlite3.Error) -> LibraryError:
        return LibraryError(
            f"the library database {self.path} is damaged or cannot be read ({exc}); it was "
            "left untouched: move it aside to start a new library, or restore it from a backup"
        )

    def execute(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        with self.errors():
            return self.connection.execute(sql, args)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> sqlite3.Cursor:
        with self.errors():
            return self.connection.executemany(sql, rows)

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        """Every row of a query (read whole inside the error mapping)."""
        with self.errors():
            return self.connection.execute(sql, args).fetchall()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """A write transaction, taken at once (``BEGIN IMMEDIATE``): what is read inside it
        cannot change before it commits."""
        with self.errors():
            self.connection.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.connection.execute("ROLLBACK")
                raise
            self.connection.execute("COMMIT")

    def version(self) -> int:
        """The schema version (``PRAGMA user_version``)."""
        return int(self.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        self.connection.close()


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
        return _read_stored(self.file, f"a clip ({self.transcript[:40]!r})")


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
        return _read_stored(self.file, f"take {self.id}")


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


def _read_stored(file: Path, what: str) -> np.ndarray:
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
    """What :meth:`Library.remove_voice` took away, so that it can be put back."""

    voice: VoiceRecord
    take_ids: tuple[int, ...]


def settings_of(request: GenerationRequest) -> dict[str, float]:
    """The sampling settings of a generation request, as kept in the history and reports."""
    return {
        "temperature": request.temperature,
        "top_k": request.top_k,
        "top_p": request.top_p,
        "max_seconds": request.max_seconds,
    }


def library_dir() -> Path:
    """Where the library lives (the data folder; ``CSM_STUDIO_HOME`` moves it)."""
    return paths.data_dir() / "library"


class Library:
    """One library folder: ``library.sqlite3`` and ``audio/``."""

    def __init__(
        self,
        folder: Path | None = None,
        *,
        busy_seconds: float | None = None,
        grace_seconds: float = GRACE_SECONDS,
    ) -> None:
        self.folder = folder or library_dir()
        self.audio_dir = self.folder / "audio"
        self.db_path = self.folder / "library.sqlite3"
        self.grace_seconds = grace_seconds
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.audio_dir.mkdir(exist_ok=True)
            os.chmod(self.folder, 0o700)  # voices are personal: user-only
        except OSError as exc:
            raise LibraryError(
                f"cannot use the library folder {self.folder}: {exc.strerror or exc}"
            ) from exc
        self._db = self._open(busy_wait() if busy_seconds is None else busy_seconds)

    # -- opening and migrating -----------------------------------------------------------------

    def _open(self, busy_seconds: float) -> Database:
        db = Database(self.db_path, busy_seconds)
        try:
            version = db.version()
        except LibraryError:
            db.close()
            raise
        if version > SCHEMA_VERSION:
            db.close()
            raise LibraryError(
                f"the library {self.db_path} was written by a newer CSM Studio (schema {version}, "
                f"this version knows {SCHEMA_VERSION}); it was left untouched: update CSM Studio"
            )
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA synchronous = NORMAL")
        if version < SCHEMA_VERSION:
            with db.transaction():
                # read again under the write lock: another program may have migrated meanwhile
                for target in range(db.version(), SCHEMA_VERSION):
                    for statement in _statements(MIGRATIONS[target]):
                        db.execute(statement)
                    db.execute(f"PRAGMA user_version = {target + 1}")
        os.chmod(self.db_path, 0o600)
        return db

    def close(self) -> None:
        """Close the database (idempotent)."""
        self._db.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def integrity_check(self) -> str:
        """SQLite's own verdict on the database file ("ok" when healthy)."""
        return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])

    @property
    def schema_version(self) -> int:
        return self._db.version()

    # -- audio files ---------------------------------------------------------------------------

    def store_audio(self, audio: np.ndarray, rate: int) -> Path:
        """Write audio as a content-named WAV (once; identical audio shares one file)."""
        buffer = io.BytesIO()
        sf.write(buffer, np.asarray(audio, dtype=np.float32), rate, format="WAV", subtype="FLOAT")
        return self._store(buffer.getvalue(), ".wav")

    def _store(self, data: bytes, suffix: str) -> Path:
        """Write ``data`` once, named by its SHA-256, in the audio folder."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.audio_dir / digest[:2] / f"{digest}{suffix}"
        try:
            os.utime(target)  # reused: clean-up leaves a file touched this recently alone
        except FileNotFoundError:
            target.parent.mkdir(exist_ok=True)
            with atomic_write(target, permissions=0o600) as handle:
                handle.write(data)
        except OSError as exc:
            raise LibraryError(f"cannot write to the library: {exc.strerror or exc}") from exc
        return target

    # -- voices --------------------------------------------------------------------------------

    def add_voice(
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
        files = [self.store_audio(audio, rate) for audio, _, _ in clips]  # files first
        try:
            with self._db.transaction():
                cursor = self._db.execute(
                    "INSERT INTO voices (name, notes, created, consent_confirmed) "
                    "VALUES (?, ?, ?, ?)",
                    (name, notes, time.time(), int(consent_confirmed)),
                )
                voice_id = cursor.lastrowid
                self._insert_clips(
                    voice_id,
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
        return self.voice(name)

    def _insert_clips(self, voice_id: Any, clips: Sequence[ClipRecord]) -> None:
        """Rows for ``clips`` of voice ``voice_id``, in order (inside the caller's transaction)."""
        self._db.executemany(
            "INSERT INTO clips (voice_id, file, transcript, duration, source, position) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [
                (voice_id, self._relative(c.file), c.transcript, c.duration, c.source, position)
                for position, c in enumerate(clips)
            ],
        )

    def voices(self) -> list[VoiceRecord]:
        """All voices, by name."""
        rows = self._db.execute("SELECT name FROM voices ORDER BY name COLLATE NOCASE").fetchall()
        return [self.voice(row[0]) for row in rows]

    def voice(self, name: str) -> VoiceRecord:
        """One voice by name.

        Raises:
            LibraryError: no such voice.
        """
        row = self._db.execute(
            "SELECT id, name, notes, created, consent_confirmed FROM voices WHERE name = ?",
            (name,),
        ).fetchone()
        if row is None:
            known = ", ".join(v[0] for v in self._db.execute("SELECT name FROM voices")) or "none"
            raise LibraryError(f"no voice called {name!r} in the library (voices: {known})")
        clips = tuple(
            ClipRecord(self.folder / file, transcript, duration, source)
            for file, transcript, duration, source in self._db.execute(
                "SELECT file, transcript, duration, source FROM clips WHERE voice_id = ? "
                "ORDER BY position",
                (row[0],),
            )
        )
        return VoiceRecord(row[0], row[1], row[2], row[3], bool(row[4]), clips)

    def rename_voice(self, name: str, new_name: str) -> None:
        """Rename a voice.

        Raises:
            LibraryError: no such voice, or the new name is taken or empty.
        """
        self.voice(name)
        if not new_name.strip():
            raise LibraryError("a voice needs a name")
        try:
            with self._db.transaction():
                self._db.execute(
                    "UPDATE voices SET name = ? WHERE name = ?", (new_name.strip(), name)
                )
        except LibraryConflict as exc:
            raise LibraryError(f"a voice called {new_name!r} already exists") from exc

    def remove_voice(self, name: str) -> RemovedVoice:
        """Remove a voice and its clips (its takes stay, without a voice).

        The clip files stay on disk, so :meth:`restore_voice` can put the voice back.
        """
        voice = self.voice(name)
        with self._db.transaction():
            take_ids = tuple(
                row[0]
                for row in self._db.execute("SELECT id FROM takes WHERE voice_id = ?", (voice.id,))
            )
            self._db.execute("DELETE FROM voices WHERE id = ?", (voice.id,))
        return RemovedVoice(voice, take_ids)

    def restore_voice(self, removed: RemovedVoice) -> VoiceRecord:
        """Put back a voice removed in this session, with its clips and the link to its takes.

        Raises:
            LibraryError: a voice of that name was made since, or a clip file is gone.
        """
        voice = removed.voice
        for clip in voice.clips:
            if not clip.file.exists():
                raise LibraryError(f"cannot restore {voice.name!r}: {clip.file} is gone")
        try:
            with self._db.transaction():
                self._db.execute(
                    "INSERT INTO voices (id, name, notes, created, consent_confirmed) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (voice.id, voice.name, voice.notes, voice.created, voice.consent_confirmed),
                )
                self._insert_clips(voice.id, voice.clips)
                self._db.executemany(
                    "UPDATE takes SET voice_id = ? WHERE id = ? AND voice_id IS NULL",
                    [(voice.id, take_id) for take_id in removed.take_ids],
                )
        except LibraryConflict as exc:
            raise LibraryError(
                f"cannot restore {voice.name!r}: a voice of that name exists again"
            ) from exc
        return self.voice(voice.name)

    # -- takes ---------------------------------------------------------------------------------

    def add_take(
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
        voice_id = self.voice(voice).id if voice else None
        file = self.store_audio(audio, rate)
        with self._db.transaction():
            cursor = self._db.execute(
                "INSERT INTO takes (voice_id, text, settings, seed, model, model_revision, engine, "
                "device, timings, file, created, duration, verdict, check_report, source) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    voice_id,
                    text,
                    json.dumps(settings),
                    seed,
                    model,
                    model_revision,
                    engine,
                    device,
                    json.dumps(timings),
                    self._relative(file),
                    time.time(),
                    len(audio) / rate,
                    str((check or {}).get("verdict", "")),
                    json.dumps(check or {}),
                    source,
                ),
            )
        assert cursor.lastrowid is not None
        return self.take(cursor.lastrowid)

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
        return self.add_take(
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

    def restore_take(self, take: TakeRecord) -> TakeRecord:
        """Put back a take deleted in this session (same id; its file is still on disk)."""
        voice_id = None
        if take.voice is not None:
            row = self._db.execute("SELECT id FROM voices WHERE name = ?", (take.voice,)).fetchone()
            voice_id = row[0] if row else None
        with self._db.transaction():
            self._db.execute(
                "INSERT INTO takes (id, voice_id, text, settings, seed, model, model_revision, "
                "engine, device, timings, file, created, favourite, duration, verdict, "
                "check_report, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    take.id,
                    voice_id,
                    take.text,
                    json.dumps(take.settings),
                    take.seed,
                    take.model,
                    take.model_revision,
                    take.engine,
                    take.device,
                    json.dumps(take.timings),
                    self._relative(take.file),
                    take.created,
                    int(take.favourite),
                    take.duration,
                    take.verdict,
                    json.dumps(take.check),
                    take.source,
                ),
            )
        return self.take(take.id)

    def take(self, take_id: int) -> TakeRecord:
        """One take by id.

        Raises:
            LibraryError: no such take.
        """
        rows = self._takes("WHERE t.id = ?", (take_id,))
        if not rows:
            raise LibraryError(f"no take with id {take_id} in the history")
        return rows[0]

    def takes(
        self,
        voice: str | None = None,
        search: str = "",
        favourites_only: bool = False,
        limit: int | None = None,
        flagged_only: bool = False,
        source: str | None = None,
    ) -> list[TakeRecord]:
        """Takes, newest first, optionally of one voice, containing ``search``, favourites,
        flagged by the listen-back check, made by one face (``source``); at most ``limit``."""
        where: list[str] = ["1 = 1"]
        args: list[Any] = []
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

    def _takes(self, where: str, args: tuple[Any, ...]) -> list[TakeRecord]:
        query = (
            "SELECT t.id, v.name, t.text, t.settings, t.seed, t.model, t.model_revision, "
            "t.engine, t.device, t.timings, t.file, t.created, t.favourite, t.duration, "
            "t.verdict, t.check_report, t.source FROM takes t "
            f"LEFT JOIN voices v ON v.id = t.voice_id {where}"
        )
        return [
            TakeRecord(
                row[0],
                row[1],
                row[2],
                json.loads(row[3]),
                row[4],
                row[5],
                row[6],
                row[7],
                row[8],
                json.loads(row[9]),
                self.folder / row[10],
                row[11],
                bool(row[12]),
                row[13],
                row[14],
                json.loads(row[15]),
                row[16],
            )
            for row in self._db.execute(query, args)
        ]

    def set_favourite(self, take_id: int, favourite: bool) -> None:
        self.take(take_id)
        with self._db.transaction():
            self._db.execute(
                "UPDATE takes SET favourite = ? WHERE id = ?", (int(favourite), take_id)
            )

    def set_check(self, take_id: int, check: dict[str, Any]) -> None:
        """Keep a (new) listen-back check of a take: ``TakeCheck.as_json()``."""
        self.take(take_id)
        with self._db.transaction():
            self._db.execute(
                "UPDATE takes SET verdict = ?, check_report = ? WHERE id = ?",
                (str(check.get("verdict", "")), json.dumps(check), take_id),
            )

    def delete_take(self, take_id: int) -> None:
        self.take(take_id)
        with self._db.transaction():
            self._db.execute("DELETE FROM takes WHERE id = ?", (take_id,))

    # -- conversations -------------------------------------------------------------------------

    def store_codes(self, codes: np.ndarray) -> Path:
        """Write a take's codes (frames x codebooks) as a content-named .npy (once)."""
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(codes, dtype=np.int64))
        return self._store(buffer.getvalue(), ".npy")

    def save_conversation(
        self,
        name: str,
        script: str,
        cast: dict[str, str],
        seed: int,
        turns: Sequence[tuple[str, str]],
    ) -> ConversationRecord:
        """Keep a conversation's script, cast and seed (a new one, or the one of that name).

        ``turns`` are the script's (speaker, text) in order: a made line whose turn is no
        longer the same goes (its take stays in the history).
        """
        name = name.strip()
        if not name:
            raise LibraryError("give the conversation a name")
        now = time.time()
        with self._db.transaction():
            self._db.execute(
                "INSERT INTO conversations (name, script, cast_json, seed, created, modified) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET script = "
                "excluded.script, cast_json = excluded.cast_json, seed = excluded.seed, "
                "modified = excluded.modified",
                (name, script, json.dumps(cast), int(seed), now, now),
            )
            conversation_id = self._conversation_id(name)
            for index, speaker, text in self._db.execute(
                "SELECT line_index, speaker, text FROM conversation_lines "
                "WHERE conversation_id = ?",
                (conversation_id,),
            ).fetchall():
                if index >= len(turns) or tuple(turns[index]) != (speaker, text):
                    self._db.execute(
                        "DELETE FROM conversation_lines WHERE conversation_id = ? "
                        "AND line_index = ?",
                        (conversation_id, index),
                    )
        return self.conversation(name)

    def set_conversation_line(
        self,
        name: str,
        index: int,
        speaker: str,
        text: str,
        take_id: int,
        codes: np.ndarray,
        report: dict[str, Any],
    ) -> None:
        """Keep line ``index`` of a stored conversation (replacing the one made before)."""
        codes_file = self.store_codes(codes)
        with self._db.transaction():
            conversation_id = self._conversation_id(name)
            self._db.execute(
                "INSERT OR REPLACE INTO conversation_lines (conversation_id, line_index, speaker, "
                "text, take_id, codes_file, report) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    conversation_id,
                    index,
                    speaker,
                    text,
                    take_id,
                    self._relative(codes_file),
                    json.dumps(report),
                ),
            )
            self._db.execute(
                "UPDATE conversations SET modified = ? WHERE id = ?", (time.time(), conversation_id)
            )

    def _conversation_id(self, name: str) -> int:
        row = self._db.execute("SELECT id FROM conversations WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise LibraryError(f"no conversation named {name!r} in the library")
        return int(row[0])

    def conversation(self, name: str) -> ConversationRecord:
        """One stored conversation with its lines.

        Raises:
            LibraryError: no such conversation.
        """
        found = self._conversations("WHERE name = ?", (name,))
        if not found:
            raise LibraryError(f"no conversation named {name!r} in the library")
        return found[0]

    def conversations(self) -> list[ConversationRecord]:
        """Every stored conversation, the last changed first."""
        return self._conversations("ORDER BY modified DESC, id DESC", ())

    def _conversations(self, where: str, args: tuple[Any, ...]) -> list[ConversationRecord]:
        rows = self._db.execute(
            "SELECT id, name, script, cast_json, seed, created, modified FROM conversations "
            + where,
            args,
        ).fetchall()
        out = []
        for row in rows:
            lines = tuple(
                ConversationLineRecord(
                    index, speaker, text, self.take(take_id), self.folder / codes, json.loads(rep)
                )
                for index, speaker, text, take_id, codes, rep in self._db.execute(
                    "SELECT line_index, speaker, text, take_id, codes_file, report FROM "
                    "conversation_lines WHERE conversation_id = ? ORDER BY line_index",
                    (row[0],),
                )
            )
            out.append(
                ConversationRecord(
                    row[0], row[1], row[2], json.loads(row[3]), row[4], row[5], row[6], lines
                )
            )
        return out

    def remove_conversation(self, name: str) -> None:
        """Forget a conversation (its lines' takes stay in the history)."""
        with self._db.transaction():
            conversation_id = self._conversation_id(name)
            self._db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    # -- housekeeping --------------------------------------------------------------------------

    def referenced_files(self) -> set[Path]:
        """Every file of the audio folder a clip, a take or a conversation line points at."""
        rows = self._db.rows(
            "SELECT file FROM clips UNION SELECT file FROM takes "
            "UNION SELECT codes_file FROM conversation_lines"
        )
        return {(self.folder / row[0]).resolve() for row in rows}

    def unreferenced_files(self, keep: Iterable[Path] = ()) -> list[Path]:
        """Files of the audio folder nothing points at any more, except those in ``keep`` (what
        an undo could bring back) and those written or reused in the last ``grace_seconds``."""
        held = self.referenced_files() | {Path(f).resolve() for f in keep}
        settled = time.time() - self.grace_seconds
        found = []
        for f in self.audio_dir.rglob("*"):
            if f.suffix not in (".wav", ".npy") or f.resolve() in held:
                continue
            with contextlib.suppress(FileNotFoundError):  # another program removed it
                info = f.stat()
                if stat.S_ISREG(info.st_mode) and info.st_mtime < settled:
                    found.append(f)
        return sorted(found)

    def remove_files(self, files: Iterable[Path], keep: Iterable[Path] = ()) -> tuple[int, int]:
        """Delete those of ``files`` that are still unreferenced; how many and how many bytes.

        Decided and done inside one write transaction: no other program can record a row that
        points at a file between the check and the removal, and a file it is about to record was
        written or touched moments before (inside the grace period).
        """
        count = size = 0
        with self._db.transaction():
            still = set(self.unreferenced_files(keep))
            for file in files:
                if file in still:
                    with contextlib.suppress(FileNotFoundError):
                        size += file.stat().st_size
                        file.unlink()
                        count += 1
        return count, size

    def _relative(self, file: Path) -> str:
        return file.relative_to(self.folder).as_posix()


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (no semicolons inside our statements)."""
    return [s.strip() for s in script.split(";") if s.strip()]


MANIFEST = "manifest.json"
BUNDLE_FORMAT = "csm-studio-voice"


def export_voice(library: Library, name: str, target: Path) -> Path:
    """Write a voice as a portable zip: manifest.json plus one WAV per clip (atomically)."""
    import zipfile

    voice = library.voice(name)
    entries = [
        {"file": f"clips/{i:02d}.wav", "transcript": c.transcript, "source": c.source}
        for i, c in enumerate(voice.clips)
    ]
    manifest = {
        "format": BUNDLE_FORMAT,
        "version": 1,
        "name": voice.name,
        "notes": voice.notes,
        "consent_confirmed": voice.consent_confirmed,
        "clips": entries,
    }
    with atomic_write(target) as handle, zipfile.ZipFile(handle, "w") as bundle:
        bundle.writestr(MANIFEST, json.dumps(manifest, indent=2))
        for entry, clip in zip(entries, voice.clips, strict=True):
            bundle.write(clip.file, entry["file"])
    return target


BUNDLE_MEMBER_BYTES = 64_000_000
"""The largest member of a voice bundle (a 5-minute clip as the library keeps it is ~29 MB)."""
BUNDLE_TOTAL_BYTES = 512_000_000
"""All members of a bundle together (room for a voice of many clips)."""
BUNDLE_MAX_CLIPS = 100


def import_voice(
    library: Library, source: Path, *, consent: bool, name: str | None = None
) -> VoiceRecord:
    """Add the voice in a zip made by :func:`export_voice` (optionally under another name).

    The bundle is distrusted: each member's size and their total are checked from the zip's
    directory before anything is decompressed, each clip is opened by its content with a clip's
    length cap and prepared like a clip given to ``voices add`` (trimmed, normalized, at least
    2 s of sound), and the bundle's own consent flag is not taken as given: ``consent`` is the
    person's answer now.

    Raises:
        LibraryError: no consent, not such a zip, damaged, too large, or the name is taken.
        AudioFileError: a clip that is not audio, too long or too short.
    """
    import zipfile

    from desktop_app.audio.reference import reference_from_bytes

    if not consent:
        raise LibraryError(
            "a voice is imported only with the consent of the person it belongs to: confirm it "
            "(--consent)"
        )
    try:
        with zipfile.ZipFile(source) as bundle:
            _check_sizes(bundle, source)
            manifest = json.loads(bundle.read(MANIFEST))
            if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
                raise LibraryError(f"{source} is not a CSM Studio voice bundle")
            entries = manifest["clips"]
            if not isinstance(entries, list) or len(entries) > BUNDLE_MAX_CLIPS:
                raise LibraryError(
                    f"the voice bundle {source} lists more than {BUNDLE_MAX_CLIPS} clips"
                )
            clips = []
            for number, entry in enumerate(entries, start=1):
                audio = reference_from_bytes(
                    bundle.read(str(entry["file"])), what=f"clip {number} of {source.name}"
                )
                clips.append((audio, str(entry["transcript"]), str(entry["source"])))
    except (OSError, KeyError, TypeError, ValueError, zipfile.BadZipFile) as exc:
        raise LibraryError(f"cannot read the voice bundle {source}: {exc}") from exc
    if not clips:
        raise LibraryError(f"the voice bundle {source} holds no clips; export the voice again")
    return library.add_voice(
        name or str(manifest.get("name") or ""),
        clips,
        notes=str(manifest.get("notes", "")),
        consent_confirmed=True,
        rate=MODEL_RATE,
    )


def _check_sizes(bundle: Any, source: Path) -> None:
    """Refuse a bundle whose members would decompress past the caps (a zip bomb)."""
    total = 0
    for info in bundle.infolist():
        if info.file_size > BUNDLE_MEMBER_BYTES:
            raise LibraryError(
                f"{info.filename} in {source} would take {info.file_size / 1e6:.0f} MB: over "
                f"the {BUNDLE_MEMBER_BYTES / 1e6:.0f} MB a bundle's file may have"
            )
        total += info.file_size
    if total > BUNDLE_TOTAL_BYTES:
        raise LibraryError(
            f"{source} would take {total / 1e6:.0f} MB once unpacked: over the "
            f"{BUNDLE_TOTAL_BYTES / 1e6:.0f} MB a voice bundle may have"
        )
