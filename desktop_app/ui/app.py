"""Starting the studio window (and the ``--smoke-test`` run used by CI and the frozen bundle)."""

from __future__ import annotations

import gc
import logging
import sys
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication

from desktop_app import __version__
from desktop_app.audio.player import Player
from desktop_app.config import Settings, load_settings
from desktop_app.library.database import LibraryError
from desktop_app.library.store import Library
from desktop_app.startup import seconds_since_process_start
from desktop_app.ui.main_window import MainWindow
from desktop_app.ui.voice_panel import Clip

log = logging.getLogger(__name__)

SMOKE_TEXT = "This is the studio's smoke test, spoken in a cloned voice."
SMOKE_TIMEOUT_MS = 300_000


def make_app(argv: list[str] | None = None) -> QApplication:
    """The QApplication (one per process), with the app's names for settings and the desktop."""
    app = QApplication.instance()
    if isinstance(app, QApplication):
        return app
    QApplication.setHighDpiScaleFactorRoundingPolicy(
        Qt.HighDpiScaleFactorRoundingPolicy.PassThrough
    )
    app = QApplication(argv or [sys.argv[0]])
    app.setApplicationName("CSM Studio")
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("csm-studio")
    return app


def build_window(settings: Settings) -> MainWindow:
    """The studio window over the user's library (if it opens) and a player on their output."""
    try:
        library: Library | None = Library()
        problem = ""
    except LibraryError as exc:
        library, problem = None, str(exc)
        log.error("library not opened: %s", exc)
    from desktop_app.ui.theme import SCHEMES, follow_system

    follow_system(settings.color_scheme if settings.color_scheme in SCHEMES else "system")
    player = Player(settings.output_device or None)
    window = MainWindow(settings, library=library, player=player, library_problem=problem)
    # Qt, torch and the app's modules are long-lived: kept out of the garbage collector's full
    # passes, which otherwise walk them all (0.1-0.3 s here) while the window waits. The worker
    # does the same after each model load.
    gc.freeze()
    return window


def run_gui(model: str | None = None) -> int:
    """Show the window and run until it closes."""
    app = make_app()
    settings = load_settings()
    window = build_window(settings)

    def unexpected(kind: type[BaseException], error: BaseException, tb: object) -> None:
        # an exception escaping a slot: the funnel logs it with its traceback (describe) and
        # shows "internal error, details in <log>"
        window.errors.show(error)

    sys.excepthook = unexpected
    window.show()
    QTimer.singleShot(0, lambda: window.loader.load(model or settings.model))
    QTimer.singleShot(0, window.housekeeping.offer_unfinished_recordings)
    return app.exec()


def smoke_clip() -> Clip:
    """A synthetic 3 s voice clip (harmonics with a syllable rhythm) and its pretend transcript."""
    t = np.arange(72_000) / 24_000
    tone = sum(np.sin(2 * np.pi * 140 * k * t + k) / k for k in range(1, 6))
    audio = (tone * (0.55 + 0.45 * np.sin(2 * np.pi * 4 * t) ** 2) * 0.1).astype(np.float32)
    return Clip(
        audio=audio,
        transcript="Hello, this is a short test of my voice.",
        source="imported",
        name="smoke-test",
    )


def run_smoke_test(model: str, screenshot: Path | None, max_seconds: float = 2.0) -> int:
    """Start the real window, generate one take with ``model``, save a screenshot, exit 0."""
    app = make_app()
    settings = load_settings()
    settings.read_only = True  # a smoke test leaves the user's settings alone
    window = build_window(settings)
    window.show()
    app.processEvents()
    shown = seconds_since_process_start()
    if shown is not None:
        print(f"window shown {shown:.2f} s after the process started", flush=True)
    outcome: dict[str, int] = {}

    def finish(code: int, message: str) -> None:
        if "code" in outcome:
            return
        outcome["code"] = code
        print(message, file=sys.stderr if code else sys.stdout, flush=True)
        if screenshot is not None:
            window.grab().save(str(screenshot))
        window.close()
        app.quit()

    def start() -> None:
        window.voice.add_clip(smoke_clip())
        window.say.text.setPlainText(SMOKE_TEXT)
        window.say.max_seconds.setValue(max_seconds)
        window.say.seed_lock.setChecked(True)
        window.generate()

    def passed(take: object) -> None:
        result = take.result  # type: ignore[attr-defined]
        message = (
            f"smoke test passed: {result.seconds:.2f} s take in "
            f"{result.timings.total_s:.2f} s on {result.device} ({result.engine})"
        )
        QTimer.singleShot(200, lambda: finish(0, message))

    # the window's own signals arrive on the GUI thread (a lambda connected to the worker's
    # signals would run on the worker's thread)
    window.model_ready.connect(start)
    window.take_ready.connect(passed)
    window.generation_failed.connect(lambda error: finish(1, f"error: smoke test failed: {error}"))
    QTimer.singleShot(SMOKE_TIMEOUT_MS, lambda: finish(1, "error: smoke test timed out"))
    QTimer.singleShot(0, lambda: window.loader.load(model))
    app.exec()
    if window.errors.last_message and "code" not in outcome:
        return 1
    return outcome.get("code", 1)
