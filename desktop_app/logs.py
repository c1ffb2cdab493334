"""Logging to a rotating file in the log folder; the terminal only sees user-facing lines."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from desktop_app import paths

_configured: Path | None = None


def configure_logging(level: int = logging.INFO) -> Path:
    """Send this process's log records to the log file and return the file's path."""
    global _configured
    target = paths.log_file()
    if _configured == target:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        target, maxBytes=2_000_000, backupCount=3, encoding="utf-8"
    )
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_csm_studio", False)]:
        root.removeHandler(old)
        old.close()
    handler._csm_studio = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    _configured = target
    return target
