"""Shared fixtures: an isolated app home, no network, and the tiny random CSM checkpoint."""

from __future__ import annotations

import gc
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import bundle_build
from tests.support.pulse import ensure_pulseaudio, stop_pulseaudio

REPO = Path(__file__).resolve().parents[1]
NONET = Path(__file__).parent / "support" / "nonet"

# Before anything imports sounddevice: real audio I/O goes to a private PulseAudio null sink.
# Under pytest-xdist each worker starts a server of its own (what one worker's test plays never
# reaches another's microphone), not the one the controlling process may have started.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.pop("CSM_TEST_PULSE", None)
    # and the machine's cores are shared out among the workers (the processes they start
    # inherit it): two workers each spinning torch's and onnxruntime's threads on all cores ran
    # the pass slower than one process did
    _share = max(1, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, str(_share))
PULSE_PROBLEM = ensure_pulseaudio()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop the private PulseAudio server and any bundle build still running."""
    stop_pulseaudio()
    bundle_build.stop()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the bundle's build now if a packaging test will run: it overlaps the other tests."""
    if any(Path(str(item.fspath)).parent.name == "packaging" for item in session.items):
        bundle_build.start(REPO)


# Before anything imports huggingface_hub: the tests never reach the hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by folder: tests/gui -> gui, tests/audio -> audio_hw, tests/hardening ->
    hardening (plus gui/audio_hw where a hardening test drives the window or the sound server)."""
    tests_dir = Path(__file__).parent
    for item in items:
        folder = Path(str(item.fspath)).relative_to(tests_dir).parts[0]
        if folder == "gui":
            item.add_marker(pytest.mark.gui)
        elif folder == "audio":
            item.add_marker(pytest.mark.audio_hw)
        elif folder == "hardening":
            item.add_marker(pytest.mark.hardening)
            fixtures = getattr(item, "fixturenames", ())
            if "window" in fixtures or "qtbot" in fixtures:
                item.add_marker(pytest.mark.gui)
            if "pulse" in fixtures:
                item.add_marker(pytest.mark.audio_hw)


_SHARED_CACHE: list[Path] = []


def shared_weight_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not _SHARED_CACHE:
        _SHARED_CACHE.append(tmp_path_factory.mktemp("weight-cache"))
    return _SHARED_CACHE[0]


@pytest.fixture(autouse=True)
def app_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own settings, data, logs and an empty model cache."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("CSM_STUDIO_HOME", str(home))
    # a busy library is refused after 2 s here, not 10: the tests that hold its lock wait less
    monkeypatch.setenv("CSM_STUDIO_LIBRARY_WAIT", "2")
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hf-cache"))
    # the packed weights of the test checkpoints are made once per session, not per test (the
    # tests of the cache itself point it elsewhere)
    monkeypatch.setenv("CSM_STUDIO_CACHE", str(shared_weight_cache(tmp_path_factory)))
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(home / "hf-cache"))
    return home


@pytest.fixture(autouse=True)
def qt_objects_freed_before_the_next_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a Qt test (once pytest-qt has closed its widgets and their inference threads have
    stopped), delete what deleteLater() left and collect the garbage now. Otherwise the closed
    windows are deleted, and their Python wrappers collected, inside the next test's event
    loop, while that test's worker thread is loading a model (a crash in the garbage collector
    seen once in a fresh-clone run of .ci/run)."""
    yield
    if "qtbot" in request.fixturenames:
        from PySide6.QtCore import QCoreApplication, QEvent

        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        gc.collect()


@pytest.fixture(autouse=True)
def quit_without_asking(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Qt test's window closes without the "stop it and quit?" question (a modal box would
    wait for a click nobody gives); a test of the question sets ``window.confirm_quit``."""
    if "qtbot" in request.fixturenames:
        from desktop_app.ui.main_window import MainWindow

        monkeypatch.setattr(MainWindow, "_ask_to_quit", lambda self, question: True)


LOOPBACK = ("127.0.0.1", "::1", "localhost")


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Internet sockets fail inside the test process (local AF_UNIX ones and this machine's
    loopback, where the local API's tests talk to their server, still work)."""

    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) else ""
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in LOOPBACK:
            raise OSError(f"network access blocked by the test: connect to {address!r}")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random CSM checkpoint on disk (tokenizer, processor, config, safetensors)."""
    from desktop_app.inference.random_checkpoint import build_random_checkpoint

    return build_random_checkpoint(tmp_path_factory.mktemp("tiny-csm"))


@pytest.fixture(scope="session")
def tiny_engine(tiny_model_dir: Path) -> object:
    """The transformers engine with the tiny checkpoint, loaded once."""
    from desktop_app.inference import load_engine

    return load_engine("transformers", tiny_model_dir, "cpu")


@pytest.fixture
def pulse() -> None:
    """Real audio through the private PulseAudio server (vsink + vmic); fails if it is missing."""
    if PULSE_PROBLEM:
        pytest.fail(f"no test audio server: {PULSE_PROBLEM}")


def cli_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a CLI child process: this one's, plus ``env``, with sockets blocked."""
    child_env = dict(os.environ)
    child_env.update(env or {})
    child_env["PYTHONPATH"] = os.pathsep.join([str(NONET), str(REPO)])
    return child_env


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m desktop_app ARGS`` in a child process whose network sockets are blocked."""
    return subprocess.run(
        [sys.executable, "-m", "desktop_app", *args],
        capture_output=True,
        text=True,
        env=cli_env(env),
        timeout=timeout,
        cwd=REPO,
        check=False,
    )


@pytest.fixture
def window(qtbot: Any, tiny_model_dir: Path) -> Any:
    """The studio window, shown, with the tiny checkpoint loaded through its worker thread."""
    from desktop_app.config import Settings
    from desktop_app.ui.app import build_window

    win = build_window(Settings(model=str(tiny_model_dir)))
    qtbot.addWidget(win)
    win.resize(1280, 820)  # wider than the offscreen screen (800 x 800): the desktop's size
    win.show()
    with qtbot.waitSignal(win.model_ready, timeout=60_000):
        win.loader.load(str(tiny_model_dir))
    return win


@pytest.fixture(scope="session")
def tiny_whisper_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Whisper checkpoint that hears WHISPER_SAYS in any speech."""
    from desktop_app.inference.random_checkpoint import build_random_whisper

    return build_random_whisper(tmp_path_factory.mktemp("tiny-whisper"))


@pytest.fixture(scope="session")
def tiny_speaker_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random WavLM x-vector checkpoint."""
    from desktop_app.inference.random_checkpoint import build_random_speaker_model

    return build_random_speaker_model(tmp_path_factory.mktemp("tiny-speaker"))


@pytest.fixture(scope="session")
def recognizer(tiny_whisper_dir: Path) -> Any:
    """The tiny Whisper, loaded once through the app's offline path."""
    from desktop_app.inference.asr import SpeechRecognizer
    from desktop_app.inference.model_store import ASR, resolve_model

    return SpeechRecognizer(resolve_model(str(tiny_whisper_dir), ASR), "cpu")


@pytest.fixture(scope="session")
def speaker_encoder(tiny_speaker_dir: Path) -> Any:
    """The tiny speaker model, loaded once through the app's offline path."""
    from desktop_app.inference.model_store import SPEAKER, resolve_model
    from desktop_app.inference.speaker import SpeakerEncoder

    return SpeakerEncoder(resolve_model(str(tiny_speaker_dir), SPEAKER), "cpu")


@pytest.fixture(scope="session")
def fake_hub_server(
    tiny_model_dir: Path, tiny_whisper_dir: Path, tiny_speaker_dir: Path
) -> Iterator[tuple[Any, str]]:
    """A fake Hugging Face hub on the loopback holding the tiny checkpoints under the default
    ids (CSM gated, as on the real hub); (the hub, its address)."""
    import uvicorn

    from desktop_app import defaults
    from desktop_app.api.server import BackgroundServer
    from tests.support.fake_hub import FakeHub

    hub = FakeHub()
    hub.add(defaults.MODEL_ID, tiny_model_dir, gated=True)
    hub.add(defaults.ASR_MODEL_ID_CPU, tiny_whisper_dir)
    hub.add(defaults.SPEAKER_MODEL_ID, tiny_speaker_dir)
    server = BackgroundServer(uvicorn.Config(hub.app(), host="127.0.0.1", port=0, log_config=None))
    server.start()
    yield hub, server.address
    server.stop()


@pytest.fixture
def fake_hub(
    fake_hub_server: tuple[Any, str], monkeypatch: pytest.MonkeyPatch, app_home: Path
) -> Any:
    """The session's fake hub, reset, and named by HF_ENDPOINT for child processes (whose
    sockets may reach the loopback only; no saved hub login is found); ``fake_hub.url``."""
    hub, url = fake_hub_server
    monkeypatch.setenv("HF_HOME", str(app_home / "hf-home"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    hub.reset()
    hub.url = url
    monkeypatch.setenv("HF_ENDPOINT", url)
    monkeypatch.setenv("NONET_ALLOW_LOOPBACK", "1")
    return hub
