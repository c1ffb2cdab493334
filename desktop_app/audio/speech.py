"""Where the speech is: silero-vad's detector over 16 kHz audio, and windows for recognition.

silero-vad ships its own 2 MB model inside the wheel, so this works offline with nothing to
download. Its ``read_audio`` wants torchaudio; the app reads with soundfile and passes arrays.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

VAD_RATE = 16_000

_model: Any = None
_lock = threading.Lock()


@dataclass(frozen=True)
class Span:
    """A stretch of audio, in seconds."""

    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


def speech_spans(
    audio: np.ndarray,
    max_span_seconds: float = float("inf"),
    on_progress: Callable[[float], None] | None = None,
    min_silence_ms: int = 100,
) -> list[Span]:
    """The stretches of speech in 16 kHz mono ``audio``, in order.

    ``max_span_seconds`` splits longer speech at its longest pause (silero-vad's own rule);
    ``on_progress`` gets the share done, 0 to 1.
    """
    import torch

    if audio.size < VAD_RATE // 10:
        return []
    with _lock, torch.inference_mode():
        model = _vad()
        from silero_vad import get_speech_timestamps  # imported by _vad, threads kept

        model.reset_states()
        found = get_speech_timestamps(
            torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)),
            model,
            sampling_rate=VAD_RATE,
            max_speech_duration_s=max_span_seconds,
            min_silence_duration_ms=min_silence_ms,
            return_seconds=False,
            progress_tracking_callback=_every_percent(on_progress) if on_progress else None,
        )
    return [Span(s["start"] / VAD_RATE, s["end"] / VAD_RATE) for s in found]


def _vad() -> Any:
    """The detector, loaded once per process (call with the lock held).

    Importing silero_vad sets torch to one thread for the whole process (``silero_vad.model``
    calls ``torch.set_num_threads(1)``), which would halve CSM's speed on a 2-core CPU: the
    thread count is put back. This is the one place that imports it.
    """
    global _model
    if _model is None:
        import torch

        threads = torch.get_num_threads()
        try:
            from silero_vad import load_silero_vad
        finally:
            torch.set_num_threads(threads)
        _model = load_silero_vad()
    return _model


def _every_percent(on_progress: Callable[[float], None]) -> Callable[[float], None]:
    """silero-vad reports after every 32 ms of audio; pass on whole percents only."""
    last = [-1]

    def report(percent: float) -> None:
        if int(percent) > last[0]:
            last[0] = int(percent)
            on_progress(min(percent, 100.0) / 100)

    return report


def windows(spans: list[Span], longest: float, pad: float = 0.2, total: float = 0.0) -> list[Span]:
    """Group speech spans into windows of at most ``longest`` seconds, cut at pauses.

    Each window reaches ``pad`` seconds beyond its first and last span (not past 0 or ``total``
    when it is given), so a recogniser hears each word whole.
    """
    out: list[Span] = []
    for span in spans:
        if out and span.end + pad - out[-1].start <= longest:
            out[-1] = Span(out[-1].start, span.end + pad)
        else:
            out.append(Span(max(0.0, span.start - pad), span.end + pad))
    if total:
        out = [Span(w.start, min(w.end, total)) for w in out]
    return out
