"""Hostile input for listening back: no speech, music, two speakers, a 25-minute file, a
transcript in another script than the audio. Each is a clear message or a sensible result."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from desktop_app import cli
from desktop_app.inference.random_checkpoint import WHISPER_SAYS
from tests.support.speech import espeak

RATE = 24_000


def last_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def test_a_clip_with_no_speech_says_so(
    tmp_path: Path, tiny_whisper_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    noise = tmp_path / "fan-noise.wav"
    sf.write(noise, np.random.default_rng(0).normal(0, 0.05, 5 * RATE), RATE)
    code = cli.main(["transcribe", str(noise), "--asr-model", str(tiny_whisper_dir)])
    assert code == 2
    assert last_error(capsys) == (
        f"error: no speech was heard in {noise}; choose or record a clip of someone speaking"
    )


def test_music_is_a_transcript_or_a_clear_no_speech(
    tmp_path: Path, tiny_whisper_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t = np.arange(8 * RATE) / RATE
    notes = [220.0, 277.2, 329.6, 440.0]
    tune = sum(np.sin(2 * np.pi * f * t) * (np.sin(np.pi * t * (i + 1)) > 0) for i, f in
               enumerate(notes))  # fmt: skip
    music = tmp_path / "music.wav"
    sf.write(music, (0.2 * tune).astype(np.float32), RATE)
    code = cli.main(["transcribe", str(music), "--asr-model", str(tiny_whisper_dir)])
    if code == 0:
        assert capsys.readouterr().out.strip()
    else:
        assert code == 2
        assert "no speech was heard" in last_error(capsys)


def test_two_speakers_are_both_transcribed(
    tmp_path: Path, tiny_whisper_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = sf.read(espeak(tmp_path / "a.wav", "The first speaker says a sentence here."))[0]
    b = sf.read(espeak(tmp_path / "b.wav", "And the second one answers.", "en+f3"))[0]
    both = tmp_path / "dialogue.wav"
    sf.write(both, np.concatenate([a, np.zeros(11_025), b]), 22_050)
    assert cli.main(["transcribe", str(both), "--asr-model", str(tiny_whisper_dir), "--json"]) == 0
    out = capsys.readouterr().out
    assert WHISPER_SAYS.strip() in out


def test_a_25_minute_reference_is_refused_before_it_is_transcribed(
    tmp_path: Path,
    tiny_model_dir: Path,
    tiny_whisper_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    line = sf.read(espeak(tmp_path / "line.wav", "A long recording goes on and on."))[0]
    reps = int(25 * 60 * 22_050 / (line.size + 22_050)) + 1
    long = tmp_path / "lecture.flac"
    sf.write(long, np.tile(np.concatenate([line, np.zeros(22_050)]), reps), 22_050)
    code = cli.main(
        [
            "clone", "--model", str(tiny_model_dir), "--ref", str(long), "--text", "Hi.",
            "--out", str(tmp_path / "o.wav"), "--asr-model", str(tiny_whisper_dir),
        ]
    )  # fmt: skip
    assert code == 2
    error = last_error(capsys)  # refused as it is read: it is never decoded, nor transcribed
    assert error.startswith(f"error: {long} is too long: this takes at most 5 minutes")
    assert "it holds 25.1 minutes" in error  # the whole repeats of the line: just over 25


def test_a_transcript_in_another_script_is_pointed_out(
    tmp_path: Path, tiny_model_dir: Path, tiny_whisper_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    ref = espeak(tmp_path / "ref.wav", "This is my voice, read aloud slowly for the clip.")
    code = cli.main(
        [
            "clone", "--model", str(tiny_model_dir), "--ref", str(ref), "--ref-text",
            "これは私の声です。", "--text", "こんにちは、世界。", "--out", str(tmp_path / "o.wav"),
            "--asr-model", str(tiny_whisper_dir), "--max-seconds", "0.8",
        ]
    )  # fmt: skip
    assert code == 0
    err = capsys.readouterr().err
    assert f"the transcript of --ref {ref} does not match what is heard in it" in err
    assert "check: bad" in err  # the take says nothing a recogniser hears as that text
