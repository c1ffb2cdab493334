"""The self-test a user runs (doctor --self-test; Help -> Test this computer), and the device
choice of --device auto."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from desktop_app.errors import DeviceError
from desktop_app.inference import compute_device
from desktop_app.inference.fast_engine import FastEngine
from desktop_app.inference.self_test import (
    SELF_TEST_FRAMES,
    identical_leading_frames,
    run_self_test,
)
from tests.conftest import run_cli


def test_doctor_self_test_prints_a_passing_table_as_json(tiny_model_dir: Path) -> None:
    proc = run_cli(
        "doctor", "--self-test", "--model", str(tiny_model_dir), "--device", "cpu", "--json"
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["codes_equal"] is True
    assert report["identical_frames"] == report["frames"] == SELF_TEST_FRAMES
    assert report["fast"]["frames"] == report["reference"]["frames"] == SELF_TEST_FRAMES
    assert report["fast"]["ms_per_frame"] > 0 and report["reference"]["ms_per_frame"] > 0
    assert report["speedup"] == pytest.approx(
        report["reference"]["ms_per_frame"] / report["fast"]["ms_per_frame"]
    )
    assert report["device"] == "cpu" and report["cuda_graph"].startswith("not used")
    assert report["verdict"].startswith("PASS")


def test_a_fast_engine_that_parts_from_the_reference_fails_the_self_test(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = FastEngine(tiny_model_dir, "cpu")
    real = fast.generate

    def drifting(request: Any, *args: Any, **kwargs: Any) -> Any:
        result = real(request, *args, **kwargs)
        codes = result.codes.copy()
        codes[7:, 3] = (codes[7:, 3] + 1) % 5  # from frame 7 on, one codebook differs
        return dataclasses.replace(result, codes=codes)

    monkeypatch.setattr(fast, "generate", drifting)
    report = run_self_test(fast, "tiny", frames=12)
    assert not report.codes_equal and report.identical_frames == 7
    assert report.verdict.startswith("FAIL: the codes part after frame 7 of 12")
    assert "7/12 frames identical" in report.table()


def test_identical_leading_frames() -> None:
    a = np.arange(12).reshape(4, 3)
    b = a.copy()
    b[2, 1] = -1
    assert identical_leading_frames(a, a) == 4
    assert identical_leading_frames(a, b) == 2
    assert identical_leading_frames(a, a[:3]) == 3


@pytest.mark.parametrize(
    ("cuda", "mps", "choice", "want"),
    [
        (True, True, "auto", "cuda"),
        (False, True, "auto", "mps"),
        (False, False, "auto", "cpu"),
        (True, True, "cpu", "cpu"),
        (True, True, "mps", "mps"),
    ],
)
def test_device_auto_prefers_cuda_then_mps_then_the_cpu(
    monkeypatch: pytest.MonkeyPatch, cuda: bool, mps: bool, choice: str, want: str
) -> None:
    """Only the choice is tested here: neither CUDA nor MPS exists on this machine."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(compute_device, "mps_available", lambda: mps)
    device = compute_device.pick_device(choice)
    assert device.type == want
    assert compute_device.pick_dtype(device) == (
        torch.bfloat16 if want == "cuda" else torch.float32
    )


def test_a_gpu_asked_for_where_there_is_none_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(compute_device, "mps_available", lambda: False)
    with pytest.raises(DeviceError, match="MPS was asked for but torch sees no Apple GPU"):
        compute_device.pick_device("mps")
    with pytest.raises(DeviceError, match="CUDA was asked for"):
        compute_device.pick_device("cuda")
