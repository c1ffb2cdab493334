"""The studio window: voice on the left, what to say and the takes on the right.

The model lives in one InferenceWorker on a QThread, behind a GenerationController (one job at a
time, each with an id); the window asks it for loads and takes and reacts to what it reports, so
loading and generating never freeze the window. The library and the player are passed in.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, cast

from PySide6.QtCore import QByteArray, Qt, QUrl, Signal
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDesktopServices,
    QDragEnterEvent,
    QDropEvent,
    QKeySequence,
    QShortcut,
    QUndoStack,
)
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app import defaults, logs, paths
from desktop_app.audio.player import Player, StreamingPlayback
from desktop_app.audio.reference import check_transcripts
from desktop_app.config import Settings, save_settings
from desktop_app.defaults import FRAME_RATE, SAMPLE_RATE
from desktop_app.errors import InternalError, ModelNotFoundError, RequestError, UserError
from desktop_app.inference import GenerationRequest, GenerationResult
from desktop_app.inference.self_test import SelfTestReport
from desktop_app.library.store import Library, TakeRecord
from desktop_app.session.models import ModelNames
from desktop_app.session.requests import make_request, new_seed
from desktop_app.session.say import keep
from desktop_app.takes import session_take_file
from desktop_app.ui.conversation_panel import ConversationPanel, SpeakOrder
from desktop_app.ui.describe import describe
from desktop_app.ui.dialogs import (
    ErrorFunnel,
    ListenModelsDialog,
    SelfTestDialog,
    show_about,
)
from desktop_app.ui.first_run import FirstRunGuide
from desktop_app.ui.generation import GenerationController, Job, JobHooks
from desktop_app.ui.library_panels import HistoryPanel, VoiceLibraryBox
from desktop_app.ui.local_api import LocalAPI
from desktop_app.ui.takes_panel import Take, TakesPanel
from desktop_app.ui.voice_panel import Clip, VoicePanel, clip_from_file
from desktop_app.ui.workers import ClipAudio, EngineInfo

if TYPE_CHECKING:
    from desktop_app.checks.best_of import BestOf
    from desktop_app.checks.take_check import TakeCheck
    from desktop_app.inference.transcript import Transcript

log = logging.getLogger(__name__)

WINDOW_SOURCE = "window"  # the history's source of the window's takes
RESTORED_TAKES = 20  # the window's latest takes, back in the takes list after a restart


class MainWindow(QMainWindow):
    """Record or import a voice, type text, generate, play, compare and save takes."""

    model_ready = Signal()
    take_ready = Signal(object)  # Take, once it is listed and written to the takes folder
    generation_failed = Signal(object)  # UserError (load or generation)
    generation_cancelled = Signal()
    self_tested = Signal(object)  # SelfTestReport, once its table is shown
    recordings_recovered = Signal(int)  # how many interrupted recordings became clips
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
        self.engine_info: EngineInfo | None = None
        self._ready_to_record = False  # the first-run guide just handed over a model
        self.playback: StreamingPlayback | None = None  # the take playing while it is made

        self.voice = VoicePanel(self.undo, self.player)
        self.takes = TakesPanel(self.player)
        self.voice.error.connect(self.errors.show)
        self.takes.error.connect(self.errors.show)
        self.takes.regenerate_requested.connect(self.regenerate)
        self.takes.part_regenerate_requested.connect(self.regenerate_part)
        self.takes.candidate_chosen.connect(self.use_candidate)
        self.voice.transcribe_requested.connect(self.transcribe_clip)
        self.voice.clip_added.connect(self._clip_added)
        self.voice.import_button.clicked.connect(self.import_dialog)

        # the library: saved voices above the clips, the history beside this session's takes
        self.library = library
        self.library_problem = library_problem
        self.library_box: VoiceLibraryBox | None = None
        self.history: HistoryPanel | None = None
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.takes, "Takes (this session)")
        if self.library is not None:
            self.library_box = VoiceLibraryBox(self.library, self.voice, self.undo)
            self.library_box.error.connect(self.errors.show)
            self.history = HistoryPanel(self.library, self.undo)
            self.history.error.connect(self.errors.show)
            self.history.play_requested.connect(self.play_record)
            self.history.stop_requested.connect(self.takes.stop)
            self.history.reuse_requested.connect(self.reuse_record)
            self.library_box.voices_changed.connect(self.history.fill_voices)
            left_layout.addWidget(self.library_box)
            self.tabs.addTab(self.history, "History")
            self.conversation = ConversationPanel(self.library, self.player)
            self.conversation.error.connect(self.errors.show)
            self.conversation.generate_requested.connect(self.speak_conversation)
            self.library_box.voices_changed.connect(self.conversation.refresh_cast)
            self.tabs.addTab(self.conversation, "Conversation")
        else:
            problem = QLabel(f"The library is not available: {self.library_problem}")
            problem.setWordWrap(True)
            self.tabs.addTab(problem, "History")
        self.tabs.currentChanged.connect(self._tab_changed)
        left_layout.addWidget(self.voice, 1)

        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self._build_generate_box())
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
        self._build_menus()
        self._build_status_bar()
        self._fill_devices()
        self._restore_geometry()

        self.jobs = GenerationController(self)
        self.jobs.load_progressed.connect(self._load_progressed)
        self.jobs.loaded.connect(self._loaded)
        self.jobs.progressed.connect(self._progressed)
        self.jobs.chunk_ready.connect(self._chunk_ready)
        self.jobs.finished.connect(self._finished)
        self.jobs.cancelled.connect(self._cancelled)
        self.jobs.failed.connect(self._failed)
        self.jobs.self_tested.connect(self._self_tested)
        self.jobs.share_progressed.connect(self._share_progressed)
        self.jobs.transcribed.connect(self._transcribed)
        self.jobs.line_ready.connect(self._line_ready)
        self.jobs.conversed.connect(self._conversed)
        self.local_api = LocalAPI(
            self.jobs.queue,
            self.jobs.worker,
            lambda: self.engine_info,
            self.library.folder if self.library is not None else None,
        )
        self.local_api.take_kept.connect(self._api_take_kept)
        self.takes.library = self.library
        if self.library is not None:
            self.takes.restore(self.library.takes(limit=RESTORED_TAKES, source=WINDOW_SOURCE))
        if self.settings.local_api:
            self.serve_api(True)

    @property
    def generating(self) -> bool:
        """A take is being made."""
        return self.jobs.generating

    # -- building ------------------------------------------------------------------------------

    def _build_generate_box(self) -> QGroupBox:
        box = QGroupBox("Say")
        layout = QVBoxLayout(box)
        self.text = QPlainTextEdit()
        self.text.setPlaceholderText("Type what the voice should say, then press Ctrl+Return")
        self.text.setMaximumHeight(100)
        layout.addWidget(self.text)
        form = QFormLayout()
        s = self.settings
        self.temperature = QDoubleSpinBox(decimals=2, minimum=0.0, maximum=2.0, singleStep=0.05)
        self.temperature.setValue(s.temperature)
        self.temperature.setToolTip("0 = greedy (always the same); 0.9 is the usual setting")
        self.top_k = QSpinBox(minimum=0, maximum=2051)
        self.top_k.setValue(s.top_k)
        self.top_k.setToolTip("Sample among the k most likely codes (0 = all)")
        self.top_p = QDoubleSpinBox(decimals=2, minimum=0.05, maximum=1.0, singleStep=0.05)
        self.top_p.setValue(s.top_p)
        seed_row = QHBoxLayout()
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1)
        self.seed.setValue(s.seed)
        self.seed_lock = QCheckBox("Lock")
        self.seed_lock.setChecked(s.seed_locked)
        self.seed_lock.setToolTip(
            "Locked: every take uses this seed. Unlocked: a new seed each time"
        )
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.seed_lock)
        self.max_seconds = QDoubleSpinBox(decimals=1, minimum=0.5, maximum=60.0, singleStep=1.0)
        self.max_seconds.setValue(s.max_seconds)
        self.max_seconds.setSuffix(" s")
        self.denoise = QCheckBox("Lightly denoise the clips")
        self.denoise.setToolTip("Reduce steady background noise in the clips before they are used")
        self.denoise.setChecked(s.denoise)
        self.play_live = QCheckBox("Play while generating")
        self.play_live.setToolTip(
            "Hear the take as it is made: playback starts once the rest can follow without gaps"
        )
        self.play_live.setChecked(s.play_while_generating)
        describe(
            (self.temperature, "", "Temperature"),
            (self.top_k, "", "Top-k"),
            (self.top_p, "Sample among the most likely codes up to this share (1 = all)", "Top-p"),
            (self.seed, "The random seed of the next take (the same seed, the same take)", "Seed"),
            (self.max_seconds, "The longest take to make, in seconds", "Maximum length"),
        )
        form.addRow("Temperature", self.temperature)
        form.addRow("Top-k", self.top_k)
        form.addRow("Top-p", self.top_p)
        form.addRow("Seed", seed_row)
        form.addRow("Maximum length", self.max_seconds)
        form.addRow("", self.denoise)
        form.addRow("", self.play_live)
        self.check_takes = QCheckBox("Check every take")
        self.check_takes.setToolTip(
            "Listen back: transcribe the take, compare its voice with the clips, trim what "
            "follows the speech, and give a verdict with reasons"
        )
        self.check_takes.setChecked(s.check_takes)
        self.candidates = QSpinBox(minimum=1, maximum=8)
        self.candidates.setValue(max(1, min(8, s.candidates)))
        self.candidates.setPrefix("best of ")
        self.candidates.setToolTip(
            "Make this many takes at once (seeds seed, seed+1, ...), check each, keep the best; "
            "with playback on, the chosen one plays when all are made"
        )
        self.candidates.setAccessibleName("Best of N")
        self.coherent = QCheckBox("Long texts: one sentence after another")
        self.coherent.setToolTip(
            "Each sentence is said with the ones before it as context: a steadier voice, about "
            "3x slower than making all sentences at once (the default)"
        )
        self.coherent.setChecked(s.coherent_long_text)
        form.addRow("", self.check_takes)
        form.addRow("", self.coherent)
        form.addRow("Candidates", self.candidates)
        layout.addLayout(form)
        row = QHBoxLayout()
        self.generate_button = QPushButton("Generate")
        self.generate_button.setToolTip("Generate a take (Ctrl+Return)")
        self.generate_button.clicked.connect(self.generate)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running generation (Esc)")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        row.addWidget(self.generate_button)
        row.addWidget(self.cancel_button)
        layout.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.progress_label = QLabel("Load a model to start.")
        layout.addWidget(self.progress)
        layout.addWidget(self.progress_label)
        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            QShortcut(QKeySequence(keys), self, self.generate).setWhatsThis("Generate the take")
        QShortcut(QKeySequence("Esc"), self, self.cancel).setWhatsThis("Cancel what is being made")
        return box

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "&Import clip…", "Ctrl+O", self.import_dialog)
        self._action(file_menu, "&Save take as…", "Ctrl+S", self.takes.save_dialog)
        file_menu.addSeparator()
        self.cleanup_action = self._action(
            file_menu, "&Clean up library files…", None, self.clean_up_dialog
        )
        self.cleanup_action.setToolTip(
            "Remove audio files of the library that no voice, clip, take or conversation uses"
        )
        self.cleanup_action.setEnabled(self.library is not None)
        self._action(file_menu, "&Quit", "Ctrl+Q", self.close)
        edit_menu = self.menuBar().addMenu("&Edit")
        undo = self.undo.createUndoAction(self, "&Undo")
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        redo = self.undo.createRedoAction(self, "&Redo")
        redo.setShortcut(QKeySequence.StandardKey.Redo)
        edit_menu.addAction(undo)
        edit_menu.addAction(redo)
        model_menu = self.menuBar().addMenu("&Model")
        self._action(model_menu, "&Choose or download model…", None, self.model_setup)
        self._action(
            model_menu, "&Reload model", None, lambda: self.load_model(self.settings.model)
        )
        self.int8_action = self._action(
            model_menu, "Use &int8 weights on the CPU", None, self.set_int8
        )
        self.int8_action.setCheckable(True)
        self.int8_action.setChecked(self.settings.quantize == "int8")
        self.int8_action.setToolTip(
            "About 3x faster per frame on a CPU with the full model; the voice is approximated "
            "(not for GPUs). Reloads the model"
        )
        self._action(model_menu, "&Listen-back models…", None, self.listen_models)
        model_menu.addSeparator()
        self.api_action = self._action(model_menu, "Serve the local &API", None, self.serve_api)
        self.api_action.setCheckable(True)
        self.api_action.setToolTip(
            "Let other programs on this computer speak with the loaded model: OpenAI's "
            "/v1/audio/speech and /clone-voice on 127.0.0.1 (off by default)"
        )
        view_menu = self.menuBar().addMenu("&View")
        self.scheme_actions: dict[str, QAction] = {}
        group = QActionGroup(self)
        for scheme, text in (
            ("system", "&Like the desktop"),
            ("light", "L&ight"),
            ("dark", "&Dark"),
        ):
            action = self._action(
                view_menu, text, None, lambda _=False, s=scheme: self.set_scheme(s)
            )
            action.setCheckable(True)
            action.setChecked(self.settings.color_scheme == scheme)
            group.addAction(action)
            self.scheme_actions[scheme] = action
        help_menu = self.menuBar().addMenu("&Help")
        self._action(help_menu, "&Keyboard shortcuts", "F1", self.show_shortcuts)
        self._action(help_menu, "&Test this computer…", None, self.test_computer)
        self._action(help_menu, "Open &log folder", None, self.open_log_folder)
        self._action(help_menu, "&About CSM Studio", None, lambda: show_about(self))

    def _action(self, menu: object, text: str, keys: str | None, slot: object) -> QAction:
        action = QAction(text, self)
        if keys:
            action.setShortcut(QKeySequence(keys))
        action.triggered.connect(slot)
        menu.addAction(action)  # type: ignore[attr-defined]
        return action

    def _build_status_bar(self) -> None:
        self.device_label = QLabel("device: —")
        self.model_label = QLabel("model: not loaded")
        self.rtf_label = QLabel("last RTF: —")
        self.checks_label = QLabel("checks: —")
        self.api_label = QLabel("")
        self.api_label.setAccessibleName("Local API address")
        self.api_label.setToolTip("Model → Serve the local API turns it on or off")
        for label in (
            self.device_label,
            self.model_label,
            self.checks_label,
            self.rtf_label,
            self.api_label,
        ):
            self.statusBar().addPermanentWidget(label)

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

    # -- the model -----------------------------------------------------------------------------

    def load_model(self, model: str) -> None:
        """Load ``model`` on the worker thread; a missing checkpoint opens the set-up dialog."""
        from desktop_app.inference.model_store import resolve_model

        try:
            resolve_model(model)
        except ModelNotFoundError as exc:
            self.model_label.setText("model: not found")
            self.progress_label.setText("No model yet: choose a folder or download it.")
            # the guide's own lines say what is missing; a named model that fails says why
            problem = str(exc).split("; ", 1)[0]  # the rest is the command line's advice
            self.model_setup(
                ""
                if model == defaults.MODEL_ID
                else f"The model in the settings cannot be used ({problem}): download it below "
                "or choose a folder that holds it."
            )
            return
        try:
            s = self.settings
            self.jobs.load(
                model,
                s.engine,
                s.device,
                s.quantize,
                s.asr_model,
                s.speaker_model,
                JobHooks(on_cancelled=self._load_cancelled, on_failed=self._load_failed),
            )
        except UserError as exc:
            self.errors.show(exc)
            return
        self.settings.model = model
        self.engine_info = None
        self.progress.setRange(0, 0)  # busy
        self.generate_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.model_label.setText("model: loading…")

    def set_int8(self, on: bool) -> None:
        """Model → Use int8 weights on the CPU: remember the choice and reload the model."""
        self.settings.quantize = "int8" if on else ""
        if self.engine_info is not None and not self.jobs.busy:
            self.load_model(self.settings.model)

    def listen_models(self) -> None:
        """Model → Listen-back models: choose them, then reload so they load beside CSM."""
        dialog = ListenModelsDialog(self.settings.asr_model, self.settings.speaker_model, self)
        dialog.chosen.connect(self._listen_models_chosen)
        dialog.open()
        self.listen_dialog = dialog

    def _listen_models_chosen(self, asr: str, speaker: str) -> None:
        self.settings.asr_model, self.settings.speaker_model = asr, speaker
        if not self.jobs.busy:
            self.load_model(self.settings.model)

    def model_setup(self, problem: str = "") -> None:
        """Open the first-run guide: what the studio needs, its download, or a folder."""
        s = self.settings
        guide = FirstRunGuide(
            s.model, s.asr_model, s.speaker_model, self._device_for_models(), problem, self
        )
        guide.listen_chosen.connect(self._guide_listen_models)
        guide.model_chosen.connect(self._guide_model)
        guide.open()
        self.setup_dialog = guide

    def _device_for_models(self) -> str:
        """The device the guide sizes the speech-recognition model for."""
        if self.settings.device != "auto":
            return self.settings.device
        if self.engine_info is not None:
            return self.engine_info.device
        return "cpu"  # the guide comes before any engine; a GPU machine can choose the larger

    def _guide_listen_models(self, asr: str, speaker: str) -> None:
        if asr:
            self.settings.asr_model = asr
        if speaker:
            self.settings.speaker_model = speaker

    def _guide_model(self, model: str) -> None:
        self._ready_to_record = True
        self.load_model(model)

    def _load_progressed(self, text: str) -> None:
        self.progress_label.setText(text[:1].upper() + text[1:] + "…")

    def _loaded(self, info: EngineInfo) -> None:
        self.cancel_button.setEnabled(False)
        self.engine_info = info
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.generate_button.setEnabled(True)
        self.device_label.setText(f"device: {info.device_name}")
        self.model_label.setText(f"model: {info.model_dir.name} ({info.engine}, {info.dtype})")
        self.checks_label.setText(info.checks)
        self.checks_label.setToolTip("\n".join(info.notes) or "Every take is checked")
        self.progress_label.setText(f"Model ready (loaded in {info.load_seconds:.1f} s).")
        if self._ready_to_record:  # straight from the first-run guide: on to the voice
            self._ready_to_record = False
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

    # -- generation ----------------------------------------------------------------------------

    def build_request(self, text: str | None = None) -> GenerationRequest:
        """The request for the current text and settings; its voice prompt comes from the clips,
        which the worker prepares (see :meth:`generate`).

        Raises:
            UserError: no text, or a clip without transcript.
        """
        text = self.text.toPlainText() if text is None else text
        if not text.strip():
            raise RequestError("nothing to say: type some text first")
        check_transcripts(self.voice.clips)
        return self.sampling_request(text)

    def sampling_request(self, text: str) -> GenerationRequest:
        """``text`` with the sampling settings and the seed (a new one unless it is locked)."""
        if not self.seed_lock.isChecked():
            self.seed.setValue(new_seed())
        return make_request(
            text,
            temperature=self.temperature.value(),
            top_k=self.top_k.value(),
            top_p=self.top_p.value(),
            seed=self.seed.value(),
            max_seconds=self.max_seconds.value(),
        )

    def generate(self) -> None:
        """Start a generation with the current text and settings."""
        if self.generating:
            return
        if self.engine_info is None:
            self.errors.show(
                UserError("no model is loaded yet; wait for it or choose one in the Model menu")
            )
            return
        try:
            request = self.build_request()
        except UserError as exc:
            self.errors.show(exc)
            return
        clips = tuple(ClipAudio(clip.audio, clip.transcript) for clip in self.voice.clips)
        voice = self.library_box.current_voice() if self.library_box else None
        self._submit(request, voice, clips=clips, denoise=self.denoise.isChecked())

    def regenerate(self, take: Take) -> None:
        """Make ``take`` again: same text and settings, a new seed unless the seed is locked."""
        if self.generating or self.engine_info is None:
            return
        seed = take.request.seed if self.seed_lock.isChecked() else new_seed()
        self._submit(dataclasses.replace(take.request, seed=seed), take.voice)

    def regenerate_part(self, take: Take, index: int) -> None:
        """Make part ``index`` of a long take again with a new seed; the other parts stay."""
        if self.generating or self.engine_info is None or not 0 <= index < len(take.result.parts):
            return
        from desktop_app.inference.long_text import chunk_requests

        part_request = chunk_requests(take.request)[0][index]
        part_request = dataclasses.replace(part_request, seed=new_seed())
        self._submit(part_request, take.voice, part=(take, index))

    def _submit(
        self,
        request: GenerationRequest,
        voice: str | None = None,
        part: tuple[Take, int] | None = None,
        clips: tuple[ClipAudio, ...] = (),
        denoise: bool = False,
    ) -> None:
        stream = self.play_live.isChecked()
        candidates = self.candidates.value() if part is None else 1
        try:
            self.jobs.generate(
                request,
                clips=clips,
                denoise=denoise,
                stream=stream,
                voice=voice,
                part=part,
                check=self.check_takes.isChecked() or candidates > 1,
                candidates=candidates,
                coherent=self.coherent.isChecked(),
                hooks=JobHooks(on_failed=lambda _: self.player.stop()),
            )
        except UserError as exc:
            self.errors.show(exc)
            return
        frames = max(1, round(request.max_seconds * FRAME_RATE))
        self.progress.setRange(0, frames)
        self.progress.setValue(0)
        self.progress_label.setText("Preparing the voice prompt…")
        self.generate_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.playback = None
        if stream:
            self.takes.stop()
            from desktop_app.inference.long_text import longest_take_seconds

            total = longest_take_seconds(request)
            self.playback = StreamingPlayback(self.player, SAMPLE_RATE, total)

    def _chunk_ready(self, piece: object) -> None:
        if self.playback is not None:
            self.playback.feed(piece)  # type: ignore[arg-type]
            if self.playback.error is not None:
                self.statusBar().showMessage(f"Not playing: {self.playback.error}", 8000)

    def cancel(self) -> None:
        """Stop the running generation after the current frame (or drop a model being loaded)."""
        if self.jobs.busy:
            self.jobs.cancel()
            self.progress_label.setText("Cancelling…")

    def _progressed(self, frames: int, seconds: float) -> None:
        job = self.jobs.job
        self.progress.setValue(min(frames, self.progress.maximum()))
        elapsed = time.monotonic() - job.started if job is not None else 0.0
        remaining = (self.progress.maximum() - frames) * elapsed / max(1, frames)
        self.progress_label.setText(
            f"{seconds:.1f} s of audio made · at most {remaining:.0f} s left"
        )

    def _transcription_progressed(self, share: float, what: str) -> None:
        self.progress.setRange(0, 100)
        self.progress.setValue(round(100 * share))
        self._share_progressed(share, what)

    def _share_progressed(self, share: float, what: str) -> None:
        self.progress_label.setText(f"{what[:1].upper()}{what[1:]}… {share:.0%}")

    # -- transcribing clips --------------------------------------------------------------------

    def _clip_added(self, clip: Clip) -> None:
        """A new clip without a transcript is transcribed at once, when a recogniser is loaded
        and nothing else runs (else the Transcribe button does it later)."""
        info = self.engine_info
        if clip.transcript.strip() or info is None or not info.asr_model or self.jobs.busy:
            return
        self.transcribe_clip(clip)

    def transcribe_clip(self, clip: Clip) -> None:
        """Transcribe ``clip`` in the worker (progress, Esc cancels); a hand edit made in the
        meantime is kept."""
        if self.engine_info is None:
            self.errors.show(UserError("load a model first: the recogniser loads beside it"))
            return
        try:
            hooks = JobHooks(on_share=self._transcription_progressed)
            self.jobs.transcribe(clip.audio, f"the clip {clip.name!r}", clip, hooks)
        except UserError as exc:
            self.errors.show(exc)
            return
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.progress_label.setText(f"Transcribing {clip.name}…")
        self.generate_button.setEnabled(False)
        self.cancel_button.setEnabled(True)

    def _transcribed(self, job: Job, transcript: Transcript) -> None:
        self._done()
        self.progress.setValue(100)
        clip = cast("Clip", job.target)
        if self.voice.set_transcript(clip, transcript):
            self.progress_label.setText(f"Transcribed {clip.name}: “{transcript.text}”")
        else:
            self.progress_label.setText(
                f"Heard “{transcript.text}” in {clip.name}; your own transcript was kept"
            )
        self.clip_transcribed.emit(clip)

    # -- conversations -------------------------------------------------------------------------

    def speak_conversation(self, order: SpeakOrder) -> None:
        """The Conversation tab's Generate all / from this line / Regenerate line: the lines
        asked for, in the worker, each on the lines before it."""
        if self.engine_info is None or self.library is None:
            self.errors.show(UserError("load a model first; the cast comes from the library"))
            return
        try:
            voices = {
                name: tuple(
                    ClipAudio(clip.audio(), clip.transcript)
                    for clip in self.library.voice(voice).clips
                )
                for name, voice in order.cast.items()
            }
            settings = self.sampling_request("-")
            if order.seed is not None:
                settings = dataclasses.replace(settings, seed=order.seed)
            self.jobs.converse(
                order.script,
                voices,
                settings,
                check=self.check_takes.isChecked(),
                candidates=self.candidates.value(),
                lines=order.lines,
                made=order.made,
                hooks=JobHooks(
                    on_cancelled=self.conversation.failed,
                    on_failed=lambda _: self.conversation.failed(),
                ),
            )
        except UserError as exc:
            self.errors.show(exc)
            return
        assert settings.seed is not None
        self.conversation.started(settings.seed)
        self.progress.setRange(0, 0)
        count = len(order.lines) if order.lines is not None else len(order.script.turns)
        self.progress_label.setText(f"Speaking {count} line(s), each on the lines before it…")
        self.generate_button.setEnabled(False)
        self.cancel_button.setEnabled(True)

    def _line_ready(self, line: object) -> None:
        from desktop_app.inference.model_store import model_revision

        info = self.engine_info
        revision = model_revision(info.model_dir) if info is not None else ""
        self.conversation.add_line(line, info.model if info else "", revision)  # type: ignore[arg-type]
        self.progress_label.setText(f"Line {line.index + 1} made…")  # type: ignore[attr-defined]

    def _conversed(self, job: Job, lines: object) -> None:
        self._done()
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.conversation.set_lines(lines)  # type: ignore[arg-type]
        self.progress_label.setText(f"Conversation made: {len(self.conversation.lines)} lines")
        if self.history is not None:
            self.history.refresh()
        self.conversation_ready.emit(lines)

    # -- look and keys -------------------------------------------------------------------------

    def set_scheme(self, scheme: str) -> None:
        """View → Like the desktop / Light / Dark (remembered)."""
        from desktop_app.ui.theme import apply_scheme

        self.settings.color_scheme = scheme
        self.scheme_actions[scheme].setChecked(True)
        apply_scheme(scheme)

    def shortcuts(self) -> list[tuple[str, str]]:
        """Every keyboard shortcut of the window: (keys, what it does)."""
        from PySide6.QtWidgets import QAbstractButton

        found: dict[str, str] = {}
        for action in self.findChildren(QAction):
            keys = action.shortcut().toString()
            if keys:
                found.setdefault(keys, action.text().replace("&", "").rstrip("…"))
        for button in self.findChildren(QAbstractButton):
            keys = button.shortcut().toString()
            if keys:
                what = button.toolTip().split(" (")[0] or button.text()
                found.setdefault(keys, what.strip("▶■★⟲ "))
        for shortcut in self.findChildren(QShortcut):
            keys = shortcut.key().toString()
            if keys:
                found.setdefault(keys, shortcut.whatsThis() or shortcut.objectName())
        return sorted(found.items(), key=lambda kv: (len(kv[0]), kv[0]))

    def show_shortcuts(self) -> None:
        """Help → Keyboard shortcuts (F1): a table of every shortcut."""
        from PySide6.QtWidgets import QDialog, QTableWidget, QTableWidgetItem

        dialog = QDialog(self)
        dialog.setWindowTitle("Keyboard shortcuts")
        layout = QVBoxLayout(dialog)
        rows = self.shortcuts()
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
        dialog.resize(520, 480)
        self.shortcuts_dialog = dialog
        dialog.open()

    # -- housekeeping ----------------------------------------------------------------------------

    def undoable_files(self) -> set[Path]:
        """Files an undo of this session could bring back (deleted voices' clips and takes)."""
        files: set[Path] = set()
        for index in range(self.undo.count()):
            command = self.undo.command(index)
            removed = getattr(command, "removed", None)
            if removed is not None:
                files.update(clip.file for clip in removed.voice.clips)
            take = getattr(command, "take", None)
            if isinstance(take, TakeRecord):
                files.add(take.file)
        return files

    def clean_up_plan(self) -> list[Path]:
        """The library's files nothing uses, nor could an undo of this session."""
        if self.library is None:
            return []
        return self.library.unreferenced_files(self.undoable_files())

    def clean_up_dialog(self) -> None:
        """File → Clean up library files: the count and size first, then the removal."""
        files = self.clean_up_plan()
        if not files:
            QMessageBox.information(self, "Clean up", "Every file of the library is in use.")
            return
        size = sum(f.stat().st_size for f in files) / 1e6
        answer = QMessageBox.question(
            self,
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
        count, size = self.library.remove_files(files, self.undoable_files())
        self.statusBar().showMessage(f"Removed {count} file(s), {size / 1e6:.1f} MB", 8000)
        return count, size

    # -- the local API -------------------------------------------------------------------------

    def serve_api(self, on: bool) -> None:
        """Model → Serve the local API: start or stop the server on the loaded engine."""
        from desktop_app.api import keys

        self.settings.local_api = on
        if not on:
            self.local_api.stop()
            self.api_label.setText("")
            self.api_action.setChecked(False)
            return
        try:
            address = self.local_api.start(self.settings.local_api_port)
        except UserError as exc:  # the port is taken, the key cannot be kept
            self.settings.local_api = False
            self.api_action.setChecked(False)
            self.errors.show(exc)
            return
        self.api_action.setChecked(True)
        self.api_label.setText(f"API: {address}")
        self.api_label.setToolTip(f"Clients send the key kept in {keys.key_file()}")
        self.statusBar().showMessage(
            f"The local API listens on {address}/v1/audio/speech; its key is in {keys.key_file()}",
            8000,
        )

    def _api_take_kept(self, record: TakeRecord) -> None:
        if self.history is not None:
            self.history.refresh()
        self.api_take_kept.emit(record)

    # -- candidates ----------------------------------------------------------------------------

    def use_candidate(self, take: Take, chunk: int, index: int) -> None:
        """Keep candidate ``index`` (of part ``chunk``) of a best-of-N take: a new take."""
        if take.best_of is None:
            return
        best = take.best_of.with_choice(chunk, index)
        kept = self._keep(take.request, best.result, take.voice, best.check, best)
        if kept is not None:
            self.progress_label.setText(
                f"Take #{kept.number}: candidate seed "
                f"{best.chunks[chunk].best.seed} of take #{take.number}"
            )
            self.take_ready.emit(kept)

    def test_computer(self) -> None:
        """Help → Test this computer: the self-test on the loaded model, in the worker."""
        if self.engine_info is None:
            self.errors.show(UserError("load a model first, then test this computer with it"))
            return
        try:
            self.jobs.self_test(
                self.settings.model,
                JobHooks(
                    on_progress=lambda frames, _: self.progress_label.setText(
                        f"Testing this computer… frame {frames}"
                    )
                ),
            )
        except UserError as exc:
            self.errors.show(exc)
            return
        self.progress.setRange(0, 0)  # busy: three short takes
        self.generate_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress_label.setText("Testing this computer: both engines make the same take…")

    def _self_tested(self, report: SelfTestReport) -> None:
        self._done()
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.progress_label.setText(report.verdict)
        self.self_test_dialog = SelfTestDialog(report.table(), self)
        self.self_test_dialog.open()
        self.self_tested.emit(report)

    def _done(self) -> None:
        if self.playback is not None:
            self.playback.finish()
        self.generate_button.setEnabled(self.engine_info is not None)
        self.cancel_button.setEnabled(False)

    def _finished(self, job: Job, request: GenerationRequest, result: GenerationResult) -> None:
        self._done()
        self.progress.setValue(self.progress.maximum())
        self.rtf_label.setText(f"last RTF: {result.timings.real_time_factor:.2f}")
        notes = list(result.notices)
        first = result.timings.first_audio_s
        if self.playback is not None and first is not None:
            notes.append(f"first audio after {first:.2f} s")
        note = "; ".join(notes)
        self.progress_label.setText(
            f"Made {result.seconds:.1f} s in {result.timings.total_s:.1f} s"
            + (f" ({note})" if note else "")
        )
        check = cast("TakeCheck | None", job.check)
        if check is not None and check.verdict != "good":
            self.progress_label.setText(f"{self.progress_label.text()} — {check.summary}")
        take = self._keep(request, result, job.voice, check, cast("BestOf | None", job.best_of))
        if take is not None:
            self.take_ready.emit(take)

    def _keep(
        self,
        request: GenerationRequest,
        result: GenerationResult,
        voice: str | None,
        check: TakeCheck | None = None,
        best_of: BestOf | None = None,
    ) -> Take | None:
        """Write the take to the takes folder, record it in the history, list it."""
        from desktop_app.checks.best_of import MadeTake
        from desktop_app.inference.model_store import model_revision

        revision = model_revision(self.engine_info.model_dir) if self.engine_info else ""
        try:
            kept = keep(
                ModelNames(self.settings.model, revision),
                request,
                MadeTake(result, check, best_of),
                file=session_take_file(len(self.takes.takes) + 1, result.seed),
                library=self.library,
                voice=voice,
                private=True,  # a cloned voice: user-only until the user saves it elsewhere
                source=WINDOW_SOURCE,
            )
        except UserError as exc:
            self.errors.show(exc)
            self.generation_failed.emit(exc)
            return None
        if kept.record is None and self.library is not None:
            self.statusBar().showMessage(
                f"Take kept at {kept.file}, not in the history: {kept.problem}"
            )
        take = self.takes.add(request, result, self.settings.model, kept, voice, check, best_of)
        if kept.record is not None and self.history is not None:
            self.history.refresh()
        return take

    def _cancelled(self, job: Job) -> None:
        self._done()
        self.player.stop()  # what was streamed of a cancelled take stops too
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress_label.setText("Cancelled.")
        self.generation_cancelled.emit()

    def _load_cancelled(self) -> None:
        """A model load was cancelled (after the shared handling above)."""
        self.engine_info = None
        self.generate_button.setEnabled(False)
        self.model_label.setText("model: not loaded (cancelled)")
        self.progress_label.setText("Loading cancelled: choose a model in the Model menu.")

    def _load_failed(self, error: object) -> None:
        self.model_label.setText("model: failed to load")

    def _failed(self, job: Job, error: UserError | InternalError) -> None:
        self._done()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress_label.setText("")
        self.errors.show(error)
        self.generation_failed.emit(error)

    # -- the history ---------------------------------------------------------------------------

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
        """Put a past take's text, settings, seed and voice back in the editor."""
        settings = record.settings
        self.text.setPlainText(record.text)
        self.temperature.setValue(float(settings.get("temperature", self.temperature.value())))
        self.top_k.setValue(int(settings.get("top_k", self.top_k.value())))
        self.top_p.setValue(float(settings.get("top_p", self.top_p.value())))
        self.max_seconds.setValue(float(settings.get("max_seconds", self.max_seconds.value())))
        self.seed.setValue(record.seed)
        self.seed_lock.setChecked(True)  # the same seed gives the same take again
        if record.voice and self.library_box is not None:
            self.library_box.use(record.voice)
        self.statusBar().showMessage(f"Settings of take {record.id} restored; seed locked", 5000)

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
            self,
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

    # -- files ---------------------------------------------------------------------------------

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

    def open_log_folder(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(logs.configure_logging().parent)))

    # -- settings and shutdown -----------------------------------------------------------------

    def _restore_geometry(self) -> None:
        if self.settings.window_geometry:
            self.restoreGeometry(QByteArray(base64.b64decode(self.settings.window_geometry)))
        else:
            self.resize(1280, 820)
        if self.settings.window_state:
            self.splitter.restoreState(QByteArray(base64.b64decode(self.settings.window_state)))

    def store_settings(self) -> None:
        """Copy the window's state into the settings and save them."""
        s = self.settings
        s.temperature = self.temperature.value()
        s.top_k = self.top_k.value()
        s.top_p = self.top_p.value()
        s.seed = self.seed.value()
        s.seed_locked = self.seed_lock.isChecked()
        s.max_seconds = self.max_seconds.value()
        s.denoise = self.denoise.isChecked()
        s.play_while_generating = self.play_live.isChecked()
        s.check_takes = self.check_takes.isChecked()
        s.candidates = self.candidates.value()
        s.coherent_long_text = self.coherent.isChecked()
        s.input_device = self.voice.input_device.currentText()
        s.output_device = self.takes.output_device.currentText()
        s.window_geometry = base64.b64encode(bytes(self.saveGeometry().data())).decode()
        s.window_state = base64.b64encode(bytes(self.splitter.saveState().data())).decode()
        try:
            save_settings(s)
        except UserError as exc:
            log.warning("settings not saved: %s", exc)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        """Finish a recording, stop a generation, stop the worker thread, save settings."""
        self.voice.shutdown()
        self.takes.stop()
        self.local_api.stop()
        self.jobs.shutdown()
        self.store_settings()
        if self.library is not None:
            self.conversation.close_down()  # its script is kept before the library closes
            self.library.close()
        super().closeEvent(event)
