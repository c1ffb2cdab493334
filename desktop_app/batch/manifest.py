"""The output folder's record of what is finished, so that a batch can be run again and go on.

``batch-manifest.jsonl`` holds one JSON object per finished line, appended (and fsynced) only
after its file is complete: the input line, text, voice, settings, seed, file, the SHA-256 of
the file and of the codes, and the line's key. The key hashes what makes the line what it is
(text, voice, file name, settings, model, and the seed when one was given), so a changed line
or setting is made again and only that. A line counts as done when an entry has its key and
its file is still there with that hash. A torn last line (a killed run) is ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

NAME = "batch-manifest.jsonl"


def line_key(text: str, voice: str | None, file: str, settings: dict[str, Any], model: str) -> str:
    """What identifies a line's take: the same key, the same take (to the seed)."""
    data = json.dumps(
        {"text": text, "voice": voice, "file": file, "settings": settings, "model": model},
        sort_keys=True,
    )
    return hashlib.sha256(data.encode()).hexdigest()[:32]


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Manifest:
    """The finished lines of one output folder."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / NAME
        self.entries: list[dict[str, Any]] = []
        self._latest: dict[str, dict[str, Any]] = {}  # key -> its newest entry
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            text = ""
        self._torn = bool(text) and not text.endswith("\n")  # a killed run's half line
        for row in text.splitlines():
            try:
                entry = json.loads(row)
            except ValueError:
                continue  # the torn end of a killed run
            if isinstance(entry, dict) and "key" in entry:
                self.entries.append(entry)
                self._latest[entry["key"]] = entry

    def done(self, key: str, file: Path) -> dict[str, Any] | None:
        """The entry of a finished take with this key whose file is intact, if any."""
        entry = self._latest.get(key)
        if entry is None or entry.get("file") != file.name:
            return None
        try:
            return entry if file_hash(file) == entry.get("sha256") else None
        except OSError:
            return None

    def add(self, entry: dict[str, Any]) -> None:
        """Append a finished line (its file is complete on disk already)."""
        self.entries.append(entry)
        self._latest[entry["key"]] = entry
        data = (json.dumps(entry, sort_keys=True) + "\n").encode()
        if self._torn:  # end the half line first, so that this entry stands on its own line
            data = b"\n" + data
            self._torn = False
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
