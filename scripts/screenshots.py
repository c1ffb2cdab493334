"""The README's screenshots, taken by the app itself: the window with a voice, a few checked
takes and a conversation, light and dark.

    CSM_STUDIO_HOME=$(mktemp -d) PYTHONPATH=. xvfb-run -a \
        .venv/bin/python scripts/screenshots.py docs/

Random tiny checkpoints stand in for the models (built in a temporary folder), so the takes
are noise and their checks say so; the window is the real one.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEventLoop, QTimer


def wait(signal: object, start: Callable[[], None], timeout_ms: int = 120_000) -> object:
    """Run ``start`` and the event loop until ``signal`` fires; what it carried."""
    loop = QEventLoop()
    got: list[object] = []

    def done(*args: object) -> None:
        got.append(args[0] if args else None)
        loop.quit()

    signal.connect(done)  # type: ignore[attr-defined]
    QTimer.singleShot(timeout_ms, loop.quit)
    QTimer.singleShot(0, start)
    loop.exec()
    signal.disconnect(done)  # type: ignore[attr-defined]
    if not got:
        raise SystemExit("timed out waiting for the window")
    return got[0]


def main() -> int:
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs")
    target.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from desktop_app.config import Settings
    from desktop_app.inference.random_checkpoint import (
        build_random_checkpoint,
        build_random_speaker_model,
        build_random_whisper,
    )
    from desktop_app.ui.app import build_window, make_app
    from tests.support.signals import voiced, with_silence

    app = make_app()
    with tempfile.TemporaryDirectory() as tmp:
        model = build_random_checkpoint(Path(tmp) / "csm")
        asr = build_random_whisper(Path(tmp) / "asr")
        speaker = build_random_speaker_model(Path(tmp) / "speaker")
        settings = Settings(model=str(model), asr_model=str(asr), speaker_model=str(speaker))
        settings.read_only = True
        window = build_window(settings)
        window.resize(1280, 860)
        window.show()
        wait(window.model_ready, lambda: window.loader.load(str(model)))
        assert window.library is not None
        for name, f0 in (("Ada", 210), ("Ben", 120)):
            clip = with_silence(voiced(4.0, 24_000, f0=f0), 24_000, 0.2, 0.2)
            window.library.voices.add(
                name, [(clip, f"Hello, I am {name}.", "imported")], consent_confirmed=True
            )
        window.library_box.refresh()
        window.library_box.use("Ada")
        window.say.max_seconds.setValue(1.6)
        for text in (
            "The morning train was late again.",
            "So I walked along the river and watched the boats.",
            "Then coffee, and the day could begin.",
        ):
            window.say.text.setPlainText(text)
            wait(window.take_ready, window.generate)
        panel = window.conversation
        panel.hear_as_made.setChecked(False)
        panel.editor.setPlainText(
            "Ada: Good morning. Did you sleep at all?\nBen: Not a wink.\n\n"
            "Ada: Then coffee first.\n"
        )
        window.say.max_seconds.setValue(1.2)
        wait(window.conversation_ready, panel.generate)
        panel.stop()
        shots = ((0, "takes"), (window.tabs.indexOf(panel), "conversation"))
        for scheme in ("light", "dark"):
            window.set_scheme(scheme)
            for tab, what in shots:
                window.tabs.setCurrentIndex(tab)
                window.statusBar().clearMessage()  # no sound card under Xvfb: not the point
                for _ in range(5):
                    app.processEvents()
                window.grab().save(str(target / f"window-{what}-{scheme}.png"))
        window.set_scheme("system")
        window.close()
    print(f"screenshots in {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
