"""Listening back: the cost of checking a take against the cost of making it, and best of 4 made
as one batch against a single take, side by side in one process.

    PYTHONPATH=. python benchmarks/listen_back.py --random-small --seconds 4 \
        --json benchmarks/results/cpu-small-listen-back.json

The listen-back models are random weights of the real shapes (``--asr-shape small`` is
openai/whisper-small, ``turbo`` whisper-large-v3-turbo; the speaker model has
wavlm-base-plus-sv's), so the times are those of the real models; pass ``--asr-model`` /
``--speaker-model`` folders to time real checkpoints. The random Whisper says a fixed sentence,
so its decoder runs as many steps as a real one for a sentence. Random CSM weights make noise,
in which the speech detector finds no speech and the checker would skip the recogniser: the
check is therefore timed on espeak-ng speech of the take's length (what a real take holds).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch

from benchmarks.decode import (
    add_checkpoint_arguments,
    checkpoint_folder,
    checkpoint_name,
    write_report,
)
from desktop_app.audio import dsp
from desktop_app.checks.best_of import make_best_of
from desktop_app.checks.take_check import TakeChecker
from desktop_app.inference import GenerationRequest, ReferenceClip
from desktop_app.inference.asr import SpeechRecognizer
from desktop_app.inference.batch import generate_batch
from desktop_app.inference.fast_engine import FastEngine
from desktop_app.inference.random_checkpoint import (
    SPEAKER_BASE,
    TINY_WHISPER,
    WHISPER_BASE,
    WHISPER_SMALL,
    WHISPER_TURBO,
    build_random_speaker_model,
    build_random_whisper,
)
from desktop_app.inference.self_test import TRANSCRIPT, speech_like
from desktop_app.inference.speaker import SpeakerEncoder

ASR_SHAPES = {
    "tiny": TINY_WHISPER,
    "base": WHISPER_BASE,
    "small": WHISPER_SMALL,
    "turbo": WHISPER_TURBO,
}
SPOKEN = (
    "The quick brown fox jumps over the lazy dog, and then it runs back home again, "
    "past the old mill and over the bridge."
)


def espeak_speech(seconds: float, tmp: str) -> np.ndarray:
    """espeak-ng speech, repeated or cut to ``seconds`` at 24 kHz."""
    path = Path(tmp) / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(path), SPOKEN], check=True)
    data, rate = sf.read(path, dtype="float32")
    audio = dsp.resample(data, rate, 24_000)
    reps = int(np.ceil(seconds * 24_000 / audio.size))
    return np.tile(audio, reps)[: int(seconds * 24_000)]


def timed(fn: Any, repeats: int) -> tuple[Any, float]:
    """The last result and the best wall time of ``repeats`` calls."""
    best, out = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - started)
    return out, best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_checkpoint_arguments(parser)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each take")
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--asr-shape", default="small", choices=sorted(ASR_SHAPES))
    parser.add_argument("--asr-model", type=Path, help="a real Whisper folder instead")
    parser.add_argument("--speaker-model", type=Path, help="a real speaker folder instead")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    device = "cuda" if args.device in ("auto", "cuda") and torch.cuda.is_available() else "cpu"
    with tempfile.TemporaryDirectory() as tmp:
        engine = FastEngine(checkpoint_folder(args, tmp), device)
        started = time.perf_counter()
        asr_dir = args.asr_model or build_random_whisper(
            Path(tmp) / "asr", shape=ASR_SHAPES[args.asr_shape]
        )
        speaker_dir = args.speaker_model or build_random_speaker_model(
            Path(tmp) / "speaker", SPEAKER_BASE
        )
        print(f"listen-back models ready in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        checker = TakeChecker(
            SpeechRecognizer(asr_dir, device), SpeakerEncoder(speaker_dir, device)
        )
        reference = ReferenceClip(speech_like(args.prompt_seconds), TRANSCRIPT)
        request = GenerationRequest(
            SPOKEN, references=(reference,), seed=1, max_seconds=args.seconds
        )
        engine.generate(dataclasses.replace(request, max_seconds=0.4))  # warm up
        single, make_s = timed(lambda: engine.generate(request), args.repeats)
        speech = espeak_speech(single.seconds, tmp)
        as_take = dataclasses.replace(single, audio=speech, stopped_by="end-frame")
        checker.check(request, as_take)  # warm up (first calls allocate)
        checked, check_s = timed(lambda: checker.check(request, as_take), args.repeats)
        rows = [dataclasses.replace(request, seed=1 + j) for j in range(args.candidates)]
        _, batch_s = timed(lambda: generate_batch(engine, rows), args.repeats)
        _, best_s = timed(lambda: make_best_of(engine, request, args.candidates, checker),
                          args.repeats)  # fmt: skip
    report = {
        "benchmark": "listen_back",
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "checkpoint": checkpoint_name(args),
        "asr": str(args.asr_model) if args.asr_model else f"random {args.asr_shape} shape",
        "speaker": str(args.speaker_model)
        if args.speaker_model
        else "random wavlm-base-plus-sv shape",
        "take_seconds": round(single.seconds, 2),
        "make_take_s": round(make_s, 3),
        "check_take_s": round(check_s, 3),
        "check_over_make": round(check_s / make_s, 3),
        "check_heard_words": len(checked.check.heard.split()),
        "candidates": args.candidates,
        "batch_of_candidates_s": round(batch_s, 3),
        "batch_over_single": round(batch_s / make_s, 3),
        "best_of_with_checks_s": round(best_s, 3),
        "best_of_over_single": round(best_s / make_s, 3),
        "note": "best_of_with_checks checks random-weight noise, in which the speech detector "
        "finds no speech: the recogniser does not run there; add check_take_s per candidate for "
        "real takes",
    }
    width = max(map(len, report))
    for key, value in report.items():
        print(f"{key:<{width}}  {value}")
    write_report(args.json, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
