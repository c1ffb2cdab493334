"""``batch --ray local:2`` (two CPU actors of one CPU each) against the plain local batch on the
same lines, in one run: throughput in seconds of audio per wall second, after the engines have
loaded, and the whole wall time with the start-up.

    PYTHONPATH=. python benchmarks/ray_batch.py --random-small --lines 16 --seconds 2 \
        --json benchmarks/results/cpu-small-ray.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.decode import (
    add_checkpoint_arguments,
    checkpoint_folder,
    checkpoint_name,
    write_report,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_checkpoint_arguments(parser)
    parser.add_argument("--lines", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each line's take")
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        env = {**os.environ, "CSM_STUDIO_HOME": str(home), "RAY_USAGE_STATS_ENABLED": "0"}
        subprocess.run(
            [sys.executable, "-c", "from desktop_app.library.store import Library; "
             "from tests.support.signals import voiced; Library().voices.add('Ada', "
             f"[(voiced({args.prompt_seconds}, 24000), 'I am Ada, and this is my voice.', "
             "'imported')])"], env=env, check=True)  # fmt: skip
        model = checkpoint_folder(args, tmp)
        lines = Path(tmp) / "lines.txt"
        lines.write_text("".join(f"This is line {i} of the chapter.\n" for i in range(args.lines)))
        results = {}
        for name, extra in (("local", []), ("ray_local_2", ["--ray", "local:2"])):
            report = Path(tmp) / f"{name}.json"
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "desktop_app", "batch", "--model", str(model), "--voice",
                 "Ada", "--input", str(lines), "--out-dir", str(Path(tmp) / name), "--seed", "1",
                 "--max-seconds", str(args.seconds), "--no-check", "--batch-size",
                 str(args.batch_size), "--report-json", str(report), *extra],
                env=env, capture_output=True, text=True)  # fmt: skip
            if done.returncode:
                print(done.stderr[-3000:], file=sys.stderr)
                return 1
            figures = json.loads(report.read_text())
            figures["process_seconds"] = round(time.perf_counter() - started, 2)
            results[name] = {k: v for k, v in figures.items() if k not in ("lines", "failed")}
    ratio = results["ray_local_2"]["throughput"] / results["local"]["throughput"]
    out = {
        "benchmark": "ray_batch",
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "checkpoint": checkpoint_name(args),
        "lines": args.lines,
        "take_seconds": args.seconds,
        "results": results,
        "throughput_ratio_ray_over_local": round(ratio, 2),
    }
    for name, r in results.items():
        print(f"{name:12} throughput {r['throughput']:.3f}x real time, {r['wall_seconds']:.1f} s "
              f"making, {r['startup_seconds']:.1f} s start-up, {r['process_seconds']:.1f} s in all"
              f", per worker {r['lines_per_worker']}")  # fmt: skip
    print(f"ray local:2 / local throughput: {ratio:.2f}x")
    write_report(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
