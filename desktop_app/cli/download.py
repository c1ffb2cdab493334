"""``download-model``: the one command that uses the network."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from desktop_app import defaults
from desktop_app.cli import common
from desktop_app.cli.common import EXIT_OK
from desktop_app.errors import RequestError
from desktop_app.files import read_secret

if TYPE_CHECKING:
    from desktop_app.inference.fetch import Progress


def register(sub: Any) -> None:
    """Add ``download-model`` to the sub-command parser ``sub``."""
    download = sub.add_parser(
        "download-model", help="download a checkpoint (needs network): CSM-1B by default"
    )
    download.add_argument(
        "--model", default=None, help=f"hub id to download (default: {defaults.MODEL_ID})"
    )
    which = download.add_mutually_exclusive_group()
    which.add_argument(
        "--asr",
        action="store_true",
        help=f"the speech-recognition model instead ({defaults.ASR_MODEL_ID} where CUDA is "
        f"available, else {defaults.ASR_MODEL_ID_CPU})",
    )
    which.add_argument(
        "--speaker",
        action="store_true",
        help=f"the speaker-verification model instead ({defaults.SPEAKER_MODEL_ID})",
    )
    download.add_argument(
        "--token-file",
        default=None,
        metavar="F",
        help="a file holding the Hugging Face access token (default: $HF_TOKEN or a saved login)",
    )
    # refused: a token on the command line is visible to every account in the process list
    download.add_argument("--token", dest="token_on_command_line", help=argparse.SUPPRESS)
    download.add_argument(
        "--dir", default=None, help="download into this folder instead of the cache"
    )
    download.add_argument("--revision", default=None, help="branch, tag or commit")
    # for the window's first-run guide: one JSON object per line on stdout as bytes arrive
    download.add_argument("--progress-json", action="store_true", help=argparse.SUPPRESS)
    download.set_defaults(handler=run, online=True)


def run(args: argparse.Namespace) -> int:
    """Download the checkpoint (with resume) into the hub cache or ``--dir``."""
    from desktop_app.inference import model_store

    kind = model_store.ASR if args.asr else model_store.SPEAKER if args.speaker else model_store.CSM
    repo_id = args.model or _default_for(kind)
    if args.token_on_command_line is not None:
        raise RequestError(
            "--token would show the token to every account on this machine (in the process "
            "list): put it in a file for --token-file, or in $HF_TOKEN"
        )
    token = read_secret(args.token_file, "access token") if args.token_file else None
    token = token or os.environ.get("HF_TOKEN") or None
    with ByteReport(as_json=args.progress_json) as report:
        folder = model_store.download_model(
            repo_id,
            token=token,
            local_dir=Path(args.dir).expanduser() if args.dir else None,
            revision=args.revision,
            progress=common.status,
            kind=kind,
            on_bytes=report.update,
        )
    if args.progress_json:
        print(json.dumps({"folder": str(folder)}), flush=True)
        return EXIT_OK
    print(f"downloaded {repo_id} to {folder}")
    if args.dir:
        print(f"use it with: python -m desktop_app clone {kind.option} {folder} ...")
    return EXIT_OK


class ByteReport:
    """Bytes as they arrive: a tqdm bar on a terminal, or JSON lines (at most ~10 a second)."""

    EVERY_S = 0.1

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self._bar: Any = None
        self._last = 0.0

    def update(self, progress: Progress) -> None:
        """An ``on_bytes`` callback of download_model."""
        if self.as_json:
            now = time.monotonic()
            if now - self._last >= self.EVERY_S or progress.done == progress.total:
                self._last = now
                line = {"done": progress.done, "total": progress.total, "file": progress.file}
                print(json.dumps(line), flush=True)
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(
                total=progress.total,
                initial=progress.done,
                unit="B",
                unit_scale=True,
                file=sys.stderr,
                disable=not sys.stderr.isatty(),
            )
        self._bar.n = progress.done
        self._bar.set_description_str(progress.file, refresh=True)

    def __enter__(self) -> ByteReport:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()


def _default_for(kind: object) -> str:
    from desktop_app.inference import model_store

    if kind is model_store.ASR:
        import torch

        return defaults.asr_model_for("cuda" if torch.cuda.is_available() else "cpu")
    if kind is model_store.SPEAKER:
        return defaults.SPEAKER_MODEL_ID
    return defaults.MODEL_ID
