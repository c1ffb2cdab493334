"""The studio window driven as a person would, offscreen, with the real worker thread and audio."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QFileDialog
from pytestqt.qtbot import QtBot

from desktop_app.audio.io import read_metadata
from desktop_app.config import SETTINGS_VERSION, Settings, load_settings, settings_file
from desktop_app.ui.app import build_window, smoke_clip
from desktop_app.ui.main_window import MainWindow
from tests.conftest import REPO
from tests.support.gui import drag_select, drop_file, speech_file
from tests.support.signals import voiced

pytestmark = pytest.mark.usefixtures("pulse")


def test_import_trim_generate_play_and_save(
    window: MainWindow, qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # import by drag and drop: a 6 s stereo 44.1 kHz file becomes a 24 kHz mono clip
    drop_file(window, speech_file(tmp_path))
    assert len(window.voice.clips) == 1
    clip = window.voice.clips[0]
    assert clip.seconds == pytest.approx(6.0, abs=0.01)

    # select about the middle 70 % with the mouse and trim to it; undo and redo
    view = window.voice.waveform
    drag_select(qtbot, view, int(view.width() * 0.15), int(view.width() * 0.85))
    start, end = view.selection
    assert (end - start) / 24_000 == pytest.approx(4.2, abs=0.1)
    qtbot.mouseClick(window.voice.tool_buttons["trim"], Qt.MouseButton.LeftButton)
    assert clip.seconds == pytest.approx((end - start) / 24_000)
    window.undo.undo()
    assert clip.seconds == pytest.approx(6.0, abs=0.01)
    window.undo.redo()
    trimmed = clip.seconds
    assert trimmed < 4.5

    # transcript next to the clip, the text to say, a short maximum length
    qtbot.keyClicks(window.voice.transcript, "Hello there, this is my voice.")
    assert clip.transcript == "Hello there, this is my voice."
    qtbot.keyClicks(window.say.text, "Say this in my voice.")
    window.say.max_seconds.setValue(1.2)
    with qtbot.waitSignal(window.take_ready, timeout=60_000) as made:
        qtbot.keyClick(window.say.text, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    take = made.args[0]
    assert take.result.frames == 15
    assert take.path.exists()  # kept on disk at once
    assert window.takes.take_list.count() == 1
    assert window.labels.rtf.text().startswith("last RTF: ")

    # play it: the playhead moves along and playback reaches the end
    heads: list[int] = []

    def finished_playing() -> bool:
        if window.takes.waveform.playhead is not None:
            heads.append(window.takes.waveform.playhead)
        return not window.player.playing and window.player.position >= take.result.audio.size

    qtbot.mouseClick(window.takes.play_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(finished_playing, timeout=10_000)
    # the playhead moves once per device block, and over PulseAudio a loaded machine's blocks
    # reach ~0.45 s (10 600 samples): a 1.2 s take then shows 2 positions, in order
    assert len(set(heads)) >= 2 and heads == sorted(heads)
    assert max(heads) > take.result.audio.size // 2

    # save as FLAC and read it back
    target = tmp_path / "keep.flac"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    qtbot.mouseClick(window.takes.save_button, Qt.MouseButton.LeftButton)
    audio, rate = sf.read(target, dtype="float32")
    assert rate == 24_000
    np.testing.assert_allclose(audio, np.clip(take.result.audio, -1, 1), atol=1e-4)  # PCM clips
    meta = read_metadata(target)
    assert meta["ai_generated"] == "yes"
    assert meta["title"] == "Say this in my voice."


def test_cancel_a_generation(window: MainWindow, qtbot: QtBot) -> None:
    window.voice.add_clip(smoke_clip())
    window.say.text.setPlainText("A long text that would take a while to say.")
    window.say.max_seconds.setValue(60.0)
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    frames: list[int] = []
    window.jobs.progressed.connect(lambda f, s: frames.append(f))
    qtbot.mouseClick(window.say.generate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(frames) >= 40, timeout=30_000)
    timer.stop()
    # the window kept handling events while the worker generated: no gap over 250 ms
    assert max(b - a for a, b in itertools.pairwise(ticks)) < 0.25
    assert window.generating
    assert not window.say.generate_button.isEnabled()
    with qtbot.waitSignal(window.generation_cancelled, timeout=30_000):
        qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert not window.generating
    assert window.say.generate_button.isEnabled()
    assert window.takes.take_list.count() == 0
    assert window.job_status.label.text() == "Cancelled."


def test_bad_input_reaches_the_error_dialog(
    window: MainWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    assert not window.say.generate_button.isEnabled()  # the button says why (test_new_user)
    window.generate()  # Ctrl+Return: the error dialog says it too
    assert "nothing to say" in window.errors.last_message
    assert window.errors.box is not None and window.errors.box.isVisible()
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all" * 100)
    drop_file(window, junk)
    assert "cannot decode" in window.errors.last_message
    assert window.voice.clips == []
    drop_file(window, speech_file(tmp_path))
    window.say.text.setPlainText("Hello.")
    window.generate()
    assert "clip 1 has no transcript" in window.errors.last_message
    assert not window.generating


def test_record_a_clip_from_the_microphone(
    window: MainWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    assert window.voice.input_device.count() > 0
    speech = tmp_path / "speech.wav"
    sf.write(speech, voiced(2.5, 24_000, f0=170), 24_000)
    qtbot.mouseClick(window.voice.record_button, Qt.MouseButton.LeftButton)
    assert window.voice.recorder is not None
    qtbot.waitUntil(lambda: window.voice.recorder.seconds > 0.3, timeout=5_000)  # type: ignore[union-attr]
    playing = subprocess.Popen(["paplay", "--device=vsink", str(speech)])
    try:
        # the meter follows the voice while it plays
        qtbot.waitUntil(lambda: window.voice.meter.level_db > -40, timeout=5_000)
    finally:
        assert playing.wait(timeout=30) == 0
    qtbot.mouseClick(window.voice.record_button, Qt.MouseButton.LeftButton)
    assert len(window.voice.clips) == 1
    clip = window.voice.clips[0]
    assert clip.source == "recorded"
    assert clip.seconds > 2.5
    assert clip.path is not None and clip.path.exists()


def test_settings_survive_a_restart(window: MainWindow, qtbot: QtBot, tiny_model_dir: Path) -> None:
    window.say.temperature.setValue(0.65)
    window.say.seed_lock.setChecked(True)
    window.say.seed.setValue(777)
    window.close()
    saved = json.loads(settings_file().read_text())
    assert (
        saved["version"] == SETTINGS_VERSION
        and saved["temperature"] == 0.65
        and saved["seed"] == 777
    )
    again = build_window(load_settings())
    qtbot.addWidget(again)
    assert again.say.temperature.value() == 0.65
    assert again.say.seed.value() == 777 and again.say.seed_lock.isChecked()
    again.close()


def test_missing_model_opens_the_setup_dialog(qtbot: QtBot, tiny_model_dir: Path) -> None:
    win = build_window(Settings())
    qtbot.addWidget(win)
    win.show()
    win.loader.load("sesame/csm-1b")  # not in the (empty) test cache
    dialog = win.loader.setup_dialog
    assert dialog.isVisible()
    dialog.use_folder(str(tiny_model_dir / "nope"))
    assert "model folder not found" in dialog.status.text()
    with qtbot.waitSignal(win.model_ready, timeout=60_000):
        dialog.use_folder(str(tiny_model_dir))
    assert win.settings.model == str(tiny_model_dir)
    win.close()


def test_smoke_test_command(tiny_model_dir: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "desktop_app",
            "--smoke-test",
            "--model",
            str(tiny_model_dir),
            "--screenshot",
            str(shot),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "smoke test passed" in proc.stdout
    assert shot.stat().st_size > 10_000


def test_a_take_plays_while_it_is_generated(window: MainWindow, qtbot: QtBot) -> None:
    window.voice.add_clip(smoke_clip())
    window.say.text.setPlainText("Hear this while it is being made.")
    window.say.max_seconds.setValue(2.0)
    assert window.say.play_live.isChecked()  # on by default
    pieces: list[int] = []
    window.jobs.chunk_ready.connect(lambda piece: pieces.append(piece.size))
    with qtbot.waitSignal(window.take_ready, timeout=60_000) as made:
        qtbot.mouseClick(window.say.generate_button, Qt.MouseButton.LeftButton)
    take = made.args[0]
    assert len(pieces) > 1 and sum(pieces) == take.result.audio.size
    playback = window.flow.playback
    assert playback is not None and playback.started_at is not None
    # what went to the output device is the take, sample for sample, and it plays to the end
    np.testing.assert_array_equal(window.player._audio[: window.player.length], take.result.audio)
    qtbot.waitUntil(lambda: not window.player.playing, timeout=15_000)
    assert window.player.position == take.result.audio.size
    assert window.player.underruns == 0
    assert "first audio after" in window.job_status.label.text()


def test_a_long_text_is_said_in_parts_and_one_part_made_again(
    window: MainWindow, qtbot: QtBot
) -> None:
    window.voice.add_clip(smoke_clip())
    window.say.text.setPlainText(
        "The morning train was late again, so I walked along the river. "
        "Could you bring the blue notebook from the kitchen table? "
        "Honestly, I did not expect the concert to be that good."
    )
    window.say.max_seconds.setValue(0.8)  # caps each part
    window.say.seed_lock.setChecked(True)
    with qtbot.waitSignal(window.take_ready, timeout=60_000) as made:
        qtbot.mouseClick(window.say.generate_button, Qt.MouseButton.LeftButton)
    take = made.args[0]
    assert len(take.result.parts) == 3 and "batch of 3" in take.result.engine
    panel = window.takes
    assert panel.part_picker.count() == 3 and panel.part_button.isVisibleTo(panel)
    panel.part_picker.setCurrentIndex(1)
    with qtbot.waitSignal(window.take_ready, timeout=60_000) as again:
        qtbot.mouseClick(panel.part_button, Qt.MouseButton.LeftButton)
    redone = again.args[0]
    assert panel.take_list.count() == 2
    old, new = take.result.parts, redone.result.parts
    assert new[0] == old[0] and new[2] == old[2]
    assert new[1].text == old[1].text and new[1].result.seed != old[1].result.seed
    start = old[0].result.audio.size
    np.testing.assert_array_equal(
        redone.result.audio[: start - 300], take.result.audio[: start - 300]
    )
    assert redone.request.text == take.request.text


def test_a_take_made_while_another_program_holds_the_library_is_kept_and_said(
    window: MainWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    """The history cannot take the row (another program holds the database past the wait):
    the take is still in the takes list and on disk, and the status bar says why."""
    from tests.support.locker import held

    assert window.library is not None
    drop_file(window, speech_file(tmp_path))
    qtbot.keyClicks(window.voice.transcript, "Hello there, this is my voice.")
    qtbot.keyClicks(window.say.text, "Said while the library is busy.")
    window.say.max_seconds.setValue(0.4)
    with (
        held(window.library.db_path),
        qtbot.waitSignal(window.take_ready, timeout=60_000) as made,
    ):
        window.generate()
    take = made.args[0]
    assert take.path.exists() and window.takes.take_list.count() == 1
    message = window.statusBar().currentMessage()
    assert message.startswith(f"Take kept at {take.path}, not in the history: the library is busy")
    assert window.library.takes.list() == []
