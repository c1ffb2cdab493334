"""Command line: ``python -m desktop_app [command]``; without a command the studio window starts.

One module per command (``clone``, ``batch``, ``dialogue``, ``library`` for voices and
history, ``transcribe``, ``doctor``, ``download``), each with ``register(sub)`` and
``run(args)``; what they share is in :mod:`desktop_app.cli.common`. Exit codes: 0 success,
2 a user error (one line ``error: ...`` on stderr), 1 an internal error (the traceback goes to
the log file, whose path is printed), 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from desktop_app import __version__, logs
from desktop_app.cli import (
    batch,
    clone,
    dialogue,
    doctor,
    download,
    library,
    serve,
    train,
    transcribe,
)
from desktop_app.cli.common import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USER, Parser
from desktop_app.errors import RequestError, describe

log = logging.getLogger(__name__)

COMMANDS = (clone, batch, dialogue, train, library, transcribe, serve, doctor, download)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, sub-commands included."""
    parser = Parser(
        # frozen, the program is the executable the user ran (csm-studio or csm-studio-cli)
        prog=Path(sys.argv[0]).name if getattr(sys, "frozen", False) else "python -m desktop_app",
        description="CSM Studio: offline voice cloning with Sesame's CSM-1B.",
    )
    parser.add_argument("--version", action="version", version=f"CSM Studio {__version__}")
    parser.add_argument(
        "--model",
        dest="gui_model",
        default=None,
        metavar="M",
        help="checkpoint folder or hub id for the studio window",
    )
    parser.add_argument(
        "--smoke-test",
        action="store_true",
        help="start the window, make one take with --model, and exit",
    )
    parser.add_argument("--screenshot", metavar="FILE.png", help="with --smoke-test: save one")
    parser.set_defaults(handler=run_default, online=False)
    sub = parser.add_subparsers(dest="command", parser_class=Parser)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the process exit code."""
    args = build_parser().parse_args(argv)
    if not args.online:
        # Everything but the explicit download stays offline, whatever the libraries would like.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    logs.configure_logging()
    logs.log_thread_errors()
    log.info("command line: %s", _redacted(sys.argv if argv is None else ["", *argv], args))
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a user error, or an internal one (logged with its traceback)
        description = describe(exc)
        if not description.internal:
            log.info("user error: %s", description.message)
        print(f"error: {description.message}", file=sys.stderr)
        return EXIT_INTERNAL if description.internal else EXIT_USER


SECRET_DESTS = ("token_on_command_line", "key_on_command_line")
"""The parsed arguments that hold a secret (refused, but typed: never logged)."""


def _redacted(argv: Sequence[str], args: argparse.Namespace) -> list[str]:
    """The command line with every secret value the parser found hidden, for the log.

    Redacted by value, from the parsed arguments, so ``--opt=VALUE``, ``--opt VALUE`` and any
    spelling the parser accepted are all covered.
    """
    secrets = [str(v) for d in SECRET_DESTS if (v := getattr(args, d, None))]
    out = []
    for arg in argv:
        for secret in secrets:
            arg = arg.replace(secret, "***")
        out.append(arg)
    return out


def run_default(args: argparse.Namespace) -> int:
    """No sub-command: the studio window (or its smoke test)."""
    if args.smoke_test and not args.gui_model:
        raise RequestError("--smoke-test needs --model with a checkpoint folder or hub id")
    from desktop_app.ui.app import run_gui, run_smoke_test

    if args.smoke_test:
        screenshot = Path(args.screenshot).expanduser() if args.screenshot else None
        return run_smoke_test(args.gui_model, screenshot)
    return run_gui(args.gui_model)
