"""Speech recognition with a Whisper checkpoint through transformers, offline.

The recogniser takes 16 kHz mono float32 audio of at most :data:`MAX_WINDOW_SECONDS` and returns
its text and word times; longer audio is cut into windows at pauses by the caller (see
``desktop_app.checks.listen``), which also resamples. It loads from a folder only (the hub id is
resolved from the local cache by :func:`~desktop_app.inference.model_store.resolve_model`), onto
the same device as the speech model.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from desktop_app.errors import RequestError
from desktop_app.inference import compute_device
from desktop_app.inference.model_store import ASR, load_checked
from desktop_app.inference.transcript import Transcript, Word

log = logging.getLogger(__name__)

ASR_RATE = 16_000
"""Whisper's audio: 16 kHz mono."""

MAX_WINDOW_SECONDS = 30.0
"""Whisper hears 30 s at a time."""

MAX_NEW_TOKENS = 200
"""Tokens one scored window may produce (30 s of fast speech is about 120)."""


@dataclass(frozen=True)
class ScoredText:
    """A window's text and Whisper's mean log-probability of its tokens (0 is certain)."""

    text: str
    mean_logprob: float


def _window(audio: np.ndarray) -> np.ndarray:
    """``audio`` as float32, checked to fit one recognition window.

    Raises:
        RequestError: it is longer than Whisper hears at once.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.size > MAX_WINDOW_SECONDS * ASR_RATE + 1:
        raise RequestError(
            f"a recognition window is at most {MAX_WINDOW_SECONDS:g} s; cut longer audio first"
        )
    return audio


class SpeechRecognizer:
    """A loaded Whisper checkpoint (model, processor and transformers' ASR pipeline)."""

    def __init__(self, model_dir: Path, device: str = "auto") -> None:
        """Load the checkpoint in ``model_dir`` (offline) onto the chosen device.

        Raises:
            ModelNotFoundError: the folder is incomplete or does not load.
        """
        from transformers import (
            AutomaticSpeechRecognitionPipeline,
            AutoProcessor,
            WhisperForConditionalGeneration,
        )

        self.model_dir = model_dir
        torch_device = compute_device.pick_device(device)
        dtype = torch.float16 if torch_device.type == "cuda" else torch.float32
        started = time.perf_counter()

        def load() -> tuple[Any, Any]:
            processor = AutoProcessor.from_pretrained(model_dir, local_files_only=True)
            model: Any = WhisperForConditionalGeneration.from_pretrained(
                model_dir, local_files_only=True, use_safetensors=True, dtype=dtype
            )
            return processor, model.to(torch_device).eval()

        self.processor, self.model = load_checked(model_dir, ASR, load)
        self._pipeline = AutomaticSpeechRecognitionPipeline(
            model=self.model,
            tokenizer=self.processor.tokenizer,
            feature_extractor=self.processor.feature_extractor,
            device=torch_device,
            dtype=dtype,
        )
        self.device = torch_device.type
        self.load_seconds = time.perf_counter() - started
        log.info("loaded %s on %s in %.2f s", model_dir, self.device, self.load_seconds)

    @property
    def name(self) -> str:
        """The hub id of a cached checkpoint ("openai/whisper-small"), else its folder name."""
        folder = self.model_dir
        if folder.parent.name == "snapshots":
            return folder.parents[1].name.removeprefix("models--").replace("--", "/")
        return folder.name

    def transcribe(
        self, audio: np.ndarray, offset: float = 0.0, language: str | None = None
    ) -> Transcript:
        """The text and word times of one window of 16 kHz speech (at most 30 s).

        ``offset`` is added to every word time (the window's start in a longer file). Without
        ``language`` Whisper detects it.

        Raises:
            RequestError: the window is longer than Whisper hears at once.
        """
        audio = _window(audio)
        if audio.size == 0:
            return Transcript("")
        generate: dict[str, Any] = {"task": "transcribe"}
        if language:
            generate["language"] = language
        with torch.inference_mode():
            out: Any = self._pipeline(
                {"raw": audio, "sampling_rate": ASR_RATE},
                return_timestamps="word",
                generate_kwargs=generate,
            )
        chunks = out.get("chunks") or []
        words = tuple(
            Word(
                str(c["text"]).strip(),
                offset + float(c["timestamp"][0] or 0.0),
                offset + float(c["timestamp"][1] or c["timestamp"][0] or 0.0),
            )
            for c in chunks
            if str(c.get("text", "")).strip()
        )
        return Transcript(str(out.get("text", "")).strip(), words, language or "")

    def transcribe_scored(self, audio: np.ndarray, language: str | None = None) -> ScoredText:
        """The text of one window of 16 kHz speech (no word times) and how sure Whisper was of
        it: the mean log-probability of its tokens, Whisper's own ``avg_logprob`` (its reference
        decoder calls a window below -1.0 a failed one).

        Raises:
            RequestError: the window is longer than Whisper hears at once.
        """
        audio = _window(audio)
        if audio.size == 0:
            return ScoredText("", 0.0)
        features = self.processor.feature_extractor(
            audio, sampling_rate=ASR_RATE, return_tensors="pt"
        ).input_features.to(self.model.device, self.model.dtype)
        generate: dict[str, Any] = {"task": "transcribe", "max_new_tokens": MAX_NEW_TOKENS}
        if language:
            generate["language"] = language
        with torch.inference_mode():
            out = self.model.generate(
                features, return_dict_in_generate=True, output_scores=True, **generate
            )
            scores = self.model.compute_transition_scores(
                out.sequences, out.scores, normalize_logits=True
            )[0]
        scores = scores[torch.isfinite(scores)]
        text = self.processor.tokenizer.decode(out.sequences[0], skip_special_tokens=True)
        return ScoredText(str(text).strip(), float(scores.mean()) if scores.numel() else 0.0)

    def normalize(self, text: str) -> str:
        """Whisper's English text normalisation (case, punctuation, numbers, spelling)."""
        return str(self.processor.tokenizer.normalize(text))
