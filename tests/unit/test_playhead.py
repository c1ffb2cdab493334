"""The player's heard position between device callbacks, on a clock the test controls.

The real device path is tested in tests/audio (PulseAudio null sink); here the callback is
called by hand, as a device that pulls one large block, so the interpolation can be checked
exactly.
"""

from __future__ import annotations

import types

import numpy as np
import pytest

from desktop_app.audio import player as player_module
from desktop_app.audio.player import Player


def test_heard_position_interpolates_within_a_large_block(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(player_module, "time", types.SimpleNamespace(perf_counter=lambda: now[0]))
    player = Player()
    player._audio = np.zeros(48_000, dtype=np.float32)
    player._end, player.rate = 48_000, 24_000
    player._stream = object()  # stands in for an open device stream
    player._finished.clear()
    player._latency = 2_400  # 100 ms of device latency
    block = np.zeros((12_000, 1), dtype=np.float32)  # the device pulls 0.5 s at once

    player._callback(block, 12_000, None, None)
    assert player.position == 12_000  # handed to the device
    assert player.heard_position == 0  # heard: not yet (the latency), never below the start
    now[0] += 0.3
    assert player.heard_position == 7_200 - 2_400  # 0.3 s on, less the latency
    now[0] += 0.5
    assert player.heard_position == 12_000  # never ahead of what the device was given
    player._callback(block, 12_000, None, None)  # the next block, on time
    assert player.heard_position == 12_000  # the new block starts later: it does not go back
    now[0] += 0.2
    assert player.heard_position == 12_000 + 4_800 - 2_400
