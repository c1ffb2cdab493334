"""The window as an audio person expects it: takes that last across a restart, rows one can
scan with the settings in a tooltip, a star kept in the history."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from pytestqt.qtbot import QtBot

from desktop_app.config import Settings
from desktop_app.ui.app import build_window, smoke_clip
from desktop_app.ui.main_window import MainWindow


def test_the_sessions_takes_are_back_after_a_restart_with_their_star(
    window: MainWindow, qtbot: QtBot, tiny_model_dir: Path
) -> None:
    window.voice.add_clip(smoke_clip())
    window.say.max_seconds.setValue(0.6)
    made = []
    for text in ("The first take.", "The second take."):
        window.say.text.setPlainText(text)
        with qtbot.waitSignal(window.take_ready, timeout=60_000) as ready:
            window.generate()
        made.append(ready.args[0])
    takes = window.takes
    takes.take_list.setCurrentRow(0)
    takes.star_button.click()
    assert takes.take_list.item(0).text().endswith("★")
    row = takes.take_list.item(1).text()
    assert "“The second take.”" in row and "0.6 s" in row and "seed" not in row
    assert f"seed {made[1].result.seed}" in takes.take_list.item(1).toolTip()
    assert window.library is not None
    assert window.library.takes.get(made[0].record_id).favourite  # the star is in the history too

    again = build_window(Settings(model=str(tiny_model_dir)))  # a restart: a new window
    qtbot.addWidget(again)
    restored = again.takes.takes
    assert [t.request.text for t in restored] == ["The first take.", "The second take."]
    assert [t.favourite for t in restored] == [True, False]
    assert all(t.restored for t in restored)
    np.testing.assert_allclose(restored[1].result.audio, made[1].result.audio, atol=1e-4)
    assert restored[1].result.seed == made[1].result.seed
    assert "from an earlier session" in again.takes.take_list.item(1).toolTip()
    assert again.takes.take_list.currentRow() == 1  # the last one is shown


def test_clean_up_removes_only_files_nothing_uses_nor_an_undo_could_bring_back(
    window: MainWindow,
) -> None:
    from desktop_app.ui.library_panels import DeleteVoice
    from tests.support.signals import voiced

    library = window.library
    assert library is not None
    library.voices.add("Kept", [(voiced(2.0, 24_000, seed=1), "Kept.", "imported")])
    library.voices.add("Gone", [(voiced(2.0, 24_000, seed=2), "Gone.", "imported")])
    gone_clip = library.voices.get("Gone").clips[0].file
    orphan = library.files.store_audio(voiced(1.0, 24_000, seed=3), 24_000)  # used by nothing
    codes = library.files.store_codes(np.zeros((3, 4), np.int64))  # nor this
    window.library_box.refresh()
    window.undo.push(DeleteVoice(window.library_box, "Gone"))  # undoable this session
    assert (
        window.housekeeping.clean_up_plan() == []
    )  # all written moments ago: another program may use them
    hour_ago = time.time() - 3600
    for file in library.audio_dir.rglob("*.*"):
        os.utime(file, (hour_ago, hour_ago))
    plan = window.housekeeping.clean_up_plan()
    assert sorted(plan) == sorted([orphan, codes])
    count, size = window.housekeeping.clean_up(plan)
    assert count == 2 and size > 0
    assert not orphan.exists() and gone_clip.exists()
    assert library.voices.get("Kept").clips[0].file.exists()
    window.undo.undo()  # the deleted voice comes back, with its audio
    assert library.voices.get("Gone").clips[0].audio().size == 48_000


def test_dark_and_light_and_f1_lists_every_shortcut(window: MainWindow, qtbot: QtBot) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QPalette
    from PySide6.QtWidgets import QApplication, QTableWidget

    def window_lightness() -> int:
        return QApplication.palette().color(QPalette.ColorRole.Window).lightness()

    window.menu_actions["scheme-dark"].trigger()
    assert window.settings.color_scheme == "dark" and window_lightness() < 80
    waveform = window.takes.waveform  # the widgets follow (the change reaches them as an event)
    qtbot.waitUntil(lambda: waveform.palette().color(QPalette.ColorRole.Base).lightness() < 80)
    window.menu_actions["scheme-light"].trigger()
    assert window_lightness() > 180
    window.menu_actions["scheme-system"].trigger()  # offscreen has no scheme: light
    assert window.settings.color_scheme == "system" and window_lightness() > 180

    qtbot.keyClick(window, Qt.Key.Key_F1)
    qtbot.waitUntil(lambda: getattr(window, "shortcuts_dialog", None) is not None)
    table = window.shortcuts_dialog.findChild(QTableWidget)
    rows = {table.item(r, 0).text(): table.item(r, 1).text() for r in range(table.rowCount())}
    for keys in (
        "F1",
        "Ctrl+R",
        "Space",
        "Ctrl+Return",
        "Esc",
        "Ctrl+Z",
        "Ctrl+Shift+R",
        "Ctrl+L",
        "Ctrl+E",
        "Ctrl+D",
    ):
        assert keys in rows, keys
    assert "recording" in rows["Ctrl+R"] and rows["Ctrl+Shift+R"].startswith("Regenerate")
    assert len(rows) == len(set(rows))  # each listed once (an ambiguous key would fire neither)
