"""The library's audio folder: files named by the SHA-256 of their content, written atomically
before any row points at them (so a row never names a half-written file), and the clean-up of
the files nothing points at any more."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import stat
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import soundfile as sf

from desktop_app.files import atomic_write
from desktop_app.library.database import Database, LibraryError

GRACE_SECONDS = 600.0
"""Clean-up never removes a file written or reused this recently: another program may be about
to record a row that points at it."""


STORED_SUFFIXES = (".wav", ".npy", ".json", ".safetensors")
"""What the store writes: audio, codes, and a trained voice's adapter (peft's config, weights)."""


class FileStore:
    """Content-named files under ``folder/audio``; paths kept relative to ``folder``."""

    def __init__(self, folder: Path, db: Database, grace_seconds: float = GRACE_SECONDS) -> None:
        self.folder = folder
        self.audio_dir = folder / "audio"
        self.db = db
        self.grace_seconds = grace_seconds

    def store_audio(self, audio: np.ndarray, rate: int) -> Path:
        """Write audio as a content-named WAV (once; identical audio shares one file)."""
        buffer = io.BytesIO()
        sf.write(buffer, np.asarray(audio, dtype=np.float32), rate, format="WAV", subtype="FLOAT")
        return self._store(buffer.getvalue(), ".wav")

    def store_codes(self, codes: np.ndarray) -> Path:
        """Write a take's codes (frames x codebooks) as a content-named .npy (once)."""
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(codes, dtype=np.int64))
        return self._store(buffer.getvalue(), ".npy")

    def store_bytes(self, data: bytes, suffix: str) -> Path:
        """Write ``data`` once, named by its SHA-256 (an adapter's files), in the audio folder."""
        if suffix not in STORED_SUFFIXES:
            raise ValueError(f"the file store keeps {', '.join(STORED_SUFFIXES)} files only")
        return self._store(data, suffix)

    def _store(self, data: bytes, suffix: str) -> Path:
        """Write ``data`` once, named by its SHA-256, in the audio folder."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.audio_dir / digest[:2] / f"{digest}{suffix}"
        try:
            os.utime(target)  # reused: clean-up leaves a file touched this recently alone
        except FileNotFoundError:
            target.parent.mkdir(exist_ok=True)
            with atomic_write(target, permissions=0o600) as handle:
                handle.write(data)
        except OSError as exc:
            raise LibraryError(f"cannot write to the library: {exc.strerror or exc}") from exc
        return target

    def relative(self, file: Path) -> str:
        """How a row names ``file``."""
        return file.relative_to(self.folder).as_posix()

    # -- clean-up ------------------------------------------------------------------------------

    def referenced(self) -> set[Path]:
        """Every file of the audio folder a clip, a take or a conversation line points at."""
        rows = self.db.rows(
            "SELECT file FROM clips UNION SELECT file FROM takes "
            "UNION SELECT codes_file FROM conversation_lines "
            "UNION SELECT config_file FROM adapters UNION SELECT weights_file FROM adapters"
        )
        return {(self.folder / row[0]).resolve() for row in rows}

    def unreferenced(self, keep: Iterable[Path] = ()) -> list[Path]:
        """Files of the audio folder nothing points at any more, except those in ``keep`` (what
        an undo could bring back) and those written or reused in the last ``grace_seconds``."""
        held = self.referenced() | {Path(f).resolve() for f in keep}
        settled = time.time() - self.grace_seconds
        found = []
        for f in self.audio_dir.rglob("*"):
            if f.suffix not in STORED_SUFFIXES or f.resolve() in held:
                continue
            with contextlib.suppress(FileNotFoundError):  # another program removed it
                info = f.stat()
                if stat.S_ISREG(info.st_mode) and info.st_mtime < settled:
                    found.append(f)
        return sorted(found)

    def remove(self, files: Iterable[Path], keep: Iterable[Path] = ()) -> tuple[int, int]:
        """Delete those of ``files`` that are still unreferenced; how many and how many bytes.

        Decided and done inside one write transaction: no other program can record a row that
        points at a file between the check and the removal, and a file it is about to record was
        written or touched moments before (inside the grace period).
        """
        count = size = 0
        with self.db.transaction():
            still = set(self.unreferenced(keep))
            for file in files:
                if file in still:
                    with contextlib.suppress(FileNotFoundError):
                        size += file.stat().st_size
                        file.unlink()
                        count += 1
        return count, size
