"""The command line's library commands: ``voices ...`` and ``history ...``."""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from desktop_app import defaults
from desktop_app.cli import common
from desktop_app.cli.common import EXIT_OK, printable, status
from desktop_app.errors import RequestError

if TYPE_CHECKING:
    from desktop_app.library.store import Library


def register(sub: Any) -> None:
    """Add ``voices`` and ``history`` to the sub-command parser ``sub``."""
    voices = sub.add_parser("voices", help="the voice library: add, list, remove, export, import")
    vsub = voices.add_subparsers(dest="voices_command", required=True, parser_class=type(voices))
    add = vsub.add_parser("add", help="store a voice from clips and their transcripts")
    add.add_argument("name")
    add.add_argument("--clip", action="append", required=True, metavar="FILE")
    add.add_argument(
        "--transcript",
        action="append",
        default=[],
        metavar="TEXT",
        help="exact transcript of each --clip, in order (leave all out to have them transcribed)",
    )
    add.add_argument("--notes", default="")
    add.add_argument(
        "--consent",
        action="store_true",
        help="confirm that the person whose voice this is agreed to its cloning",
    )
    add.add_argument("--denoise", action="store_true")
    common.add_listen_arguments(add, checks=False)
    add.add_argument("--device", default=defaults.DEVICE, choices=defaults.DEVICES)
    listing = vsub.add_parser("list", help="list the voices")
    listing.add_argument("--json", action="store_true")
    remove = vsub.add_parser("remove", help="remove a voice (its takes stay)")
    remove.add_argument("name")
    untrain = vsub.add_parser("untrain", help="remove a voice's training (its clips stay)")
    untrain.add_argument("name")
    evaluate = vsub.add_parser(
        "evaluate", help="what a voice's training bought: its held-out sentences before and after"
    )
    evaluate.add_argument("name")
    common.add_model_argument(evaluate)
    common.add_listen_arguments(evaluate, checks=False)
    evaluate.add_argument(
        "--speaker-model", default=None, metavar="M",
        help=f"speaker-verification checkpoint (default: {defaults.SPEAKER_MODEL_ID})",
    )  # fmt: skip
    evaluate.add_argument("--device", default=defaults.DEVICE, choices=defaults.DEVICES)
    evaluate.add_argument(
        "--quantize", default="auto", choices=defaults.WEIGHTS,
        help="the weights (default: int8 on the CPU)",
    )  # fmt: skip
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--json", action="store_true", help='print {"before", "after", ...}')
    export = vsub.add_parser("export", help="write a voice as a portable zip")
    export.add_argument("name")
    export.add_argument("file")
    imported = vsub.add_parser("import", help="add a voice from a zip made by export")
    imported.add_argument("file")
    imported.add_argument("--name", default=None, help="store it under another name")
    imported.add_argument(
        "--consent",
        action="store_true",
        help="confirm that the person whose voice this is agreed to its cloning (asked when "
        "left out at a terminal)",
    )
    voices.set_defaults(handler=run_voices)

    history = sub.add_parser("history", help="the takes made so far")
    hsub = history.add_subparsers(dest="history_command", required=True, parser_class=type(history))
    hlist = hsub.add_parser("list", help="list takes, newest first")
    hlist.add_argument("--json", action="store_true")
    hlist.add_argument("--voice", default=None)
    hlist.add_argument(
        "--flagged", action="store_true", help="only takes whose check found something"
    )
    hexport = hsub.add_parser("export", help="copy a take's audio to a file")
    hexport.add_argument("id", type=int)
    hexport.add_argument("file")
    history.set_defaults(handler=run_history)


def ask_consent(args: argparse.Namespace, whose: str) -> bool:
    """``--consent``, else the answer at the terminal (no terminal: no consent)."""
    if args.consent:
        return True
    if sys.stdin.isatty():
        answer = input(f"Did the person whose voice {whose} is agree to its cloning? [y/N] ")
        return answer.strip().lower() in {"y", "yes"}
    return False


def run_voices(args: argparse.Namespace) -> int:
    """``voices add|list|remove|export|import``."""
    from desktop_app.library.store import Library

    with Library() as library:
        return _voices(args, library)


def _voices(args: argparse.Namespace, library: Library) -> int:
    from desktop_app.library.bundles import export_voice, import_voice

    command = args.voices_command
    if command == "add":
        from desktop_app.audio.reference import load_reference

        if args.transcript and len(args.clip) != len(args.transcript):
            raise RequestError(
                "give one --transcript per --clip, in the same order, or none to have the "
                "clips transcribed"
            )
        if not ask_consent(args, printable(repr(args.name))):
            raise RequestError(
                "a voice is stored only with the consent of the person it "
                "belongs to: confirm it with --consent"
            )
        audio = [load_reference(path, denoise=args.denoise) for path in args.clip]
        texts = list(args.transcript) or _transcribed(args, audio)
        clips = [(a, text, "imported") for a, text in zip(audio, texts, strict=True)]
        voice = library.voices.add(args.name, clips, notes=args.notes, consent_confirmed=True)
        seconds = sum(c.duration for c in voice.clips)
        name = printable(repr(voice.name))
        print(f"stored voice {name}: {len(voice.clips)} clip(s), {seconds:.1f} s")
    elif command == "evaluate":
        _evaluate(args, library)
    elif command == "untrain":
        if not library.adapters.detach(args.name):
            raise RequestError(f"the voice {args.name!r} is not trained")
        print(f"removed the training of voice {printable(repr(args.name))}; its clips stay")
    elif command == "list":
        voices = library.voices.all()
        if args.json:
            print(
                json.dumps(
                    [
                        {
                            "name": v.name,
                            "notes": v.notes,
                            "consent_confirmed": v.consent_confirmed,
                            "created": v.created,
                            "clips": [
                                {
                                    "transcript": c.transcript,
                                    "seconds": c.duration,
                                    "source": c.source,
                                }
                                for c in v.clips
                            ],
                        }
                        for v in voices
                    ],
                    indent=2,
                )
            )
        else:
            for v in voices:
                print(
                    f"{printable(v.name)}\t{len(v.clips)} clip(s)\t"
                    f"{sum(c.duration for c in v.clips):.1f} s\t{printable(v.notes)}"
                )
    elif command == "remove":
        library.voices.remove(args.name)
        print(f"removed voice {args.name!r} (its takes stay in the history)")
    elif command == "export":
        target = export_voice(library, args.name, Path(args.file).expanduser())
        print(f"exported {args.name!r} to {target}")
    else:
        source = Path(args.file).expanduser()
        consent = ask_consent(args, f"in {printable(source.name)}")
        voice = import_voice(library, source, consent=consent, name=args.name)
        print(f"imported voice {printable(repr(voice.name))} ({len(voice.clips)} clip(s))")
    return EXIT_OK


def _transcribed(args: argparse.Namespace, audio: list[Any]) -> list[str]:
    """Each clip's transcript as the recogniser hears it, printed for the user to check."""
    from desktop_app.checks.listen import transcribe_audio
    from desktop_app.defaults import SAMPLE_RATE
    from desktop_app.inference.compute_device import pick_device

    common.quiet_transformers()
    recognizer = common.load_recognizer(
        args,
        pick_device(args.device).type,
        needed_for="--clip has no --transcript and no speech-recognition model is installed to "
        "transcribe it: give --transcript TEXT",
    )
    assert recognizer is not None
    texts = []
    for path, clip in zip(args.clip, audio, strict=True):
        heard = transcribe_audio(recognizer, clip, SAMPLE_RATE, what=str(path)).text
        print(f"heard in {path}: {printable(heard)}")
        texts.append(heard)
    return texts


def run_history(args: argparse.Namespace) -> int:
    """``history list|export``."""
    from desktop_app.library.store import Library

    with Library() as library:
        return _history(args, library)


def _history(args: argparse.Namespace, library: Library) -> int:
    if args.history_command == "list":
        takes = library.takes.list(voice=args.voice, flagged_only=args.flagged)
        if args.json:
            print(
                json.dumps(
                    [
                        {
                            "id": t.id,
                            "voice": t.voice,
                            "text": t.text,
                            "settings": t.settings,
                            "seed": t.seed,
                            "model": t.model,
                            "engine": t.engine,
                            "device": t.device,
                            "timings": t.timings,
                            "file": str(t.file),
                            "created": t.created,
                            "favourite": t.favourite,
                            "verdict": t.verdict,
                            "check": t.check,
                            "source": t.source,  # "" for takes made before it was kept
                        }
                        for t in takes
                    ],
                    indent=2,
                )
            )
        else:
            for t in takes:
                when = datetime.datetime.fromtimestamp(t.created).strftime("%Y-%m-%d %H:%M")
                verdict = t.verdict or "-"
                voice = printable(t.voice or "-")
                print(f"{t.id}\t{when}\t{voice}\tseed {t.seed}\t{verdict}\t{printable(t.text)}")
                if t.flagged and t.check.get("reasons"):
                    print(f"\t\t{printable('; '.join(t.check['reasons']))}")
        return EXIT_OK
    take = library.takes.get(args.id)
    target = Path(args.file).expanduser()
    from desktop_app.audio.io import read_audio, write_audio
    from desktop_app.defaults import MAX_RECORDING_SECONDS
    from desktop_app.takes import record_metadata

    decoded = read_audio(take.file, max_seconds=MAX_RECORDING_SECONDS)
    write_audio(target, decoded.samples, decoded.sample_rate, record_metadata(take))
    print(f"exported take {take.id} to {target}")
    return EXIT_OK


def _evaluate(args: argparse.Namespace, library: Library) -> None:
    """``voices evaluate``: the table, printed (or as JSON), and kept with the adapter."""
    from desktop_app.cli.train import evaluation_spec, print_evaluation
    from desktop_app.session.models import load_models
    from desktop_app.session.training import evaluate_voice

    if library.adapters.get(args.name) is None:
        library.voices.get(args.name)  # no such voice: the library's own message
        raise RequestError(f"the voice {args.name!r} is not trained; train it with train-voice")
    common.quiet_transformers()
    spec = evaluation_spec(args)
    models = load_models(spec, on_note=lambda note: status(f"note: {note}"))
    table = evaluate_voice(library, args.name, models, seed=args.seed)
    if args.json:
        print(json.dumps(table, indent=2))
    else:
        print_evaluation(table)
