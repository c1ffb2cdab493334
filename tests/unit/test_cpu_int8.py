"""int8 weights for the fast engine on the CPU (measured in benchmarks/cpu_int8.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from desktop_app.inference import cpu_int8
from desktop_app.inference.fast_engine import FastEngine
from tests.conftest import run_cli
from tests.support.signals import voiced
from tests.unit.test_cli import REF_TEXT
from tests.unit.test_fast_engine import greedy, three_rows


def test_an_int8_product_is_close_to_the_float_one() -> None:
    torch.manual_seed(0)
    weight, bias = torch.randn(96, 64), torch.randn(96)
    x = torch.randn(3, 5, 64)
    exact = torch.nn.functional.linear(x, weight, bias)
    got = cpu_int8.int8_linear(weight, bias)(x)
    assert got.shape == exact.shape and got.dtype == torch.float32
    assert float((got - exact).norm() / exact.norm()) < 0.03
    assert not torch.equal(got, exact)  # it really is quantized


def test_a_quantized_engine_makes_takes_and_batches(tiny_model_dir: Path) -> None:
    """Every product of the frame loop goes through int8; the codes move (random weights have
    tiny margins), the take is still whole and reproducible, and so is a batch."""
    from desktop_app.inference.batch import generate_batch

    engine = FastEngine(tiny_model_dir, "cpu")
    plain = engine.generate(greedy(seconds=1.2))
    engine.use_int8()
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    decoder = engine.decoder
    layer = decoder.depth.layers[0]
    parts = [decoder.lm_head, decoder.depth_projector, *decoder.codebook_head]
    parts += [layer.qkv, layer.gate_up, layer.o_proj, layer.down_proj]
    assert all(isinstance(part, DynamicLinear) for part in parts)
    first = engine.generate(greedy(seconds=1.2))
    again = engine.generate(greedy(seconds=1.2))
    assert first.frames == plain.frames and first.audio.size == plain.audio.size
    np.testing.assert_array_equal(first.codes, again.codes)
    assert not np.array_equal(first.codes, plain.codes)  # the int8 products are in use
    # a batch quantizes its activations together (one scale per product across the rows), so
    # its rows are not bit-identical to the takes made alone; a batch is still reproducible
    requests = three_rows()
    rows = generate_batch(engine, requests)
    assert [r.frames for r in rows] == [10, 30, 20]
    for row, again_row in zip(rows, generate_batch(engine, requests), strict=True):
        np.testing.assert_array_equal(row.codes, again_row.codes)


def test_int8_is_refused_off_the_cpu_float32_engine(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = FastEngine(tiny_model_dir, "cpu")
    monkeypatch.setattr(engine.decoder, "dtype", torch.bfloat16)
    with pytest.raises(ValueError, match="for the CPU engine in float32"):
        engine.use_int8()


def test_clone_quantize_int8_on_the_cpu(tiny_model_dir: Path, tmp_path: Path) -> None:
    ref = tmp_path / "ref.wav"
    sf.write(ref, voiced(3.0, 24_000), 24_000)
    report = tmp_path / "report.json"
    args = ["clone", "--model", str(tiny_model_dir), "--ref", str(ref), "--ref-text", REF_TEXT]
    args += ["--text", "Say this.", "--max-seconds", "0.8", "--seed", "1", "--device", "cpu"]
    args += ["--quantize", "int8"]
    proc = run_cli(*args, "--out", str(tmp_path / "t.wav"), "--report-json", str(report))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(report.read_text())["dtype"] == "int8"
    refused = run_cli(*args, "--out", str(tmp_path / "u.wav"), "--engine", "transformers")
    assert refused.returncode == 2
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --quantize int8 needs the fast engine")
