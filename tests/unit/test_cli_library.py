"""``voices`` and ``history`` on the command line; every clone lands in the history."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf

from desktop_app import cli
from desktop_app.library.store import Library
from tests.conftest import NONET, REPO
from tests.support.signals import voiced, with_silence


@pytest.fixture
def clip_file(tmp_path: Path) -> Path:
    path = tmp_path / "ada.wav"
    sf.write(path, with_silence(voiced(3.0, 48_000), 48_000, 0.3, 0.3), 48_000)
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def add_ada(
    capsys: pytest.CaptureFixture[str], clip_file: Path, *extra: str
) -> tuple[int, str, str]:
    """``voices add Ada`` with one clip and its transcript, plus ``extra`` arguments."""
    clip = ("--clip", str(clip_file), "--transcript", "Hello there.")
    return run(capsys, "voices", "add", "Ada", *clip, *extra)


def test_voices_add_list_export_import_remove(
    clip_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = add_ada(capsys, clip_file)
    assert code == 2 and "--consent" in err  # no consent, no voice
    code, out, _ = add_ada(capsys, clip_file, "--consent", "--notes", "me")
    assert code == 0 and "stored voice 'Ada'" in out
    code, out, _ = run(capsys, "voices", "list", "--json")
    listed = json.loads(out)
    assert listed[0]["name"] == "Ada" and listed[0]["consent_confirmed"] is True
    assert listed[0]["clips"][0]["seconds"] == pytest.approx(3.2, abs=0.1)  # trimmed
    bundle = tmp_path / "ada.zip"
    assert run(capsys, "voices", "export", "Ada", str(bundle))[0] == 0
    # the bundle's consent is not taken as given: asked again (no terminal here: refused)
    code, _, err = run(capsys, "voices", "import", str(bundle), "--name", "Ada copy")
    assert code == 2 and "--consent" in err
    assert run(capsys, "voices", "import", str(bundle), "--name", "Ada copy", "--consent")[0] == 0
    assert run(capsys, "voices", "remove", "Ada")[0] == 0
    code, out, _ = run(capsys, "voices", "list")
    assert out.startswith("Ada copy\t1 clip(s)")
    code, _, err = run(capsys, "voices", "remove", "Nobody")
    assert code == 2 and "no voice called 'Nobody'" in err


def test_clone_with_a_voice_is_recorded_in_the_history(
    tiny_model_dir: Path, clip_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_ada(capsys, clip_file, "--consent")
    out_file = tmp_path / "take.wav"
    code, out, err = run(
        capsys,
        "clone",
        "--model",
        str(tiny_model_dir),
        "--voice",
        "Ada",
        "--text",
        "From the library.",
        "--out",
        str(out_file),
        "--max-seconds",
        "0.8",
        "--seed",
        "9",
    )
    assert code == 0, err
    assert "recorded in the history as take 1" in err
    code, out, _ = run(capsys, "history", "list", "--json", "--voice", "Ada")
    takes = json.loads(out)
    assert [(t["id"], t["text"], t["seed"], t["voice"]) for t in takes] == [
        (1, "From the library.", 9, "Ada")
    ]
    assert takes[0]["settings"]["max_seconds"] == 0.8
    exported = tmp_path / "again.flac"
    assert run(capsys, "history", "export", "1", str(exported))[0] == 0
    back, rate = sf.read(exported)
    original, _ = sf.read(out_file)
    assert rate == 24_000 and back.shape == original.shape
    code, _, err = run(
        capsys,
        "clone",
        "--model",
        str(tiny_model_dir),
        "--voice",
        "Ada",
        "--ref",
        str(clip_file),
        "--ref-text",
        "x",
        "--text",
        "t",
        "--out",
        str(out_file),
    )
    assert code == 2 and "either --voice or --ref" in err


def test_killing_a_clone_mid_generation_leaves_no_half_take(
    tiny_model_dir: Path, clip_file: Path, tmp_path: Path, app_home: Path
) -> None:
    out_file = tmp_path / "killed.wav"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(NONET), str(REPO)]))
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "desktop_app",
            "clone",
            "--model",
            str(tiny_model_dir),
            "--engine",
            "transformers",
            "--ref",
            str(clip_file),
            "--ref-text",
            "Hello there.",
            "--text",
            "This will never finish.",
            "--out",
            str(out_file),
            "--max-seconds",
            "150",
        ],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    log = app_home / "logs" / "csm-studio.log"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and "loaded " not in (
        log.read_text() if log.exists() else ""
    ):
        time.sleep(0.2)
    time.sleep(1.0)  # well inside the generation
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert not out_file.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    library = Library()
    assert library.integrity_check() == "ok"
    assert library.takes.list() == []
