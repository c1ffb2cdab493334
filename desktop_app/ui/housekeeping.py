"""House-keeping of the window, apart from its work: the library's unused files (File → Clean
up) and the recordings a crash left behind (offered back at start)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import QMainWindow, QMessageBox

from desktop_app import paths
from desktop_app.errors import UserError
from desktop_app.library.records import TakeRecord
from desktop_app.library.store import Library
from desktop_app.ui.dialogs import ErrorFunnel
from desktop_app.ui.voice_panel import VoicePanel, clip_from_file


class Housekeeping(QObject):
    """Clean-up of the library's files and recovery of interrupted recordings."""

    recordings_recovered = Signal(int)  # how many interrupted recordings became clips

    def __init__(
        self,
        window: QMainWindow,
        library: Library | None,
        undo: QUndoStack,
        voice: VoicePanel,
        errors: ErrorFunnel,
    ) -> None:
        super().__init__(window)
        self.window, self.library, self.undo = window, library, undo
        self.voice, self.errors = voice, errors
        self.recovery_box: QMessageBox | None = None

    # -- the library's files -------------------------------------------------------------------

    def undoable_files(self) -> set[Path]:
        """Files an undo of this session could bring back (deleted voices' clips and takes)."""
        files: set[Path] = set()
        for index in range(self.undo.count()):
            command = self.undo.command(index)
            removed = getattr(command, "removed", None)
            if removed is not None:
                files.update(removed.files())  # its clips, and a trained voice's adapter
            take = getattr(command, "take", None)
            if isinstance(take, TakeRecord):
                files.add(take.file)
        return files

    def clean_up_plan(self) -> list[Path]:
        """The library's files nothing uses, nor could an undo of this session."""
        if self.library is None:
            return []
        return self.library.files.unreferenced(self.undoable_files())

    def clean_up_dialog(self) -> None:
        """File → Clean up library files: the count and size first, then the removal."""
        files = self.clean_up_plan()
        if not files:
            QMessageBox.information(self.window, "Clean up", "Every file of the library is in use.")
            return
        size = sum(f.stat().st_size for f in files) / 1e6
        answer = QMessageBox.question(
            self.window,
            "Clean up",
            f"{len(files)} audio file(s) of the library ({size:.1f} MB) are used by no voice, "
            "clip, take or conversation, nor by anything Undo could bring back. Remove them?",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.clean_up(files)

    def clean_up(self, files: list[Path]) -> tuple[int, int]:
        """Remove ``files`` (those still unused now); how many and how many bytes."""
        if self.library is None:
            return 0, 0
        count, size = self.library.files.remove(files, self.undoable_files())
        self.window.statusBar().showMessage(f"Removed {count} file(s), {size / 1e6:.1f} MB", 8000)
        return count, size

    # -- recordings left behind ----------------------------------------------------------------

    def offer_unfinished_recordings(self) -> QMessageBox | None:
        """Offer back recordings a crash left behind (a window-modal question, not blocking).

        Recover turns each into a clip, Discard deletes them, Ask later leaves them for the next
        start; ``recordings_recovered`` is emitted with how many became clips.
        """
        from desktop_app.audio.recorder import unfinished_recordings

        found = unfinished_recordings(paths.data_dir() / "recordings")
        if not found:
            return None
        seconds = sum(path.stat().st_size for path in found) / 4 / 48_000
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Recover recordings",
            f"{len(found)} recording(s) (about {seconds:.0f} s) were interrupted when CSM Studio "
            f"last stopped. Recover them as clips?",
            QMessageBox.StandardButton.NoButton,
            self.window,
        )
        recover = box.addButton("Recover", QMessageBox.ButtonRole.AcceptRole)
        discard = box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton("Ask later", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(recover)
        box.buttonClicked.connect(
            lambda button: self._recover(
                found,
                "recover" if button is recover else "discard" if button is discard else "later",
            )
        )
        box.open()
        self.recovery_box = box
        return box

    def _recover(self, found: list[Path], choice: str) -> None:
        from desktop_app.audio.recorder import finish_recording, note_path

        recovered = 0
        for raw in found:
            try:
                if choice == "recover":
                    clip = clip_from_file(finish_recording(raw), source="recorded")
                    self.voice.add_clip(clip)
                    recovered += 1
                elif choice == "discard":
                    raw.unlink()
                    note_path(raw).unlink()
            except (OSError, ValueError, UserError) as exc:
                self.errors.show(UserError(f"cannot recover {raw.name}: {exc}"))
        self.recordings_recovered.emit(recovered)
