"""The API's server on a thread of its own: the window starts it beside its engine (and the
tests beside a loaded one). ``csm-studio-cli serve`` runs uvicorn on its main thread instead."""

from __future__ import annotations

import threading
import time
from typing import Any

from desktop_app.errors import UserError


class ServerError(UserError):
    """The server could not start (the port is taken, the address is not this machine's...)."""


class BackgroundServer:
    """uvicorn serving ``app`` on ``host:port`` in a daemon thread; :meth:`stop` ends it."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        import uvicorn

        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,
            access_log=True,
            timeout_graceful_shutdown=3,  # a stream still running does not hold the window
        )
        self.server = uvicorn.Server(config)
        self.host = host
        self.port = port
        self._thread = threading.Thread(target=self._run, name="api-server", daemon=True)
        self._error: BaseException | None = None

    def _run(self) -> None:
        try:
            self.server.run()
        except BaseException as exc:  # SystemExit from uvicorn when it cannot bind
            self._error = exc

    @property
    def address(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        """Start and wait until it listens.

        Raises:
            ServerError: it did not start (the reason is in the log).
        """
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ServerError(
                    f"the local API could not listen on {self.host}:{self.port} (is the port "
                    "taken by another program?); choose another port"
                )
            time.sleep(0.02)
        if self.port == 0:  # the port the system chose
            servers = self.server.servers
            self.port = int(servers[0].sockets[0].getsockname()[1])

    def stop(self) -> None:
        """Stop listening and wait for the thread (idempotent)."""
        self.server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
