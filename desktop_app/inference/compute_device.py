"""Choosing the torch device and dtype: CUDA when asked for or available, else CPU."""

from __future__ import annotations

import torch

from desktop_app.errors import DeviceError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def pick_device(choice: str = "auto") -> torch.device:
    """Resolve "auto", "cpu" or "cuda" to a torch device.

    Raises:
        DeviceError: an unknown choice, or CUDA asked for where torch sees no GPU.
    """
    if choice not in DEVICE_CHOICES:
        raise DeviceError(f"unknown device {choice!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    if choice == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if choice == "cuda":
        raise DeviceError(
            "CUDA was asked for but torch sees no GPU (a CPU-only torch, or no NVIDIA driver); "
            "use --device cpu or auto"
        )
    return torch.device("cpu")


def pick_dtype(device: torch.device) -> torch.dtype:
    """bf16 on CUDA (half the memory, full speed), fp32 on CPU (bf16 is slow there)."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def describe(device: torch.device) -> str:
    """A human name for the device: the GPU's name, or "CPU"."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"{torch.cuda.get_device_name(index)} (cuda:{index})"
    return "CPU"
