"""The CPU's weights side by side: float32, int8 and int4 (the fast engine) and transformers
float32: ms/frame against each format's floor, memory, load, first audio, batches, and error.

    PYTHONPATH=. python benchmarks/cpu_weights.py --random-full-size \
        --json benchmarks/results/cpu-weights.json

One run. The error figures (per-layer hidden-state error, per-codebook KL divergence of the
logits against float32 on a teacher-forced sequence, greedy agreement) come from one process
that holds the float weights and each format's products over them. Memory is per process, so
each setting's load, memory and speed are measured in a child process of its own (started one
after another on the same checkpoint; a packed format twice: with an empty cache, which packs,
and from the cache). Random weights stand in for the real ones (not downloadable here): the
error figures are a proxy of a trained model's, the speed and memory figures are the real ones.
Note the load (``uptime``) with the figures: other work beside them moved them 2-3x.
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
from typing import Any

import numpy as np
import torch

from benchmarks.decode import add_checkpoint_arguments, checkpoint_folder, checkpoint_name
from desktop_app.inference import GenerationRequest, ReferenceClip
from desktop_app.inference.batch import generate_batch
from desktop_app.inference.cpu_weights import BITS, FORMATS, PackedLinear, block_for, pack
from desktop_app.inference.decoder import Decoder, dense_named
from desktop_app.inference.fast_engine import FastEngine
from desktop_app.inference.self_test import (
    TEXT,
    TRANSCRIPT,
    FrameClock,
    identical_leading_frames,
    speech_like,
)

SENTENCES = [
    "The first sentence is a short one.",
    "Here comes a second sentence, a little longer than the first.",
    "A third.",
    "The fourth sentence talks about the weather and the sea for a while.",
    "And the fifth one ends it.",
]


def memory_gib(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def copy_bandwidth() -> float:
    """GB/s of a 1 GB float32 copy (read + write counted)."""
    a = torch.empty(256 * 1024 * 1024)
    b = torch.empty_like(a)
    b.copy_(a)
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        b.copy_(a)
        best = min(best, time.perf_counter() - started)
    return 2 * a.numel() * 4 / best / 1e9


def bytes_per_frame(decoder: Decoder) -> dict[str, float]:
    """Weight bytes a frame reads in each format: the backbone's products and the codebook-0
    head once, the depth decoder's layers and input projection on each of its passes, each
    codebook head once."""
    passes = decoder.num_codebooks - 1
    counts: dict[str, float] = {}
    for name, weight, _ in decoder.weights():
        times = passes if name.startswith(("depth.", "depth_projector")) else 1
        out_f, in_f = weight.shape
        counts[name] = out_f * in_f * times
    found = {"float32": 4.0 * sum(counts.values())}
    for fmt in FORMATS:
        total = 0.0
        for name, weight, _ in decoder.weights():
            block = block_for(fmt, weight.shape[1])
            total += counts[name] * (BITS[fmt] / 8 + 4 / block)
        found[fmt] = total
    return found


def request(seconds: float, frames: int, text: str = TEXT, seed: int = 0) -> GenerationRequest:
    clip = ReferenceClip(speech_like(seconds), TRANSCRIPT)
    return GenerationRequest(text, (clip,), temperature=0, seed=seed, max_seconds=frames / 12.5)


def first_audio_s(engine: Any, req: GenerationRequest) -> float:
    started = time.perf_counter()
    heard: list[float] = []

    def on_audio(_: object) -> None:
        heard.append(time.perf_counter())

    engine.generate(req, on_audio=on_audio)
    return heard[0] - started


# -- a child: one setting's load, memory and speed -----------------------------------------------


def child(args: argparse.Namespace) -> dict[str, Any]:
    folder, fmt = Path(args.child_model), args.child
    out: dict[str, Any] = {"load_1min_at_start": os.getloadavg()[0]}
    started = time.perf_counter()
    if fmt == "transformers":
        from desktop_app.inference.hf_engine import TransformersEngine

        engine: Any = TransformersEngine(folder, "cpu")
    else:
        engine = FastEngine(folder, "cpu", quantize="" if fmt == "float32" else fmt)
    out["load_s"] = time.perf_counter() - started
    out["rss_after_load_gib"] = memory_gib()
    out["peak_rss_load_gib"] = memory_gib("VmHWM")
    frames = 10 if fmt == "transformers" else args.frames
    clock = FrameClock(cuda=False)
    clock.start = time.perf_counter()
    engine.generate(request(4.0, frames), on_progress=clock)
    out["ms_per_frame"] = clock.ms_per_frame
    out["rss_after_take_gib"] = memory_gib()
    out["peak_rss_gib"] = memory_gib("VmHWM")
    if fmt == "transformers" or args.only_load:
        return out
    voice = request(10.0, 15, seed=1)
    out["first_audio_10s_voice_cold_s"] = first_audio_s(engine, voice)
    out["first_audio_10s_voice_reused_s"] = first_audio_s(engine, request(10.0, 15, "Again."))
    one = request(4.0, 20)
    started = time.perf_counter()
    engine.generate(one)
    one_s = time.perf_counter() - started
    started = time.perf_counter()
    generate_batch(engine, [request(4.0, 20, seed=s) for s in range(4)])
    out["best_of_4_vs_one_take"] = (time.perf_counter() - started) / one_s
    five = [request(4.0, 12 + 4 * i, text) for i, text in enumerate(SENTENCES)]
    started = time.perf_counter()
    engine.generate(max(five, key=lambda r: r.max_seconds))
    longest_s = time.perf_counter() - started
    started = time.perf_counter()
    generate_batch(engine, five)
    out["five_sentences_vs_the_longest_alone"] = (time.perf_counter() - started) / longest_s
    return out


def run_child(folder: Path, setting: str, cache: Path, extra: list[str]) -> dict[str, Any]:
    env = dict(os.environ, CSM_STUDIO_CACHE=str(cache), PYTHONPATH=".")
    command = [sys.executable, __file__, "--model", str(folder), "--child", setting]
    command += ["--child-model", str(folder), *extra]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{setting} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the error figures ----------------------------------------------------------------------------


def teacher_forced_logits(decoder: Decoder, prompt: torch.Tensor, codes: torch.Tensor) -> list:
    """Each frame's logits per codebook (frames, codebooks, vocab) with the frames of ``codes``
    fed back, and each backbone layer's output over the whole sequence."""
    frames = codes.shape[0]
    x = torch.cat([prompt, decoder.embed_frame(codes[:-1])[None]], dim=1)
    positions = decoder.all_positions[: x.shape[1]]
    stack = decoder.backbone.with_batch(1, x.shape[1])
    cos, sin = stack.cos[positions], stack.sin[positions]
    layers = []
    h = x
    for i, layer in enumerate(stack.layers):
        h = layer.forward(h, cos, sin, stack.k[i], stack.v[i], positions, x.shape[1], None)
        layers.append(h)
    from desktop_app.inference.decoder import rms_norm

    hidden = rms_norm(h, stack.norm)[0, prompt.shape[1] - 1 :]
    depth = decoder.depth.with_batch(frames)
    logits = [decoder.lm_head(hidden)]
    first = decoder.depth_embed(codes[:, 0])
    d = depth.forward(
        decoder.depth_projector(torch.stack([hidden, first], dim=1)),
        decoder.all_positions[:2],
        2,
        None,
    )[:, -1]
    for book in range(1, decoder.num_codebooks):
        logits.append(decoder.codebook_head[book - 1](d))
        if book + 1 == decoder.num_codebooks:
            break
        y = decoder.depth_projector(decoder.depth_embed(codes[:, book] + book * decoder.vocab))
        pos = decoder.all_positions[book + 1 : book + 2]
        d = depth.forward(y[:, None], pos, book + 2, None)[:, -1]
    return [torch.stack(logits, dim=1), layers]


def error_figures(folder: Path, frames: int) -> dict[str, Any]:
    """Per-layer error, per-codebook KL and greedy agreement of each format against float32."""
    from desktop_app.inference.transformers_compat import prompt_embeddings

    engine = FastEngine(folder, "cpu")
    decoder = engine.decoder
    req = request(4.0, frames)
    figures: dict[str, Any] = {"bytes_per_frame_gb": {}}
    figures["bytes_per_frame_gb"] = {k: v / 1e9 for k, v in bytes_per_frame(decoder).items()}
    with torch.inference_mode():
        exact = engine.generate(req)
        inputs = engine.prompts.prompt_of(req).inputs
        prompt = prompt_embeddings(
            engine.reference.model,
            inputs["input_ids"],
            inputs["input_values"],
            inputs["input_values_cutoffs"],
        )
        codes = torch.as_tensor(exact.codes, dtype=torch.long)
        want_logits, want_layers = teacher_forced_logits(decoder, prompt, codes)
        want_p = torch.log_softmax(want_logits, dim=-1)
        for fmt in FORMATS:
            products = {n: PackedLinear(pack(w, b, fmt)) for n, w, b in decoder.weights()}
            decoder.quantize(lambda name, w, b, products=products: products[name])
            got_logits, got_layers = teacher_forced_logits(decoder, prompt, codes)
            got_p = torch.log_softmax(got_logits, dim=-1)
            kl = (want_p.exp() * (want_p - got_p)).sum(-1).mean(0)  # per codebook
            agree = (got_logits.argmax(-1) == want_logits.argmax(-1)).float().mean(0)
            greedy = engine.generate(req)
            figures[fmt] = {
                "layer_relative_error": [
                    float((g - w).norm() / w.norm())
                    for g, w in zip(got_layers, want_layers, strict=True)
                ],
                "kl_per_codebook": [float(v) for v in kl],
                "kl_mean": float(kl.mean()),
                "teacher_forced_argmax_agreement_per_codebook": [float(v) for v in agree],
                "greedy_identical_leading_frames": identical_leading_frames(
                    exact.codes, greedy.codes
                ),
                "greedy_codes_equal_fraction": float(np.mean(exact.codes == greedy.codes)),
            }
            decoder.quantize(dense_named)
            del products
    figures["frames"] = frames
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_checkpoint_arguments(parser)
    parser.add_argument("--frames", type=int, default=25)
    parser.add_argument("--error-frames", type=int, default=50)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-model", help=argparse.SUPPRESS)
    parser.add_argument("--only-load", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return 0
    report: dict[str, Any] = {
        "command": " ".join(sys.argv),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": _cpu_name(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "load_1min_at_start": os.getloadavg()[0],
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = checkpoint_folder(args, tmp)
        report["checkpoint"] = checkpoint_name(args)
        report["copy_gb_per_s"] = copy_bandwidth()
        settings: dict[str, Any] = {}
        extra = ["--frames", str(args.frames)]
        for fmt in FORMATS:
            cache = Path(tmp) / f"cache-{fmt}"
            cold = run_child(folder, fmt, cache, [*extra, "--only-load"])
            settings[fmt] = run_child(folder, fmt, cache, extra)
            settings[fmt]["load_s_first_time_packing"] = cold["load_s"]
            settings[fmt]["peak_rss_first_time_gib"] = cold["peak_rss_gib"]
            print(fmt, settings[fmt], flush=True)
        settings["float32"] = run_child(folder, "float32", Path(tmp) / "none", extra)
        print("float32", settings["float32"], flush=True)
        settings["transformers float32"] = run_child(folder, "transformers", Path(tmp), extra)
        report["settings"] = settings
        report["errors"] = error_figures(folder, args.error_frames)
    bandwidth = report["copy_gb_per_s"]
    for fmt in ("float32", *FORMATS):
        floor_ms = report["errors"]["bytes_per_frame_gb"][fmt] / bandwidth * 1e3
        settings[fmt]["floor_ms"] = floor_ms
        settings[fmt]["ratio_to_floor"] = settings[fmt]["ms_per_frame"] / floor_ms
        settings[fmt]["real_time_factor"] = settings[fmt]["ms_per_frame"] / 80.0
    report["load_1min_at_end"] = os.getloadavg()[0]
    print(json.dumps(report, indent=2))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    raise SystemExit(main())
