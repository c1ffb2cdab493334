"""Faults while working: the sound server dies mid-recording, a save fails, the window closes
during a generation. What was recorded or generated is never lost."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog
from pytestqt.qtbot import QtBot

from desktop_app.ui.app import build_window, smoke_clip
from desktop_app.ui.main_window import MainWindow
from tests.support.gui import generate
from tests.support.pulse import ensure_pulseaudio

pytestmark = pytest.mark.usefixtures("pulse")


def test_the_sound_server_dying_mid_recording_keeps_what_was_recorded(
    window: MainWindow, qtbot: QtBot
) -> None:
    voice = window.voice
    qtbot.mouseClick(voice.record_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: voice.recorder is not None and voice.recorder.seconds > 1.0, timeout=10_000
    )
    try:
        subprocess.run(["pulseaudio", "--kill"], check=True, timeout=10)  # the device is gone
        qtbot.waitUntil(lambda: not voice.record_button.isChecked(), timeout=10_000)
    finally:
        os.environ.pop("CSM_TEST_PULSE", None)
        assert ensure_pulseaudio() is None  # a fresh server for the tests that follow
    assert len(voice.clips) == 1 and voice.clips[0].seconds > 1.0
    assert "recording stopped early" in window.errors.last_message
    assert voice.clips[0].path is not None and voice.clips[0].path.exists()


def make_take(window: MainWindow, qtbot: QtBot) -> object:
    window.voice.add_clip(smoke_clip())
    return generate(window, qtbot, "Keep this take safe.")


def test_a_failed_save_leaves_no_partial_file_and_the_take_savable_elsewhere(
    window: MainWindow, qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    take = make_take(window, qtbot)
    # /proc refuses new files even to root: a real read-only place
    target = Path("/proc/self/take.wav")
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    qtbot.mouseClick(window.takes.save_button, Qt.MouseButton.LeftButton)
    assert "cannot" in window.errors.last_message.lower()
    assert not target.exists()
    # the take is still listed, playable and savable somewhere else
    assert window.takes.current is take
    good = tmp_path / "elsewhere.flac"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(good), ""))
    qtbot.mouseClick(window.takes.save_button, Qt.MouseButton.LeftButton)
    audio, _ = sf.read(good, dtype="float32")
    np.testing.assert_allclose(audio, np.clip(take.result.audio, -1, 1), atol=1e-4)  # type: ignore[attr-defined]
    qtbot.mouseClick(window.takes.play_button, Qt.MouseButton.LeftButton)
    assert window.player.playing


def test_closing_the_window_during_a_generation_shuts_down_cleanly(
    window: MainWindow, qtbot: QtBot
) -> None:
    window.voice.add_clip(smoke_clip())
    window.say.text.setPlainText("A long take that is still being made when the window closes.")
    window.say.max_seconds.setValue(60.0)
    frames: list[int] = []
    window.jobs.progressed.connect(lambda f, s: frames.append(f))
    qtbot.mouseClick(window.say.generate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(frames) >= 5, timeout=30_000)
    before = threading.active_count()
    window.close()
    assert not window.jobs.queue.alive  # the worker's thread stopped, nothing left running
    assert not window.player.playing
    assert threading.active_count() <= before


@pytest.mark.parametrize("stage", [1, 2, 3, 4])
def test_cancel_at_every_stage_of_a_take(tiny_model_dir: Path, stage: int) -> None:
    """Checks come after the voice is encoded, after the prefill, between frames, after the
    decode: a cancel at check N stops there, and the engine makes the next take as usual."""
    from desktop_app.errors import GenerationCancelled
    from desktop_app.inference import GenerationRequest, ReferenceClip, load_engine

    for name in ("fast", "transformers"):
        engine = load_engine(name, tiny_model_dir, "cpu")
        request = GenerationRequest(
            "Say this.", (ReferenceClip(smoke_clip().audio, "Hello."),), seed=3, max_seconds=0.16
        )  # two frames: checks are before prefill-end, prefill, frame 1, frame 2, decode
        checks: list[int] = []

        def stop_at(n: int = stage, checks: list[int] = checks) -> bool:
            checks.append(1)
            return len(checks) == n

        with pytest.raises(GenerationCancelled):
            engine.generate(request, should_stop=stop_at)
        assert len(checks) == stage
        assert engine.generate(request).frames == 2


def test_cancel_while_the_model_loads(qtbot: QtBot, tiny_model_dir: Path) -> None:
    from desktop_app.config import Settings

    window = build_window(Settings())
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.generation_cancelled, timeout=60_000):
        window.loader.load(str(tiny_model_dir))
        assert window.job_status.cancel_button.isEnabled()
        qtbot.mouseClick(window.job_status.cancel_button, Qt.MouseButton.LeftButton)
    assert window.engine_info is None and window.jobs.worker.engine is None
    assert not window.say.generate_button.isEnabled()
    assert window.labels.model.text() == "model: not loaded (cancelled)"
    with qtbot.waitSignal(window.model_ready, timeout=60_000):  # loading again works
        window.loader.load(str(tiny_model_dir))
    assert window.not_ready().startswith("Record or import")  # the model is there
    window.close()


def test_out_of_memory_in_the_fast_engine_retries_on_the_cpu(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No GPU here: the out-of-memory error is injected into the first frame."""
    import torch

    from desktop_app.inference import GenerationRequest, ReferenceClip, load_engine
    from desktop_app.inference.hf_engine import CPU_FALLBACK_NOTICE

    engine = load_engine("fast", tiny_model_dir, "cpu")
    state = engine.decoder.single
    real_frame = state.frame
    calls = {"n": 0}

    def flaky_frame(kv_len: int | None) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        real_frame(kv_len)

    monkeypatch.setattr(state, "frame", flaky_frame)
    request = GenerationRequest(
        "Say this.", (ReferenceClip(smoke_clip().audio, "Hello."),), seed=3, max_seconds=0.4
    )
    result = engine.generate(request)
    assert result.notices[:1] == (CPU_FALLBACK_NOTICE,) and result.device == "cpu"
    assert result.frames == 5


@pytest.mark.parametrize("what", ["input", "output"])
def test_a_missing_audio_device_gets_a_clear_error(
    window: MainWindow, qtbot: QtBot, what: str
) -> None:
    if what == "input":
        window.voice.input_device.addItem("Unplugged USB microphone")
        window.voice.input_device.setCurrentText("Unplugged USB microphone")
        qtbot.mouseClick(window.voice.record_button, Qt.MouseButton.LeftButton)
        assert not window.voice.record_button.isChecked() and window.voice.recorder is None
        assert "cannot open the input device" in window.errors.last_message
    else:
        take = make_take(window, qtbot)
        window.player.stop()
        window.takes.output_device.addItem("Unplugged headphones")
        window.takes.output_device.setCurrentText("Unplugged headphones")
        qtbot.mouseClick(window.takes.play_button, Qt.MouseButton.LeftButton)
        assert "cannot play on the output device" in window.errors.last_message
        assert window.takes.current is take  # the take is still there


def _oom_after(part: Any, method: str, calls_before: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """``part.<method>`` (a part of an engine) raises CUDA's out-of-memory error once, on call
    ``calls_before + 1``."""
    import torch

    real = getattr(part, method)
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == calls_before + 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(*args, **kwargs)

    monkeypatch.setattr(part, method, flaky)


def test_a_streamed_take_that_runs_out_of_memory_half_way_sends_only_what_is_new(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retry on the CPU makes the take again from the start; what was already played is
    not sent again, and the pieces, joined, are still the take."""
    from desktop_app.inference import GenerationRequest, ReferenceClip, load_engine
    from desktop_app.inference.hf_engine import CPU_FALLBACK_NOTICE

    engine = load_engine("fast", tiny_model_dir, "cpu")
    request = GenerationRequest(
        "Say this.", (ReferenceClip(smoke_clip().audio, "Hello."),), seed=3, max_seconds=1.6
    )
    plain = engine.generate(request)
    _oom_after(
        engine.decoder.single, "frame", 10, monkeypatch
    )  # after 10 of the 20 frames: 2-3 pieces sent
    pieces: list[np.ndarray] = []
    result = engine.generate(request, on_audio=lambda piece: pieces.append(piece.copy()))
    assert result.notices[:1] == (CPU_FALLBACK_NOTICE,)
    joined = np.concatenate(pieces)
    np.testing.assert_array_equal(joined, result.audio)  # what was heard is the take
    assert joined.size == plain.audio.size == 20 * 1920  # nothing was sent twice
    np.testing.assert_allclose(joined, plain.audio, atol=1e-4)  # same seed, same device: same take


def test_a_batch_that_runs_out_of_memory_is_made_again_on_the_cpu(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from desktop_app.inference import GenerationRequest, ReferenceClip, load_engine
    from desktop_app.inference.batch import generate_batch
    from desktop_app.inference.hf_engine import CPU_FALLBACK_NOTICE

    engine = load_engine("fast", tiny_model_dir, "cpu")
    clip = (ReferenceClip(smoke_clip().audio, "Hello."),)
    requests = [
        GenerationRequest(text, clip, temperature=0, max_seconds=seconds)
        for text, seconds in (("One line here.", 0.8), ("A second, longer line.", 1.6))
    ]
    plain = generate_batch(engine, requests)
    _oom_after(
        engine.decoder, "frame_codes", 12, monkeypatch
    )  # row 0 (10 frames) streamed, row 1 not
    pieces: list[tuple[int, np.ndarray]] = []
    rows = generate_batch(engine, requests, on_part_audio=lambda i, p: pieces.append((i, p.copy())))
    for index, (row, alone) in enumerate(zip(rows, plain, strict=True)):
        assert row.notices[:1] == (CPU_FALLBACK_NOTICE,)
        np.testing.assert_array_equal(row.codes, alone.codes)
        joined = np.concatenate([p for i, p in pieces if i == index])
        np.testing.assert_array_equal(joined, row.audio)  # each take is what was streamed
        assert joined.size == alone.audio.size  # once, not twice
