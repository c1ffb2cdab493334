"""A private PulseAudio server with a null sink and a virtual microphone, for real audio I/O tests.

``vsink`` is a null output; ``vmic`` is a microphone that hears whatever plays into ``vsink``.
The server lives in a private runtime folder, so tests never touch the machine's real devices.
Must run before sounddevice is imported (PortAudio reads the server address when it starts).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

STARTED: list[Path] = []


def _pactl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["pactl", *args], capture_output=True, text=True, timeout=10, check=False)


def ensure_pulseaudio() -> str | None:
    """Start the private server if needed; returns None when ready, else why not."""
    if shutil.which("pulseaudio") is None or shutil.which("pactl") is None:
        return "pulseaudio is not installed (scripts/setup.sh test installs it)"
    if os.environ.get("CSM_TEST_PULSE") and _pactl("info").returncode == 0:
        return None
    runtime = Path(tempfile.mkdtemp(prefix="csm-pulse-"))
    runtime.chmod(0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    os.environ["PULSE_SERVER"] = f"unix:{runtime}/pulse/native"
    os.environ["CSM_TEST_PULSE"] = "1"
    proc = subprocess.run(
        [
            "pulseaudio",
            "-D",
            "-n",
            "--exit-idle-time=-1",
            "--disallow-exit",
            "--system=false",
            "--disable-shm",
            "-L",
            "module-native-protocol-unix",
            "-L",
            "module-null-sink sink_name=vsink rate=48000",
            "-L",
            "module-virtual-source source_name=vmic master=vsink.monitor",
        ],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    for _ in range(50):
        if _pactl("info").returncode == 0:
            break
        time.sleep(0.1)
    else:
        return f"pulseaudio did not start: {proc.stderr.strip()[-300:]}"
    _pactl("set-default-sink", "vsink")
    _pactl("set-default-source", "vmic")
    STARTED.append(runtime)
    return None


def stop_pulseaudio() -> None:
    """Stop the server this process started."""
    if STARTED:
        subprocess.run(["pulseaudio", "--kill"], capture_output=True, timeout=10, check=False)
        for runtime in STARTED:
            shutil.rmtree(runtime, ignore_errors=True)
        STARTED.clear()
