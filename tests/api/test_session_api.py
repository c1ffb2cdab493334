"""An API take is made the way every face makes one (``desktop_app.session``): checked, or at
least trimmed, best of N, kept with its check and its source: tested over real HTTP against the
CLI's take of the same request."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx2 as httpx
import numpy as np
import soundfile as sf

from tests.api.conftest import Server

BODY = {"model": "csm-1b", "voice": "Ada", "input": "Say it the same way.",
        "response_format": "wav", "temperature": 0, "seed": 11, "max_seconds": 1.2}  # fmt: skip


def cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CSM_STUDIO_HOME": str(server.home),
        "HF_HUB_CACHE": str(server.home / "hf"),
    }
    return subprocess.run(
        [sys.executable, "-m", "desktop_app", *args],
        capture_output=True, text=True, timeout=180, env=env,
    )  # fmt: skip


def test_an_api_take_is_checked_and_trimmed_like_the_clis_take_of_the_same_request(
    server: Server, tmp_path: Path
) -> None:
    reply = httpx.post(
        f"{server.url}/v1/audio/speech", json=BODY, headers=server.headers, timeout=120
    )
    assert reply.status_code == 200, reply.text
    api_audio, _ = sf.read(io.BytesIO(reply.content), dtype="float32")
    out = tmp_path / "cli.wav"
    done = cli(server, "clone", "--model", str(server.model), "--voice", "Ada",
               "--text", BODY["input"], "--out", str(out), "--temperature", "0",
               "--seed", "11", "--max-seconds", "1.2")  # fmt: skip
    assert done.returncode == 0, done.stderr
    cli_audio, _ = sf.read(out, dtype="float32")
    assert api_audio.shape == cli_audio.shape  # the same take, trimmed the same way
    np.testing.assert_allclose(api_audio, cli_audio, atol=2 / 32768)
    listed = json.loads(cli(server, "history", "list", "--json").stdout)
    api_take = next(t for t in listed if t["id"] == int(reply.headers["x-take-id"]))
    cli_take = next(t for t in listed if t["source"] == "cli" and t["text"] == BODY["input"])
    assert api_take["source"] == "api"
    assert reply.headers["x-verdict"] == api_take["verdict"] == cli_take["verdict"] != ""
    for key in ("trimmed_s", "ended", "not_checked"):
        assert api_take["check"][key] == cli_take["check"][key], key


def test_best_of_and_a_trim_only_check_over_http(server: Server) -> None:
    body = {**BODY, "temperature": 0.9, "best_of": 2, "check": "trim", "seed": 40}
    reply = httpx.post(
        f"{server.url}/v1/audio/speech", json=body, headers=server.headers, timeout=120
    )
    assert reply.status_code == 200, reply.text
    assert reply.headers["x-seed"] in ("40", "41")  # one of the two candidates
    listed = json.loads(cli(server, "history", "list", "--json").stdout)
    take = next(t for t in listed if t["id"] == int(reply.headers["x-take-id"]))
    assert take["verdict"] == reply.headers["x-verdict"]
    assert any(part.startswith("words") for part in take["check"]["not_checked"])
    for bad, code in (({"best_of": 9}, 400), ({"best_of": 1.5}, 422), ({"check": "none"}, 400)):
        refused = httpx.post(
            f"{server.url}/v1/audio/speech", json={**BODY, **bad}, headers=server.headers
        )
        assert refused.status_code == code, bad


def test_a_streamed_take_streams_as_made_and_is_kept_checked(server: Server) -> None:
    body = {**BODY, "response_format": "pcm", "input": "Streamed, then checked.", "seed": 3}
    with httpx.stream(
        "POST", f"{server.url}/v1/audio/speech", json=body, headers=server.headers, timeout=120
    ) as reply:
        assert reply.status_code == 200 and reply.headers.get("transfer-encoding") == "chunked"
        streamed = b"".join(reply.iter_bytes())
    assert len(streamed) > 0
    listed = json.loads(cli(server, "history", "list", "--json").stdout)
    take = next(t for t in listed if t["text"] == body["input"])
    assert take["source"] == "api" and take["verdict"] != "" and "trimmed_s" in take["check"]
