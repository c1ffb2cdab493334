"""Resumable, checked downloads of a checkpoint into a folder: the first-run guide's download and
``download-model --dir``.

Why not ``snapshot_download`` here: huggingface_hub 2.x downloads each file to a process-unique
temporary name and deletes it when the download stops (huggingface_hub PR 4228), so a download
cancelled, or cut by a closed lid, starts that file again from zero; for CSM-1B, one 6 GB file,
that is the whole download. Here each file grows in ``<folder>/.download/<name>.<digest>.part``,
and a later run (another process, days later) asks for the rest with an HTTP Range request. The
hub's client still does what it does well: the file list with sizes and checksums
(``model_info``), the URLs, the token's headers, the HTTP session and its error classes.

Every file is checked before it is put in place: LFS files against the SHA-256 the hub lists,
the small ones against their git blob id (SHA-1 of ``blob <size>\\0`` + content).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from desktop_app.errors import ModelDownloadError

WORK_DIR = ".download"
"""Inside the target folder: the partial files and the record of the checked ones."""

CHUNK = 1 << 20
SOURCE_FILE = "source.json"
"""In WORK_DIR: the repository, the commit and each checked file's checksum."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of a hub repository as its listing gives it."""

    name: str
    size: int
    sha256: str | None = None  # LFS files
    git_oid: str | None = None  # every file: the git blob id

    @property
    def checksum(self) -> str:
        """What the downloaded bytes must hash to ("size:N" when the hub lists no checksum)."""
        return self.sha256 or self.git_oid or f"size:{self.size}"

    def new_hash(self) -> Any:
        """A hash object fed as the download goes; its hexdigest() must equal ``checksum``."""
        if self.sha256:
            return hashlib.sha256()
        if self.git_oid:
            digest = hashlib.sha1(usedforsecurity=False)
            digest.update(b"blob %d\0" % self.size)
            return digest
        return _SizeOnly(self.size)


class _SizeOnly:
    def __init__(self, size: int) -> None:
        self.size = size
        self.seen = 0

    def update(self, block: bytes) -> None:
        self.seen += len(block)

    def hexdigest(self) -> str:
        return f"size:{self.seen}"


@dataclass(frozen=True)
class Plan:
    """What a download fetches: a repository at one commit, and its files."""

    repo_id: str
    commit: str
    files: tuple[RemoteFile, ...]

    @property
    def total(self) -> int:
        """Bytes of every file in the plan."""
        return sum(f.size for f in self.files)


@dataclass(frozen=True)
class Progress:
    """Where a download is: ``done`` of ``total`` bytes (those already on disk included)."""

    done: int
    total: int
    file: str


def plan_download(
    repo_id: str, token: str | None, revision: str | None, patterns: Iterable[str]
) -> Plan:
    """The files of ``repo_id`` that match ``patterns``, with sizes and checksums, at one commit."""
    from huggingface_hub import HfApi

    wanted = list(patterns)
    info = HfApi().model_info(repo_id, revision=revision, token=token, files_metadata=True)
    files = tuple(
        RemoteFile(
            name=s.rfilename,
            size=s.size or 0,
            sha256=s.lfs.sha256 if s.lfs is not None else None,
            git_oid=s.blob_id,
        )
        for s in info.siblings or []
        if any(fnmatch(s.rfilename, pattern) for pattern in wanted)
    )
    return Plan(repo_id, info.sha or revision or "main", files)


def missing_bytes(plan: Plan, folder: Path) -> tuple[int, int]:
    """(bytes already here: checked files and partial ones, bytes still to fetch)."""
    checked = _checked(folder)
    have = 0
    for f in plan.files:
        if _is_checked(folder, f, checked):
            have += f.size
        elif (part := _part_path(folder, f)).exists():
            have += min(part.stat().st_size, f.size)
    return have, plan.total - have


def partial_bytes(folder: Path) -> int:
    """Bytes of unfinished files in ``folder`` (what a resumed download starts from)."""
    work = folder / WORK_DIR
    return sum(p.stat().st_size for p in work.rglob("*.part")) if work.is_dir() else 0


def fetch(
    plan: Plan,
    folder: Path,
    token: str | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> Path:
    """Download the files of ``plan`` into ``folder``, resuming partial ones; check each one.

    Raises:
        ModelDownloadError: no space, a file that arrives damaged (it is removed), or a file cut
            short; the hub's own errors (token, licence, network) are the caller's to translate.
    """
    folder.mkdir(parents=True, exist_ok=True)
    checked = _checked(folder)
    needed = [f for f in plan.files if not _is_checked(folder, f, checked)]
    _check_space(folder, missing_bytes(plan, folder)[1])
    done = plan.total - sum(f.size for f in needed)
    for remote in needed:
        done = _fetch_file(plan, remote, folder, token, done, on_progress)
        checked[remote.name] = remote.checksum
        _write_source(folder, plan, checked)
    if not needed:  # every file was here: still record the commit it was checked against
        _write_source(folder, plan, checked)
    return folder


def source_of(folder: Path) -> dict[str, Any]:
    """The repository and commit a folder was downloaded from ({} when it was not)."""
    try:
        data = json.loads((folder / WORK_DIR / SOURCE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _fetch_file(
    plan: Plan,
    remote: RemoteFile,
    folder: Path,
    token: str | None,
    done: int,
    on_progress: Callable[[Progress], None] | None,
) -> int:
    from huggingface_hub import get_session, hf_hub_url
    from huggingface_hub.utils import build_hf_headers, hf_raise_for_status

    part = _part_path(folder, remote)
    part.parent.mkdir(parents=True, exist_ok=True)
    digest = remote.new_hash()
    have = part.stat().st_size if part.exists() else 0
    if have > remote.size:
        part.unlink()
        have = 0
    if have:
        with part.open("rb") as handle:
            while block := handle.read(CHUNK):
                digest.update(block)
    if have < remote.size:
        headers = build_hf_headers(token=token)
        if have:
            headers["Range"] = f"bytes={have}-"
        url = hf_hub_url(plan.repo_id, remote.name, revision=plan.commit)
        with get_session().stream(
            "GET", url, headers=headers, follow_redirects=True, timeout=60
        ) as response:
            if response.status_code >= 400:
                response.read()
                hf_raise_for_status(response)
            if have and response.status_code != 206:  # the server sent the whole file again
                digest, have = remote.new_hash(), 0
            with part.open("ab" if have else "wb") as out:
                for block in response.iter_bytes(CHUNK):
                    out.write(block)
                    digest.update(block)
                    have += len(block)
                    if on_progress is not None:
                        on_progress(Progress(done + have, plan.total, remote.name))
                out.flush()
                os.fsync(out.fileno())
    if have != remote.size:
        raise ModelDownloadError(
            f"{remote.name} stopped at {have:,} of {remote.size:,} bytes; download again: it "
            f"goes on from there"
        )
    if digest.hexdigest() != remote.checksum:
        part.unlink()
        raise ModelDownloadError(
            f"{remote.name} arrived damaged (its checksum does not match the hub's); it was "
            f"removed: download again"
        )
    target = folder / remote.name
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(part, target)
    if on_progress is not None:
        on_progress(Progress(done + remote.size, plan.total, remote.name))
    return done + remote.size


def _part_path(folder: Path, remote: RemoteFile) -> Path:
    # the expected checksum in the name: a file changed upstream never grows an old part
    tag = remote.checksum.replace("size:", "s")[:16]
    return folder / WORK_DIR / f"{remote.name}.{tag}.part"


def _checked(folder: Path) -> dict[str, str]:
    files = source_of(folder).get("files", {})
    return {str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else {}


def _is_checked(folder: Path, remote: RemoteFile, checked: dict[str, str]) -> bool:
    target = folder / remote.name
    return (
        checked.get(remote.name) == remote.checksum
        and target.is_file()
        and target.stat().st_size == remote.size
    )


def _write_source(folder: Path, plan: Plan, checked: dict[str, str]) -> None:
    work = folder / WORK_DIR
    work.mkdir(parents=True, exist_ok=True)
    record = {"repo_id": plan.repo_id, "commit": plan.commit, "files": checked}
    temporary = work / f"{SOURCE_FILE}.tmp"
    temporary.write_text(json.dumps(record, indent=1, sort_keys=True))
    os.replace(temporary, work / SOURCE_FILE)


def _check_space(folder: Path, missing: int) -> None:
    free = shutil.disk_usage(folder).free
    margin = 64 * 2**20
    if missing + margin > free:
        raise ModelDownloadError(
            f"not enough disk space in {folder}: the download needs {missing / 1e9:.1f} GB more "
            f"and {free / 1e9:.1f} GB are free; free some space or choose another folder"
        )
