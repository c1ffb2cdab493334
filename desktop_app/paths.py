"""Every on-disk location of the app in one place.

``CSM_STUDIO_HOME`` puts all of them under one folder (tests, portable installs); otherwise the
platform's usual folders are used (platformdirs).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

_APP_DIR_NAME = "csm-studio"


def _home_override() -> Path | None:
    value = os.environ.get("CSM_STUDIO_HOME")
    return Path(value).expanduser() if value else None


def data_dir() -> Path:
    """Folder for the voice library and takes."""
    home = _home_override()
    if home is not None:
        return home / "data"
    return Path(platformdirs.user_data_dir(_APP_DIR_NAME, appauthor=False))


def config_dir() -> Path:
    """Folder for settings."""
    home = _home_override()
    if home is not None:
        return home / "config"
    return Path(platformdirs.user_config_dir(_APP_DIR_NAME, appauthor=False))


def log_dir() -> Path:
    """Folder for the log file."""
    home = _home_override()
    if home is not None:
        return home / "logs"
    return Path(platformdirs.user_log_dir(_APP_DIR_NAME, appauthor=False))


def log_file() -> Path:
    """The app's log file (rotated)."""
    return log_dir() / "csm-studio.log"


def private_folder(path: Path) -> Path:
    """Create ``path`` (and its parents) readable by this user only: it will hold voices."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path
