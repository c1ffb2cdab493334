"""The TCP sockets of processes, read from /proc (no psutil): who listens where."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path


def inet_sockets(pid: int) -> list[tuple[str, int, str, int, str]]:
    """The TCP sockets a process holds: (local address, port, remote address, port, state),
    addresses as /proc writes them (hex), state "0A" for LISTEN."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            parts = row.split()
            if parts[9] in inodes:
                (local, lport), (remote, rport) = (p.split(":") for p in parts[1:3])
                found.append((local, int(lport, 16), remote, int(rport, 16), parts[3]))
    return found


def address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address as /proc/net/tcp{,6} writes it (32-bit words in the host's byte order)."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    if len(words) == 4:
        return ipaddress.IPv4Address(words)
    six = ipaddress.IPv6Address(words)
    return six.ipv4_mapped or six


def descendants(pid: int) -> set[int]:
    """``pid`` and every process below it (from /proc's parent links)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found = {pid}
    grew = True
    while grew:
        more = {child for child, parent in parents.items() if parent in found} - found
        found |= more
        grew = bool(more)
    return found
