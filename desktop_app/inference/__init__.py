"""Qt-free, sounddevice-free inference: needs only torch, transformers and numpy.

Takes and returns 24 kHz mono float32 numpy arrays; file and device work happens around it.
"""

from __future__ import annotations

from collections.abc import Callable
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


def weights_for(device: str) -> str:
    """The weights "auto" means: int8 where the model runs on the CPU (a quarter of the memory,
    faster: benchmarks/results/cpu-weights.json), the float weights on a GPU."""
    from desktop_app.inference import compute_device

    return "int8" if compute_device.pick_device(device).type == "cpu" else ""


def load_engine(
    name: str,
    model_dir: Path,
    device: str = "auto",
    quantize: str = "",
    *,
    on_status: Callable[[str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> BatchEngine:
    """Load the engine called ``name`` with the checkpoint in ``model_dir``.

    ``quantize``: "" (float), "int8" or "int4" (the fast engine's packed weights on the CPU),
    or "auto" (:func:`weights_for`). The first packed load of a checkpoint makes the packed
    weights (``on_status`` hears its progress; ``should_stop`` can cancel it).

    Raises:
        RequestError: an unknown engine name, or int8 asked of the transformers engine.
    """
    if name == "fast":
        from desktop_app.inference.fast_engine import FastEngine

        quantize = weights_for(device) if quantize == "auto" else quantize
        return FastEngine(
            model_dir, device, quantize=quantize, on_status=on_status, should_stop=should_stop
        )
    if name == "transformers":
        from desktop_app.inference.hf_engine import TransformersEngine

        if quantize not in ("", "auto"):
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
    "weights_for",
]
