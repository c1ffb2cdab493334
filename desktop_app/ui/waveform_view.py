"""A waveform drawn from min/max peaks: zoom, scroll, select a region, show a playhead.

Peaks are computed once per zoom level (samples per pixel) for the whole clip and cached, so
painting never touches raw samples (the Sonic Visualiser way).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPalette, QWheelEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from desktop_app.audio import dsp


class WaveformView(QWidget):
    """Shows one mono signal; emits the selected sample range."""

    selection_changed = Signal(int, int)  # start, end (end == start: no selection)
    cursor_moved = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumHeight(70)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self._audio = np.zeros(0, dtype=np.float32)
        self.rate = 24_000
        self._peaks: dict[int, np.ndarray] = {}
        self._spp = 1.0  # samples per pixel
        self._offset = 0  # first visible sample
        self._fit = True
        self._selection = (0, 0)
        self._drag_from: int | None = None
        self._playhead: int | None = None

    # -- content -------------------------------------------------------------------------------

    def set_audio(self, audio: np.ndarray, rate: int, keep_view: bool = False) -> None:
        """Show ``audio``; resets the zoom to fit unless ``keep_view``."""
        self._audio = np.asarray(audio, dtype=np.float32)
        self.rate = rate
        self._peaks.clear()
        self._selection = (0, 0)
        self._playhead = None
        if not keep_view:
            self._fit = True
        self._clamp_view()
        self.update()

    @property
    def audio(self) -> np.ndarray:
        return self._audio

    def peaks_at(self, samples_per_pixel: int) -> np.ndarray:
        """Min/max pairs for the whole signal at one zoom level (cached)."""
        key = max(1, int(samples_per_pixel))
        if key not in self._peaks:
            bins = max(1, -(-self._audio.size // key))
            self._peaks[key] = dsp.peaks(self._audio, bins)
        return self._peaks[key]

    # -- view ----------------------------------------------------------------------------------

    @property
    def samples_per_pixel(self) -> float:
        return self._spp

    @property
    def offset(self) -> int:
        return self._offset

    def _fit_spp(self) -> float:
        return float(max(1, -(-self._audio.size // max(1, self.width()))))

    def _clamp_view(self) -> None:
        """Keep the zoom a whole number of samples per pixel and the view inside the signal."""
        if self._fit:
            self._spp = self._fit_spp()
        self._spp = float(min(max(1, round(self._spp)), self._fit_spp()))
        visible = int(self._spp * max(1, self.width()))
        self._offset = int(min(max(0, self._offset), max(0, self._audio.size - visible)))

    def zoom(self, factor: float, anchor_x: float | None = None) -> None:
        """Zoom in (factor < 1: fewer samples per pixel) around ``anchor_x`` (pixels)."""
        anchor_x = self.width() / 2 if anchor_x is None else anchor_x
        anchor = self.sample_at(anchor_x)
        self._fit = False
        self._spp = self._spp * factor
        self._clamp_view()
        self._offset = int(anchor - anchor_x * self._spp)
        if self._spp >= self._fit_spp():
            self._fit = True
        self._clamp_view()
        self.update()

    def zoom_in(self) -> None:
        self.zoom(0.5)

    def zoom_out(self) -> None:
        self.zoom(2.0)

    def zoom_fit(self) -> None:
        self._fit = True
        self._clamp_view()
        self.update()

    def scroll_by(self, pixels: float) -> None:
        self._offset += int(pixels * self._spp)
        self._clamp_view()
        self.update()

    def sample_at(self, x: float) -> int:
        """The sample under pixel column ``x``."""
        return int(min(max(0, self._offset + x * self._spp), self._audio.size))

    def x_of(self, sample: int) -> float:
        """The pixel column of ``sample``."""
        return (sample - self._offset) / self._spp

    # -- selection and playhead ----------------------------------------------------------------

    @property
    def selection(self) -> tuple[int, int]:
        return self._selection

    def set_selection(self, start: int, end: int) -> None:
        start, end = sorted((max(0, start), min(self._audio.size, end)))
        self._selection = (start, end)
        self.selection_changed.emit(start, end)
        self.update()

    def set_playhead(self, sample: int | None) -> None:
        self._playhead = sample
        if sample is not None and not self._fit:
            x = self.x_of(sample)
            if x < 0 or x > self.width():
                self._offset = int(sample - self.width() * self._spp * 0.1)
                self._clamp_view()
        self.update()

    @property
    def playhead(self) -> int | None:
        return self._playhead

    # -- Qt events -----------------------------------------------------------------------------

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        return QSize(600, 110)

    def resizeEvent(self, event: object) -> None:  # noqa: N802
        self._clamp_view()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton:
            self._drag_from = self.sample_at(event.position().x())
            self.set_selection(self._drag_from, self._drag_from)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._drag_from is not None:
            self.set_selection(self._drag_from, self.sample_at(event.position().x()))

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._drag_from is not None:
            here = self.sample_at(event.position().x())
            if here == self._drag_from:
                self.cursor_moved.emit(here)
            self.set_selection(self._drag_from, here)
            self._drag_from = None

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        steps = event.angleDelta().y() / 120
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.zoom(0.8**steps, event.position().x())
        else:
            self.scroll_by(-steps * self.width() / 8)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        palette = self.palette()
        painter.fillRect(self.rect(), palette.color(QPalette.ColorRole.Base))
        width, height = self.width(), self.height()
        middle = height / 2
        start, end = self._selection
        if end > start:
            highlight = QColor(palette.color(QPalette.ColorRole.Highlight))
            highlight.setAlpha(90)
            painter.fillRect(
                QRectF(self.x_of(start), 0, max(1.0, (end - start) / self._spp), height), highlight
            )
        painter.setPen(palette.color(QPalette.ColorRole.Mid))
        painter.drawLine(QPointF(0, middle), QPointF(width, middle))
        if self._audio.size:
            spp = max(1, int(self._spp))
            peaks = self.peaks_at(spp)
            first = self._offset // spp
            columns = peaks[first : first + width + 1]
            painter.setPen(palette.color(QPalette.ColorRole.Text))
            scale = middle * 0.95
            for x, (low, high) in enumerate(columns):
                painter.drawLine(
                    QPointF(x, middle - high * scale), QPointF(x, middle - low * scale)
                )
        if self._playhead is not None:
            painter.setPen(QColor(220, 50, 50))
            head = self.x_of(self._playhead)
            painter.drawLine(QPointF(head, 0), QPointF(head, height))
        painter.end()
