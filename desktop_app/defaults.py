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

CONTEXT_POSITIONS = 2048
"""CSM-1B's context: text tokens plus one position per audio frame, references included."""

TEMPERATURE = 0.9
TOP_K = 50
TOP_P = 1.0
MAX_SECONDS = 10.0
"""Sampling defaults people expect from CSM-1B (both levels), and the length cap of one take."""

ASR_MODEL_ID = "openai/whisper-large-v3-turbo"
"""The speech-recognition checkpoint on a GPU (see the README's listen-back section for why)."""

ASR_MODEL_ID_CPU = "openai/whisper-small"
"""The speech-recognition checkpoint on the CPU, where the turbo model is slow to check takes."""

SPEAKER_MODEL_ID = "microsoft/wavlm-base-plus-sv"
"""The speaker-verification checkpoint (WavLM x-vectors) that scores how alike two voices are."""

DOWNLOAD_MB = {
    MODEL_ID: 6_200,
    ASR_MODEL_ID: 1_620,
    ASR_MODEL_ID_CPU: 970,
    SPEAKER_MODEL_ID: 405,
}
"""About how much each default checkpoint downloads, as the hub lists its files (MB)."""

ASR_MODEL_MB = DOWNLOAD_MB[ASR_MODEL_ID_CPU]
SPEAKER_MODEL_MB = DOWNLOAD_MB[SPEAKER_MODEL_ID]


def asr_model_for(device: str) -> str:
    """The default speech-recognition checkpoint for a device ("cuda" gets the large one)."""
    return ASR_MODEL_ID if device.startswith("cuda") else ASR_MODEL_ID_CPU


MAX_CLIP_SECONDS = 300.0
"""The longest audio read as a voice's clip or an upload (decoded length; 5 minutes): a reference
needs 6-30 s, and the cap keeps a small compressed file from decoding to hours in memory."""

MAX_RECORDING_SECONDS = 3 * 3600.0
"""The longest audio read where a feature needs a long recording (transcribing a session, a
conversation's own mix): three hours."""

WEIGHTS = ("auto", "none", "int8", "int4")
"""The weights a face may ask for: "auto" (int8 on the CPU, the float weights on a GPU:
``inference.weights_for``), float32 ("none"), or packed 8- or 4-bit weights on the CPU."""


def quantize_setting(choice: str) -> str:
    """A face's weight choice (:data:`WEIGHTS`) as the engines take it ("none" is "")."""
    return "" if choice == "none" else choice
