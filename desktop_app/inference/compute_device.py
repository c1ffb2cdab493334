"""Choosing the torch device and dtype: CUDA, then Apple's MPS, then the CPU."""

from __future__ import annotations

import torch

from desktop_app import defaults
from desktop_app.errors import DeviceError

DEVICE_CHOICES = defaults.DEVICES


def mps_available() -> bool:
    """Whether torch can use Apple's Metal GPU here (an Apple-silicon Mac with a torch built
    for it)."""
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def pick_device(choice: str = "auto") -> torch.device:
    """Resolve "auto", "cpu", "cuda" or "mps" to a torch device.

    "auto" prefers CUDA, then MPS, then the CPU.

    Raises:
        DeviceError: an unknown choice, or a GPU asked for that torch does not see.
    """
    if choice not in DEVICE_CHOICES:
        raise DeviceError(f"unknown device {choice!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    if choice == "cpu":
        return torch.device("cpu")
    if choice in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    if choice == "cuda":
        raise DeviceError(
            "CUDA was asked for but torch sees no GPU (a CPU-only torch, or no NVIDIA driver); "
            "use --device cpu or auto"
        )
    if choice in ("auto", "mps") and mps_available():
        return torch.device("mps")
    if choice == "mps":
        raise DeviceError(
            "MPS was asked for but torch sees no Apple GPU (it needs an Apple-silicon Mac); "
            "use --device cpu or auto"
        )
    return torch.device("cpu")


def pick_dtype(device: torch.device) -> torch.dtype:
    """bf16 on CUDA (half the memory, full speed); fp32 on the CPU (bf16 is slow there) and on
    MPS (its bf16 support depends on the macOS version, and this path is unverified)."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def describe(device: torch.device) -> str:
    """A human name for the device: the GPU's name, "Apple GPU (MPS)", or "CPU"."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"{torch.cuda.get_device_name(index)} (cuda:{index})"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    return "CPU"
