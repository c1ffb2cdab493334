"""The level meter moves as soon as an input is chosen, before and between recordings, from the
real (virtual) microphone, with a clip light that holds."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtGui import QUndoStack
from pytestqt.qtbot import QtBot

from desktop_app.audio.player import Player
from desktop_app.ui.voice_panel import VoicePanel
from tests.support.signals import voiced

pytestmark = pytest.mark.usefixtures("pulse")


def into_the_microphone(path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["paplay", "--device=vsink", str(path)])


def test_the_meter_shows_the_input_before_and_between_recordings(
    qtbot: QtBot, tmp_path: Path
) -> None:
    panel = VoicePanel(QUndoStack(), Player())
    qtbot.addWidget(panel)
    panel.show()
    panel.fill_devices(["pulse"], "pulse")
    assert panel.monitor is not None and panel.monitor.active  # listening, nothing recorded
    speech = tmp_path / "speech.wav"
    sf.write(speech, np.tile(voiced(1.0, 48_000), 4), 48_000)
    playing = into_the_microphone(speech)
    qtbot.waitUntil(lambda: panel.meter.level_db > -40, timeout=5_000)
    assert not panel.meter.clipping
    playing.wait(timeout=30)
    # too loud: the clip light comes on and holds a moment after the peak (the virtual
    # microphone is 6 dB quieter than full scale, so the peak is given to the meter here)
    panel.meter.set_peak(1.0)
    panel.meter.set_peak(0.05)
    assert panel.meter.clipping
    # a recording takes over the meter, and afterwards monitoring goes on
    panel.record_button.setChecked(True)
    assert panel.recorder is not None and panel.monitor is None
    qtbot.wait(300)
    panel.record_button.setChecked(False)
    assert panel.monitor is not None and panel.monitor.active
    playing = into_the_microphone(speech)
    qtbot.waitUntil(lambda: panel.meter.level_db > -40, timeout=5_000)
    playing.wait(timeout=30)
    panel.shutdown()
    assert panel.monitor is None
