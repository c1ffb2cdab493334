"""``transcribe``: what is said in audio files, with word times (offline, Whisper)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from desktop_app import defaults
from desktop_app.cli import common
from desktop_app.cli.common import EXIT_OK


def register(sub: Any) -> None:
    """Add ``transcribe`` to the sub-command parser ``sub``."""
    transcribe = sub.add_parser("transcribe", help="print what is said in audio files")
    transcribe.add_argument("files", nargs="+", metavar="FILE", help="audio files (any format)")
    common.add_listen_arguments(transcribe, checks=False)
    transcribe.add_argument("--device", default=defaults.DEVICE, choices=defaults.DEVICES)
    transcribe.add_argument(
        "--language", default=None, help="the language spoken, e.g. en (default: detected)"
    )
    transcribe.add_argument(
        "--json",
        action="store_true",
        help='print [{"file", "text", "words": [{"word", "start", "end"}]}] (seconds)',
    )
    transcribe.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Transcribe each file in turn; every file is read first, so a bad one fails at once."""
    from tqdm import tqdm

    from desktop_app.audio.dsp import to_mono
    from desktop_app.audio.io import read_audio
    from desktop_app.checks.listen import transcribe_audio
    from desktop_app.defaults import MAX_RECORDING_SECONDS
    from desktop_app.inference.compute_device import pick_device

    # a session to transcribe may be long: the recording cap, not a clip's
    decoded = [(path, read_audio(path, max_seconds=MAX_RECORDING_SECONDS)) for path in args.files]
    common.quiet_transformers()
    recognizer = common.load_recognizer(
        args, pick_device(args.device).type, needed_for="transcribe needs a recognition model"
    )
    assert recognizer is not None
    results = []
    for path, audio in decoded:
        with tqdm(
            total=100,
            desc=f"transcribing {path}",
            file=sys.stderr,
            disable=not sys.stderr.isatty(),
            bar_format="{desc}: {bar} {percentage:.0f}% [{elapsed}<{remaining}]",
        ) as bar:

            def progress(share: float, bar: Any = bar) -> None:
                bar.n = round(100 * share)
                bar.refresh()

            heard = transcribe_audio(
                recognizer,
                to_mono(audio.samples),
                audio.sample_rate,
                what=str(path),
                language=args.language,
                on_progress=progress,
            )
        results.append((path, heard))
        if not args.json:
            print(heard.text if len(args.files) == 1 else f"{path}: {heard.text}", flush=True)
    if args.json:
        print(json.dumps([{"file": str(p), **h.as_json()} for p, h in results], indent=2))
    return EXIT_OK
