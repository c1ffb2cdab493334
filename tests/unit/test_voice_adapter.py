"""A trained voice's adapter in the fast engine: its low-rank paths give the codes transformers +
peft give with the same adapter, a voice changes without a reload, and rows of different voices
in one batch each get their own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from desktop_app.errors import RequestError
from desktop_app.inference import GenerationRequest, ReferenceClip
from desktop_app.inference.adapter import read_adapter
from desktop_app.inference.fast_engine import FastEngine
from desktop_app.inference.hf_engine import TransformersEngine
from desktop_app.training import lora
from tests.support.adapters import random_adapter
from tests.support.signals import voiced


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


def test_a_trained_voice_is_kept_and_travels_in_its_bundle_byte_for_byte(
    adapters: list[Path], tmp_path: Path, app_home: Path
) -> None:
    import zipfile

    from desktop_app.library.bundles import export_voice, import_voice
    from desktop_app.library.database import LibraryError
    from desktop_app.library.store import Library

    names = ("adapter_config.json", "adapter_model.safetensors")
    with Library(grace_seconds=0) as library:
        library.voices.add("Ada", [(voiced(3.0, 24_000), "I am Ada.", "recorded")])
        library.adapters.attach("Ada", adapters[0], {"base_model": {"files": "x"}})
        export_voice(library, "Ada", tmp_path / "ada.zip")
    with Library(grace_seconds=0) as library:  # a restart
        record = library.adapters.get("Ada")
        assert record is not None and record.info == {"base_model": {"files": "x"}}
        import_voice(library, tmp_path / "ada.zip", consent=True, name="Ada again")
        library.files.remove(library.files.unreferenced())  # the clean-up keeps them
        for voice in ("Ada", "Ada again"):
            folder = library.adapters.write_folder(voice, tmp_path / voice)
            assert folder is not None
            for name in names:
                assert (folder / name).read_bytes() == (adapters[0] / name).read_bytes()
    # a bundle whose adapter is not LoRA weights is refused, and nothing is stored
    damaged = tmp_path / "damaged.zip"
    with zipfile.ZipFile(tmp_path / "ada.zip") as good, zipfile.ZipFile(damaged, "w") as bad:
        for item in good.infolist():
            data = good.read(item.filename)
            bad.writestr(
                item, b"not safetensors" if item.filename.endswith(".safetensors") else data
            )
    with Library() as library, pytest.raises(LibraryError, match=r"trained voice .* is damaged"):
        import_voice(library, damaged, consent=True, name="Broken")
    with Library() as library:
        assert library.voices.id_of("Broken") is None


def test_a_dialogue_of_two_trained_voices_says_each_line_with_its_own(
    tiny_model_dir: Path, adapters: list[Path]
) -> None:
    from desktop_app.conversation.script import parse_script
    from desktop_app.conversation.speak import speak_script

    script = parse_script("Ada: Good morning.\nBen: Morning to you.\nAda: Shall we start?\n")
    voices = {
        "Ada": [ReferenceClip(voiced(2.5, 24_000, f0=200, seed=3), "I am Ada.")],
        "Ben": [ReferenceClip(voiced(2.5, 24_000, f0=110, seed=4), "I am Ben.")],
    }
    trained = {"Ada": read_adapter(adapters[0]), "Ben": read_adapter(adapters[1])}
    fast = FastEngine(tiny_model_dir, "cpu")
    settings = GenerationRequest("-", temperature=0, max_seconds=1.0, seed=1)
    lines = speak_script(fast, script, voices, settings, adapters=trained)  # type: ignore[arg-type]
    for line in lines:
        assert line.request.adapter is trained[line.turn.speaker]
        fast.prompts.forget()
        alone = fast.generate(line.request)
        np.testing.assert_array_equal(line.result.codes, alone.codes)
    # the same script without the adapters is another conversation
    plain = speak_script(fast, script, voices, settings)  # type: ignore[arg-type]
    pairs = zip(lines, plain, strict=True)
    assert any(not np.array_equal(a.result.codes, b.result.codes) for a, b in pairs)


def test_undoing_the_removal_of_a_trained_voice_brings_its_training_back(
    adapters: list[Path], app_home: Path
) -> None:
    from desktop_app.library.store import Library

    with Library() as library:
        library.voices.add("Ada", [(voiced(3.0, 24_000), "I am Ada.", "recorded")])
        kept = library.adapters.attach("Ada", adapters[0], {"base_model": {}})
        removed = library.voices.remove("Ada")
        assert kept.weights_file in removed.files()
        library.voices.restore(removed)
        back = library.adapters.get("Ada")
        assert back is not None and back.weights_file == kept.weights_file
