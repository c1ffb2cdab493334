"""Waveforms an audio person can read: a time ruler that adapts to the zoom, click to move the
playhead, drag or Shift+click to select, zoom to the selection, a spectrogram computed off the
UI thread, and a take looped."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, Qt
from pytestqt.qtbot import QtBot

from desktop_app.ui.app import smoke_clip
from desktop_app.ui.main_window import MainWindow
from desktop_app.ui.waveform_view import LABEL_SPACING, RULER, WaveformView, tick_label

RATE = 24_000


def shown(qtbot: QtBot, seconds: float, audio: np.ndarray | None = None) -> WaveformView:
    view = WaveformView()
    qtbot.addWidget(view)
    view.resize(600, 120)
    view.show()
    qtbot.waitExposed(view)
    signal = audio if audio is not None else np.zeros(round(seconds * RATE), np.float32)
    view.set_audio(signal, RATE)
    return view


def test_the_ruler_labels_seconds_and_adapts_to_the_zoom(qtbot: QtBot) -> None:
    view = shown(qtbot, 30.0)
    # the whole 30 s in 600 px: a label every 5 s, none closer than LABEL_SPACING pixels
    labels = [label for _, label in view.ruler_ticks()]
    assert labels[:4] == ["0", "5", "10", "15"]
    xs = [x for x, _ in view.ruler_ticks()]
    assert min(np.diff(xs)) >= LABEL_SPACING
    # zoomed to 1 ms a pixel: a label every 0.1 s, with its decimal
    view.zoom(24 / view.samples_per_pixel, 0)
    assert view.samples_per_pixel == 24
    assert [label for _, label in view.ruler_ticks()][:3] == ["0.0", "0.1", "0.2"]
    # scrolled on: the labels follow the view
    view.scroll_by(6000)  # 6000 px = 6 s at this zoom
    assert view.ruler_ticks()[0][1] == "6.0"
    assert tick_label(75.5, 0.5) == "1:15.5" and tick_label(120, 10) == "2:00"


def test_click_moves_the_playhead_drag_and_shift_click_select(qtbot: QtBot) -> None:
    view = shown(qtbot, 6.0)
    y = RULER + 40
    with qtbot.waitSignal(view.seek_requested) as seek:
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(300, y))
    assert seek.args[0] == view.sample_at(300) and view.playhead == view.sample_at(300)
    assert view.selection[1] == view.selection[0]  # a click selects nothing
    # Shift+click selects from the playhead to there
    qtbot.mouseClick(
        view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, QPoint(450, y)
    )
    assert view.selection == (view.sample_at(300), view.sample_at(450))
    # a drag selects
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=QPoint(100, y))
    qtbot.mouseMove(view, QPoint(200, y))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=QPoint(200, y))
    assert view.selection == (view.sample_at(100), view.sample_at(200))
    # zoom to the selection: it fills the view
    start, end = view.selection
    view.zoom_to_selection()
    assert view.offset == start
    assert abs(view.sample_at(view.width()) - end) <= view.samples_per_pixel


def test_the_spectrogram_is_computed_off_the_ui_thread_and_shows_a_tone(qtbot: QtBot) -> None:
    tone = (0.5 * np.sin(2 * np.pi * 3000 * np.arange(2 * RATE) / RATE)).astype(np.float32)
    view = shown(qtbot, 2.0, tone)
    assert view.spectrogram_at(64) is None  # asked: it is being made on another thread
    view.show_spectrogram(True)
    qtbot.waitUntil(lambda: view.spectrogram_at(max(64, int(view.samples_per_pixel))) is not None)
    image = view.spectrogram_at(max(64, int(view.samples_per_pixel)))
    assert image is not None and image.shape[0] == 256
    loudest = int(np.argmax(image.mean(axis=1)))
    expected = 255 - round(3000 / (RATE / 512))  # the 3 kHz bin, low frequencies at the bottom
    assert abs(loudest - expected) <= 1
    view.grab()  # it paints


def test_a_take_loops_and_plays_from_a_click(window: MainWindow, qtbot: QtBot) -> None:
    window.voice.add_clip(smoke_clip())
    window.say.text.setPlainText("Loop me.")
    window.say.max_seconds.setValue(0.8)
    with qtbot.waitSignal(window.take_ready, timeout=60_000):
        window.generate()
    takes = window.takes
    size = takes.current.result.audio.size  # type: ignore[union-attr]
    takes.waveform.set_selection(size // 4, size // 2)
    takes.loop_button.setChecked(True)
    sessions = window.player.session
    takes.toggle_play()
    qtbot.waitUntil(lambda: window.player.session >= sessions + 3, timeout=10_000)
    assert window.player.length == size // 2  # the selection's end
    takes.stop()
    takes.loop_button.setChecked(False)
    takes.waveform.set_selection(0, 0)
    takes.seek(size // 2)
    takes.toggle_play()
    assert window.player.position >= size // 2  # Play starts at the clicked place
    takes.stop()
