"""The local API inside the window: the same server as ``csm-studio-cli serve``, on the engine
the window has loaded. Its jobs wait in the window's job queue, in order with the window's
own takes (one model in memory); a take made through it appears in the History as it is kept.
Off by default; it listens on this machine only (127.0.0.1) and asks for this install's key
(:mod:`desktop_app.api.keys`), like ``serve``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QLabel, QMainWindow

from desktop_app.api import keys
from desktop_app.api.app import ServeOptions, build_app
from desktop_app.api.server import BackgroundServer, server_config
from desktop_app.api.service import SpeechService
from desktop_app.config import Settings
from desktop_app.errors import UserError
from desktop_app.session.jobs import JobQueue
from desktop_app.session.models import LoadedModels
from desktop_app.ui.dialogs import ErrorFunnel
from desktop_app.ui.workers import EngineInfo, InferenceWorker

log = logging.getLogger(__name__)


class LocalAPI(QObject):
    """Starts and stops the window's server; ``take_kept`` when an API take is in the library."""

    take_kept = Signal(object)  # TakeRecord (emitted from the worker's thread; queued)

    def __init__(
        self,
        queue: JobQueue,
        worker: InferenceWorker,
        engine_info: Callable[[], EngineInfo | None],
        library_folder: Path | None,
    ) -> None:
        super().__init__()
        self.queue = queue
        self.worker = worker
        self.engine_info = engine_info  # the window's: None while loading
        self.library_folder = library_folder
        self.server: BackgroundServer | None = None
        self.service: SpeechService | None = None

    def models(self) -> LoadedModels | None:
        """What the window's worker has loaded now (None while loading or without a model)."""
        if self.engine_info() is None:  # still loading (the worker's models are the last ones)
            return None
        return self.worker.models

    @property
    def address(self) -> str:
        return self.server.address if self.server is not None else ""

    def start(self, port: int, host: str = "127.0.0.1") -> str:
        """Listen on ``host:port`` (0: any free port); the address.

        Raises:
            ServerError: the port is taken.
            RequestError: the key cannot be kept in the config folder.
        """
        self.stop()
        service = self.service = SpeechService(
            self.queue, self.models, self.library_folder, on_kept=self.take_kept.emit
        )
        options = ServeOptions(
            host=host,
            port=port,
            api_key=keys.install_key(),
            key_source=f"the file {keys.key_file()}",
        )
        # a stream still running does not hold the window when it closes
        config = server_config(build_app(service, options), options, timeout_graceful_shutdown=3)
        server = BackgroundServer(config)
        server.start()
        self.server = server
        log.info("the local API listens on %s", server.address)
        return server.address

    def stop(self) -> None:
        """Stop listening (idempotent); requests still waiting are cancelled."""
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.service is not None:
            self.service.cancel_all()
            self.service = None


class APISwitch:
    """Model → Serve the local API: starts or stops the window's server, remembers the choice
    and says so (the status bar's label and a message; a refusal in the error dialog)."""

    def __init__(
        self,
        api: LocalAPI,
        settings: Settings,
        label: QLabel,
        errors: ErrorFunnel,
        window: QMainWindow,
    ) -> None:
        self.api, self.settings, self.label, self.errors, self.window = (
            api,
            settings,
            label,
            errors,
            window,
        )
        self.action: QAction | None = None  # the menu entry, checked while the server runs

    def serve(self, on: bool) -> None:
        """Start (``on``) or stop the server on the loaded engine."""
        self.settings.local_api = on
        if not on:
            self.api.stop()
            self.label.setText("")
            self._checked(False)
            return
        try:
            address = self.api.start(self.settings.local_api_port)
        except UserError as exc:  # the port is taken, the key cannot be kept
            self.settings.local_api = False
            self._checked(False)
            self.errors.show(exc)
            return
        self._checked(True)
        self.label.setText(f"API: {address}")
        self.label.setToolTip(f"Clients send the key kept in {keys.key_file()}")
        self.window.statusBar().showMessage(
            f"The local API listens on {address}/v1/audio/speech; its key is in {keys.key_file()}",
            8000,
        )

    def _checked(self, on: bool) -> None:
        if self.action is not None:
            self.action.setChecked(on)
