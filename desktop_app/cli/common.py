"""What the commands share: exit codes, the parser, the voice and sampling arguments, checking
output paths, loading an engine, the progress bar, and keeping a take.

Heavy packages (torch, transformers, soundfile, ...) are imported inside the functions that need
them, so ``--help`` and a bad command line answer at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from desktop_app import defaults
from desktop_app.errors import OutputFileError, RequestError

if TYPE_CHECKING:
    from desktop_app.inference.engine import (
        BatchEngine,
        GenerationRequest,
        GenerationResult,
        ReferenceClip,
    )
    from desktop_app.library.store import Library

EXIT_OK, EXIT_INTERNAL, EXIT_USER, EXIT_INTERRUPTED = 0, 1, 2, 130
"""0 success, 1 an internal error (traceback in the log) or a failed self-test, 2 a user error,
130 Ctrl+C."""


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line as one ``error:`` line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER, f"error: {message} (see `{self.prog} --help`)\n")


def add_model_argument(
    parser: argparse.ArgumentParser, what: str = "checkpoint folder or hub id"
) -> None:
    """--model, defaulting to CSM-1B."""
    parser.add_argument("--model", default=defaults.MODEL_ID, help=what)


def add_voice_arguments(parser: argparse.ArgumentParser) -> None:
    """--model, and the voice: --voice NAME or --ref/--ref-text pairs (and --denoise)."""
    add_model_argument(parser)
    parser.add_argument(
        "--voice", metavar="NAME", help="a voice from the library (instead of --ref/--ref-text)"
    )
    parser.add_argument(
        "--ref",
        action="append",
        default=[],
        metavar="FILE",
        help="reference recording of the voice (repeatable)",
    )
    parser.add_argument(
        "--ref-text",
        action="append",
        default=[],
        metavar="TEXT",
        help="exact transcript of each --ref, in the same order",
    )
    parser.add_argument("--denoise", action="store_true", help="lightly denoise the references")


def add_sampling_arguments(parser: argparse.ArgumentParser) -> None:
    """Device, engine, seed and the sampling settings."""
    parser.add_argument("--device", default=defaults.DEVICE, choices=defaults.DEVICES)
    parser.add_argument("--engine", default=None, help="inference engine (default: the fastest)")
    parser.add_argument(
        "--quantize",
        default="none",
        choices=("none", "int8"),
        help="int8: int8 weights for the fast engine on the CPU (about 3x faster per frame on "
        "the full model, approximate)",
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument(
        "--temperature", type=float, default=defaults.TEMPERATURE, help="0 means greedy"
    )
    parser.add_argument("--top-k", type=int, default=defaults.TOP_K)
    parser.add_argument("--top-p", type=float, default=defaults.TOP_P)
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=defaults.MAX_SECONDS,
        help=f"longest audio to generate (default {defaults.MAX_SECONDS:g})",
    )


def check_output(path: str, suffixes: tuple[str, ...], what: str) -> Path:
    """``path`` as a file that can be written, with one of ``suffixes``.

    Raises:
        OutputFileError: a wrong suffix, or a folder that is missing or not writable.
    """
    out = Path(path).expanduser()
    if out.suffix.lower() not in suffixes:
        raise OutputFileError(f"{what} {out.name}: the name must end in {' or '.join(suffixes)}")
    if not out.parent.is_dir():
        raise OutputFileError(f"cannot write {out}: the folder {out.parent} does not exist")
    if not os.access(out.parent, os.W_OK):
        raise OutputFileError(f"cannot write {out}: the folder {out.parent} is not writable")
    return out


def check_voice_arguments(args: argparse.Namespace) -> None:
    """Exactly one way of giving the voice, with one transcript per reference."""
    if args.voice and (args.ref or args.ref_text):
        raise RequestError("give either --voice or --ref/--ref-text, not both")
    if not args.voice and not args.ref:
        raise RequestError(
            "give the voice: --voice NAME from the library, or --ref FILE with --ref-text TEXT"
        )
    if len(args.ref) != len(args.ref_text):
        raise RequestError(
            f"{len(args.ref)} --ref file(s) but {len(args.ref_text)} --ref-text; give one "
            f"transcript per reference, in the same order"
        )


def engine_choice(args: argparse.Namespace) -> str:
    """The engine asked for (default: the fastest), checked."""
    from desktop_app.inference import ENGINE_NAMES

    name = str(args.engine or defaults.ENGINE)
    if name not in ENGINE_NAMES:
        raise RequestError(f"unknown engine {name!r}; choose one of {', '.join(ENGINE_NAMES)}")
    return name


def sampling_request(args: argparse.Namespace, text: str) -> GenerationRequest:
    """The request the sampling arguments describe, for ``text`` and without a voice yet.

    Raises:
        RequestError: a setting out of range or an empty text (before anything slow happens).
    """
    from desktop_app.inference import GenerationRequest
    from desktop_app.inference.prompt import check_request

    request = GenerationRequest(
        text=text,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
        max_seconds=args.max_seconds,
    )
    check_request(request)
    return request


def voice_references(
    args: argparse.Namespace, voice: str | None, library: Library | None
) -> tuple[ReferenceClip, ...]:
    """The reference clips: the library voice ``voice``, else the --ref files."""
    from desktop_app.inference import ReferenceClip

    if voice:
        if library is None:
            raise RequestError(f"the voice {voice!r} needs the library, which is not open")
        return tuple(ReferenceClip(c.audio(), c.transcript) for c in library.voice(voice).clips)
    from desktop_app.audio.reference import load_reference

    return tuple(
        ReferenceClip(load_reference(path, denoise=args.denoise), text)
        for path, text in zip(args.ref, args.ref_text, strict=True)
    )


def open_library() -> Library | None:
    """The library for a command that records takes; None (said on stderr) when it cannot open.

    A take is still written then; it is just not added to the history.
    """
    from desktop_app.library.store import Library, LibraryError

    try:
        return Library()
    except LibraryError as exc:
        status(f"note: the takes will not be added to the history: {exc}")
        return None


def load_for(args: argparse.Namespace, engine_name: str) -> tuple[Path, BatchEngine]:
    """Find the checkpoint and load the engine, saying so on stderr."""
    from desktop_app.inference import load_engine
    from desktop_app.inference.model_store import resolve_model

    model_dir = resolve_model(args.model)
    quiet_transformers()
    status(f"loading {args.model} ({engine_name}) ...")
    quantize = "" if args.quantize == "none" else args.quantize
    engine = load_engine(engine_name, model_dir, args.device, quantize)
    status(f"loaded in {engine.load_seconds:.1f} s on {engine.device} ({engine.dtype})")
    return model_dir, engine


def keep(
    args: argparse.Namespace,
    request: GenerationRequest,
    result: GenerationResult,
    file: Path,
    library: Library | None,
    revision: str,
    voice: str | None = None,
) -> None:
    """Write the take to ``file`` and record it in the history, saying how that went."""
    from desktop_app.takes import keep_take

    kept = keep_take(
        request,
        result,
        model=args.model,
        file=file,
        library=library,
        voice=voice,
        model_revision=revision,
    )
    if kept.record is not None:
        status(f"recorded in the history as take {kept.record.id}")
    elif library is not None:
        status(f"note: the take was saved but not added to the history: {kept.problem}")


def status(line: str) -> None:
    """A line for the person at the terminal (stderr, so stdout stays the command's output)."""
    print(line, file=sys.stderr, flush=True)


def quiet_transformers() -> None:
    """No transformers warnings or progress bars on the terminal (the log keeps what matters)."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


class FrameBar:
    """A text progress bar on a terminal (tqdm); silent when stderr is not a terminal."""

    def __init__(self, max_seconds: float) -> None:
        from tqdm import tqdm

        self._bar = tqdm(
            total=round(max_seconds, 1),
            unit="s audio",
            desc="generating",
            file=sys.stderr,
            disable=not sys.stderr.isatty(),
            bar_format="{desc}: {bar} {n:.1f}/{total:.1f} s of audio [{elapsed}]",
        )

    def update(self, frames: int, seconds: float) -> None:
        """A progress callback: (frames made, seconds of audio made)."""
        self._bar.n = min(round(seconds, 1), self._bar.total)
        self._bar.refresh()

    def __enter__(self) -> FrameBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.close()
