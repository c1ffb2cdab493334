"""The voice library and take history: SQLite (stdlib sqlite3, WAL) plus audio files beside it.

:class:`Library` opens one library folder (``library.sqlite3`` and ``audio/``) and exposes its
parts, each its own module: ``files`` (:mod:`.files`: the content-named file store and its
clean-up), ``voices`` (:mod:`.voices`), ``takes`` (:mod:`.takes`), ``conversations``
(:mod:`.conversations`) and ``adapters`` (:mod:`.adapters`: trained voices). The schema and its
migrations are :mod:`.schema`, the connection and its errors :mod:`.database`, the records
:mod:`.records`, voice bundles :mod:`.bundles`.
"""

from __future__ import annotations

import os
from pathlib import Path

from desktop_app import paths
from desktop_app.library.adapters import Adapters
from desktop_app.library.conversations import Conversations
from desktop_app.library.database import LibraryError, busy_wait
from desktop_app.library.files import GRACE_SECONDS, FileStore
from desktop_app.library.schema import open_database
from desktop_app.library.takes import Takes
from desktop_app.library.voices import Voices


def library_dir() -> Path:
    """Where the library lives (the data folder; ``CSM_STUDIO_HOME`` moves it)."""
    return paths.data_dir() / "library"


class Library:
    """One library folder, opened (a context manager): its parts share one connection."""

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
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.audio_dir.mkdir(exist_ok=True)
            os.chmod(self.folder, 0o700)  # voices are personal: user-only
        except OSError as exc:
            raise LibraryError(
                f"cannot use the library folder {self.folder}: {exc.strerror or exc}"
            ) from exc
        self._db = open_database(
            self.db_path, busy_wait() if busy_seconds is None else busy_seconds
        )
        self.files = FileStore(self.folder, self._db, grace_seconds)
        self.voices = Voices(self._db, self.files)
        self.takes = Takes(self._db, self.files, self.voices)
        self.conversations = Conversations(self._db, self.files)
        self.adapters = Adapters(self._db, self.files, self.voices)

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
