"""Command line: ``python -m desktop_app [command]``; without a command the studio window starts.

Exit codes: 0 success, 2 a user error (one line ``error: ...`` on stderr), 1 an internal error (the
traceback goes to the log file, whose path is printed), 130 interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from desktop_app import __version__, logs
from desktop_app.errors import OutputFileError, RequestError, UserError

log = logging.getLogger(__name__)

EXIT_OK, EXIT_INTERNAL, EXIT_USER = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line as one ``error:`` line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER, f"error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, sub-commands included."""
    from desktop_app.inference.model_store import DEFAULT_MODEL_ID

    parser = _Parser(
        # frozen, the program is the executable the user ran (csm-studio or csm-studio-cli)
        prog=Path(sys.argv[0]).name if getattr(sys, "frozen", False) else "python -m desktop_app",
        description="CSM Studio: offline voice cloning with Sesame's CSM-1B.",
    )
    parser.add_argument("--version", action="version", version=f"CSM Studio {__version__}")
    parser.add_argument(
        "--model",
        dest="gui_model",
        default=None,
        metavar="M",
        help="checkpoint folder or hub id for the studio window",
    )
    parser.add_argument(
        "--smoke-test",
        action="store_true",
        help="start the window, make one take with --model, and exit",
    )
    parser.add_argument("--screenshot", metavar="FILE.png", help="with --smoke-test: save one")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    clone = sub.add_parser("clone", help="speak a text in the voice of reference clips")
    add_voice_arguments(clone)
    clone.add_argument("--text", required=True, help="what the voice should say")
    clone.add_argument("--out", required=True, metavar="FILE", help="output .wav or .flac")
    add_sampling_arguments(clone)
    clone.add_argument(
        "--play", action="store_true", help="play the take on the default output while it is made"
    )
    clone.add_argument("--report-json", metavar="FILE", help="write timings and settings as JSON")
    clone.add_argument(
        "--codes-out", metavar="FILE.npy", help="save the codes (frames x codebooks)"
    )

    doctor = sub.add_parser("doctor", help="report Python, torch, GPU, model and audio devices")
    doctor.add_argument("--model", default=DEFAULT_MODEL_ID, help="checkpoint folder or hub id")

    download = sub.add_parser("download-model", help="download the checkpoint (needs network)")
    download.add_argument("--model", default=DEFAULT_MODEL_ID, help="hub id to download")
    download.add_argument(
        "--token",
        default=None,
        help="Hugging Face access token (default: $HF_TOKEN or a saved login)",
    )
    download.add_argument(
        "--dir", default=None, help="download into this folder instead of the cache"
    )
    download.add_argument("--revision", default=None, help="branch, tag or commit")
    from desktop_app.cli_batch import add_batch_command
    from desktop_app.cli_library import add_library_commands

    add_library_commands(sub)
    add_batch_command(sub)
    return parser


def add_voice_arguments(parser: argparse.ArgumentParser) -> None:
    """--model, and the voice: --voice NAME or --ref/--ref-text pairs (and --denoise)."""
    from desktop_app.inference.model_store import DEFAULT_MODEL_ID

    parser.add_argument("--model", default=DEFAULT_MODEL_ID, help="checkpoint folder or hub id")
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
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--engine", default=None, help="inference engine (default: the fastest)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument("--temperature", type=float, default=0.9, help="0 means greedy")
    parser.add_argument("--top-k", type=int, default=50)
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument(
        "--max-seconds", type=float, default=10.0, help="longest audio to generate (default 10)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the process exit code."""
    args = build_parser().parse_args(argv)
    if args.command != "download-model":
        # Everything but the explicit download stays offline, whatever the libraries would like.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    log_path = logs.configure_logging()
    log.info("command line: %s", _redacted(sys.argv if argv is None else ["", *argv]))
    try:
        from desktop_app.cli_batch import run_batch
        from desktop_app.cli_library import LIBRARY_COMMANDS

        handlers: dict[str | None, Callable[[argparse.Namespace], int]] = {
            **LIBRARY_COMMANDS,
            "clone": run_clone,
            "batch": run_batch,
            "doctor": run_doctor,
            "download-model": run_download,
            None: run_default,
        }
        return handlers[args.command](args)
    except UserError as exc:
        log.info("user error: %s", exc)
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        log.exception("internal error")
        print(
            f"error: internal error ({type(exc).__name__}); details in {log_path}", file=sys.stderr
        )
        return EXIT_INTERNAL


def _redacted(argv: Sequence[str]) -> list[str]:
    """The command line with the value after --token hidden, for the log."""
    out: list[str] = []
    hide = False
    for arg in argv:
        if hide:
            out.append("***")
            hide = False
        elif arg.startswith("--token="):
            out.append("--token=***")
        else:
            hide = arg == "--token"
            out.append(arg)
    return out


def run_default(args: argparse.Namespace) -> int:
    """No sub-command: the studio window (or its smoke test)."""
    if args.smoke_test and not args.gui_model:
        raise RequestError("--smoke-test needs --model with a checkpoint folder or hub id")
    from desktop_app.ui.app import run_gui, run_smoke_test

    if args.smoke_test:
        screenshot = Path(args.screenshot).expanduser() if args.screenshot else None
        return run_smoke_test(args.gui_model, screenshot)
    return run_gui(args.gui_model)


def _check_output(path: str, suffixes: tuple[str, ...], what: str) -> Path:
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
    from desktop_app.inference import DEFAULT_ENGINE, ENGINE_NAMES

    name = str(args.engine or DEFAULT_ENGINE)
    if name not in ENGINE_NAMES:
        raise RequestError(f"unknown engine {name!r}; choose one of {', '.join(ENGINE_NAMES)}")
    return name


def sampling_request(args: argparse.Namespace, text: str) -> Any:
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


def voice_references(args: argparse.Namespace, voice: str | None) -> tuple[Any, ...]:
    """The reference clips: the library voice ``voice``, else the --ref files."""
    from desktop_app.inference import ReferenceClip

    if voice:
        from desktop_app.library.store import Library

        return tuple(
            ReferenceClip(clip.audio(), clip.transcript) for clip in Library().voice(voice).clips
        )
    from desktop_app.audio.reference import load_reference

    return tuple(
        ReferenceClip(load_reference(path, denoise=args.denoise), text)
        for path, text in zip(args.ref, args.ref_text, strict=True)
    )


def load_for(args: argparse.Namespace, engine_name: str) -> tuple[Path, Any]:
    """Find the checkpoint and load the engine, saying so on stderr."""
    from desktop_app.inference import load_engine
    from desktop_app.inference.model_store import resolve_model

    model_dir = resolve_model(args.model)
    _quiet_transformers()
    _status(f"loading {args.model} ({engine_name}) ...")
    engine = load_engine(engine_name, model_dir, args.device)
    _status(f"loaded in {engine.load_seconds:.1f} s on {engine.device} ({engine.dtype})")
    return model_dir, engine


def run_clone(args: argparse.Namespace) -> int:
    """``clone``: references + text in, a take file (and optional report and codes) out."""
    import numpy as np

    from desktop_app.audio.io import TakeMetadata, write_audio
    from desktop_app.files import atomic_write
    from desktop_app.inference.long_text import speak
    from desktop_app.inference.model_store import model_revision

    check_voice_arguments(args)
    out = _check_output(args.out, (".wav", ".flac"), "cannot save")
    report = (
        _check_output(args.report_json, (".json",), "cannot write") if args.report_json else None
    )
    codes_out = _check_output(args.codes_out, (".npy",), "cannot write") if args.codes_out else None
    engine_name = engine_choice(args)
    settings = sampling_request(args, args.text)  # checked before the references are read
    request = dataclasses.replace(settings, references=voice_references(args, args.voice))
    model_dir, engine = load_for(args, engine_name)
    playback = None
    if args.play:
        from desktop_app.audio.player import Player, StreamingPlayback
        from desktop_app.inference.long_text import longest_take_seconds

        playback = StreamingPlayback(Player(), 24_000, longest_take_seconds(request))
    with _FrameBar(request.max_seconds) as bar:
        result = speak(
            engine, request, on_progress=bar.update, on_audio=playback.feed if playback else None
        )
    if result.parts:
        _status(f"said in {len(result.parts)} chunks, generated as one batch")
    if playback is not None:
        playback.finish()
    for notice in result.notices:
        _status(f"note: {notice}")
    write_audio(
        out,
        result.audio,
        result.sample_rate,
        TakeMetadata(text=request.text, model=args.model, seed=result.seed, engine=result.engine),
    )
    if codes_out is not None:
        with atomic_write(codes_out) as handle:
            np.save(handle, result.codes.astype(np.int64))
    if report is not None:
        _write_report(report, args.model, request, engine, result, out)
    record_take(args, request, result, model_revision(model_dir), args.voice)
    if playback is not None:
        _finish_playback(playback, result)
    t = result.timings
    print(
        f"wrote {out}: {result.seconds:.2f} s, {result.frames} frames ({result.stopped_by}), "
        f"seed {result.seed}, real-time factor {t.real_time_factor:.2f} on {result.device}"
    )
    return EXIT_OK


def _finish_playback(playback: Any, result: Any) -> None:
    """Wait for the streamed take to finish playing, then say how it went."""
    if playback.error is not None:
        _status(f"note: the take was not played: {playback.error}")
        return
    playback.player.wait(timeout=result.seconds + 10)
    first = result.timings.first_audio_s or 0.0
    _status(
        f"played while generating: first audio after {first:.2f} s, playback began with "
        f"{playback.started_at:.2f} s made, {playback.player.underruns} gap(s)"
    )


def record_take(
    args: argparse.Namespace, request: Any, result: Any, revision: str, voice: str | None = None
) -> None:
    """Keep the take in the history; the output file is already complete either way."""
    from desktop_app.library.store import Library, LibraryError

    try:
        take = Library().record_result(
            request, result, args.model, voice=voice, model_revision=revision
        )
        _status(f"recorded in the history as take {take.id}")
    except LibraryError as exc:
        _status(f"note: the take was saved but not added to the history: {exc}")


def _write_report(
    path: Path, model: str, request: Any, engine: Any, result: Any, out: Path
) -> None:
    from desktop_app.library.store import settings_of

    data = {
        "output": str(out),
        "model": model,
        "engine": result.engine,
        "device": result.device,
        "dtype": result.dtype,
        "seed": result.seed,
        "frames": result.frames,
        "seconds": result.seconds,
        "sample_rate": result.sample_rate,
        "stopped_by": result.stopped_by,
        "settings": settings_of(request),
        "timings": {"load_s": engine.load_seconds, **dataclasses.asdict(result.timings)},
        "notices": list(result.notices),
        "chunks": [
            {
                "text": part.text,
                "seed": part.result.seed,
                "frames": part.result.frames,
                "stopped_by": part.result.stopped_by,
                "pause_after_s": part.pause_after,
            }
            for part in result.parts
        ],
    }
    from desktop_app.files import write_text_atomic

    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def _status(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


class _FrameBar:
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
        self._bar.n = min(round(seconds, 1), self._bar.total)
        self._bar.refresh()

    def __enter__(self) -> _FrameBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.close()


def run_doctor(args: argparse.Namespace) -> int:
    """``doctor``: what this machine offers the app, and whether the model is found."""
    import torch

    from desktop_app.audio.devices import list_devices
    from desktop_app.inference.model_store import DEFAULT_MODEL_ID, hub_cache_dir, resolve_model

    rows: list[tuple[str, str]] = [
        ("CSM Studio", __version__),
        ("Python", f"{platform.python_version()} ({sys.executable})"),
        (
            "torch",
            f"{torch.__version__}; CUDA {'' if torch.cuda.is_available() else 'not '}available",
        ),
    ]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(i)
            rows.append(
                (
                    f"GPU {i}",
                    f"{torch.cuda.get_device_name(i)}, "
                    f"{free / 2**30:.1f} GiB free of {total / 2**30:.1f} GiB",
                )
            )
    else:
        rows.append(("GPU", "none: generation runs on the CPU (slower than real time)"))
    spec = args.model or DEFAULT_MODEL_ID
    try:
        rows.append(("model", f"{spec}: found at {resolve_model(spec)}"))
    except UserError as exc:
        rows.append(("model", f"not found: {exc}"))
    rows.append(("model cache", str(hub_cache_dir())))
    try:
        devices = list_devices()
        ins = [d for d in devices if d.inputs > 0]
        outs = [d for d in devices if d.outputs > 0]
        default_in = next((d.name for d in ins if d.is_default_input), "none")
        default_out = next((d.name for d in outs if d.is_default_output), "none")
        rows.append(("audio input", f"{len(ins)} device(s); default: {default_in}"))
        rows.append(("audio output", f"{len(outs)} device(s); default: {default_out}"))
    except UserError as exc:
        rows.append(("audio", str(exc)))
    rows.append(("log file", str(logs.configure_logging())))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return EXIT_OK


def run_download(args: argparse.Namespace) -> int:
    """``download-model``: the one command that uses the network."""
    from desktop_app.inference.model_store import download_model

    token = args.token or os.environ.get("HF_TOKEN") or None
    folder = download_model(
        args.model,
        token=token,
        local_dir=Path(args.dir).expanduser() if args.dir else None,
        revision=args.revision,
        progress=_status,
    )
    print(f"downloaded {args.model} to {folder}")
    if args.dir:
        print(f"use it with: python -m desktop_app clone --model {folder} ...")
    return EXIT_OK
