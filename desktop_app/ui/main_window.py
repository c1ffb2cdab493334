"""The studio window: voice on the left, what to say and the takes on the right.

A composition of parts, each its own module: the voice and takes panels, the library's boxes,
the Say form (:mod:`.say_form`), the job status (:mod:`.job_status`), the model's life cycle
(:mod:`.model_loader`), making and keeping takes (:mod:`.take_flow`), house-keeping
(:mod:`.housekeeping`), the local API (:mod:`.local_api`) and the menus from one table
(:mod:`.actions`). Model work runs as jobs of one queue (:mod:`.generation`), so loading and
generating never freeze the window. The window builds the parts, wires them, and handles what
concerns several of them. The library and the player are passed in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QCloseEvent, QDesktopServices, QDragEnterEvent, QDropEvent, QUndoStack
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QLabel,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app import logs
from desktop_app.audio.player import Player
from desktop_app.config import Settings, save_settings
from desktop_app.defaults import SAMPLE_RATE
from desktop_app.errors import InternalError, UserError
from desktop_app.library.records import TakeRecord
from desktop_app.library.store import Library
from desktop_app.ui import actions, window_state
from desktop_app.ui.conversation_panel import ConversationPanel
from desktop_app.ui.dialogs import ErrorFunnel, show_about
from desktop_app.ui.file_notice import FileNotice
from desktop_app.ui.generation import GenerationController, Job
from desktop_app.ui.housekeeping import Housekeeping
from desktop_app.ui.job_status import JobStatus
from desktop_app.ui.library_panels import HistoryPanel, VoiceLibraryBox
from desktop_app.ui.local_api import APISwitch, LocalAPI
from desktop_app.ui.model_loader import ModelLoader, StatusLabels
from desktop_app.ui.say_form import SayForm
from desktop_app.ui.take_flow import WINDOW_SOURCE, TakeFlow
from desktop_app.ui.takes_panel import TakesPanel
from desktop_app.ui.voice_panel import VoicePanel
from desktop_app.ui.window_jobs import ClipTranscriber, ConversationJobs, JobDesk, SelfTestRunner
from desktop_app.ui.workers import EngineInfo

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

RESTORED_TAKES = 20  # the window's latest takes, back in the takes list after a restart


class MainWindow(QMainWindow):
    """Record or import a voice, type text, generate, play, compare and save takes."""

    model_ready = Signal()
    take_ready = Signal(object)  # Take, once it is listed and written to the takes folder
    generation_failed = Signal(object)  # UserError (load or generation)
    generation_cancelled = Signal()
    self_tested = Signal(object)  # SelfTestReport, once its table is shown
    clip_transcribed = Signal(object)  # Clip, once the recogniser's answer was handled
    api_take_kept = Signal(object)  # TakeRecord of a take made through the local API
    conversation_ready = Signal(object)  # the list of SpokenLine, once all are made

    def __init__(
        self,
        settings: Settings,
        *,
        library: Library | None,
        player: Player,
        library_problem: str = "",
    ) -> None:
        """The window over ``library`` (None: it could not be opened, ``library_problem`` says
        why; the window closes it when it closes) and ``player``."""
        super().__init__()
        self.settings = settings
        self.setWindowTitle("CSM Studio")
        self.setAcceptDrops(True)
        self.errors = ErrorFunnel(self)
        self.undo = QUndoStack(self)
        self.player = player
        self.library = library
        self.library_problem = library_problem
        self.voice = VoicePanel(self.undo, self.player)
        self.takes = TakesPanel(self.player)
        self.say = SayForm(settings)
        self.job_status = JobStatus()
        self.library_box: VoiceLibraryBox | None = None
        self.history: HistoryPanel | None = None
        self.tabs = QTabWidget()
        self._build_layout()
        self.jobs = GenerationController(self)
        self.labels = StatusLabels(self.statusBar())
        self.file_notice = FileNotice(self.statusBar())
        self.loader = ModelLoader(
            settings, self.jobs, self.job_status, self.labels, self.errors, self, self._enable
        )
        self.flow = TakeFlow(
            self, settings, self.jobs, self.say, self.job_status, self.voice, self.takes,
            self.player, library, self.library_box, lambda: self.engine_info, self.errors,
        )  # fmt: skip
        self.housekeeping = Housekeeping(self, library, self.undo, self.voice, self.errors)
        desk = JobDesk(self, self.jobs, self.job_status, lambda: self.engine_info, self.errors)
        self.transcriber = ClipTranscriber(desk, self.voice)
        self.self_test = SelfTestRunner(desk, lambda: settings.model)
        if library is not None:
            self.conversation_jobs = ConversationJobs(desk, self.conversation, library, self.say)
        self.local_api = LocalAPI(
            self.jobs.queue,
            self.jobs.worker,
            lambda: self.engine_info,
            library.folder if library is not None else None,
        )
        self.api_switch = APISwitch(self.local_api, settings, self.labels.api, self.errors, self)
        self.menu_actions = actions.build_menus(self)
        self.api_switch.action = self.menu_actions["api"]
        self.confirm_quit: Callable[[str], bool] = self._ask_to_quit
        self._wire()
        self._fill_devices()
        window_state.restore(self, self.splitter, settings)
        self.takes.library = library
        if library is not None:
            self.takes.restore(library.takes.list(limit=RESTORED_TAKES, source=WINDOW_SOURCE))
        if settings.local_api:
            self.api_switch.serve(True)

    def _build_layout(self) -> None:
        """The voice (with the saved voices above it) on the left; the Say form, the job's
        status and the tabs (takes, history, conversation) on the right."""
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        self.tabs.addTab(self.takes, "Takes (this session)")
        if self.library is not None:
            self.library_box = VoiceLibraryBox(self.library, self.voice, self.undo)
            self.history = HistoryPanel(self.library, self.undo)
            self.conversation = ConversationPanel(self.library, self.player)
            left_layout.addWidget(self.library_box)
            self.tabs.addTab(self.history, "History")
            self.tabs.addTab(self.conversation, "Conversation")
        else:
            problem = QLabel(f"The library is not available: {self.library_problem}")
            problem.setWordWrap(True)
            self.tabs.addTab(problem, "History")
        left_layout.addWidget(self.voice, 1)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.say)
        right_layout.addWidget(self.job_status)
        right_layout.addWidget(self.tabs, 1)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        for pane in (left, right):  # a small screen scrolls a pane instead of clipping it
            scroller = QScrollArea()
            scroller.setWidgetResizable(True)
            scroller.setFrameShape(QFrame.Shape.NoFrame)
            scroller.setWidget(pane)
            scroller.setMinimumWidth(420)
            splitter.addWidget(scroller)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 1)
        self.splitter = splitter
        self.setCentralWidget(splitter)

    def _wire(self) -> None:
        """Connect the parts to each other and to the window."""
        for part in (self.voice, self.takes, self.library_box, self.history):
            if part is not None:
                part.error.connect(self.errors.show)
        self.voice.import_button.clicked.connect(self.import_dialog)
        self.say.generate_requested.connect(self.flow.generate)
        self.job_status.cancel_requested.connect(self.cancel)
        self.say.text.textChanged.connect(self._enable)
        self.voice.clips_changed.connect(self._enable)
        self.voice.transcript.textChanged.connect(self._enable)
        self.clip_transcribed.connect(lambda _: self._enable())
        self.tabs.currentChanged.connect(self._tab_changed)
        if self.history is not None and self.library_box is not None:
            self.history.play_requested.connect(self.play_record)
            self.history.stop_requested.connect(self.takes.stop)
            self.history.reuse_requested.connect(self.reuse_record)
            self.library_box.voices_changed.connect(self.history.fill_voices)
            self.library_box.voices_changed.connect(self.conversation.refresh_cast)
            self.flow.history_changed.connect(self.history.refresh)
            self.conversation.error.connect(self.errors.show)
            self.conversation.exported.connect(
                lambda files: self.file_notice.written("Conversation exported", files)
            )
            self.conversation_jobs.history_changed.connect(self.history.refresh)
            self.conversation_jobs.spoken.connect(self.conversation_ready)
        self.flow.take_ready.connect(self.take_ready)
        self.takes.saved.connect(lambda path: self.file_notice.written("Take saved", [path]))
        self.flow.keep_failed.connect(self.generation_failed)
        self.loader.ready.connect(self._model_ready)
        self.jobs.busy_changed.connect(lambda _: self._enable())
        self.jobs.progressed.connect(self.job_status.frames)
        self.jobs.share_progressed.connect(self.job_status.share)
        self.transcriber.transcribed.connect(self.clip_transcribed)
        self.self_test.tested.connect(self.self_tested)
        self.jobs.cancelled.connect(self._cancelled)
        self.jobs.failed.connect(self._failed)
        self.local_api.take_kept.connect(self._api_take_kept)
        self.menu_actions["cleanup"].setEnabled(self.library is not None)
        self.menu_actions[f"weights-{self.settings.quantize}"].setChecked(True)
        self.menu_actions[f"scheme-{self.settings.color_scheme}"].setChecked(True)

    @property
    def engine_info(self) -> EngineInfo | None:
        """What is loaded (None while loading or without a model)."""
        return self.loader.info

    @property
    def generating(self) -> bool:
        """A take is being made."""
        return self.jobs.generating

    def _enable(self) -> None:
        """The one place that turns Generate and Cancel on or off: Generate with the reason
        it is off (the model, a running job, the voice, the text), Cancel while a job runs."""
        self.say.set_ready(self.not_ready())
        self.job_status.cancel_button.setEnabled(self.jobs.busy)

    def not_ready(self) -> str:
        """Why a take cannot be made now, in the user's words ("" when it can)."""
        if self.engine_info is None:
            return "Load a model first (Model menu)."
        if self.jobs.busy:
            return "Wait for the running job, or cancel it (Esc)."
        if not self.voice.clips:
            return "Record or import a clip of the voice first."
        for number, clip in enumerate(self.voice.clips, start=1):
            if not clip.transcript.strip():
                return f"Give clip {number} its transcript: exactly what is said in it."
        if not self.say.text.toPlainText().strip():
            return "Type what the voice should say."
        return ""

    def _fill_devices(self) -> None:
        from desktop_app.audio.devices import list_devices

        try:
            devices = list_devices()
        except UserError as exc:
            self.voice.fill_devices([], "")
            self.statusBar().showMessage(str(exc))
            return
        inputs = [
            d.name for d in sorted(devices, key=lambda d: not d.is_default_input) if d.inputs > 0
        ]
        outputs = [
            d.name for d in sorted(devices, key=lambda d: not d.is_default_output) if d.outputs > 0
        ]
        self.voice.fill_devices(inputs, self.settings.input_device)
        self.takes.output_device.clear()
        self.takes.output_device.addItems(outputs)
        if self.settings.output_device in outputs:
            self.takes.output_device.setCurrentText(self.settings.output_device)

    def _model_ready(self, info: EngineInfo, from_guide: bool) -> None:
        if from_guide:  # straight from the first-run guide: on to the voice
            self.tabs.setCurrentWidget(self.takes)
            self.voice.record_button.setFocus()
            self.statusBar().showMessage(
                "Ready: record a few seconds of the voice (Ctrl+R) or import a clip, then type "
                "what it should say",
                15000,
            )
        if info.notes:
            self.statusBar().showMessage(
                "Not every check can run: see the checks in the status bar", 8000
            )
        self.model_ready.emit()

    # -- jobs of the window --------------------------------------------------------------------

    def generate(self) -> None:
        """Ctrl+Return: make a take of what the Say form holds."""
        self.flow.generate()

    def cancel(self) -> None:
        """Esc: stop the running job after the current frame (or drop a model being loaded)."""
        if self.jobs.busy:
            self.jobs.cancel()
            self.job_status.cancelling()

    def _cancelled(self, job: Job) -> None:
        self.flow.finish_playback()
        self.player.stop()  # what was streamed of a cancelled take stops too
        self.job_status.ended("Cancelled.", complete=False)
        self.generation_cancelled.emit()

    def _failed(self, job: Job, error: UserError | InternalError) -> None:
        self.flow.finish_playback()
        self.job_status.ended("", complete=False)
        self.errors.show(error)
        self.generation_failed.emit(error)

    # -- menus ---------------------------------------------------------------------------------

    def set_scheme(self, scheme: str) -> None:
        """View → Like the desktop / Light / Dark (remembered)."""
        from desktop_app.ui.theme import apply_scheme

        self.settings.color_scheme = scheme
        self.menu_actions[f"scheme-{scheme}"].setChecked(True)
        apply_scheme(scheme)

    def show_shortcuts(self) -> None:
        """Help → Keyboard shortcuts (F1): a table of every shortcut."""
        from desktop_app.ui.dialogs import ShortcutsDialog

        self.shortcuts_dialog = ShortcutsDialog(actions.shortcut_rows(self), self)
        self.shortcuts_dialog.open()

    def _api_take_kept(self, record: TakeRecord) -> None:
        if self.history is not None:
            self.history.refresh()
        self.api_take_kept.emit(record)

    def open_log_folder(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(logs.configure_logging().parent)))

    def about(self) -> None:
        show_about(self)

    # -- the history, files --------------------------------------------------------------------

    def _tab_changed(self, index: int) -> None:
        if self.history is not None and self.tabs.widget(index) is self.history:
            self.history.fill_voices()  # takes and voices made meanwhile by the CLI

    def play_record(self, record: TakeRecord) -> None:
        """Play a take from the history on the chosen output device."""
        self.takes.stop()
        try:
            self.player.play(record.audio(), SAMPLE_RATE)
        except UserError as exc:
            self.errors.show(exc)

    def reuse_record(self, record: TakeRecord) -> None:
        """Put a past take's text, settings, seed and voice back in the Say form."""
        self.say.apply(record)
        if record.voice and self.library_box is not None:
            self.library_box.use(record.voice)
        self.statusBar().showMessage(f"Settings of take {record.id} restored; seed locked", 5000)

    def import_dialog(self) -> None:
        """Ask for audio files and import them as clips."""
        names, _ = QFileDialog.getOpenFileNames(
            self,
            "Import voice clip",
            self.settings.last_folder or str(Path.home()),
            "Audio (*.wav *.flac *.ogg *.opus *.mp3 *.m4a *.aac *.webm *.mp4);;All files (*)",
        )
        for name in names:
            self.import_path(Path(name))

    def import_path(self, path: Path) -> None:
        """Import one file as a clip; a bad file gets a clear error and nothing else changes."""
        try:
            self.voice.import_file(path)
            self.settings.last_folder = str(path.parent)
        except UserError as exc:
            self.errors.show(exc)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt's name)
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.import_path(Path(url.toLocalFile()))
        event.acceptProposedAction()

    # -- settings and shutdown -----------------------------------------------------------------

    def store_settings(self) -> None:
        """Copy the window's state into the settings and save them."""
        s = self.settings
        self.say.store(s)
        s.input_device = self.voice.input_device.currentText()
        s.output_device = self.takes.output_device.currentText()
        window_state.store(self, self.splitter, s)
        try:
            save_settings(s)
        except UserError as exc:
            log.warning("settings not saved: %s", exc)

    def _ask_to_quit(self, question: str) -> bool:
        answer = QMessageBox.question(self, "Quit CSM Studio", question)
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        """Ask first when a job is running; then finish a recording, stop the job queue,
        save the settings (the Say text among them)."""
        job = self.jobs.job
        question = f"{job.doing[:1].upper()}{job.doing[1:]}: stop it and quit?" if job else ""
        if (
            job is not None
            and job.precious
            and self.isVisible()
            and not self.confirm_quit(question)
        ):
            event.ignore()
            return
        self.voice.shutdown()
        self.takes.stop()
        self.local_api.stop()
        self.jobs.shutdown()
        self.store_settings()
        if self.library is not None:
            self.conversation.close_down()  # its script is kept before the library closes
            self.library.close()
        super().closeEvent(event)
