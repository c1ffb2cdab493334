"""The window at 1024x700: nothing outside its parent (a pane that does not fit scrolls), and
every control with a tooltip and an accessible name."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractScrollArea,
    QAbstractSpinBox,
    QComboBox,
    QLineEdit,
    QScrollBar,
    QTabBar,
    QWidget,
)
from pytestqt.qtbot import QtBot

from desktop_app.ui.main_window import MainWindow


def qt_internal(widget: QWidget) -> bool:
    """A part Qt makes of another widget (a spin box's editor, a tab bar's arrows, ...)."""
    parent = widget.parentWidget()
    return (
        widget.objectName().startswith("qt_")
        or isinstance(parent, QAbstractSpinBox | QComboBox | QTabBar | QScrollBar | QLineEdit)
        or isinstance(widget, QScrollBar)
    )


def scrolled(widget: QWidget) -> bool:
    """Content of a scroll area: it may be larger than what shows; the area scrolls."""
    parent = widget.parentWidget()
    grand = parent.parentWidget() if parent is not None else None
    return isinstance(grand, QAbstractScrollArea) and parent is grand.viewport()


def test_the_window_fits_1024_by_700_and_every_control_is_described(
    window: MainWindow, qtbot: QtBot
) -> None:
    window.resize(1024, 700)
    qtbot.waitUntil(lambda: window.width() == 1024 and window.height() == 700)
    for tab in range(window.tabs.count()):
        window.tabs.setCurrentIndex(tab)
        qtbot.wait(20)
        outside = [
            (type(w).__name__, w.accessibleName() or getattr(w, "text", lambda: "")())
            for w in window.findChildren(QWidget)
            if w.isVisible()
            and w.parentWidget() is not None
            and not qt_internal(w)
            and not scrolled(w)
            and not w.parentWidget().rect().contains(w.geometry())
        ]
        assert outside == [], window.tabs.tabText(tab)
    undescribed = [
        (type(w).__name__, getattr(w, "text", lambda: "")())
        for w in window.findChildren(QWidget)
        if isinstance(w, QAbstractButton | QComboBox | QLineEdit | QAbstractSpinBox)
        and not qt_internal(w)
        and not (
            w.toolTip()
            and (
                w.accessibleName() or (isinstance(w, QAbstractButton) and w.text().strip("▶■★⟲ +−"))
            )
        )
    ]
    assert undescribed == []
