"""Qt-free, sounddevice-free inference: needs only torch, transformers and numpy.

Takes and returns 24 kHz mono float32 numpy arrays; file and device work happens around it.
"""

from __future__ import annotations

from pathlib import Path

from desktop_app import defaults
from desktop_app.errors import RequestError
from desktop_app.inference.engine import (
    SAMPLE_RATE,
    BatchEngine,
    Engine,
    GenerationRequest,
    GenerationResult,
    GenerationTimings,
    ReferenceClip,
)

ENGINE_NAMES = ("fast", "transformers")
DEFAULT_ENGINE = defaults.ENGINE


def load_engine(
    name: str, model_dir: Path, device: str = "auto", quantize: str = ""
) -> BatchEngine:
    """Load the engine called ``name`` with the checkpoint in ``model_dir``.

    ``quantize="int8"``: int8 weights for the fast engine on the CPU.

    Raises:
        RequestError: an unknown engine name, or int8 asked of the transformers engine.
    """
    if name == "fast":
        from desktop_app.inference.fast_engine import FastEngine

        return FastEngine(model_dir, device, quantize=quantize)
    if name == "transformers":
        from desktop_app.inference.hf_engine import TransformersEngine

        if quantize:
            raise RequestError(
                f"--quantize {quantize} needs the fast engine; leave --engine out, or the "
                f"quantization"
            )

        return TransformersEngine(model_dir, device)
    raise RequestError(f"unknown engine {name!r}; choose one of {', '.join(ENGINE_NAMES)}")


__all__ = [
    "DEFAULT_ENGINE",
    "ENGINE_NAMES",
    "SAMPLE_RATE",
    "BatchEngine",
    "Engine",
    "GenerationRequest",
    "GenerationResult",
    "GenerationTimings",
    "ReferenceClip",
    "load_engine",
]
