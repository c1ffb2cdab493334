"""Training a voice on this machine: seconds per training example (a 10 s target with a 10 s
reference turn, forward and backward through the LoRA model), peak memory, and the time for 10
minutes of audio at the default settings, from those measurements.

    PYTHONPATH=. python benchmarks/train_voice.py --model /tmp/fullckpt \
        --json benchmarks/results/train-voice.json

Random full-size weights stand in for CSM-1B (same shapes, same work). The examples are speech-
like signals (their codes are computed once, as a training set's are). Note the load
(``uptime``) with the figures.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.decode import (
    add_checkpoint_arguments,
    checkpoint_folder,
    checkpoint_name,
    write_report,
)
from desktop_app.inference.self_test import speech_like
from desktop_app.training import lora
from desktop_app.training.training_set import TrainingSet
from desktop_app.training.utterances import RATE, Utterance

TEXT = "This is a sentence of about ten seconds, read at an easy pace for the training benchmark."


def peak_gib() -> float:
    """This process's peak resident memory so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_checkpoint_arguments(parser)
    parser.add_argument("--steps", type=int, default=3, help="timed examples (after one warm-up)")
    parser.add_argument("--seconds", type=float, default=10.0, help="the target's length")
    args = parser.parse_args()
    load = Path("/proc/loadavg").read_text().split()[:3]
    with tempfile.TemporaryDirectory() as tmp:
        folder = checkpoint_folder(args, tmp)
        started = time.perf_counter()
        model, processor = lora.load_base(folder, args.device)
        load_seconds = time.perf_counter() - started
        loaded_gib = peak_gib()
        utterances = [
            Utterance(f"u{i}", "bench", 0.0, args.seconds,
                      np.roll(speech_like(args.seconds, RATE), i * RATE).astype(np.float32),
                      TEXT, True)
            for i in range(2)
        ]  # fmt: skip
        training_set = TrainingSet(Path(tmp) / "set", utterances, [])
        training_set.held_out_keys = set()
        settings = lora.TrainSettings()
        from peft import get_peft_model

        peft_model = get_peft_model(model, lora.lora_config(settings))
        trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
        optimizer = torch.optim.AdamW(
            [p for p in peft_model.parameters() if p.requires_grad], lr=settings.learning_rate
        )
        started = time.perf_counter()
        for u in utterances:
            lora.codes_of(peft_model.base_model.model, training_set, u)
        codes_seconds = (time.perf_counter() - started) / len(utterances)
        times = []
        for step in range(args.steps + 1):
            torch.manual_seed(step)
            started = time.perf_counter()
            embeds, labels = lora.example(
                peft_model.base_model.model, processor, training_set, utterances[0],
                utterances[1], settings.depth_share,
            )  # fmt: skip
            peft_model.train()
            out = peft_model(inputs_embeds=embeds, labels=labels)
            out.loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if step:  # the first is a warm-up
                times.append(time.perf_counter() - started)
            print(f"example {step}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
        per_example = float(np.median(times))
        # 10 minutes of 3-15 s utterances (8 s on average): 75, of which 10 % held out
        utterances_10min = round(600 / 8)
        train_count = utterances_10min - max(1, round(utterances_10min * 0.1))
        steps = lora.steps_for(train_count, settings.accumulation)
        examples = steps * settings.accumulation
        report = {
            "date": datetime.date.today().isoformat(),
            "machine": platform.processor() or platform.machine(),
            "cpu": _cpu_name(),
            "threads": torch.get_num_threads(),
            "load_before": load,
            "checkpoint": checkpoint_name(args),
            "device": str(peft_model.base_model.model.device),
            "dtype": str(peft_model.base_model.model.dtype),
            "lora_rank": settings.rank,
            "trainable_parameters": trainable,
            "target_seconds": args.seconds,
            "load_seconds": round(load_seconds, 1),
            "memory_after_load_gib": round(loaded_gib, 2),
            "codes_seconds_per_utterance": round(codes_seconds, 2),
            "seconds_per_example": round(per_example, 2),
            "examples_timed": len(times),
            "peak_memory_gib": round(peak_gib(), 2),
            "ten_minutes": {
                "utterances": utterances_10min,
                "training_utterances": train_count,
                "steps": steps,
                "examples": examples,
                "hours": round(examples * per_example / 3600, 2),
            },
            "load_after": Path("/proc/loadavg").read_text().split()[:3],
        }
    print(report)
    write_report(args.json, report)
    return 0


def _cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return ""
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return ""


if __name__ == "__main__":
    raise SystemExit(main())
