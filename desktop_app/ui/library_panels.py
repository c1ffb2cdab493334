"""The voice library and the take history in the window, backed by the same store as the CLI.

Saved voices sit above the clip editor: use one (its clips replace the current ones), save the
current clips as a voice (asking once for the speaker's consent), rename or delete one. The
history lists every take ever made, from the window or the command line. Deleting a voice or a
take asks first and can be undone for the rest of the session (Edit > Undo): the store keeps the
audio files, so undo puts the rows back.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut, QUndoCommand, QUndoStack
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop_app.audio.io import write_audio
from desktop_app.audio.reference import prepare_clips
from desktop_app.defaults import SAMPLE_RATE
from desktop_app.errors import UserError
from desktop_app.library.database import LibraryError
from desktop_app.library.records import RemovedVoice, TakeRecord
from desktop_app.library.store import Library
from desktop_app.takes import record_metadata
from desktop_app.ui.describe import describe
from desktop_app.ui.dialogs import ask_audio_path, audio_target
from desktop_app.ui.icons import labelled
from desktop_app.ui.voice_panel import Clip, VoicePanel

log = logging.getLogger(__name__)

ALL_VOICES = "All voices"
HISTORY_ROWS = 500
"""Takes listed at most; older ones are found by searching or filtering."""


def confirm(parent: QWidget, title: str, question: str) -> bool:
    """Ask a yes/no question before a destructive action (No is the default)."""
    answer = QMessageBox.question(
        parent,
        title,
        question,
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes


def clips_signature(clips: list[Clip]) -> tuple[tuple[str, str], ...]:
    """What identifies a set of clips: each one's audio digest and transcript."""
    return tuple(
        (hashlib.sha256(clip.audio.tobytes()).hexdigest(), clip.transcript.strip())
        for clip in clips
    )


# -- undoable changes ------------------------------------------------------------------------------


class UseVoice(QUndoCommand):
    """Replace the clips being edited by a saved voice's clips."""

    def __init__(self, box: VoiceLibraryBox, name: str, clips: list[Clip]) -> None:
        super().__init__(f"Use voice {name}")
        self.box, self.name = box, name
        self.before = list(box.voice_panel.clips)
        self.before_active = box.active
        self.after = clips

    def redo(self) -> None:
        self.box.voice_panel.set_clips(self.after)
        self.box.active = (self.name, clips_signature(self.after))

    def undo(self) -> None:
        self.box.voice_panel.set_clips(self.before)
        self.box.active = self.before_active


class DeleteVoice(QUndoCommand):
    """Remove a voice from the library; undo puts it back with its clips and takes."""

    def __init__(self, box: VoiceLibraryBox, name: str) -> None:
        super().__init__(f"Delete voice {name}")
        self.box, self.name = box, name
        self.removed: RemovedVoice | None = None

    def redo(self) -> None:
        try:
            self.removed = self.box.library.voices.remove(self.name)
        except LibraryError as exc:
            self.setObsolete(True)
            self.box.error.emit(exc)
        self.box.refresh()

    def undo(self) -> None:
        if self.removed is not None:
            try:
                self.box.library.voices.restore(self.removed)
            except LibraryError as exc:
                self.box.error.emit(exc)
        self.box.refresh(select=self.name)


class RenameVoice(QUndoCommand):
    """Rename a voice in the library."""

    def __init__(self, box: VoiceLibraryBox, old: str, new: str) -> None:
        super().__init__(f"Rename voice {old} to {new}")
        self.box, self.old, self.new = box, old, new

    def _rename(self, source: str, target: str) -> None:
        try:
            self.box.library.voices.rename(source, target)
        except LibraryError as exc:
            self.setObsolete(True)
            self.box.error.emit(exc)
            return
        if self.box.active is not None and self.box.active[0] == source:
            self.box.active = (target, self.box.active[1])
        self.box.refresh(select=target)

    def redo(self) -> None:
        self._rename(self.old, self.new)

    def undo(self) -> None:
        self._rename(self.new, self.old)


class DeleteTake(QUndoCommand):
    """Remove a take from the history; undo puts it back."""

    def __init__(self, panel: HistoryPanel, take: TakeRecord) -> None:
        super().__init__(f"Delete take {take.id}")
        self.panel, self.take = panel, take

    def redo(self) -> None:
        try:
            self.panel.library.takes.delete(self.take.id)
        except LibraryError as exc:
            self.setObsolete(True)
            self.panel.error.emit(exc)
        self.panel.refresh()

    def undo(self) -> None:
        try:
            self.panel.library.takes.restore(self.take)
        except LibraryError as exc:
            self.panel.error.emit(exc)
        self.panel.refresh(select=self.take.id)


# -- saving a voice --------------------------------------------------------------------------------


class SaveVoiceDialog(QDialog):
    """Name, notes and the speaker's consent for a new voice; OK only once consent is given."""

    def __init__(self, summary: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Save voice")
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(summary))
        form = QFormLayout()
        self.name = QLineEdit()
        self.name.setPlaceholderText("e.g. Ana, warm narration")
        self.notes = QPlainTextEdit()
        self.notes.setMaximumHeight(60)
        form.addRow("Name", self.name)
        form.addRow("Notes", self.notes)
        layout.addLayout(form)
        self.consent = QCheckBox(
            "The person whose voice this is agreed to having it cloned with CSM Studio"
        )
        layout.addWidget(self.consent)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.name.textChanged.connect(self._update)
        self.consent.toggled.connect(self._update)
        self._update()

    @property
    def save_button(self) -> QPushButton:
        return self.buttons.button(QDialogButtonBox.StandardButton.Save)

    def _update(self) -> None:
        self.save_button.setEnabled(bool(self.name.text().strip()) and self.consent.isChecked())


# -- the panels ------------------------------------------------------------------------------------


class VoiceLibraryBox(QGroupBox):
    """Saved voices: pick, use, save the current clips, rename, delete."""

    error = Signal(object)
    voices_changed = Signal()

    def __init__(
        self,
        library: Library,
        voice_panel: VoicePanel,
        undo: QUndoStack,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__("Saved voices", parent)
        self.library = library
        self.voice_panel = voice_panel
        self.undo = undo
        # the voice the current clips came from (or were saved as), and the clips' signature
        # then: takes count as that voice's only while the clips are unchanged
        self.active: tuple[str, tuple[tuple[str, str], ...]] | None = None
        self.save_dialog: SaveVoiceDialog | None = None
        row = QHBoxLayout(self)
        self.voice_combo = QComboBox()
        self.voice_combo.setToolTip("Voices in the library")
        self.voice_combo.setMinimumContentsLength(14)
        row.addWidget(self.voice_combo, 1)
        self.use_button = QPushButton("Use")
        self.use_button.setToolTip("Load this voice's clips for generating (undo: Ctrl+Z)")
        self.use_button.clicked.connect(lambda: self.use(self.voice_combo.currentText()))
        self.save_button = QPushButton("Save clips as voice…")
        self.save_button.setToolTip("Keep the current clips and transcripts as a voice")
        self.save_button.clicked.connect(self.open_save_dialog)
        self.rename_button = QPushButton("Rename…")
        self.rename_button.clicked.connect(self.rename)
        self.delete_button = QPushButton("Delete…")
        self.delete_button.clicked.connect(self.delete)
        for button in (self.use_button, self.save_button, self.rename_button, self.delete_button):
            row.addWidget(button)
        describe(
            (self.voice_combo, "The voices saved in the library", "Saved voices"),
            (self.rename_button, "Rename the chosen voice (undo: Ctrl+Z)", "Rename voice"),
            (self.delete_button, "Delete the chosen voice (undo: Ctrl+Z)", "Delete voice"),
        )
        self.refresh()

    def refresh(self, select: str | None = None) -> None:
        """Reload the voice names, keeping (or moving to) the selected one."""
        current = select or self.voice_combo.currentText()
        names = [voice.name for voice in self.library.voices.all()]
        self.voice_combo.clear()
        self.voice_combo.addItems(names)
        if current in names:
            self.voice_combo.setCurrentText(current)
        for button in (self.use_button, self.rename_button, self.delete_button):
            button.setEnabled(bool(names))
        if self.active is not None and self.active[0] not in names:
            self.active = None
        self.voices_changed.emit()

    def current_voice(self) -> str | None:
        """The saved voice the current clips are, unchanged; None for unsaved or edited clips."""
        if self.active is None:
            return None
        name, signature = self.active
        return name if clips_signature(self.voice_panel.clips) == signature else None

    def use(self, name: str) -> None:
        """Replace the current clips with the voice ``name``'s clips (undoable)."""
        if not name:
            return
        try:
            voice = self.library.voices.get(name)
            clips = [
                Clip(
                    audio=clip.audio(),
                    transcript=clip.transcript,
                    source=clip.source,
                    name=f"{voice.name} {number}",
                )
                for number, clip in enumerate(voice.clips, start=1)
            ]
        except (LibraryError, OSError) as exc:
            self.error.emit(exc if isinstance(exc, UserError) else LibraryError(str(exc)))
            return
        self.undo.push(UseVoice(self, voice.name, clips))
        self.voice_combo.setCurrentText(voice.name)

    def open_save_dialog(self) -> None:
        """Ask for a name, notes and consent, then save the current clips as a voice."""
        clips = self.voice_panel.clips
        if not clips:
            self.error.emit(UserError("record or import a clip first, then save it as a voice"))
            return
        seconds = sum(clip.seconds for clip in clips)
        dialog = SaveVoiceDialog(f"{len(clips)} clip(s), {seconds:.1f} s of speech.", self)
        dialog.accepted.connect(
            lambda: self.save(dialog.name.text(), dialog.notes.toPlainText(), consent=True)
        )
        dialog.open()
        self.save_dialog = dialog

    def save(self, name: str, notes: str = "", *, consent: bool) -> bool:
        """Store the current clips (prepared as the model gets them) as the voice ``name``."""
        clips = list(self.voice_panel.clips)
        try:
            if not consent:
                raise LibraryError("a voice is saved only with the consent of its speaker")
            prepared = [
                (audio, clip.transcript, clip.source)
                for audio, clip in zip(prepare_clips(clips), clips, strict=True)
            ]
            voice = self.library.voices.add(name, prepared, notes=notes, consent_confirmed=True)
        except UserError as exc:
            self.error.emit(exc)
            return False
        self.active = (voice.name, clips_signature(clips))
        self.refresh(select=voice.name)
        return True

    def rename(self) -> None:
        """Ask for a new name for the selected voice (undoable)."""
        old = self.voice_combo.currentText()
        if not old:
            return
        new, ok = QInputDialog.getText(self, "Rename voice", f"New name for {old!r}:", text=old)
        if ok and new.strip() and new.strip() != old:
            self.undo.push(RenameVoice(self, old, new.strip()))

    def delete(self) -> None:
        """Delete the selected voice after asking (undoable for the session)."""
        name = self.voice_combo.currentText()
        if name and confirm(
            self,
            "Delete voice",
            f"Delete the voice {name!r} and its clips from the library? Its takes stay in the "
            f"history. You can undo this with Ctrl+Z until you quit.",
        ):
            self.undo.push(DeleteVoice(self, name))


VERDICT_MARKS = {"good": "✓ good", "check": "⚠ check", "bad": "✗ bad"}


def verdict_text(verdict: str, wer: object = None) -> str:
    """A take's verdict as a list shows it ("⚠ check · WER 0.12"); "—" when not checked."""
    if not verdict:
        return "—"
    mark = VERDICT_MARKS.get(verdict, verdict)
    return f"{mark} · WER {wer:.2f}" if isinstance(wer, float | int) else mark


class HistoryPanel(QWidget):
    """Every take in the library: search, filter by voice, favourites, play, reuse, delete."""

    error = Signal(object)
    play_requested = Signal(object)  # TakeRecord
    stop_requested = Signal()
    reuse_requested = Signal(object)  # TakeRecord

    COLUMNS = ("★", "When", "Voice", "Text", "Length", "Seed", "Engine", "Check")

    def __init__(self, library: Library, undo: QUndoStack, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.library = library
        self.undo = undo
        self.records: dict[int, TakeRecord] = {}
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search the text of takes")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(lambda: self.refresh())
        self.voice_filter = QComboBox()
        self.voice_filter.setToolTip("Show the takes of one voice")
        self.voice_filter.currentTextChanged.connect(lambda: self.refresh())
        self.favourites_only = QCheckBox("★ only")
        self.favourites_only.toggled.connect(lambda: self.refresh())
        self.flagged_only = QCheckBox("Flagged only")
        self.flagged_only.setToolTip("Only takes whose listen-back check found something")
        self.flagged_only.toggled.connect(lambda: self.refresh())
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Show takes made meanwhile, e.g. from the command line")
        self.refresh_button.clicked.connect(lambda: self.refresh())
        row.addWidget(self.search, 1)
        row.addWidget(self.voice_filter)
        row.addWidget(self.favourites_only)
        row.addWidget(self.flagged_only)
        row.addWidget(self.refresh_button)
        layout.addLayout(row)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(list(self.COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setSortingEnabled(False)
        self.tree.itemDoubleClicked.connect(lambda *_: self.play())
        self.tree.currentItemChanged.connect(lambda *_: self._update_buttons())
        layout.addWidget(self.tree, 1)
        self.count_label = QLabel("")
        layout.addWidget(self.count_label)
        row = QHBoxLayout()
        self.play_button = labelled(QPushButton(), "▶ Play")
        self.play_button.clicked.connect(self.play)
        self.stop_button = labelled(QPushButton(), "■ Stop")
        self.stop_button.clicked.connect(self.stop_requested.emit)
        self.reuse_button = QPushButton("Reuse settings")
        self.reuse_button.setToolTip("Put this take's text, voice and settings back in the editor")
        self.reuse_button.clicked.connect(self.reuse)
        self.favourite_button = labelled(QPushButton(), "★ Favourite")
        self.favourite_button.setCheckable(True)
        self.favourite_button.clicked.connect(self.toggle_favourite)
        self.export_button = QPushButton("Export…")
        self.export_button.clicked.connect(self.export_dialog)
        self.delete_button = QPushButton("Delete…")
        self.delete_button.setToolTip("Delete this take from the history (Del; undo: Ctrl+Z)")
        self.delete_button.clicked.connect(self.delete)
        self.buttons = (
            self.play_button,
            self.stop_button,
            self.reuse_button,
            self.favourite_button,
            self.export_button,
            self.delete_button,
        )
        for button in self.buttons:
            row.addWidget(button)
        row.addStretch()
        layout.addLayout(row)
        shortcut = QShortcut(QKeySequence.StandardKey.Delete, self.tree)
        shortcut.setContext(Qt.ShortcutContext.WidgetShortcut)
        shortcut.setWhatsThis("Delete the selected take from the History (undo: Ctrl+Z)")
        shortcut.activated.connect(self.delete)
        describe(
            (self.search, "Show the takes whose text contains this", "Search the history"),
            (self.voice_filter, "Show the takes of one voice", "Voice filter"),
            (self.favourites_only, "Show starred takes only", "Starred only"),
            (self.play_button, "Play the selected take", "Play"),
            (self.stop_button, "Stop playback", "Stop"),
            (self.favourite_button, "Star or unstar the selected take", "Favourite"),
            (self.export_button, "Save the selected take as a WAV or FLAC file", "Export"),
        )
        self.fill_voices()
        self.refresh()

    def fill_voices(self) -> None:
        """Refresh the voice filter's names (keeping the chosen one when it still exists)."""
        chosen = self.voice_filter.currentText()
        names = [ALL_VOICES] + [voice.name for voice in self.library.voices.all()]
        self.voice_filter.blockSignals(True)
        self.voice_filter.clear()
        self.voice_filter.addItems(names)
        self.voice_filter.setCurrentText(chosen if chosen in names else ALL_VOICES)
        self.voice_filter.blockSignals(False)
        self.refresh()

    def refresh(self, select: int | None = None) -> None:
        """Reload the takes that match the search, voice and favourite filters."""
        current = self.current
        select = select if select is not None else (current.id if current else None)
        voice = self.voice_filter.currentText()
        try:
            records = self.library.takes.list(
                voice=None if voice in ("", ALL_VOICES) else voice,
                search=self.search.text().strip(),
                favourites_only=self.favourites_only.isChecked(),
                flagged_only=self.flagged_only.isChecked(),
                limit=HISTORY_ROWS + 1,
            )
        except LibraryError as exc:
            self.error.emit(exc)
            records = []
        more = len(records) > HISTORY_ROWS
        records = records[:HISTORY_ROWS]
        self.records = {record.id: record for record in records}
        self.tree.clear()
        for record in records:
            item = QTreeWidgetItem(
                [
                    "★" if record.favourite else "",
                    datetime.datetime.fromtimestamp(record.created).strftime("%Y-%m-%d %H:%M"),
                    record.voice or "—",
                    record.text,
                    f"{record.duration:.1f} s" if record.duration else "—",
                    str(record.seed),
                    f"{record.engine}, {record.device}",
                    verdict_text(record.verdict, record.check.get("wer")),
                ]
            )
            item.setData(0, Qt.ItemDataRole.UserRole, record.id)
            item.setToolTip(3, record.text)
            reasons = record.check.get("reasons") or []
            item.setToolTip(7, "\n".join(reasons) if reasons else record.verdict or "not checked")
            self.tree.addTopLevelItem(item)
            if record.id == select:
                self.tree.setCurrentItem(item)
        total = len(records)
        self.count_label.setText(
            f"newest {total} takes shown: search or filter to find older ones"
            if more
            else f"{total} take{'s' if total != 1 else ''}"
        )
        self._update_buttons()

    @property
    def current(self) -> TakeRecord | None:
        item = self.tree.currentItem()
        if item is None:
            return None
        return self.records.get(item.data(0, Qt.ItemDataRole.UserRole))

    def _update_buttons(self) -> None:
        record = self.current
        for button in self.buttons:
            button.setEnabled(record is not None)
        self.favourite_button.setChecked(bool(record and record.favourite))

    def play(self) -> None:
        if self.current is not None:
            self.play_requested.emit(self.current)

    def reuse(self) -> None:
        if self.current is not None:
            self.reuse_requested.emit(self.current)

    def toggle_favourite(self) -> None:
        record = self.current
        if record is None:
            return
        try:
            self.library.takes.set_favourite(record.id, not record.favourite)
        except LibraryError as exc:
            self.error.emit(exc)
        self.refresh(select=record.id)

    def export_dialog(self) -> None:
        """Ask where to write the selected take as WAV or FLAC (with metadata)."""
        record = self.current
        if record is None:
            return
        suggested = Path.home() / f"take-{record.id}-seed{record.seed}.wav"
        target = ask_audio_path(self, "Export take", suggested)
        if target is not None:
            self.export(record, target)

    def export(self, record: TakeRecord, target: Path) -> bool:
        """Write ``record``'s audio to ``target``; errors go to the funnel."""
        try:
            write_audio(audio_target(target), record.audio(), SAMPLE_RATE, record_metadata(record))
        except UserError as exc:
            self.error.emit(exc)
            return False
        return True

    def delete(self) -> None:
        """Delete the selected take after asking (undoable for the session)."""
        record = self.current
        if record is not None and confirm(
            self,
            "Delete take",
            f"Delete take {record.id} (“{record.text[:60]}”) from the history? "
            f"You can undo this with Ctrl+Z until you quit.",
        ):
            self.undo.push(DeleteTake(self, record))
