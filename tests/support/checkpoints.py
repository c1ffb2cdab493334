"""Copies of a checkpoint in the layouts a user meets: a folder, a Hugging Face cache entry."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path


def copy_checkpoint(source: Path, dest: Path) -> Path:
    """A private copy of a checkpoint folder that a test may damage."""
    shutil.copytree(source, dest)
    return dest


def install_in_hub_cache(source: Path, cache: Path, repo_id: str) -> Path:
    """Lay out ``source`` as the hub cache does: blobs by hash, a snapshot of links, refs/main."""
    repo_dir = cache / f"models--{repo_id.replace('/', '--')}"
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    snapshot = repo_dir / "snapshots" / commit
    (repo_dir / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    for file in sorted(source.iterdir()):
        blob = repo_dir / "blobs" / hashlib.sha256(file.read_bytes()).hexdigest()
        shutil.copyfile(file, blob)
        (snapshot / file.name).symlink_to(Path("../../blobs") / blob.name)
    (repo_dir / "refs").mkdir(exist_ok=True)
    (repo_dir / "refs" / "main").write_text(commit)
    return snapshot
