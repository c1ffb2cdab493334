"""Loading what a face speaks with: the engine, and the listen-back models that are installed.

One :class:`ModelSpec` in (what the user named), one :class:`LoadedModels` out, the same for
every face. A listen-back model the user named must be there; a default one that is not
installed is a note (its part of the check is skipped), never a failure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from desktop_app import defaults
from desktop_app.errors import GenerationCancelled, ModelNotFoundError

if TYPE_CHECKING:
    from desktop_app.checks.take_check import TakeChecker
    from desktop_app.inference.asr import SpeechRecognizer
    from desktop_app.inference.engine import BatchEngine

Note = Callable[[str], None]


@dataclass(frozen=True)
class ModelSpec:
    """What to load: the checkpoint (a folder or a hub id in the local cache) and its engine,
    and the listen-back models (None: the device's default, when installed)."""

    model: str
    engine: str = defaults.ENGINE
    device: str = defaults.DEVICE
    quantize: str = "auto"  # "", "int8", "int4" or "auto" (see inference.weights_for)
    asr_model: str | None = None
    speaker_model: str | None = None
    check: bool = True  # load the listen-back models at all


@dataclass(frozen=True)
class ModelNames:
    """How a take names the checkpoint it was made with: as the user named it, and its revision
    (the download's commit, when known)."""

    model: str
    revision: str = ""


@dataclass(frozen=True)
class LoadedModels:
    """What a face speaks with: the engine, the checkpoint's names, the take checker (None with
    the checks off) and what was not loaded, as notes for the user."""

    engine: BatchEngine
    model: str  # as the user named it (a folder or a hub id)
    model_dir: Path
    checker: TakeChecker | None = None
    notes: tuple[str, ...] = ()

    @property
    def recognizer(self) -> SpeechRecognizer | None:
        return self.checker.recognizer if self.checker is not None else None

    @property
    def names(self) -> ModelNames:
        from desktop_app.inference.model_store import model_revision

        return ModelNames(self.model, model_revision(self.model_dir))


def load_models(
    spec: ModelSpec,
    on_note: Note | None = None,
    *,
    on_status: Note | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> LoadedModels:
    """The engine of ``spec`` and, with checks on, the listen-back models there are.

    ``on_status`` hears each step ("loading ..."); ``should_stop`` is asked between the steps
    (a load cannot stop inside transformers).

    Raises:
        ModelNotFoundError: the checkpoint, or a listen-back model named in ``spec``, is missing.
        GenerationCancelled: ``should_stop`` said so.
    """
    from desktop_app.inference import load_engine
    from desktop_app.inference.model_store import resolve_model

    def step(text: str) -> None:
        if should_stop is not None and should_stop():
            raise GenerationCancelled("the model load was cancelled")
        if on_status is not None:
            on_status(text)

    step(f"finding {spec.model}")
    folder = resolve_model(spec.model)
    step(f"loading {folder.name} ({spec.engine})")
    engine = load_engine(
        spec.engine,
        folder,
        spec.device,
        spec.quantize,
        on_status=on_status,
        should_stop=should_stop,
    )
    if not spec.check:
        return LoadedModels(engine, spec.model, folder)
    step("loading the listen-back models")
    checker, notes = load_checker(spec, engine.device)
    for note in notes:
        if on_note is not None:
            on_note(note)
    return LoadedModels(engine, spec.model, folder, checker, notes)


def listener_names(spec: ModelSpec, device: str, checker: TakeChecker) -> tuple[str, str]:
    """The recogniser's and the speaker model's names as ``checker`` has them ("" for one that
    is not loaded)."""
    asr = spec.asr_model or defaults.asr_model_for(device)
    speaker = spec.speaker_model or defaults.SPEAKER_MODEL_ID
    return (asr if checker.recognizer else "", speaker if checker.speaker else "")


def load_checker(spec: ModelSpec, device: str) -> tuple[TakeChecker, tuple[str, ...]]:
    """The take checker with the recogniser and the speaker model of ``spec`` (each when it is
    installed) on ``device``, and a note for each that is not.

    Raises:
        ModelNotFoundError: a model named in ``spec`` is missing.
    """
    from desktop_app.checks.take_check import TakeChecker
    from desktop_app.inference.asr import SpeechRecognizer
    from desktop_app.inference.model_store import ASR, SPEAKER, resolve_model
    from desktop_app.inference.speaker import SpeakerEncoder

    notes: list[str] = []
    recognizer = speaker = None
    try:
        asr = spec.asr_model or defaults.asr_model_for(device)
        recognizer = SpeechRecognizer(resolve_model(asr, ASR), device)
    except ModelNotFoundError as exc:
        if spec.asr_model:
            raise
        notes.append(f"the words of the takes are not checked: {exc}")
    try:
        voice = spec.speaker_model or defaults.SPEAKER_MODEL_ID
        speaker = SpeakerEncoder(resolve_model(voice, SPEAKER), device)
    except ModelNotFoundError as exc:
        if spec.speaker_model:
            raise
        notes.append(f"the voice of the takes is not checked: {exc}")
    return TakeChecker(recognizer, speaker), tuple(notes)
