"""Playing a take on an output device, with a position for the playhead.

The callback copies the next slice of a preloaded array into the device buffer; nothing else.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import numpy as np

from desktop_app.errors import UserError


class PlaybackError(UserError):
    """The output device could not be opened."""


class Player:
    """Plays mono float32 audio; position, pause and resume for a transport."""

    def __init__(self, device: int | str | None = None) -> None:
        self.device = device
        self._audio = np.zeros(0, dtype=np.float32)
        self.rate = 24_000
        self._position = 0
        self._end = 0
        self._stream: Any = None
        self._finished = threading.Event()
        self._finished.set()

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        start = self._position
        count = max(0, min(frames, self._end - start))
        outdata[:count, 0] = self._audio[start : start + count]
        outdata[count:, 0] = 0.0
        self._position = start + count
        if count < frames:
            import sounddevice as sd

            raise sd.CallbackStop

    def play(self, audio: np.ndarray, rate: int, start: int = 0, end: int | None = None) -> None:
        """Play ``audio[start:end]`` from the beginning of that range."""
        self.stop()
        self._audio = np.ascontiguousarray(audio, dtype=np.float32)
        self.rate = rate
        self._position = max(0, start)
        self._end = len(self._audio) if end is None else min(end, len(self._audio))
        self._open()

    def _open(self) -> None:
        import sounddevice as sd

        self._finished.clear()
        try:
            self._stream = sd.OutputStream(
                device=self.device,
                channels=1,
                samplerate=self.rate,
                dtype="float32",
                callback=self._callback,
                finished_callback=self._finished.set,
            )
            self._stream.start()
        except Exception as exc:
            self._finished.set()
            self._stream = None
            raise PlaybackError(
                f"cannot play on the output device {self.device or '(default)'}: {exc}; pick "
                f"another output"
            ) from exc

    def pause(self) -> None:
        """Stop the device but keep the position."""
        self._close()

    def resume(self) -> None:
        """Continue from the paused position."""
        if self._stream is None and self._position < self._end:
            self._open()

    def stop(self) -> None:
        """Stop and rewind."""
        self._close()
        self._position = 0

    def _close(self) -> None:
        if self._stream is not None:
            with contextlib.suppress(Exception):
                self._stream.stop()
            with contextlib.suppress(Exception):
                self._stream.close()
            self._stream = None
        self._finished.set()

    @property
    def position(self) -> int:
        """Sample index about to be played."""
        return self._position

    @property
    def playing(self) -> bool:
        return self._stream is not None and not self._finished.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until playback ends; True if it did within ``timeout``."""
        return self._finished.wait(timeout)
