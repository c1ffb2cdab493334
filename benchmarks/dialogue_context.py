"""A long dialogue: the time from a line's call to its first frame, line by line, as the
conversation (the context of each line) grows; and the prompt positions each line carries.

    PYTHONPATH=. python benchmarks/dialogue_context.py --random-small --lines 20 \
        --json benchmarks/results/cpu-small-dialogue-context.json

Today every line prefills its whole prompt (the references and every past line that fits), so
the first frame comes later as the conversation grows; keeping the conversation's cache and
prefilling only what is new is what this benchmark is for (issue 16, part 3).
"""

from __future__ import annotations

import argparse
import datetime
import platform
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
from desktop_app.conversation.script import parse_script
from desktop_app.conversation.speak import speak_coherent, speak_script
from desktop_app.inference import GenerationRequest, ReferenceClip
from desktop_app.inference.fast_engine import FastEngine
from desktop_app.inference.long_text import speak
from desktop_app.inference.self_test import TRANSCRIPT, speech_like


class FirstFrame:
    """A progress callback that notes when each line's first frame arrives."""

    def __init__(self) -> None:
        self.started = 0.0
        self.first: float | None = None

    def __call__(self, frames: int, seconds: float) -> None:
        if self.first is None:
            self.first = time.perf_counter() - self.started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_checkpoint_arguments(parser)
    parser.add_argument("--lines", type=int, default=20)
    parser.add_argument("--line-seconds", type=float, default=2.0)
    args = parser.parse_args()
    device = "cuda" if args.device in ("auto", "cuda") and torch.cuda.is_available() else "cpu"
    script = parse_script(
        "\n".join(
            f"{'Ada' if i % 2 == 0 else 'Ben'}: This is line {i + 1} of a long conversation."
            for i in range(args.lines)
        )
    )
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        engine = FastEngine(checkpoint_folder(args, tmp), device)
        half = args.prompt_seconds / 2
        voices = {
            "Ada": [ReferenceClip(speech_like(half), TRANSCRIPT)],
            "Ben": [ReferenceClip(0.8 * speech_like(half), TRANSCRIPT)],
        }
        settings = GenerationRequest("-", seed=1, max_seconds=args.line_seconds)
        clock = FirstFrame()

        def started(line: Any) -> None:
            rows.append(
                {
                    "line": line.index + 1,
                    "first_frame_ms": round((clock.first or 0.0) * 1000, 1),
                    "prompt_positions": line.context.positions,
                    "past_lines": len(line.context.history),
                    "dropped": line.context.dropped,
                }
            )
            clock.first = None
            clock.started = time.perf_counter()

        clock.started = time.perf_counter()
        speak_script(engine, script, voices, settings, on_line=started, on_progress=clock)
        # one voice, five sentences: the batched way against the coherent one
        text = " ".join(
            f"Sentence number {i + 1} of a longer text, said in one voice from start to end."
            for i in range(5)
        )
        long_request = GenerationRequest(
            text, references=tuple(voices["Ada"]), seed=1, max_seconds=args.line_seconds
        )
        times = {}
        for way, say in (
            ("batched", lambda: speak(engine, long_request)),
            ("coherent", lambda: speak_coherent(engine, long_request)),
        ):
            t = time.perf_counter()
            say()
            times[way] = round(time.perf_counter() - t, 2)
    report = {
        "benchmark": "dialogue_context",
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "device": device,
        "checkpoint": checkpoint_name(args),
        "line_seconds": args.line_seconds,
        "prompt_seconds": args.prompt_seconds,
        "lines": rows,
        "long_text_5_sentences_s": times,
        "coherent_over_batched": round(times["coherent"] / times["batched"], 2),
        "line_20_over_line_2": (
            round(rows[19]["first_frame_ms"] / rows[1]["first_frame_ms"], 2)
            if len(rows) >= 20
            else None
        ),
    }
    for row in rows:
        print("  ".join(f"{k} {v}" for k, v in row.items()))
    print(f"line 20 / line 2 first frame: {report['line_20_over_line_2']}")
    print(f"5 sentences: {times} (coherent / batched {report['coherent_over_batched']})")
    write_report(args.json, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
