"""The fast engine on the tiny checkpoint, shared by the hardening tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def fast_engine(tiny_model_dir: Path) -> Any:
    from desktop_app.inference import load_engine

    return load_engine("fast", tiny_model_dir, "cpu")
