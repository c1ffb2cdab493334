"""Decode speed: the fast engine against the transformers reference, side by side in one process.

One checkpoint is loaded once (the fast engine wraps the transformers engine and shares its
weights); both engines then make the same take from the same voice prompt. Prints one table and
writes it as JSON.

    PYTHONPATH=. python benchmarks/decode.py --random-small --frames 100 --prompt-seconds 10 \
        --json benchmarks/results/cpu-small.json
    PYTHONPATH=. python benchmarks/decode.py --random-full-size --frames 250 --prompt-seconds 10 \
        --check-greedy 50 --json benchmarks/results/h100-full.json

Per-frame times come from the engines' progress callbacks; on CUDA each callback synchronises the
device first, so every frame's time is real (this costs the fast engine a little).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers

from desktop_app.inference import GenerationRequest, ReferenceClip
from desktop_app.inference.fast_engine import FastEngine
from desktop_app.inference.random_checkpoint import FULL, SMALL, build_random_checkpoint
from desktop_app.inference.self_test import (
    TEXT,
    TRANSCRIPT,
    FrameClock,
    identical_leading_frames,
    speech_like,
)


def measure(engine: Any, request: GenerationRequest, cuda: bool) -> dict[str, Any]:
    """One take with per-frame timing and peak memory."""
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    clock = FrameClock(cuda)
    clock.start = time.perf_counter()
    result = engine.generate(request, on_progress=clock)
    if cuda:
        torch.cuda.synchronize()
    total = time.perf_counter() - clock.start
    gaps = np.diff(clock.stamps) * 1000
    first = (clock.stamps[0] - clock.start) * 1000
    median = float(np.median(gaps)) if gaps.size else float("nan")
    return {
        "frames": result.frames,
        "first_frame_ms": first,
        "prefill_ms": first - median,
        "ms_per_frame_median": median,
        "ms_per_frame_p95": float(np.percentile(gaps, 95)) if gaps.size else float("nan"),
        "total_s": total,
        "real_time_factor": total / (result.frames / 12.5),
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        "notices": list(result.notices),
    }


def greedy_check(fast: FastEngine, clip: ReferenceClip, frames: int) -> dict[str, Any]:
    """Greedy codes of both engines for ``frames`` frames: how many frames are identical."""
    request = GenerationRequest(TEXT, (clip,), temperature=0, max_seconds=frames / 12.5)
    want = fast.reference.generate(request).codes
    got = fast.generate(request).codes
    same = identical_leading_frames(want, got)
    return {
        "frames": frames,
        "identical_leading_frames": same,
        "equal": bool(want.shape == got.shape and np.array_equal(want, got)),
    }


def add_checkpoint_arguments(parser: argparse.ArgumentParser) -> None:
    """Which checkpoint (a folder, or random weights of a size), the voice prompt's length,
    the device and the JSON output: what every benchmark here takes."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", type=Path, help="a CSM checkpoint folder")
    source.add_argument(
        "--random-full-size", action="store_true", help="CsmConfig() random weights"
    )
    source.add_argument("--random-small", action="store_true", help="a ~30 M-parameter random CSM")
    parser.add_argument("--prompt-seconds", type=float, default=10.0)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--json", type=Path, help="write the results here")


def checkpoint_folder(args: argparse.Namespace, tmp: str) -> Path:
    """The --model folder, or a random checkpoint built in ``tmp``."""
    if args.model is not None:
        return Path(args.model)
    started = time.perf_counter()
    folder = build_random_checkpoint(Path(tmp) / "ckpt", FULL if args.random_full_size else SMALL)
    print(f"built a random checkpoint in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return folder


def write_report(path: Path | None, report: dict[str, Any]) -> None:
    """Write ``report`` as JSON to ``path`` (the --json argument), if one was given."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")


def checkpoint_name(args: argparse.Namespace) -> str:
    """How the report names the checkpoint."""
    if args.model:
        return str(args.model)
    return "random full size" if args.random_full_size else "random small"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_checkpoint_arguments(parser)
    parser.add_argument("--frames", type=int, default=250)
    parser.add_argument(
        "--check-greedy",
        type=int,
        default=0,
        metavar="N",
        help="also compare greedy codes of both engines over N frames",
    )
    parser.add_argument(
        "--skip-reference",
        action="store_true",
        help="time only the fast engine (the reference is slow on a CPU)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = checkpoint_folder(args, tmp)
        started = time.perf_counter()
        fast = FastEngine(folder, args.device)
        load_s = time.perf_counter() - started
        cuda = fast.device.startswith("cuda")
        clip = ReferenceClip(speech_like(args.prompt_seconds), TRANSCRIPT)
        request = GenerationRequest(
            TEXT, (clip,), temperature=0.9, top_k=50, seed=1234, max_seconds=args.frames / 12.5
        )
        warm = GenerationRequest(TEXT, (clip,), temperature=0.9, seed=1, max_seconds=0.8)
        rows: dict[str, Any] = {}
        engines = [("fast", fast)] + (
            [] if args.skip_reference else [("transformers", fast.reference)]
        )
        for name, engine in engines:
            started = time.perf_counter()
            engine.generate(warm)  # lazy initialisation, CUDA graph capture
            warm_s = time.perf_counter() - started
            fast._prompt_key = None  # a cold voice prompt: no KV kept from the warm-up
            rows[name] = measure(engine, request, cuda) | {"warm_up_s": warm_s}
            if engine is fast:  # the next take with the same voice skips the voice prefill
                rows["fast, voice prompt reused"] = measure(fast, request, cuda)
        if not args.skip_reference:
            speedup = (
                rows["transformers"]["ms_per_frame_median"] / rows["fast"]["ms_per_frame_median"]
            )
        else:
            speedup = None
        report: dict[str, Any] = {
            "command": " ".join(sys.argv),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "device": fast.device_name,
            "dtype": fast.dtype,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "python": platform.python_version(),
            "checkpoint": checkpoint_name(args),
            "prompt_seconds": args.prompt_seconds,
            "frames": args.frames,
            "load_s": load_s,
            "cuda_graph": cuda,
            "process_peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "engines": rows,
            "speedup_median_ms_per_frame": speedup,
        }
        if args.check_greedy:
            report["greedy_check"] = greedy_check(fast, clip, args.check_greedy)
    print_table(report)
    write_report(args.json, report)
    return 0


def print_table(report: dict[str, Any]) -> None:
    print(
        f"{report['checkpoint']} on {report['device']} ({report['dtype']}), "
        f"{report['prompt_seconds']:g} s voice prompt, {report['frames']} frames; "
        f"load {report['load_s']:.1f} s"
    )
    header = (
        "engine",
        "prefill ms",
        "first frame ms",
        "ms/frame med",
        "ms/frame p95",
        "RTF",
        "peak GiB",
        "frames",
    )
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for name, row in report["engines"].items():
        peak = "n/a" if row["peak_memory_gib"] is None else f"{row['peak_memory_gib']:.2f}"
        print(
            f"{name} | {row['prefill_ms']:.1f} | {row['first_frame_ms']:.1f} | "
            f"{row['ms_per_frame_median']:.2f} | {row['ms_per_frame_p95']:.2f} | "
            f"{row['real_time_factor']:.3f} | {peak} | {row['frames']}"
        )
    if report["speedup_median_ms_per_frame"]:
        print(f"speed-up (median ms/frame): {report['speedup_median_ms_per_frame']:.2f}x")
    if "greedy_check" in report:
        check = report["greedy_check"]
        print(
            f"greedy codes: {check['identical_leading_frames']}/{check['frames']} leading "
            f"frames identical (equal: {check['equal']})"
        )
    print(f"process peak RSS {report['process_peak_rss_gib']:.2f} GiB")


if __name__ == "__main__":
    sys.exit(main())
