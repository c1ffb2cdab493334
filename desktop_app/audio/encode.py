"""Audio as bytes in the formats other programs ask for: WAV, FLAC, raw PCM, MP3, Opus, AAC.

WAV and FLAC go through soundfile (with the take's metadata and the AI mark); MP3 (LAME), Opus
(in Ogg) and AAC (ADTS) through PyAV's FFmpeg encoders, so no system ffmpeg is needed. A
:class:`StreamEncoder` takes the audio chunk by chunk as it is made and hands back the bytes
that are ready, for a response that starts at the first audio. Speed changes keep the pitch:
FFmpeg's ``atempo`` filter (WSOLA) through PyAV, chained for factors below 0.5.
"""

from __future__ import annotations

import io
import itertools
import struct
from typing import Any

import numpy as np
import soundfile as sf

from desktop_app.audio.io import AI_MARK, TakeMetadata, _apply_metadata
from desktop_app.errors import RequestError

MEDIA_TYPES = {
    "wav": "audio/wav",
    "flac": "audio/flac",
    "pcm": "audio/pcm",
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
}
"""Each format this module writes and its media type (Opus comes in an Ogg container)."""

_PYAV = {"mp3": ("libmp3lame", "mp3"), "opus": ("libopus", "ogg"), "aac": ("aac", "adts")}
SPEEDS = (0.25, 4.0)


def encode(audio: np.ndarray, rate: int, fmt: str, metadata: TakeMetadata | None = None) -> bytes:
    """A whole take as a file of format ``fmt`` (see :data:`MEDIA_TYPES`)."""
    if fmt in ("wav", "flac"):
        return _soundfile_bytes(audio, rate, fmt, metadata)
    encoder = StreamEncoder(fmt, rate, metadata)
    return encoder.feed(audio) + encoder.finish()


def _soundfile_bytes(
    audio: np.ndarray, rate: int, fmt: str, metadata: TakeMetadata | None
) -> bytes:
    buffer = io.BytesIO()
    subtype = "PCM_16" if fmt == "wav" else "PCM_24"
    with sf.SoundFile(
        buffer, "w", samplerate=rate, channels=1, format=fmt.upper(), subtype=subtype
    ) as out:
        if metadata is not None:
            _apply_metadata(out, metadata)
        out.write(_clean(audio))
    return buffer.getvalue()


def _clean(audio: np.ndarray) -> np.ndarray:
    return np.clip(np.nan_to_num(np.asarray(audio, dtype=np.float32)), -1.0, 1.0)


def _pcm16(audio: np.ndarray) -> bytes:
    return (np.round(_clean(audio) * 32767.0)).astype("<i2").tobytes()


class _Sink:
    """A write-only file for PyAV's muxer; the bytes written so far are taken out as they come."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: Any) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


class StreamEncoder:
    """Encode mono float32 audio chunk by chunk; each call returns the bytes ready so far.

    ``wav`` streams a header whose sizes say "unknown length" (as streaming servers write it),
    then 16-bit samples; ``pcm`` is bare 16-bit little-endian samples; ``flac`` cannot stream
    here and is refused.
    """

    def __init__(self, fmt: str, rate: int, metadata: TakeMetadata | None = None) -> None:
        if fmt not in MEDIA_TYPES or fmt == "flac":
            raise RequestError(f"cannot stream {fmt}: choose wav, pcm, mp3, opus or aac")
        self.fmt = fmt
        self.rate = rate
        self._started = False
        self._container: Any = None
        if fmt in _PYAV:
            import av

            codec, container = _PYAV[fmt]
            self._sink = _Sink()
            options = {"page_duration": "100000"} if container == "ogg" else {}
            self._container = av.open(self._sink, "w", format=container, options=options)
            if metadata is not None:
                self._container.metadata["title"] = metadata.text[:1000]
                self._container.metadata["artist"] = metadata.voice or "CSM Studio voice clone"
                self._container.metadata["comment"] = (
                    f"{AI_MARK} | model={metadata.model} | seed={metadata.seed}"
                )
            self._stream = self._container.add_stream(codec, rate=rate, layout="mono")
            formats = [f.name for f in self._stream.codec.audio_formats or ()]
            self._frame_format = "flt" if "flt" in formats else "fltp"

    def feed(self, audio: np.ndarray) -> bytes:
        """Encode the next chunk; the bytes that are ready (perhaps none yet)."""
        if self.fmt in ("pcm", "wav"):
            head = b""
            if self.fmt == "wav" and not self._started:
                head = _open_wav_header(self.rate)
            self._started = True
            return head + _pcm16(audio)
        import av

        self._started = True
        data = _clean(audio)
        if data.size:
            frame = av.AudioFrame.from_ndarray(
                data[None, :], format=self._frame_format, layout="mono"
            )
            frame.sample_rate = self.rate
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        return self._sink.take()

    def finish(self) -> bytes:
        """The last bytes (the encoder's tail and the container's end)."""
        if self._container is None:
            return b"" if self._started else self.feed(np.zeros(0, np.float32))
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        self._container = None
        return self._sink.take()


def _open_wav_header(rate: int) -> bytes:
    """A 16-bit mono WAV header whose RIFF and data sizes are 0xFFFFFFFF (length unknown)."""
    unknown = 0xFFFFFFFF
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", unknown)
        + b"WAVEfmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", unknown)
    )


def change_speed(audio: np.ndarray, rate: int, speed: float) -> np.ndarray:
    """``audio`` played ``speed`` times as fast with its pitch kept (FFmpeg's atempo).

    Raises:
        RequestError: ``speed`` outside 0.25-4.0.
    """
    if not SPEEDS[0] <= speed <= SPEEDS[1]:
        raise RequestError(f"speed must be between {SPEEDS[0]} and {SPEEDS[1]} (got {speed})")
    if abs(speed - 1.0) < 1e-6 or not audio.size:
        return np.asarray(audio, dtype=np.float32)
    import av
    import av.filter

    factors = []
    left = speed
    while left < 0.5:  # one atempo stage takes 0.5-100; slower is done in stages
        factors.append(0.5)
        left /= 0.5
    factors.append(left)
    graph = av.filter.Graph()
    source = graph.add_abuffer(format="flt", sample_rate=rate, layout="mono")
    stages = [graph.add("atempo", f"{f:.6f}") for f in factors]
    sink = graph.add("abuffersink")
    chain = [source, *stages, sink]
    for a, b in itertools.pairwise(chain):
        a.link_to(b)
    graph.configure()
    frame = av.AudioFrame.from_ndarray(_clean(audio)[None, :], format="flt", layout="mono")
    frame.sample_rate = rate
    frame.pts = 0
    graph.push(frame)
    graph.push(None)
    out: list[np.ndarray] = []
    while True:
        try:
            got = graph.pull()
        except (av.error.BlockingIOError, av.error.EOFError):
            break
        out.append(got.to_ndarray().reshape(-1))
    return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)
