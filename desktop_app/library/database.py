"""The library's SQLite connection and its errors: every ``sqlite3`` error leaves it as a
:class:`LibraryError`, so no face ever sees a raw database error. Rows come back as
``sqlite3.Row`` (read by column name)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from desktop_app.errors import UserError


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


class Database:
    """The library's SQLite connection: every ``sqlite3`` error leaves it as a
    :class:`LibraryError` (:class:`LibraryBusy` when another program held the database past the
    wait, :class:`LibraryConflict` for a constraint), so no face ever sees a raw database error."""

    def __init__(self, path: Path, busy_seconds: float) -> None:
        self.path = path
        self.busy_seconds = busy_seconds
        with self.errors():
            self.connection = sqlite3.connect(path, timeout=busy_seconds, isolation_level=None)
            self.connection.row_factory = sqlite3.Row
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

    def insert(self, table: str, values: Mapping[str, Any]) -> sqlite3.Cursor:
        """``INSERT INTO table`` of the named ``values`` (the columns as the caller declared
        them: names never come from outside)."""
        names = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        return self.execute(
            f"INSERT INTO {table} ({names}) VALUES ({marks})", tuple(values.values())
        )

    def version(self) -> int:
        """The schema version (``PRAGMA user_version``)."""
        return int(self.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        self.connection.close()
