"""The voice library and history in the window: the same store as the CLI, nothing lost."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QInputDialog, QMessageBox
from pytestqt.qtbot import QtBot

from desktop_app import paths
from desktop_app.audio.recorder import unfinished_recordings
from desktop_app.config import Settings
from desktop_app.library.schema import SCHEMA_VERSION
from desktop_app.library.store import Library
from desktop_app.ui.app import build_window
from desktop_app.ui.main_window import MainWindow
from tests.conftest import REPO, cli_env
from tests.support.gui import drop_file, generate, speech_file
from tests.support.signals import voiced

pytestmark = pytest.mark.usefixtures("pulse")


def answer(monkeypatch: pytest.MonkeyPatch, yes: bool) -> list[str]:
    """Answer the next confirmation questions with Yes or No; returns the questions asked."""
    asked: list[str] = []

    def question(parent: object, title: str, text: str, *args: object) -> object:
        asked.append(text)
        return QMessageBox.StandardButton.Yes if yes else QMessageBox.StandardButton.No

    monkeypatch.setattr(QMessageBox, "question", question)
    return asked


def rows(window: MainWindow) -> list[list[str]]:
    """The history as the user sees it: the text of each row's columns."""
    assert window.history is not None
    tree = window.history.tree
    return [
        [tree.topLevelItem(i).text(c) for c in range(tree.columnCount())]  # type: ignore[union-attr]
        for i in range(tree.topLevelItemCount())
    ]


def test_save_use_rename_and_delete_a_voice_with_undo(
    window: MainWindow, qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = window.library_box
    assert box is not None and window.library is not None
    drop_file(window, speech_file(tmp_path))
    qtbot.keyClicks(window.voice.transcript, "Hello there, this is my voice.")

    # save: the dialog asks for a name and the speaker's consent before it saves
    qtbot.mouseClick(box.save_button, Qt.MouseButton.LeftButton)
    dialog = box.save_dialog
    assert dialog is not None and dialog.isVisible()
    qtbot.keyClicks(dialog.name, "Ana")
    assert not dialog.save_button.isEnabled()  # no consent yet
    dialog.consent.setChecked(True)
    assert dialog.save_button.isEnabled()
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    stored = Library().voices.get("Ana")
    assert stored.consent_confirmed and len(stored.clips) == 1
    assert stored.clips[0].transcript == "Hello there, this is my voice."
    assert box.voice_combo.currentText() == "Ana"
    assert box.current_voice() == "Ana"

    # a take made from these clips is Ana's, in the history and in the store
    take = generate(window, qtbot, "First words in Ana's voice.")
    assert take.voice == "Ana"  # type: ignore[attr-defined]
    assert [t.text for t in Library().takes.list(voice="Ana")] == ["First words in Ana's voice."]
    assert rows(window)[0][2:4] == ["Ana", "First words in Ana's voice."]

    # edited clips are no longer Ana's; using the voice brings its clips back, undoably
    window.voice.remove_clip()
    assert window.voice.clips == [] and box.current_voice() is None
    qtbot.mouseClick(box.use_button, Qt.MouseButton.LeftButton)
    assert len(window.voice.clips) == 1 and box.current_voice() == "Ana"
    np.testing.assert_allclose(window.voice.clips[0].audio, stored.clips[0].audio())
    window.undo.undo()
    assert window.voice.clips == []
    window.undo.redo()
    assert box.current_voice() == "Ana"

    # rename, with undo and redo
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("Bea", True))
    qtbot.mouseClick(box.rename_button, Qt.MouseButton.LeftButton)
    assert [v.name for v in Library().voices.all()] == ["Bea"]
    assert box.current_voice() == "Bea"
    window.undo.undo()
    assert [v.name for v in Library().voices.all()] == ["Ana"]
    window.undo.redo()
    assert box.voice_combo.currentText() == "Bea"

    # delete asks first; No keeps it
    asked = answer(monkeypatch, yes=False)
    qtbot.mouseClick(box.delete_button, Qt.MouseButton.LeftButton)
    assert "Bea" in asked[0] and [v.name for v in Library().voices.all()] == ["Bea"]
    answer(monkeypatch, yes=True)
    qtbot.mouseClick(box.delete_button, Qt.MouseButton.LeftButton)
    assert Library().voices.all() == [] and box.voice_combo.count() == 0
    assert Library().takes.list()[0].voice is None  # its take stays, without a voice
    # ...and undo brings back the voice, its clips and the link to its take
    window.undo.undo()
    assert [v.name for v in Library().voices.all()] == ["Bea"]
    assert Library().voices.get("Bea").clips == stored.clips
    assert [t.voice for t in Library().takes.list()] == ["Bea"]
    assert box.voice_combo.currentText() == "Bea"


def test_history_search_filter_play_reuse_favourite_export_and_delete(
    window: MainWindow, qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    history = window.history
    assert history is not None
    # takes made earlier, e.g. from the command line, by two voices
    library = Library()
    for name in ("Ana", "Ben"):
        library.voices.add(
            name, [(voiced(3.0, 24_000), f"I am {name}.", "imported")], consent_confirmed=True
        )
    texts = {
        "Ana": ["The river was calm.", "Ana reads the news."],
        "Ben": ["Ben walks along the river."],
    }
    audio = {}
    for name, lines in texts.items():
        for number, text in enumerate(lines):
            audio[text] = voiced(1.0 + number, 24_000, f0=120 + 30 * number)
            library.takes.add(
                text=text,
                audio=audio[text],
                settings={"temperature": 0.7, "top_k": 20, "top_p": 0.9, "max_seconds": 7.5},
                seed=1234 + number,
                model="tiny",
                engine="fast",
                device="cpu",
                timings={"total_s": 1.0},
                voice=name,
            )
    window.tabs.setCurrentWidget(history)  # showing the tab re-reads the library
    assert len(rows(window)) == 3
    assert history.voice_filter.count() == 3  # all, Ana, Ben

    qtbot.keyClicks(history.search, "river")
    assert sorted(r[3] for r in rows(window)) == [
        "Ben walks along the river.",
        "The river was calm.",
    ]
    history.voice_filter.setCurrentText("Ana")
    assert [r[3] for r in rows(window)] == ["The river was calm."]
    history.search.clear()
    assert sorted(r[3] for r in rows(window)) == ["Ana reads the news.", "The river was calm."]
    history.voice_filter.setCurrentText("All voices")

    # favourite one, then show favourites only
    history.refresh(select=library.takes.list(search="news")[0].id)
    qtbot.mouseClick(history.favourite_button, Qt.MouseButton.LeftButton)
    assert library.takes.list(search="news")[0].favourite
    history.favourites_only.setChecked(True)
    assert [r[:1] + r[3:4] for r in rows(window)] == [["★", "Ana reads the news."]]
    history.favourites_only.setChecked(False)

    # play it on the output device: playback runs to the end of the take's audio
    qtbot.mouseClick(history.play_button, Qt.MouseButton.LeftButton)
    assert window.player.playing
    qtbot.waitUntil(lambda: not window.player.playing, timeout=10_000)
    assert window.player.position == audio["Ana reads the news."].size

    # export it and read it back
    target = tmp_path / "news.flac"
    assert history.export(history.current, target)  # type: ignore[arg-type]
    back, rate = sf.read(target, dtype="float32")
    assert rate == 24_000
    np.testing.assert_allclose(back, audio["Ana reads the news."], atol=1e-4)

    # reuse its settings: text, sampling settings, the seed (locked) and the voice's clips
    qtbot.mouseClick(history.reuse_button, Qt.MouseButton.LeftButton)
    assert window.say.text.toPlainText() == "Ana reads the news."
    assert window.say.temperature.value() == pytest.approx(0.7)
    assert (window.say.top_k.value(), window.say.top_p.value()) == (20, pytest.approx(0.9))
    assert window.say.max_seconds.value() == pytest.approx(7.5)
    assert window.say.seed.value() == 1235 and window.say.seed_lock.isChecked()
    assert [c.transcript for c in window.voice.clips] == ["I am Ana."]
    assert window.library_box is not None and window.library_box.current_voice() == "Ana"

    # delete asks, then removes; undo brings the same take back
    deleted = history.current
    assert deleted is not None
    answer(monkeypatch, yes=True)
    qtbot.mouseClick(history.delete_button, Qt.MouseButton.LeftButton)
    assert len(rows(window)) == 2 and len(library.takes.list()) == 2
    window.undo.undo()
    assert len(rows(window)) == 3
    assert library.takes.get(deleted.id) == deleted


def test_a_recording_killed_mid_way_is_offered_back(qtbot: QtBot, tmp_path: Path) -> None:
    """kill -9 of a process recording (and writing takes to the library), then the next start."""
    script = tmp_path / "record.py"
    script.write_text(
        "import time\n"
        "import numpy as np\n"
        "from desktop_app import paths\n"
        "from desktop_app.audio.recorder import Recorder\n"
        "from desktop_app.library.store import Library\n"
        "library = Library()\n"
        "recorder = Recorder(paths.data_dir() / 'recordings')\n"
        "recorder.start()\n"
        "said = False\n"
        "for number in range(100_000):\n"
        "    library.takes.add(text=f'take {number}', audio=np.full(24_000, number % 7 / 10, "
        "np.float32), settings={}, seed=number, model='m', engine='e', device='cpu', timings={})\n"
        "    if recorder.seconds > 1.5 and not said:\n"
        "        print('recording', flush=True)\n"
        "        said = True\n"
    )
    child = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        text=True,
        env=cli_env(),
        cwd=REPO,
    )
    assert child.stdout is not None
    try:
        assert child.stdout.readline().strip() == "recording"
        speech = tmp_path / "speech.wav"
        sf.write(speech, voiced(1.0, 24_000, f0=160), 24_000)
        subprocess.run(["paplay", "--device=vsink", str(speech)], check=True, timeout=30)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL

    # the library is healthy and every take it lists has its complete audio
    library = Library()
    assert library.integrity_check() == "ok"
    takes = library.takes.list()
    assert len(takes) > 3
    for take in takes:
        assert take.audio().size == 24_000 and take.duration == 1.0
    # the recording is left raw (no half-written WAV), and the next start offers it back
    folder = paths.data_dir() / "recordings"
    assert len(unfinished_recordings(folder)) == 1 and not list(folder.glob("*.wav"))
    window = build_window(Settings())
    qtbot.addWidget(window)
    window.show()

    # the history lists the newest takes only, however many there are
    assert window.history is not None
    if len(takes) > 500:
        assert window.history.tree.topLevelItemCount() == 500
        assert "newest 500" in window.history.count_label.text()
    box = window.housekeeping.offer_unfinished_recordings()
    assert box is not None and box.isVisible() and "1 recording(s)" in box.text()
    recover = next(b for b in box.buttons() if b.text() == "Recover")
    with qtbot.waitSignal(window.housekeeping.recordings_recovered, timeout=10_000) as recovered:
        qtbot.mouseClick(recover, Qt.MouseButton.LeftButton)
    assert recovered.args == [1]
    clip = window.voice.clips[0]
    assert clip.source == "recorded" and clip.seconds > 2.0
    assert float(np.abs(clip.audio).max()) > 0.05  # the voice played while it recorded is there
    assert unfinished_recordings(folder) == []
    assert window.housekeeping.offer_unfinished_recordings() is None  # asked once
    window.close()


def test_cli_and_window_use_one_library_at_once(
    window: MainWindow, qtbot: QtBot, tiny_model_dir: Path, tmp_path: Path
) -> None:
    library = window.library
    assert library is not None
    library.voices.add(
        "Shared", [(voiced(3.0, 24_000), "I am shared.", "imported")], consent_confirmed=True
    )
    clip = tmp_path / "clip.wav"
    sf.write(clip, voiced(3.0, 24_000, f0=190), 24_000)
    commands = [
        [
            "clone",
            "--model",
            str(tiny_model_dir),
            "--voice",
            "Shared",
            "--text",
            f"From the CLI {n}.",
            "--out",
            str(tmp_path / f"cli-{n}.wav"),
            "--max-seconds",
            "0.8",
            "--engine",
            "transformers",
        ]
        for n in range(2)
    ] + [
        ["voices", "add", f"Voice {n}", "--clip", str(clip), "--transcript", "Hello.", "--consent"]
        for n in range(3)
    ]
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "desktop_app", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
            cwd=REPO,
        )
        for args in commands
    ]
    made = 0
    try:
        # the window keeps writing takes and favourites while the CLI processes write theirs
        deadline = time.monotonic() + 120
        while any(child.poll() is None for child in children) and time.monotonic() < deadline:
            take = generate(window, qtbot, f"From the window {made}.")
            assert take.record_id is not None  # type: ignore[attr-defined]
            library.takes.set_favourite(take.record_id, True)  # type: ignore[attr-defined]
            made += 1
    finally:
        errors = []
        for child in children:
            _, err = child.communicate(timeout=120)
            errors.append(err)
    assert [child.returncode for child in children] == [0] * len(children), errors
    assert not any("locked" in err for err in errors)
    assert made >= 1
    texts = {t.text for t in Library().takes.list()}
    assert {"From the CLI 0.", "From the CLI 1."} <= texts
    assert {f"From the window {n}." for n in range(made)} <= texts
    assert len(Library().takes.list(favourites_only=True)) == made
    assert {v.name for v in Library().voices.all()} == {"Shared", "Voice 0", "Voice 1", "Voice 2"}
    assert library.integrity_check() == "ok"
    window.history.fill_voices()  # type: ignore[union-attr]
    assert len(rows(window)) == made + 2


def test_a_newer_library_is_left_alone_and_the_window_still_works(qtbot: QtBot) -> None:
    folder = paths.data_dir() / "library"
    folder.mkdir(parents=True)
    db = sqlite3.connect(folder / "library.sqlite3")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    db.commit()
    db.close()
    before = (folder / "library.sqlite3").read_bytes()
    window = build_window(Settings())
    qtbot.addWidget(window)
    assert window.library is None and window.library_box is None
    assert "newer CSM Studio" in window.library_problem
    assert window.tabs.tabText(1) == "History"
    assert (folder / "library.sqlite3").read_bytes() == before
    window.close()


def test_a_trained_voice_speaks_with_its_adapter_in_the_window(
    window: MainWindow, qtbot: QtBot, tiny_model_dir: Path, tmp_path: Path
) -> None:
    from desktop_app.inference.adapter import read_adapter
    from tests.support.adapters import random_adapter

    folder = random_adapter(tiny_model_dir, tmp_path / "adapter", seed=3)
    library = Library()
    library.voices.add(
        "Ada", [(voiced(3.0, 24_000), "I am Ada.", "imported")], consent_confirmed=True
    )
    library.adapters.attach("Ada", folder, {})
    box = window.library_box
    assert box is not None
    box.refresh()
    box.use("Ada")
    take = generate(window, qtbot, "Said in the trained voice.")
    assert take.request.adapter is not None
    assert take.request.adapter.key == read_adapter(folder).key
    # edited clips are no longer the trained voice: no adapter
    window.voice.remove_clip()
    box.use("Ada")
    library.adapters.detach("Ada")
    assert generate(window, qtbot, "And now untrained.").request.adapter is None
