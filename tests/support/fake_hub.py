"""A small Hugging Face hub on the loopback for the download tests: the two routes the app's
download uses (a model's info with file sizes and checksums; a file, with HTTP Range), gated repos
and tokens as the real hub answers them, and knobs a test turns (a speed limit, a damaged file).

The answers follow what huggingface_hub reads: ``siblings`` with ``size``, ``blobId`` and
``lfs.sha256``; errors with ``X-Error-Code`` / ``X-Error-Message``. A child process reaches it
through ``HF_ENDPOINT``.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

LFS_SUFFIXES = (".safetensors", ".bin")
GOOD_TOKEN = "hf_FakeHubAcceptedToken"


def git_oid(data: bytes) -> str:
    """The git blob id of ``data``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


@dataclass
class Repo:
    folder: Path
    gated: bool = False

    def files(self) -> dict[str, Path]:
        return {
            str(p.relative_to(self.folder)): p
            for p in sorted(self.folder.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.parts)
        }

    @property
    def commit(self) -> str:
        digest = hashlib.sha1(usedforsecurity=False)
        for name, path in self.files().items():
            digest.update(name.encode() + path.read_bytes())
        return digest.hexdigest()


@dataclass
class FakeHub:
    repos: dict[str, Repo] = field(default_factory=dict)
    bytes_per_second: float | None = None  # None: as fast as the loopback goes
    damaged: set[str] = field(default_factory=set)  # file names served with one byte changed
    ranges: list[tuple[str, int]] = field(default_factory=list)  # (file, first byte) per GET
    url: str = ""  # set by the tests' fixture

    def add(self, repo_id: str, folder: Path, gated: bool = False) -> None:
        self.repos[repo_id] = Repo(folder, gated)

    def reset(self) -> None:
        self.bytes_per_second = None
        self.damaged.clear()
        self.ranges.clear()

    # -- routes ----------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/models/{owner}/{name}/revision/{revision}", self.info),
                Route("/api/models/{owner}/{name}", self.info),
                Route(
                    "/{owner}/{name}/resolve/{revision}/{path:path}",
                    self.resolve,
                    methods=["GET", "HEAD"],
                ),
            ]
        )

    def _repo(self, request: Request) -> tuple[str, Repo | None]:
        repo_id = f"{request.path_params['owner']}/{request.path_params['name']}"
        return repo_id, self.repos.get(repo_id)

    @staticmethod
    def _error(status: int, code: str | None, message: str) -> Response:
        headers = {"X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    def _auth_problem(self, request: Request, repo: Repo, files: bool) -> Response | None:
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ") if header else ""
        if token and token != GOOD_TOKEN:
            return self._error(401, None, "Invalid credentials in Authorization header")
        if repo.gated and files and not token:
            return self._error(401, "GatedRepo", "Access to this model is restricted")
        return None

    async def info(self, request: Request) -> Response:
        repo_id, repo = self._repo(request)
        if repo is None:
            return self._error(404, "RepoNotFound", "Repository not found")
        if problem := self._auth_problem(request, repo, files=False):
            return problem
        siblings = []
        for name, path in repo.files().items():
            data = path.read_bytes()
            sibling: dict[str, object] = {
                "rfilename": name,
                "size": len(data),
                "blobId": git_oid(data),
            }
            if name.endswith(LFS_SUFFIXES):
                sha = hashlib.sha256(data).hexdigest()
                sibling["lfs"] = {"size": len(data), "sha256": sha, "pointerSize": 134}
            siblings.append(sibling)
        return JSONResponse(
            {
                "id": repo_id,
                "modelId": repo_id,
                "sha": repo.commit,
                "private": False,
                "gated": "manual" if repo.gated else False,
                "siblings": siblings,
            }
        )

    async def resolve(self, request: Request) -> Response:
        _, repo = self._repo(request)
        if repo is None:
            return self._error(404, "RepoNotFound", "Repository not found")
        if problem := self._auth_problem(request, repo, files=True):
            return problem
        name = request.path_params["path"]
        path = repo.files().get(name)
        if path is None:
            return self._error(404, "EntryNotFound", "Entry not found")
        data = path.read_bytes()
        if name in self.damaged:
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        start = 0
        wanted = request.headers.get("range", "")
        if wanted.startswith("bytes=") and wanted.endswith("-"):
            start = int(wanted[len("bytes=") : -1])
        headers = {
            "X-Repo-Commit": repo.commit,
            "ETag": f'"{git_oid(data)}"',
            "Accept-Ranges": "bytes",
        }
        if request.method == "HEAD":
            return Response(headers={**headers, "Content-Length": str(len(data))})
        self.ranges.append((name, start))
        status = 206 if start else 200
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        headers["Content-Length"] = str(len(data) - start)
        return StreamingResponse(self._body(data[start:]), status_code=status, headers=headers)

    async def _body(self, data: bytes) -> AsyncIterator[bytes]:
        block = 16 * 1024
        for offset in range(0, len(data), block):
            yield data[offset : offset + block]
            if self.bytes_per_second:
                await asyncio.sleep(block / self.bytes_per_second)
