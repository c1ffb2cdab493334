"""The API's server: uvicorn configured with the limits a local server needs, on a thread of its
own for the window (and the tests); ``csm-studio-cli serve`` runs the same configuration on its
main thread.

uvicorn answers a request only once its headers are complete, and never times out a request that
is still arriving: a client that opens connections and sends its headers a byte at a time would
hold them for ever. :class:`GuardedProtocol` (uvicorn's h11 protocol, subclassed) closes a
connection whose headers are not complete within ``header_seconds`` and refuses connections over
``max_connections``; the body's size and time are the :class:`~desktop_app.api.doors.Guard`'s.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from desktop_app.errors import UserError

if TYPE_CHECKING:
    import uvicorn

    from desktop_app.api.app import ServeOptions

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 16_384


class GuardedProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for a request's headers and a connection cap
    (the class attributes are set by :func:`protocol_for`)."""

    header_seconds = 10.0
    max_connections = 32
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            log.warning("refused a connection: %d are open already", self.max_connections)
            transport.close()
            return
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._arm()  # a request's headers have begun and are not complete yet
        else:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_seconds, self._headers_late)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            log.info("closed a connection whose request headers took over %gs", self.header_seconds)
            self.transport.close()


def protocol_for(options: ServeOptions) -> type[GuardedProtocol]:
    """:class:`GuardedProtocol` with ``options``' header deadline and connection cap."""
    return type(
        "ServerProtocol",
        (GuardedProtocol,),
        {"header_seconds": options.header_seconds, "max_connections": options.max_connections},
    )


def server_config(app: Any, options: ServeOptions, **extra: Any) -> uvicorn.Config:
    """uvicorn's configuration of the API at ``options``' address, with its limits."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        http=protocol_for(options),
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        timeout_keep_alive=5,
        log_config=None,
        access_log=True,
        server_header=False,
        **extra,
    )


class ServerError(UserError):
    """The server could not start (the port is taken, the address is not this machine's...)."""


class BackgroundServer:
    """uvicorn serving as ``config`` says (see :func:`server_config`) in a daemon thread;
    :meth:`stop` ends it."""

    def __init__(self, config: uvicorn.Config) -> None:
        import uvicorn

        self.server = uvicorn.Server(config)
        self.host = config.host
        self.port = config.port
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
