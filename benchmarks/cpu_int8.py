"""int8 weights on the CPU: ms/frame, memory, load time and how far outputs move, against float32
and bfloat16, in one process on one checkpoint (the full-size random CSM by default).

    PYTHONPATH=. python benchmarks/cpu_int8.py --random-full-size --frames 50 \
        --json benchmarks/results/cpu-int8.json

Also times float32 at 1 and 2 CPU threads (torch's default is one per core). Agreement is the
greedy codes of int8 (and bf16) against float32, frame by frame from the first; on random
weights the logits have tiny margins, so agreement there says little about a trained model:
the per-layer relative difference of the hidden states is the better measure of the error.
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

import torch

from benchmarks.decode import (
    add_checkpoint_arguments,
    checkpoint_folder,
    checkpoint_name,
    write_report,
)
from desktop_app.inference import GenerationRequest, ReferenceClip, cpu_int8
from desktop_app.inference.decoder import dense
from desktop_app.inference.fast_engine import FastEngine
from desktop_app.inference.self_test import (
    TEXT,
    TRANSCRIPT,
    FrameClock,
    identical_leading_frames,
    speech_like,
)


def rss_gib() -> float:
    """This process's resident memory now."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def take(engine: FastEngine, request: GenerationRequest) -> tuple[Any, float]:
    clock = FrameClock(cuda=False)
    clock.start = time.perf_counter()
    result = engine.generate(request, on_progress=clock)
    return result, clock.ms_per_frame


def layer_differences(engine: FastEngine, request: GenerationRequest) -> list[float]:
    """Relative difference ||int8 - float|| / ||float|| of each backbone layer's output, fed
    the same input (the float run's), over the prompt's prefill."""
    inputs = engine.prompts.prompt_of(request).inputs
    from desktop_app.inference.transformers_compat import prompt_embeddings

    ids = inputs["input_ids"]
    x = prompt_embeddings(
        engine.reference.model, ids, inputs["input_values"], inputs["input_values_cutoffs"]
    )
    end = ids.shape[1]
    positions = engine.decoder.all_positions[:end]
    stack = engine.decoder.backbone.with_batch(1, end)
    cos, sin = stack.cos[positions], stack.sin[positions]
    out = []
    with torch.inference_mode():
        for i, layer in enumerate(stack.layers):
            layer.quantize(cpu_int8.int8_linear)
            quantized = layer.forward(x, cos, sin, stack.k[i], stack.v[i], positions, end, None)
            layer.quantize(dense)
            exact = layer.forward(x, cos, sin, stack.k[i], stack.v[i], positions, end, None)
            out.append(float((quantized - exact).norm() / exact.norm()))
            x = exact
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_checkpoint_arguments(parser)
    parser.add_argument("--frames", type=int, default=50)
    args = parser.parse_args()
    report: dict[str, Any] = {
        "command": " ".join(sys.argv),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "checkpoint": checkpoint_name(args),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_threads_default": torch.get_num_threads(),
        "frames": args.frames,
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = checkpoint_folder(args, tmp)
        clip = ReferenceClip(speech_like(args.prompt_seconds), TRANSCRIPT)
        request = GenerationRequest(TEXT, (clip,), temperature=0, max_seconds=args.frames / 12.5)
        short = GenerationRequest(TEXT, (clip,), temperature=0, max_seconds=10 / 12.5)
        started = time.perf_counter()
        engine = FastEngine(folder, "cpu")
        report["load_s"] = {"float32": time.perf_counter() - started}
        report["rss_gib"] = {"float32": rss_gib()}
        threads = {}
        for count in (1, 2):
            torch.set_num_threads(count)
            threads[count] = take(engine, short)[1]
        torch.set_num_threads(report["cpu_threads_default"])
        report["float32_ms_per_frame_by_threads"] = threads
        rows: dict[str, Any] = {}
        exact, ms = take(engine, request)
        rows["float32"] = {"ms_per_frame": ms, "identical_frames": exact.frames}
        report["layer_relative_difference_int8"] = layer_differences(engine, request)
        started = time.perf_counter()
        cpu_int8.quantize(engine)
        report["load_s"]["int8 (quantizing, after the float load)"] = time.perf_counter() - started
        report["rss_gib"]["float32 + int8"] = rss_gib()
        take(engine, short)  # warm-up of the quantized kernels
        got, ms = take(engine, request)
        rows["int8"] = {
            "ms_per_frame": ms,
            "identical_frames": identical_leading_frames(exact.codes, got.codes),
        }
        for name, part in engine.reference.model.named_children():
            if name != "codec_model":  # Mimi stays float32, as it decodes the codes
                part.to(torch.bfloat16)
        engine._build()  # the weights, now bf16, without the int8 products
        report["rss_gib"]["bfloat16 (+ int8 until collected)"] = rss_gib()
        take(engine, short)
        got, ms = take(engine, request)
        rows["bfloat16"] = {
            "ms_per_frame": ms,
            "identical_frames": identical_leading_frames(exact.codes, got.codes),
        }
        report["engines"] = rows
        best_float = min(rows["float32"]["ms_per_frame"], rows["bfloat16"]["ms_per_frame"])
        report["int8_speedup_vs_best_float"] = best_float / rows["int8"]["ms_per_frame"]
        report["process_peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps(report, indent=2))
    write_report(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
