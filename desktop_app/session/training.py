"""Training a voice, for every face: a session's recordings become a training set (in the data
folder, so a review and a run survive a restart), the set trains a LoRA adapter, and the adapter
is kept with the voice in the library (with the user's best clips for prompting).

The window's training part and ``train-voice`` both call these; neither loads a model itself.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from desktop_app import paths
from desktop_app.errors import RequestError

if TYPE_CHECKING:
    from desktop_app.library.store import Library
    from desktop_app.session.models import LoadedModels, ModelSpec
    from desktop_app.training.lora import Reporter, TrainResult, TrainSettings
    from desktop_app.training.training_set import SessionAudio, TrainingSet

Note = Callable[[str], None]
Progress = Callable[[str, float], None]
KEPT_CLIPS = 3
"""A trained voice keeps this many of its best utterances as reference clips."""


def training_folder(name: str) -> Path:
    """Where the voice ``name``'s training set and runs live (data folder, ``training/``)."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:40] or "voice"
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return paths.private_folder(paths.data_dir() / "training") / f"{slug}-{digest}"


def check_name(library: Library, name: str, replace: bool) -> None:
    """Refuse to train over a trained voice unless told to replace it.

    Raises:
        RequestError: the voice has an adapter and ``replace`` is False.
    """
    if library.voices.id_of(name) is None:
        return
    if library.adapters.get(name) is not None and not replace:
        raise RequestError(
            f"the voice {name!r} is trained already; train it again with --replace, or "
            f"remove its training with `voices untrain {name}`"
        )


def voice_sources(library: Library, name: str) -> list[SessionAudio]:
    """The clips of the library voice ``name`` (none when there is no such voice) as recordings
    with their transcripts."""
    from desktop_app.training.training_set import SessionAudio

    if library.voices.id_of(name) is None:
        return []
    voice = library.voices.get(name)
    return [
        SessionAudio(f"clip {n}", clip.audio(), clip.transcript)
        for n, clip in enumerate(voice.clips, start=1)
    ]


def prepare_set(
    name: str,
    sources: Sequence[SessionAudio],
    spec: ModelSpec,
    device: str,
    *,
    minutes: float | None = None,
    on_note: Note | None = None,
    on_progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainingSet:
    """Cut, transcribe and screen ``sources`` into the voice's training set (made anew).

    The recogniser and the speaker model are those of ``spec``, when installed (a note says what
    is missing).
    """
    import shutil

    from desktop_app.session.models import load_checker
    from desktop_app.training.training_set import build_training_set

    checker, notes = load_checker(spec, device)
    for note in notes:
        if on_note is not None:
            on_note(note)
    folder = training_folder(name) / "set"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    made = build_training_set(
        folder,
        sources,
        recognizer=checker.recognizer,
        encoder=checker.speaker,
        on_progress=on_progress,
        should_stop=should_stop,
    )
    if minutes is not None:
        made.limit_minutes(minutes)
        made.save()
    return made


def train(
    name: str,
    model_dir: Path,
    training_set: TrainingSet,
    settings: TrainSettings,
    device: str,
    *,
    resume: bool = False,
    on_progress: Reporter | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train the voice's adapter on ``training_set`` (``resume``: go on from the last
    checkpoint of the voice's run, if there is one)."""
    from desktop_app.training import lora

    model, processor = lora.load_base(model_dir, device)
    trainer = lora.Trainer(
        model, processor, model_dir, training_set, training_folder(name) / "run", settings
    )
    return trainer.run(resume=resume, on_progress=on_progress, should_stop=should_stop)


def best_clips(training_set: TrainingSet, count: int = KEPT_CLIPS) -> list[tuple[Any, str]]:
    """The utterances a trained voice keeps as its reference clips: the usable ones of 4-12 s
    (else any usable), longest first (the screening already left out other voices)."""
    usable = training_set.usable()
    fitting = [u for u in usable if 4.0 <= u.seconds <= 12.0] or usable
    chosen = sorted(fitting, key=lambda u: -u.seconds)[:count]
    return [(np.asarray(u.audio, dtype=np.float32), u.transcript) for u in chosen]


def keep_trained(
    library: Library,
    name: str,
    result: TrainResult,
    training_set: TrainingSet,
    *,
    consent: bool,
) -> str:
    """Keep the adapter with the voice ``name`` (made from the set's best clips if it is not in
    the library); what was done, in words.

    Raises:
        RequestError: a new voice without the consent of the person it belongs to.
    """
    import json

    from desktop_app.training.lora import ADAPTER_INFO

    info = json.loads((result.adapter / ADAPTER_INFO).read_text())
    made = ""
    if library.voices.id_of(name) is None:
        if not consent:
            raise RequestError(
                "a voice is stored only with the consent of the person it belongs to: "
                "confirm it with --consent"
            )
        clips = [(audio, text, "recorded") for audio, text in best_clips(training_set)]
        library.voices.add(name, clips, consent_confirmed=True)
        made = f" (a new voice, with {len(clips)} of its best utterances as clips)"
    library.adapters.attach(name, result.adapter, info)
    return f"the voice {name!r} is trained{made}"


def evaluate_voice(
    library: Library,
    name: str,
    models: LoadedModels,
    *,
    seed: int = 0,
    on_progress: Callable[[float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """The before/after table of the trained voice ``name`` (kept with its adapter too).

    Raises:
        RequestError: the voice is not trained, or its training set is gone.
    """
    from desktop_app.checks.take_check import TakeChecker
    from desktop_app.inference.random_checkpoint import is_random
    from desktop_app.session.voices import voice_adapter, voice_clips
    from desktop_app.training.evaluate import evaluate
    from desktop_app.training.training_set import TrainingSet

    adapter = voice_adapter(library, name)
    record = library.adapters.get(name)
    if adapter is None or record is None:
        raise RequestError(f"the voice {name!r} is not trained; train it with train-voice")
    training_set = TrainingSet.load(training_folder(name) / "set")
    table = evaluate(
        models.engine,
        models.checker or TakeChecker(),
        training_set,
        adapter,
        voice_clips(library.voices.get(name)),
        seed=seed,
        test_weights=is_random(models.model_dir),
        on_progress=on_progress,
        should_stop=should_stop,
    )
    library.adapters.update_info(name, {**record.info, "evaluation": table})
    return table
