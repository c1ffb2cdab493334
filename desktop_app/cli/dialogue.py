"""``dialogue``: a script of several voices in, one mixed conversation out (and stems,
subtitles, a report)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from desktop_app.cli import common
from desktop_app.cli.common import EXIT_OK, status
from desktop_app.defaults import SAMPLE_RATE
from desktop_app.errors import OutputFileError, RequestError
from desktop_app.session.requests import new_seed

if TYPE_CHECKING:
    from desktop_app.conversation.manifest import KeptLine
    from desktop_app.conversation.script import CastMember
    from desktop_app.inference.engine import ReferenceClip
    from desktop_app.library.store import Library


def register(sub: Any) -> None:
    """Add ``dialogue`` to the sub-command parser ``sub``."""
    dialogue = sub.add_parser(
        "dialogue", help="speak a script of several voices as one conversation"
    )
    dialogue.add_argument(
        "--script", required=True, metavar="FILE", help="`Name: text` lines (or .jsonl)"
    )
    dialogue.add_argument(
        "--cast",
        action="append",
        default=[],
        metavar="NAME=VOICE",
        help="who speaks a part: a library voice, or NAME=clip.wav|transcript (repeatable)",
    )
    dialogue.add_argument("--out", required=True, metavar="FILE", help="the mix, .wav or .flac")
    common.add_model_argument(dialogue)
    dialogue.add_argument("--denoise", action="store_true", help="lightly denoise clip files")
    common.add_sampling_arguments(dialogue)
    common.add_listen_arguments(dialogue)
    dialogue.add_argument(
        "--candidates", type=int, default=1, metavar="N", help="make each line the best of N"
    )
    dialogue.add_argument(
        "--gap", type=float, default=0.3, help="seconds between turns (default 0.3)"
    )
    dialogue.add_argument(
        "--context-lines",
        type=int,
        default=None,
        metavar="N",
        help="keep at most N past lines in each line's prompt (default: as many as fit)",
    )
    dialogue.add_argument("--stems", metavar="DIR", help="also write one file per speaker")
    dialogue.add_argument("--subtitles", metavar="FILE", help="also write .srt or .vtt subtitles")
    dialogue.add_argument("--report-json", metavar="FILE", help="each line's timing and context")
    dialogue.add_argument(
        "--redo",
        type=int,
        default=None,
        metavar="N",
        help="make turn N (from 1) again, with --seed S if given, keeping the other lines of the "
        "earlier run with the same --out; the mix, stems and subtitles are written anew",
    )
    dialogue.set_defaults(handler=run, keep_candidates=None)


def run(args: argparse.Namespace) -> int:
    """Parse, cast, load, say every line on top of the ones before, write the files."""
    from desktop_app.conversation import render
    from desktop_app.conversation.script import parse_cast, read_script
    from desktop_app.conversation.speak import SpokenLine, speak_script
    from desktop_app.session.say import checker_for
    from desktop_app.session.voices import voice_adapter

    script = read_script(Path(args.script).expanduser())
    cast = parse_cast(args.cast, script)
    out = common.check_output(args.out, (".wav", ".flac"), "cannot save")
    subtitles = (
        common.check_output(args.subtitles, (".srt", ".vtt"), "cannot write")
        if args.subtitles
        else None
    )
    report = (
        common.check_output(args.report_json, (".json",), "cannot write")
        if args.report_json
        else None
    )
    stems_dir = Path(args.stems).expanduser() if args.stems else None
    if stems_dir is not None:
        try:
            stems_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputFileError(f"cannot write the stems into {stems_dir}: {exc}") from exc
    if not 0 <= args.gap <= 10:
        raise RequestError(f"--gap must be 0 to 10 s, not {args.gap:g}")
    if args.context_lines is not None and args.context_lines < 0:
        raise RequestError("--context-lines must be 0 or more")
    common.check_candidates(args)
    settings = common.sampling_request(args, "-")
    redo: int | None = None
    kept: list[KeptLine] = []
    base_seed = settings.seed
    if args.redo is not None:
        from desktop_app.conversation.manifest import read_manifest

        if not 1 <= args.redo <= len(script.turns):
            raise RequestError(f"--redo {args.redo}: the script has turns 1 to {len(script.turns)}")
        redo = args.redo - 1
        base_seed, kept = read_manifest(out, script)
        seed = args.seed if args.seed is not None else new_seed()
        settings = dataclasses.replace(settings, seed=(seed - redo) % 2**31)  # seed + k = seed
    common.engine_choice(args)  # a bad engine name is said before the voices are read
    library = None
    if any(member.voice for member in cast.values()):
        from desktop_app.library.store import Library

        library = Library()
    try:
        voices = {name: _clips(args, member, library) for name, member in cast.items()}
        adapters = {
            name: voice_adapter(library, member.voice)
            for name, member in cast.items()
            if member.voice
        }
    finally:
        if library is not None:
            library.close()
    models = common.load_models(args)
    engine = models.engine
    recognizer = models.recognizer
    for name, clips in voices.items():
        where = str(cast[name].clip) if cast[name].clip else f"{name}'s voice"
        voices[name], recognizer = common.transcribe_references(
            args, clips, engine.device, recognizer, names=[where] * len(clips)
        )
    checker = checker_for(models, common.check_level(args))
    total = len(script.turns)

    def said(line: SpokenLine) -> None:
        verdict = f" · {line.check.summary}" if line.check is not None else ""
        status(
            f"line {line.index + 1}/{total} ({line.turn.speaker}): {line.result.seconds:.1f} s, "
            f"{len(line.context.history)} past line(s) in its prompt{verdict}"
        )

    lines = speak_script(
        engine,  # type: ignore[arg-type]  # both engines count prompt positions
        script,
        voices,
        settings,
        checker=checker,
        candidates=args.candidates,
        context_lines=args.context_lines,
        lines=None if redo is None else [redo],
        made=[k.line for k in kept if k.line.index != redo],
        on_line=said,
        adapters=adapters,
    )
    spans = render.place(lines, SAMPLE_RATE, args.gap, script.lead_in)
    entries = render.report(lines, spans, SAMPLE_RATE)
    for k in kept:  # a kept line keeps what the earlier run said of it, at its new place
        if k.line.index != redo:
            new = entries[k.line.index]
            entries[k.line.index] = {**k.entry, "start_s": new["start_s"], "end_s": new["end_s"]}
            entries[k.line.index].pop("file", None)
    from desktop_app.conversation.manifest import write_manifest

    if base_seed is None:
        base_seed = lines[0].result.seed
    _write(out, render.mix(lines, spans), args, script.speakers, lines[0].result.seed)
    if stems_dir is not None:
        for number, (name, track) in enumerate(render.stems(lines, spans).items(), start=1):
            file = stems_dir / f"{number:02d}-{render.file_part(name)}{out.suffix}"
            _write(file, track, args, [name], lines[0].result.seed)
    from desktop_app.files import write_text_atomic

    if subtitles is not None:
        fmt = subtitles.suffix.lower().lstrip(".")
        write_text_atomic(subtitles, render.subtitles(lines, spans, SAMPLE_RATE, fmt))
    write_manifest(out, script, lines, entries, base_seed)
    if report is not None:
        data = {
            "output": str(out),
            "model": args.model,
            "engine": lines[redo or 0].result.engine,
            "seed": base_seed,
            "gap_s": args.gap,
            "speakers": {name: i for i, name in enumerate(script.speakers)},
            "redone": None if redo is None else redo + 1,
            "lines": entries,
        }
        write_text_atomic(report, json.dumps(data, indent=2) + "\n")
    seconds = spans[-1].end / SAMPLE_RATE
    flagged = sum(1 for line in lines if line.check is not None and line.check.verdict != "good")
    again = (
        f" (turn {redo + 1} made again, seed {lines[redo].result.seed})" if redo is not None else ""
    )
    print(
        f"wrote {out}{again}: {len(lines)} lines by {len(script.speakers)} voices, "
        f"{seconds:.1f} s" + (f"; {flagged} line(s) flagged" if checker is not None else "")
    )
    return EXIT_OK


def _clips(
    args: argparse.Namespace, member: CastMember, library: Library | None
) -> tuple[ReferenceClip, ...]:
    if member.voice:  # a LibraryError names an unknown or deleted voice
        return common.voice_references(args, member.voice, library)
    from desktop_app.audio.reference import load_reference
    from desktop_app.inference import ReferenceClip

    assert member.clip is not None
    return (ReferenceClip(load_reference(member.clip, denoise=args.denoise), member.transcript),)


def _write(path: Path, audio: Any, args: argparse.Namespace, speakers: Any, seed: int) -> None:
    from desktop_app.audio.io import TakeMetadata, write_audio

    text = Path(args.script).name
    meta = TakeMetadata(
        text=f"conversation: {text}", model=args.model, seed=seed, voice=", ".join(speakers)
    )
    write_audio(path, audio, SAMPLE_RATE, meta)
