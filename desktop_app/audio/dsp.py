"""Signal processing on float32 arrays: mono, resampling, loudness, silence, denoise, peaks."""

from __future__ import annotations

import numpy as np
import soxr

from desktop_app import defaults

MODEL_RATE = defaults.SAMPLE_RATE
SILENCE_FLOOR_DBFS = -60.0


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average the channels of (frames, channels) audio; 1-D input is returned as float32."""
    data = np.asarray(samples, dtype=np.float32)
    if data.ndim == 1:
        return data
    return data.mean(axis=1, dtype=np.float32)


def resample(samples: np.ndarray, rate: int, target: int = MODEL_RATE) -> np.ndarray:
    """Resample 1-D audio with soxr (high quality); a no-op when the rates match."""
    data = np.asarray(samples, dtype=np.float32)
    if rate == target or data.size == 0:
        return data
    return np.asarray(soxr.resample(data, rate, target, quality="HQ"), dtype=np.float32)


def dbfs(value: float) -> float:
    """Amplitude (1.0 = full scale) in dBFS; -inf for zero."""
    return float(20.0 * np.log10(value)) if value > 0 else float("-inf")


def rms(samples: np.ndarray) -> float:
    """Root mean square of the samples (0 for none)."""
    data = np.asarray(samples, dtype=np.float64)
    return float(np.sqrt(np.mean(data * data))) if data.size else 0.0


def remove_dc(samples: np.ndarray) -> np.ndarray:
    """Subtract the mean, so a DC offset does not count as loudness."""
    data = np.asarray(samples, dtype=np.float32)
    return data - np.float32(data.mean()) if data.size else data


def normalize_loudness(
    samples: np.ndarray, target_dbfs: float = -20.0, peak_dbfs: float = -1.0
) -> np.ndarray:
    """Scale to an RMS of ``target_dbfs``, never letting the peak exceed ``peak_dbfs``."""
    data = np.asarray(samples, dtype=np.float32)
    level = rms(data)
    peak = float(np.abs(data).max()) if data.size else 0.0
    if level <= 0 or peak <= 0:
        return data
    gain = 10 ** (target_dbfs / 20) / level
    gain = min(gain, 10 ** (peak_dbfs / 20) / peak)
    return (data * np.float32(gain)).astype(np.float32)


def frame_levels_dbfs(samples: np.ndarray, rate: int, window_s: float = 0.02) -> np.ndarray:
    """RMS level in dBFS of consecutive windows (the last partial window included)."""
    data = np.asarray(samples, dtype=np.float32)
    size = max(1, int(rate * window_s))
    count = -(-data.size // size)
    padded = np.zeros(count * size, dtype=np.float64)
    padded[: data.size] = data
    power = (padded.reshape(count, size) ** 2).mean(axis=1)
    with np.errstate(divide="ignore"):
        return np.asarray(10 * np.log10(power), dtype=np.float64)


def speech_bounds(
    samples: np.ndarray, rate: int, relative_db: float = -40.0, pad_s: float = 0.1
) -> tuple[int, int]:
    """Sample range [start, end) that holds the sound, with ``pad_s`` of margin kept each side.

    A window counts as sound when it is louder than both -60 dBFS and ``relative_db`` below the
    loudest window. Returns (0, 0) when nothing is louder than the silence floor.
    """
    levels = frame_levels_dbfs(samples, rate)
    if levels.size == 0 or levels.max() < SILENCE_FLOOR_DBFS:
        return 0, 0
    threshold = max(SILENCE_FLOOR_DBFS, float(levels.max()) + relative_db)
    loud = np.flatnonzero(levels >= threshold)
    window = max(1, int(rate * 0.02))
    pad = int(rate * pad_s)
    start = max(0, int(loud[0]) * window - pad)
    end = min(len(samples), (int(loud[-1]) + 1) * window + pad)
    return start, end


def trim_silence(samples: np.ndarray, rate: int) -> np.ndarray:
    """Cut leading and trailing silence (see :func:`speech_bounds`)."""
    start, end = speech_bounds(samples, rate)
    return np.asarray(samples[start:end], dtype=np.float32)


def denoise(
    samples: np.ndarray, rate: int, reduction_db: float = 12.0, n_fft: int = 1024
) -> np.ndarray:
    """Light spectral gating: attenuate time-frequency bins near the stationary noise floor.

    The noise profile is taken from the quietest fifth of the frames: per frequency, the mean and
    spread of the magnitude in dB there. Bins less than 1.5 spreads above that mean are turned
    down by ``reduction_db`` (not muted, to avoid a watery sound). Written here rather than taking
    ``noisereduce``, which pulls scipy and matplotlib into the bundle for the same forty lines of
    STFT arithmetic.
    """
    data = np.asarray(samples, dtype=np.float32)
    hop = n_fft // 4
    if data.size < n_fft * 2:
        return data
    window = np.hanning(n_fft + 1)[:-1].astype(np.float64)
    pad = n_fft
    padded = np.pad(data.astype(np.float64), (pad, pad + hop), mode="reflect")
    count = 1 + (padded.size - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(count)[:, None]
    spectrum = np.fft.rfft(padded[idx] * window, axis=1)
    level_db = 20 * np.log10(np.abs(spectrum) + 1e-10)
    frame_energy = level_db.mean(axis=1)
    quiet = level_db[frame_energy <= np.percentile(frame_energy, 20)]
    threshold = quiet.mean(axis=0, keepdims=True) + 1.5 * quiet.std(axis=0, keepdims=True)
    keep = level_db > threshold
    # smooth the mask over time and frequency so the gate does not chatter
    mask = keep.astype(np.float64)
    kernel = np.ones(3) / 3
    mask = np.apply_along_axis(lambda m: np.convolve(m, kernel, mode="same"), 0, mask)
    mask = np.apply_along_axis(lambda m: np.convolve(m, kernel, mode="same"), 1, mask)
    attenuation = 10 ** (-reduction_db / 20)
    gain = attenuation + (1 - attenuation) * mask
    frames = np.fft.irfft(spectrum * gain, n=n_fft, axis=1) * window
    out = np.zeros(padded.size)
    norm = np.zeros(padded.size)
    np.add.at(out, idx, frames)
    np.add.at(norm, idx, np.broadcast_to(window**2, frames.shape))
    out = out / np.maximum(norm, 1e-8)
    return out[pad : pad + data.size].astype(np.float32)


def peaks(samples: np.ndarray, bins: int) -> np.ndarray:
    """Min/max summary for drawing: array of shape (bins, 2), one (min, max) pair per bin."""
    data = np.asarray(samples, dtype=np.float32)
    bins = max(1, int(bins))
    if data.size == 0:
        return np.zeros((bins, 2), dtype=np.float32)
    edges = np.linspace(0, data.size, bins + 1).astype(np.int64)
    edges[1:] = np.maximum(edges[1:], edges[:-1] + 1)
    edges = np.minimum(edges, data.size)
    starts = np.minimum(edges[:-1], data.size - 1)
    return np.stack(
        [np.minimum.reduceat(data, starts), np.maximum.reduceat(data, starts)], axis=1
    ).astype(np.float32)
