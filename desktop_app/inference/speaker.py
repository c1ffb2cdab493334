"""How alike two voices sound: speaker-verification embeddings (WavLM x-vectors) and their cosine.

This is how the field reports speaker similarity of cloned speech (next to Whisper's WER). The
encoder takes 16 kHz mono float32 audio; the caller resamples. It loads from a folder only, onto
the same device as the speech model.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from desktop_app.inference import compute_device
from desktop_app.inference.model_store import SPEAKER, load_checked

SPEAKER_RATE = 16_000
WINDOW_SECONDS = 20.0
"""Longer audio is embedded in windows this long whose embeddings are averaged."""
MAX_WINDOWS = 6


class SpeakerEncoder:
    """A loaded WavLMForXVector checkpoint and its feature extractor."""

    def __init__(self, model_dir: Path, device: str = "auto") -> None:
        """Load the checkpoint in ``model_dir`` (offline) onto the chosen device.

        Raises:
            ModelNotFoundError: the folder is incomplete or does not load.
        """
        from transformers import AutoFeatureExtractor, WavLMForXVector

        self.model_dir = model_dir
        torch_device = compute_device.pick_device(device)
        started = time.perf_counter()

        def load() -> tuple[Any, Any]:
            extractor = AutoFeatureExtractor.from_pretrained(model_dir, local_files_only=True)
            model: Any = WavLMForXVector.from_pretrained(model_dir, local_files_only=True)
            return extractor, model.to(torch_device).eval()

        self.extractor, self.model = load_checked(model_dir, SPEAKER, load)
        self._device = torch_device
        self.device = torch_device.type
        self.load_seconds = time.perf_counter() - started

    def embed(self, audio: np.ndarray) -> np.ndarray:
        """A unit-length embedding of the voice in 16 kHz ``audio`` (windows averaged)."""
        audio = np.asarray(audio, dtype=np.float32)
        size = int(WINDOW_SECONDS * SPEAKER_RATE)
        shortest = SPEAKER_RATE // 2  # what is left after the last window, if it is worth it
        windows = [audio[i : i + size] for i in range(0, max(audio.size, 1), size)]
        windows = [w for w in windows if w.size >= shortest] or [audio]
        vectors = [self._embed_one(w) for w in windows[:MAX_WINDOWS]]
        mean = np.mean(vectors, axis=0)
        return (mean / (np.linalg.norm(mean) or 1.0)).astype(np.float32)

    def _embed_one(self, audio: np.ndarray) -> np.ndarray:
        if audio.size < 400:  # the feature encoder needs at least one frame's worth
            audio = np.pad(audio, (0, 400 - audio.size))
        inputs = self.extractor(audio, sampling_rate=SPEAKER_RATE, return_tensors="pt")
        with torch.inference_mode():
            out = self.model(input_values=inputs["input_values"].to(self._device))
        vector = out.embeddings[0].float().cpu().numpy()
        return vector / (np.linalg.norm(vector) or 1.0)

    def embed_clips(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """One embedding for several clips of the same voice (their unit embeddings averaged)."""
        vectors = [self.embed(c) for c in clips]
        mean = np.mean(vectors, axis=0)
        return (mean / (np.linalg.norm(mean) or 1.0)).astype(np.float32)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two embeddings (1 for the same voice, lower the more they differ)."""
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / norm) if norm else 0.0
