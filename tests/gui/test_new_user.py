"""The window as a new user meets it (issue 29): it fits the screen, Generate says why it is
off, progress never lies, closing mid-take asks, and the typed text survives a restart."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QScrollArea
from pytestqt.qtbot import QtBot

from desktop_app.config import Settings, load_settings
from desktop_app.ui.app import build_window
from desktop_app.ui.job_status import JobStatus
from desktop_app.ui.main_window import MainWindow
from tests.support.gui import drop_file, speech_file


def geometry_of(qtbot: QtBot, width: int, height: int) -> str:
    """The saved geometry of a window of ``width`` x ``height`` (as the settings keep it)."""
    other = build_window(Settings())
    qtbot.addWidget(other)
    other.setGeometry(0, 0, width, height)
    saved = base64.b64encode(bytes(other.saveGeometry().data())).decode()
    other.close()
    return saved


def test_the_window_opens_within_the_screen_whatever_was_saved(qtbot: QtBot) -> None:
    for saved in ("", geometry_of(qtbot, 3000, 2000), geometry_of(qtbot, 400, 200)):
        win = build_window(Settings(window_geometry=saved))
        qtbot.addWidget(win)
        screen = win.screen().availableGeometry()
        frame = win.frameGeometry()
        assert screen.contains(frame), (saved[:8], frame, screen)
        assert frame.width() >= min(900, screen.width() - 16) * 0.9  # not shrunk to a strip
        win.close()


def test_generate_says_why_it_is_off_until_a_voice_and_a_text_are_ready(
    window: MainWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    say = window.say
    assert not say.generate_button.isEnabled()
    assert say.reason.text() == "Record or import a clip of the voice first."
    drop_file(window, speech_file(tmp_path))
    assert "Give clip 1 its transcript" in say.reason.text()
    window.voice.transcript.setPlainText("Hello there, this is my voice.")
    assert say.reason.text() == "Type what the voice should say."
    say.text.setPlainText("Say this.")
    assert say.generate_button.isEnabled() and not say.reason.isVisible()
    seed = say.seed.value()
    say.text.setPlainText("   ")
    qtbot.keyClick(window, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert "nothing to say" in window.errors.last_message  # the keyboard still says why
    assert say.seed.value() == seed  # nothing was made: the seed is as it was


def test_progress_says_what_is_known_and_never_a_negative_time() -> None:
    now = [100.0]
    status = JobStatus(clock=lambda: now[0])
    status.counting(100, "Preparing the voice prompt…")
    now[0] += 30.0  # a slow first frame (the prompt) is no rate
    status.frames(1, 0.08)
    assert "left" not in status.label.text() and status.label.text().startswith("1 frames made")
    for frame in range(2, 12):
        now[0] += 0.5
        status.frames(frame, frame * 0.08)
    assert "at most 44 s left" in status.label.text()  # 89 frames at 2 per second
    status.frames(150, 12.0)  # past the cap (a conversation's line): never negative
    assert "-" not in status.label.text() and "at most 0 s left" in status.label.text()
    status.busy("Speaking 3 line(s)…")
    status.context = "Line 2 of 3"
    for frame in range(1, 20):
        now[0] += 0.5
        status.frames(frame, frame * 0.08)
    text = status.label.text()
    assert text.startswith("Line 2 of 3: 19 frames made") and "left" not in text  # no total


def test_a_long_status_wraps_instead_of_widening_the_pane(window: MainWindow, qtbot: QtBot) -> None:
    window.resize(1366, 740)
    qtbot.wait(50)
    panes = window.findChildren(QScrollArea)[:2]
    before = [
        (p.widget().minimumSizeHint().width(), p.horizontalScrollBar().isVisible()) for p in panes
    ]
    width = window.width()
    window.job_status.say("A very long status line that goes on and on. " * 20)
    qtbot.wait(50)
    after = [
        (p.widget().minimumSizeHint().width(), p.horizontalScrollBar().isVisible()) for p in panes
    ]
    assert window.width() == width and after == before  # no wider pane, no new scroll bar
    assert window.job_status.label.toolTip().startswith("A very long status line")


def test_closing_mid_take_asks_and_the_text_comes_back(
    window: MainWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    from desktop_app.ui.app import smoke_clip

    window.voice.add_clip(smoke_clip())
    window.say.text.setPlainText("A long take that is still being made when the user quits.")
    window.say.max_seconds.setValue(60.0)
    frames: list[int] = []
    window.jobs.progressed.connect(lambda f, s: frames.append(f))
    window.generate()
    qtbot.waitUntil(lambda: len(frames) >= 3, timeout=30_000)
    asked: list[str] = []
    window.confirm_quit = lambda question: asked.append(question) or False
    window.close()
    assert asked == ["A take is being made: stop it and quit?"]
    assert window.isVisible() and window.generating  # "No": the take goes on
    window.confirm_quit = lambda question: True
    with qtbot.waitSignal(window.generation_cancelled, timeout=30_000):
        window.close()
    assert not window.isVisible()
    again = build_window(load_settings())
    qtbot.addWidget(again)
    assert again.say.text.toPlainText().startswith("A long take that is still being made")


def test_saving_a_take_says_where_it_went(
    window: MainWindow, qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtGui import QDesktopServices
    from PySide6.QtWidgets import QFileDialog

    from tests.support.gui import generate

    generate(window, qtbot, "Keep this one.")
    target = tmp_path / "kept" / "mine.flac"
    target.parent.mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    window.takes.save_dialog()
    assert target.exists()
    assert window.statusBar().currentMessage() == f"Take saved: {target}"
    assert window.file_notice.button.isVisible()
    opened: list[str] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()))
    qtbot.mouseClick(window.file_notice.button, Qt.MouseButton.LeftButton)
    assert opened == [str(target.parent)]
    window.statusBar().clearMessage()
    assert not window.file_notice.button.isVisible()
