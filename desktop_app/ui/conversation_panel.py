"""The Conversation tab: a script of several voices, its cast from the library, the lines as
they are made, the mix played, and the mix, stems and subtitles exported.

The lines are made in the inference worker (one job, line after line, each on the lines before
it: :func:`desktop_app.conversation.speak.speak_script`); this panel only edits, lists and
writes files. Not yet here: a timeline with one lane per speaker, redoing one line, keeping
conversations in the library (see the README).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app.audio.io import TakeMetadata, write_audio
from desktop_app.audio.player import Player
from desktop_app.conversation import render
from desktop_app.conversation.script import Script, parse_script
from desktop_app.conversation.speak import SpokenLine
from desktop_app.defaults import SAMPLE_RATE
from desktop_app.errors import UserError
from desktop_app.files import write_text_atomic
from desktop_app.library.store import Library

EXAMPLE = """Ada: Good morning. Did you sleep at all?
Ben: Not a wink.

Ada: Then coffee first.
"""


class ConversationPanel(QWidget):
    """Script, cast, lines, play and export."""

    error = Signal(object)
    generate_requested = Signal(object, object)  # Script, {speaker: library voice name}

    def __init__(self, library: Library | None, player: Player, parent: QWidget | None = None):
        super().__init__(parent)
        self.library = library
        self.player = player
        self.lines: list[SpokenLine] = []
        self.script: Script | None = None
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Script: one `Name: what they say` per line; a blank line pauses"))
        self.editor = QPlainTextEdit(EXAMPLE)
        self.editor.setAccessibleName("Conversation script")
        self.editor.setToolTip("Name: text per line; [pause 1.5] for a pause; # for a comment")
        self.editor.textChanged.connect(self.refresh_cast)
        layout.addWidget(self.editor, 2)
        self.cast = QTableWidget(0, 2)
        self.cast.setHorizontalHeaderLabels(["Speaker", "Voice (from the library)"])
        self.cast.horizontalHeader().setStretchLastSection(True)
        self.cast.setAccessibleName("Cast")
        layout.addWidget(self.cast, 1)
        self.problem = QLabel("")
        self.problem.setWordWrap(True)
        layout.addWidget(self.problem)
        row = QHBoxLayout()
        self.generate_button = QPushButton("Generate all")
        self.generate_button.setToolTip("Speak every line, each on the lines before it")
        self.generate_button.clicked.connect(self.generate)
        self.play_button = QPushButton("▶ Play mix")
        self.play_button.clicked.connect(self.play)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Write the mix, one stem per speaker and subtitles")
        self.export_button.clicked.connect(self.export_dialog)
        for button in (self.generate_button, self.play_button, self.export_button):
            row.addWidget(button)
        row.addStretch()
        layout.addLayout(row)
        self.line_list = QListWidget()
        self.line_list.setAccessibleName("Lines made")
        self.line_list.itemDoubleClicked.connect(lambda _: self.play_line())
        layout.addWidget(self.line_list, 2)
        self.refresh_cast()
        self._update_buttons()

    # -- the script and its cast ---------------------------------------------------------------

    def refresh_cast(self) -> None:
        """Parse the script; one cast row per speaker (a voice already chosen stays)."""
        try:
            self.script = parse_script(self.editor.toPlainText())
        except UserError as exc:
            self.script = None
            self.problem.setText(str(exc))
            self._update_buttons()
            return
        self.problem.setText("")
        chosen = self.cast_choice()
        voices = [v.name for v in self.library.voices()] if self.library is not None else []
        self.cast.setRowCount(len(self.script.speakers))
        for row, name in enumerate(self.script.speakers):
            self.cast.setCellWidget(row, 0, QLabel(name))
            box = QComboBox()
            box.addItems(voices)
            box.setAccessibleName(f"Voice of {name}")
            if chosen.get(name) in voices:
                box.setCurrentText(chosen[name])
            elif row < len(voices):
                box.setCurrentIndex(row)
            self.cast.setCellWidget(row, 1, box)
        self._update_buttons()

    def cast_choice(self) -> dict[str, str]:
        """Each speaker's chosen library voice."""
        out = {}
        for row in range(self.cast.rowCount()):
            label, box = self.cast.cellWidget(row, 0), self.cast.cellWidget(row, 1)
            if isinstance(label, QLabel) and isinstance(box, QComboBox) and box.currentText():
                out[label.text()] = box.currentText()
        return out

    def generate(self) -> None:
        if self.script is None:
            self.error.emit(UserError(self.problem.text() or "write a script first"))
            return
        cast = self.cast_choice()
        missing = [name for name in self.script.speakers if name not in cast]
        if missing:
            self.error.emit(
                UserError(f"{missing[0]} has no voice: save a voice in the library and pick it")
            )
            return
        self.lines = []
        self.line_list.clear()
        self.generate_requested.emit(self.script, cast)

    # -- lines ---------------------------------------------------------------------------------

    def add_line(self, line: SpokenLine) -> None:
        """A line was made: list it (with its check)."""
        self.lines.append(line)
        check = f" · {line.check.verdict}" if line.check is not None else ""
        self.line_list.addItem(
            f"{line.index + 1}. {line.turn.speaker}: {line.turn.text} "
            f"({line.result.seconds:.1f} s, {len(line.context.history)} past lines{check})"
        )
        self._update_buttons()

    def set_lines(self, lines: list[SpokenLine]) -> None:
        """The conversation is made (in order)."""
        self.lines = list(lines)
        self._update_buttons()

    def mix(self) -> tuple[np.ndarray, list[render.Placement]]:
        spans = render.place(self.lines, SAMPLE_RATE, lead_in=self._lead_in())
        return render.mix(self.lines, spans), spans

    def _lead_in(self) -> float:
        return self.script.lead_in if self.script is not None else 0.0

    def play(self) -> None:
        if self.lines:
            try:
                self.player.play(self.mix()[0], SAMPLE_RATE)
            except UserError as exc:
                self.error.emit(exc)

    def play_line(self) -> None:
        row = self.line_list.currentRow()
        if 0 <= row < len(self.lines):
            try:
                self.player.play(self.lines[row].result.audio, SAMPLE_RATE)
            except UserError as exc:
                self.error.emit(exc)

    def export_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export the conversation into")
        if folder:
            self.export(Path(folder))

    def export(self, folder: Path) -> list[Path]:
        """conversation.wav, one stem per speaker and conversation.srt into ``folder``."""
        written: list[Path] = []
        try:
            audio, spans = self.mix()
            speakers = sorted({line.turn.speaker for line in self.lines})
            meta = TakeMetadata(
                "conversation", "", self.lines[0].result.seed, voice=", ".join(speakers)
            )
            written.append(write_audio(folder / "conversation.wav", audio, SAMPLE_RATE, meta))
            for number, (name, track) in enumerate(render.stems(self.lines, spans).items(), 1):
                stem = folder / f"stem-{number:02d}-{render.file_part(name)}.wav"
                written.append(write_audio(stem, track, SAMPLE_RATE, meta))
            subtitles = folder / "conversation.srt"
            write_text_atomic(subtitles, render.subtitles(self.lines, spans, SAMPLE_RATE, "srt"))
            written.append(subtitles)
        except UserError as exc:
            self.error.emit(exc)
        return written

    def _update_buttons(self) -> None:
        self.generate_button.setEnabled(self.script is not None)
        for button in (self.play_button, self.export_button):
            button.setEnabled(bool(self.lines))
