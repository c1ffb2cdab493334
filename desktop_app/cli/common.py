"""What the commands share: exit codes, the parser, the voice and sampling arguments, checking
output paths, loading an engine, the progress bar, and keeping a take.

Heavy packages (torch, transformers, soundfile, ...) are imported inside the functions that need
them, so ``--help`` and a bad command line answer at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from desktop_app import defaults
from desktop_app.errors import OutputFileError, RequestError

if TYPE_CHECKING:
    from desktop_app.checks.best_of import BestOf, MadeTake
    from desktop_app.checks.take_check import TakeCheck
    from desktop_app.inference.asr import SpeechRecognizer
    from desktop_app.inference.engine import GenerationRequest, ReferenceClip
    from desktop_app.library.store import Library
    from desktop_app.session.models import LoadedModels, ModelNames, ModelSpec
    from desktop_app.session.say import CheckLevel

EXIT_OK, EXIT_INTERNAL, EXIT_USER, EXIT_INTERRUPTED = 0, 1, 2, 130
"""0 success, 1 an internal error (traceback in the log) or a failed self-test, 2 a user error,
130 Ctrl+C."""


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line as one ``error:`` line and exit code 2.

    Options are never abbreviated (``--tok`` is not ``--token``: an abbreviation would slip a
    secret past the log's redaction), and the values of arguments it does not know are not
    repeated (they may be secrets typed in the wrong place).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        prefix = "unrecognized arguments: "
        if message.startswith(prefix):
            names = [a.split("=")[0] for a in message[len(prefix) :].split() if a.startswith("-")]
            message = prefix + (" ".join(names) or "values this command does not take")
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
        help="exact transcript of each --ref, in the same order (leave all out to have the "
        "clips transcribed)",
    )
    parser.add_argument("--denoise", action="store_true", help="lightly denoise the references")


def add_sampling_arguments(parser: argparse.ArgumentParser) -> None:
    """Device, engine, seed and the sampling settings."""
    parser.add_argument("--device", default=defaults.DEVICE, choices=defaults.DEVICES)
    parser.add_argument("--engine", default=None, help="inference engine (default: the fastest)")
    parser.add_argument(
        "--quantize",
        default="auto",
        choices=defaults.WEIGHTS,
        help="the weights on the CPU: int8 (the CPU's default with auto: a quarter of the "
        "memory, faster), int4 (fastest, a little less exact) or none (float32); a GPU keeps "
        "its float weights with auto. The first use packs the weights into the cache (once)",
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
    if args.ref_text and len(args.ref) != len(args.ref_text):
        raise RequestError(
            f"{len(args.ref)} --ref file(s) but {len(args.ref_text)} --ref-text; give one "
            f"transcript per reference, in the same order, or none to have them transcribed"
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
    from desktop_app.session.requests import make_request

    return make_request(
        text,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
        max_seconds=args.max_seconds,
    )


def voice_references(
    args: argparse.Namespace, voice: str | None, library: Library | None
) -> tuple[ReferenceClip, ...]:
    """The reference clips: the library voice ``voice``, else the --ref files."""
    from desktop_app.inference import ReferenceClip

    if voice:
        if library is None:
            raise RequestError(f"the voice {voice!r} needs the library, which is not open")
        return tuple(
            ReferenceClip(c.audio(), c.transcript) for c in library.voices.get(voice).clips
        )
    from desktop_app.audio.reference import load_reference

    texts = args.ref_text or [""] * len(args.ref)  # "": transcribed once a recogniser is loaded
    return tuple(
        ReferenceClip(load_reference(path, denoise=args.denoise), text)
        for path, text in zip(args.ref, texts, strict=True)
    )


def add_listen_arguments(parser: argparse.ArgumentParser, *, checks: bool = True) -> None:
    """--asr-model (and, for commands that make takes, --speaker-model and --no-check)."""
    parser.add_argument(
        "--asr-model",
        default=None,
        metavar="M",
        help=f"speech-recognition checkpoint, a folder or hub id (default: "
        f"{defaults.ASR_MODEL_ID} on a GPU, {defaults.ASR_MODEL_ID_CPU} on the CPU)",
    )
    if checks:
        parser.add_argument(
            "--speaker-model",
            default=None,
            metavar="M",
            help=f"speaker-verification checkpoint (default: {defaults.SPEAKER_MODEL_ID})",
        )
        parser.add_argument(
            "--no-check", action="store_true", help="do not listen back to the takes"
        )


def add_candidate_arguments(parser: argparse.ArgumentParser) -> None:
    """--candidates N and --keep-candidates DIR (best of N)."""
    parser.add_argument(
        "--candidates",
        type=int,
        default=1,
        metavar="N",
        help="make N takes (seeds seed, seed+1, ...) as one batch and keep the best one",
    )
    parser.add_argument(
        "--keep-candidates", metavar="DIR", help="also write every candidate into DIR"
    )


def check_candidates(args: argparse.Namespace) -> Path | None:
    """--candidates in range (and not with --no-check); --keep-candidates as a folder to write.

    Raises:
        RequestError, OutputFileError: as the arguments deserve.
    """
    from desktop_app.checks.best_of import MAX_CANDIDATES

    if not 1 <= args.candidates <= MAX_CANDIDATES:
        raise RequestError(f"--candidates must be 1 to {MAX_CANDIDATES}, not {args.candidates}")
    if args.candidates > 1 and args.no_check:
        raise RequestError("--candidates picks the best take by its check: leave out --no-check")
    if not args.keep_candidates:
        return None
    folder = Path(args.keep_candidates).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    if not os.access(folder, os.W_OK):
        raise OutputFileError(f"cannot write into {folder}: it is not writable")
    return folder


def candidates_report(best: BestOf) -> list[dict[str, object]]:
    """Every chunk's candidates for --report-json: seed, check, and which was chosen."""
    return [
        {
            "chunk": index,
            "text": chunk.text,
            "chosen_seed": chunk.best.seed,
            "candidates": [
                {
                    "seed": c.seed,
                    "chosen": k == chunk.chosen,
                    "frames": c.result.frames,
                    "stopped_by": c.result.stopped_by,
                    "check": c.check.as_json(),
                }
                for k, c in enumerate(chunk.candidates)
            ],
        }
        for index, chunk in enumerate(best.chunks)
    ]


def write_candidates(
    args: argparse.Namespace, request: GenerationRequest, best: BestOf, folder: Path, stem: str
) -> None:
    """Every candidate into ``folder`` as ``STEM-cC-seedS.wav`` (chunk C when there are more)."""
    import dataclasses

    from desktop_app.audio.io import write_audio
    from desktop_app.takes import take_metadata

    for index, chunk in enumerate(best.chunks):
        for c in chunk.candidates:
            part = f"-c{index + 1}" if len(best.chunks) > 1 else ""
            file = folder / f"{stem}{part}-seed{c.seed}.wav"
            said = dataclasses.replace(request, text=chunk.text)
            write_audio(
                file,
                c.result.audio,
                c.result.sample_rate,
                take_metadata(said, c.result, args.model, getattr(args, "voice", None)),
            )
    status(f"wrote {sum(len(c.candidates) for c in best.chunks)} candidate(s) into {folder}")


def load_recognizer(
    args: argparse.Namespace,
    device: str,
    needed_for: str = "",
    without: str = "the words of the takes are not checked",
) -> SpeechRecognizer | None:
    """The speech recogniser of --asr-model (or the device's default), on ``device``.

    When no model was named and the default is not installed, says so and returns None, unless
    ``needed_for`` says why one is needed: then, as when a named one is missing, it raises.

    Raises:
        ModelNotFoundError: the named (or needed) checkpoint is missing or incomplete.
    """
    from desktop_app.errors import ModelNotFoundError
    from desktop_app.inference.asr import SpeechRecognizer
    from desktop_app.inference.model_store import ASR, resolve_model

    spec = args.asr_model or defaults.asr_model_for(device)
    try:
        folder = resolve_model(spec, ASR)
    except ModelNotFoundError as exc:
        if args.asr_model:
            raise
        if needed_for:
            raise ModelNotFoundError(f"{needed_for}; {exc}") from exc
        status(f"note: {without}: {exc}")
        return None
    status(f"loading the speech-recognition model {spec} ...")
    return SpeechRecognizer(folder, device)


def transcribe_references(
    args: argparse.Namespace,
    references: tuple[ReferenceClip, ...],
    device: str,
    recognizer: SpeechRecognizer | None,
    names: Sequence[str] | None = None,
) -> tuple[tuple[ReferenceClip, ...], SpeechRecognizer | None]:
    """The references with every empty transcript filled in by the recogniser (loaded here
    when needed), each printed (as ``names``, default the --ref files); and the recogniser.

    Raises:
        ModelNotFoundError: a transcript is missing and there is no recognition model.
    """
    import dataclasses

    from desktop_app.checks.listen import transcribe_audio
    from desktop_app.defaults import SAMPLE_RATE

    missing = [i for i, clip in enumerate(references) if not clip.transcript.strip()]
    if not missing:
        return references, recognizer
    _check_fits(args, references)
    if recognizer is None:
        recognizer = load_recognizer(
            args,
            device,
            needed_for="--ref has no --ref-text and no speech-recognition model is installed "
            "to transcribe it: give --ref-text TEXT",
        )
    assert recognizer is not None
    clips = list(references)
    for i in missing:
        given = names if names is not None else args.ref
        name = given[i] if i < len(given) else f"clip {i + 1}"
        heard = transcribe_audio(recognizer, clips[i].audio, SAMPLE_RATE, what=str(name))
        status(f"heard in {name}: {heard.text}")
        clips[i] = dataclasses.replace(clips[i], transcript=heard.text)
    return tuple(clips), recognizer


def check_reference_transcripts(
    args: argparse.Namespace,
    references: tuple[ReferenceClip, ...],
    recognizer: SpeechRecognizer | None,
) -> None:
    """With a recogniser loaded, say so when a given transcript does not match its clip."""
    from desktop_app.checks.listen import mismatched_transcripts
    from desktop_app.defaults import SAMPLE_RATE

    if recognizer is None or not getattr(args, "ref_text", None):
        return
    names = [f"--ref {path}" for path in args.ref]
    clips = [(n, c.audio, c.transcript) for n, c in zip(names, references, strict=False)]
    for note in mismatched_transcripts(recognizer, clips, SAMPLE_RATE):
        status(f"note: {note}")


def _check_fits(args: argparse.Namespace, references: tuple[ReferenceClip, ...]) -> None:
    """Refuse references that cannot fit the context before spending time transcribing them.

    Raises:
        RequestError: their audio alone, with the take's maximum length, overflows the context.
    """
    given = sum(clip.seconds for clip in references)
    room = defaults.CONTEXT_POSITIONS / defaults.FRAME_RATE - args.max_seconds
    if given >= room:
        raise RequestError(
            f"the voice reference is too long: {given:.1f} s given, but with a "
            f"{args.max_seconds:g} s maximum length less than {room:.0f} s fit in the model's "
            f"{defaults.CONTEXT_POSITIONS}-position context; trim the reference (6-30 s works "
            f"best) or use fewer clips"
        )


def print_check(check: TakeCheck, label: str = "check") -> None:
    """The take's verdict and reasons on stderr."""
    status(f"{label}: {check.summary}")


def open_library() -> Library | None:
    """The library for a command that records takes; None (said on stderr) when it cannot open.

    A take is still written then; it is just not added to the history.
    """
    from desktop_app.library.database import LibraryError
    from desktop_app.library.store import Library

    try:
        return Library()
    except LibraryError as exc:
        status(f"note: the takes will not be added to the history: {exc}")
        return None


def model_spec(args: argparse.Namespace, *, check: bool = True) -> ModelSpec:
    """What the command line names to load: the checkpoint, engine, device and quantization,
    and (unless ``check`` is off or --no-check) the listen-back models."""
    from desktop_app.session.models import ModelSpec

    return ModelSpec(
        model=args.model,
        engine=engine_choice(args),
        device=args.device,
        quantize=defaults.quantize_setting(args.quantize),
        asr_model=getattr(args, "asr_model", None),
        speaker_model=getattr(args, "speaker_model", None),
        check=check and not getattr(args, "no_check", False),
    )


def load_models(args: argparse.Namespace, *, check: bool = True) -> LoadedModels:
    """Load what the command line names (see :func:`model_spec`), saying so on stderr; a
    listen-back model that is not installed is a ``note:``.

    Raises:
        ModelNotFoundError: the checkpoint, or a named listen-back model, is missing.
    """
    from desktop_app.inference.model_store import resolve_model
    from desktop_app.session.models import load_models as load

    spec = model_spec(args, check=check)
    resolve_model(spec.model)  # a missing checkpoint is said before anything loads
    quiet_transformers()
    status(f"loading {spec.model} ({spec.engine}) ...")

    def progress(text: str) -> None:  # the slow first packing of the weights, step by step
        if text.startswith("making "):
            status(f"  {text}")

    models = load(spec, on_note=lambda note: status(f"note: {note}"), on_status=progress)
    engine = models.engine
    status(f"loaded in {engine.load_seconds:.1f} s on {engine.device} ({engine.dtype})")
    return models


def check_level(args: argparse.Namespace) -> CheckLevel:
    """How the takes are listened to: fully, or not at all with --no-check."""
    return "off" if getattr(args, "no_check", False) else "full"


def keep(
    names: ModelNames,
    request: GenerationRequest,
    made: MadeTake,
    file: Path,
    library: Library | None,
    voice: str | None = None,
    quiet: bool = False,
    source: str = "cli",
) -> None:
    """Write the take to ``file`` and record it in the history (made by ``source``), saying how
    that went (only when it did not, with ``quiet``)."""
    from desktop_app.session.say import keep as keep_take

    kept = keep_take(names, request, made, file=file, library=library, voice=voice, source=source)
    if kept.record is not None:
        if not quiet:
            status(f"recorded in the history as take {kept.record.id}")
    elif library is not None:
        status(f"note: the take was saved but not added to the history: {kept.problem}")


def printable(text: str) -> str:
    """``text`` safe for a terminal: control characters (escape sequences, carriage returns,
    bidirectional overrides) shown as Python escapes, for names and texts from files or clients."""
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
    )


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
