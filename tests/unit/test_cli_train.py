"""``train-voice``, ``voices evaluate`` and ``voices untrain`` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import soundfile as sf

from desktop_app.training.evaluate import PROXY_NOTE
from tests.conftest import run_cli
from tests.support.speech import speech_24k

LINES = [
    "The first sentence of the session is read slowly and clearly.",
    "A second one follows after a short pause for breath.",
    "Then a third sentence, with a few more words in it than before.",
    "The fourth is the last one of this little reading.",
    "And a fifth sentence closes the session for today.",
]


def recordings(tmp_path: Path) -> tuple[list[str], Path]:
    """One file per sentence (espeak-ng) and their transcripts as ``name|text`` lines."""
    files = []
    for number, line in enumerate(LINES):
        path = tmp_path / f"line-{number}.wav"
        sf.write(path, speech_24k(tmp_path, line), 24_000)
        files.append(str(path))
    meta = tmp_path / "metadata.csv"
    meta.write_text("".join(f"line-{n}|{line}\n" for n, line in enumerate(LINES)))
    return files, meta


def test_train_evaluate_clone_and_untrain_a_voice(
    tiny_model_dir: Path, tiny_whisper_dir: Path, tiny_speaker_dir: Path, tmp_path: Path
) -> None:
    files, meta = recordings(tmp_path)
    listen = ["--asr-model", str(tiny_whisper_dir), "--speaker-model", str(tiny_speaker_dir)]
    train = ["train-voice", "Ada", "--audio", *files, "--transcripts", str(meta), "--model",
             str(tiny_model_dir), "--steps", "4", "--rank", "4", "--device", "cpu",
             *listen]  # fmt: skip
    refused = run_cli(*train)
    assert refused.returncode == 2  # a new voice needs the consent of its owner
    assert refused.stderr.strip().splitlines()[-1].startswith("error: a voice is stored only")
    proc = run_cli(*train, "--consent")
    assert proc.returncode == 0, proc.stderr
    assert "5 usable utterance(s), 0 left out; 10+ minutes recommended; 0.3 usable" in proc.stderr
    assert "the voice 'Ada' is trained (a new voice, with 3 of its best utterances" in proc.stdout
    assert "word errors" in proc.stdout and f"note: {PROXY_NOTE}" in proc.stdout
    assert "remove the training with: voices untrain Ada" in proc.stdout
    again = run_cli(*train, "--consent")
    assert again.returncode == 2 and "is trained already; train it again with --replace" in (
        again.stderr
    )
    table = run_cli("voices", "evaluate", "Ada", "--json", "--model", str(tiny_model_dir),
                    "--device", "cpu", *listen)  # fmt: skip
    assert table.returncode == 0, table.stderr
    data = json.loads(table.stdout)
    assert data["sentences"] == 1 and data["held_out"] is True  # one of five held out
    for side in ("before", "after"):
        assert data[side]["takes"] == 1
        assert data[side]["wer"] is not None and data[side]["voice_match"] is not None
    assert PROXY_NOTE in data["notes"]
    out = tmp_path / "take.wav"
    clone = run_cli("clone", "--voice", "Ada", "--model", str(tiny_model_dir), "--text",
                    "Say this as Ada.", "--out", str(out), "--max-seconds", "1", "--no-check",
                    "--device", "cpu")  # fmt: skip
    assert clone.returncode == 0, clone.stderr
    assert sf.info(out).duration > 0
    wrong_engine = run_cli("clone", "--voice", "Ada", "--model", str(tiny_model_dir), "--text",
                           "Say this.", "--out", str(out), "--engine", "transformers",
                           "--quantize", "none", "--no-check")  # fmt: skip
    assert wrong_engine.returncode == 2
    assert "a trained voice is spoken by the fast engine only" in wrong_engine.stderr
    removed = run_cli("voices", "untrain", "Ada")
    assert removed.returncode == 0 and "removed the training of voice 'Ada'" in removed.stdout
    gone = run_cli("voices", "untrain", "Ada")
    assert gone.returncode == 2 and "the voice 'Ada' is not trained" in gone.stderr


def test_resume_with_nothing_to_resume_says_so(tiny_model_dir: Path, tmp_path: Path) -> None:
    files, meta = recordings(tmp_path)
    proc = run_cli("train-voice", "Ben", "--audio", *files[:3], "--transcripts", str(meta),
                   "--model", str(tiny_model_dir), "--steps", "2", "--rank", "2", "--resume",
                   "--consent", "--no-check", "--no-evaluate", "--device", "cpu")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "nothing to resume: training from the beginning" in proc.stderr
    assert "note: too few usable utterances (3) to hold any out" in proc.stderr
