"""Logging to a rotating file in the log folder; the terminal only sees user-facing lines."""

from __future__ import annotations

import logging
import logging.handlers
import threading
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


def log_thread_errors() -> None:
    """Send exceptions that end a thread other than the main one to the log, with traceback.

    Python's default prints them to stderr, where a window user never sees them and a CLI
    user sees a traceback. The main thread's errors are handled by each face (CLI, window).
    """

    def hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        name = args.thread.name if args.thread is not None else "?"
        logging.getLogger(__name__).error(
            "unhandled error in thread %s",
            name,
            exc_info=(args.exc_type, args.exc_value, args.exc_traceback),  # type: ignore[arg-type]
        )

    threading.excepthook = hook
