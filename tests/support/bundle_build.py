"""The PyInstaller build of the bundle, started in the background as soon as a test session has
collected a packaging test, so its minutes of mostly one-core work overlap with the rest of the
pass instead of adding to it; the packaging tests wait for it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BUILD_TIMEOUT = 1200.0

_build: list[tuple[subprocess.Popen[bytes], Path]] = []


def start(repo: Path) -> None:
    """Start the build once (output to a private temporary folder)."""
    if _build:
        return
    out = Path(tempfile.mkdtemp(prefix="csm-bundle-"))
    log = (out / "build.log").open("wb")
    with log:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "PyInstaller",
                "--noconfirm",
                "--log-level",
                "WARN",
                "--distpath",
                str(out / "dist"),
                "--workpath",
                str(out / "build"),
                "build.spec",
            ],
            cwd=repo,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    _build.append((proc, out))


def finished(repo: Path) -> Path:
    """The built ``dist/csm-studio`` folder, once the build has ended (started now if it was not).

    Raises:
        RuntimeError: the build failed (its last output is in the message).
    """
    start(repo)
    proc, out = _build[0]
    code = proc.wait(timeout=BUILD_TIMEOUT)
    if code != 0:
        tail = (out / "build.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"PyInstaller exited with {code}:\n{tail}")
    return out / "dist" / "csm-studio"


def stop() -> None:
    """End a build still running and remove its folder (the end of the session)."""
    for proc, out in _build:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        shutil.rmtree(out, ignore_errors=True)
    _build.clear()
