"""The local API against the engine called directly, side by side in one process: time to the
first audio and to the whole take, for a streamed response (pcm) and a whole one (wav); then
latency (p50/p95) and throughput with 1 and with 4 clients at once.

    PYTHONPATH=. python benchmarks/api_first_audio.py --random-small --seconds 4 \
        --json benchmarks/results/cpu-small-api.json

The server is the real one (uvicorn + Starlette on the loopback, the API's queue and worker);
the client is httpx. The ratios say what HTTP, the queue and encoding add to a take.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx2 as httpx
import torch

from benchmarks.decode import (
    add_checkpoint_arguments,
    checkpoint_folder,
    checkpoint_name,
    write_report,
)

TEXT = "The morning train was late again, so I walked along the river."


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_checkpoint_arguments(parser)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each take")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = "cuda" if args.device in ("auto", "cuda") and torch.cuda.is_available() else "cpu"
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CSM_STUDIO_HOME"] = str(Path(tmp) / "home")
        from desktop_app.api.app import ServeOptions, build_app
        from desktop_app.api.server import BackgroundServer, server_config
        from desktop_app.api.service import LoadedModels, SpeechService
        from desktop_app.inference import GenerationRequest, ReferenceClip
        from desktop_app.inference.fast_engine import FastEngine
        from desktop_app.inference.long_text import speak
        from desktop_app.library.store import Library
        from desktop_app.session.jobs import JobQueue
        from tests.support.signals import voiced

        folder = checkpoint_folder(args, tmp)
        engine = FastEngine(folder, device)
        library_dir = Path(tmp) / "library"
        with Library(library_dir) as library:
            clip = voiced(args.prompt_seconds, 24_000)
            library.voices.add("Ada", [(clip, "I am Ada, and this is my voice.", "imported")])
            references = tuple(
                ReferenceClip(c.audio(), c.transcript) for c in library.voices.get("Ada").clips
            )
        models = LoadedModels(engine, str(folder), folder)
        service = SpeechService(JobQueue(4), lambda: models, library_dir)
        options = ServeOptions(port=0, api_key="benchmark-key")
        server = BackgroundServer(server_config(build_app(service, options), options))
        server.start()
        url = f"{server.address}/v1/audio/speech"
        KEY = {"Authorization": "Bearer benchmark-key"}  # noqa: N806
        body = {"model": "csm-1b", "voice": "Ada", "input": TEXT, "max_seconds": args.seconds,
                "seed": 1, "temperature": 0.9}  # fmt: skip
        request = GenerationRequest(TEXT, references=references, max_seconds=args.seconds, seed=1)

        def direct() -> tuple[float, float]:
            first: list[float] = []
            started = time.perf_counter()
            speak(engine, request, None, None,
                  lambda _: first or first.append(time.perf_counter() - started))  # fmt: skip
            return first[0], time.perf_counter() - started

        def streamed() -> tuple[float, float]:
            started = time.perf_counter()
            first = 0.0
            with httpx.stream(
                "POST", url, json={**body, "response_format": "pcm"}, headers=KEY, timeout=600
            ) as r:
                for _ in r.iter_bytes():
                    first = first or time.perf_counter() - started
            return first, time.perf_counter() - started

        def whole() -> tuple[float, float]:
            started = time.perf_counter()
            reply = httpx.post(
                url, json={**body, "response_format": "wav"}, headers=KEY, timeout=600
            )
            assert reply.status_code == 200, reply.text
            elapsed = time.perf_counter() - started
            return elapsed, elapsed

        direct(), streamed(), whole()  # warm up
        runs = {name: [f() for _ in range(args.repeats)] for name, f in
                (("direct", direct), ("api_streamed", streamed), ("api_whole", whole))}  # fmt: skip
        concurrency = {}
        for clients in (1, 4):
            total = clients * args.repeats
            started = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(clients) as pool:
                latencies = sorted(r[1] for r in pool.map(lambda _: whole(), range(total)))
            wall = time.perf_counter() - started
            p95 = latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]
            concurrency[clients] = {
                "requests": total,
                "p50_s": round(statistics.median(latencies), 3),
                "p95_s": round(p95, 3),
                "takes_per_s": round(total / wall, 3),
                "audio_s_per_s": round(total * args.seconds / wall, 3),
            }
        server.stop()
    median = {name: (statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs))
              for name, rs in runs.items()}  # fmt: skip
    report = {
        "benchmark": "api_first_audio",
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "checkpoint": checkpoint_name(args),
        "take_seconds": args.seconds,
        "direct_first_audio_s": round(median["direct"][0], 3),
        "direct_whole_s": round(median["direct"][1], 3),
        "api_streamed_first_byte_s": round(median["api_streamed"][0], 3),
        "api_streamed_whole_s": round(median["api_streamed"][1], 3),
        "api_whole_s": round(median["api_whole"][1], 3),
        "first_audio_ratio": round(median["api_streamed"][0] / median["direct"][0], 2),
        "whole_ratio": round(median["api_whole"][1] / median["direct"][1], 2),
        "concurrency": concurrency,
    }
    print(f"{'':24}{'first audio':>12}{'whole take':>12}")
    for name, (first, end) in median.items():
        print(f"{name:24}{first:12.3f}{end:12.3f}")
    print(f"first audio over the API / direct: {report['first_audio_ratio']}x; "
          f"a whole wav / direct: {report['whole_ratio']}x")  # fmt: skip
    for clients, c in concurrency.items():
        print(
            f"{clients} client(s): p50 {c['p50_s']:.2f} s, p95 {c['p95_s']:.2f} s, "
            f"{c['takes_per_s']:.2f} takes/s ({c['audio_s_per_s']:.2f} s of audio per s)"
        )
    write_report(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
