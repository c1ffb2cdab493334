"""The Conversation tab: a script, a cast from the library, every line made in the worker on the
lines before it, the mix played, and the mix, stems and subtitles exported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from desktop_app.library.store import Library
from desktop_app.ui.conversation_panel import ConversationPanel
from desktop_app.ui.conversation_timeline import speaker_colour
from desktop_app.ui.main_window import MainWindow
from tests.support.signals import voiced, with_silence

SCRIPT = "Ada: Good morning.\nBen: Morning to you.\n\nAda: Coffee?\n"


def cast_two_voices(window: MainWindow) -> None:
    assert window.library is not None
    for name, f0 in (("Ada", 210), ("Ben", 120)):
        clip = with_silence(voiced(3.0, 24_000, f0=f0), 24_000, 0.2, 0.2)
        window.library.voices.add(
            name, [(clip, f"I am {name}.", "imported")], consent_confirmed=True
        )
    window.library_box.refresh()
    window.conversation.editor.setPlainText(SCRIPT)
    window.say.max_seconds.setValue(0.6)
    window.say.seed_lock.setChecked(True)


def test_a_conversation_is_written_cast_made_and_exported(
    window: MainWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    cast_two_voices(window)
    panel = window.conversation
    assert panel.cast.rowCount() == 2
    assert panel.cast_choice() == {"Ada": "Ada", "Ben": "Ben"}
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


def test_lines_are_heard_placed_redone_and_reopened_after_a_restart(
    window: MainWindow, qtbot: QtBot
) -> None:
    cast_two_voices(window)
    panel = window.conversation
    # each speaker's name is in that speaker's colour, as on the timeline
    formats = panel.editor.document().findBlockByNumber(1).layout().formats()
    assert [(f.start, f.length) for f in formats] == [(0, 3)]
    assert formats[0].format.foreground().color() == speaker_colour(1)
    # a cast voice can be heard from its row
    hear = panel.cast.cellWidget(1, 2)
    qtbot.mouseClick(hear, Qt.MouseButton.LeftButton)
    assert window.player.length == round(3.4 * 24_000)

    played = window.player.session
    with qtbot.waitSignal(window.conversation_ready, timeout=60_000):
        panel.generate_button.click()
    first = panel.lines
    # each line is heard as it is made, one after another
    qtbot.waitUntil(lambda: window.player.session >= played + 3, timeout=20_000)

    # the timeline: a lane per speaker, a block per line; a click plays the mix from there
    timeline = panel.timeline
    assert timeline.speakers == ("Ada", "Ben")
    assert [(b.index, b.lane) for b in timeline.blocks] == [(0, 0), (1, 1), (2, 0)]
    ben = timeline.blocks[1]
    centre = timeline.block_rect(ben).center().toPoint()
    qtbot.mouseClick(timeline, Qt.MouseButton.LeftButton, pos=centre)
    assert panel.current_index() == 1  # the editor's cursor went to Ben's line
    assert window.player.length == timeline.total
    qtbot.waitUntil(lambda: (timeline.playhead or 0) > ben.start, timeout=5_000)
    panel.stop()

    # Regenerate line: Ben's line again with a new seed, the others exactly as they were
    with qtbot.waitSignal(window.conversation_ready, timeout=60_000):
        panel.redo_button.click()
    again = panel.lines
    assert again[1].result.seed != first[1].result.seed
    for i in (0, 2):
        np.testing.assert_array_equal(again[i].result.codes, first[i].result.codes)
    # Generate from this line: the lines above stay, the cursor's line and those after are new
    panel.go_to_line(2)
    with qtbot.waitSignal(window.conversation_ready, timeout=60_000):
        panel.from_here_button.click()
    assert panel.lines[1] is again[1] and panel.lines[2] is not again[2]
    assert len(panel.lines[2].context.history) == 2

    # after a restart (a new library connection, a new tab) the conversation is back
    assert window.library is not None
    reopened = ConversationPanel(Library(window.library.folder), window.player)
    qtbot.addWidget(reopened)
    assert reopened.name == panel.name
    assert reopened.editor.toPlainText() == SCRIPT
    assert reopened.cast_choice() == {"Ada": "Ada", "Ben": "Ben"}
    assert [line.index for line in reopened.lines] == [0, 1, 2]
    np.testing.assert_allclose(reopened.mix()[0], panel.mix()[0], atol=1e-6)
    for kept, made in zip(reopened.lines, panel.lines, strict=True):
        np.testing.assert_array_equal(kept.result.codes, made.result.codes)
    # the lines' takes are in the History, marked as conversation takes
    sources = {t.source for t in window.library.takes.list()}
    assert sources == {"conversation"}


def test_a_trained_cast_voice_speaks_its_lines_with_its_adapter(
    window: MainWindow, qtbot: QtBot, tiny_model_dir: Path, tmp_path: Path
) -> None:
    from tests.support.adapters import random_adapter

    cast_two_voices(window)
    assert window.library is not None
    window.library.adapters.attach("Ben", random_adapter(tiny_model_dir, tmp_path / "b", 1), {})
    with qtbot.waitSignal(window.conversation_ready, timeout=60_000) as made:
        window.conversation.generate_button.click()
    trained = [line.request.adapter is not None for line in made.args[0]]
    assert trained == [False, True, False]  # Ada, Ben, Ada
