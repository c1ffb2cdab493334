"""How long the process has been running: for the cold-start figure (Linux /proc; else None)."""

from __future__ import annotations

import os


def seconds_since_process_start() -> float | None:
    """Seconds since the kernel started this process, or None where /proc is unavailable."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime", encoding="ascii") as uptime:
            now = float(uptime.read().split()[0])
    except (OSError, IndexError, ValueError):
        return None
    started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22 of stat: starttime
    return now - started
