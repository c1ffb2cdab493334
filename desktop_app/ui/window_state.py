"""The window's size, place and pane layout across runs: restored only when they fit the screen
the window opens on (and are not shrunk below a usable size), else a size that fits it."""

from __future__ import annotations

import base64

from PySide6.QtCore import QByteArray
from PySide6.QtWidgets import QMainWindow, QSplitter

from desktop_app.config import Settings

DEFAULT_SIZE = (1280, 820)  # the first size, when it fits the screen
MIN_SIZE = (900, 560)  # a saved size smaller than this (or the screen) is not restored


def restore(window: QMainWindow, splitter: QSplitter, settings: Settings) -> None:
    """Put the saved geometry back when it fits the screen and is usable; else a fitting size,
    centred; then the panes' split."""
    screen = window.screen().availableGeometry()
    restored = bool(settings.window_geometry) and window.restoreGeometry(
        QByteArray(base64.b64decode(settings.window_geometry))
    )
    frame = window.frameGeometry()
    usable = frame.width() >= min(MIN_SIZE[0], screen.width()) and frame.height() >= min(
        MIN_SIZE[1], screen.height()
    )
    if not (restored and screen.contains(frame) and usable):
        width = min(DEFAULT_SIZE[0], screen.width() - 16)
        height = min(DEFAULT_SIZE[1], screen.height() - 48)  # room for the title bar
        window.setGeometry(
            screen.x() + (screen.width() - width) // 2,
            screen.y() + (screen.height() - height) // 2,
            width,
            height,
        )
    if settings.window_state:
        splitter.restoreState(QByteArray(base64.b64decode(settings.window_state)))


def store(window: QMainWindow, splitter: QSplitter, settings: Settings) -> None:
    """Copy the window's geometry and the panes' split into ``settings``."""
    settings.window_geometry = base64.b64encode(bytes(window.saveGeometry().data())).decode()
    settings.window_state = base64.b64encode(bytes(splitter.saveState().data())).decode()
