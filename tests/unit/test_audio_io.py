"""Reading every supported format, preparing references, and writing takes atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from desktop_app.audio import dsp
from desktop_app.audio.io import TakeMetadata, read_audio, read_metadata, write_audio
from desktop_app.audio.reference import load_reference, prepare_reference
from desktop_app.errors import AudioFileError, OutputFileError
from tests.support.signals import dominant_hz, voiced, with_silence, write_pyav

TONE_HZ = 440.0


def _tone(seconds: float, rate: int, channels: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    mono = 0.3 * np.sin(2 * np.pi * TONE_HZ * t)
    return np.stack([mono * (0.5 + 0.5 * c / max(1, channels - 1)) for c in range(channels)], 1)


SOUNDFILE_CASES = [
    ("pcm16.wav", "WAV", "PCM_16", 44_100, 2),
    ("pcm24.wav", "WAV", "PCM_24", 96_000, 1),
    ("float32.wav", "WAV", "FLOAT", 16_000, 1),
    ("u8.wav", "WAV", "PCM_U8", 8_000, 1),
    ("six.wav", "WAV", "PCM_16", 48_000, 6),
    ("lossless.flac", "FLAC", "PCM_16", 48_000, 2),
    ("vorbis.ogg", "OGG", "VORBIS", 44_100, 2),
    ("voice.opus", "OGG", "OPUS", 48_000, 1),
    ("song.mp3", "MP3", "MPEG_LAYER_III", 44_100, 2),
]


@pytest.mark.parametrize(("name", "fmt", "subtype", "rate", "channels"), SOUNDFILE_CASES)
def test_reads_soundfile_formats(
    tmp_path: Path, name: str, fmt: str, subtype: str, rate: int, channels: int
) -> None:
    path = tmp_path / name
    sf.write(path, _tone(2.0, rate, channels), rate, format=fmt, subtype=subtype)
    decoded = read_audio(path)
    assert decoded.sample_rate == rate
    assert decoded.samples.shape[1] == channels
    assert decoded.samples.dtype == np.float32
    assert decoded.seconds == pytest.approx(2.0, abs=0.08)
    assert dominant_hz(decoded.samples[:, 0], rate) == pytest.approx(TONE_HZ, abs=3)


@pytest.mark.parametrize(
    ("name", "codec", "rate"), [("phone.m4a", "aac", 44_100), ("browser.webm", "libopus", 48_000)]
)
def test_reads_phone_and_browser_formats_through_pyav(
    tmp_path: Path, name: str, codec: str, rate: int
) -> None:
    path = tmp_path / name
    write_pyav(path, _tone(2.0, rate, 2), rate, codec)
    decoded = read_audio(path)
    assert decoded.sample_rate == rate
    assert decoded.samples.shape[1] == 2
    assert decoded.seconds == pytest.approx(2.0, abs=0.1)
    assert dominant_hz(decoded.samples[:, 0], rate) == pytest.approx(TONE_HZ, abs=3)


def test_reference_is_24k_mono_trimmed_and_normalized(tmp_path: Path) -> None:
    rate = 48_000
    speech = voiced(3.0, rate) * 0.05  # quiet: about -46 dBFS RMS
    stereo = np.stack([with_silence(speech, rate, 1.0, 1.5)] * 2, axis=1)
    path = tmp_path / "quiet.flac"
    sf.write(path, stereo, rate)
    audio = load_reference(path)
    assert audio.ndim == 1 and audio.dtype == np.float32
    # 1 s lead and 1.5 s tail trimmed, 0.1 s margins kept
    assert audio.size / dsp.MODEL_RATE == pytest.approx(3.2, abs=0.06)
    assert dsp.dbfs(dsp.rms(audio)) == pytest.approx(-20.0, abs=0.5)
    assert np.abs(audio).max() <= 10 ** (-1 / 20) + 1e-6


def test_reference_rejects_silence_short_empty_and_junk(tmp_path: Path) -> None:
    rate = 24_000
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(rate * 5, np.float32), rate)
    with pytest.raises(AudioFileError, match="is silent"):
        load_reference(silent)
    short = tmp_path / "short.wav"
    sf.write(short, with_silence(voiced(1.5, rate), rate, 1, 1), rate)
    with pytest.raises(AudioFileError, match=r"only 1\.\d s of sound.*at least 2 s"):
        load_reference(short)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros((0, 1), np.float32), rate)
    with pytest.raises(AudioFileError, match="holds no audio"):
        load_reference(empty)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(np.random.default_rng(1).bytes(5000))
    with pytest.raises(AudioFileError, match=r"cannot decode .*junk\.wav"):
        read_audio(junk)
    zero = tmp_path / "zero.mp3"
    zero.touch()
    with pytest.raises(AudioFileError, match="is empty"):
        read_audio(zero)
    with pytest.raises(AudioFileError, match="is a folder"):
        read_audio(tmp_path)
    with pytest.raises(AudioFileError, match="file not found"):
        read_audio(tmp_path / "missing.wav")


def test_reference_with_dc_offset_and_nan_is_cleaned() -> None:
    rate = 24_000
    speech = voiced(3.0, rate) + 0.3
    speech[100] = np.nan
    out = prepare_reference(np.nan_to_num(speech)[:, None], rate)
    assert abs(float(out.mean())) < 0.01
    assert np.isfinite(out).all()


def test_denoise_lowers_the_noise_floor_and_keeps_the_voice() -> None:
    rate = 24_000
    rng = np.random.default_rng(3)
    speech = with_silence(voiced(2.0, rate), rate, 1.0, 0.0)
    noisy = speech + 0.01 * rng.standard_normal(speech.size).astype(np.float32)
    cleaned = dsp.denoise(noisy, rate)
    noise_only = slice(int(0.1 * rate), int(0.9 * rate))
    voice = slice(int(1.2 * rate), int(2.8 * rate))
    reduction = dsp.dbfs(dsp.rms(noisy[noise_only])) - dsp.dbfs(dsp.rms(cleaned[noise_only]))
    assert reduction > 6.0
    assert dsp.dbfs(dsp.rms(cleaned[voice])) == pytest.approx(
        dsp.dbfs(dsp.rms(noisy[voice])), abs=1
    )


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_write_audio_keeps_metadata_and_marks_ai(tmp_path: Path, suffix: str) -> None:
    audio = voiced(1.0, 24_000)
    path = tmp_path / f"take{suffix}"
    meta = TakeMetadata(text="Hello world.", model="sesame/csm-1b", seed=42, engine="transformers")
    write_audio(path, audio, 24_000, meta)
    back, rate = sf.read(path, dtype="float32")
    assert rate == 24_000
    np.testing.assert_allclose(back, audio, atol=2e-4)
    fields = read_metadata(path)
    assert fields["title"] == "Hello world."
    assert fields["ai_generated"] == "yes"
    assert fields["model"] == "sesame/csm-1b"
    assert fields["seed"] == "42"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_write_audio_is_atomic_when_the_disk_fills(tmp_path: Path) -> None:
    """A real write failure: the file size limit (RLIMIT_FSIZE) stops the write with EFBIG, as a
    full disk stops it with ENOSPC. The old file stays as it was, no temporary file is left."""
    import subprocess
    import sys

    from tests.conftest import REPO, cli_env

    path = tmp_path / "take.wav"
    write_audio(path, voiced(0.05, 24_000), 24_000)
    before = path.read_bytes()
    script = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "import numpy as np\n"
        "from desktop_app.audio.io import TakeMetadata, write_audio\n"
        "from desktop_app.errors import UserError\n"
        "try:\n"
        "    write_audio(sys.argv[1], np.zeros(48_000, np.float32), 24_000, "
        "TakeMetadata('t', 'm', 1))\n"
        "except UserError as e:\n"
        "    print(e)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        capture_output=True,
        text=True,
        env=cli_env(),
        cwd=REPO,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr  # a clear error, no traceback
    assert "cannot write" in proc.stdout and "File too large" in proc.stdout
    assert path.read_bytes() == before  # the old file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["take.wav"]  # no temp file left


def test_write_audio_rejects_bad_names(tmp_path: Path) -> None:
    with pytest.raises(OutputFileError, match=r"\.wav or \.flac"):
        write_audio(tmp_path / "take.mp3", voiced(1.0, 24_000), 24_000)
    with pytest.raises(OutputFileError, match="does not exist"):
        write_audio(tmp_path / "nope" / "take.wav", voiced(1.0, 24_000), 24_000)


def test_peaks_summarize_min_and_max() -> None:
    signal = np.array([0, 1, -1, 0.5, -0.25, 0.75], dtype=np.float32)
    np.testing.assert_array_equal(dsp.peaks(signal, 2), [[-1, 1], [-0.25, 0.75]])
    assert dsp.peaks(np.zeros(0, np.float32), 4).shape == (4, 2)
