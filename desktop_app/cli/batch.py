"""``batch``: many utterances from a file, one audio file each, generated in batches, here or
on a Ray cluster (``--ray``), resumable.

The input is a text file (one utterance per non-empty line) or JSON Lines (``.jsonl``: one object
per line with ``text`` and optionally ``voice``, a library voice for that line, and ``out``, a
file name inside the output folder). Lines with the same voice are generated together in batches
(:mod:`desktop_app.batch.work`); every finished line is written atomically and entered in the
folder's manifest (:mod:`desktop_app.batch.manifest`), so the same command run again makes only
what is missing or changed. A line that cannot be made fails alone and is listed at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from desktop_app.batch.lines import Line, read_lines
from desktop_app.batch.manifest import Manifest, file_hash, line_key
from desktop_app.batch.work import LineJob, MadeLine
from desktop_app.cli import common
from desktop_app.cli.common import EXIT_OK, EXIT_USER, status
from desktop_app.errors import RequestError, UserError
from desktop_app.session.requests import new_seed

if TYPE_CHECKING:
    from desktop_app.inference.engine import GenerationRequest

BATCH_SIZE = 4  # lines of one voice per batch (a unit of progress, of resuming and of Ray work)


def register(sub: Any) -> None:
    """Add ``batch`` to the sub-command parser ``sub``."""
    batch = sub.add_parser(
        "batch", help="speak every line of a text or JSONL file, one audio file per line"
    )
    common.add_voice_arguments(batch)
    batch.add_argument("--input", required=True, metavar="FILE", help="a .txt or .jsonl file")
    batch.add_argument("--out-dir", required=True, metavar="DIR", help="folder for the takes")
    batch.add_argument("--format", default="wav", choices=("wav", "flac"))
    batch.add_argument(
        "--force", action="store_true", help="make every line again, even those already made"
    )
    batch.add_argument(
        "--batch-size",
        type=int,
        default=BATCH_SIZE,
        metavar="N",
        help=f"lines of one voice generated together (default {BATCH_SIZE})",
    )
    batch.add_argument("--report-json", metavar="FILE", help="write every line and the totals")
    batch.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run on Ray: local[:N] (a private runtime here, N actors), auto, or "
        "ray://HOST:PORT; needs the cluster extra (pip install '.[cluster]')",
    )
    batch.add_argument(
        "--ray-cpus-per-actor",
        type=int,
        default=1,
        metavar="N",
        help="CPUs per actor where the cluster has no GPU (default 1)",
    )
    common.add_sampling_arguments(batch)
    common.add_listen_arguments(batch)
    common.add_candidate_arguments(batch)
    batch.set_defaults(handler=run)


class Progress:
    """Lines done of the total, seconds of audio made, throughput, ETA and lines per worker, on
    a terminal bar; the same figures go into the report."""

    def __init__(self, total: int) -> None:
        from tqdm import tqdm

        self.total = total
        self.created = self.started = time.perf_counter()
        self.audio = 0.0
        self.per_worker: dict[str, int] = {}
        self.bar = tqdm(
            total=total, unit="line", file=sys.stderr, dynamic_ncols=True, disable=None, leave=False
        )

    def start(self) -> None:
        """The engines are loaded: the clock of the throughput starts now."""
        self.started = time.perf_counter()

    def done(self, made: MadeLine) -> None:
        if made.result is not None:
            self.audio += made.result.seconds
        self.per_worker[made.worker] = self.per_worker.get(made.worker, 0) + 1
        self.bar.update(1)
        self.bar.set_postfix_str(self.line(), refresh=True)

    def figures(self) -> dict[str, Any]:
        wall = time.perf_counter() - self.started
        count = sum(self.per_worker.values())
        eta = wall / count * (self.total - count) if count else None
        return {
            "startup_seconds": round(self.started - self.created, 2),
            "lines_done": count,
            "lines_total": self.total,
            "audio_seconds": round(self.audio, 2),
            "wall_seconds": round(wall, 2),
            "throughput": round(self.audio / wall, 3) if wall > 0 else 0.0,
            "eta_seconds": round(eta, 1) if eta is not None else None,
            "lines_per_worker": dict(sorted(self.per_worker.items())),
        }

    def line(self) -> str:
        f = self.figures()
        eta = f"{f['eta_seconds']:.0f} s" if f["eta_seconds"] is not None else "-"
        return f"{f['audio_seconds']:.1f} s audio, {f['throughput']:.2f}x real time, ETA {eta}"

    def close(self) -> None:
        self.bar.close()


def run(args: argparse.Namespace) -> int:
    """Read the lines, skip those already made, make the rest by voice in batches (here or on
    Ray), write each file and its manifest entry as it arrives, and sum up."""
    out_dir = Path(args.out_dir).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = read_lines(Path(args.input).expanduser(), out_dir, args.voice, args.format)
    if args.ref:
        common.check_voice_arguments(args)
    for line in lines:
        if not line.voice and not args.ref and not line.error:
            line.error = 'no voice: give --voice NAME or --ref/--ref-text, or a "voice" in its line'
    keep_dir = common.check_candidates(args)
    if args.batch_size < 1:
        raise RequestError("--batch-size must be at least 1")
    report_file = (
        common.check_output(args.report_json, (".json",), "cannot write")
        if args.report_json
        else None
    )
    if args.ray and keep_dir is not None:
        raise RequestError("--keep-candidates works without --ray only")
    spec = common.model_spec(args)  # a bad engine name is said before anything is read
    settings = common.sampling_request(args, "-")  # the text and seed are each line's
    runner = None
    if args.ray:
        from desktop_app.cluster import ray_runner

        runner = ray_runner.check_ray()  # before anything slow: a one-line error without Ray
    manifest = Manifest(out_dir)
    for line in lines:  # what a killed run was writing (the file itself was never replaced)
        for part in out_dir.glob(f".{line.out.stem}.*.part"):
            part.unlink(missing_ok=True)
    wanted = _settings_key(args, settings)
    seeds, keys = {}, {}
    for line in lines:
        seeds[line.number] = args.seed + line.number - 1 if args.seed is not None else new_seed()
        fixed = {"seed": seeds[line.number]} if args.seed is not None else {}
        keys[line.number] = line_key(
            line.text, line.voice, line.out.name, {**wanted, **fixed}, args.model
        )
    todo = [
        line
        for line in lines
        if not line.error and (args.force or manifest.done(keys[line.number], line.out) is None)
    ]
    skipped = [line for line in lines if not line.error and line not in todo]
    if skipped:
        status(f"{len(skipped)} line(s) already made (the manifest); {len(todo)} to make")
    library = common.open_library()
    progress = Progress(len(todo))
    by_number = {line.number: line for line in lines}
    written: set[int] = set()
    revision = _revision(args.model)
    try:
        jobs = _jobs(args, todo, settings, seeds, library)
        progress.total = progress.bar.total = sum(len(group) for group in jobs.values())
        requests = {job.number: job.request for group in jobs.values() for job in group}

        def finished(made: MadeLine) -> None:
            """A line came back: write it once (a retried task may bring it twice)."""
            line = by_number[made.number]
            if made.number in written:
                return
            written.add(made.number)
            progress.done(made)
            if made.result is None:
                line.error = made.error
                return
            _keep_line(args, line, made, requests[made.number], library, revision, manifest, keys)

        if runner is not None:
            runner.run(
                args.ray,
                args.ray_cpus_per_actor,
                spec,
                jobs,
                args.batch_size,
                args.candidates,
                finished,
                progress.start,
            )
        else:
            _run_here(args, jobs, finished, progress.start)
    except KeyboardInterrupt:
        progress.close()
        status(
            f"interrupted: {len(written)} of {len(todo)} line(s) made and written (every file "
            "complete, each in the manifest); run the same command again to make the rest"
        )
        raise
    finally:
        progress.close()
        if library is not None:
            library.close()
    failed = [line for line in lines if line.error]
    _print_summary(lines, manifest, keys, progress, len(skipped), failed)
    if report_file is not None:
        _write_report(report_file, lines, manifest, keys, progress, failed)
    return EXIT_USER if failed else EXIT_OK


def _settings_key(args: argparse.Namespace, settings: GenerationRequest) -> dict[str, Any]:
    """The settings that make a line's take what it is (its key; the seed is added when fixed)."""
    return {
        "temperature": settings.temperature,
        "top_k": settings.top_k,
        "top_p": settings.top_p,
        "max_seconds": settings.max_seconds,
        "candidates": args.candidates,
        "check": not args.no_check,
        "engine": args.engine or "",
        "quantize": args.quantize,
        "refs": [str(r) for r in args.ref],
        "ref_text": list(args.ref_text),
        "denoise": bool(args.denoise),
    }


def _jobs(
    args: argparse.Namespace,
    todo: list[Line],
    settings: GenerationRequest,
    seeds: dict[int, int],
    library: Any,
) -> dict[str | None, list[LineJob]]:
    """Each voice's lines as requests; a voice that cannot be read fails its lines alone."""
    from desktop_app.session.voices import voice_adapter

    groups: dict[str | None, list[Line]] = {}
    for line in todo:
        groups.setdefault(line.voice if not args.ref else None, []).append(line)
    jobs: dict[str | None, list[LineJob]] = {}
    for voice, group in groups.items():
        try:
            references = common.voice_references(args, voice, library)
            adapter = voice_adapter(library, voice) if voice else None
            if any(not clip.transcript.strip() for clip in references):
                references, _ = common.transcribe_references(args, references, "cpu", None)
        except UserError as exc:
            for line in group:
                line.error = str(exc)
            continue
        jobs[voice] = [
            LineJob(
                line.number,
                dataclasses.replace(
                    settings,
                    text=line.text,
                    references=references,
                    seed=seeds[line.number],
                    adapter=adapter,
                ),
            )
            for line in group
        ]
    return jobs


def _revision(model: str) -> str:
    """The checkpoint's revision for the history ("" when it is only on the cluster's nodes)."""
    from desktop_app.inference.model_store import model_revision, resolve_model

    try:
        return model_revision(resolve_model(model))
    except UserError:
        return ""


def _run_here(
    args: argparse.Namespace,
    jobs: dict[str | None, list[LineJob]],
    finished: Callable[[MadeLine], None],
    started: Callable[[], None],
) -> None:
    """Make the lines on this machine, a batch at a time."""
    from desktop_app.batch.work import safe_make_lines
    from desktop_app.session.say import checker_for

    if not jobs:
        return
    models = common.load_models(args)
    checker = checker_for(models, common.check_level(args))
    started()
    for voice, group in jobs.items():
        status(f"{voice or 'the --ref voice'}: {len(group)} line(s)")
        for start in range(0, len(group), args.batch_size):
            part = group[start : start + args.batch_size]
            made_lines = safe_make_lines(
                models.engine, part, checker=checker, candidates=args.candidates
            )
            for made in made_lines:
                finished(made)


def _keep_line(
    args: argparse.Namespace,
    line: Line,
    made: MadeLine,
    request: GenerationRequest,
    library: Any,
    revision: str,
    manifest: Manifest,
    keys: dict[int, str],
) -> None:
    """Write the take (atomically) and its history row, then its manifest entry."""
    from desktop_app.checks.best_of import MadeTake
    from desktop_app.checks.take_check import TakeCheck
    from desktop_app.session.models import ModelNames

    assert made.result is not None
    check = TakeCheck.from_json(made.check) if made.check else None
    take = MadeTake(made.result, check)
    names = ModelNames(args.model, revision)
    common.keep(names, request, take, line.out, library, line.voice, quiet=True, source="batch")
    manifest.add(
        {
            "key": keys[line.number],
            "line": line.number,
            "text": line.text,
            "voice": line.voice,
            "file": line.out.name,
            "sha256": file_hash(line.out),
            "codes_sha256": made.codes_hash,
            "seed": made.result.seed,
            "frames": made.result.frames,
            "stopped_by": made.result.stopped_by,
            "seconds": round(made.result.seconds, 3),
            "settings": _settings_key(args, request),
            "check": made.check,
            "worker": made.worker,
        }
    )


def _print_summary(
    lines: list[Line],
    manifest: Manifest,
    keys: dict[int, str],
    progress: Progress,
    skipped: int,
    failed: list[Line],
) -> None:
    """One row per line (its check when there is one), the totals, and the failed lines."""
    entries = {e["key"]: e for e in manifest.entries}
    rows = [(line, entries.get(keys[line.number])) for line in lines if not line.error]
    checked = any(entry and entry.get("check") for _, entry in rows)
    head = f"{'line':>4}  {'seconds':>7}  {'frames':>6}  {'stopped by':<10}"
    if checked:
        head += f"  {'WER':>5}  {'voice':>5}  {'verdict':<7}"
    print(f"{head}  file")
    flagged = []
    for line, entry in rows:
        if entry is None:
            continue
        row = f"{line.number:>4}  {entry['seconds']:>7.2f}  {entry['frames']:>6}  "
        row += f"{entry['stopped_by']:<10}"
        if checked:
            c = entry.get("check") or {}
            wer = f"{c['wer']:.2f}" if c.get("wer") is not None else "-"
            voice = f"{c['similarity']:.2f}" if c.get("similarity") is not None else "-"
            row += f"  {wer:>5}  {voice:>5}  {c.get('verdict', '-'):<7}"
            if c and c.get("verdict") != "good":
                flagged.append((line, c))
        print(f"{row}  {line.out}")
    f = progress.figures()
    print(
        f"{len(rows)} take(s) ({skipped} already made), {f['audio_seconds']:.1f} s of audio "
        f"made in {f['wall_seconds']:.1f} s ({f['throughput']:.2f}x real time; "
        f"{f['startup_seconds']:.1f} s to load before)"
    )
    if len(f["lines_per_worker"]) > 1:
        print(
            "lines per worker: " + ", ".join(f"{k} {v}" for k, v in f["lines_per_worker"].items())
        )
    if checked:
        print(f"{len(flagged)} flagged line(s)" + (":" if flagged else ""))
        for line, c in flagged:
            print(f"  line {line.number}: {c.get('verdict')}: {'; '.join(c.get('reasons', []))}")
    if failed:
        print(f"{len(failed)} line(s) failed:")
        for line in failed:
            print(f"  line {line.number}: {line.error}")


def _write_report(
    path: Path,
    lines: list[Line],
    manifest: Manifest,
    keys: dict[int, str],
    progress: Progress,
    failed: list[Line],
) -> None:
    from desktop_app.files import write_text_atomic

    entries = {e["key"]: e for e in manifest.entries}
    data = {
        **progress.figures(),
        "lines": [
            {
                "line": line.number,
                "text": line.text,
                "voice": line.voice,
                "file": str(line.out),
                "error": line.error or None,
                "take": entries.get(keys[line.number]),
            }
            for line in lines
        ],
        "failed": [{"line": line.number, "error": line.error} for line in failed],
    }
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")
