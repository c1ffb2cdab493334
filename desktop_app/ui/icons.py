"""One set of icons for the transport and the actions: the style's own media and file icons
(so they match the light or dark look), plus a drawn record dot and star, which no standard
set has. In the code a label names its icon by the glyph it starts with ("▶ Play")."""

from __future__ import annotations

from typing import TypeVar

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap, QPolygonF
from PySide6.QtWidgets import QAbstractButton, QApplication, QStyle

GLYPHS = {"▶": "play", "❚❚": "pause", "■": "stop", "●": "record", "★": "star", "⟲": "loop"}
_STANDARD = {
    "play": QStyle.StandardPixmap.SP_MediaPlay,
    "pause": QStyle.StandardPixmap.SP_MediaPause,
    "stop": QStyle.StandardPixmap.SP_MediaStop,
    "loop": QStyle.StandardPixmap.SP_BrowserReload,
}


def icon(name: str) -> QIcon:
    """The icon called ``name`` (play, pause, stop, record, star, loop)."""
    if name in _STANDARD:
        return QApplication.style().standardIcon(_STANDARD[name])
    pixmap = QPixmap(32, 32)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    if name == "record":
        painter.setBrush(QColor(210, 40, 40))
        painter.drawEllipse(QPointF(16, 16), 10, 10)
    else:  # star
        import math

        painter.setBrush(QColor(230, 170, 20))
        points = [
            QPointF(
                16 + (13 if i % 2 == 0 else 5.5) * math.sin(i * math.pi / 5),
                17 - (13 if i % 2 == 0 else 5.5) * math.cos(i * math.pi / 5),
            )
            for i in range(10)
        ]
        painter.drawPolygon(QPolygonF(points))
    painter.end()
    return QIcon(pixmap)


Button = TypeVar("Button", bound=QAbstractButton)


def labelled(button: Button, label: str) -> Button:
    """Give ``button`` the icon its label's glyph names and the words after it as its text."""
    for glyph, name in GLYPHS.items():
        if label.startswith(glyph):
            button.setIcon(icon(name))
            label = label[len(glyph) :].strip()
            break
    button.setText(label)
    if label:
        button.setAccessibleName(label)
    return button
