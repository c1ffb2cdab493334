"""Fuzzing the audio reader: damaged real files and random bytes under every audio name.

Bounded: a fixed number of examples with a per-example deadline (a few seconds to a minute in all).
"""

from __future__ import annotations

import datetime
import io
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desktop_app.audio.io import read_audio
from desktop_app.errors import AudioFileError
from tests.support.signals import voiced


def _encoded(fmt: str, subtype: str | None) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, voiced(0.5, 16_000), 16_000, format=fmt, subtype=subtype)
    return buffer.getvalue()


SEEDS = {
    ".wav": _encoded("WAV", "PCM_16"),
    ".flac": _encoded("FLAC", "PCM_16"),
    ".ogg": _encoded("OGG", "VORBIS"),
    ".mp3": _encoded("MP3", "MPEG_LAYER_III"),
}
SUFFIXES = [".wav", ".flac", ".ogg", ".mp3", ".m4a", ".webm", ".opus"]


@st.composite
def damaged(draw: st.DrawFn) -> tuple[str, bytes]:
    suffix = draw(st.sampled_from(SUFFIXES))
    kind = draw(st.sampled_from(["flip", "truncate", "random", "splice"]))
    base = SEEDS.get(suffix, SEEDS[draw(st.sampled_from(list(SEEDS)))])
    if kind == "random":
        return suffix, draw(st.binary(min_size=1, max_size=4096))
    data = bytearray(base)
    if kind == "truncate":
        return suffix, bytes(data[: draw(st.integers(1, len(data) - 1))])
    if kind == "splice":
        at = draw(st.integers(0, len(data)))
        return suffix, bytes(data[:at] + draw(st.binary(max_size=512)) + data[at:])
    for _ in range(draw(st.integers(1, 40))):
        index = draw(st.integers(0, min(len(data) - 1, 2048)))  # headers live up front
        data[index] = draw(st.integers(0, 255))
    return suffix, bytes(data)


@settings(
    max_examples=1000,
    deadline=datetime.timedelta(seconds=5),
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(damaged())
def test_the_reader_returns_audio_or_a_clear_error(case: tuple[str, bytes]) -> None:
    suffix, data = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzzed{suffix}"
        path.write_bytes(data)
        message = ""
        try:
            decoded = read_audio(path)
        except AudioFileError as exc:
            message = str(exc)
    if message:  # refused: the message names the file
        assert path.name in message
        return
    assert decoded.sample_rate > 0 and decoded.samples.shape[0] > 0
    assert decoded.samples.dtype == np.float32 and np.isfinite(decoded.samples).all()
