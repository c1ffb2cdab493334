"""One job's reports as Qt signals: the window's side of :mod:`desktop_app.session.jobs`.

A :class:`JobBridge` lives on the GUI thread; its :meth:`listener` is handed to the queue with
the job, and what the job tells on the queue's thread arrives here as typed, queued signals.
One bridge per job, so a late report of a job the window no longer waits for reaches only that
job's bridge.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from desktop_app.errors import as_internal
from desktop_app.session.jobs import Listener


class JobBridge(QObject):
    """Re-emits one ticket's reports on the GUI thread."""

    progressed = Signal(int, float)  # frames made, seconds of audio
    shared = Signal(float, str)  # share done (0-1), what is happening
    audio_ready = Signal(object)  # np.ndarray: a piece of the take being made
    item_ready = Signal(object)  # one made part (a conversation's SpokenLine)
    status_changed = Signal(str)  # what is happening now
    finished = Signal(object)  # the job's result
    failed = Signal(object)  # UserError or InternalError (described once)
    cancelled = Signal()

    def listener(self) -> Listener:
        """The listener to submit the job with."""
        return _Relay(self)


class _Relay(Listener):
    """Called on the queue's thread; the signals it emits are queued to the bridge's thread."""

    def __init__(self, bridge: JobBridge) -> None:
        self.bridge = bridge

    def on_progress(self, frames: int, seconds: float) -> None:
        self.bridge.progressed.emit(frames, seconds)

    def on_share(self, done: float, what: str) -> None:
        self.bridge.shared.emit(done, what)

    def on_audio(self, piece: np.ndarray) -> None:
        self.bridge.audio_ready.emit(piece)

    def on_item(self, item: object) -> None:
        self.bridge.item_ready.emit(item)

    def on_status(self, text: str) -> None:
        self.bridge.status_changed.emit(text)

    def on_finished(self, result: Any) -> None:
        self.bridge.finished.emit(result)

    def on_failed(self, error: BaseException) -> None:
        self.bridge.failed.emit(as_internal(error))

    def on_cancelled(self) -> None:
        self.bridge.cancelled.emit()
