"""Put on PYTHONPATH of a child process to forbid network sockets in it.

Any connect() of an internet socket raises; local (AF_UNIX) sockets, which PulseAudio and Qt use,
still work. Used by tests that prove the app does not touch the network. With
NONET_ALLOW_LOOPBACK=1 this machine's loopback stays open (a test's fake hub listens there).
"""

import os
import socket

_real_getaddrinfo = socket.getaddrinfo
_LOOPBACK = ("127.0.0.1", "::1", "localhost")
_ALLOW_LOOPBACK = os.environ.get("NONET_ALLOW_LOOPBACK") == "1"
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


class NetworkBlockedError(OSError):
    """A test forbade network access and something tried anyway."""


def _guard(sock: socket.socket, address: object) -> None:
    host = address[0] if isinstance(address, tuple) else ""
    if _ALLOW_LOOPBACK and host in _LOOPBACK:
        return
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        raise NetworkBlockedError(f"network access blocked by the test: connect to {address!r}")


def _connect(self: socket.socket, address: object) -> None:
    _guard(self, address)
    return _real_connect(self, address)


def _connect_ex(self: socket.socket, address: object) -> int:
    _guard(self, address)
    return _real_connect_ex(self, address)


def _no_lookup(*args: object, **kwargs: object) -> object:
    if _ALLOW_LOOPBACK and args and args[0] in _LOOPBACK:
        return _real_getaddrinfo(*args, **kwargs)  # type: ignore[arg-type]
    raise NetworkBlockedError(f"network access blocked by the test: getaddrinfo{args!r}")


socket.socket.connect = _connect  # type: ignore[method-assign]
socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign]
socket.getaddrinfo = _no_lookup  # type: ignore[assignment]
