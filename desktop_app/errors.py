"""User-facing errors: each carries a message a person can act on (what happened, what to do)."""

from __future__ import annotations


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
