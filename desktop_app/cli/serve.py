"""``serve``: the optional local API (OpenAI's /v1/audio/speech and a voice-clone route) over one
loaded engine. Off unless started; bound to this machine unless told otherwise; always with a key
(the install's own, from a file or from the environment, never from the command line)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from desktop_app import defaults
from desktop_app.api.keys import KEY_ENV
from desktop_app.cli import common
from desktop_app.cli.common import EXIT_OK, status
from desktop_app.errors import RequestError
from desktop_app.files import read_secret


def register(sub: Any) -> None:
    """Add ``serve`` to the sub-command parser ``sub``."""
    serve = sub.add_parser("serve", help="serve the local HTTP API (OpenAI-compatible speech)")
    common.add_model_argument(serve)
    serve.add_argument("--device", default=defaults.DEVICE, choices=defaults.DEVICES)
    serve.add_argument("--engine", default=None, help="inference engine (default: the fastest)")
    serve.add_argument("--quantize", default="auto", choices=defaults.WEIGHTS)
    common.add_listen_arguments(serve)  # the models that check (and transcribe) API takes
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: this machine only); see the README's Security",
    )
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a Host name clients use besides this machine's (needed with --host 0.0.0.0; "
        "repeatable)",
    )
    serve.add_argument(
        "--api-key-file",
        metavar="F",
        help=f"read the key from a file (default: ${KEY_ENV}, else this install's own key)",
    )
    serve.add_argument(
        "--new-key", action="store_true", help="replace this install's key with a new one"
    )
    # refused: a key on the command line is visible to every account in the process list
    serve.add_argument("--api-key", dest="key_on_command_line", help=argparse.SUPPRESS)
    serve.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="URL",
        help="a web page's origin allowed to call the API (CORS; repeatable)",
    )
    serve.add_argument(
        "--max-queue",
        type=int,
        default=8,
        metavar="N",
        help="requests that may wait for the model (more get 503)",
    )
    serve.add_argument("--max-upload-mb", type=float, default=50.0)
    serve.add_argument(
        "--max-connections",
        type=int,
        default=32,
        metavar="N",
        help="open connections at once (more are closed at once)",
    )
    serve.add_argument("--max-text-chars", type=int, default=4096, metavar="N")
    serve.add_argument(
        "--header-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds a request's headers may take to arrive (default 10)",
    )
    serve.add_argument(
        "--body-timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds a request's body may take to arrive (default 60)",
    )
    serve.add_argument(
        "--time-limit",
        type=float,
        default=300.0,
        metavar="S",
        help="seconds a request may take, waiting included (default 300)",
    )
    serve.set_defaults(handler=run)


def options_from(args: argparse.Namespace) -> Any:
    """The checked :class:`~desktop_app.api.app.ServeOptions` of the command line.

    Raises:
        RequestError: a non-loopback address without a key, an unreadable key file, bad limits.
    """
    from desktop_app.api.app import ServeOptions

    if args.key_on_command_line is not None:
        raise RequestError(
            "--api-key would show the key to every account on this machine (in the process "
            f"list): put it in a file for --api-key-file, or in ${KEY_ENV}"
        )
    key, source = _key(args)
    if args.host in ("0.0.0.0", "::") and not args.allow_host:
        raise RequestError(
            f"listening on {args.host} answers any address of this machine: give "
            "--allow-host NAME for each host name clients use (see the README's Security)"
        )
    if not 0 <= args.port <= 65535:
        raise RequestError(f"--port must be 0-65535 (got {args.port})")
    for name in ("max_queue", "max_text_chars", "max_connections"):
        if getattr(args, name) < 1:
            raise RequestError(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("max_upload_mb", "time_limit", "header_timeout", "body_timeout"):
        if not getattr(args, name) > 0:
            raise RequestError(f"--{name.replace('_', '-')} must be positive")
    return ServeOptions(
        host=args.host,
        port=args.port,
        api_key=key,
        key_source=source,
        allow_origins=tuple(args.allow_origin),
        allow_hosts=tuple(args.allow_host),
        max_connections=args.max_connections,
        header_seconds=args.header_timeout,
        body_seconds=args.body_timeout,
        max_queue=args.max_queue,
        max_upload_mb=args.max_upload_mb,
        max_text_chars=args.max_text_chars,
        time_limit=args.time_limit,
    )


def _key(args: argparse.Namespace) -> tuple[str, str]:
    """The key and where clients find it: --api-key-file, the environment, or the install's."""
    from desktop_app.api import keys

    if args.api_key_file:
        return read_secret(args.api_key_file, "API key"), f"the file {args.api_key_file}"
    if os.environ.get(KEY_ENV, "").strip():
        return os.environ[KEY_ENV].strip(), f"the server's environment (${KEY_ENV})"
    key = keys.install_key(new=args.new_key)
    if args.new_key:
        status(f"a new API key is in {keys.key_file()}")
    return key, f"the file {keys.key_file()}"


def run(args: argparse.Namespace) -> int:
    """Start the server at once (health says "loading"), load the model on the API's worker."""
    import uvicorn

    from desktop_app.api.app import build_app
    from desktop_app.api.server import server_config
    from desktop_app.api.service import SpeechService
    from desktop_app.library.store import library_dir
    from desktop_app.session.jobs import JobQueue
    from desktop_app.session.models import LoadedModels

    options = options_from(args)
    common.model_spec(args)  # a bad engine name is said before anything listens
    from desktop_app.inference.model_store import resolve_model

    resolve_model(args.model)  # a missing checkpoint is an error before anything listens
    queue = JobQueue(options.max_queue, name="api-worker")
    loaded: list[LoadedModels] = []
    service = SpeechService(
        queue, lambda: loaded[0] if loaded else None, library_dir(), time_limit=options.time_limit
    )
    app = build_app(service, options)
    server = uvicorn.Server(server_config(app, options, log_level="info"))
    failure: list[BaseException] = []

    def load(ticket: Any) -> None:
        try:
            models = common.load_models(args)
            if models.recognizer is None:
                status("note: clips sent without a transcript are refused (no recogniser)")
            loaded.append(models)
            where = f"http://{options.host}:{options.port}"
            status(f"ready: {where}/v1/audio/speech, {where}/clone-voice (Ctrl+C stops)")
        except BaseException as exc:
            failure.append(exc)
            server.should_exit = True

    queue.submit(load, time_limit=24 * 3600.0)
    status(f"serving on http://{options.host}:{options.port} (the model is loading)")
    status(f"clients send the key kept in {options.key_source.removeprefix('the file ')}")
    try:
        server.run()
    finally:
        queue.close()
    if failure:
        raise failure[0]
    return EXIT_OK
