"""Build the one-folder bundle with PyInstaller and run it frozen, with no Python on the PATH."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf
import torch

from desktop_app.audio.io import read_metadata
from desktop_app.inference.random_checkpoint import WHISPER_SAYS
from desktop_app.inference.text import SENTENCE_PAUSE
from tests.conftest import REPO
from tests.support import bundle_build
from tests.support.signals import voiced, with_silence, write_pyav

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]  # the build takes minutes


@pytest.fixture(scope="module")
def bundle() -> Path:
    """dist/csm-studio built from build.spec into a temporary folder (the build began in the
    background when the session collected this module: tests/support/bundle_build.py)."""
    return bundle_build.finished(REPO)


def frozen_env(home: Path) -> dict[str, str]:
    """A bare environment: no Python anywhere on the PATH, a private app home."""
    empty = home / "empty-path"
    empty.mkdir(parents=True, exist_ok=True)
    env = {
        "HOME": str(home),
        "PATH": str(empty),
        "QT_QPA_PLATFORM": "offscreen",
        "CSM_STUDIO_HOME": str(home / "app"),
        "LANG": "C.UTF-8",
    }
    for name in ("XDG_RUNTIME_DIR", "PULSE_SERVER"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def run_frozen(
    args: list[str], home: Path, timeout: int = 300, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run a program of the bundle in :func:`frozen_env` (plus ``env``); output captured as text."""
    return subprocess.run(
        args,
        env={**frozen_env(home), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_bundle_layout(bundle: Path) -> None:
    assert (bundle / "csm-studio").stat().st_mode & 0o111
    # one executable carries the compressed modules; the CLI is a link to it, not a second copy
    assert (bundle / "csm-studio-cli").is_symlink()
    assert (bundle / "csm-studio-cli").resolve() == (bundle / "csm-studio").resolve()
    assert (bundle / "_internal" / "resources" / "reading_script.txt").is_file()
    assert (bundle / "csm-studio.desktop").read_text().count("Exec=csm-studio") == 1
    assert (bundle / "csm-studio.png").is_file()
    assert (bundle / "install.sh").stat().st_mode & 0o111


def test_install_script_adds_menu_entry_and_commands(bundle: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    subprocess.run(
        ["sh", str(bundle / "install.sh")],
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
        check=True,
        capture_output=True,
        timeout=60,
    )
    entry = (home / ".local/share/applications/csm-studio.desktop").read_text()
    assert f'Exec="{bundle.resolve()}/csm-studio"' in entry.splitlines()
    assert (home / ".local/share/icons/hicolor/256x256/apps/csm-studio.png").is_file()
    for name in ("csm-studio", "csm-studio-cli"):
        proc = run_frozen([str(home / ".local/bin" / name), "--version"], tmp_path, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.startswith("CSM Studio ")
    usage = run_frozen([str(home / ".local/bin/csm-studio-cli"), "clone"], tmp_path, timeout=120)
    assert "see `csm-studio-cli clone --help`" in usage.stderr


def test_frozen_download_reaches_the_hub_client(bundle: Path, tmp_path: Path) -> None:
    """The hub's download stack is in the bundle: with the hub unreachable (a closed port on
    this machine, never the network) the download fails with the user's message, not an
    internal error from a missing module."""
    cli = str(bundle / "csm-studio-cli")
    args = [cli, "download-model", "--model", "sesame/csm-1b", "--dir", str(tmp_path / "m")]
    proc = run_frozen(args, tmp_path, timeout=120, HF_ENDPOINT="http://127.0.0.1:9")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith("error: cannot reach the Hugging Face")
    assert "Traceback" not in proc.stderr


def test_the_guide_downloads_through_the_bundle(
    bundle: Path, fake_hub: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command the first-run guide runs in a frozen app (the bundle's executable with
    `download-model`) downloads and checks a model from a hub (the fake one on the loopback)."""
    from desktop_app.inference.model_store import resolve_model
    from desktop_app.ui.first_run import download_command, needs
    from tests.support.fake_hub import GOOD_TOKEN

    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(bundle / "csm-studio"))
    program, args = download_command(needs("cpu")[0], tmp_path / "csm")
    proc = run_frozen(
        [program, *args], tmp_path, timeout=120, HF_ENDPOINT=fake_hub.url, HF_TOKEN=GOOD_TOKEN
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert '"folder"' in proc.stdout.splitlines()[-1]
    assert resolve_model(str(tmp_path / "csm")) == tmp_path / "csm"


@pytest.mark.skipif(torch.version.cuda is not None, reason="the size target is the CPU build's")
def test_cpu_bundle_stays_under_750_mib(bundle: Path) -> None:
    """700 MiB until the CPU's packed weights came: onnxruntime (35 MiB, its MLAS kernels) and
    onnx (7 MiB, the graphs are built with it) are the CPU default's kernels now."""
    files = [p for p in bundle.rglob("*") if p.is_file() and not p.is_symlink()]
    assert sum(p.stat().st_size for p in files) < 750 * 2**20


def test_frozen_window_smoke_test(bundle: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    shot = tmp_path / "frozen.png"
    smoke = ["--smoke-test", "--model", str(tiny_model_dir), "--screenshot", str(shot)]
    proc = run_frozen([str(bundle / "csm-studio"), *smoke], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shot.stat().st_size > 10_000


def test_frozen_cli_transcribes(bundle: Path, tiny_whisper_dir: Path, tmp_path: Path) -> None:
    """Whisper, its pipeline and the speech detector are in the bundle."""
    from tests.support.speech import espeak

    speech = espeak(tmp_path / "speech.wav", "The bundle hears this sentence.")
    cli = str(bundle / "csm-studio-cli")
    proc = run_frozen(
        [cli, "transcribe", str(speech), "--asr-model", str(tiny_whisper_dir)], tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == WHISPER_SAYS.strip()


def test_frozen_cli_clones_and_reports_errors(
    bundle: Path, tiny_model_dir: Path, tiny_speaker_dir: Path, tmp_path: Path
) -> None:
    # a phone recording (M4A/AAC): FFmpeg inside the bundle decodes it
    ref = tmp_path / "ref.m4a"
    write_pyav(ref, with_silence(voiced(3.0, 48_000), 48_000, 0.3, 0.3)[:, None], 48_000, "aac")
    out = tmp_path / "take.wav"
    args = [
        str(bundle / "csm-studio-cli"),
        "clone",
        "--model",
        str(tiny_model_dir),
        "--ref",
        str(ref),
        "--ref-text",
        "Hello there, this is my voice.",
        "--text",
        "Frozen and still talking today. The bundle says a second sentence, too.",
        "--out",
        str(out),
        "--max-seconds",
        "1.2",
        "--seed",
        "3",
        "--speaker-model",  # the take is checked inside the bundle: speaker model, jiwer, VAD
        str(tiny_speaker_dir),
    ]
    proc = run_frozen(args, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = sf.info(out)
    assert info.samplerate == 24_000
    assert info.frames == 2 * 15 * 1920 + round(SENTENCE_PAUSE * 24_000)  # two chunks, one batch
    assert "said in 2 chunks" in proc.stderr
    assert read_metadata(out)["ai_generated"] == "yes"
    assert "check: " in proc.stderr
    assert "Warning" not in proc.stderr  # no noise from libraries in a user's terminal
    bad = run_frozen([*args[:-6], "--out", str(tmp_path / "take.mp3")], tmp_path, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" not in bad.stderr
    # a bad command line names the program the user ran
    usage = run_frozen([str(bundle / "csm-studio-cli"), "clone"], tmp_path, timeout=120)
    assert usage.returncode == 2
    assert "see `csm-studio-cli clone --help`" in usage.stderr


def test_frozen_cli_serves_the_local_api(
    bundle: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:

    import httpx2 as httpx

    from desktop_app.library.store import Library
    from tests.api.conftest import free_port, wait_healthy

    with Library(tmp_path / "app" / "data" / "library") as library:
        library.voices.add("Ada", [(voiced(3.0, 24_000), "I am Ada.", "imported")])
    port = free_port()
    command = [str(bundle / "csm-studio-cli"), "serve", "--model", str(tiny_model_dir),
               "--port", str(port)]  # fmt: skip
    err = (tmp_path / "serve.stderr").open("w")
    process = subprocess.Popen(command, env=frozen_env(tmp_path), stderr=err, stdout=err)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, tmp_path / "serve.stderr", 120)  # type: ignore[arg-type]
        body = {"model": "csm-1b", "voice": "Ada", "input": "Frozen.", "response_format": "mp3",
                "max_seconds": 0.6}  # fmt: skip
        assert httpx.post(f"{url}/v1/audio/speech", json=body).status_code == 401
        key = (tmp_path / "app" / "config" / "api-key").read_text().strip()  # the install's
        headers = {"Authorization": f"Bearer {key}"}
        reply = httpx.post(f"{url}/v1/audio/speech", json=body, headers=headers, timeout=60)
        assert reply.status_code == 200, reply.text
        (tmp_path / "take.mp3").write_bytes(reply.content)
        assert sf.info(str(tmp_path / "take.mp3")).samplerate == 24_000
        missing = httpx.post(
            f"{url}/v1/audio/speech", json={**body, "voice": "Bob"}, headers=headers, timeout=60
        )
        assert missing.status_code == 404 and "Traceback" not in missing.text
    finally:
        process.terminate()
        process.wait(timeout=30)
        err.close()
    assert "Traceback" not in (tmp_path / "serve.stderr").read_text()
