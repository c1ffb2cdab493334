"""What the window's running job is doing: a progress bar, a line of text and Cancel.

Driven by the job controller's signals (frames made, a share of a longer step, what is
happening) and by the window when a job starts or ends. It says only what is known: frames and
seconds of audio made, and a time left only once a rate has been measured on the frames made so
far (never from the time the voice prompt took, never negative). A long line wraps inside the
pane (the whole text is also the tooltip) instead of widening it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

RATE_FRAMES = 5
"""Frames made before a time left is shown (the first ones include warming up)."""


class JobStatus(QWidget):
    """The progress of the job that runs, and the button that cancels it."""

    cancel_requested = Signal()

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.clock = clock
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running generation (Esc)")
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.cancel_button.setEnabled(False)
        row.addWidget(self.progress, 1)
        row.addWidget(self.cancel_button)
        layout.addLayout(row)
        self.label = QLabel()
        self.label.setWordWrap(True)
        # the label takes the width it is given: a long line wraps, the pane keeps its width
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        layout.addWidget(self.label)
        self.context = ""  # what the frames belong to ("Line 2 of 3"), shown before them
        self._first_frame: tuple[float, int] | None = None
        self.say("Load a model to start.")

    def say(self, text: str) -> None:
        """Show ``text`` as what is happening."""
        self.label.setText(text)
        self.label.setToolTip(text)

    def busy(self, text: str) -> None:
        """A job whose length is not known has started."""
        self._start(0, 0, text)

    def counting(self, total: int, text: str) -> None:
        """A job of ``total`` steps (frames, or percent) has started."""
        self._start(0, max(1, total), text)

    def _start(self, low: int, high: int, text: str) -> None:
        self._first_frame = None
        self.context = ""
        self.progress.setRange(low, high)
        self.progress.setValue(0)
        self.cancel_button.setEnabled(True)
        self.say(text)

    def frames(self, frames: int, seconds: float) -> None:
        """Frames made of the take (or of the line), and the time left once a rate is known."""
        now = self.clock()
        if self._first_frame is None or frames < self._first_frame[1]:  # a new take or line
            self._first_frame = (now, frames)
        total = self.progress.maximum()
        if total > 0:
            self.progress.setValue(min(frames, total))
        text = f"{frames} frames made · {seconds:.1f} s of audio"
        started, first = self._first_frame
        measured = frames - first
        if total > 0 and measured >= RATE_FRAMES and now > started:
            rate = measured / (now - started)  # frames per second, the prompt's time left out
            left = max(0.0, (total - frames) / rate)
            text += f" · at most {left:.0f} s left"
        self.say(f"{self.context}: {text}" if self.context else text)

    def share(self, done: float, what: str, *, bar: bool = False) -> None:
        """A share of a longer step done (with ``bar``, the bar shows it too)."""
        if bar:
            self.progress.setRange(0, 100)
            self.progress.setValue(round(100 * done))
        self.say(f"{what[:1].upper()}{what[1:]}… {done:.0%}")

    def cancelling(self) -> None:
        self.say("Cancelling…")

    def ended(self, text: str, *, complete: bool = True) -> None:
        """The job has ended: the bar full (or empty), Cancel off, ``text`` shown."""
        self.cancel_button.setEnabled(False)
        self.context = ""
        if complete:
            self.progress.setRange(0, max(1, self.progress.maximum()))
            self.progress.setValue(self.progress.maximum())
        else:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
        self.say(text)
