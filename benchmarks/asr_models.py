"""Which Whisper to check takes with: the time to transcribe one take and to load, for the real
shapes of whisper-base, whisper-small and whisper-large-v3-turbo (random weights, so no
download; a shaped decoder says a 9-word sentence, as a real one would for a short take), side by
side in one process on this machine's device.

    PYTHONPATH=. python benchmarks/asr_models.py --seconds 6 \
        --json benchmarks/results/cpu-asr-models.json

Accuracy is not measured here (random weights cannot have any): see the README for the
published figures the choice also rests on.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.decode import write_report
from benchmarks.listen_back import espeak_speech
from desktop_app.audio import dsp
from desktop_app.inference.asr import SpeechRecognizer
from desktop_app.inference.random_checkpoint import (
    WHISPER_BASE,
    WHISPER_SMALL,
    WHISPER_TURBO,
    build_random_whisper,
)

SHAPES = {"base": WHISPER_BASE, "small": WHISPER_SMALL, "turbo": WHISPER_TURBO}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="length of the take")
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    device = "cuda" if args.device in ("auto", "cuda") and torch.cuda.is_available() else "cpu"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        speech = dsp.resample(espeak_speech(args.seconds, tmp), 24_000, 16_000)
        for name in args.shapes:
            folder = build_random_whisper(Path(tmp) / name, shape=SHAPES[name])
            started = time.perf_counter()
            recognizer = SpeechRecognizer(folder, device)
            load = time.perf_counter() - started
            recognizer.transcribe(speech)  # warm-up
            best = float("inf")
            for _ in range(args.repeats):
                started = time.perf_counter()
                heard = recognizer.transcribe(speech)
                best = min(best, time.perf_counter() - started)
            params = sum(p.numel() for p in recognizer.model.parameters())
            rows.append(
                {
                    "shape": name,
                    "parameters_m": round(params / 1e6, 1),
                    "load_s": round(load, 2),
                    "transcribe_s": round(best, 3),
                    "per_audio_second": round(best / args.seconds, 3),
                    "words": len(heard.words),
                }
            )
            print(rows[-1], file=sys.stderr)
            del recognizer
            for file in folder.glob("*.safetensors"):
                file.unlink()  # the turbo shape is 3 GB
    report = {
        "benchmark": "asr_models",
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "take_seconds": args.seconds,
        "models": rows,
    }
    for row in rows:
        print("  ".join(f"{k} {v}" for k, v in row.items()))
    write_report(args.json, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
