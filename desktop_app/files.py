"""Atomic file writing: a file appears complete or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from desktop_app.errors import OutputFileError, RequestError


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str], mode: str = "w+b", permissions: int = 0o644
) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success fsync it and rename it over ``path``.

    On any error the temporary file is removed and the old ``path`` (if any) is untouched.

    Raises:
        OutputFileError: the folder cannot be written (permission, read-only, disk full).
    """
    p = Path(path)
    tmp_name = ""
    try:
        fd, tmp_name = tempfile.mkstemp(dir=p.parent, prefix=f".{p.stem}.", suffix=".part")
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, permissions)
        os.replace(tmp_name, p)
        tmp_name = ""
        _fsync_dir(p.parent)
    except OSError as exc:
        raise OutputFileError(
            f"cannot write {p}: {exc.strerror or exc}; choose another folder or free some space"
        ) from exc
    finally:
        if tmp_name:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write a small text file atomically (see :func:`atomic_write`)."""
    with atomic_write(path, "w") as handle:
        handle.write(text)
    return Path(path)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read_secret(path: str | os.PathLike[str], what: str) -> str:
    """A secret (a key, a token) kept in a file: its first line.

    Raises:
        RequestError: the file cannot be read or is empty; ``what`` names the secret.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").strip().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise RequestError(f"cannot read the {what} file {path}: {exc}") from exc
    if not lines or not lines[0].strip():
        raise RequestError(f"the {what} file {path} is empty")
    return lines[0].strip()
