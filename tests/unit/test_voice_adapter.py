"""A trained voice's adapter in the fast engine: its low-rank paths give the codes transformers +
peft give with the same adapter, a voice changes without a reload, and rows of different voices
in one batch each get their own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from desktop_app.errors import RequestError
from desktop_app.inference import GenerationRequest, ReferenceClip
from desktop_app.inference.adapter import read_adapter
from desktop_app.inference.fast_engine import FastEngine
from desktop_app.inference.hf_engine import TransformersEngine
from desktop_app.training import lora
from tests.support.signals import voiced


def random_adapter(model_dir: Path, folder: Path, seed: int) -> Path:
    """A LoRA adapter with random A and B (peft's ``init_lora_weights=False``), saved by peft."""
    from peft import LoraConfig, get_peft_model

    model, _ = lora.load_base(model_dir, "cpu")
    torch.manual_seed(seed)
    config = LoraConfig(
        r=4, lora_alpha=8, target_modules=lora.TARGET_MODULES, init_lora_weights=False
    )
    peft_model = get_peft_model(model, config)
    with torch.no_grad():  # large enough to change the greedy codes
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.mul_(20)
    peft_model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def adapters(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    tmp = tmp_path_factory.mktemp("adapters")
    return [random_adapter(tiny_model_dir, tmp / f"voice-{i}", seed=i) for i in range(2)]


def greedy(adapter: Any = None, text: str = "Say this in my voice.") -> GenerationRequest:
    clip = ReferenceClip(voiced(3.0, 24_000, f0=120, seed=1), "Hello there, this is my voice.")
    return GenerationRequest(text, (clip,), temperature=0, max_seconds=2.0, adapter=adapter)


def with_peft(model_dir: Path, folder: Path) -> TransformersEngine:
    """The transformers engine over the base model with peft's adapter injected."""
    from peft import PeftModel

    model, _ = lora.load_base(model_dir, "cpu")
    injected = PeftModel.from_pretrained(model, folder).base_model.model
    return TransformersEngine(model_dir, "cpu", model=injected.eval())


def test_the_fast_engines_adapter_equals_transformers_and_peft(
    tiny_model_dir: Path, adapters: list[Path]
) -> None:
    fast = FastEngine(tiny_model_dir, "cpu")
    plain = fast.generate(greedy())
    voices = [read_adapter(folder) for folder in adapters]
    for folder, voice in zip(adapters, voices, strict=True):
        want = with_peft(tiny_model_dir, folder).generate(greedy())
        got = fast.generate(greedy(voice))
        np.testing.assert_array_equal(got.codes, want.codes)
        assert not np.array_equal(got.codes, plain.codes)  # the adapter changed the take
    # back to the base model, with no reload: its codes again
    np.testing.assert_array_equal(fast.generate(greedy()).codes, plain.codes)
    # one batch of three voices: each row as made alone
    rows = fast.generate_batch([greedy(voices[1]), greedy(), greedy(voices[0])])
    alone = [fast.generate(greedy(v)).codes for v in (voices[1], None, voices[0])]
    for row, single in zip(rows, alone, strict=True):
        np.testing.assert_array_equal(row.codes, single)


def test_packed_weights_take_the_adapter_beside_them(
    tiny_model_dir: Path, adapters: list[Path]
) -> None:
    packed = FastEngine(tiny_model_dir, "cpu", quantize="int8")
    voice = read_adapter(adapters[0])
    plain = packed.generate(greedy())
    trained = packed.generate(greedy(voice))
    assert not np.array_equal(trained.codes, plain.codes)
    np.testing.assert_array_equal(packed.generate(greedy(voice)).codes, trained.codes)


def test_an_adapter_of_another_base_model_is_refused(
    tiny_model_dir: Path, adapters: list[Path], tmp_path: Path
) -> None:
    import json
    import shutil

    folder = tmp_path / "other"
    shutil.copytree(adapters[0], folder)
    (folder / lora.ADAPTER_INFO).write_text(json.dumps({"base_model": {"files": "elsewhere"}}))
    fast = FastEngine(tiny_model_dir, "cpu")
    with pytest.raises(RequestError, match="trained on another base model"):
        fast.generate(greedy(read_adapter(folder)))
    with pytest.raises(RequestError, match="fast engine only"):
        fast.reference.generate(greedy(read_adapter(adapters[0])))
