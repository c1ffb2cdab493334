"""Saying where a file went: after Save as or an export, the status bar names the file and an
"Open folder" button opens the folder that holds it, until the message goes."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QPushButton, QStatusBar

SHOWN_MS = 15_000


class FileNotice:
    """The status bar's word on a written file, and its Open folder button."""

    def __init__(self, bar: QStatusBar) -> None:
        self.bar = bar
        self.folder: Path | None = None
        self.button = QPushButton("Open folder")
        self.button.setToolTip("Open the folder of the file just written")
        self.button.clicked.connect(self.open_folder)
        self.button.hide()
        bar.addWidget(self.button)
        bar.messageChanged.connect(self._message_changed)

    def written(self, what: str, files: list[Path]) -> None:
        """Say that ``what`` was written to ``files`` (the first named, the rest counted)."""
        if not files:
            return
        first = files[0]
        more = f" and {len(files) - 1} more file(s)" if len(files) > 1 else ""
        self.folder = first.parent
        self.bar.showMessage(f"{what}: {first}{more}", SHOWN_MS)
        self.button.show()

    def _message_changed(self, text: str) -> None:
        if not text:  # the message went: so does its button
            self.button.hide()

    def open_folder(self) -> None:
        if self.folder is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.folder)))
