"""``download-model --dir``: the resumable, checked download, from a fake hub on the loopback
(the child's sockets reach nothing else)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from desktop_app.inference.fetch import WORK_DIR, partial_bytes
from desktop_app.inference.model_store import model_revision, resolve_model
from tests.conftest import REPO, cli_env, run_cli
from tests.support.fake_hub import GOOD_TOKEN

ONLINE = {"HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0"}
WEIGHTS = "model.safetensors"


def download(folder: Path, *extra: str, token: str | None = GOOD_TOKEN) -> Any:
    args = ["download-model", "--dir", str(folder), *extra]
    env = dict(ONLINE, **({"HF_TOKEN": token} if token else {}))
    return run_cli(*args, env=env, timeout=120)


def same_files(folder: Path, original: Path) -> bool:
    names = sorted(p.name for p in original.iterdir() if p.is_file())
    got = sorted(p.name for p in folder.iterdir() if p.is_file())
    return names == got and all(
        (folder / n).read_bytes() == (original / n).read_bytes() for n in names
    )


def test_download_into_a_folder_checks_and_records_every_file(
    fake_hub: Any, tiny_model_dir: Path, tmp_path: Path
) -> None:
    proc = download(tmp_path / "csm")
    assert proc.returncode == 0, proc.stderr
    assert same_files(tmp_path / "csm", tiny_model_dir)
    assert resolve_model(str(tmp_path / "csm")) == tmp_path / "csm"
    assert model_revision(tmp_path / "csm") == fake_hub.repos["sesame/csm-1b"].commit
    assert partial_bytes(tmp_path / "csm") == 0
    # a second run finds every file checked and fetches nothing
    fake_hub.ranges.clear()
    again = download(tmp_path / "csm")
    assert again.returncode == 0, again.stderr
    assert fake_hub.ranges == []


def test_a_killed_download_goes_on_from_the_byte_it_reached(
    fake_hub: Any, tiny_model_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "csm"
    fake_hub.bytes_per_second = 2e6
    command = [sys.executable, "-m", "desktop_app", "download-model", "--dir", str(folder)]
    reports = []
    with subprocess.Popen(
        [*command, "--progress-json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=cli_env(dict(ONLINE, HF_TOKEN=GOOD_TOKEN)),
        cwd=REPO,
    ) as child:
        assert child.stdout is not None
        for line in child.stdout:
            reports.append(json.loads(line))
            if reports[-1].get("file") == WEIGHTS and reports[-1]["done"] > 1_500_000:
                break
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    dones = [r["done"] for r in reports]
    assert dones == sorted(dones) and reports[-1]["total"] == sum(
        p.stat().st_size for p in tiny_model_dir.iterdir()
    )
    reached = partial_bytes(folder)
    assert 1_000_000 < reached < (tiny_model_dir / WEIGHTS).stat().st_size
    assert not (folder / WEIGHTS).exists()

    fake_hub.bytes_per_second = None
    proc = download(folder)
    assert proc.returncode == 0, proc.stderr
    assert (WEIGHTS, reached) in fake_hub.ranges  # asked only for the rest
    assert "already here" in proc.stderr
    assert same_files(folder, tiny_model_dir)
    assert not list((folder / WORK_DIR).rglob("*.part"))


def test_a_damaged_file_is_removed_and_named(fake_hub: Any, tmp_path: Path) -> None:
    fake_hub.damaged.add(WEIGHTS)
    proc = download(tmp_path / "csm")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: {WEIGHTS} arrived damaged (its checksum does not match the hub's); it was "
        "removed: download again"
    )
    assert not (tmp_path / "csm" / WEIGHTS).exists() and partial_bytes(tmp_path / "csm") == 0
    fake_hub.damaged.clear()
    assert download(tmp_path / "csm").returncode == 0


def test_licence_and_token_problems_say_what_to_do(fake_hub: Any, tmp_path: Path) -> None:
    gated = download(tmp_path / "a", token=None)
    assert gated.returncode == 2
    assert "accept its licence at https://huggingface.co/sesame/csm-1b" in gated.stderr
    wrong = download(tmp_path / "b", token="hf_wrong")
    assert wrong.returncode == 2 and "the hub refused the access token" in wrong.stderr
    missing = download(tmp_path / "c", "--model", "nobody/nothing")
    assert missing.returncode == 2 and "nobody/nothing was not found on the hub" in missing.stderr
    for proc in (gated, wrong, missing):
        assert "Traceback" not in proc.stderr
    # the listen-back models are not gated: no token needed
    speaker = download(tmp_path / "speaker", "--speaker", token=None)
    assert speaker.returncode == 0, speaker.stderr
