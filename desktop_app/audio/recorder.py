"""Recording from an input device straight to disk.

The PortAudio callback only copies the block into a ring buffer. A writer thread drains the ring
into a raw float32 file beside a small JSON note (sample rate, channels), flushing as it goes, so a
crash or a pulled plug loses at most a fraction of a second; `stop()` turns the raw file into a
WAV. The writer also keeps the latest peak level for a meter to poll.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from desktop_app.audio.devices import close_stream
from desktop_app.audio.io import write_audio
from desktop_app.audio.ring_buffer import RingBuffer
from desktop_app.errors import UserError
from desktop_app.paths import private_folder

log = logging.getLogger(__name__)

RAW_SUFFIX = ".recording.f32"
NOTE_SUFFIX = ".recording.json"


class RecordingError(UserError):
    """The input device could not be opened or failed while recording."""


class Recorder:
    """Records mono float32 from one input device into ``folder``."""

    def __init__(self, folder: Path, device: int | str | None = None, rate: int = 48_000) -> None:
        self.folder = folder
        self.device = device
        self.rate = rate
        self.path: Path | None = None  # the finished WAV, once stopped
        self._ring = RingBuffer(rate * 20)
        self._stream: Any = None
        self._writer: threading.Thread | None = None
        self._running = threading.Event()
        self._raw_path: Path | None = None
        self._peak = 0.0
        self._frames_written = 0
        self.error: str | None = None

    # -- the real-time side --------------------------------------------------------------------

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        self._ring.write(indata[:, 0])

    # -- control -------------------------------------------------------------------------------

    def start(self, name: str | None = None) -> Path:
        """Open the device and start writing; returns the raw file being written."""

        private_folder(self.folder)  # a recording is someone's voice: user-only
        stem = name or time.strftime("recording-%Y%m%d-%H%M%S")
        self._raw_path = self.folder / f"{stem}{RAW_SUFFIX}"
        note = {"sample_rate": self.rate, "channels": 1, "dtype": "float32", "started": time.time()}
        with _private_open(self.folder / f"{stem}{NOTE_SUFFIX}", os.O_TRUNC) as handle:
            handle.write(json.dumps(note).encode())
        try:
            self._stream = open_input(self.device, self.rate, self._callback)
        except Exception as exc:
            self._cleanup_empty()
            raise RecordingError(
                f"cannot open the input device {self.device or '(default)'}: {exc}; pick another "
                f"input or check that the microphone is connected"
            ) from exc
        self._running.set()
        self._writer = threading.Thread(target=self._drain, name="recorder-writer", daemon=True)
        self._writer.start()
        return self._raw_path

    def _drain(self) -> None:
        assert self._raw_path is not None
        block = np.zeros(self.rate // 10, dtype=np.float32)
        with _private_open(self._raw_path, os.O_APPEND) as raw:
            while self._running.is_set() or self._ring.available():
                count = self._ring.read_into(block)
                if count:
                    chunk = block[:count]
                    raw.write(chunk.tobytes())
                    raw.flush()
                    self._frames_written += count
                    self._peak = float(np.abs(chunk).max())
                else:
                    if (
                        self._stream is not None
                        and not self._stream.active
                        and self._running.is_set()
                    ):
                        self.error = "the input device stopped (unplugged or taken by another app)"
                        self._running.clear()
                    time.sleep(0.02)
            os.fsync(raw.fileno())

    def peak(self) -> float:
        """The peak amplitude (0..1) of the latest block written."""
        return self._peak

    @property
    def seconds(self) -> float:
        """Seconds written to disk so far."""
        return self._frames_written / self.rate

    @property
    def recording(self) -> bool:
        return self._running.is_set()

    def stop(self) -> Path:
        """Stop the device, finish the file and return the WAV's path.

        Whatever was recorded is kept, even when the device failed mid-way.
        """
        self._running.clear()
        if self._stream is not None:
            close_stream(self._stream)
            self._stream = None
        if self._writer is not None:
            self._writer.join(timeout=5)
        assert self._raw_path is not None
        self.path = finish_recording(self._raw_path)
        return self.path

    def _cleanup_empty(self) -> None:
        if self._raw_path is not None:
            for path in (self._raw_path, note_path(self._raw_path)):
                with contextlib.suppress(OSError):
                    path.unlink()


def _private_open(path: Path, flag: int) -> Any:
    """Open ``path`` for binary writing, created readable by this user only."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | flag, 0o600), "wb")


def note_path(raw_path: Path) -> Path:
    """The JSON note that goes with a raw recording."""
    return raw_path.with_name(raw_path.name.removesuffix(RAW_SUFFIX) + NOTE_SUFFIX)


def finish_recording(raw_path: Path) -> Path:
    """Turn a raw recording (finished or left behind by a crash) into a WAV beside it."""
    note = json.loads(note_path(raw_path).read_text())
    samples = np.fromfile(raw_path, dtype=np.float32)
    wav = raw_path.with_name(raw_path.name.removesuffix(RAW_SUFFIX) + ".wav")
    write_audio(wav, samples, int(note["sample_rate"]), permissions=0o600)
    raw_path.unlink()
    note_path(raw_path).unlink()
    return wav


def unfinished_recordings(folder: Path) -> list[Path]:
    """Raw recordings left behind by a crash, oldest first."""
    if not folder.is_dir():
        return []
    return sorted(
        (p for p in folder.glob(f"*{RAW_SUFFIX}") if note_path(p).exists()),
        key=lambda p: p.stat().st_mtime,
    )


def open_input(device: int | str | None, rate: int, callback: Any) -> Any:
    """A started mono float32 input stream on ``device`` calling ``callback`` per block."""
    import sounddevice as sd

    stream = sd.InputStream(
        device=device,
        channels=1,
        samplerate=rate,
        dtype="float32",
        callback=callback,
        blocksize=0,
    )
    stream.start()
    return stream


class InputMonitor:
    """The input level before and between recordings: an input stream whose callback only
    copies into a ring buffer, and :meth:`peak` to read the latest samples' peak (UI thread)."""

    def __init__(self, device: int | str | None = None, rate: int = 48_000) -> None:
        self.device = device
        self.rate = rate
        self._ring = RingBuffer(rate)
        self._block = np.zeros(rate // 4, dtype=np.float32)
        self._stream: Any = None

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        self._ring.write(indata[:, 0])

    def start(self) -> None:
        """Open the device.

        Raises:
            RecordingError: it cannot be opened.
        """
        try:
            self._stream = open_input(self.device, self.rate, self._callback)
        except Exception as exc:
            self._stream = None
            raise RecordingError(
                f"cannot listen to the input device {self.device or '(default)'}: {exc}"
            ) from exc

    @property
    def active(self) -> bool:
        return self._stream is not None

    def peak(self) -> float:
        """The peak (0..1) of what came in since the last call (0 when nothing did)."""
        peak = 0.0
        while True:
            count = self._ring.read_into(self._block)
            if not count:
                return peak
            peak = max(peak, float(np.abs(self._block[:count]).max()))

    def stop(self) -> None:
        """Close the device (idempotent)."""
        if self._stream is not None:
            close_stream(self._stream)
            self._stream = None
