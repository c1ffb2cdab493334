"""Files shipped with the app (reading script, icon), found from source and from a frozen bundle."""

from __future__ import annotations

import sys
from pathlib import Path


def resources_dir() -> Path:
    """The resources folder: beside the package in a checkout, inside the bundle when frozen."""
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def reading_script() -> str:
    """The sentences offered for reading aloud while recording."""
    try:
        return (resources_dir() / "reading_script.txt").read_text(encoding="utf-8")
    except OSError:
        return "Read a few sentences aloud in your natural voice (10-30 s of clean speech)."
