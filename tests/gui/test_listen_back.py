"""Listening back in the window: clips transcribed in the worker (hand edits kept), every take
checked with its verdict in the row, the history's flagged filter, best of N and its candidates,
and trimming a clip to whole words."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from desktop_app.inference.random_checkpoint import WHISPER_SAYS
from desktop_app.ui.main_window import MainWindow
from tests.support.gui import drag_select, drop_file, generate
from tests.support.speech import espeak

HEARD = WHISPER_SAYS.strip()
VOICE = "This is my voice, read aloud slowly, so that the clip is long enough to clone."


@pytest.fixture
def listening(
    qtbot: QtBot, tiny_model_dir: Path, tiny_whisper_dir: Path, tiny_speaker_dir: Path
) -> Any:
    """The window with CSM and both listen-back models loaded through its worker."""
    from desktop_app.config import Settings
    from desktop_app.ui.app import build_window

    settings = Settings(
        model=str(tiny_model_dir),
        asr_model=str(tiny_whisper_dir),
        speaker_model=str(tiny_speaker_dir),
        play_while_generating=False,
    )
    win = build_window(settings)
    qtbot.addWidget(win)
    win.resize(1280, 820)  # the desktop's size (the offscreen screen is 800 x 800)
    win.show()
    with qtbot.waitSignal(win.model_ready, timeout=60_000):
        win.loader.load(str(tiny_model_dir))
    return win


def test_a_clip_is_transcribed_on_import_and_a_hand_edit_is_kept(
    listening: MainWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    window = listening
    assert window.engine_info is not None
    assert window.labels.checks.text() == (
        f"checks: words ({window.settings.asr_model}), voice ({window.settings.speaker_model})"
    )
    with qtbot.waitSignal(window.clip_transcribed, timeout=30_000):
        drop_file(window, espeak(tmp_path / "voice.wav", VOICE))
    (clip,) = window.voice.clips
    assert clip.transcript == HEARD
    assert window.voice.transcript.toPlainText() == HEARD
    assert [w.word for w in clip.words] == HEARD.split()

    # the user corrects it while a transcription runs: theirs stays
    window.transcriber.transcribe(clip)
    window.voice.transcript.setPlainText("What I really said.")
    with qtbot.waitSignal(window.clip_transcribed, timeout=30_000):
        pass
    assert clip.transcript == "What I really said."
    assert "your own transcript was kept" in window.job_status.label.text()

    # the Transcribe button asks for the recogniser's text again
    with qtbot.waitSignal(window.clip_transcribed, timeout=30_000):
        qtbot.mouseClick(window.voice.transcribe_button, Qt.MouseButton.LeftButton)
    assert clip.transcript == HEARD


def test_every_take_is_checked_and_the_history_filters_flagged_ones(
    listening: MainWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    window = listening
    with qtbot.waitSignal(window.clip_transcribed, timeout=30_000):
        drop_file(window, espeak(tmp_path / "voice.wav", VOICE))
    take = generate(window, qtbot, "Say this in my voice.")
    check = take.check
    assert check is not None
    assert check.verdict in ("good", "check", "bad")
    assert check.reasons  # random weights never earn a clean verdict
    row = window.takes.take_list.item(0).text()
    assert {"good": "✓", "check": "⚠", "bad": "✗"}[check.verdict] in row
    assert check.reasons[0] in window.takes.details.text()
    history = window.history
    assert history is not None
    history.refresh()
    column = history.COLUMNS.index("Check")
    item = history.tree.topLevelItem(0)
    assert item is not None and check.verdict in item.text(column)
    assert check.reasons[0] in item.toolTip(column)
    history.flagged_only.setChecked(True)
    assert history.tree.topLevelItemCount() == (0 if check.verdict == "good" else 1)

    # checks off: the next take has none
    window.say.check_takes.setChecked(False)
    assert generate(window, qtbot, "No check this time.").check is None


def test_best_of_three_lists_candidates_and_another_can_be_kept(
    listening: MainWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    window = listening
    with qtbot.waitSignal(window.clip_transcribed, timeout=30_000):
        drop_file(window, espeak(tmp_path / "voice.wav", VOICE))
    window.say.seed_lock.setChecked(True)
    window.say.seed.setValue(20)
    window.say.candidates.setValue(3)
    take = generate(window, qtbot, "Three candidates, one kept.")
    assert take.best_of is not None
    (chunk,) = take.best_of.chunks
    assert [c.seed for c in chunk.candidates] == [20, 21, 22]
    picker = window.takes.candidate_picker
    assert picker.isVisible() and picker.count() == 3
    assert "(kept)" in picker.itemText(chunk.chosen)
    other = (chunk.chosen + 1) % 3
    picker.setCurrentIndex(other)
    with qtbot.waitSignal(window.take_ready, timeout=10_000) as kept:
        qtbot.mouseClick(window.takes.candidate_button, Qt.MouseButton.LeftButton)
    second = kept.args[0]
    assert second.result.seed == chunk.candidates[other].seed
    assert second.check == chunk.candidates[other].check
    assert len(window.takes.takes) == 2


def test_a_clip_is_trimmed_to_whole_words_with_undo(
    listening: MainWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    window = listening
    with qtbot.waitSignal(window.clip_transcribed, timeout=30_000):
        drop_file(
            window,
            espeak(
                tmp_path / "voice.wav",
                "Some words to cut between, in a clip that is long enough to be a voice, please.",
            ),
        )
    (clip,) = window.voice.clips
    before = clip.audio.size
    word = next(w for w in clip.words if w.end - w.start > 0.1)
    view = window.voice.waveform
    inside = (word.start + word.end) / 2 / (before / 24_000)
    drag_select(qtbot, view, int(view.width() * inside), view.width() - 1)
    qtbot.mouseClick(window.voice.tool_buttons["words"], Qt.MouseButton.LeftButton)
    assert clip.audio.size < before
    assert clip.words[0].start == pytest.approx(0.0, abs=1 / 24_000)  # begins with a whole word
    window.undo.undo()
    assert clip.audio.size == before
    assert clip.words[0].word == HEARD.split()[0]


def test_the_listen_back_models_are_chosen_in_the_model_menu(
    qtbot: QtBot,
    window: MainWindow,
    tiny_whisper_dir: Path,
    tiny_speaker_dir: Path,
    tmp_path: Path,
) -> None:
    assert window.labels.checks.text() == "checks: ending only"  # none installed in the tests
    assert "download-model --asr" in window.labels.checks.toolTip()
    window.loader.choose_listen_models()
    dialog = window.loader.listen_dialog
    dialog.asr.setText(str(tmp_path / "nowhere"))
    dialog.accept_models()
    assert "speech-recognition model folder not found" in dialog.problem.text()
    assert dialog.isVisible()
    dialog.asr.setText(str(tiny_whisper_dir))
    dialog.speaker.setText(str(tiny_speaker_dir))
    with qtbot.waitSignal(window.model_ready, timeout=60_000):
        dialog.accept_models()  # accepted: the model reloads with both beside it
    assert window.settings.asr_model == str(tiny_whisper_dir)
    assert window.labels.checks.text().startswith("checks: words (")


def test_a_long_text_can_be_said_sentence_after_sentence(window: MainWindow, qtbot: QtBot) -> None:
    from desktop_app.ui.app import smoke_clip

    window.voice.add_clip(smoke_clip())
    text = (
        "The first sentence of this text is long enough to be a chunk of its own, as you see. "
        "The second sentence is another chunk, said by the same voice with the next seed, too."
    )
    batched = generate(window, qtbot, text, seconds=0.6)
    assert [p.result.engine for p in batched.result.parts] == ["fast (batch of 2)"] * 2
    window.say.coherent.setChecked(True)
    coherent = generate(window, qtbot, text, seconds=0.6)
    assert [p.result.engine for p in coherent.result.parts] == ["fast", "fast"]  # one by one
    assert len(coherent.result.parts) == 2
