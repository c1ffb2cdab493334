"""Settings: a versioned dataclass kept as JSON in the config folder.

A file written by a newer version is read for the fields this version knows and never
overwritten; a damaged file is set aside (renamed) and defaults are used.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desktop_app import defaults, paths
from desktop_app.files import write_text_atomic

log = logging.getLogger(__name__)

SETTINGS_VERSION = 2


@dataclass
class Settings:
    """What the app remembers between runs."""

    version: int = SETTINGS_VERSION
    model: str = defaults.MODEL_ID
    engine: str = defaults.ENGINE
    device: str = defaults.DEVICE
    quantize: str = "auto"  # one of defaults.WEIGHTS: "auto" is int8 on the CPU
    asr_model: str = ""  # speech recognition: a folder or hub id; "": the device's default
    speaker_model: str = ""  # speaker verification; "": the default
    check_takes: bool = True  # listen back to every take (when the models are there)
    candidates: int = 1  # best of N
    coherent_long_text: bool = False  # long texts chunk after chunk (else as one batch)
    input_device: str = ""
    output_device: str = ""
    temperature: float = defaults.TEMPERATURE
    top_k: int = defaults.TOP_K
    top_p: float = defaults.TOP_P
    seed: int = 42
    seed_locked: bool = False
    max_seconds: float = defaults.MAX_SECONDS
    denoise: bool = False
    play_while_generating: bool = True
    color_scheme: str = "system"  # "system" (the desktop's), "light" or "dark"
    local_api: bool = False  # serve the local API from the window (off unless turned on)
    local_api_port: int = 8000
    last_folder: str = ""
    say_text: str = ""  # what the Say form held when the window closed
    window_geometry: str = ""
    window_state: str = ""
    read_only: bool = field(default=False, metadata={"persist": False})


def settings_file() -> Path:
    """Where the settings live."""
    return paths.config_dir() / "settings.json"


def load_settings(path: Path | None = None) -> Settings:
    """Read the settings, falling back to defaults for anything missing or unreadable."""
    target = path or settings_file()
    try:
        raw = json.loads(target.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
    except FileNotFoundError:
        return Settings()
    except (OSError, ValueError) as exc:
        aside = target.with_suffix(".damaged.json")
        log.warning("settings file %s is damaged (%s); set aside as %s", target, exc, aside)
        target.replace(aside)
        return Settings()
    known = {f.name: f for f in dataclasses.fields(Settings) if f.metadata.get("persist", True)}
    values: dict[str, Any] = {}
    default = Settings()
    for key, value in _migrate(raw).items():
        if key in known:
            kept = _as_type_of(getattr(default, key), value)
            if kept is not _REFUSED:
                values[key] = kept
            else:
                log.warning(
                    "settings: %s = %r is not a %s; the default is used",
                    key,
                    value,
                    type(getattr(default, key)).__name__,
                )
    settings = Settings(**values)
    if int(raw.get("version", 0)) > SETTINGS_VERSION:
        log.warning("settings file %s is from a newer version; it will not be overwritten", target)
        settings.read_only = True
    settings.version = SETTINGS_VERSION
    return settings


_REFUSED = object()


def _as_type_of(default: object, value: object) -> object:
    """``value`` as the type of ``default``, or ``_REFUSED``.

    JSON writes 1.0 as 1, so an int is taken where a float is expected; a bool is never taken as
    a number (in Python ``True`` is an ``int``), nor a number as a bool.
    """
    if isinstance(default, bool) or isinstance(value, bool):
        return value if isinstance(default, bool) and isinstance(value, bool) else _REFUSED
    if isinstance(default, float) and isinstance(value, int):
        return float(value)
    return value if isinstance(value, type(default)) else _REFUSED


def _migrate(raw: dict[str, Any]) -> dict[str, Any]:
    """Bring an older settings dict forward, one version at a time."""
    data = dict(raw)
    if int(data.get("version", 0)) < 1:  # version 0 (unversioned) called the max length "max_len"
        if "max_len" in data:
            data["max_seconds"] = data.pop("max_len")
        data["version"] = 1
    if int(data.get("version", 0)) < 2:  # version 1: "" was float32, then the only default;
        # the CPU's default became int8 ("auto"), and float32 is asked for as "none"
        if data.get("quantize", "") == "":
            data["quantize"] = "auto"
        data["version"] = 2
    if data.get("quantize") not in (None, *defaults.WEIGHTS):
        data["quantize"] = "auto"
    return data


def save_settings(settings: Settings, path: Path | None = None) -> None:
    """Write the settings atomically, unless they came from a newer version's file."""
    if settings.read_only:
        return
    target = path or settings_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    data = {
        f.name: getattr(settings, f.name)
        for f in dataclasses.fields(Settings)
        if f.metadata.get("persist", True)
    }
    write_text_atomic(target, json.dumps(data, indent=2) + "\n")
