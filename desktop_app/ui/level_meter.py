"""An input level meter in dBFS with a clip indicator that holds for a moment."""

from __future__ import annotations

import time

from PySide6.QtCore import QRectF, QSize
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QWidget

from desktop_app.audio import dsp

FLOOR_DB = -60.0
CLIP_PEAK = 0.999
CLIP_HOLD_S = 1.5


class LevelMeter(QWidget):
    """Horizontal bar from -60 dBFS to 0 dBFS; red "CLIP" when a peak reaches full scale."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(160, 16)
        self.level_db = FLOOR_DB
        self._clipped_at = 0.0
        self.setToolTip("Input level (dBFS). Keep peaks below -6 dBFS; CLIP means too loud.")

    def set_peak(self, peak: float) -> None:
        """Show a linear peak amplitude (1.0 = full scale)."""
        self.level_db = max(FLOOR_DB, dsp.dbfs(peak)) if peak > 0 else FLOOR_DB
        if peak >= CLIP_PEAK:
            self._clipped_at = time.monotonic()
        self.update()

    @property
    def clipping(self) -> bool:
        return time.monotonic() - self._clipped_at < CLIP_HOLD_S

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        return QSize(220, 18)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        rect = self.rect()
        painter.fillRect(rect, self.palette().color(QPalette.ColorRole.Base))
        clip_width = 34
        bar = QRectF(rect.x(), rect.y(), rect.width() - clip_width - 2, rect.height())
        fraction = (self.level_db - FLOOR_DB) / -FLOOR_DB
        color = QColor(60, 180, 75) if self.level_db < -12 else QColor(230, 190, 40)
        if self.level_db > -3:
            color = QColor(220, 60, 50)
        painter.fillRect(QRectF(bar.x(), bar.y(), bar.width() * fraction, bar.height()), color)
        painter.setPen(self.palette().color(QPalette.ColorRole.Text))
        painter.drawText(bar.adjusted(4, 0, 0, 0), 0x0081, f"{self.level_db:.0f} dBFS")
        clip = QRectF(bar.right() + 2, rect.y(), clip_width, rect.height())
        painter.fillRect(clip, QColor(220, 40, 40) if self.clipping else QColor(90, 90, 90))
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(clip, 0x0084, "CLIP")
        painter.end()
