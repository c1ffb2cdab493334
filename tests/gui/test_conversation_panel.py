"""The Conversation tab: a script, a cast from the library, every line made in the worker on the
lines before it, the mix played, and the mix, stems and subtitles exported."""

from __future__ import annotations

from pathlib import Path

import soundfile as sf
from pytestqt.qtbot import QtBot

from desktop_app.ui.main_window import MainWindow
from tests.support.signals import voiced, with_silence


def test_a_conversation_is_written_cast_made_and_exported(
    window: MainWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    assert window.library is not None
    for name, f0 in (("Ada", 210), ("Ben", 120)):
        clip = with_silence(voiced(3.0, 24_000, f0=f0), 24_000, 0.2, 0.2)
        window.library.add_voice(
            name, [(clip, f"I am {name}.", "imported")], consent_confirmed=True
        )
    panel = window.conversation
    panel.editor.setPlainText("Ada: Good morning.\nBen: Morning to you.\n\nAda: Coffee?\n")
    assert panel.cast.rowCount() == 2
    assert panel.cast_choice() == {"Ada": "Ada", "Ben": "Ben"}
    window.max_seconds.setValue(0.6)
    window.seed_lock.setChecked(True)
    with qtbot.waitSignal(window.conversation_ready, timeout=60_000) as made:
        panel.generate_button.click()
    lines = made.args[0]
    assert [(line.turn.speaker, line.speaker_id) for line in lines] == [
        ("Ada", 0),
        ("Ben", 1),
        ("Ada", 0),
    ]
    assert [len(line.context.history) for line in lines] == [0, 1, 2]
    assert panel.line_list.count() == 3
    assert panel.play_button.isEnabled()
    files = panel.export(tmp_path)
    assert sorted(f.name for f in files) == [
        "conversation.srt",
        "conversation.wav",
        "stem-01-Ada.wav",
        "stem-02-Ben.wav",
    ]
    mix = sf.info(str(tmp_path / "conversation.wav")).frames
    assert sf.info(str(tmp_path / "stem-02-Ben.wav")).frames == mix
    assert (tmp_path / "conversation.srt").read_text().count(" --> ") == 3


def test_a_bad_script_says_which_line(window: MainWindow) -> None:
    panel = window.conversation
    panel.editor.setPlainText("Ada: fine\nno speaker here\n")
    assert "line 2: expected `Name: what they say`" in panel.problem.text()
    assert not panel.generate_button.isEnabled()
