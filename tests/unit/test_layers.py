"""The inference package works where only torch, transformers and numpy are installed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import REPO

BLOCKED = ["soundfile", "sounddevice", "soxr", "av", "platformdirs", "PySide6", "shiboken6"]


def test_inference_runs_without_audio_qt_or_platform_packages(tiny_model_dir: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys

        for name in {BLOCKED!r}:
            sys.modules[name] = None  # import fails and find_spec says "not installed"
        import numpy as np
        from pathlib import Path
        from desktop_app.inference import GenerationRequest, ReferenceClip, load_engine

        from desktop_app.inference.long_text import speak

        engine = load_engine("transformers", Path({str(tiny_model_dir)!r}), "cpu")
        noise = np.random.default_rng(0).standard_normal(48000).astype("float32") * 0.1
        clip = ReferenceClip(noise, "Hello there.")
        result = engine.generate(GenerationRequest("Hi.", (clip,), seed=1, max_seconds=0.4))
        # the fast engine, streaming, and a long text in one batch: the same few packages
        fast = load_engine("fast", Path({str(tiny_model_dir)!r}), "cpu")
        pieces = []
        text = "A first sentence to say here. And a second sentence to say after it."
        long = speak(fast, GenerationRequest(text, (clip,), seed=1, max_seconds=0.4),
                     on_audio=pieces.append)
        assert len(long.parts) == 2 and len(pieces) > 1
        blocked = {BLOCKED!r}
        leaked = sorted(m for m, mod in sys.modules.items()
                        if mod is not None and m.split(".")[0] in blocked)
        print(result.frames, leaked)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "5 []"
