"""The library's schema: its migrations (``PRAGMA user_version`` moves forward one at a time)
and opening a database at the current version. A database from a newer version, or a damaged
one, is refused with a clear message and left exactly as it is."""

from __future__ import annotations

import os
from pathlib import Path

from desktop_app.library.database import Database, LibraryError

SCHEMA_VERSION = 6

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
    # 5 -> 6: a trained voice's LoRA adapter (peft's two files, content-named in the file store)
    # and what the studio knows of it (the base model's identity, the settings, the evaluation)
    """
    CREATE TABLE adapters (
        voice_id INTEGER PRIMARY KEY REFERENCES voices(id) ON DELETE CASCADE,
        config_file TEXT NOT NULL,
        weights_file TEXT NOT NULL,
        info TEXT NOT NULL DEFAULT '{}',
        created REAL NOT NULL
    );
    """,
]
assert len(MIGRATIONS) == SCHEMA_VERSION


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (no semicolons inside our statements)."""
    return [s.strip() for s in script.split(";") if s.strip()]


def open_database(path: Path, busy_seconds: float) -> Database:
    """The database at ``path``, migrated to :data:`SCHEMA_VERSION` (user-only).

    Raises:
        LibraryError: written by a newer version, damaged, or busy past the wait.
    """
    db = Database(path, busy_seconds)
    try:
        version = db.version()
    except LibraryError:
        db.close()
        raise
    if version > SCHEMA_VERSION:
        db.close()
        raise LibraryError(
            f"the library {path} was written by a newer CSM Studio (schema {version}, "
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
    os.chmod(path, 0o600)
    return db
