"""Dialogs: the one error funnel, the About box, the self-test and listen-back model choices."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app import __version__
from desktop_app.errors import UserError, describe
from desktop_app.inference.model_store import model_page


def ask_audio_path(parent: QWidget, title: str, suggested: Path) -> Path | None:
    """Ask where to write a take; a name without .wav or .flac gets .wav. None: cancelled."""
    name, _ = QFileDialog.getSaveFileName(
        parent, title, str(suggested), "WAV (*.wav);;FLAC (*.flac)"
    )
    return audio_target(Path(name)) if name else None


def audio_target(path: Path) -> Path:
    """``path`` as a WAV or FLAC file name."""
    return path if path.suffix.lower() in (".wav", ".flac") else path.with_suffix(".wav")


class ErrorFunnel:
    """Every error the window shows goes through here: one dialog, actionable text."""

    def __init__(self, parent: QWidget) -> None:
        self.parent = parent
        self.last_message = ""
        self.box: QMessageBox | None = None

    def show(self, error: BaseException) -> None:
        """Show ``error`` in a window-modal dialog that does not block the event loop."""
        description = describe(error)
        self.last_message = description.message
        icon = QMessageBox.Icon.Critical if description.internal else QMessageBox.Icon.Warning
        if self.box is not None:
            self.box.close()
        self.box = QMessageBox(
            icon,
            "CSM Studio",
            self._sentence(self.last_message),
            QMessageBox.StandardButton.Ok,
            self.parent,
        )
        self.box.open()

    @staticmethod
    def _sentence(message: str) -> str:
        return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")


def about_text() -> str:
    """The About box: what the app is, the model's licence, and consent."""
    return (
        f"<h3>CSM Studio {__version__}</h3>"
        "<p>Offline voice cloning with Sesame's CSM-1B speech model. Everything runs on this "
        "computer; nothing is sent anywhere.</p>"
        "<p><b>Model licence.</b> CSM-1B is released by Sesame under the Apache License 2.0, "
        f"with a use policy on its model page ({model_page()}): do not use it to impersonate "
        "people without their consent, to create deceptive content, or for anything illegal. "
        "The Mimi codec (Kyutai) is CC-BY 4.0.</p>"
        "<p><b>Consent.</b> Clone only your own voice, or the voice of someone who has agreed to "
        "it. Files made here are marked as AI-generated speech in their metadata; keep that mark "
        "when you share them.</p>"
    )


def show_about(parent: QWidget) -> None:
    """Show the About box."""
    QMessageBox.about(parent, "About CSM Studio", about_text())


class SelfTestDialog(QDialog):
    """The self-test's table, monospaced, with a button that copies it for a bug report."""

    def __init__(self, table: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Test this computer")
        layout = QVBoxLayout(self)
        intro = QLabel(
            "The fast engine and the transformers reference made the same short greedy take. "
            "Copy this table into a bug report if the verdict is not PASS."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.text = QPlainTextEdit(table)
        self.text.setReadOnly(True)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setMinimumSize(640, 260)
        layout.addWidget(self.text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        copy = buttons.addButton("Copy", QDialogButtonBox.ButtonRole.ActionRole)
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(table))
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)


class ShortcutsDialog(QDialog):
    """Help → Keyboard shortcuts (F1): every shortcut of the window, in a table."""

    def __init__(self, rows: list[tuple[str, str]], parent: QWidget | None = None) -> None:
        from PySide6.QtWidgets import QTableWidget, QTableWidgetItem

        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        layout = QVBoxLayout(self)
        table = QTableWidget(len(rows), 2)
        table.setHorizontalHeaderLabels(["Keys", "Does"])
        table.setAccessibleName("Keyboard shortcuts")
        table.verticalHeader().hide()
        table.horizontalHeader().setStretchLastSection(True)
        for row, (keys, what) in enumerate(rows):
            table.setItem(row, 0, QTableWidgetItem(keys))
            table.setItem(row, 1, QTableWidgetItem(what))
        table.resizeColumnToContents(0)
        layout.addWidget(table)
        self.resize(520, 480)


class ListenModelsDialog(QDialog):
    """Model → Listen-back models: the speech-recognition and speaker checkpoints (a folder or
    a hub id; empty: the default), checked when OK is pressed."""

    chosen = Signal(str, str)  # asr model, speaker model ("" = default)

    def __init__(self, asr_model: str, speaker_model: str, parent: QWidget | None = None) -> None:
        from PySide6.QtWidgets import QFormLayout

        from desktop_app import defaults

        super().__init__(parent)
        self.setWindowTitle("Listen-back models")
        layout = QVBoxLayout(self)
        intro = QLabel(
            "The app listens to every take: a speech-recognition model (Whisper) hears the "
            "words, a speaker model compares the voice with the clips. Leave a field empty for "
            f"the default ({defaults.ASR_MODEL_ID} on a GPU, {defaults.ASR_MODEL_ID_CPU} on the "
            f"CPU; {defaults.SPEAKER_MODEL_ID}). Get them with Model → Choose or download "
            "model… (or the command line's `download-model --asr` and `--speaker`)."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        self.asr = QLineEdit(asr_model)
        self.asr.setPlaceholderText("default")
        self.asr.setAccessibleName("Speech-recognition model")
        self.speaker = QLineEdit(speaker_model)
        self.speaker.setPlaceholderText("default")
        self.speaker.setAccessibleName("Speaker model")
        form.addRow("Speech recognition", self._with_browse(self.asr))
        form.addRow("Speaker", self._with_browse(self.speaker))
        layout.addLayout(form)
        self.problem = QLabel("")
        self.problem.setWordWrap(True)
        layout.addWidget(self.problem)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept_models)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _with_browse(self, field: QLineEdit) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(field, 1)
        browse = QPushButton("Folder…")
        browse.clicked.connect(
            lambda: field.setText(
                QFileDialog.getExistingDirectory(self, "Checkpoint folder") or field.text()
            )
        )
        layout.addWidget(browse)
        return row

    def accept_models(self) -> None:
        """Check the named models (empty ones are the defaults, looked for at load) and close."""
        from desktop_app.inference.model_store import ASR, SPEAKER, resolve_model

        asr, speaker = self.asr.text().strip(), self.speaker.text().strip()
        try:
            for spec, kind in ((asr, ASR), (speaker, SPEAKER)):
                if spec:
                    resolve_model(spec, kind)
        except UserError as exc:
            self.problem.setText(str(exc))
            return
        self.chosen.emit(asr, speaker)
        self.accept()
