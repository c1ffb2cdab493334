"""The first-run guide: what the studio needs, the download from a fake hub on the loopback (with
progress, cancel and resume, in a child process whose sockets reach nothing else), and on to a
window ready to record."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from desktop_app.config import Settings
from desktop_app.inference.fetch import partial_bytes
from desktop_app.inference.model_store import ASR, CSM, SPEAKER
from desktop_app.ui.app import build_window
from desktop_app.ui.first_run import (
    FirstRunGuide,
    TransferRate,
    duration_text,
    size_text,
    transfer_text,
)
from tests.conftest import NONET, REPO
from tests.support.fake_hub import GOOD_TOKEN


@pytest.fixture
def first_window(qtbot: QtBot, fake_hub: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """A window started with no model at all (as on a new computer): the guide is open, set to
    download into tmp_path; its children may reach the fake hub only."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(NONET), str(REPO)]))
    win = build_window(Settings())
    qtbot.addWidget(win)
    win.show()
    win.loader.load(win.settings.model)
    guide = win.loader.setup_dialog
    assert isinstance(guide, FirstRunGuide) and guide.isVisible()
    guide.target.setText(str(tmp_path / "models"))
    guide.refresh()
    return win


def test_the_guide_says_what_is_needed_with_sizes_and_the_licence(first_window: Any) -> None:
    guide = first_window.loader.setup_dialog
    sizes = {r.need.kind: r.size.text() for r in guide.rows}
    assert sizes == {CSM: "about 6.2 GB", ASR: "about 970 MB", SPEAKER: "about 405 MB"}
    assert all(r.status.text() == "not on this computer" for r in guide.rows)
    assert all(r.tick.isChecked() for r in guide.rows)
    texts = " ".join(label.text() for label in guide.findChildren(type(guide.status)))
    assert "https://huggingface.co/sesame/csm-1b" in texts
    assert "https://huggingface.co/settings/tokens" in texts
    assert guide.status.text() == ""  # no second copy of what the lines already say
    assert guide.download_button.text() == "Download" and guide.download_button.isEnabled()
    assert not guide.cancel_button.isEnabled()


def test_download_cancel_resume_then_a_window_ready_to_record(
    qtbot: QtBot, first_window: Any, fake_hub: Any, pulse: None, tmp_path: Path
) -> None:
    win, guide = first_window, first_window.loader.setup_dialog
    guide.token.setText(GOOD_TOKEN)
    fake_hub.bytes_per_second = 1.5e6
    guide.download_button.click()
    qtbot.waitUntil(
        lambda: "MB/s" in guide.status.text() and "left" in guide.status.text(), timeout=30_000
    )
    assert guide.status.text().startswith("CSM-1B (1 of 3): ")
    assert guide.bar.value() > 0 and not guide.download_button.isEnabled()

    guide.cancel_button.click()
    assert guide.process is None
    csm_folder = tmp_path / "models" / "sesame--csm-1b"
    reached = partial_bytes(csm_folder)
    assert reached > 0
    assert guide.status.text().startswith("Cancelled with ")
    assert guide.row(CSM).status.text().startswith("partly downloaded")
    assert guide.download_button.text() == "Resume download"

    fake_hub.bytes_per_second = 6e6
    with qtbot.waitSignal(win.model_ready, timeout=90_000):
        guide.download_button.click()
    assert ("model.safetensors", reached) in fake_hub.ranges  # the rest only
    assert not guide.isVisible()
    assert win.settings.model == str(csm_folder)
    assert win.settings.asr_model == str(tmp_path / "models" / "openai--whisper-small")
    assert win.settings.speaker_model == str(tmp_path / "models" / "microsoft--wavlm-base-plus-sv")
    assert win.engine_info is not None and win.engine_info.model_dir == csm_folder
    assert win.engine_info.notes == ()  # the listen-back models loaded beside CSM
    assert win.focusWidget() is win.voice.record_button and win.voice.record_button.isEnabled()
    assert win.statusBar().currentMessage().startswith("Ready: record")


def test_a_refused_token_is_said_in_the_guide(qtbot: QtBot, first_window: Any) -> None:
    guide = first_window.loader.setup_dialog
    guide.token.setText("hf_not_this_one")
    guide.download_button.click()
    qtbot.waitUntil(lambda: guide.process is None, timeout=30_000)
    assert guide.status.text().startswith("CSM-1B: The hub refused the access token")
    assert guide.isVisible() and guide.download_button.isEnabled()


def test_closing_the_guide_stops_its_download(
    qtbot: QtBot, first_window: Any, fake_hub: Any
) -> None:
    guide = first_window.loader.setup_dialog
    guide.token.setText(GOOD_TOKEN)
    fake_hub.bytes_per_second = 0.5e6
    guide.download_button.click()
    qtbot.waitUntil(lambda: guide.bar.value() > 0, timeout=30_000)
    pid = guide.process.processId()
    guide.close_button.click()
    assert not guide.isVisible() and guide.process is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_speed_and_time_left_follow_the_last_seconds() -> None:
    now = [0.0]
    rate = TransferRate(window=5.0, clock=lambda: now[0])
    assert rate.speed() is None and rate.seconds_left(100) is None
    for second in range(11):  # 1 MB/s for 10 s...
        now[0] = float(second)
        rate.add(second * 1_000_000)
    assert rate.speed() == pytest.approx(1e6)
    for second in range(11, 17):  # ...then 4 MB/s: the window forgets the slow part
        now[0] = float(second)
        rate.add(10_000_000 + (second - 10) * 4_000_000)
    assert rate.speed() == pytest.approx(4e6)
    assert rate.seconds_left(50_000_000) == pytest.approx(4.0)
    assert (
        transfer_text(34_000_000, 50_000_000, rate)
        == "34.0 MB of 50.0 MB · 4.0 MB/s · about 4 s left"
    )
    assert [size_text(n) for n in (512, 950_000, 6.2e9)] == ["512 B", "950 kB", "6.2 GB"]
    assert [duration_text(s) for s in (0.2, 59, 150, 3900)] == ["1 s", "59 s", "2 min", "1 h 5 min"]


def test_a_named_model_that_fails_is_said_once_without_commands(
    qtbot: QtBot, tmp_path: Path
) -> None:
    win = build_window(Settings(model=str(tmp_path / "gone")))
    qtbot.addWidget(win)
    win.show()
    win.loader.load(win.settings.model)
    text = win.loader.setup_dialog.status.text()
    assert text == (
        f"The model in the settings cannot be used (CSM model folder not found: {tmp_path / 'gone'}"
        "): download it below or choose a folder that holds it."
    )
