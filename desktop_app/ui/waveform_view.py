"""A waveform drawn from min/max peaks: a time ruler, zoom, scroll, select a region, a playhead,
and a spectrogram to switch to.

Peaks are computed once per zoom level (samples per pixel) for the whole clip and cached, so
painting never touches raw samples (the Sonic Visualiser way). The spectrogram is computed once
per zoom level on a thread of its own and shown when it is ready. As in Audacity: a click moves
the playhead, a drag (or Shift+click from the playhead) selects.
"""

from __future__ import annotations

import contextlib
import math
import threading

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QWheelEvent,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

from desktop_app.audio import dsp

RULER = 16  # pixels of the time ruler above the signal
TICK_STEPS = (
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.5,
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
)
LABEL_SPACING = 64  # pixels at least between two labelled ticks


def tick_label(seconds: float, step: float) -> str:
    """A ruler label: seconds with as many decimals as the step needs (minutes past 60 s)."""
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step < 1 else 0
    if seconds >= 60:
        minutes, rest = divmod(seconds, 60)
        return f"{int(minutes)}:{rest:0{3 + decimals if decimals else 2}.{decimals}f}"
    return f"{seconds:.{decimals}f}"


def spectrogram(audio: np.ndarray, hop: int, bins: int = 256) -> np.ndarray:
    """Log-magnitude STFT (a Hann window of 2 x bins samples, ``hop`` apart) scaled to 0-255,
    lowest frequency last (the image's bottom row); shape bins x frames."""
    size = 2 * bins
    if audio.size < size:
        audio = np.pad(audio, (0, size - audio.size))
    frames = 1 + (audio.size - size) // hop
    index = np.arange(size)[None, :] + hop * np.arange(frames)[:, None]
    windowed = audio[index] * np.hanning(size).astype(np.float32)
    magnitude = np.abs(np.fft.rfft(windowed, axis=1))[:, :bins]
    db = 20 * np.log10(magnitude + 1e-6)
    scaled = np.clip((db + 100) / 100, 0, 1) * 255  # -100..0 dB
    return np.ascontiguousarray(scaled.T[::-1].astype(np.uint8))


class WaveformView(QWidget):
    """Shows one mono signal; emits the selected sample range."""

    selection_changed = Signal(int, int)  # start, end (end == start: no selection)
    cursor_moved = Signal(int)
    seek_requested = Signal(int)  # a click: move the playhead there
    _spectrogram_done = Signal(int, object)  # hop, the image data (from the worker thread)

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
        self._dragged = False
        self._playhead: int | None = None
        self._spectrum = False
        self._images: dict[int, np.ndarray] = {}  # hop -> spectrogram (bins x frames)
        self._computing: set[int] = set()
        self._spectrogram_done.connect(self._spectrogram_arrived)

    # -- content -------------------------------------------------------------------------------

    def set_audio(self, audio: np.ndarray, rate: int, keep_view: bool = False) -> None:
        """Show ``audio``; resets the zoom to fit unless ``keep_view``."""
        self._audio = np.asarray(audio, dtype=np.float32)
        self.rate = rate
        self._peaks.clear()
        self._images.clear()
        self._computing.clear()
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

    def zoom_to_selection(self) -> None:
        """Show just the selection (Ctrl+E, as in Audacity)."""
        start, end = self._selection
        if end <= start:
            return
        self._fit = False
        self._spp = (end - start) / max(1, self.width())
        self._offset = start
        self._clamp_view()
        self._offset = start
        self._clamp_view()
        self.update()

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

    # -- the ruler -----------------------------------------------------------------------------

    def tick_step(self) -> float:
        """Seconds between labelled ticks at this zoom (labels at least LABEL_SPACING apart)."""
        seconds_per_pixel = self._spp / self.rate
        return next(
            (s for s in TICK_STEPS if s / seconds_per_pixel >= LABEL_SPACING), TICK_STEPS[-1]
        )

    def ruler_ticks(self) -> list[tuple[float, str]]:
        """The labelled ticks in view: (x in pixels, label)."""
        step = self.tick_step()
        first = math.ceil(self._offset / self.rate / step)
        last = (self._offset + self.width() * self._spp) / self.rate
        out = []
        n = first
        while n * step <= last + 1e-9:
            seconds = n * step
            out.append((self.x_of(round(seconds * self.rate)), tick_label(seconds, step)))
            n += 1
        return out

    # -- the spectrogram -----------------------------------------------------------------------

    def show_spectrogram(self, on: bool) -> None:
        """Draw the spectrogram instead of the waveform (computed off the UI thread)."""
        self._spectrum = on
        self.update()

    def _hop(self) -> int:
        return max(64, int(self._spp))

    def spectrogram_at(self, hop: int) -> np.ndarray | None:
        """The spectrogram for this zoom, or None while it is being computed (started here)."""
        if hop in self._images:
            return self._images[hop]
        if hop not in self._computing and self._audio.size:
            self._computing.add(hop)
            audio = self._audio

            def compute() -> None:
                image = spectrogram(audio, hop)
                with contextlib.suppress(RuntimeError):  # the view was closed meanwhile
                    self._spectrogram_done.emit(hop, (audio, image))

            threading.Thread(target=compute, name="spectrogram", daemon=True).start()
        return None

    def _spectrogram_arrived(self, hop: int, data: object) -> None:
        assert isinstance(data, tuple)
        audio, image = data
        if audio is self._audio:  # not for a signal shown before
            self._images[hop] = image
            self._computing.discard(hop)
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
        if event.button() != Qt.MouseButton.LeftButton:
            return
        here = self.sample_at(event.position().x())
        self._dragged = False
        if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            anchor = self._playhead if self._playhead is not None else self._selection[0]
            self._drag_from = anchor
            self._dragged = True
            self.set_selection(anchor, here)
        else:
            self._drag_from = here

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._drag_from is not None:
            here = self.sample_at(event.position().x())
            if abs(self.x_of(here) - self.x_of(self._drag_from)) >= 3 or self._dragged:
                self._dragged = True
                self.set_selection(self._drag_from, here)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._drag_from is None:
            return
        here = self.sample_at(event.position().x())
        if self._dragged:
            self.set_selection(self._drag_from, here)
        else:  # a click: the playhead goes there, the selection goes
            self.set_selection(here, here)
            self.set_playhead(here)
            self.cursor_moved.emit(here)
            self.seek_requested.emit(here)
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
        self._paint_ruler(painter, palette)
        top = RULER
        middle = top + (height - top) / 2
        start, end = self._selection
        if end > start:
            highlight = QColor(palette.color(QPalette.ColorRole.Highlight))
            highlight.setAlpha(90)
            painter.fillRect(
                QRectF(self.x_of(start), top, max(1.0, (end - start) / self._spp), height - top),
                highlight,
            )
        painter.setPen(palette.color(QPalette.ColorRole.Mid))
        painter.drawLine(QPointF(0, middle), QPointF(width, middle))
        image = self.spectrogram_at(self._hop()) if self._spectrum and self._audio.size else None
        if image is not None:
            self._paint_spectrogram(painter, image, top)
        elif self._audio.size:
            spp = max(1, int(self._spp))
            peaks = self.peaks_at(spp)
            first = self._offset // spp
            columns = peaks[first : first + width + 1]
            painter.setPen(palette.color(QPalette.ColorRole.Text))
            scale = (height - top) / 2 * 0.95
            for x, (low, high) in enumerate(columns):
                painter.drawLine(
                    QPointF(x, middle - high * scale), QPointF(x, middle - low * scale)
                )
        if self._playhead is not None:
            painter.setPen(QColor(220, 50, 50))
            head = self.x_of(self._playhead)
            painter.drawLine(QPointF(head, 0), QPointF(head, height))
        painter.end()

    def _paint_ruler(self, painter: QPainter, palette: QPalette) -> None:
        painter.fillRect(
            QRectF(0, 0, self.width(), RULER), palette.color(QPalette.ColorRole.Button)
        )
        painter.setPen(palette.color(QPalette.ColorRole.ButtonText))
        font = painter.font()
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.8))
        painter.setFont(font)
        for x, label in self.ruler_ticks():
            painter.drawLine(QPointF(x, RULER - 5), QPointF(x, RULER))
            painter.drawText(QPointF(x + 2, RULER - 5), label)

    def _paint_spectrogram(self, painter: QPainter, data: np.ndarray, top: int) -> None:
        hop = self._hop()
        first = int(self._offset // hop)
        count = max(1, math.ceil(self.width() * self._spp / hop))
        view = np.ascontiguousarray(data[:, first : first + count])
        if not view.size:
            return
        image = QImage(
            view.data, view.shape[1], view.shape[0], view.shape[1], QImage.Format.Format_Grayscale8
        )
        painter.drawImage(
            QRectF(0, top, view.shape[1] * hop / self._spp, self.height() - top), image
        )
