"""A trained voice's LoRA adapter, kept with the voice: peft's two files (its config and its
weights) in the content-named file store, byte for byte, and what the studio knows of it.

An adapter is read back as a folder in peft's own layout (:meth:`Adapters.write_folder`), so it
loads in transformers + peft anywhere, and a voice bundle carries it unchanged.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desktop_app.inference.adapter import CONFIG_NAME, WEIGHTS_NAME  # peft's file names
from desktop_app.library.database import Database, LibraryError
from desktop_app.library.files import FileStore
from desktop_app.library.voices import Voices


@dataclass(frozen=True)
class AdapterRecord:
    """Where a voice's adapter files are and what the studio knows of it."""

    voice: str
    config_file: Path
    weights_file: Path
    info: dict[str, Any]
    created: float


class Adapters:
    """Attach, read and detach the adapter of a voice (at most one per voice)."""

    def __init__(self, db: Database, files: FileStore, voices: Voices) -> None:
        self.db, self.files, self.voices = db, files, voices

    def attach(self, voice: str, folder: Path, info: dict[str, Any]) -> AdapterRecord:
        """Keep the peft adapter in ``folder`` with ``voice`` (replacing one it had).

        Raises:
            LibraryError: no such voice, or the folder is not a peft adapter.
        """
        voice_id = self.voices.get(voice).id
        try:
            config = (folder / CONFIG_NAME).read_bytes()
            weights = (folder / WEIGHTS_NAME).read_bytes()
        except OSError as exc:
            raise LibraryError(
                f"{folder} is not a trained voice's adapter (it needs {CONFIG_NAME} and "
                f"{WEIGHTS_NAME})"
            ) from exc
        config_file = self.files.store_bytes(config, ".json")
        weights_file = self.files.store_bytes(weights, ".safetensors")
        with self.db.transaction():
            self.db.execute("DELETE FROM adapters WHERE voice_id = ?", (voice_id,))
            self.db.insert(
                "adapters",
                {
                    "voice_id": voice_id,
                    "config_file": self.files.relative(config_file),
                    "weights_file": self.files.relative(weights_file),
                    "info": json.dumps(info),
                    "created": time.time(),
                },
            )
        record = self.get(voice)
        assert record is not None
        return record

    def get(self, voice: str) -> AdapterRecord | None:
        """The voice's adapter, None when it has none.

        Raises:
            LibraryError: no such voice.
        """
        voice_id = self.voices.get(voice).id
        rows = self.db.rows(
            "SELECT config_file, weights_file, info, created FROM adapters WHERE voice_id = ?",
            (voice_id,),
        )
        if not rows:
            return None
        row = rows[0]
        return AdapterRecord(
            voice,
            self.files.folder / row["config_file"],
            self.files.folder / row["weights_file"],
            json.loads(row["info"]),
            float(row["created"]),
        )

    def write_folder(self, voice: str, target: Path) -> Path | None:
        """The voice's adapter written into ``target`` in peft's layout (byte for byte), or None
        when it has none."""
        record = self.get(voice)
        if record is None:
            return None
        target.mkdir(parents=True, exist_ok=True)
        (target / CONFIG_NAME).write_bytes(record.config_file.read_bytes())
        (target / WEIGHTS_NAME).write_bytes(record.weights_file.read_bytes())
        return target

    def update_info(self, voice: str, info: dict[str, Any]) -> None:
        """Replace what the studio knows of the voice's adapter (an evaluation's table)."""
        voice_id = self.voices.get(voice).id
        with self.db.transaction():
            self.db.execute(
                "UPDATE adapters SET info = ? WHERE voice_id = ?", (json.dumps(info), voice_id)
            )

    def detach(self, voice: str) -> bool:
        """Forget the voice's adapter (its files go with the next clean-up); False if none."""
        voice_id = self.voices.get(voice).id
        with self.db.transaction():
            cursor = self.db.execute("DELETE FROM adapters WHERE voice_id = ?", (voice_id,))
        return cursor.rowcount > 0
