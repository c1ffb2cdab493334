"""Private by default: voices on disk are user-only, and the access token never reaches the log."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from desktop_app import paths
from desktop_app.audio.recorder import Recorder
from desktop_app.library.store import Library
from desktop_app.ui.app import smoke_clip
from desktop_app.ui.main_window import MainWindow
from tests.conftest import run_cli
from tests.support.signals import voiced


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("pulse")
def test_recordings_takes_and_the_library_are_user_only(window: MainWindow, qtbot: QtBot) -> None:
    recorder = Recorder(paths.data_dir() / "recordings")
    raw = recorder.start("private")
    time.sleep(0.3)
    assert mode(raw) == 0o600  # while it is being written, too
    wav = recorder.stop()
    assert mode(wav.parent) == 0o700 and mode(wav) == 0o600
    window.voice.add_clip(smoke_clip())
    window.say.text.setPlainText("Only for me.")
    window.say.max_seconds.setValue(0.4)
    with qtbot.waitSignal(window.take_ready, timeout=60_000) as made:
        qtbot.mouseClick(window.say.generate_button, Qt.MouseButton.LeftButton)
    take = made.args[0]
    assert mode(take.path.parent) == 0o700 and mode(take.path) == 0o600
    library = Library()
    library.voices.add(
        "Mine", [(voiced(3.0, 24_000), "Hello.", "imported")], consent_confirmed=True
    )
    assert mode(library.folder) == 0o700 and mode(library.db_path) == 0o600
    assert all(mode(f) == 0o600 for f in library.audio_dir.rglob("*.wav"))


def test_the_access_token_never_reaches_the_log_nor_the_process_list(app_home: Path) -> None:
    token = "hf_NotARealToken0123456789abcdefXYZ"
    # on the command line (where `ps` shows it to every account) it is refused, in any spelling;
    # an abbreviation (--tok) is not taken for the option: it slipped past the redaction once
    for spelling in (
        ["--token", token],
        [f"--token={token}"],
        ["--tok", token],
        ["--tok=" + token],
    ):
        proc = run_cli("download-model", *spelling)
        assert proc.returncode == 2 and token not in proc.stderr, spelling
        assert proc.stderr.startswith("error: "), proc.stderr
    assert "--token-file" in run_cli("download-model", "--token", token).stderr
    logs = list((app_home / "logs").glob("*.log*"))
    assert logs and all(token not in log.read_text() for log in logs)
    assert any("--token" in log.read_text() for log in logs)  # the command was logged, redacted
    # from a file or the environment it is used (sockets are blocked: the download fails)
    file = app_home / "token"
    file.write_text(token)
    for env, extra in (({}, ["--token-file", str(file)]), ({"HF_TOKEN": token}, [])):
        proc = run_cli("download-model", *extra, env={**env, "HF_HUB_OFFLINE": "0"})
        assert proc.returncode == 2 and token not in proc.stderr
        assert "cannot reach the Hugging Face hub" in proc.stderr
    assert all(token not in log.read_text() for log in app_home.joinpath("logs").glob("*.log*"))
