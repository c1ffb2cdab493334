"""Audio devices as sounddevice (PortAudio) sees them."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from desktop_app.errors import UserError

PORTAUDIO_HINT = "install PortAudio: sudo apt-get install libportaudio2"


class AudioUnavailableError(UserError):
    """No audio system can be used (PortAudio missing or failing)."""


@dataclass(frozen=True)
class AudioDevice:
    """One input and/or output device."""

    index: int
    name: str
    inputs: int
    outputs: int
    default_rate: float
    is_default_input: bool
    is_default_output: bool


def list_devices() -> list[AudioDevice]:
    """Every device PortAudio reports.

    Raises:
        AudioUnavailableError: PortAudio is missing or cannot start.
    """
    try:
        import sounddevice as sd

        raw = sd.query_devices()
        default_in, default_out = sd.default.device
    except OSError as exc:  # the PortAudio library is missing
        raise AudioUnavailableError(f"audio is not available ({exc}); {PORTAUDIO_HINT}") from exc
    except Exception as exc:  # sounddevice.PortAudioError and friends
        raise AudioUnavailableError(f"audio is not available: {exc}") from exc
    return [
        AudioDevice(
            index=i,
            name=str(d["name"]),
            inputs=int(d["max_input_channels"]),
            outputs=int(d["max_output_channels"]),
            default_rate=float(d["default_samplerate"]),
            is_default_input=i == default_in,
            is_default_output=i == default_out,
        )
        for i, d in enumerate(raw)
    ]


def close_stream(stream: Any) -> None:
    """Stop and close a sounddevice stream, whatever state the device is in (it may be gone)."""
    with contextlib.suppress(Exception):
        stream.stop()
    with contextlib.suppress(Exception):
        stream.close()
