"""Driving the window as a person would: drag and drop, mouse selections, test speech files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from desktop_app.ui.main_window import MainWindow
from tests.support.signals import voiced, with_silence


def drop_file(window: MainWindow, path: Path) -> None:
    """Drag a file from the file manager and drop it on the window."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    where = QPointF(window.width() / 2, window.height() / 2)
    enter = QDragEnterEvent(
        where.toPoint(),  # PySide6 6.11 (pinned) takes the integer point here
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    drop = QDropEvent(
        where,
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(window, drop)


def speech_file(folder: Path, seconds: float = 4.0) -> Path:
    path = folder / "my-voice.wav"
    signal = with_silence(voiced(seconds, 44_100), 44_100, 1.0, 1.0)
    sf.write(path, np.stack([signal, signal * 0.8], axis=1), 44_100)
    return path


def drag_select(qtbot: QtBot, view: object, x0: int, x1: int) -> None:
    y = view.height() // 2  # type: ignore[attr-defined]
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=QPoint(x0, y))
    qtbot.mouseMove(view, QPoint((x0 + x1) // 2, y))
    qtbot.mouseMove(view, QPoint(x1, y))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=QPoint(x1, y))


def generate(window: MainWindow, qtbot: QtBot, text: str, seconds: float = 0.8) -> Any:
    """Type ``text`` (a voice first, when the window has none), press Generate, and return
    the take once it is listed."""
    if not window.voice.clips:
        from desktop_app.ui.app import smoke_clip

        window.voice.add_clip(smoke_clip())
    window.say.text.setPlainText(text)
    window.say.max_seconds.setValue(seconds)
    with qtbot.waitSignal(window.take_ready, timeout=60_000) as made:
        qtbot.mouseClick(window.say.generate_button, Qt.MouseButton.LeftButton)
    return made.args[0]
