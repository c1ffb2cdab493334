"""Keeping a take: its audio file (atomic, with metadata) and its row in the history.

Every face keeps its takes through :func:`keep_take`: the window's takes list, the CLI's
``clone`` and ``batch``, and later the local API and the cluster runner. The file is written
first and is complete either way; a history that cannot take the row is reported, never fatal,
so a made take is never lost to a library problem.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from desktop_app import paths
from desktop_app.audio.io import TakeMetadata, write_audio
from desktop_app.inference.engine import GenerationRequest, GenerationResult
from desktop_app.library.database import LibraryError
from desktop_app.library.records import TakeRecord
from desktop_app.library.store import Library

if TYPE_CHECKING:
    from desktop_app.checks.take_check import TakeCheck

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeptTake:
    """Where a take went: its file, and its history row (None, with the reason, if not kept)."""

    file: Path
    record: TakeRecord | None
    problem: str = ""


def take_metadata(
    request: GenerationRequest, result: GenerationResult, model: str, voice: str | None = None
) -> TakeMetadata:
    """What a take's file says about itself (text, model, seed, engine, voice)."""
    return TakeMetadata(
        text=request.text, model=model, seed=result.seed, engine=result.engine, voice=voice or ""
    )


def record_metadata(record: TakeRecord) -> TakeMetadata:
    """The same for a take of the history, when it is exported again."""
    return TakeMetadata(
        text=record.text,
        model=record.model,
        seed=record.seed,
        engine=record.engine,
        voice=record.voice or "",
    )


def keep_take(
    request: GenerationRequest,
    result: GenerationResult,
    *,
    model: str,
    file: Path,
    library: Library | None,
    voice: str | None = None,
    model_revision: str = "",
    private: bool = False,
    check: TakeCheck | None = None,
    source: str = "",
) -> KeptTake:
    """Write the take to ``file`` (WAV or FLAC), then record it in ``library``'s history.

    ``private`` makes the file readable by this user only (a cloned voice in the app's own
    folder). Without a library the take is only written. ``check``, the take's listen-back
    check, is kept with it; ``source`` says where the take was made ("api", ...).

    Raises:
        OutputFileError: the file cannot be written (nothing was recorded then).
    """
    write_audio(
        file,
        result.audio,
        result.sample_rate,
        take_metadata(request, result, model, voice),
        permissions=0o600 if private else 0o644,
    )
    if library is None:
        return KeptTake(file, None, "the library is not open")
    try:
        record = library.takes.record_result(
            request,
            result,
            model,
            voice=voice,
            model_revision=model_revision,
            check=check.as_json() if check is not None else None,
            source=source,
        )
    except LibraryError as exc:
        log.error("take %s kept but not recorded in the history: %s", file, exc)
        return KeptTake(file, None, str(exc))
    return KeptTake(file, record)


def session_take_file(number: int, seed: int) -> Path:
    """A new file name in the app's private takes folder for the window's take ``number``."""
    folder = paths.private_folder(paths.data_dir() / "takes")
    return folder / f"take-{time.strftime('%Y%m%d-%H%M%S')}-{number}-seed{seed}.wav"
