"""A conversation's timeline: one lane per speaker, each made line a block at its place in the
mix, and the playhead. Clicking a block asks to play the mix from there."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QWidget

SPEAKER_COLOURS = (
    "#3b82c4",
    "#d0632b",
    "#2f9e55",
    "#a04cc2",
    "#b8951c",
    "#1f9c9c",
    "#c2456f",
    "#6f7f94",
)
"""One colour per speaker, in the order they first speak (the editor's names use them too)."""


def speaker_colour(index: int) -> QColor:
    """The colour of the ``index``-th speaker (the palette repeats after eight)."""
    return QColor(SPEAKER_COLOURS[index % len(SPEAKER_COLOURS)])


@dataclass(frozen=True)
class Block:
    """A made line on the timeline, in samples of the mix."""

    index: int  # the line's index in the script
    lane: int  # its speaker's lane
    start: int
    end: int


class ConversationTimeline(QWidget):
    """Lanes, blocks and a playhead; ``seek_requested(sample)`` when a place is clicked."""

    seek_requested = Signal(int)  # sample of the mix
    line_clicked = Signal(int)  # the clicked block's line index

    LANE = 24
    NAMES = 90  # width of the speakers' names column

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.speakers: tuple[str, ...] = ()
        self.blocks: tuple[Block, ...] = ()
        self.total = 0
        self._playhead: int | None = None
        self.setAccessibleName("Conversation timeline")
        self.setToolTip("One lane per speaker; click a line to play the mix from there")
        self.setMinimumHeight(self.LANE * 2 + 8)

    def set_lines(self, speakers: Sequence[str], blocks: Sequence[Block], total: int) -> None:
        """Show these lanes and blocks; ``total`` is the mix's length in samples."""
        self.speakers = tuple(speakers)
        self.blocks = tuple(blocks)
        self.total = total
        self.setMinimumHeight(self.LANE * max(2, len(self.speakers)) + 8)
        self.updateGeometry()
        self.update()

    def set_playhead(self, sample: int | None) -> None:
        self._playhead = sample
        self.update()

    @property
    def playhead(self) -> int | None:
        return self._playhead

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        return QSize(600, self.LANE * max(2, len(self.speakers)) + 8)

    # -- geometry ------------------------------------------------------------------------------

    def _scale(self) -> float:
        return max(1.0, self.width() - self.NAMES - 4) / max(1, self.total)

    def x_of(self, sample: int) -> float:
        return self.NAMES + sample * self._scale()

    def sample_at(self, x: float) -> int:
        return max(0, min(self.total, round((x - self.NAMES) / self._scale())))

    def block_rect(self, block: Block) -> QRectF:
        top = 4 + block.lane * self.LANE
        left = self.x_of(block.start)
        return QRectF(left, top + 2, max(2.0, self.x_of(block.end) - left), self.LANE - 4)

    def block_at(self, point: QPointF) -> Block | None:
        return next((b for b in self.blocks if self.block_rect(b).contains(point)), None)

    # -- events --------------------------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() != Qt.MouseButton.LeftButton or not self.total:
            return
        point = event.position()
        block = self.block_at(point)
        if block is not None:
            self.line_clicked.emit(block.index)
            self.seek_requested.emit(block.start)
        elif point.x() >= self.NAMES:
            self.seek_requested.emit(self.sample_at(point.x()))

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        palette = self.palette()
        painter.fillRect(self.rect(), palette.color(QPalette.ColorRole.Base))
        text = palette.color(QPalette.ColorRole.Text)
        for lane, name in enumerate(self.speakers):
            top = 4 + lane * self.LANE
            if lane % 2:
                painter.fillRect(
                    QRectF(0, top, self.width(), self.LANE),
                    palette.color(QPalette.ColorRole.AlternateBase),
                )
            painter.setPen(speaker_colour(lane))
            painter.drawText(
                QRectF(4, top, self.NAMES - 8, self.LANE),
                Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                name,
            )
        for block in self.blocks:
            colour = speaker_colour(block.lane)
            painter.setPen(QPen(colour.darker(130)))
            painter.setBrush(colour)
            painter.drawRoundedRect(self.block_rect(block), 3, 3)
        if self._playhead is not None and self.total:
            painter.setPen(QPen(text, 2))
            x = self.x_of(self._playhead)
            painter.drawLine(QPointF(x, 0), QPointF(x, self.height()))
        painter.end()
