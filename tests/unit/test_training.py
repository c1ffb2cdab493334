"""Training a voice: a session cut into utterances, screened and reviewed; LoRA training through
transformers' CSM labels that learns, resumes exactly and keeps its adapter in peft's format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from desktop_app.errors import RequestError
from desktop_app.training import lora
from desktop_app.training.training_set import (
    SessionAudio,
    TrainingSet,
    build_training_set,
    read_transcripts,
)
from desktop_app.training.utterances import RATE, align_transcript, cut_session, level_problem
from tests.support.speech import speech_24k

SENTENCES = [
    "The first sentence of the session is read slowly and clearly.",
    "A second one follows after a short pause for breath.",
    "Then a third sentence, with a few more words in it than before.",
    "The fourth is the last one of this little reading.",
    "And a fifth sentence closes the session for today.",
]


def session(tmp_path: Path, voice: str = "en", sentences: list[str] = SENTENCES) -> np.ndarray:
    """The sentences spoken by espeak-ng, 0.8 s apart, with 0.5 s of silence at either end."""
    gap = np.zeros(int(0.8 * RATE), np.float32)
    edge = np.zeros(int(0.5 * RATE), np.float32)
    parts = [edge]
    for text in sentences:
        parts += [speech_24k(tmp_path, text, voice), gap]
    parts[-1] = edge
    return np.concatenate(parts)


def test_a_session_is_cut_at_its_pauses(tmp_path: Path) -> None:
    audio = session(tmp_path)
    found = cut_session(audio, "session.wav")
    assert len(found) == len(SENTENCES)
    for utterance in found:
        assert 2.0 <= utterance.seconds <= 15.0 and not utterance.problem
        # each starts and ends in the silence around one sentence
        assert (
            np.abs(audio[int(utterance.start * RATE) : int(utterance.start * RATE) + 240]).max()
            < 0.01
        )
    # a sentence cut by the end of the recording is marked, not kept
    cut_short = cut_session(audio[: int(found[-1].start * RATE + RATE)], "cut.wav")
    assert cut_short[-1].problem == "cut off at the end of the recording"


def test_clipped_and_quiet_speech_is_left_out_with_the_reason(tmp_path: Path) -> None:
    speech = speech_24k(tmp_path, SENTENCES[0])
    assert level_problem(speech / np.abs(speech).max() * 0.5) == ""
    assert level_problem(np.clip(speech * 20, -1, 1)).startswith("clipped (")
    assert level_problem(speech * 0.003).startswith("too quiet (")


def test_a_training_set_is_screened_reviewed_and_kept(
    tmp_path: Path, recognizer: Any, speaker_encoder: Any
) -> None:
    audio = session(tmp_path)
    clip = speech_24k(tmp_path, "A clip of my own with its transcript.")
    sources = [
        SessionAudio("session.wav", audio),
        SessionAudio("clip.wav", clip, "A clip of my own with its transcript."),
        SessionAudio("loud.wav", np.clip(clip * 30, -1, 1), "A clip of my own."),
    ]
    made = build_training_set(
        tmp_path / "set", sources, recognizer=recognizer, encoder=speaker_encoder
    )
    by_source = {u.source: u for u in made.utterances}
    assert len(made.utterances) == len(SENTENCES) + 2
    assert by_source["clip.wav"].given and by_source["clip.wav"].usable
    assert by_source["loud.wav"].problem.startswith("clipped")
    heard = [u for u in made.utterances if u.source == "session.wav"]
    assert all(u.transcript == "The quick brown fox jumps over the lazy dog." for u in heard)
    assert made.recommendation() == f"10+ minutes recommended; {made.usable_minutes():.1f} usable"
    assert len(made.held_out()) == 1 and made.held_out()[0] not in made.training()
    # the review: an edit wins, an exclusion holds, and both survive a restart
    key = heard[0].key
    made.set_transcript(key, "  The first sentence   of the session. ")
    made.exclude(heard[1].key)
    made.save()
    again = TrainingSet.load(tmp_path / "set")
    assert again.find(key).transcript == "The first sentence of the session."
    assert again.find(heard[1].key).excluded and not again.find(heard[1].key).usable
    assert again.held_out_keys == made.held_out_keys
    assert np.allclose(again.find(key).audio, made.find(key).audio, atol=1e-4)


def test_without_the_speaker_model_the_review_says_so(tmp_path: Path) -> None:
    clip = speech_24k(tmp_path, SENTENCES[1])
    made = build_training_set(
        tmp_path / "set", [SessionAudio("c.wav", clip, SENTENCES[1])], recognizer=None, encoder=None
    )
    assert any("other speakers were not screened" in n for n in made.notes)
    assert any(n.startswith("too few usable utterances (1)") for n in made.notes)


def test_a_long_recordings_transcript_is_split_among_its_sentences() -> None:
    given = "One two three. Four five six seven. Eight nine."
    heard = ["one two three", "for five six seven", "eight nine"]
    assert align_transcript(given, heard) == [
        "One two three.", "Four five six seven.", "Eight nine."
    ]  # fmt: skip


def test_transcripts_are_read_as_name_bar_text(tmp_path: Path) -> None:
    path = tmp_path / "metadata.csv"
    path.write_text("# mine\nclip-1|Hello there.\n\nclip-2.wav|Second line.\n")
    assert read_transcripts(path) == {"clip-1": "Hello there.", "clip-2.wav": "Second line."}
    path.write_text("clip-3 no bar\n")
    with pytest.raises(Exception, match=r"metadata.csv:1: expected 'file name\|transcript'"):
        read_transcripts(path)


# -- training --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def one_voice(tmp_path_factory: pytest.TempPathFactory) -> TrainingSet:
    """Six utterances of one espeak voice with their transcripts (one held out)."""
    tmp = tmp_path_factory.mktemp("one-voice")
    sources = [
        SessionAudio(f"s{i}.wav", speech_24k(tmp, text), text)
        for i, text in enumerate([*SENTENCES, "One more line to make six of them."])
    ]
    return build_training_set(tmp / "set", sources, recognizer=None, encoder=None)


def test_the_merged_inputs_equal_the_models_own(
    tiny_model_dir: Path, one_voice: TrainingSet
) -> None:
    model, processor = lora.load_base(tiny_model_dir, "cpu")
    a, b = one_voice.training()[:2]
    batch = lora.prompt_of(processor, a, b)
    codes = torch.cat([lora.codes_of(model, one_voice, u) for u in (a, b)])
    ours = lora.merged_inputs(model, batch["input_ids"], batch["labels"], codes)
    theirs = model._merge_input_ids_with_input_values(
        batch["input_ids"], batch["input_values"], batch["input_values_cutoffs"], batch["labels"]
    )
    assert torch.equal(ours[0], theirs["inputs_embeds"])
    assert torch.equal(ours[1], theirs["labels"])
    assert list(one_voice.folder.joinpath("codes").glob("*.npy"))  # computed once, kept


@pytest.fixture(scope="module")
def train_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random CSM whose weights are drawn with std 0.2, not transformers' 0.02: with
    0.02 its frozen heads turn any hidden state into near-uniform logits (about +-0.2), which
    no adapter on the layers can sharpen (the loss stalls near ln 2051 per codebook), where a
    trained model's heads are sharp. The adapter then has something to steer, as on CSM-1B."""
    from desktop_app.inference.random_checkpoint import CheckpointShape, build_random_checkpoint

    shape = CheckpointShape(initializer_range=0.2)
    return build_random_checkpoint(tmp_path_factory.mktemp("train-csm"), shape)


SETTINGS = lora.TrainSettings(
    rank=8, alpha=16, steps=24, learning_rate=3e-3, accumulation=2, validate_every=8,
    checkpoint_every=4, seed=5,
)  # fmt: skip


def codebook0_accuracy(model: Any, processor: Any, training_set: TrainingSet) -> float:
    """Teacher-forced: how often the backbone's most likely code 0 is the recording's."""
    right = total = 0
    train = training_set.training()
    with torch.no_grad():
        for index, target in enumerate(train):
            reference = train[(index + 1) % len(train)]
            embeds, labels = lora.example(model, processor, training_set, reference, target, 1.0)
            logits = model(inputs_embeds=embeds).logits
            predicted = logits[0, :-1].argmax(-1)
            wanted = labels[0, 1:, 0]
            keep = wanted >= 0
            right += int((predicted[keep] == wanted[keep]).sum())
            total += int(keep.sum())
    return right / total


def adapter_weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(folder / "adapter_model.safetensors")


def test_training_learns_the_voice_and_keeps_a_peft_adapter(
    train_model_dir: Path, one_voice: TrainingSet, tmp_path: Path
) -> None:
    model, processor = lora.load_base(train_model_dir, "cpu")
    before = codebook0_accuracy(model, processor, one_voice)
    trainer = lora.Trainer(model, processor, train_model_dir, one_voice, tmp_path / "run", SETTINGS)
    reports: list[lora.TrainProgress] = []
    result = trainer.run(on_progress=reports.append)
    losses = [loss for _, loss in result.history.train]
    assert np.mean(losses[-4:]) <= 0.5 * np.mean(losses[:4])
    assert [v for v, _ in result.history.validation] == [8, 16, 24]
    assert reports[-1].step == 24 and reports[-1].seconds_left == 0
    # the adapter loads in transformers + peft elsewhere, and it learned codebook 0
    from peft import PeftModel

    base, _ = lora.load_base(train_model_dir, "cpu")
    trained = PeftModel.from_pretrained(base, result.adapter).base_model.model
    after = codebook0_accuracy(trained, processor, one_voice)
    assert after >= 2 * before and after > 0
    assert (result.adapter / lora.ADAPTER_INFO).is_file()


def test_a_stopped_run_resumes_to_the_same_weights(
    train_model_dir: Path, one_voice: TrainingSet, tmp_path: Path
) -> None:
    from desktop_app.errors import GenerationCancelled

    model, processor = lora.load_base(train_model_dir, "cpu")
    whole = lora.Trainer(model, processor, train_model_dir, one_voice, tmp_path / "whole", SETTINGS)
    expected = adapter_weights(whole.run().adapter)

    model, processor = lora.load_base(train_model_dir, "cpu")
    parts = lora.Trainer(model, processor, train_model_dir, one_voice, tmp_path / "parts", SETTINGS)
    calls = [0]

    def stop_mid_step() -> bool:  # during the 11th step's second example
        calls[0] += 1
        return calls[0] == 22

    with pytest.raises(GenerationCancelled):
        parts.run(should_stop=stop_mid_step)
    assert parts.latest() is not None and parts.latest().name == "step-000010"  # type: ignore[union-attr]
    messages: list[str] = []
    result = parts.run(resume=True, on_progress=lambda p: messages.append(p.message))
    assert result.resumed_from == 10 and "resuming at step 10 of 24" in messages
    got = adapter_weights(result.adapter)
    assert got.keys() == expected.keys()
    for name, tensor in expected.items():
        assert torch.equal(got[name], tensor), name


def test_resume_with_nothing_to_resume_starts_from_the_beginning(
    train_model_dir: Path, one_voice: TrainingSet, tmp_path: Path
) -> None:
    model, processor = lora.load_base(train_model_dir, "cpu")
    short = lora.TrainSettings(**{**SETTINGS.__dict__, "steps": 2})
    trainer = lora.Trainer(model, processor, train_model_dir, one_voice, tmp_path / "run", short)
    messages: list[str] = []
    result = trainer.run(resume=True, on_progress=lambda p: messages.append(p.message))
    assert result.resumed_from == 0
    assert messages[0] == "nothing to resume: training from the beginning"


def test_a_machine_without_the_memory_is_refused_before_training(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The free memory is the one thing faked: a machine short of it cannot be made here."""
    import psutil

    needed = lora.memory_needed(tiny_model_dir, torch.float32)
    weights = sum(p.stat().st_size for p in tiny_model_dir.glob("*.safetensors"))
    assert needed == int(weights * lora.MEMORY_FACTOR + lora.MEMORY_MARGIN)

    class Short:
        available = needed - 1

    monkeypatch.setattr(psutil, "virtual_memory", lambda: Short())
    with pytest.raises(RequestError, match=r"needs about .* GB of free memory; this machine has"):
        lora.load_base(tiny_model_dir, "cpu")
