"""What the window's running job is doing: a progress bar, a line of text and Cancel.

Driven by the job controller's signals (frames made, a share of a longer step, what is
happening) and by the window when a job starts or ends. It keeps no job of its own.
"""

from __future__ import annotations

import time

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget


class JobStatus(QWidget):
    """The progress of the job that runs, and the button that cancels it."""

    cancel_requested = Signal()

    def __init__(self) -> None:
        super().__init__()
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
        self.label = QLabel("Load a model to start.")
        layout.addWidget(self.label)
        self._started = time.monotonic()

    def say(self, text: str) -> None:
        """Show ``text`` as what is happening."""
        self.label.setText(text)

    def busy(self, text: str) -> None:
        """A job whose length is not known has started."""
        self._start(0, 0, text)

    def counting(self, total: int, text: str) -> None:
        """A job of ``total`` steps (frames, or percent) has started."""
        self._start(0, max(1, total), text)

    def _start(self, low: int, high: int, text: str) -> None:
        self._started = time.monotonic()
        self.progress.setRange(low, high)
        self.progress.setValue(0)
        self.cancel_button.setEnabled(True)
        self.label.setText(text)

    def frames(self, frames: int, seconds: float) -> None:
        """Frames made of the take; the time left at the rate so far (at most: a take may end
        before its cap)."""
        self.progress.setValue(min(frames, self.progress.maximum()))
        elapsed = time.monotonic() - self._started
        remaining = (self.progress.maximum() - frames) * elapsed / max(1, frames)
        self.label.setText(f"{seconds:.1f} s of audio made · at most {remaining:.0f} s left")

    def share(self, done: float, what: str, *, bar: bool = False) -> None:
        """A share of a longer step done (with ``bar``, the bar shows it too)."""
        if bar:
            self.progress.setRange(0, 100)
            self.progress.setValue(round(100 * done))
        self.label.setText(f"{what[:1].upper()}{what[1:]}… {done:.0%}")

    def cancelling(self) -> None:
        self.label.setText("Cancelling…")

    def ended(self, text: str, *, complete: bool = True) -> None:
        """The job has ended: the bar full (or empty), Cancel off, ``text`` shown."""
        self.cancel_button.setEnabled(False)
        if complete:
            self.progress.setValue(self.progress.maximum())
        else:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
        self.label.setText(text)
