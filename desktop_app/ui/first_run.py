"""The first-run guide: what the studio needs, and getting it.

It lists the three models (CSM-1B, which speaks; the speech-recognition and speaker models of the
listen-back, optional) with their sizes and whether this computer has them, takes the hub token
CSM-1B's licence needs, and downloads what is ticked into a folder, one model after the other,
with a progress bar, speed and time left. Or a person points at a folder that holds a model.

The download runs in a child process (``download-model --dir ... --progress-json``), so Cancel
is a kill that nothing in the window has to survive, and the token travels in the child's
environment, never on its command line. Resume is the download's own: a later run (this one
or after a restart) asks the hub for the rest of each partial file (:mod:`inference.fetch`).
"""

from __future__ import annotations

import json
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QProcess, QProcessEnvironment, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app import defaults, paths
from desktop_app.errors import UserError
from desktop_app.inference.fetch import partial_bytes
from desktop_app.inference.model_store import ASR, CSM, SPEAKER, ModelKind, model_page

TOKENS_PAGE = "https://huggingface.co/settings/tokens"
BAR_STEPS = 1000


# -- speed, time left, and their words ---------------------------------------------------------


class TransferRate:
    """Speed and time left from the bytes seen over the last ``window`` seconds."""

    def __init__(self, window: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.clock = clock
        self.samples: deque[tuple[float, int]] = deque()

    def add(self, done: int) -> None:
        """Record that ``done`` bytes are here now."""
        now = self.clock()
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.window:
            self.samples.popleft()

    def speed(self) -> float | None:
        """Bytes per second over the window; None until there are two samples a moment apart."""
        if len(self.samples) < 2:
            return None
        (t0, b0), (t1, b1) = self.samples[0], self.samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 - t0 >= 0.2 else None

    def seconds_left(self, total: int) -> float | None:
        """At the current speed, seconds until ``total`` bytes are here."""
        speed = self.speed()
        if not speed or speed <= 0 or not self.samples:
            return None
        return max(0.0, (total - self.samples[-1][1]) / speed)


def size_text(count: float) -> str:
    """Bytes in the hub's decimal units: 950 kB, 12.3 MB, 6.2 GB."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            value = count / scale
            return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{count:.0f} B"


def duration_text(seconds: float) -> str:
    """A time left as a person says it: 8 s, 4 min, 1 h 5 min."""
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    hours, rest = divmod(round(seconds / 60), 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def transfer_text(done: int, total: int, rate: TransferRate) -> str:
    """'1.2 GB of 6.2 GB · 48.0 MB/s · about 2 min left'."""
    parts = [f"{size_text(done)} of {size_text(total)}"]
    speed, left = rate.speed(), rate.seconds_left(total)
    if speed is not None:
        parts.append(f"{size_text(speed)}/s")
    if left is not None:
        parts.append(f"about {duration_text(left)} left")
    return " · ".join(parts)


# -- the models ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Need:
    """One model the studio can use: what it does, its default, and whether it is required."""

    kind: ModelKind
    title: str
    purpose: str
    repo_id: str
    required: bool

    @property
    def size_mb(self) -> int:
        return defaults.DOWNLOAD_MB.get(self.repo_id, self.kind.download_mb)

    def folder_in(self, root: Path) -> Path:
        """Where a download into ``root`` puts this model."""
        return root / self.repo_id.replace("/", "--")


def needs(device: str) -> tuple[Need, ...]:
    """The models for a device ("cuda..." gets the large speech-recognition model)."""
    return (
        Need(CSM, "CSM-1B", "speaks in the cloned voice", defaults.MODEL_ID, True),
        Need(
            ASR,
            "Whisper",
            "hears the words of clips and takes (listen-back)",
            defaults.asr_model_for(device),
            False,
        ),
        Need(
            SPEAKER,
            "Speaker model",
            "tells how alike a take and the voice sound (listen-back)",
            defaults.SPEAKER_MODEL_ID,
            False,
        ),
    )


def default_download_folder() -> Path:
    """Where the guide downloads unless told otherwise."""
    return paths.data_dir() / "models"


def download_command(need: Need, folder: Path) -> tuple[str, list[str]]:
    """The program and arguments of the child that downloads ``need`` into ``folder``."""
    args = ["download-model", "--model", need.repo_id, "--dir", str(folder), "--progress-json"]
    if need.kind.download_flag:
        args.insert(1, need.kind.download_flag)
    if getattr(sys, "frozen", False):  # the bundle's executable runs the command line itself
        return sys.executable, args
    return sys.executable, ["-m", "desktop_app", *args]


def found(spec: str, kind: ModelKind) -> Path | None:
    """The checked folder ``spec`` names, or None when it is not here (or not usable)."""
    from desktop_app.inference.model_store import resolve_model

    try:
        return resolve_model(spec, kind) if spec else None
    except UserError:
        return None


# -- the guide ---------------------------------------------------------------------------------


class _Row:
    """One model's line: a tick to download it, its size, where it stands, Choose folder…"""

    def __init__(self, need: Need, grid: QGridLayout, row: int, parent: QWidget) -> None:
        self.need = need
        self.folder: Path | None = None
        self.changed = False  # downloaded or chosen in the guide (else: as the settings say)
        required = " (needed)" if need.required else " (optional)"
        self.tick = QCheckBox(f"{need.title}{required}")
        self.tick.setToolTip(f"{need.title} {need.purpose}: {need.repo_id}")
        self.tick.setAccessibleName(f"Download {need.title}")
        self.size = QLabel(f"about {size_text(need.size_mb * 1e6)}")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.choose = QPushButton("Choose folder…", parent)
        self.choose.setToolTip(f"Use a folder that already holds the {need.title} checkpoint")
        self.choose.setAccessibleName(f"Choose the {need.title} folder")
        purpose = QLabel(need.purpose)
        purpose.setEnabled(False)  # the secondary text colour of the scheme
        purpose.setContentsMargins(24, 0, 0, 4)  # under the name, past the tick
        grid.addWidget(self.tick, 2 * row, 0)
        grid.addWidget(self.size, 2 * row, 1)
        grid.addWidget(self.status, 2 * row, 2)
        grid.addWidget(self.choose, 2 * row, 3)
        grid.addWidget(purpose, 2 * row + 1, 0, 1, 3)

    def show_found(self, folder: Path, how: str = "", changed: bool = False) -> None:
        self.folder = folder
        self.changed = changed
        self.tick.setChecked(False)
        self.tick.setEnabled(False)
        self.status.setText(f"✓ {how or 'on this computer'}")
        self.status.setToolTip(str(folder))

    def show_missing(self, partial: int) -> None:
        self.folder = None
        self.changed = False
        self.tick.setEnabled(True)
        self.tick.setChecked(True)
        self.status.setText(
            f"partly downloaded ({size_text(partial)})" if partial else "not on this computer"
        )
        self.status.setToolTip("")


class FirstRunGuide(QDialog):
    """What the studio needs, with sizes; the licence and token; the download; or a folder."""

    model_chosen = Signal(str)  # the CSM-1B folder to load
    listen_chosen = Signal(str, str)  # speech-recognition and speaker folders ("" = unchanged)

    def __init__(
        self,
        model: str,
        asr_model: str,
        speaker_model: str,
        device: str,
        problem: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Welcome to CSM Studio")
        self.setAccessibleName("First-run guide")
        self.setMinimumWidth(640)
        self.chosen = ""
        self.process: QProcess | None = None
        self.queue: list[_Row] = []
        self.planned: list[_Row] = []
        self.rate = TransferRate()
        self._stderr = ""
        layout = QVBoxLayout(self)
        intro = QLabel(
            "<h3>Welcome to CSM Studio</h3><p>The studio speaks with Sesame's CSM-1B model and "
            "can listen back to every take with two smaller models. Each is downloaded once, "
            "here or with <code>download-model</code>; after that the studio never uses the "
            "network. Tick what to download, or choose a folder that already holds a model.</p>"
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        grid = QGridLayout()
        grid.setColumnStretch(2, 1)
        self.rows = [_Row(n, grid, i, self) for i, n in enumerate(needs(device))]
        layout.addLayout(grid)
        licence = QLabel(
            f"<p><b>CSM-1B's licence.</b> The model is gated: accept its licence at "
            f"<a href='{model_page()}'>{model_page()}</a> while logged in to Hugging Face, create "
            f"a read token at <a href='{TOKENS_PAGE}'>{TOKENS_PAGE}</a> and paste it here (left "
            f"empty: the token of a saved <code>hf auth login</code>). The token is used for this "
            f"download only and is not stored.</p>"
        )
        licence.setWordWrap(True)
        licence.setOpenExternalLinks(True)
        layout.addWidget(licence)
        self.token = QLineEdit()
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText("hf_… access token")
        self.token.setAccessibleName("Hugging Face access token")
        self.token.setToolTip("A read token of the account that accepted CSM-1B's licence")
        layout.addWidget(self.token)
        where = QHBoxLayout()
        where.addWidget(QLabel("Download into"))
        self.target = QLineEdit(str(default_download_folder()))
        self.target.setAccessibleName("Download folder")
        self.target.setToolTip("Each model goes into a folder of its own in here")
        self.target.editingFinished.connect(self.refresh)
        where.addWidget(self.target, 1)
        self.change_target = QPushButton("Change…")
        self.change_target.setToolTip("Choose where the models are downloaded")
        self.change_target.clicked.connect(self._choose_target)
        where.addWidget(self.change_target)
        layout.addLayout(where)
        self.free = QLabel("")
        self.free.setEnabled(False)
        layout.addWidget(self.free)
        self.bar = QProgressBar()
        self.bar.setRange(0, BAR_STEPS)
        self.bar.setValue(0)
        self.bar.setAccessibleName("Download progress")
        layout.addWidget(self.bar)
        self.status = QLabel(problem)
        self.status.setWordWrap(True)
        self.status.setAccessibleName("Download status")
        layout.addWidget(self.status)
        buttons = QHBoxLayout()
        self.download_button = QPushButton("Download")
        self.download_button.setDefault(True)
        self.download_button.setToolTip("Download the ticked models (a stopped download resumes)")
        self.download_button.clicked.connect(self.start_download)
        self.cancel_button = QPushButton("Cancel download")
        self.cancel_button.setToolTip("Stop; what has arrived is kept for Resume")
        self.cancel_button.clicked.connect(self.cancel_download)
        self.close_button = QPushButton("Close")
        self.close_button.setToolTip("Close the guide (Model → Choose or download model… opens it)")
        self.close_button.clicked.connect(self.reject)
        buttons.addWidget(self.download_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch()
        buttons.addWidget(self.close_button)
        layout.addLayout(buttons)
        self.specs = {CSM: model, ASR: asr_model, SPEAKER: speaker_model}
        self.picked: set[ModelKind] = set()  # kinds whose folder was chosen in the guide
        for row in self.rows:
            row.choose.clicked.connect(lambda _=False, r=row: self._choose_folder(r))
            row.tick.toggled.connect(self._ticks_changed)
        self.refresh()

    # -- what is here ------------------------------------------------------------------------

    @property
    def download_root(self) -> Path:
        return Path(self.target.text().strip() or default_download_folder()).expanduser()

    def row(self, kind: ModelKind) -> _Row:
        """The line of one kind of model."""
        return next(r for r in self.rows if r.need.kind is kind)

    def refresh(self) -> None:
        """Look again at what this computer has: the set models, then the download folder."""
        for row in self.rows:
            spec = self.specs[row.need.kind] or row.need.repo_id
            here = found(spec, row.need.kind)
            downloaded = found(str(row.need.folder_in(self.download_root)), row.need.kind)
            if here is not None:
                picked = row.need.kind in self.picked
                row.show_found(here, "chosen" if picked else "", changed=picked)
            elif downloaded is not None:
                row.show_found(downloaded, "downloaded", changed=True)
            else:
                row.show_missing(partial_bytes(row.need.folder_in(self.download_root)))
        self.free.setText(self._space_text())
        self._update_buttons()

    def _space_text(self) -> str:
        """'Ticked: about 7.6 GB; 41.0 GB free there.'"""
        import shutil

        ticked = self._ticked()
        existing = next(
            (p for p in (self.download_root, *self.download_root.parents) if p.exists()), None
        )
        needed = f"Ticked: about {size_text(sum(r.need.size_mb for r in ticked) * 1e6)}"
        if existing is None:
            return needed + "."
        return f"{needed}; {size_text(shutil.disk_usage(existing).free)} free there."

    def _ticked(self) -> list[_Row]:
        """The lines ticked for download (a model that is here has its tick off and disabled)."""
        return [r for r in self.rows if r.tick.isChecked() and r.tick.isEnabled()]

    def _ticks_changed(self) -> None:
        self.free.setText(self._space_text())
        self._update_buttons()

    def _update_buttons(self) -> None:
        busy = self.process is not None
        ticked = self._ticked()
        resumable = any(r.status.text().startswith("partly") for r in ticked)
        self.download_button.setText("Resume download" if resumable else "Download")
        self.download_button.setEnabled(bool(ticked) and not busy)
        self.cancel_button.setEnabled(busy)
        for widget in (self.token, self.target, self.change_target):
            widget.setEnabled(not busy)
        for row in self.rows:
            row.choose.setEnabled(not busy)

    def _choose_target(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Download the models into")
        if folder:
            self.target.setText(folder)
            self.refresh()

    def _choose_folder(self, row: _Row) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, f"Folder holding the {row.need.title} checkpoint"
        )
        if folder:
            self.use_folder(folder, row.need.kind)

    def use_folder(self, folder: str, kind: ModelKind = CSM) -> bool:
        """Check ``folder`` as a checkpoint of ``kind`` and take it, or say what is wrong."""
        from desktop_app.inference.model_store import resolve_model

        try:
            checked = resolve_model(folder, kind)
        except UserError as exc:
            self.status.setText(str(exc))
            return False
        self.specs[kind] = str(checked)
        self.picked.add(kind)
        self.row(kind).show_found(checked, "chosen", changed=True)
        self.status.setText("")
        if kind is CSM:
            self.finish()
        return True

    # -- the download --------------------------------------------------------------------------

    def start_download(self) -> None:
        """Download every ticked model, one after the other, in child processes."""
        self.queue = self._ticked()
        self.planned = list(self.queue)
        if self.queue:
            self._next()

    def _next(self) -> None:
        row = self.queue[0]
        program, args = download_command(row.need, row.need.folder_in(self.download_root))
        environment = QProcessEnvironment.systemEnvironment()
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):  # the person asked to download
            environment.remove(name)
        if self.token.text().strip():
            environment.insert("HF_TOKEN", self.token.text().strip())
        process = QProcess(self)
        process.setProgram(program)
        process.setArguments(args)
        process.setProcessEnvironment(environment)
        process.readyReadStandardOutput.connect(self._read_progress)
        process.readyReadStandardError.connect(self._read_errors)
        process.finished.connect(self._finished)
        self.process, self._stderr, self.rate = process, "", TransferRate()
        self.bar.setValue(0)
        self.status.setText(f"{self._step(row)}: connecting to the hub…")
        row.status.setText("downloading…")
        process.start()
        self._update_buttons()

    def _step(self, row: _Row) -> str:
        number = self.planned.index(row) + 1 if row in self.planned else 1
        return f"{row.need.title} ({number} of {max(1, len(self.planned))})"

    def _read_progress(self) -> None:
        if self.process is None or not self.queue:
            return
        while self.process.canReadLine():
            line = bytes(self.process.readLine().data()).decode(errors="replace").strip()
            try:
                report = json.loads(line)
            except ValueError:
                continue
            if report.get("total"):
                done, total = int(report["done"]), int(report["total"])
                self.rate.add(done)
                self.bar.setValue(round(BAR_STEPS * done / total))
                text = transfer_text(done, total, self.rate)
                self.status.setText(f"{self._step(self.queue[0])}: {text}")

    def _read_errors(self) -> None:
        if self.process is not None:
            self._stderr += bytes(self.process.readAllStandardError().data()).decode(
                errors="replace"
            )

    def _finished(self, code: int, exit_status: QProcess.ExitStatus) -> None:
        self._read_errors()
        self._read_progress()
        process, self.process = self.process, None
        if process is not None:
            process.deleteLater()
        row = self.queue.pop(0) if self.queue else None
        if row is None:  # cancelled: cancel_download said what happened
            self._update_buttons()
            return
        if exit_status == QProcess.ExitStatus.NormalExit and code == 0:
            folder = row.need.folder_in(self.download_root)
            row.show_found(folder, "downloaded and checked", changed=True)
            if self.queue:
                self._next()
                return
            self.status.setText("Every file arrived whole: each matches the hub's checksum.")
            self.bar.setValue(BAR_STEPS)
            self.finish()
            return
        errors = [ln for ln in self._stderr.splitlines() if ln.startswith("error: ")]
        message = errors[-1].removeprefix("error: ") if errors else "the download stopped"
        self.queue.clear()
        self.status.setText(f"{row.need.title}: {message[:1].upper()}{message[1:]}")
        self.refresh()

    def cancel_download(self) -> None:
        """Stop the download now; what arrived stays for Resume (also after a restart)."""
        if self.process is None:
            return
        row = self.queue[0] if self.queue else None
        self.queue.clear()  # _finished sees no row: nothing to report but this
        self.process.kill()
        self.process.waitForFinished(5000)
        self.refresh()
        if row is not None:
            partial = partial_bytes(row.need.folder_in(self.download_root))
            self.status.setText(
                f"Cancelled with {size_text(partial)} of {row.need.title} here: Resume download "
                "goes on from there, now or another day."
            )

    # -- done ----------------------------------------------------------------------------------

    def finish(self) -> None:
        """Hand what is here to the window and close: CSM-1B to load, the listen-back models."""
        csm = self.row(CSM)
        if csm.folder is None:
            self.status.setText("CSM-1B is still missing: download it or choose its folder.")
            return
        listen = [self.row(kind) for kind in (ASR, SPEAKER)]
        self.listen_chosen.emit(*(str(r.folder) if r.changed and r.folder else "" for r in listen))
        self.chosen = str(csm.folder) if csm.changed else self.specs[CSM] or str(csm.folder)
        self.model_chosen.emit(self.chosen)
        self.accept()

    def done(self, result: int) -> None:
        """Closing the guide stops a download (it resumes next time)."""
        if self.process is not None:
            self.cancel_download()
        super().done(result)
