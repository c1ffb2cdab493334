"""8- and 4-bit weights on the CPU: the products, the cache, the engine that loads them, the
default (measured in benchmarks/cpu_weights.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from desktop_app import config, defaults
from desktop_app.errors import GenerationCancelled, RequestError
from desktop_app.inference import load_engine, quantized_model, weights_for
from desktop_app.inference.cpu_weights import PackedLinear, pack
from desktop_app.inference.fast_engine import FastEngine
from tests.conftest import run_cli
from tests.support.signals import voiced
from tests.unit.test_cli import REF_TEXT
from tests.unit.test_fast_engine import greedy, three_rows


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A weight cache of this test's own (the session's shared one is left alone)."""
    folder = tmp_path / "weight-cache"
    monkeypatch.setenv("CSM_STUDIO_CACHE", str(folder))
    return folder / "quantized"


@pytest.mark.parametrize(("fmt", "tolerance"), [("int8", 0.02), ("int4", 0.2)])
def test_a_packed_product_is_close_to_the_float_one(fmt: str, tolerance: float) -> None:
    torch.manual_seed(0)
    weight, bias = torch.randn(96, 256), torch.randn(96)
    x = torch.randn(3, 5, 256)
    exact = torch.nn.functional.linear(x, weight, bias)
    packed = pack(weight, bias, fmt)
    got = PackedLinear(packed)(x)
    assert got.shape == exact.shape and got.dtype == torch.float32
    assert float((got - exact).norm() / exact.norm()) < tolerance
    assert not torch.equal(got, exact)  # it really is quantized
    # the codes stand for the weight within half a step of each block's scale
    step = packed.scales.repeat_interleave(packed.block, dim=1)
    assert bool(((packed.dequantized() - weight).abs() <= step / 2 + 1e-6).all())


def test_an_int8_row_of_a_batch_is_the_row_alone() -> None:
    """Activations are quantized per row: a row's result does not depend on its neighbours."""
    torch.manual_seed(1)
    product = PackedLinear(pack(torch.randn(64, 128), None, "int8"))
    x = torch.randn(5, 128) * torch.tensor([[1.0], [30.0], [0.01], [1.0], [4.0]])
    together = product(x)
    for row in range(5):
        assert torch.equal(together[row], product(x[row : row + 1])[0])


def test_the_cache_round_trip_and_no_float_copy(tiny_model_dir: Path, own_cache: Path) -> None:
    said: list[str] = []
    first = FastEngine(tiny_model_dir, "cpu", quantize="int8", on_status=said.append)
    assert any(text.startswith("making int8 weights") for text in said)
    manifest = quantized_model.cache_file(tiny_model_dir, "int8")
    assert manifest.parent == own_cache and manifest.is_file()
    assert not list(tiny_model_dir.glob("*.pt"))  # nothing written beside the model
    said.clear()
    again = FastEngine(tiny_model_dir, "cpu", quantize="int8", on_status=said.append)
    assert not any("making" in text for text in said)  # loaded, not packed again
    # identical weights both times: the same codes from the same cache
    _, weights = quantized_model.load_model(tiny_model_dir, "int8")
    fresh = pack(*_float_product(tiny_model_dir, "backbone.0.gate_up"), "int8")
    assert torch.equal(weights.packed["backbone.0.gate_up"].codes, fresh.codes)
    assert torch.equal(weights.packed["backbone.0.gate_up"].scales, fresh.scales)
    np.testing.assert_array_equal(first.generate(greedy()).codes, again.generate(greedy()).codes)
    # no float copy of a packed weight anywhere the engine holds a tensor
    for engine in (first, again):
        names = engine.packed_parameters
        assert len(names) >= 4 * 7  # at least each layer's seven projections, of both stacks
        assert quantized_model.float_copies(engine.reference.model, names) == []
        decoder = engine.decoder
        for stack in (decoder.backbone, decoder.depth):
            for layer in stack.layers:
                for weight in (layer.qkv_w, layer.o_w, layer.gate_up_w, layer.down_w):
                    assert weight.is_meta
        assert decoder.codebook_heads.is_meta and decoder._lm_head.weight.is_meta
        real = [t for t in engine.reference.model.parameters() if not t.is_meta]
        assert real and all(t.dtype == torch.float32 for t in real)  # embeddings, norms, Mimi
    assert again.dtype == "int8"


def _float_product(model_dir: Path, name: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    from transformers import CsmForConditionalGeneration

    from desktop_app.inference.decoder import Decoder

    model = CsmForConditionalGeneration.from_pretrained(model_dir, local_files_only=True)
    found = {n: (w, b) for n, w, b in Decoder(model.float()).weights()}
    return found[name]


def test_a_damaged_cache_is_made_again(tiny_model_dir: Path, own_cache: Path) -> None:
    FastEngine(tiny_model_dir, "cpu", quantize="int4")
    manifest = quantized_model.cache_file(tiny_model_dir, "int4")
    packed_file = quantized_model.part_file(manifest, "packed")
    data = bytearray(packed_file.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the middle of the codes
    packed_file.write_bytes(bytes(data))
    said: list[str] = []
    engine = FastEngine(tiny_model_dir, "cpu", quantize="int4", on_status=said.append)
    assert any(text.startswith("making int4 weights") for text in said)
    assert packed_file.read_bytes() != bytes(data)
    assert engine.generate(greedy(seconds=0.8)).frames == 10
    # cut short: made again too
    packed_file.write_bytes(packed_file.read_bytes()[:1000])
    said.clear()
    FastEngine(tiny_model_dir, "cpu", quantize="int4", on_status=said.append)
    assert any(text.startswith("making int4 weights") for text in said)


def test_making_the_weights_can_be_cancelled(tiny_model_dir: Path, own_cache: Path) -> None:
    said: list[str] = []
    with pytest.raises(GenerationCancelled):
        FastEngine(
            tiny_model_dir,
            "cpu",
            quantize="int8",
            on_status=said.append,
            should_stop=lambda: any("making" in text for text in said),
        )
    manifest = quantized_model.cache_file(tiny_model_dir, "int8")
    assert not manifest.exists()
    assert not list(own_cache.glob("*.pt")) and not list(own_cache.glob(".*.tmp"))


@pytest.mark.parametrize("fmt", ["int8", "int4"])
def test_a_packed_engine_makes_takes_and_batches(tiny_model_dir: Path, fmt: str) -> None:
    """Every product goes through the packed kernels; takes are whole and reproducible; with
    int8 a row of a batch is the take made alone (activations are quantized per row)."""
    from desktop_app.inference.batch import generate_batch
    from desktop_app.inference.cpu_weights import PackedLinear

    plain = FastEngine(tiny_model_dir, "cpu").generate(greedy(seconds=1.2))
    engine = FastEngine(tiny_model_dir, "cpu", quantize=fmt)
    decoder, layer = engine.decoder, engine.decoder.depth.layers[0]
    parts = [decoder.lm_head, decoder.depth_projector, *decoder.codebook_head]
    parts += [layer.qkv, layer.gate_up, layer.o_proj, layer.down_proj]
    assert all(isinstance(part, PackedLinear) and part.bits == int(fmt[3:]) for part in parts)
    first = engine.generate(greedy(seconds=1.2))
    again = engine.generate(greedy(seconds=1.2))
    assert first.frames == plain.frames and first.audio.size == plain.audio.size
    np.testing.assert_array_equal(first.codes, again.codes)
    assert not np.array_equal(first.codes, plain.codes)  # the packed products are in use
    requests = three_rows()
    rows = generate_batch(engine, requests)
    assert [r.frames for r in rows] == [10, 30, 20]
    if fmt == "int8":
        for row, request in zip(rows, requests, strict=True):
            np.testing.assert_array_equal(row.codes, engine.generate(request).codes)
    assert torch.get_num_threads() >= 1  # the decode's thread setting was given back


def test_the_default_weights_follow_the_device(monkeypatch: pytest.MonkeyPatch) -> None:
    assert weights_for("cpu") == "int8"
    assert weights_for("auto") == ("" if torch.cuda.is_available() else "int8")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert weights_for("auto") == "" and weights_for("cuda") == ""
    assert defaults.quantize_setting("none") == "" and config.Settings().quantize == "auto"


def test_settings_of_version_1_move_to_the_new_default(tmp_path: Path) -> None:
    old = tmp_path / "settings.json"
    old.write_text(json.dumps({"version": 1, "quantize": ""}))
    assert config.load_settings(old).quantize == "auto"
    old.write_text(json.dumps({"version": 1, "quantize": "int8"}))
    assert config.load_settings(old).quantize == "int8"
    old.write_text(json.dumps({"version": 2, "quantize": "int3"}))
    assert config.load_settings(old).quantize == "auto"


def test_packed_weights_are_refused_where_they_cannot_run(tiny_model_dir: Path) -> None:
    with pytest.raises(RequestError, match="needs the fast engine"):
        load_engine("transformers", tiny_model_dir, "cpu", "int8")
    with pytest.raises(RequestError, match="unknown quantization"):
        FastEngine(tiny_model_dir, "cpu", quantize="int3")
    engine = FastEngine(tiny_model_dir, "cpu", quantize="int8")
    with pytest.raises(RequestError, match="--quantize none"):
        engine.reference.generate(greedy())  # the float weights were never loaded


def test_clone_on_the_cpu_defaults_to_int8(
    tiny_model_dir: Path, tmp_path: Path, own_cache: Path
) -> None:
    ref = tmp_path / "ref.wav"
    sf.write(ref, voiced(3.0, 24_000), 24_000)
    args = ["clone", "--model", str(tiny_model_dir), "--ref", str(ref), "--ref-text", REF_TEXT]
    args += ["--text", "Say this.", "--max-seconds", "0.8", "--seed", "1", "--device", "cpu"]
    for choice, dtype in (("", "int8"), ("int4", "int4"), ("none", "float32")):
        report = tmp_path / f"report-{choice}.json"
        extra = ["--quantize", choice] if choice else []
        proc = run_cli(
            *args, *extra, "--out", str(tmp_path / "t.wav"), "--report-json", str(report)
        )
        assert proc.returncode == 0, proc.stderr
        assert json.loads(report.read_text())["dtype"] == dtype
        # the first use of a format packs the weights, saying so a tenth at a time; then never
        making = [line for line in proc.stderr.splitlines() if "first time only" in line]
        if choice == "":
            assert making[0].strip() == "making int8 weights (first time only): 0 %"
            assert 2 <= len(making) <= 11
        elif choice == "none":
            assert making == []
    again = run_cli(*args, "--out", str(tmp_path / "t.wav"))
    assert again.returncode == 0 and "first time only" not in again.stderr
    refused = run_cli(
        *args, "--out", str(tmp_path / "u.wav"), "--engine", "transformers", "--quantize", "int8"
    )
    assert refused.returncode == 2
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --quantize int8 needs the fast engine")
