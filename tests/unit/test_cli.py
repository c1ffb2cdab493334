"""The command line as a user meets it: exit codes, one-line errors, files written, no network."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from desktop_app import cli
from desktop_app.audio.io import read_metadata
from tests.conftest import run_cli
from tests.support.checkpoints import install_in_hub_cache
from tests.support.signals import voiced, with_silence

REF_TEXT = "Hello there, this is my voice."


@pytest.fixture
def ref_wav(tmp_path: Path) -> Path:
    path = tmp_path / "ref.wav"
    sf.write(path, with_silence(voiced(3.0, 44_100), 44_100, 0.5, 0.5), 44_100)
    return path


def clone_args(model: Path | str, ref: Path, out: Path, *extra: str) -> list[str]:
    return [
        "clone",
        "--model",
        str(model),
        "--ref",
        str(ref),
        "--ref-text",
        REF_TEXT,
        "--text",
        "Say this in my voice.",
        "--out",
        str(out),
        "--max-seconds",
        "1.2",
        *extra,
    ]


def test_clone_writes_take_report_and_codes_with_network_blocked(
    tiny_model_dir: Path, ref_wav: Path, tmp_path: Path
) -> None:
    out, report, codes = tmp_path / "take.wav", tmp_path / "report.json", tmp_path / "codes.npy"
    proc = run_cli(
        *clone_args(
            tiny_model_dir,
            ref_wav,
            out,
            "--seed",
            "5",
            "--report-json",
            str(report),
            "--codes-out",
            str(codes),
        )
    )
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out}" in proc.stdout
    audio, rate = sf.read(out)
    assert rate == 24_000 and audio.ndim == 1 and audio.size == 15 * 1920
    meta = read_metadata(out)
    assert meta["ai_generated"] == "yes" and meta["seed"] == "5"
    assert meta["title"] == "Say this in my voice."
    data = json.loads(report.read_text())
    assert data["frames"] == 15 and data["seed"] == 5
    # the CPU's default weights are int8 (packed once into the cache)
    assert (data["engine"], data["device"], data["dtype"]) == ("fast", "cpu", "int8")
    assert set(data["timings"]) == {
        "load_s",
        "prefill_s",
        "per_frame_s",
        "total_s",
        "real_time_factor",
        "first_audio_s",
    }
    assert data["chunks"] == []  # one sentence: one take
    array = np.load(codes)
    assert array.shape == (15, 4) and array.dtype == np.int64
    assert (array < 2048).all()


def test_clone_from_the_hub_cache_by_id(
    tiny_model_dir: Path, ref_wav: Path, tmp_path: Path, app_home: Path
) -> None:
    snapshot = install_in_hub_cache(tiny_model_dir, app_home / "hf-cache", "sesame/csm-1b")
    out = tmp_path / "take.flac"
    # no --model: the default id, resolved from the cache with sockets blocked
    args = [a for a in clone_args("x", ref_wav, out, "--temperature", "0")]
    args = args[:1] + args[3:]
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    assert sf.info(out).samplerate == 24_000
    # the history knows which commit of the model made the take
    from desktop_app.library.store import Library

    (take,) = Library().takes.list()
    assert (take.model, take.model_revision) == ("sesame/csm-1b", snapshot.name)


def test_the_network_guard_of_child_processes_is_real() -> None:
    """The guard that the CLI tests run under really blocks connections."""
    proc = run_cli("doctor")
    assert proc.returncode == 0
    import subprocess
    import sys

    from tests.conftest import NONET

    probe = subprocess.run(
        [sys.executable, "-c", "import socket; socket.create_connection(('127.0.0.1', 9), 1)"],
        env={"PYTHONPATH": str(NONET)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert probe.returncode != 0 and "network access blocked" in probe.stderr


def test_download_without_network_is_a_clear_error(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("hf_secret_value\n")
    proc = run_cli(
        "download-model",
        "--token-file",
        str(token),
        "--dir",
        str(tmp_path / "m"),
        env={"HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0"},
    )
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: cannot reach the Hugging Face hub")
    assert proc.stderr.endswith(errors[0] + "\n") and "Traceback" not in proc.stderr


def _one_line_error(capsys: pytest.CaptureFixture[str], code: int) -> str:
    """Exit 2 and exactly one ``error:`` line, the last one, with no traceback."""
    err = capsys.readouterr().err
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and err.endswith(errors[0] + "\n"), err
    assert "Traceback" not in err
    return errors[0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--ref": "missing.wav"}, "file not found"),
        ({"--out": "take.mp3"}, r"must end in \.wav or \.flac"),
        ({"--out": "no/such/folder/take.wav"}, "does not exist"),
        ({"--model": "no-such-folder/"}, "model folder not found"),
        ({"--engine": "warp"}, "unknown engine 'warp'"),
        ({"--temperature": "-1"}, "temperature must be 0"),
        ({"--text": "  "}, "nothing to say"),
        ({"--report-json": "report.txt"}, r"must end in \.json"),
    ],
)
def test_user_errors_are_one_line_exit_2(
    tiny_model_dir: Path,
    ref_wav: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    change: dict[str, str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    args = clone_args(tiny_model_dir, ref_wav, tmp_path / "take.wav")
    for flag, value in change.items():
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    err = _one_line_error(capsys, cli.main(args))
    assert re.search(message, err), err
    assert not (tmp_path / "take.wav").exists()


def test_bad_references_are_one_line_errors(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(24_000 * 4, np.float32), 24_000)
    short = tmp_path / "short.wav"
    sf.write(short, voiced(1.0, 24_000), 24_000)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00garbage" * 100)
    for ref, message in [
        (silent, "is silent"),
        (short, "at least 2 s"),
        (corrupt, "cannot decode"),
    ]:
        err = _one_line_error(capsys, cli.main(clone_args(tiny_model_dir, ref, tmp_path / "o.wav")))
        assert message in err


def test_argument_errors_are_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["clone", "--text", "hi"])
    err = _one_line_error(capsys, int(info.value.code or 0))
    assert "required" in err
    with pytest.raises(SystemExit) as info:
        cli.main(
            [
                "clone",
                "--ref",
                "a.wav",
                "--ref-text",
                "a",
                "--text",
                "t",
                "--out",
                "o.wav",
                "--seed",
                "abc",
            ]
        )
    assert "invalid int value" in _one_line_error(capsys, int(info.value.code or 0))


def test_mismatched_ref_and_ref_text(
    tiny_model_dir: Path, ref_wav: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [*clone_args(tiny_model_dir, ref_wav, tmp_path / "o.wav"), "--ref", str(ref_wav)]
    assert "one transcript per reference" in _one_line_error(capsys, cli.main(args))


def test_too_long_reference_says_how_much_fits(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    long_ref = tmp_path / "long.flac"
    sf.write(long_ref, voiced(175.0, 16_000), 16_000)
    err = _one_line_error(
        capsys, cli.main(clone_args(tiny_model_dir, long_ref, tmp_path / "o.wav"))
    )
    assert re.search(r"175\.\d s given.*only \d+\.\d s fit", err), err


def test_internal_error_exit_1_points_at_the_log(
    tiny_model_dir: Path,
    ref_wav: Path,
    tmp_path: Path,
    app_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from desktop_app.inference import hf_engine

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("kaboom in the decoder")

    monkeypatch.setattr(hf_engine.TransformersEngine, "decode", broken)
    code = cli.main(clone_args(tiny_model_dir, ref_wav, tmp_path / "o.wav"))
    err = capsys.readouterr().err
    assert code == 1
    log_file = app_home / "logs" / "csm-studio.log"
    assert f"details in {log_file}" in err and "Traceback" not in err
    assert "RuntimeError: kaboom in the decoder" in log_file.read_text()


def test_token_never_reaches_the_log(
    app_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = tmp_path / "token"
    token.write_text("hf_secret_value")
    cli.main(["download-model", "--token-file", str(token)])  # refused: offline in tests
    assert "hf_secret_value" not in (app_home / "logs" / "csm-studio.log").read_text()
    assert "HF_HUB_OFFLINE" in capsys.readouterr().err


def test_doctor_reports_model_and_machine(
    tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["doctor", "--model", str(tiny_model_dir)]) == 0
    out = capsys.readouterr().out
    assert f"found at {tiny_model_dir}" in out
    assert "torch" in out and "CUDA" in out and "log file" in out
    assert cli.main(["doctor"]) == 0
    assert "not found: sesame/csm-1b is not in the local model cache" in capsys.readouterr().out


def test_clone_says_a_long_text_in_chunks(
    tiny_model_dir: Path, ref_wav: Path, tmp_path: Path
) -> None:
    out, report = tmp_path / "long.wav", tmp_path / "long.json"
    text = (
        "The morning train was late again, so I walked along the river. "
        "Could you bring the blue notebook from the kitchen table? "
        "Honestly, I did not expect the concert to be that good."
    )
    args = clone_args(tiny_model_dir, ref_wav, out, "--max-seconds", "0.8", "--seed", "4")
    args[args.index("--text") + 1] = text
    proc = run_cli(*args, "--report-json", str(report))
    assert proc.returncode == 0, proc.stderr
    assert "said in 3 chunks, generated as one batch" in proc.stderr
    data = json.loads(report.read_text())
    assert [c["seed"] for c in data["chunks"]] == [4, 5, 6]
    assert all(c["frames"] <= 10 for c in data["chunks"])  # --max-seconds caps each chunk
    audio, _ = sf.read(out)
    assert audio.size > 3 * 0.5 * 24_000


def test_batch_writes_one_file_per_line_with_a_summary(
    tiny_model_dir: Path, ref_wav: Path, tmp_path: Path
) -> None:
    from desktop_app.library.store import Library

    lines = tmp_path / "lines.jsonl"
    lines.write_text(
        '{"text": "The first line."}\n\n'
        '{"text": "A second, somewhat longer line.", "out": "second.flac"}\n'
        '{"text": "Third."}\n'
    )
    out_dir = tmp_path / "takes"

    def batch(source: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        voice = ("--model", str(tiny_model_dir), "--ref", str(ref_wav), "--ref-text", REF_TEXT)
        return run_cli("batch", *voice, "--input", str(source), "--out-dir", str(out_dir), *extra)

    proc = batch(lines, "--max-seconds", "0.8", "--seed", "9")
    assert proc.returncode == 0, proc.stderr
    assert "the --ref voice: 3 line(s)" in proc.stderr
    files = [out_dir / "001.wav", out_dir / "second.flac", out_dir / "003.wav"]
    for file in files:
        assert sf.info(file).samplerate == 24_000 and str(file) in proc.stdout
    assert "3 take(s) (0 already made)" in proc.stdout
    assert sorted(t.seed for t in Library().takes.list()) == [9, 11, 12]  # seed + line number - 1
    # run again: nothing to make; change one line: only that one is made again
    before = {f: f.stat().st_mtime_ns for f in files}
    proc = batch(lines, "--max-seconds", "0.8", "--seed", "9")
    assert (
        proc.returncode == 0 and "3 line(s) already made (the manifest); 0 to make" in proc.stderr
    )
    assert {f: f.stat().st_mtime_ns for f in files} == before and len(Library().takes.list()) == 3
    lines.write_text(lines.read_text().replace("Third.", "A third line."))
    proc = batch(lines, "--max-seconds", "0.8", "--seed", "9")
    assert "2 line(s) already made (the manifest); 1 to make" in proc.stderr
    assert [f for f in files if f.stat().st_mtime_ns != before[f]] == [out_dir / "003.wav"]
    proc = batch(lines, "--max-seconds", "0.8", "--seed", "9", "--force")
    assert "already made" not in proc.stderr and len(Library().takes.list()) == 7
    # a line that cannot be said fails alone: the others are made, the summary names it
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text('{"text": "Fine."}\n{"text": "   "}\n{"text": "Also fine."}\n')
    proc = batch(mixed, "--max-seconds", "0.4", "--report-json", str(tmp_path / "r.json"))
    assert proc.returncode == 2
    assert "1 line(s) failed:\n  line 2: the text is empty" in proc.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert [x["line"] for x in report["failed"]] == [2] and report["lines_done"] == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"txt": "oops"}\n')
    proc = batch(bad)
    assert proc.returncode == 2 and "bad.jsonl line 2" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
