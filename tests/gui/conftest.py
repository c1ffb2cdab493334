"""The studio window with the tiny checkpoint loaded, for the GUI tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from desktop_app.config import Settings
from desktop_app.ui.main_window import MainWindow


@pytest.fixture
def window(qtbot: QtBot, tiny_model_dir: Path) -> MainWindow:
    win = MainWindow(Settings(model=str(tiny_model_dir)))
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.model_ready, timeout=60_000):
        win.load_model(str(tiny_model_dir))
    return win
