"""Synthetic test audio: speech-like signals made with numpy (no recordings shipped)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def voiced(seconds: float, rate: int, f0: float = 140.0, seed: int = 0) -> np.ndarray:
    """A speech-like signal: harmonics of ``f0`` with a syllable-rate (4 Hz) envelope and a bit of
    noise, scaled to about -20 dBFS RMS."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    tone = sum(np.sin(2 * np.pi * f0 * k * t + k) / k for k in range(1, 6))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * t) ** 2
    signal = tone * envelope + 0.02 * rng.standard_normal(t.size)
    signal = signal / np.sqrt(np.mean(signal**2)) * 0.1
    return signal.astype(np.float32)


def with_silence(signal: np.ndarray, rate: int, lead: float, tail: float) -> np.ndarray:
    """``signal`` with ``lead`` seconds of silence before and ``tail`` seconds after."""
    return np.concatenate(
        [np.zeros(int(lead * rate), np.float32), signal, np.zeros(int(tail * rate), np.float32)]
    )


def dominant_hz(signal: np.ndarray, rate: int) -> float:
    """Frequency of the strongest spectral peak."""
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(signal.size)))
    return float(np.fft.rfftfreq(signal.size, 1 / rate)[int(np.argmax(spectrum))])


def write_pyav(path: Path, samples: np.ndarray, rate: int, codec: str) -> None:
    """Encode (frames, channels) float audio with FFmpeg through PyAV."""
    layout = "stereo" if samples.shape[1] == 2 else "mono"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate, layout=layout)
        planar = np.ascontiguousarray(samples.T.astype(np.float32))
        frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout=layout)
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def encoded_silence(fmt: str, subtype: str, minutes: int, rate: int) -> bytes:
    """``minutes`` of silence encoded in memory (``fmt``/``subtype`` as soundfile names them):
    a small file that decodes to a long stretch of audio, as a decompression bomb does."""
    import io

    import soundfile as sf

    data = io.BytesIO()
    with sf.SoundFile(data, "w", samplerate=rate, channels=1, format=fmt, subtype=subtype) as out:
        for _ in range(minutes):
            out.write(np.zeros(rate * 60, np.float32))
    return data.getvalue()
