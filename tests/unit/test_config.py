"""Settings: values of the wrong JSON type are coerced where that is safe, refused otherwise."""

from __future__ import annotations

import json
from pathlib import Path

from desktop_app import defaults
from desktop_app.config import Settings, load_settings, save_settings


def written(tmp_path: Path, values: dict[str, object]) -> Path:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"version": 1, **values}), encoding="utf-8")
    return path


def test_an_int_is_taken_where_a_float_is_expected(tmp_path: Path) -> None:
    settings = load_settings(written(tmp_path, {"temperature": 1, "max_seconds": 12}))
    assert settings.temperature == 1.0 and isinstance(settings.temperature, float)
    assert settings.max_seconds == 12.0


def test_bools_are_not_numbers_and_numbers_are_not_bools(tmp_path: Path) -> None:
    settings = load_settings(
        written(tmp_path, {"top_k": True, "temperature": False, "seed_locked": 1, "seed": 7})
    )
    assert settings.top_k == defaults.TOP_K and settings.temperature == defaults.TEMPERATURE
    assert settings.seed_locked is False and settings.seed == 7


def test_settings_round_trip_and_defaults_come_from_one_place(tmp_path: Path) -> None:
    fresh = Settings()
    assert (fresh.model, fresh.engine, fresh.top_k) == (
        defaults.MODEL_ID,
        defaults.ENGINE,
        defaults.TOP_K,
    )
    fresh.temperature, fresh.top_k = 0.7, 20
    save_settings(fresh, tmp_path / "s.json")
    again = load_settings(tmp_path / "s.json")
    assert (again.temperature, again.top_k) == (0.7, 20)
