"""Real synthetic speech from espeak-ng (installed by scripts/setup.sh test)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

from desktop_app.audio import dsp


def espeak(path: Path, text: str, voice: str = "en") -> Path:
    """``text`` spoken by espeak-ng into the WAV file ``path`` (22.05 kHz mono)."""
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True, timeout=30)
    return path


def speech_24k(tmp: Path, text: str, voice: str = "en") -> np.ndarray:
    """``text`` spoken by espeak-ng, as 24 kHz mono float32 samples."""
    data, rate = sf.read(espeak(tmp / f"speech-{abs(hash((text, voice)))}.wav", text, voice))
    return dsp.resample(np.asarray(data, dtype=np.float32), rate, 24_000)
