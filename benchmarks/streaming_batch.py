"""Time to first audio, and a 5-sentence text batched against its sentences one by one.

One checkpoint, loaded once; everything below runs side by side in one process:

- time to first audio from the call (voice prefill included): the fast engine streaming (cold
  voice prompt, then reused), and the transformers reference, which hands the audio over only
  at the end;
- a 5-sentence text: generated as one batch (the long-text path), each sentence one after
  another on the fast engine, and the longest sentence alone.

    PYTHONPATH=. python benchmarks/streaming_batch.py --random-small --json \
        benchmarks/results/cpu-small-streaming-batch.json

With random weights no end frame comes, so every sentence runs to ``--seconds`` (the cap per
chunk); the batch rows are then equally long, the hardest case for "longest alone".
"""

from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
import time
from typing import Any

import torch

from benchmarks.decode import (
    TRANSCRIPT,
    add_checkpoint_arguments,
    checkpoint_folder,
    checkpoint_name,
    speech_like,
    write_report,
)
from desktop_app.inference import GenerationRequest, ReferenceClip
from desktop_app.inference.fast_engine import FastEngine
from desktop_app.inference.long_text import generate_long, speak

SENTENCES = [
    "The morning train was late again, so I walked along the river.",
    "Could you bring the blue notebook from the kitchen table?",
    "Honestly, I did not expect the concert to be that good.",
    "We counted forty-two steps to the top, then sat down and shared an orange.",
    "If it rains tomorrow, we will stay in and finally finish that puzzle.",
]


def sync(cuda: bool) -> None:
    if cuda:
        torch.cuda.synchronize()


def first_audio(engine: Any, request: GenerationRequest, cuda: bool) -> float:
    """Seconds from the call to the first piece of audio handed over."""
    times: list[float] = []
    sync(cuda)
    started = time.perf_counter()
    engine.generate(request, on_audio=lambda piece: times.append(time.perf_counter()))
    return times[0] - started


def first_audio_long(engine: Any, request: GenerationRequest, cuda: bool) -> float:
    """Seconds from the call to the first audio of a long text (the batched path)."""
    times: list[float] = []
    sync(cuda)
    started = time.perf_counter()
    speak(engine, request, on_audio=lambda piece: times.append(time.perf_counter()))
    return times[0] - started


def timed(function: Any, cuda: bool) -> float:
    sync(cuda)
    started = time.perf_counter()
    function()
    sync(cuda)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_checkpoint_arguments(parser)
    parser.add_argument("--seconds", type=float, default=4.0, help="cap per sentence")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fast = FastEngine(checkpoint_folder(args, tmp), args.device)
        cuda = fast.device.startswith("cuda")
        clip = ReferenceClip(speech_like(args.prompt_seconds), TRANSCRIPT)

        def req(text: str, seed: int = 7) -> GenerationRequest:
            return GenerationRequest(
                text, (clip,), temperature=0.9, top_k=50, seed=seed, max_seconds=args.seconds
            )

        fast.generate(req("Warm up.", 1))  # lazy initialisation, graph capture
        fast.reference.generate(GenerationRequest("Warm up.", (clip,), max_seconds=0.4))
        fast._prompt_key = None
        ttfa = {
            "fast, cold voice prompt": first_audio(fast, req(SENTENCES[0]), cuda),
            "fast, voice prompt reused": first_audio(fast, req(SENTENCES[1]), cuda),
            "transformers (audio at the end)": first_audio(fast.reference, req(SENTENCES[0]), cuda),
        }
        text = " ".join(SENTENCES)
        longest = max(SENTENCES, key=len)
        ttfa["fast, 5-sentence text (first chunk streams from the batch)"] = first_audio_long(
            fast, req(text), cuda
        )
        batch = {
            "batched (one pass)": timed(lambda: generate_long(fast, req(text)), cuda),
            "one after another": timed(
                lambda: [fast.generate(req(s, 7 + i)) for i, s in enumerate(SENTENCES)], cuda
            ),
            "longest sentence alone": timed(lambda: fast.generate(req(longest)), cuda),
        }
    report = {
        "command": " ".join(sys.argv),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "device": fast.device_name,
        "dtype": fast.dtype,
        "torch": torch.__version__,
        "checkpoint": checkpoint_name(args),
        "prompt_seconds": args.prompt_seconds,
        "seconds_per_sentence": args.seconds,
        "time_to_first_audio_s": ttfa,
        "five_sentences_s": batch,
        "batched_over_longest": batch["batched (one pass)"] / batch["longest sentence alone"],
        "batched_over_sequential": batch["batched (one pass)"] / batch["one after another"],
    }
    print(
        f"{report['checkpoint']} on {report['device']} ({report['dtype']}), "
        f"{args.prompt_seconds:g} s voice prompt"
    )
    print("time to first audio | ms")
    print("--- | ---")
    for name, seconds in ttfa.items():
        print(f"{name} | {seconds * 1000:.0f}")
    print(f"\n5 sentences, {args.seconds:g} s each | s")
    print("--- | ---")
    for name, seconds in batch.items():
        print(f"{name} | {seconds:.2f}")
    print(
        f"batched / longest alone: {report['batched_over_longest']:.2f}x; "
        f"batched / one after another: {report['batched_over_sequential']:.2f}x"
    )
    write_report(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
