"""Every audio file shape a user can hand over: each is read, or refused with a clear message.

"Clear" means a UserError (the CLI's one-line ``error: ...``, the window's dialog) that names the
file and says what to do; never another exception, never a hang.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from desktop_app.audio.reference import load_reference
from desktop_app.errors import UserError
from tests.conftest import REPO, cli_env, run_cli
from tests.support.signals import voiced

SUBTYPES = ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"]
RATES = [8_000, 16_000, 22_050, 44_100, 96_000, 192_000]
CHANNELS = [1, 2, 3, 6, 8]
CASES = [
    (subtype, rate, CHANNELS[i % len(CHANNELS)])
    for i, (subtype, rate) in enumerate(itertools.product(SUBTYPES, RATES))
]


def speech(seconds: float, rate: int, channels: int) -> np.ndarray:
    mono = voiced(seconds, rate, f0=150)
    return np.stack([mono * (0.9 - 0.1 * c) for c in range(channels)], axis=1)


@pytest.mark.parametrize(("subtype", "rate", "channels"), CASES)
def test_every_depth_rate_and_channel_count_is_read(
    tmp_path: Path, subtype: str, rate: int, channels: int
) -> None:
    path = tmp_path / f"voice-{subtype}-{rate}-{channels}.wav"
    sf.write(path, speech(3.0, rate, channels), rate, subtype=subtype)
    audio = load_reference(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert 2.5 < audio.size / 24_000 <= 3.05
    assert np.isfinite(audio).all()


def write_float(path: Path, samples: np.ndarray, rate: int = 24_000) -> Path:
    sf.write(path, samples.astype(np.float32), rate, subtype="FLOAT")
    return path


def outcome(path: Path) -> str:
    """'ok', or the message of the UserError; anything else fails the test."""
    try:
        load_reference(path)
    except UserError as exc:
        return str(exc)
    return "ok"


def test_odd_contents_are_read_or_refused_clearly(tmp_path: Path) -> None:
    rate = 24_000
    voice = voiced(4.0, rate)
    nan = voice.copy()
    nan[1000:1100] = np.nan
    nan[5000] = np.inf
    nan[6000] = -np.inf
    results = {
        "nan and inf": outcome(write_float(tmp_path / "nan.wav", nan)),
        "clipped": outcome(write_float(tmp_path / "clip.wav", np.clip(voice * 8, -1, 1))),
        "dc offset": outcome(write_float(tmp_path / "dc.wav", voice * 0.4 + 0.5)),
        "silence": outcome(write_float(tmp_path / "silence.wav", np.zeros(4 * rate))),
        "zero samples": outcome(write_float(tmp_path / "empty.wav", np.zeros(0))),
        "one sample": outcome(write_float(tmp_path / "one.wav", np.ones(1) * 0.5)),
        "1.5 s": outcome(write_float(tmp_path / "short.wav", voiced(1.5, rate))),
    }
    assert results["nan and inf"] == "ok"
    assert results["clipped"] == "ok"
    assert results["dc offset"] == "ok"
    assert "silent" in results["silence"]
    assert "no audio" in results["zero samples"] or "empty" in results["zero samples"]
    assert "at least 2 s" in results["one sample"] or "silent" in results["one sample"]
    assert "at least 2 s" in results["1.5 s"]


def test_ten_minutes_is_a_recording_not_a_clip(tmp_path: Path) -> None:
    from desktop_app.audio.io import read_audio
    from desktop_app.defaults import MAX_RECORDING_SECONDS

    path = tmp_path / "long.flac"
    sf.write(path, voiced(600.0, 16_000), 16_000, subtype="PCM_16")
    # as a voice's clip: refused by its declared length, before it is decoded, naming the limit
    assert outcome(path).endswith(
        "is too long: this takes at most 5 minutes of audio, and it holds 10.0 minutes; cut it "
        "to the part you need"
    )
    # where a long recording is wanted (transcribing a session), it is read whole
    assert read_audio(path, max_seconds=MAX_RECORDING_SECONDS).seconds == pytest.approx(600.0)


def test_broken_files_are_refused_clearly(tmp_path: Path) -> None:
    good = tmp_path / "good.wav"
    sf.write(good, voiced(3.0, 24_000), 24_000)
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(good.read_bytes()[:30])
    cut = tmp_path / "cut-mid-data.wav"
    cut.write_bytes(good.read_bytes()[: 44 + 20_000])
    junk = tmp_path / "junk.wav"
    junk.write_bytes(np.random.default_rng(0).bytes(50_000))
    folder = tmp_path / "a-folder.wav"
    folder.mkdir()
    text = tmp_path / "notes.mp3"
    text.write_text("these are my notes, not audio")
    assert "cannot decode" in outcome(truncated)
    assert outcome(cut) != "" and "Traceback" not in outcome(cut)  # read what is there, or refuse
    assert "cannot decode" in outcome(junk)
    assert "folder" in outcome(folder) or "directory" in outcome(folder)
    assert "cannot decode" in outcome(text)
    assert "not found" in outcome(tmp_path / "missing.wav")


def test_a_non_utf8_file_name_is_read(tmp_path: Path) -> None:
    name = os.fsdecode(b"voix-\xff\xfe-enregistr\xe9e.wav")  # Latin-1 bytes, not UTF-8
    path = tmp_path / name
    sf.write(os.fsencode(path), voiced(3.0, 24_000), 24_000)
    assert outcome(path) == "ok"
    ref = run_cli(
        "clone",
        "--model",
        str(tmp_path / "no-model"),
        "--ref",
        str(path),
        "--ref-text",
        "Hello.",
        "--text",
        "Hi.",
        "--out",
        str(tmp_path / "out.wav"),
    )
    assert ref.returncode == 2 and "Traceback" not in ref.stderr  # reads it, then: no model


def test_an_unreadable_file_is_refused_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file without read permission, and one inside a folder the user may not enter."""
    if os.geteuid() != 0:
        path = tmp_path / "private.wav"
        sf.write(path, voiced(3.0, 24_000), 24_000)
        path.chmod(0o000)
        assert "permission denied" in outcome(path)
        return
    # root reads anything: check as an unprivileged user, where that user can run the app
    setpriv = shutil.which("setpriv")
    drop = [str(setpriv), "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    probe = (
        subprocess.run(
            [*drop, sys.executable, "-c", "import desktop_app.audio.reference"],
            capture_output=True,
            env=cli_env(),
            cwd="/",
            check=False,
            timeout=120,
        )
        if setpriv
        else None
    )
    if probe is None or probe.returncode != 0:
        # the checkout is private to root here: make stat() fail as it does for such a user
        def denied(self: Path, **kwargs: object) -> os.stat_result:
            raise PermissionError(13, "Permission denied", str(self))

        monkeypatch.setattr(Path, "stat", denied)
        assert "permission denied" in outcome(tmp_path / "private.wav")
        return
    open_dir = Path(tempfile.mkdtemp(prefix="csm-perm-"))
    try:
        open_dir.chmod(0o755)
        private = open_dir / "private.wav"
        sf.write(private, voiced(3.0, 24_000), 24_000)
        private.chmod(0o000)
        closed_dir = open_dir / "closed"
        closed_dir.mkdir(mode=0o700)
        hidden = closed_dir / "hidden.wav"
        sf.write(hidden, voiced(3.0, 24_000), 24_000)
        script = (
            "import sys\n"
            "from desktop_app.audio.reference import load_reference\n"
            "from desktop_app.errors import UserError\n"
            "for path in sys.argv[1:]:\n"
            "    try:\n        load_reference(path)\n"
            "    except UserError as e:\n        print(e)\n"
        )
        proc = subprocess.run(
            [
                setpriv,
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                sys.executable,
                "-c",
                script,
                str(private),
                str(hidden),
            ],
            capture_output=True,
            text=True,
            env=cli_env(),
            cwd=REPO,
            check=False,
            timeout=120,
        )
    finally:
        shutil.rmtree(open_dir)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 2 and all("permission denied" in line for line in lines)
