"""The Qt binding itself: a regression guard for PySide6 6.12.0's reference leak of None."""

from __future__ import annotations

import sys

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QListWidget, QTreeWidget, QTreeWidgetItem
from pytestqt.qtbot import QtBot


def test_void_qt_calls_keep_none_alive(qtbot: QtBot) -> None:
    """PySide6 6.12.0 took a reference from None per void call; the window makes thousands."""
    label, listing, tree = QLabel(), QListWidget(), QTreeWidget()
    for widget in (label, listing, tree):
        qtbot.addWidget(widget)
    item = QTreeWidgetItem(["take"])
    tree.addTopLevelItem(item)
    before = sys.getrefcount(None)
    for number in range(2_000):
        label.setText(str(number))
        listing.addItem("clip")
        item.setData(0, Qt.ItemDataRole.UserRole, number)
    assert sys.getrefcount(None) >= before - 50  # the leak took 6 000 here
