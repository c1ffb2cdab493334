"""CPU threads: 1 against 2 (this machine's cores) for float32 and int8, per frame, the cold
prefill of a 10 s voice prompt, and a batch of five short sentences; one process, one checkpoint.

    PYTHONPATH=. python benchmarks/cpu_threads.py --model /tmp/full-csm \
        --json benchmarks/results/cpu-threads.json

(/tmp/full-csm: the full-size random checkpoint, built once with
``build_random_checkpoint(Path("/tmp/full-csm"), FULL)``; or give --random-full-size.)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from typing import Any

import torch

from benchmarks.decode import (
    add_checkpoint_arguments,
    checkpoint_folder,
    checkpoint_name,
    write_report,
)
from benchmarks.streaming_batch import SENTENCES
from desktop_app.inference import GenerationRequest, ReferenceClip
from desktop_app.inference.batch import generate_batch
from desktop_app.inference.fast_engine import FastEngine
from desktop_app.inference.self_test import TRANSCRIPT, FrameClock, speech_like


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_checkpoint_arguments(parser)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = checkpoint_folder(args, tmp)
        clip = (ReferenceClip(speech_like(args.prompt_seconds), TRANSCRIPT),)
        one = GenerationRequest(SENTENCES[0], clip, temperature=0, max_seconds=0.8)
        five = [GenerationRequest(t, clip, temperature=0, max_seconds=0.4) for t in SENTENCES[:5]]
        for label in ("float32", "int8"):
            # the packed engine decodes with torch on one thread whatever is set here (its
            # products run on onnxruntime's threads): this times the float engine's threads
            engine = FastEngine(folder, "cpu", quantize="" if label == "float32" else label)
            engine.generate(one)  # warm-up
            for count in args.threads:
                torch.set_num_threads(count)
                engine._prompt_key = None  # a cold voice prefill every time
                clock = FrameClock(cuda=False)
                clock.start = time.perf_counter()
                engine.generate(one, on_progress=clock)
                started = time.perf_counter()
                generate_batch(engine, five)
                rows[f"{label}, {count} thread(s)"] = {
                    "ms_per_frame": clock.ms_per_frame,
                    "first_frame_ms_cold_prefill": clock.first_frame_ms,
                    "batch_of_5_sentences_5_frames_s": time.perf_counter() - started,
                }
                print(label, count, rows[f"{label}, {count} thread(s)"], flush=True)
    report = {"command": " ".join(sys.argv), "checkpoint": checkpoint_name(args), "rows": rows}
    write_report(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
