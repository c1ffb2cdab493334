"""Saying a request, the same way for every face: make the take (one, the best of N, or a long
text chunk after chunk), listen back to it (or at least trim what follows the last speech), and
keep it: the file, then the history row.

A face passes what it knows as plain values and callbacks (:class:`SayOptions`,
:class:`Control`) and gets a :class:`~desktop_app.checks.best_of.MadeTake` back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from desktop_app.checks.best_of import MadeTake, make_take
from desktop_app.checks.take_check import TakeChecker
from desktop_app.takes import KeptTake, keep_take

if TYPE_CHECKING:
    from desktop_app.inference.engine import (
        AudioCallback,
        GenerationRequest,
        ProgressCallback,
        StopCheck,
    )
    from desktop_app.library.store import Library
    from desktop_app.session.models import LoadedModels, ModelNames

CheckLevel = Literal["full", "trim", "off"]
CHECK_LEVELS: tuple[CheckLevel, ...] = ("full", "trim", "off")
"""full: words and voice, with the listen-back models that are loaded; trim: only the tail after
the last speech cut (the speech detector; no recogniser, so lower latency); off: as made."""


@dataclass(frozen=True)
class SayOptions:
    """How a take is made beyond its request."""

    candidates: int = 1  # best of N (picked by the checks)
    coherent: bool = False  # a long text chunk after chunk, each on the ones before
    check: CheckLevel = "full"


@dataclass(frozen=True)
class Control:
    """A face's callbacks: progress of the frames, a stop flag, audio as it is made, and
    progress of the listening back."""

    on_progress: ProgressCallback | None = None
    should_stop: StopCheck | None = None
    on_audio: AudioCallback | None = None
    on_checking: Callable[[int, int], None] | None = None


_TRIM_ONLY = TakeChecker()  # no models: the ending is found and trimmed, nothing is scored


def checker_for(models: LoadedModels, level: CheckLevel) -> TakeChecker | None:
    """The checker a take gets at ``level`` (``full`` without listen-back models still trims)."""
    if level == "off":
        return None
    if level == "trim" or models.checker is None:
        return _TRIM_ONLY
    return models.checker


def say(
    models: LoadedModels,
    request: GenerationRequest,
    options: SayOptions = SayOptions(),
    control: Control = Control(),
) -> MadeTake:
    """Make ``request``'s take with ``models`` as ``options`` say, checked (or trimmed).

    Raises:
        RequestError: a request the model cannot serve, or candidates with the checks off.
        GenerationCancelled: ``control.should_stop`` said so.
    """
    from desktop_app.inference.long_text import is_long

    checker = checker_for(models, options.check)
    if options.coherent and is_long(request.text):
        from desktop_app.conversation.speak import speak_coherent

        return speak_coherent(
            models.engine,  # type: ignore[arg-type]  # both engines count prompt positions
            request,
            checker=checker,
            candidates=options.candidates,
            on_progress=control.on_progress,
            should_stop=control.should_stop,
            on_audio=control.on_audio,
        )
    return make_take(
        models.engine,
        request,
        checker,
        options.candidates,
        on_progress=control.on_progress,
        should_stop=control.should_stop,
        on_audio=control.on_audio,
        on_checking=control.on_checking,
    )


def keep(
    names: ModelNames,
    request: GenerationRequest,
    made: MadeTake,
    *,
    file: Path,
    library: Library | None,
    voice: str | None = None,
    source: str = "",
    private: bool = False,
) -> KeptTake:
    """Write the take to ``file`` and record it (with its check) in ``library``'s history, with
    the model's ``names`` (``LoadedModels.names``); a history that cannot take the row is said in
    the result, never raised.

    Raises:
        OutputFileError: the file cannot be written.
    """
    return keep_take(
        request,
        made.result,
        model=names.model,
        file=file,
        library=library,
        voice=voice,
        model_revision=names.revision,
        private=private,
        check=made.check,
        source=source,
    )
