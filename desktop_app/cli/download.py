"""``download-model``: the one command that uses the network."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from desktop_app.cli import common
from desktop_app.cli.common import EXIT_OK


def register(sub: Any) -> None:
    """Add ``download-model`` to the sub-command parser ``sub``."""
    download = sub.add_parser("download-model", help="download the checkpoint (needs network)")
    common.add_model_argument(download, "hub id to download")
    download.add_argument(
        "--token",
        default=None,
        help="Hugging Face access token (default: $HF_TOKEN or a saved login)",
    )
    download.add_argument(
        "--dir", default=None, help="download into this folder instead of the cache"
    )
    download.add_argument("--revision", default=None, help="branch, tag or commit")
    download.set_defaults(handler=run, online=True)


def run(args: argparse.Namespace) -> int:
    """Download the checkpoint (with resume) into the hub cache or ``--dir``."""
    from desktop_app.inference.model_store import download_model

    token = args.token or os.environ.get("HF_TOKEN") or None
    folder = download_model(
        args.model,
        token=token,
        local_dir=Path(args.dir).expanduser() if args.dir else None,
        revision=args.revision,
        progress=common.status,
    )
    print(f"downloaded {args.model} to {folder}")
    if args.dir:
        print(f"use it with: python -m desktop_app clone --model {folder} ...")
    return EXIT_OK
