"""Playing a take on an output device, with a position for the playhead.

The callback copies the next slice of a preloaded array into the device buffer; nothing else.
A take still being generated is played as a stream: pieces are appended behind the playhead
(`feed`), and :class:`StreamingPlayback` starts the device only once enough is buffered for the
rest to arrive in time, so the stream plays without gaps.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import numpy as np

from desktop_app.audio.devices import close_stream
from desktop_app.errors import UserError

STREAM_LATENCY = 0.2
"""Seconds of a stream the device may pull ahead of the playhead (it plays silence when the
pieces run short, so it must not pull far ahead of what has been made)."""


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
        self._open_ended = False  # streaming: more audio may still be appended
        self.session = 0  # counts play() and start_stream(): a stream's feeder checks it is current
        self.underruns = 0  # device blocks that found the stream's buffer empty

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        start = self._position
        count = max(0, min(frames, self._end - start))
        outdata[:count, 0] = self._audio[start : start + count]
        outdata[count:, 0] = 0.0
        self._position = start + count
        if count < frames:
            if self._open_ended:
                self.underruns += 1  # a gap: the generator fell behind
                return
            import sounddevice as sd

            raise sd.CallbackStop

    def play(self, audio: np.ndarray, rate: int, start: int = 0, end: int | None = None) -> None:
        """Play ``audio[start:end]`` from the beginning of that range."""
        self.stop()
        self.session += 1
        self._audio = np.ascontiguousarray(audio, dtype=np.float32)
        self.rate = rate
        self._position = max(0, start)
        self._end = len(self._audio) if end is None else min(end, len(self._audio))
        self._open()

    def start_stream(self, rate: int, capacity: int) -> None:
        """Prepare to play audio arriving in pieces (``feed``); the device opens on ``begin``."""
        self.stop()
        self.session += 1
        self._audio = np.zeros(max(capacity, 1), dtype=np.float32)
        self.rate = rate
        self._position = 0
        self._end = 0
        self._open_ended = True
        self.underruns = 0

    def feed(self, piece: np.ndarray) -> None:
        """Append a piece behind the playhead (the callback only reads what is before ``_end``)."""
        end = self._end + piece.size
        if end > self._audio.size:
            grown = np.zeros(max(end, 2 * self._audio.size), dtype=np.float32)
            grown[: self._end] = self._audio[: self._end]
            self._audio = grown
        self._audio[self._end : end] = piece
        self._end = end

    def begin(self) -> None:
        """Open the device and play what is buffered and what comes."""
        if self._stream is None:
            self._open()

    def end_stream(self) -> None:
        """No more pieces: playback stops at the end of what was fed."""
        self._open_ended = False
        if self._stream is None and self._position < self._end:
            self._open()

    @property
    def buffered(self) -> int:
        """Samples fed but not yet played."""
        return self._end - self._position

    @property
    def length(self) -> int:
        """Samples of the audio being played (so far, for a stream)."""
        return self._end

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
                # a stream keeps the device from pulling far ahead of what has been made: the
                # device would fill its buffer with silence (a gap) when the pieces run short
                latency=STREAM_LATENCY if self._open_ended else None,
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
        self._open_ended = False
        self._close()
        self._position = 0

    def _close(self) -> None:
        if self._stream is not None:
            close_stream(self._stream)
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


class StreamingPlayback:
    """Plays a take while it is generated, starting once the rest can arrive in time.

    The pieces say how fast audio is being made: ``r`` seconds of audio per second. The ``R``
    seconds still to come (at most ``max_seconds`` in all) take ``R / r`` seconds to make, while
    playback consumes one per second; it never runs dry when the buffer holds
    ``(1 / r - 1) * R`` (plus 10 %, what the device pulls ahead, and one interval between
    pieces). A generator faster than real time starts after
    ``min_prebuffer`` seconds.
    """

    def __init__(
        self, player: Player, rate: int, max_seconds: float, min_prebuffer: float = 0.4
    ) -> None:
        self.player = player
        self.rate = rate
        self.max_seconds = max_seconds
        self.min_prebuffer = min_prebuffer
        self._first: float | None = None
        self._first_seconds = 0.0
        self._pieces = 0
        self.started_at: float | None = None  # seconds of audio made when playback began
        self.error: UserError | None = None  # the device could not be opened: not played
        player.start_stream(rate, int(max_seconds * rate) + rate)
        self._session = player.session

    def feed(self, piece: np.ndarray) -> None:
        """Append a piece; start the device when enough is buffered.

        A device that cannot be opened is remembered in ``error``: the take goes on.
        """
        if self.error is not None or self.player.session != self._session:
            return  # the player was given something else to play meanwhile
        try:
            self._feed(piece)
        except UserError as exc:
            self.error = exc

    def _feed(self, piece: np.ndarray) -> None:
        now = time.perf_counter()
        self.player.feed(piece)
        made = self.player.length / self.rate
        self._pieces += 1
        if self._first is None:
            self._first, self._first_seconds = now, made
        if self.started_at is not None:
            return
        buffered = self.player.buffered / self.rate
        elapsed = now - self._first
        speed = (made - self._first_seconds) / elapsed if elapsed > 0 else 0.0
        interval = elapsed / (self._pieces - 1) if self._pieces > 1 else 0.0
        still_to_come = max(0.0, self.max_seconds - made)
        if speed >= 1.0:
            needed = self.min_prebuffer
        elif speed > 0:
            shortfall = (1.0 / speed - 1.0) * still_to_come * 1.1
            # pieces come in steps: the buffer must also last until the next one arrives
            needed = max(self.min_prebuffer, shortfall + STREAM_LATENCY + interval)
        else:
            needed = math.inf  # one piece says nothing about the speed yet
        if buffered >= needed or still_to_come == 0:
            self.started_at = made
            self.player.begin()

    def finish(self) -> None:
        """The take is complete: play out what is left."""
        if self.error is not None or self.player.session != self._session:
            return
        if self.started_at is None:
            self.started_at = self.player.length / self.rate
        try:
            self.player.end_stream()
        except UserError as exc:
            self.error = exc
