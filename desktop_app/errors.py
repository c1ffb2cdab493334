"""User-facing errors: each carries a message a person can act on (what happened, what to do)."""

from __future__ import annotations

import logging
from dataclasses import dataclass


class UserError(Exception):
    """An error caused by input or environment that the user can fix; shown without a traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ModelNotFoundError(UserError):
    """No usable CSM checkpoint at the place the user named."""


class ModelDownloadError(UserError):
    """The explicit download of a checkpoint failed (network, licence, token)."""


class AudioFileError(UserError):
    """An audio file cannot be read or is unusable as a voice reference."""


class OutputFileError(UserError):
    """An output file cannot be written."""


class RequestError(UserError):
    """A generation request is invalid (empty text, too-long reference, bad settings)."""


class DeviceError(UserError):
    """The compute device asked for is not available."""


class GenerationCancelled(UserError):
    """The user cancelled a generation; nothing was produced."""

    def __init__(self, message: str = "generation cancelled") -> None:
        super().__init__(message)


class InternalError(Exception):
    """An unexpected failure, already logged with its traceback; not the user's to fix.

    Not a :class:`UserError`: code that catches user errors must not swallow these. Its message
    says where the details are.
    """


@dataclass(frozen=True)
class ErrorDescription:
    """How an error is shown to a person: one actionable sentence, and whether it is a bug."""

    message: str
    internal: bool


def describe(exc: BaseException) -> ErrorDescription:
    """The one description of an error for every face (CLI line, window dialog, later the API).

    A :class:`UserError` is shown as it is. Anything else is logged once with its traceback and
    described as "internal error (...); details in <log file>". An :class:`InternalError` was
    described (and logged) already: its message is kept.
    """
    if isinstance(exc, UserError):
        return ErrorDescription(str(exc), internal=False)
    if isinstance(exc, InternalError):
        return ErrorDescription(str(exc), internal=True)
    logging.getLogger(__name__).error("internal error", exc_info=exc)
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return ErrorDescription(f"internal error ({detail}); details in {_log_file()}", internal=True)


def _log_file() -> str:
    """The app's log file, as :func:`desktop_app.logs.configure_logging` set it up.

    Read from the logging handler it marked, so this module imports no path machinery (the
    inference package, which needs only torch, transformers and numpy, imports it).
    """
    for handler in logging.getLogger().handlers:
        if getattr(handler, "_csm_studio", False) and hasattr(handler, "baseFilename"):
            return str(handler.baseFilename)
    return "the log (logging was not set up)"


def as_internal(exc: BaseException) -> UserError | InternalError:
    """``exc`` itself when it is a user error, else an :class:`InternalError` describing it
    (logged): what a worker hands to the window across threads."""
    if isinstance(exc, UserError | InternalError):
        return exc
    return InternalError(describe(exc).message)
