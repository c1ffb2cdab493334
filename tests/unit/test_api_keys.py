"""The local API's per-install key: made once, user-only, the same for two programs starting at
once, replaced on request."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

from desktop_app.api import keys


def test_the_install_key_is_made_once_user_only_and_replaced_on_request(app_home: Path) -> None:
    file = keys.key_file()
    assert not file.exists()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:  # eight programs starting at once
        made = set(pool.map(lambda _: keys.install_key(), range(8)))
    assert len(made) == 1
    key = made.pop()
    assert file.read_text() == key and len(key) >= 40
    assert file.stat().st_mode & 0o777 == 0o600 and file.parent.stat().st_mode & 0o777 == 0o700
    assert keys.install_key() == key  # kept
    new = keys.install_key(new=True)
    assert new != key and file.read_text() == new and file.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in file.parent.iterdir() if p.name.startswith(".")] == []  # no leftovers
