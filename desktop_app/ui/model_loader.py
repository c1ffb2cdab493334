"""The model's life cycle in the window: load (or open the first-run guide), reload, int8, the
listen-back models, and what the status bar says of the loaded model.

The loading itself is a job of the window's queue (:class:`~desktop_app.ui.generation.
GenerationController`); this part asks for it, shows its progress and keeps the
:class:`~desktop_app.ui.workers.EngineInfo` of what is loaded (``info``; None while loading).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel, QStatusBar, QWidget

from desktop_app import defaults
from desktop_app.config import Settings
from desktop_app.errors import ModelNotFoundError, UserError
from desktop_app.ui.dialogs import ErrorFunnel, ListenModelsDialog
from desktop_app.ui.first_run import FirstRunGuide
from desktop_app.ui.generation import GenerationController, JobHooks
from desktop_app.ui.job_status import JobStatus
from desktop_app.ui.workers import EngineInfo


class StatusLabels:
    """The status bar's permanent labels: device, model, checks, last RTF, the API address."""

    def __init__(self, bar: QStatusBar) -> None:
        self.device = QLabel("device: —")
        self.model = QLabel("model: not loaded")
        self.rtf = QLabel("last RTF: —")
        self.checks = QLabel("checks: —")
        self.api = QLabel("")
        self.api.setAccessibleName("Local API address")
        self.api.setToolTip("Model → Serve the local API turns it on or off")
        for label in (self.device, self.model, self.checks, self.rtf, self.api):
            bar.addPermanentWidget(label)


class ModelLoader(QObject):
    """Loads the model of the settings (or another), and says what is loaded."""

    ready = Signal(object, bool)  # EngineInfo, whether it came straight from the first-run guide

    def __init__(
        self,
        settings: Settings,
        jobs: GenerationController,
        status: JobStatus,
        labels: StatusLabels,
        errors: ErrorFunnel,
        parent: QWidget,
        busy_changed: Callable[[], None],
    ) -> None:
        super().__init__(parent)
        self.settings, self.jobs, self.status, self.labels = settings, jobs, status, labels
        self.errors = errors
        self.window = parent
        self.busy_changed = busy_changed  # the window enables what a loaded model allows
        self.info: EngineInfo | None = None
        self._from_guide = False  # the first-run guide just handed over a model
        self.setup_dialog: FirstRunGuide | None = None
        self.listen_dialog: ListenModelsDialog | None = None
        jobs.load_progressed.connect(self._progressed)
        jobs.loaded.connect(self._loaded)

    def load(self, model: str) -> None:
        """Load ``model`` as a job; a missing checkpoint opens the first-run guide."""
        from desktop_app.inference.model_store import resolve_model

        try:
            resolve_model(model)
        except ModelNotFoundError as exc:
            self.labels.model.setText("model: not found")
            self.status.say("No model yet: choose a folder or download it.")
            # the guide's own lines say what is missing; a named model that fails says why
            problem = str(exc).split("; ", 1)[0]  # the rest is the command line's advice
            self.setup(
                ""
                if model == defaults.MODEL_ID
                else f"The model in the settings cannot be used ({problem}): download it below "
                "or choose a folder that holds it."
            )
            return
        s = self.settings
        hooks = JobHooks(on_cancelled=self._cancelled, on_failed=self._failed)
        try:
            self.jobs.load(
                model,
                s.engine,
                s.device,
                defaults.quantize_setting(s.quantize),
                s.asr_model,
                s.speaker_model,
                hooks,
            )
        except UserError as exc:
            self.errors.show(exc)
            return
        self.settings.model = model
        self.info = None
        self.status.busy("Loading…")
        self.labels.model.setText("model: loading…")
        self.busy_changed()

    def reload(self) -> None:
        """Model → Reload model."""
        self.load(self.settings.model)

    def set_weights(self, choice: str) -> None:
        """Model → Weights (one of ``defaults.WEIGHTS``): remember the choice and reload."""
        self.settings.quantize = choice
        if self.info is not None and not self.jobs.busy:
            self.reload()

    def choose_listen_models(self) -> None:
        """Model → Listen-back models: choose them, then reload so they load beside CSM."""
        dialog = ListenModelsDialog(
            self.settings.asr_model, self.settings.speaker_model, self.window
        )
        dialog.chosen.connect(self._listen_models_chosen)
        dialog.open()
        self.listen_dialog = dialog

    def _listen_models_chosen(self, asr: str, speaker: str) -> None:
        self.settings.asr_model, self.settings.speaker_model = asr, speaker
        if not self.jobs.busy:
            self.reload()

    def setup(self, problem: str = "") -> None:
        """Open the first-run guide: what the studio needs, its download, or a folder."""
        s = self.settings
        guide = FirstRunGuide(
            s.model, s.asr_model, s.speaker_model, self._device_for_models(), problem, self.window
        )
        guide.listen_chosen.connect(self._guide_listen_models)
        guide.model_chosen.connect(self._guide_model)
        guide.open()
        self.setup_dialog = guide

    def _device_for_models(self) -> str:
        """The device the guide sizes the speech-recognition model for."""
        if self.settings.device != "auto":
            return self.settings.device
        if self.info is not None:
            return self.info.device
        return "cpu"  # the guide comes before any engine; a GPU machine can choose the larger

    def _guide_listen_models(self, asr: str, speaker: str) -> None:
        if asr:
            self.settings.asr_model = asr
        if speaker:
            self.settings.speaker_model = speaker

    def _guide_model(self, model: str) -> None:
        self._from_guide = True
        self.load(model)

    def _progressed(self, text: str) -> None:
        self.status.say(text[:1].upper() + text[1:] + "…")

    def _loaded(self, info: EngineInfo) -> None:
        self.info = info
        self.status.ended(f"Model ready (loaded in {info.load_seconds:.1f} s).", complete=False)
        self.labels.device.setText(f"device: {info.device_name}")
        self.labels.model.setText(f"model: {info.model_dir.name} ({info.engine}, {info.dtype})")
        self.labels.checks.setText(info.checks)
        self.labels.checks.setToolTip("\n".join(info.notes) or "Every take is checked")
        self.busy_changed()
        from_guide, self._from_guide = self._from_guide, False
        self.ready.emit(info, from_guide)

    def _cancelled(self) -> None:
        self.info = None
        self.labels.model.setText("model: not loaded (cancelled)")
        self.status.say("Loading cancelled: choose a model in the Model menu.")
        self.busy_changed()

    def _failed(self, error: object) -> None:
        self.labels.model.setText("model: failed to load")
