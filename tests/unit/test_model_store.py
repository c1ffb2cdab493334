"""Finding and checking checkpoints: folders, the hub cache, and every way they can be wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from desktop_app.errors import ModelDownloadError, ModelNotFoundError
from desktop_app.inference import load_engine
from desktop_app.inference.model_store import download_model, resolve_model
from tests.support.checkpoints import copy_checkpoint, install_in_hub_cache

GUIDANCE = (
    r"huggingface\.co/sesame/csm-1b.*HF_TOKEN=YOUR_TOKEN python -m desktop_app download-model"
)


def test_folder_resolves_and_loads(tiny_model_dir: Path) -> None:
    assert resolve_model(str(tiny_model_dir)) == tiny_model_dir
    engine = load_engine("transformers", tiny_model_dir, "cpu")
    assert (engine.device, engine.dtype) == ("cpu", "float32")
    assert engine.load_seconds > 0


def test_hub_id_resolves_from_the_local_cache_only(tiny_model_dir: Path, app_home: Path) -> None:
    snapshot = install_in_hub_cache(tiny_model_dir, app_home / "hf-cache", "acme/tiny-csm")
    folder = resolve_model("acme/tiny-csm")
    assert folder == snapshot
    engine = load_engine("transformers", folder, "cpu")
    assert engine.model_dir == snapshot


def test_hub_id_missing_from_cache_says_how_to_get_it() -> None:
    with pytest.raises(ModelNotFoundError, match=r"not in the local model cache.*" + GUIDANCE):
        resolve_model("sesame/csm-1b")


def test_missing_folder_and_file_instead_of_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"model folder not found.*" + GUIDANCE):
        resolve_model(str(tmp_path / "nowhere"))
    a_file = tmp_path / "weights.safetensors"
    a_file.write_bytes(b"x")
    with pytest.raises(ModelNotFoundError, match="is a file"):
        resolve_model(str(a_file))


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        ("config.json", "config.json"),
        ("model.safetensors", "model.safetensors"),
        ("tokenizer.json", "tokenizer.json"),
        ("chat_template.jinja", "chat template"),
        ("processor_config.json", "preprocessor_config.json"),
    ],
)
def test_incomplete_checkpoint_names_what_is_missing(
    tiny_model_dir: Path, tmp_path: Path, damage: str, named: str
) -> None:
    folder = copy_checkpoint(tiny_model_dir, tmp_path / "ckpt")
    (folder / damage).unlink()
    with pytest.raises(ModelNotFoundError, match=rf"incomplete: missing .*{named}.*download-model"):
        resolve_model(str(folder))


def test_truncated_weights_are_caught_before_loading(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = copy_checkpoint(tiny_model_dir, tmp_path / "ckpt")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ModelNotFoundError, match=r"damaged model\.safetensors"):
        resolve_model(str(folder))


def test_pickled_weights_are_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = copy_checkpoint(tiny_model_dir, tmp_path / "ckpt")
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(ModelNotFoundError, match=r"\.bin weights.*safetensors weights only"):
        resolve_model(str(folder))


def test_other_model_type_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = copy_checkpoint(tiny_model_dir, tmp_path / "ckpt")
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "llama"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelNotFoundError, match="'llama' model, not CSM"):
        resolve_model(str(folder))


def test_download_refuses_while_offline_mode_is_set() -> None:
    # the test session runs with HF_HUB_OFFLINE=1, as every command but download-model does
    with pytest.raises(ModelDownloadError, match="HF_HUB_OFFLINE is set"):
        download_model("sesame/csm-1b", token="hf_dummy")


# -- the listen-back models ------------------------------------------------------------------


def test_the_default_recogniser_loads_from_the_hub_cache(
    tiny_whisper_dir: Path, app_home: Path, tmp_path: Path
) -> None:
    from desktop_app import defaults
    from desktop_app.inference.asr import SpeechRecognizer
    from desktop_app.inference.model_store import ASR

    with pytest.raises(ModelNotFoundError, match=r"not in the local model cache.*--asr` \(about"):
        resolve_model(defaults.ASR_MODEL_ID_CPU, ASR)
    cache = app_home / "hf-cache"
    snapshot = install_in_hub_cache(tiny_whisper_dir, cache, defaults.ASR_MODEL_ID_CPU)
    folder = resolve_model(defaults.asr_model_for("cpu"), ASR)
    assert folder == snapshot
    recognizer = SpeechRecognizer(folder, "cpu")
    assert recognizer.name == "openai/whisper-small"


def test_incomplete_or_wrong_listen_back_checkpoints_are_named(
    tiny_whisper_dir: Path, tiny_speaker_dir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    from desktop_app.inference.model_store import ASR, SPEAKER

    whisper = copy_checkpoint(tiny_whisper_dir, tmp_path / "whisper")
    (whisper / "generation_config.json").unlink()
    with pytest.raises(ModelNotFoundError, match=r"speech-recognition .* generation_config.json"):
        resolve_model(str(whisper), ASR)
    with pytest.raises(ModelNotFoundError, match=r"'csm' model, not WHISPER.*--asr-model"):
        resolve_model(str(tiny_model_dir), ASR)
    with pytest.raises(ModelNotFoundError, match=r"'whisper' model, not WAVLM.*--speaker-model"):
        resolve_model(str(tiny_whisper_dir), SPEAKER)


def test_the_speaker_model_may_have_pytorch_weights(tiny_speaker_dir: Path, tmp_path: Path) -> None:
    """microsoft/wavlm-base-plus-sv publishes only pytorch_model.bin; transformers reads it with
    torch.load(weights_only=True). CSM itself stays safetensors-only."""
    import torch
    from safetensors.torch import load_file

    from desktop_app.inference.model_store import SPEAKER
    from desktop_app.inference.speaker import SpeakerEncoder

    folder = copy_checkpoint(tiny_speaker_dir, tmp_path / "sv")
    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    assert SpeakerEncoder(resolve_model(str(folder), SPEAKER), "cpu").embed(
        torch.randn(16_000).numpy()
    ).shape == (32,)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "csm"}))
    with pytest.raises(ModelNotFoundError, match=r"loads \.safetensors weights only"):
        resolve_model(str(folder))  # a CSM checkpoint may not


def test_a_damaged_recogniser_is_a_clear_error(tiny_whisper_dir: Path, tmp_path: Path) -> None:
    from desktop_app.inference.asr import SpeechRecognizer

    folder = copy_checkpoint(tiny_whisper_dir, tmp_path / "whisper")
    (folder / "tokenizer.json").write_text("{ not json")
    with pytest.raises(ModelNotFoundError, match=r"could not be loaded.*download-model --asr\)"):
        SpeechRecognizer(folder, "cpu")
