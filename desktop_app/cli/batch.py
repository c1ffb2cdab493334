"""``batch``: many utterances from a file, one audio file each, generated in batches.

The input is a text file (one utterance per non-empty line) or JSON Lines (``.jsonl``: one object
per line with ``text`` and optionally ``voice``, a library voice for that line, and ``out``, a
file name inside the output folder). Lines with the same voice are generated together as one
batch on the fast engine; a line long enough to need several chunks is said as a long take.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from desktop_app.cli import common
from desktop_app.cli.common import EXIT_OK, status
from desktop_app.errors import RequestError

if TYPE_CHECKING:
    from desktop_app.checks.take_check import TakeCheck
    from desktop_app.inference.engine import GenerationResult


@dataclass
class Line:
    """One utterance of the input file and where its take goes."""

    number: int
    text: str
    voice: str | None
    out: Path
    result: GenerationResult | None = None
    check: TakeCheck | None = None


def register(sub: Any) -> None:
    """Add ``batch`` to the sub-command parser ``sub``."""
    batch = sub.add_parser(
        "batch", help="speak every line of a text or JSONL file, one audio file per line"
    )
    common.add_voice_arguments(batch)
    batch.add_argument("--input", required=True, metavar="FILE", help="a .txt or .jsonl file")
    batch.add_argument("--out-dir", required=True, metavar="DIR", help="folder for the takes")
    batch.add_argument("--format", default="wav", choices=("wav", "flac"))
    common.add_sampling_arguments(batch)
    common.add_listen_arguments(batch)
    common.add_candidate_arguments(batch)
    batch.set_defaults(handler=run)


def read_lines(path: Path, out_dir: Path, default_voice: str | None, fmt: str) -> list[Line]:
    """The utterances of ``path``.

    Raises:
        RequestError: unreadable file, bad JSON, a line without text, or an unsafe file name.
    """
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RequestError(f"cannot read {path}: {exc}") from exc
    lines: list[Line] = []
    for number, row in enumerate(raw.splitlines(), start=1):
        if not row.strip():
            continue
        voice, name = default_voice, f"{len(lines) + 1:03d}.{fmt}"
        if path.suffix.lower() == ".jsonl":
            try:
                item = json.loads(row)
                text = str(item["text"])
            except (ValueError, KeyError, TypeError) as exc:
                raise RequestError(
                    f'{path} line {number}: not a JSON object with a "text" ({exc})'
                ) from exc
            voice = item.get("voice") or default_voice
            if item.get("out"):
                name = str(item["out"])
                if Path(name).name != name or Path(name).suffix.lower() not in (".wav", ".flac"):
                    raise RequestError(
                        f'{path} line {number}: "out" must be a plain .wav or .flac file name'
                    )
        else:
            text = row
        if not text.strip():
            raise RequestError(f"{path} line {number}: the text is empty")
        lines.append(Line(number, text.strip(), voice, out_dir / name))
    if not lines:
        raise RequestError(f"{path} holds no text: write one utterance per line")
    return lines


def run(args: argparse.Namespace) -> int:
    """Read the lines, generate them by voice in batches, check them, write one file each.

    With --candidates N each line's N candidates are one batch (line after line).
    """
    from desktop_app.checks.best_of import make_take
    from desktop_app.inference.batch import generate_batch
    from desktop_app.inference.long_text import is_long, speak
    from desktop_app.inference.model_store import model_revision

    out_dir = Path(args.out_dir).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = read_lines(Path(args.input).expanduser(), out_dir, args.voice, args.format)
    if not args.ref:
        missing_voice = [line.number for line in lines if not line.voice]
        if missing_voice:
            raise RequestError(
                f"line {missing_voice[0]} has no voice: give --voice NAME or --ref/--ref-text, "
                f'or a "voice" in each JSON line'
            )
    else:
        common.check_voice_arguments(args)
    keep_dir = common.check_candidates(args)
    engine_name = common.engine_choice(args)
    settings = common.sampling_request(args, "-")  # the text and seed are each line's
    groups: dict[str | None, list[Line]] = {}
    for line in lines:
        groups.setdefault(line.voice if not args.ref else None, []).append(line)
    library = common.open_library()
    try:
        references = {  # fail fast: every voice is read before the model loads
            voice: common.voice_references(args, voice, library) for voice in groups
        }
        model_dir, engine = common.load_for(args, engine_name)
        revision = model_revision(model_dir)
        recognizer = None
        for voice, clips in references.items():
            references[voice], recognizer = common.transcribe_references(
                args, clips, engine.device, recognizer
            )
        checker = common.load_checker(args, engine.device, recognizer)
        started = time.perf_counter()
        for voice, group in groups.items():
            requests = [
                dataclasses.replace(
                    settings,
                    text=line.text,
                    references=references[voice],
                    seed=None if args.seed is None else args.seed + line.number - 1,
                )
                for line in group
            ]
            if args.candidates > 1:
                status(
                    f"{voice or 'the --ref voice'}: {len(group)} line(s), best of "
                    f"{args.candidates} each"
                )
                for line, request in zip(group, requests, strict=True):
                    with common.FrameBar(settings.max_seconds) as bar:
                        made = make_take(engine, request, checker, args.candidates, bar.update)
                    line.result, line.check = made.result, made.check
                    if keep_dir is not None and made.best_of is not None:
                        common.write_candidates(
                            args, request, made.best_of, keep_dir, line.out.stem
                        )
            else:
                short = [i for i, line in enumerate(group) if not is_long(line.text)]
                status(
                    f"{voice or 'the --ref voice'}: {len(group)} line(s), {len(short)} in one batch"
                )
                with common.FrameBar(settings.max_seconds) as bar:
                    results = generate_batch(engine, [requests[i] for i in short], bar.update)
                for i, result in zip(short, results, strict=True):
                    group[i].result = result
                for i, line in enumerate(group):
                    if line.result is None:
                        with common.FrameBar(settings.max_seconds) as bar:
                            line.result = speak(engine, requests[i], on_progress=bar.update)
                if checker is not None:
                    for line, request in zip(group, requests, strict=True):
                        assert line.result is not None
                        checked = checker.check(request, line.result)
                        line.result, line.check = checked.result, checked.check
            for line, request in zip(group, requests, strict=True):
                assert line.result is not None
                common.keep(
                    args, request, line.result, line.out, library, revision, voice, line.check
                )
        total = time.perf_counter() - started
    finally:
        if library is not None:
            library.close()
    _print_summary(sorted(lines, key=lambda item: item.number), total, engine.name)
    return EXIT_OK


def _print_summary(lines: list[Line], total: float, engine: str) -> None:
    """One row per line (with its check when there is one), then the totals."""
    checked = any(line.check is not None for line in lines)
    head = f"{'line':>4}  {'seconds':>7}  {'frames':>6}  {'stopped by':<10}"
    if checked:
        head += f"  {'WER':>5}  {'voice':>5}  {'verdict':<7}"
    print(f"{head}  file")
    made = 0.0
    flagged: list[Line] = []
    for line in lines:
        r = line.result
        assert r is not None
        made += r.seconds
        row = f"{line.number:>4}  {r.seconds:>7.2f}  {r.frames:>6}  {r.stopped_by:<10}"
        if checked:
            c = line.check
            wer = f"{c.wer:.2f}" if c is not None and c.wer is not None else "-"
            voice = f"{c.similarity:.2f}" if c is not None and c.similarity is not None else "-"
            row += f"  {wer:>5}  {voice:>5}  {c.verdict if c else '-':<7}"
            if c is not None and c.verdict != "good":
                flagged.append(line)
        print(f"{row}  {line.out}")
    print(f"{len(lines)} take(s), {made:.1f} s of audio in {total:.1f} s ({engine})")
    if checked:
        print(f"{len(flagged)} flagged line(s)" + (":" if flagged else ""))
        for line in flagged:
            assert line.check is not None
            print(f"  line {line.number}: {line.check.summary}")
