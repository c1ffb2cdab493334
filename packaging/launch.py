"""Entry point of the frozen bundle (both the windowed app and the console CLI).

Handles what only goes wrong when frozen: a windowed app has no stdout/stderr (printing would
raise), and multiprocessing needs freeze_support() before anything else runs.
"""

from __future__ import annotations

import multiprocessing
import os
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:  # windowed build: no console attached
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115
    from desktop_app.cli import main

    sys.exit(main())
