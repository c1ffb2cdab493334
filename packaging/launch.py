"""Entry point of the frozen bundle (both the windowed app and the console CLI).

Handles what only goes wrong when frozen: a windowed app has no stdout/stderr (printing would
raise), multiprocessing needs freeze_support() before anything else runs, and torch ships as
byte-code only, so its TorchScript overload decorators warn once per function (some 40 lines on
every start) that they cannot read the source they never need here.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import warnings

if __name__ == "__main__":
    multiprocessing.freeze_support()
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:  # windowed build: no console attached
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115
    warnings.filterwarnings(
        "ignore", message="Unable to retrieve source for @torch.jit._overload", category=UserWarning
    )
    from desktop_app.cli import main

    sys.exit(main())
