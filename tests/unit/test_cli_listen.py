"""The listen-back commands as a user meets them: transcribe, clone and voices without
transcripts, checks in the report and the history, best of N, batch columns, download flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf

from desktop_app import cli
from desktop_app.inference.random_checkpoint import WHISPER_SAYS
from desktop_app.library.store import Library
from tests.conftest import run_cli
from tests.support.speech import espeak

HEARD = WHISPER_SAYS.strip()


@pytest.fixture
def speech_wav(tmp_path: Path) -> Path:
    return espeak(tmp_path / "speech.wav", "This is how my voice sounds when I read aloud.")


def listeners(whisper: Path, speaker: Path) -> list[str]:
    return ["--asr-model", str(whisper), "--speaker-model", str(speaker)]


def one_line_error(capsys: pytest.CaptureFixture[str], code: int) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("error: ")
    return err[-1]


def test_transcribe_prints_text_and_json_with_word_times(
    speech_wav: Path, tiny_whisper_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["transcribe", str(speech_wav), "--asr-model", str(tiny_whisper_dir)]) == 0
    assert capsys.readouterr().out.strip() == HEARD
    second = espeak(tmp_path / "two.wav", "Another file.")
    args = ["transcribe", str(speech_wav), str(second), "--asr-model", str(tiny_whisper_dir)]
    assert cli.main([*args, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["file"] for d in data] == [str(speech_wav), str(second)]
    duration = sf.info(str(speech_wav)).duration
    for item in data:
        assert item["text"] == HEARD
        assert [w["word"] for w in item["words"]] == HEARD.split()
        assert all(0 <= w["start"] <= w["end"] <= duration + 0.5 for w in item["words"])


def test_transcribe_without_a_model_says_how_to_get_one(
    speech_wav: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = one_line_error(capsys, cli.main(["transcribe", str(speech_wav)]))
    assert "openai/whisper-small is not in the local model cache" in err
    assert "download-model --asr" in err


def test_transcribe_of_silence_is_a_clear_error(
    tmp_path: Path, tiny_whisper_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    silent = tmp_path / "silent.wav"
    sf.write(silent, [0.0] * 48_000, 16_000)
    code = cli.main(["transcribe", str(silent), "--asr-model", str(tiny_whisper_dir)])
    assert "no speech was heard in" in one_line_error(capsys, code)


def test_clone_without_ref_text_and_no_model_is_todays_error_plus_how(
    tiny_model_dir: Path, speech_wav: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["clone", "--model", str(tiny_model_dir), "--ref", str(speech_wav), "--text", "Hi."]
    err = one_line_error(capsys, cli.main([*args, "--out", str(tmp_path / "o.wav")]))
    assert "give --ref-text TEXT" in err
    assert "download-model --asr" in err
    assert not (tmp_path / "o.wav").exists()


def test_clone_transcribes_the_clip_checks_the_take_and_keeps_the_best_of_three(
    tiny_model_dir: Path,
    tiny_whisper_dir: Path,
    tiny_speaker_dir: Path,
    speech_wav: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out, report, keep = tmp_path / "take.wav", tmp_path / "report.json", tmp_path / "all"
    proc = run_cli(
        "clone",
        "--model",
        str(tiny_model_dir),
        "--ref",
        str(speech_wav),
        "--text",
        "Say this in my voice.",
        "--out",
        str(out),
        "--max-seconds",
        "1",
        "--seed",
        "7",
        "--candidates",
        "3",
        "--keep-candidates",
        str(keep),
        "--report-json",
        str(report),
        *listeners(tiny_whisper_dir, tiny_speaker_dir),
    )
    assert proc.returncode == 0, proc.stderr
    assert f"heard in {speech_wav}: {HEARD}" in proc.stderr
    data = json.loads(report.read_text())
    check = data["check"]
    assert set(check) >= {"wer", "cer", "similarity", "ended", "trimmed_s", "verdict", "reasons"}
    assert check["verdict"] in ("good", "check", "bad")
    assert check["reasons"]  # random weights: a reason there is
    (chunk,) = data["candidates"]
    assert [c["seed"] for c in chunk["candidates"]] == [7, 8, 9]
    assert sum(c["chosen"] for c in chunk["candidates"]) == 1
    assert data["seed"] == chunk["chosen_seed"]
    assert sorted(p.name for p in keep.iterdir()) == [f"take-seed{s}.wav" for s in (7, 8, 9)]
    assert f"; {check['verdict']}" in proc.stdout
    with Library() as library:
        (take,) = library.takes.list()
        assert take.verdict == check["verdict"]
        assert take.check["reasons"] == check["reasons"]
        flagged = library.takes.list(flagged_only=True)
        assert [t.id for t in flagged] == ([take.id] if check["verdict"] != "good" else [])
    assert cli.main(["history", "list", "--flagged"]) == 0
    assert check["reasons"][0] in capsys.readouterr().out


def test_no_check_and_candidates_together_are_refused(
    tiny_model_dir: Path, speech_wav: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "clone", "--model", str(tiny_model_dir), "--ref", str(speech_wav), "--ref-text", "x",
        "--text", "Hi.", "--out", str(tmp_path / "o.wav"), "--no-check",
    ]  # fmt: skip
    assert "leave out --no-check" in one_line_error(capsys, cli.main([*args, "--candidates", "2"]))
    assert "1 to 8" in one_line_error(capsys, cli.main([*args[:-1], "--candidates", "0"]))


def test_voices_add_transcribes_clips_without_a_transcript(
    speech_wav: Path, tiny_whisper_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["voices", "add", "Ada", "--clip", str(speech_wav), "--consent"]
    assert "--transcript TEXT" in one_line_error(capsys, cli.main(args))
    assert cli.main([*args, "--asr-model", str(tiny_whisper_dir)]) == 0
    assert f"heard in {speech_wav}: {HEARD}" in capsys.readouterr().out
    with Library() as library:
        assert [c.transcript for c in library.voices.get("Ada").clips] == [HEARD]


def test_batch_summary_has_wer_voice_and_verdict_columns(
    tiny_model_dir: Path,
    tiny_whisper_dir: Path,
    tiny_speaker_dir: Path,
    speech_wav: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lines = tmp_path / "lines.txt"
    lines.write_text("First line.\nSecond line.\n")
    code = cli.main(
        [
            "batch", "--model", str(tiny_model_dir), "--ref", str(speech_wav), "--ref-text",
            "This is how my voice sounds when I read aloud.", "--input", str(lines),
            "--out-dir", str(tmp_path / "out"), "--max-seconds", "0.8", "--seed", "1",
            *listeners(tiny_whisper_dir, tiny_speaker_dir),
        ]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:8] == ["line", "seconds", "frames", "stopped", "by", "WER", "voice",
                                  "verdict"]  # fmt: skip
    rows = [row.split() for row in out[1:3]]
    assert [r[0] for r in rows] == ["1", "2"]
    assert all(r[6] in ("good", "check", "bad") for r in rows)
    flagged = sum(r[6] != "good" for r in rows)
    assert f"{flagged} flagged line(s)" in "\n".join(out)
    with Library() as library:
        assert sorted(t.verdict for t in library.takes.list()) == sorted(r[6] for r in rows)


def test_download_flags_pick_the_listen_back_models(capsys: pytest.CaptureFixture[str]) -> None:
    from desktop_app.cli import build_parser

    args = build_parser().parse_args(["download-model", "--asr"])
    assert args.asr and not args.speaker
    with pytest.raises(SystemExit):
        build_parser().parse_args(["download-model", "--asr", "--speaker"])
    capsys.readouterr()
    code = cli.main(["download-model", "--speaker"])  # the tests are offline: a clear refusal
    assert "downloads are switched off" in one_line_error(capsys, code)
