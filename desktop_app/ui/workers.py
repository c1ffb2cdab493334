"""Long-lived worker objects living on QThreads; the window talks to them by queued signals.

Cancellation is a thread-safe flag that the engine checks between frames, set directly from the
GUI thread (a queued slot would wait behind the running generation).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from desktop_app import logs
from desktop_app.errors import GenerationCancelled, UserError

log = logging.getLogger(__name__)


class InternalError(UserError):
    """An unexpected failure: its message points at the log file."""


def as_user_error(exc: BaseException) -> UserError:
    """A user error as it is; anything else logged and turned into "internal error, see log"."""
    if isinstance(exc, UserError):
        return exc
    log.error("internal error in a worker", exc_info=exc)
    return InternalError(
        f"internal error ({type(exc).__name__}: {exc}); details in {logs.configure_logging()}"
    )


@dataclass(frozen=True)
class EngineInfo:
    """What the status bar shows about a loaded model."""

    model: str
    model_dir: Path
    engine: str
    device: str
    device_name: str
    dtype: str
    load_seconds: float


class InferenceWorker(QObject):
    """Owns the loaded engine; loads and generates on its own thread."""

    load_requested = Signal(str, str, str)  # model, engine, device
    generate_requested = Signal(object, bool)  # GenerationRequest, stream the audio
    load_progressed = Signal(str)
    loaded = Signal(object)  # EngineInfo
    progressed = Signal(int, float)  # frames, seconds of audio
    chunk_ready = Signal(object)  # a piece of the take's audio (np.ndarray), while streaming
    finished = Signal(object)  # GenerationResult
    cancelled = Signal()
    failed = Signal(object)  # UserError

    def __init__(self) -> None:
        super().__init__()
        self.engine: Any = None
        self._stop = threading.Event()
        self.load_requested.connect(self.load)
        self.generate_requested.connect(self.generate)

    def cancel(self) -> None:
        """Ask the running generation to stop after the current frame (any thread)."""
        self._stop.set()

    def begin(self) -> None:
        """Forget an earlier cancel; called by the window before it queues a request, so that a
        cancel pressed before the worker picks the request up still counts."""
        self._stop.clear()

    @Slot(str, str, str)
    def load(self, model: str, engine: str, device: str) -> None:
        """Find the checkpoint and load it (the previous engine is dropped first).

        Loading cannot stop half-way inside transformers; a cancel asked meanwhile is honoured
        as soon as it returns: the engine is dropped and ``cancelled`` is emitted.
        """
        try:
            from desktop_app.inference import load_engine
            from desktop_app.inference.model_store import resolve_model

            self.load_progressed.emit(f"finding {model}")
            folder = resolve_model(model)
            self.engine = None
            self.load_progressed.emit(f"loading {folder.name} ({engine})")
            started = time.perf_counter()
            self.engine = load_engine(engine, folder, device)
            if self._stop.is_set():
                self.engine = None
                self.cancelled.emit()
                return
            self.loaded.emit(
                EngineInfo(
                    model=model,
                    model_dir=folder,
                    engine=self.engine.name,
                    device=self.engine.device,
                    device_name=getattr(self.engine, "device_name", self.engine.device),
                    dtype=self.engine.dtype,
                    load_seconds=time.perf_counter() - started,
                )
            )
        except Exception as exc:
            self.failed.emit(as_user_error(exc))

    @Slot(object, bool)
    def generate(self, request: object, stream: bool = False) -> None:
        """Generate one take; emits finished, cancelled or failed (and chunk_ready pieces)."""
        try:
            if self.engine is None:
                raise UserError("no model is loaded yet; choose a model first")
            from desktop_app.inference.long_text import speak

            result = speak(
                self.engine,
                request,  # type: ignore[arg-type]
                on_progress=self.progressed.emit,
                should_stop=self._stop.is_set,
                on_audio=self.chunk_ready.emit if stream else None,
            )
            self.finished.emit(result)
        except GenerationCancelled:
            self.cancelled.emit()
        except Exception as exc:
            self.failed.emit(as_user_error(exc))


class DownloadWorker(QObject):
    """Runs the explicit model download on its own thread."""

    progressed = Signal(str)
    finished = Signal(str)  # folder
    failed = Signal(object)

    def __init__(self, model: str, token: str) -> None:
        super().__init__()
        self.model = model
        self.token = token

    @Slot()
    def run(self) -> None:
        try:
            from desktop_app.inference.model_store import download_model

            folder = download_model(
                self.model,
                token=self.token or None,
                progress=self.progressed.emit,
                force_online=True,
            )
            self.finished.emit(str(folder))
        except Exception as exc:
            self.failed.emit(as_user_error(exc))
