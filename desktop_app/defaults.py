"""The app's constants that several layers read: model, engine, audio format, sampling defaults.

Dependency-free on purpose: the settings, the inference package, the command line and the window
all import it, and none of them must pull another in to learn a default.
"""

from __future__ import annotations

MODEL_ID = "sesame/csm-1b"
"""The checkpoint used when none is named (a hub id; gated: needs a token once)."""

ENGINE = "fast"
"""The engine used when none is named ("fast" or "transformers")."""

DEVICE = "auto"
"""The compute device used when none is named."""

DEVICES = ("auto", "cpu", "cuda", "mps")
"""The devices one can name: auto prefers CUDA, then Apple's MPS, then the CPU."""

SAMPLE_RATE = 24_000
"""CSM's audio: 24 kHz mono float32, in and out."""

FRAME_RATE = 12.5
"""Mimi frames per second of audio (one backbone step each)."""

TEMPERATURE = 0.9
TOP_K = 50
TOP_P = 1.0
MAX_SECONDS = 10.0
"""Sampling defaults people expect from CSM-1B (both levels), and the length cap of one take."""
