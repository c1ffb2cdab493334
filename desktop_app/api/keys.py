"""The local API's key: one random key per install, in a user-only file of the config folder.

Both the window's server and ``serve`` use it unless another is given (``--api-key-file``, or
:data:`KEY_ENV` in the environment); never on a command line, where other accounts see it in
the process list. Clients read it from the file (``GET /health`` names the file, never the key).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path

from desktop_app import paths
from desktop_app.errors import RequestError
from desktop_app.files import atomic_write

KEY_ENV = "CSM_STUDIO_API_KEY"
"""An environment variable that gives the key instead of the install's file."""


def key_file() -> Path:
    """Where the install's key is kept."""
    return paths.config_dir() / "api-key"


def install_key(*, new: bool = False) -> str:
    """The install's key, made on first use (``new``: replaced by a new one).

    Two programs starting at once get the same key: the first file put in place wins.

    Raises:
        RequestError: the config folder cannot be written.
    """
    file = key_file()
    if not new:
        existing = _read(file)
        if existing:
            return existing
    paths.private_folder(file.parent)
    key = secrets.token_urlsafe(32)
    try:
        if new:
            with atomic_write(file, permissions=0o600) as handle:
                handle.write(key.encode())
            return key
        fd, temporary = tempfile.mkstemp(dir=file.parent, prefix=".api-key.")
        try:
            with os.fdopen(fd, "wb") as handle:  # mkstemp makes it user-only (0600)
                handle.write(key.encode())
                handle.flush()
                os.fsync(handle.fileno())
            os.link(temporary, file)  # never over a key another program just made
        except FileExistsError:
            return _read(file) or key
        finally:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
    except OSError as exc:
        raise RequestError(
            f"cannot keep the API key in {file}: {exc.strerror or exc}; check that folder"
        ) from exc
    return key


def _read(file: Path) -> str:
    with contextlib.suppress(OSError, UnicodeDecodeError):
        return file.read_text(encoding="utf-8").strip()
    return ""
