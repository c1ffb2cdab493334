"""``train-voice``: train a voice on the user's own recordings (LoRA), and keep it in the library.

The work is the session layer's (:mod:`desktop_app.session.training`); this face reads the
arguments, prints progress a line at a time and the outcome.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from desktop_app import defaults
from desktop_app.cli import common
from desktop_app.cli.common import EXIT_OK, printable, status


def register(sub: Any) -> None:
    """Add ``train-voice`` to the sub-command parser ``sub``."""
    train = sub.add_parser(
        "train-voice",
        help="train a voice on recordings of it (LoRA) and keep it in the library",
    )
    train.add_argument("name", help="the voice (a library voice's clips are used too)")
    train.add_argument(
        "--audio",
        nargs="+",
        default=[],
        metavar="FILE",
        help="recordings of the voice: long sessions (cut at pauses) or single sentences",
    )
    train.add_argument(
        "--transcripts",
        type=Path,
        default=None,
        metavar="F",
        help="'file name|transcript' lines (LJSpeech's metadata.csv layout); a given "
        "transcript wins over what the recogniser hears",
    )
    train.add_argument(
        "--minutes", type=float, default=None, metavar="M",
        help="use at most M minutes of the usable audio",
    )  # fmt: skip
    train.add_argument("--steps", type=int, default=0, help="optimizer steps (default: 3 passes)")
    train.add_argument("--rank", type=int, default=16, help="the LoRA rank (default 16)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--resume", action="store_true",
        help="go on from the last checkpoint of this voice's run (and its training set)",
    )  # fmt: skip
    train.add_argument(
        "--replace", action="store_true", help="train a voice that is trained already again"
    )
    train.add_argument(
        "--consent",
        action="store_true",
        help="confirm that the person whose voice this is agreed to its cloning",
    )
    common.add_model_argument(train)
    common.add_listen_arguments(train)
    train.add_argument("--device", default=defaults.DEVICE, choices=defaults.DEVICES)
    train.add_argument(
        "--quantize", default="auto", choices=defaults.WEIGHTS,
        help="the weights the evaluation speaks with (default: int8 on the CPU)",
    )  # fmt: skip
    train.add_argument(
        "--no-evaluate", action="store_true",
        help="do not speak the held-out sentences before and after (voices evaluate does it later)",
    )  # fmt: skip
    train.set_defaults(handler=run)


def evaluation_spec(args: argparse.Namespace) -> Any:
    """The models an evaluation speaks and listens with: the fast engine (it speaks trained
    voices), the weights of --quantize, the listen-back models of --asr-model/--speaker-model."""
    from desktop_app.session.models import ModelSpec

    return ModelSpec(
        args.model,
        engine="fast",
        device=args.device,
        quantize=defaults.quantize_setting(args.quantize),
        asr_model=args.asr_model,
        speaker_model=args.speaker_model,
    )


def print_evaluation(table: dict[str, Any]) -> None:
    """The before/after table, a row per score."""
    print(f"{'':14}{'before':>10}{'after':>10}")
    for key, label in (("wer", "word errors"), ("voice_match", "voice match"), ("ended", "ended")):
        cells = [table[side][key] for side in ("before", "after")]
        shown = ["-" if c is None else f"{c:.2f}" for c in cells]
        print(f"{label:14}{shown[0]:>10}{shown[1]:>10}")
    where = "" if table["held_out"] else " (training sentences: none was held out)"
    print(f"{table['sentences']} sentence(s) each side{where}")
    for note in table["notes"]:
        print(f"note: {note}")


def run(args: argparse.Namespace) -> int:
    """Make (or, with --resume, reuse) the training set, train, keep the adapter."""
    from desktop_app.errors import RequestError
    from desktop_app.inference.compute_device import pick_device
    from desktop_app.inference.model_store import resolve_model
    from desktop_app.library.store import Library
    from desktop_app.session import training
    from desktop_app.session.models import ModelSpec
    from desktop_app.training.lora import TrainProgress, TrainSettings
    from desktop_app.training.training_set import (
        TrainingSet,
        read_session_file,
        read_transcripts,
        transcript_for,
    )

    if args.steps < 0 or args.rank < 1:
        raise RequestError("--steps must be 0 (automatic) or more and --rank at least 1")
    if args.minutes is not None and args.minutes <= 0:
        raise RequestError(f"--minutes must be above 0, not {args.minutes:g}")
    device = pick_device(args.device).type
    model_dir = resolve_model(args.model)
    transcripts = read_transcripts(args.transcripts) if args.transcripts else {}
    with Library() as library:
        training.check_name(library, args.name, args.replace)
        consent = _consent(args, library)  # asked before the work, not after it
        if not consent:
            raise RequestError(
                "a voice is stored only with the consent of the person it belongs to: "
                "confirm it with --consent"
            )
        set_folder = training.training_folder(args.name) / "set"
        if args.resume and (set_folder / "set.json").is_file():
            status(f"resuming with the training set in {set_folder}")
            training_set = TrainingSet.load(set_folder)
        else:
            sources = [read_session_file(Path(p), transcript_for(Path(p).name, transcripts))
                       for p in args.audio]  # fmt: skip
            sources += training.voice_sources(library, args.name)
            if not sources:
                raise RequestError(
                    f"nothing to train {args.name!r} on: give recordings with --audio (the "
                    "voice is not in the library either)"
                )
            common.quiet_transformers()
            spec = ModelSpec(args.model, device=args.device, asr_model=args.asr_model,
                             speaker_model=args.speaker_model, check=not args.no_check)  # fmt: skip
            training_set = training.prepare_set(
                args.name, sources, spec, device, minutes=args.minutes,
                on_note=lambda note: status(f"note: {note}"),
                on_progress=lambda what, share: None,
            )  # fmt: skip
        _print_review(training_set)
        settings = TrainSettings(rank=args.rank, alpha=2 * args.rank, steps=args.steps,
                                 seed=args.seed)  # fmt: skip

        def progress(report: TrainProgress) -> None:
            if report.message:
                status(report.message)
            else:  # a line a step (a step takes a minute or more on a CPU)
                left = f", {report.seconds_left:.0f} s left" if report.seconds_left else ""
                valid = (f", validation {report.validation_loss:.3f}"
                         if report.validation_loss is not None else "")  # fmt: skip
                status(f"step {report.step}/{report.steps}: loss {report.train_loss:.3f}"
                       f"{valid}{left}")  # fmt: skip

        result = training.train(args.name, model_dir, training_set, settings, device,
                                resume=args.resume, on_progress=progress)  # fmt: skip
        said = training.keep_trained(library, args.name, result, training_set, consent=consent)
    history = result.history
    best = (f"best validation loss {history.best_loss:.3f} at step {history.best_step}"
            if history.validation else f"kept the last step ({history.best_step})")  # fmt: skip
    print(f"{printable(said)}: {result.settings.steps} steps, {best}")
    if not args.no_evaluate:
        from desktop_app.session.models import load_models

        status("speaking the held-out sentences before and after the training ...")
        with Library() as library:
            models = load_models(evaluation_spec(args), on_note=lambda n: status(f"note: {n}"))
            print_evaluation(training.evaluate_voice(library, args.name, models, seed=args.seed))
    print(f"remove the training with: voices untrain {printable(args.name)}")
    return EXIT_OK


def _consent(args: argparse.Namespace, library: Any) -> bool:
    """A voice already in the library was stored with consent; a new one needs --consent (or
    the answer at a terminal, as ``voices add`` asks it)."""
    from desktop_app.cli.library import ask_consent

    if library.voices.id_of(args.name) is not None:
        return True
    return ask_consent(args, printable(repr(args.name)))


def _print_review(training_set: Any) -> None:
    """What the screening kept and left out, and how much there is."""
    left_out = [u for u in training_set.utterances if not u.usable]
    status(
        f"{len(training_set.usable())} usable utterance(s), {len(left_out)} left out; "
        f"{training_set.recommendation()}"
    )
    for utterance in left_out:
        reason = utterance.problem or "left out in the review"
        status(f"  left out {utterance.source} at {utterance.start:.1f} s: {reason}")
    for note in training_set.notes:
        status(f"note: {note}")
