"""``doctor``: what this machine offers the app, and whether the model is found.

``doctor --self-test`` also loads the model and checks the fast engine against transformers on
this machine (:mod:`desktop_app.inference.self_test`): the table to send with a bug report.
"""

from __future__ import annotations

import argparse
import platform
import sys
from typing import Any

from desktop_app import __version__, defaults, logs
from desktop_app.cli import common
from desktop_app.cli.common import EXIT_INTERNAL, EXIT_OK
from desktop_app.errors import RequestError, UserError


def register(sub: Any) -> None:
    """Add ``doctor`` to the sub-command parser ``sub``."""
    doctor = sub.add_parser("doctor", help="report Python, torch, GPU, model and audio devices")
    common.add_model_argument(doctor)
    doctor.add_argument(
        "--self-test",
        action="store_true",
        help="load the model, make a short greedy take with the fast engine and with "
        "transformers, compare the codes and time both",
    )
    doctor.add_argument("--device", default=defaults.DEVICE, choices=defaults.DEVICES)
    doctor.add_argument("--json", action="store_true", help="with --self-test: print JSON")
    doctor.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print one table: versions, GPUs, the model, the audio devices, the log file; or, with
    ``--self-test``, the self-test's table."""
    if args.self_test:
        return self_test(args)
    if args.json:
        raise RequestError("--json goes with --self-test")
    import torch

    from desktop_app.audio.devices import list_devices
    from desktop_app.inference.model_store import hub_cache_dir, resolve_model

    rows: list[tuple[str, str]] = [
        ("CSM Studio", __version__),
        ("Python", f"{platform.python_version()} ({sys.executable})"),
        (
            "torch",
            f"{torch.__version__}; CUDA {'' if torch.cuda.is_available() else 'not '}available",
        ),
    ]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(i)
            rows.append(
                (
                    f"GPU {i}",
                    f"{torch.cuda.get_device_name(i)}, "
                    f"{free / 2**30:.1f} GiB free of {total / 2**30:.1f} GiB",
                )
            )
    else:
        rows.append(("GPU", "none: generation runs on the CPU (slower than real time)"))
    try:
        rows.append(("model", f"{args.model}: found at {resolve_model(args.model)}"))
    except UserError as exc:
        rows.append(("model", f"not found: {exc}"))
    from desktop_app import defaults
    from desktop_app.inference.model_store import ASR, SPEAKER

    device = "cuda" if torch.cuda.is_available() else "cpu"
    for label, spec, kind in (
        ("speech recognition", defaults.asr_model_for(device), ASR),
        ("speaker model", defaults.SPEAKER_MODEL_ID, SPEAKER),
    ):
        try:
            rows.append((label, f"{spec}: found at {resolve_model(spec, kind)}"))
        except UserError as exc:
            rows.append((label, f"not found (takes are checked without it): {exc}"))
    rows.append(("model cache", str(hub_cache_dir())))
    try:
        devices = list_devices()
        ins = [d for d in devices if d.inputs > 0]
        outs = [d for d in devices if d.outputs > 0]
        default_in = next((d.name for d in ins if d.is_default_input), "none")
        default_out = next((d.name for d in outs if d.is_default_output), "none")
        rows.append(("audio input", f"{len(ins)} device(s); default: {default_in}"))
        rows.append(("audio output", f"{len(outs)} device(s); default: {default_out}"))
    except UserError as exc:
        rows.append(("audio", str(exc)))
    rows.append(("log file", str(logs.configure_logging())))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return EXIT_OK


def self_test(args: argparse.Namespace) -> int:
    """Load the fast engine and run the self-test; exit 0 when the codes are equal, else 1."""
    import json

    from desktop_app.inference.fast_engine import FastEngine
    from desktop_app.inference.model_store import resolve_model
    from desktop_app.inference.self_test import run_self_test

    folder = resolve_model(args.model)
    common.quiet_transformers()
    common.status(f"loading {args.model} on {args.device} ...")
    engine = FastEngine(folder, args.device)
    common.status("making the test take with both engines ...")
    report = run_self_test(engine, args.model)
    print(json.dumps(report.as_json(), indent=2) if args.json else report.table())
    return EXIT_OK if report.codes_equal else EXIT_INTERNAL
