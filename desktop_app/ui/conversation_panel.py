"""The Conversation tab: a script of several voices, its cast from the library, the lines as
they are made (and heard as they come), a timeline of the mix, and the mix, stems and subtitles
exported. Conversations are kept in the library and the last one reopens after a restart.

The lines are made in the inference worker (one job, line after line, each on the lines before
it: :func:`desktop_app.conversation.speak.speak_script`); this panel edits, lists, keeps and
writes files. *Generate all* makes every line; *Generate from this line* keeps the lines above
the editor's cursor and makes the rest; *Regenerate line* makes the cursor's line again with a
new seed while every other line stays as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import (
    QFont,
    QKeySequence,
    QShortcut,
    QSyntaxHighlighter,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
)
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.audio.io import TakeMetadata, write_audio
from desktop_app.audio.player import Player
from desktop_app.conversation import render, saved
from desktop_app.conversation.script import Script, Turn, parse_script
from desktop_app.conversation.speak import SpokenLine
from desktop_app.defaults import SAMPLE_RATE
from desktop_app.errors import UserError
from desktop_app.files import write_text_atomic
from desktop_app.library.store import Library
from desktop_app.session.requests import new_seed
from desktop_app.ui.conversation_timeline import Block, ConversationTimeline, speaker_colour
from desktop_app.ui.icons import labelled

EXAMPLE = """Ada: Good morning. Did you sleep at all?
Ben: Not a wink.

Ada: Then coffee first.
"""

_NAME = re.compile(r"^\s*([^#\[:][^:]*?)\s*:")


@dataclass(frozen=True)
class SpeakOrder:
    """What the tab asks the window to make: the script, its cast, which lines (None: all),
    the lines kept as they are (the context of the others) and the base seed (None: the
    window's seed setting)."""

    script: Script
    cast: dict[str, str]
    lines: tuple[int, ...] | None
    made: tuple[SpokenLine, ...]
    seed: int | None


class ScriptHighlighter(QSyntaxHighlighter):
    """Each speaker's name in the script in that speaker's colour (as on the timeline)."""

    def __init__(self, document: QTextDocument) -> None:
        super().__init__(document)
        self.speakers: list[str] = []

    def set_speakers(self, speakers: tuple[str, ...]) -> None:
        if list(speakers) != self.speakers:
            self.speakers = list(speakers)
            self.rehighlight()

    def highlightBlock(self, text: str) -> None:  # noqa: N802 (Qt's name)
        match = _NAME.match(text)
        if match is None:
            return
        name = match.group(1)
        if name not in self.speakers:
            return
        form = QTextCharFormat()
        form.setForeground(speaker_colour(self.speakers.index(name)))
        form.setFontWeight(QFont.Weight.Bold)
        self.setFormat(match.start(1), len(name), form)


class ConversationPanel(QWidget):
    """Script, cast, lines, timeline, play and export; kept in the library."""

    error = Signal(object)
    generate_requested = Signal(object)  # SpeakOrder
    exported = Signal(object)  # list of Path: what an export wrote

    def __init__(self, library: Library | None, player: Player, parent: QWidget | None = None):
        super().__init__(parent)
        self.library = library
        self.player = player
        self.name: str | None = None  # the conversation's name in the library
        self.seed: int | None = None  # its base seed, once lines were made
        self.made: dict[int, SpokenLine] = {}
        self.script: Script | None = None
        self.busy = False
        self._queue: list[SpokenLine] = []  # lines to hear as they are made
        self._mode = ""  # what the player plays for this tab: "", "mix" or "line"
        layout = QVBoxLayout(self)

        top = QHBoxLayout()
        top.addWidget(QLabel("Conversation:"))
        self.conversation_box = QComboBox()
        self.conversation_box.setAccessibleName("Saved conversations")
        self.conversation_box.setToolTip("Conversations kept in the library; choose one to open")
        self.conversation_box.setMinimumContentsLength(16)
        self.conversation_box.activated.connect(
            lambda _: self.open(self.conversation_box.currentText())
        )
        top.addWidget(self.conversation_box, 1)
        self.new_button = QPushButton("New…")
        self.new_button.setToolTip("Start a new conversation (the current one stays saved)")
        self.new_button.clicked.connect(self.new_dialog)
        self.delete_button = QPushButton("Forget")
        self.delete_button.setToolTip(
            "Remove this conversation from the library (its takes stay in the History)"
        )
        self.delete_button.clicked.connect(self.forget)
        top.addWidget(self.new_button)
        top.addWidget(self.delete_button)
        layout.addLayout(top)

        layout.addWidget(QLabel("Script: one `Name: what they say` per line; a blank line pauses"))
        self.editor = QPlainTextEdit(EXAMPLE)
        self.editor.setAccessibleName("Conversation script")
        self.editor.setToolTip("Name: text per line; [pause 1.5] for a pause; # for a comment")
        self.highlighter = ScriptHighlighter(self.editor.document())
        self.editor.textChanged.connect(self.refresh_cast)
        self.editor.textChanged.connect(self._schedule_save)
        layout.addWidget(self.editor, 2)
        self.cast = QTableWidget(0, 3)
        self.cast.setHorizontalHeaderLabels(["Speaker", "Voice (from the library)", ""])
        header = self.cast.horizontalHeader()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.cast.setAccessibleName("Cast")
        self.cast.verticalHeader().hide()
        layout.addWidget(self.cast, 1)
        self.problem = QLabel("")
        self.problem.setWordWrap(True)
        layout.addWidget(self.problem)

        row = QHBoxLayout()
        self.generate_button = QPushButton("Generate all")
        self.generate_button.setToolTip("Speak every line, each on the lines before it")
        self.generate_button.clicked.connect(self.generate)
        self.from_here_button = QPushButton("Generate from this line")
        self.from_here_button.setToolTip(
            "Keep the lines above the cursor; make the cursor's line and every line after it"
        )
        self.from_here_button.clicked.connect(self.generate_from_here)
        self.redo_button = QPushButton("Regenerate line")
        self.redo_button.setToolTip(
            "Make the cursor's line again with a new seed; every other line stays (Ctrl+Shift+R)"
        )
        self.redo_button.clicked.connect(self.regenerate_line)
        self.play_button = labelled(QPushButton(), "▶ Play mix")
        self.play_button.setToolTip("Play the conversation from the start, or stop it")
        self.play_button.clicked.connect(self.toggle_play)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Write the mix, one stem per speaker and subtitles")
        self.export_button.clicked.connect(self.export_dialog)
        for button in (
            self.generate_button,
            self.from_here_button,
            self.redo_button,
            self.play_button,
            self.export_button,
        ):
            button.setAccessibleName(button.text().strip("▶ "))
            if button is self.play_button:  # making on one row, hearing and export on the next
                row.addStretch()
                layout.addLayout(row)
                row = QHBoxLayout()
            row.addWidget(button)
        row.addStretch()
        self.hear_as_made = QCheckBox("Hear lines as they are made")
        self.hear_as_made.setChecked(True)
        self.hear_as_made.setToolTip("Play each line as soon as the worker has made it")
        row.addWidget(self.hear_as_made)
        layout.addLayout(row)
        # Ctrl+R is Record's: this one is Ctrl+Shift+R, and only while the tab has the focus
        redo = QShortcut(
            QKeySequence("Ctrl+Shift+R"),
            self,
            self.regenerate_line,
            context=Qt.ShortcutContext.WidgetWithChildrenShortcut,
        )
        redo.setWhatsThis("Regenerate the conversation's line under the cursor")

        self.timeline = ConversationTimeline()
        self.timeline.seek_requested.connect(self.play_from)
        self.timeline.line_clicked.connect(self.go_to_line)
        layout.addWidget(self.timeline)
        self.line_list = QListWidget()
        self.line_list.setAccessibleName("Lines")
        self.line_list.setToolTip("Every line of the script; double-click to hear a made line")
        self.line_list.currentRowChanged.connect(self._list_row_chosen)
        self.line_list.itemDoubleClicked.connect(lambda _: self.play_line())
        layout.addWidget(self.line_list, 2)

        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(800)
        self._save_timer.timeout.connect(self.save)
        self._tick_timer = QTimer(self)
        self._tick_timer.setInterval(40)
        self._tick_timer.timeout.connect(self._tick)
        self._refresh_saved()
        if self.conversation_box.count():
            self.open(self.conversation_box.itemText(0))
        else:
            self.refresh_cast()

    # -- the library ---------------------------------------------------------------------------

    def _refresh_saved(self) -> None:
        names = [c.name for c in self.library.conversations.all()] if self.library else []
        self.conversation_box.blockSignals(True)
        self.conversation_box.clear()
        self.conversation_box.addItems(names)
        if self.name in names:
            self.conversation_box.setCurrentText(self.name)
        self.conversation_box.blockSignals(False)
        self.delete_button.setEnabled(self.name in names)

    def _unused_name(self) -> str:
        taken = {c.name for c in self.library.conversations.all()} if self.library else set()
        names = (f"Conversation {n}" for n in range(1, len(taken) + 2))
        return next(name for name in names if name not in taken)

    def save(self) -> None:
        """Keep the script, cast and seed in the library (when the script parses)."""
        self._save_timer.stop()
        if self.library is None or self.script is None:
            return
        if self.name is None:
            self.name = self._unused_name()
        try:
            saved.save_script(
                self.library,
                self.name,
                self.editor.toPlainText(),
                self.script,
                self.cast_choice(),
                self.seed if self.seed is not None else 0,
            )
        except UserError as exc:
            self.error.emit(exc)
            return
        self._refresh_saved()

    def close_down(self) -> None:
        """Keep what is unsaved, stop playing and let the library go (the window closes)."""
        self.save()
        self.stop()
        self.library = None

    def _schedule_save(self) -> None:
        if self.library is not None:
            self._save_timer.start()

    def open(self, name: str) -> None:
        """Show a stored conversation: its script, cast and the lines made of it."""
        if self.library is None or not name:
            return
        self.save()
        try:
            reopened = saved.reopen(self.library.conversations.get(name))
        except UserError as exc:
            self.error.emit(exc)
            return
        self.stop()
        self.name = name
        self.seed = reopened.record.seed
        self.made = {line.index: line for line in reopened.lines}
        self.editor.blockSignals(True)
        self.editor.setPlainText(reopened.record.script)
        self.editor.blockSignals(False)
        self.refresh_cast(chosen=reopened.record.cast)
        self._refresh_saved()
        if reopened.lost:
            self.problem.setText(
                f"{reopened.lost} line(s) of {name} could not be read from the library; "
                "make them again"
            )

    def new_dialog(self) -> None:
        name, ok = QInputDialog.getText(self, "New conversation", "Name:", text=self._unused_name())
        if ok and name.strip():
            self.new(name.strip())

    def new(self, name: str) -> None:
        """Start an empty conversation named ``name`` (the example script, no lines)."""
        self.save()
        self.stop()
        self.name = name
        self.seed = None
        self.made = {}
        self.editor.setPlainText(EXAMPLE)
        self.save()

    def forget(self) -> None:
        """Remove the current conversation from the library (its takes stay in the history)."""
        if self.library is None or self.name is None:
            return
        try:
            self.library.conversations.remove(self.name)
        except UserError as exc:
            self.error.emit(exc)
            return
        self.name = None
        self._refresh_saved()
        if self.conversation_box.count():
            self.open(self.conversation_box.itemText(0))
        else:
            self.made = {}
            self.refresh_cast()

    # -- the script and its cast ---------------------------------------------------------------

    def refresh_cast(self, chosen: dict[str, str] | None = None) -> None:
        """Parse the script; one cast row per speaker (a voice already chosen stays); made
        lines whose turn changed are let go."""
        try:
            self.script = parse_script(self.editor.toPlainText())
        except UserError as exc:
            self.script = None
            self.problem.setText(str(exc))
            self._update_buttons()
            return
        self.problem.setText("")
        self.highlighter.set_speakers(self.script.speakers)
        chosen = chosen if isinstance(chosen, dict) else self.cast_choice()
        voices = [v.name for v in self.library.voices.all()] if self.library is not None else []
        self.cast.setRowCount(len(self.script.speakers))
        for row, name in enumerate(self.script.speakers):
            label = QLabel(name)
            label.setStyleSheet(f"color: {speaker_colour(row).name()}; font-weight: bold")
            self.cast.setCellWidget(row, 0, label)
            box = QComboBox()
            box.addItems(voices)
            box.setAccessibleName(f"Voice of {name}")
            box.setToolTip(f"The library voice that speaks {name}'s lines")
            if chosen.get(name) in voices:
                box.setCurrentText(chosen[name])
            elif row < len(voices):
                box.setCurrentIndex(row)
            box.currentTextChanged.connect(self._schedule_save)
            self.cast.setCellWidget(row, 1, box)
            hear = QToolButton()
            labelled(hear, "▶")
            hear.setToolTip(f"Hear the voice cast as {name}")
            hear.setAccessibleName(f"Hear the voice of {name}")
            hear.clicked.connect(lambda _=False, b=box: self.play_voice(b.currentText()))
            self.cast.setCellWidget(row, 2, hear)
        self.cast.resizeColumnToContents(2)
        self.made = {
            i: _with_turn(line, self.script.turns[i])
            for i, line in self.made.items()
            if i < len(self.script.turns)
            and (self.script.turns[i].speaker, self.script.turns[i].text)
            == (line.turn.speaker, line.turn.text)
        }
        self._show_lines()

    def cast_choice(self) -> dict[str, str]:
        """Each speaker's chosen library voice."""
        out = {}
        for row in range(self.cast.rowCount()):
            label, box = self.cast.cellWidget(row, 0), self.cast.cellWidget(row, 1)
            if isinstance(label, QLabel) and isinstance(box, QComboBox) and box.currentText():
                out[label.text()] = box.currentText()
        return out

    def play_voice(self, voice: str) -> None:
        """Hear the first clip of a library voice."""
        if self.library is None or not voice:
            return
        try:
            clips = self.library.voices.get(voice).clips
            if clips:
                self.stop()
                self.player.play(clips[0].audio(), SAMPLE_RATE)
        except UserError as exc:
            self.error.emit(exc)

    # -- making lines --------------------------------------------------------------------------

    def current_index(self) -> int | None:
        """The script line under the editor's cursor (or the next line below it)."""
        if self.script is None or not self.script.turns:
            return None
        at = self.editor.textCursor().blockNumber() + 1
        for index, turn in enumerate(self.script.turns):
            if turn.line >= at:
                return index
        return len(self.script.turns) - 1

    def go_to_line(self, index: int) -> None:
        """Put the editor's cursor on line ``index`` of the script."""
        if self.script is None or not 0 <= index < len(self.script.turns):
            return
        block = self.editor.document().findBlockByNumber(self.script.turns[index].line - 1)
        cursor = QTextCursor(block)
        self.editor.setTextCursor(cursor)
        if self.line_list.currentRow() != index:
            self.line_list.setCurrentRow(index)

    def _list_row_chosen(self, row: int) -> None:
        if row >= 0:
            self.go_to_line(row)

    def _order(self, lines: tuple[int, ...] | None, keep: set[int], seed: int | None) -> None:
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
        self.save()
        made = tuple(self.made[i] for i in sorted(self.made) if i in keep)
        self.generate_requested.emit(SpeakOrder(self.script, cast, lines, made, seed))

    def generate(self) -> None:
        """Make every line (with the window's seed setting)."""
        self._order(None, set(), None)

    def generate_from_here(self) -> None:
        """Keep the lines above the cursor's line; make it and every line after it."""
        index = self.current_index()
        if index is None or self.script is None:
            return
        missing = [i for i in range(index) if i not in self.made]
        if missing:
            self.error.emit(
                UserError(
                    f"line {self.script.turns[missing[0]].line} is not made yet; generate from "
                    "there (or all) first, so that the lines after it have it as context"
                )
            )
            return
        self._order(tuple(range(index, len(self.script.turns))), set(range(index)), self.seed)

    def regenerate_line(self) -> None:
        """Make the cursor's line again with a new seed; the others stay as they are."""
        index = self.current_index()
        if index is None or self.script is None or self.busy:
            return

        keep = set(self.made) - {index}
        self._order((index,), keep, new_seed())

    def started(self, seed: int) -> None:
        """The window started an order with this base seed."""
        self.busy = True
        if self.seed is None or not self.made:
            self.seed = seed
        self._queue = []
        self._update_buttons()

    def add_line(self, line: SpokenLine, model: str = "", revision: str = "") -> None:
        """A line was made: keep it in the library, list and place it, and play it."""
        self.made[line.index] = line
        if self.library is not None and self.name is not None:
            voice = self.cast_choice().get(line.turn.speaker)
            try:
                saved.keep_line(
                    self.library, self.name, line, voice=voice, model=model, model_revision=revision
                )
            except UserError as exc:
                self.error.emit(exc)
        self._show_lines()
        if self.hear_as_made.isChecked():
            self._queue.append(line)
            if self._mode != "line" or not self.player.playing:
                self._play_next()

    def set_lines(self, lines: list[SpokenLine]) -> None:
        """The order is done (``lines``: every made line, in order)."""
        self.busy = False
        self.made = {line.index: line for line in lines}
        self._show_lines()

    def failed(self) -> None:
        """The order stopped (cancelled or failed); the lines made so far stay."""
        self.busy = False
        self._update_buttons()

    # -- lines, mix and timeline ---------------------------------------------------------------

    @property
    def lines(self) -> list[SpokenLine]:
        """The made lines, in the script's order."""
        return [self.made[i] for i in sorted(self.made)]

    def _show_lines(self) -> None:
        turns = self.script.turns if self.script is not None else ()
        row = self.line_list.currentRow()
        self.line_list.blockSignals(True)
        self.line_list.clear()
        for index, turn in enumerate(turns):
            line = self.made.get(index)
            if line is None:
                self.line_list.addItem(f"{index + 1}. {turn.speaker}: {turn.text} · not made yet")
                continue
            check = f" · {line.check.verdict}" if line.check is not None else ""
            context = f", {len(line.context.history)} past lines" if line.context.history else ""
            self.line_list.addItem(
                f"{index + 1}. {turn.speaker}: {turn.text} "
                f"({line.result.seconds:.1f} s{context}{check})"
            )
        if 0 <= row < self.line_list.count():
            self.line_list.setCurrentRow(row)
        self.line_list.blockSignals(False)
        speakers = self.script.speakers if self.script is not None else ()
        lines = self.lines
        spans = render.place(lines, SAMPLE_RATE, lead_in=self._lead_in())
        blocks = [
            Block(line.index, speakers.index(line.turn.speaker), span.start, span.end)
            for line, span in zip(lines, spans, strict=True)
            if line.turn.speaker in speakers
        ]
        self.timeline.set_lines(speakers, blocks, spans[-1].end if spans else 0)
        self._update_buttons()

    def mix(self) -> tuple[np.ndarray, list[render.Placement]]:
        lines = self.lines
        spans = render.place(lines, SAMPLE_RATE, lead_in=self._lead_in())
        return render.mix(lines, spans), spans

    def _lead_in(self) -> float:
        return self.script.lead_in if self.script is not None else 0.0

    # -- playing -------------------------------------------------------------------------------

    def toggle_play(self) -> None:
        if self._mode == "mix" and self.player.playing:
            self.stop()
        else:
            self.play_from(0)

    def play_from(self, sample: int) -> None:
        """Play the mix from ``sample`` on, the playhead following."""
        if not self.made:
            return
        try:
            self._queue = []
            self.player.play(self.mix()[0], SAMPLE_RATE, start=sample)
        except UserError as exc:
            self.error.emit(exc)
            return
        self._mode = "mix"
        labelled(self.play_button, "■ Stop")
        self._tick_timer.start()

    def play_line(self) -> None:
        row = self.line_list.currentRow()
        if row in self.made:
            self._queue = [self.made[row]]
            self._play_next()

    def _play_next(self) -> None:
        if not self._queue:
            return
        line = self._queue.pop(0)
        try:
            self.player.play(line.result.audio, SAMPLE_RATE)
        except UserError as exc:
            self._queue = []
            self.error.emit(exc)
            return
        self._mode = "line"
        self._tick_timer.start()

    def stop(self) -> None:
        """Stop what this tab plays."""
        self._queue = []
        if self._mode:
            self.player.stop()
        self._mode = ""
        self._tick_timer.stop()
        self.timeline.set_playhead(None)
        labelled(self.play_button, "▶ Play mix")

    def _tick(self) -> None:
        if self._mode == "mix":
            if self.player.playing:
                self.timeline.set_playhead(self.player.position)
            else:
                self.stop()
        elif self._mode == "line" and not self.player.playing:
            if self._queue:
                self._play_next()
            else:
                self._mode = ""
                self._tick_timer.stop()

    # -- export --------------------------------------------------------------------------------

    def export_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export the conversation into")
        if folder:
            self.export(Path(folder))

    def export(self, folder: Path) -> list[Path]:
        """conversation.wav, one stem per speaker and conversation.srt into ``folder``."""
        written: list[Path] = []
        try:
            lines = self.lines
            audio, spans = self.mix()
            speakers = sorted({line.turn.speaker for line in lines})
            meta = TakeMetadata("conversation", "", lines[0].result.seed, voice=", ".join(speakers))
            written.append(write_audio(folder / "conversation.wav", audio, SAMPLE_RATE, meta))
            for number, (name, track) in enumerate(render.stems(lines, spans).items(), 1):
                stem = folder / f"stem-{number:02d}-{render.file_part(name)}.wav"
                written.append(write_audio(stem, track, SAMPLE_RATE, meta))
            subtitles = folder / "conversation.srt"
            write_text_atomic(subtitles, render.subtitles(lines, spans, SAMPLE_RATE, "srt"))
            written.append(subtitles)
        except UserError as exc:
            self.error.emit(exc)
            return written
        self.exported.emit(written)
        return written

    def _update_buttons(self) -> None:
        ready = self.script is not None and not self.busy
        self.generate_button.setEnabled(ready)
        self.from_here_button.setEnabled(ready)
        self.redo_button.setEnabled(ready and bool(self.made))
        for button in (self.play_button, self.export_button):
            button.setEnabled(bool(self.made))
        self.new_button.setEnabled(not self.busy)
        self.conversation_box.setEnabled(not self.busy)
        self.delete_button.setEnabled(not self.busy and self.name is not None)


def _with_turn(line: SpokenLine, turn: Turn) -> SpokenLine:
    """A made line with its script turn as the script now has it (line number, pause)."""
    import dataclasses

    return dataclasses.replace(line, turn=turn) if turn != line.turn else line
