"""The local API inside the window: served on the engine the window has loaded, its takes made
on the window's worker and shown in the History as they are kept."""

from __future__ import annotations

import threading

import httpx2 as httpx
from pytestqt.qtbot import QtBot

from desktop_app.ui.main_window import MainWindow
from tests.support.signals import voiced


def test_the_window_serves_the_local_api_on_its_own_engine(
    window: MainWindow, qtbot: QtBot
) -> None:
    assert window.library is not None and window.history is not None
    window.library.voices.add("Ada", [(voiced(3.0, 24_000), "I am Ada.", "imported")])
    assert not window.menu_actions["api"].isChecked()  # off by default
    window.settings.local_api_port = 0  # any free port
    window.menu_actions["api"].trigger()
    assert window.menu_actions["api"].isChecked() and window.local_api.address
    assert window.labels.api.text() == f"API: {window.local_api.address}"
    url = window.local_api.address
    health = httpx.get(f"{url}/health").json()
    assert health["status"] == "healthy" and health["engine"] == window.engine_info.engine  # type: ignore[union-attr]
    # the window's server asks for this install's key, kept in a user-only file it names
    from desktop_app.api import keys

    key_file = keys.key_file()
    assert health["auth"] == {"key_required": True, "key": f"the file {key_file}"}
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert httpx.get(f"{url}/v1/audio/voices").status_code == 401
    headers = {"Authorization": f"Bearer {key_file.read_text().strip()}"}

    replies: list[httpx.Response] = []
    body = {"model": "csm-1b", "voice": "Ada", "input": "From another program.",
            "response_format": "wav", "max_seconds": 0.6}  # fmt: skip

    def ask() -> None:
        replies.append(httpx.post(f"{url}/v1/audio/speech", json=body, headers=headers, timeout=60))

    asking = threading.Thread(target=ask)
    with qtbot.waitSignal(window.api_take_kept, timeout=30_000) as kept:
        asking.start()
        # the window's own take, asked meanwhile, shares the worker with the API's
        window.say.text.setPlainText("And one from the window.")
        window.say.max_seconds.setValue(0.6)
        window.generate()
    asking.join(30)
    assert replies[0].status_code == 200
    record = kept.args[0]
    assert record.source == "api" and record.text == "From another program."
    assert record.id in window.history.records  # in the History as soon as it is kept
    qtbot.waitUntil(lambda: not window.generating, timeout=30_000)
    assert window.takes.takes  # the window's take was made as well

    window.menu_actions["api"].trigger()  # off again: nothing listens
    assert window.labels.api.text() == ""
    try:
        httpx.get(f"{url}/health", timeout=2)
        listening = True
    except httpx.HTTPError:
        listening = False
    assert not listening
