"""One real API server for the session: ``python -m desktop_app serve`` in a child process on the
loopback, over the tiny checkpoint, with an API key, a CORS origin and small limits, and a
library holding the voice "Ada"."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest

KEY = "test-key-5b1f0c"
ORIGIN = "http://localhost:5173"


@dataclass(frozen=True)
class Server:
    url: str
    key: str
    home: Path
    stderr: Path
    pid: int
    model: Path

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def library(self) -> object:
        from desktop_app.library.store import Library

        return Library(self.home / "data" / "library")


def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path, seconds: float) -> None:
    """Until the server at ``url`` says it is healthy (fails the test if it dies or takes long)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).json()["status"] == "healthy":
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the server did not start: {log.read_text()[-3000:]}")
        time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    from desktop_app.inference.random_checkpoint import CheckpointShape, build_random_checkpoint
    from desktop_app.library.store import Library
    from tests.support.signals import voiced

    # 32 codebooks as in CSM-1B (tiny widths): a frame takes some milliseconds, so a long take
    # is still running when a test looks at it
    model = build_random_checkpoint(
        tmp_path_factory.mktemp("api-csm"), CheckpointShape(num_codebooks=32)
    )
    home = tmp_path_factory.mktemp("api-home")
    with Library(home / "data" / "library") as library:
        library.voices.add("Ada", [(voiced(3.0, 24_000), "I am Ada.", "imported")])
    port = free_port()
    key_file = home / "key.txt"
    key_file.write_text(KEY)
    env = {**os.environ, "CSM_STUDIO_HOME": str(home), "HF_HUB_CACHE": str(home / "hf"),
           "CSM_STUDIO_LIBRARY_WAIT": "2"}  # fmt: skip
    stderr = home / "server.stderr"
    command = [
        sys.executable,
        "-m",
        "desktop_app",
        "serve",
        "--model",
        str(model),
        "--port",
        str(port),
        "--api-key-file",
        str(key_file),
        "--allow-origin",
        ORIGIN,
        "--max-queue",
        "2",
        "--max-upload-mb",
        "1",
        "--time-limit",
        "120",
        "--max-connections",
        "16",
        "--header-timeout",
        "2",
        "--body-timeout",
        "4",
    ]
    with stderr.open("wb") as err:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=err)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, process, stderr, 90)
    yield Server(url, KEY, home, stderr, process.pid, model)
    process.terminate()
    process.wait(timeout=30)
