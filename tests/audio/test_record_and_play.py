"""Real recording and playback through sounddevice on a PulseAudio null sink and virtual mic."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from desktop_app.audio import dsp
from desktop_app.audio.player import Player, StreamingPlayback
from desktop_app.audio.recorder import Recorder, finish_recording, unfinished_recordings
from tests.support.signals import voiced

pytestmark = pytest.mark.usefixtures("pulse")


def speech(tmp_path: Path) -> Path:
    """Real synthetic speech from espeak-ng (a speech-like signal where it is missing)."""
    path = tmp_path / "speech.wav"
    if shutil.which("espeak-ng"):
        subprocess.run(
            [
                "espeak-ng",
                "-w",
                str(path),
                "Recording a short sentence for the test, with a few different words in it.",
            ],
            check=True,
            timeout=30,
        )
    else:
        sf.write(path, voiced(3.0, 22_050, f0=160), 22_050)
    return path


def aligned_correlation(a: np.ndarray, rate_a: int, b: np.ndarray, rate_b: int) -> float:
    """Correlation of ``b`` with ``a`` after resampling both to 16 kHz and removing the lag.

    Only lags at which the two overlap by at least half of ``a`` are searched: a spurious peak
    elsewhere once gave an empty overlap in CI instead of a low correlation."""
    a = dsp.resample(dsp.to_mono(a), rate_a, 16_000)
    b = dsp.resample(dsp.to_mono(b), rate_b, 16_000)
    half = a.size // 2
    assert b.size >= half, f"captured {b.size / 16_000:.2f} s of a {a.size / 16_000:.2f} s sound"
    n = 1 << int(np.ceil(np.log2(a.size + b.size)))
    xcorr = np.fft.irfft(np.fft.rfft(b, n) * np.conj(np.fft.rfft(a, n)), n)
    # lags -half..-1 (``b`` starts inside ``a``) sit at the end of the circular correlation
    lags = np.r_[np.arange(0, b.size - half + 1), np.arange(-half, 0)]
    lag = int(lags[np.argmax(xcorr[lags])])
    if lag >= 0:
        b = b[lag:]
    else:
        a = a[-lag:]
    length = min(a.size, b.size)
    return float(np.corrcoef(a[:length], b[:length])[0, 1])


def test_recorder_captures_what_plays_into_the_microphone(tmp_path: Path) -> None:
    source = speech(tmp_path)
    recorder = Recorder(tmp_path / "recordings")
    raw = recorder.start("take-one")
    time.sleep(0.6)  # the first moments of a new input stream can be lost
    subprocess.run(["paplay", "--device=vsink", str(source)], check=True, timeout=30)
    time.sleep(0.5)
    assert raw.exists() and raw.stat().st_size > 0  # streamed to disk while recording
    wav = recorder.stop()
    recorded, rate = sf.read(wav, dtype="float32")
    original, original_rate = sf.read(source, dtype="float32")
    assert rate == 48_000
    assert recorded.size / rate > original.size / original_rate
    assert aligned_correlation(original, original_rate, recorded, rate) > 0.9
    assert not raw.exists()  # the raw file became the WAV


def capture_sink(path: Path) -> subprocess.Popen[bytes]:
    """Record what plays into the null sink (its monitor) as raw float32 at 48 kHz; returns once
    the recorder is connected (the idle sink's silence has reached the file), not after a guess."""
    errors = path.with_suffix(".err")
    with path.open("wb") as out, errors.open("wb") as err:  # the child keeps its own descriptors
        parec = subprocess.Popen(
            [
                "parec",
                "--device=vsink.monitor",
                "--format=float32le",
                "--rate=48000",
                "--channels=1",
                "--latency-msec=20",
            ],
            stdout=out,
            stderr=err,
        )
    deadline = time.monotonic() + 15
    while path.stat().st_size == 0:
        if parec.poll() is not None or time.monotonic() > deadline:
            parec.kill()
            parec.wait(timeout=10)
            pytest.fail(f"parec never recorded the sink: {errors.read_text()[-300:]}")
        time.sleep(0.05)
    return parec


def test_player_output_matches_the_take(tmp_path: Path) -> None:
    take = voiced(2.0, 24_000, f0=150) * np.linspace(0.2, 1.0, 48_000, dtype=np.float32)
    capture = tmp_path / "captured.raw"
    parec = capture_sink(capture)
    try:
        player = Player()
        player.play(take, 24_000)
        assert player.wait(timeout=10)
        assert player.position == take.size
        time.sleep(0.5)
    finally:
        parec.terminate()
        parec.wait(timeout=10)
    captured = np.fromfile(capture, dtype=np.float32)
    assert captured.size > 48_000
    assert aligned_correlation(take, 24_000, captured, 48_000) > 0.9


def test_a_recording_cut_off_by_a_crash_is_recovered(tmp_path: Path) -> None:
    folder = tmp_path / "recordings"
    recorder = Recorder(folder)
    raw = recorder.start("crashed")
    time.sleep(0.4)
    subprocess.run(["paplay", "--device=vsink", str(speech(tmp_path))], check=True, timeout=30)
    # simulate a crash: the process never calls stop(); only what reached the disk counts
    recorder._running.clear()
    recorder._stream.abort()
    assert recorder._writer is not None
    recorder._writer.join(timeout=5)
    left = unfinished_recordings(folder)
    assert left == [raw]
    wav = finish_recording(raw)
    audio, rate = sf.read(wav)
    assert rate == 48_000 and audio.size / rate > 1.0
    assert unfinished_recordings(folder) == []


@pytest.mark.parametrize("speed", [0.5, 3.0])
def test_streamed_playback_has_no_gaps(tmp_path: Path, speed: float) -> None:
    """A take made at half real time (or 3x) plays from the buffer without running dry."""
    take = voiced(3.0, 24_000, f0=150) * np.linspace(0.2, 1.0, 72_000, dtype=np.float32)
    pieces = [take[:1920]] + [take[i : i + 7680] for i in range(1920, take.size, 7680)]
    player = Player()
    capture = tmp_path / "captured.raw"
    parec = capture_sink(capture)
    try:
        playback = StreamingPlayback(player, 24_000, max_seconds=3.0)
        for piece in pieces:  # a generator making audio at `speed` x real time
            time.sleep(piece.size / 24_000 / speed)
            playback.feed(piece)
        playback.finish()
        assert player.wait(timeout=15)
        time.sleep(0.5)
    finally:
        parec.terminate()
        parec.wait(timeout=10)
    assert playback.error is None
    assert player.underruns == 0
    assert player.position == take.size
    if speed < 1:  # it waited for enough to be buffered; a fast one started almost at once
        assert playback.started_at is not None and playback.started_at > 1.0
    else:
        assert playback.started_at is not None and playback.started_at < 1.0
    captured = np.fromfile(capture, dtype=np.float32)
    assert aligned_correlation(take, 24_000, captured, 48_000) > 0.9


@pytest.mark.parametrize(
    "text",
    ["Say it while it is made.", "A first sentence is said. Then a second one streams after it."],
)
def test_clone_play_streams_the_take_to_the_output(
    tiny_model_dir: Path, tmp_path: Path, text: str
) -> None:
    """One sentence, and two said as one batch whose chunks stream in order."""
    from tests.conftest import run_cli

    ref = tmp_path / "ref.wav"
    sf.write(ref, voiced(3.0, 24_000, f0=140), 24_000)
    out = tmp_path / "take.wav"
    capture = tmp_path / "captured.raw"
    parec = capture_sink(capture)
    try:
        proc = run_cli(
            "clone",
            "--model",
            str(tiny_model_dir),
            "--ref",
            str(ref),
            "--ref-text",
            "Hello there, this is my voice.",
            "--text",
            text,
            "--out",
            str(out),
            "--max-seconds",
            "2",
            "--seed",
            "3",
            "--play",
        )
        time.sleep(0.5)
    finally:
        parec.terminate()
        parec.wait(timeout=10)
    assert proc.returncode == 0, proc.stderr
    assert "played while generating" in proc.stderr and " 0 gap(s)" in proc.stderr
    written, rate = sf.read(out, dtype="float32")
    captured = np.fromfile(capture, dtype=np.float32)
    # the random checkpoint's audio peaks well above full scale: the file clips it at 24 kHz,
    # the sound server after resampling to 48 kHz, so the two differ where it clips (~0.7 here;
    # unrelated audio gives ~0); the clean-signal stream test above holds the 0.9 bar
    heard = int((np.abs(captured) > 1e-3).sum()) / 48_000
    assert aligned_correlation(written, rate, captured, 48_000) > 0.6, (
        f"captured {captured.size / 48_000:.2f} s, {heard:.2f} s of it not silent, for a "
        f"{written.size / rate:.2f} s take; the CLI said: {proc.stderr[-400:]}"
    )


def test_a_stream_stops_feeding_once_the_player_plays_something_else() -> None:
    player = Player()
    playback = StreamingPlayback(player, 24_000, max_seconds=2.0)
    playback.feed(voiced(0.3, 24_000))
    other = voiced(0.5, 24_000, f0=200)
    player.play(other, 24_000)  # the user plays a take while the stream is still coming
    try:
        playback.feed(voiced(0.3, 24_000))
        playback.finish()
        assert player.length == other.size  # nothing of the stream appended to it
    finally:
        player.stop()
