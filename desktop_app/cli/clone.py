"""``clone``: reference clips (or a saved voice) and a text in, one take file out."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from desktop_app.cli import common
from desktop_app.cli.common import EXIT_OK, status

if TYPE_CHECKING:
    from desktop_app.audio.player import StreamingPlayback
    from desktop_app.checks.best_of import MadeTake
    from desktop_app.inference.engine import BatchEngine, GenerationRequest, GenerationResult


def register(sub: Any) -> None:
    """Add ``clone`` to the sub-command parser ``sub``."""
    clone = sub.add_parser("clone", help="speak a text in the voice of reference clips")
    common.add_voice_arguments(clone)
    clone.add_argument("--text", required=True, help="what the voice should say")
    clone.add_argument("--out", required=True, metavar="FILE", help="output .wav or .flac")
    common.add_sampling_arguments(clone)
    common.add_listen_arguments(clone)
    common.add_candidate_arguments(clone)
    clone.add_argument(
        "--long-text",
        default="batched",
        choices=("batched", "coherent"),
        help="a text of several sentences: batched (all at once, fastest) or coherent (one "
        "after another, each with the ones before as context: a steadier voice)",
    )
    clone.add_argument(
        "--play", action="store_true", help="play the take on the default output while it is made"
    )
    clone.add_argument("--report-json", metavar="FILE", help="write timings and settings as JSON")
    clone.add_argument(
        "--codes-out", metavar="FILE.npy", help="save the codes (frames x codebooks)"
    )
    clone.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """References + text in, a take file (and optional report and codes) out."""
    import numpy as np

    from desktop_app.files import atomic_write
    from desktop_app.inference.long_text import is_long
    from desktop_app.session.say import Control, SayOptions, say
    from desktop_app.session.voices import voice_adapter

    common.check_voice_arguments(args)
    out = common.check_output(args.out, (".wav", ".flac"), "cannot save")
    report = (
        common.check_output(args.report_json, (".json",), "cannot write")
        if args.report_json
        else None
    )
    codes_out = (
        common.check_output(args.codes_out, (".npy",), "cannot write") if args.codes_out else None
    )
    keep_dir = common.check_candidates(args)
    common.engine_choice(args)  # a bad engine name is said before the references are read
    settings = common.sampling_request(args, args.text)  # checked before the references are read
    library = common.open_library()
    try:
        references = common.voice_references(args, args.voice, library)
        models = common.load_models(args)
        engine = models.engine
        references, _ = common.transcribe_references(
            args, references, engine.device, models.recognizer
        )
        common.check_reference_transcripts(args, references, models.recognizer)
        adapter = voice_adapter(library, args.voice) if args.voice else None
        request = dataclasses.replace(settings, references=references, adapter=adapter)
        playback = _playback(request) if args.play else None
        coherent = args.long_text == "coherent" and is_long(request.text)
        options = SayOptions(args.candidates, coherent, common.check_level(args))
        with common.FrameBar(request.max_seconds) as bar:
            control = Control(bar.update, None, playback.feed if playback else None)
            made = say(models, request, options, control)
        result = made.result
        if result.parts:
            how = "one after another, each on the ones before" if coherent else "as one batch"
            status(f"said in {len(result.parts)} chunks, generated {how}")
        if playback is not None:
            playback.finish()
        for notice in result.notices:
            status(f"note: {notice}")
        if made.check is not None:
            common.print_check(made.check)
        common.keep(models.names, request, made, out, library, args.voice)
    finally:
        if library is not None:
            library.close()
    if keep_dir is not None and made.best_of is not None:
        common.write_candidates(args, request, made.best_of, keep_dir, out.stem)
    if codes_out is not None:
        with atomic_write(codes_out) as handle:
            np.save(handle, result.codes.astype(np.int64))
    if report is not None:
        _write_report(report, args.model, request, engine, made, out)
    if playback is not None:
        _finish_playback(playback, result)
    t = result.timings
    print(
        f"wrote {out}: {result.seconds:.2f} s, {result.frames} frames ({result.stopped_by}), "
        f"seed {result.seed}, real-time factor {t.real_time_factor:.2f} on {result.device}"
        + (f"; {made.check.summary}" if made.check is not None else "")
    )
    return EXIT_OK


def _playback(request: GenerationRequest) -> StreamingPlayback:
    from desktop_app.audio.player import Player, StreamingPlayback
    from desktop_app.defaults import SAMPLE_RATE
    from desktop_app.inference.long_text import longest_take_seconds

    return StreamingPlayback(Player(), SAMPLE_RATE, longest_take_seconds(request))


def _finish_playback(playback: StreamingPlayback, result: GenerationResult) -> None:
    """Wait for the streamed take to finish playing, then say how it went."""
    if playback.error is not None:
        status(f"note: the take was not played: {playback.error}")
        return
    playback.player.wait(timeout=result.seconds + 10)
    first = result.timings.first_audio_s or 0.0
    status(
        f"played while generating: first audio after {first:.2f} s, playback began with "
        f"{playback.started_at:.2f} s made, {playback.player.underruns} gap(s)"
    )


def _write_report(
    path: Path,
    model: str,
    request: GenerationRequest,
    engine: BatchEngine,
    made: MadeTake,
    out: Path,
) -> None:
    from desktop_app.files import write_text_atomic
    from desktop_app.library.records import settings_of

    result = made.result
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
        "check": made.check.as_json() if made.check is not None else None,
    }
    if made.best_of is not None:
        data["candidates"] = common.candidates_report(made.best_of)
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")
