"""Decompression bombs against the real local API: an hour of FLAC silence (~90 KB) and ten
minutes of Opus (~140 KB) sent to ``/clone-voice`` of a ``serve`` child process on the tiny
random checkpoint; the answer, its time and the server's resident memory before and after.

    PYTHONPATH=. .venv/bin/python benchmarks/api_hostile_uploads.py [--json FILE]

Before the "Lock the doors" fix the same FLAC took the server from 0.55 to 2.57 GB and 6 s of
its worker; now the declared length is refused before anything is decoded.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2 as httpx

from desktop_app.inference.random_checkpoint import build_random_checkpoint
from tests.api.conftest import free_port
from tests.support.signals import encoded_silence


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return int(next(line for line in status if line.startswith("VmRSS")).split()[1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="csm-bombs-"))
    model = build_random_checkpoint(home / "model")
    (home / "key").write_text("bench-key")
    port = free_port()
    env = {**os.environ, "CSM_STUDIO_HOME": str(home), "HF_HUB_CACHE": str(home / "hf")}
    command = [sys.executable, "-m", "desktop_app", "serve", "--model", str(model),
               "--port", str(port), "--api-key-file", str(home / "key")]  # fmt: skip
    server = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).json()["status"] == "healthy":
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        rows = []
        for name, data in (
            ("FLAC, 60 min of silence at 8 kHz", encoded_silence("FLAC", "PCM_16", 60, 8_000)),
            ("Ogg Opus, 10 min of silence at 48 kHz", encoded_silence("OGG", "OPUS", 10, 48_000)),
        ):
            before = rss_mb(server.pid)
            started = time.perf_counter()
            reply = httpx.post(
                f"{url}/clone-voice",
                headers={"Authorization": "Bearer bench-key"},
                data={"text": "Hi.", "transcript": "Hello."},
                files={"audio": ("clip", data, "audio/flac")},
                timeout=120,
            )
            rows.append({
                "upload": name,
                "bytes": len(data),
                "status": reply.status_code,
                "answered_ms": round((time.perf_counter() - started) * 1000, 1),
                "rss_before_mb": round(before, 1),
                "rss_after_mb": round(rss_mb(server.pid), 1),
                "message": reply.json()["error"]["message"],
            })  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)
    for row in rows:
        print(f"{row['upload']}: {row['bytes'] / 1e3:.0f} KB -> {row['status']} in "
              f"{row['answered_ms']:.0f} ms, server RSS {row['rss_before_mb']:.0f} -> "
              f"{row['rss_after_mb']:.0f} MB")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"uptime": os.getloadavg(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
