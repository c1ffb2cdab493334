"""Which CPU kernel multiplies a frame's weights fastest: every candidate for 8- and 4-bit
weights against float32, on the frame's own product shapes, one row (a single take) and four
(best of 4), in one process, uncompiled (the frozen bundle has no compiler).

    PYTHONPATH=. python benchmarks/cpu_kernels.py --json benchmarks/results/cpu-kernels.json
    PYTHONPATH=.:/tmp/tao python benchmarks/cpu_kernels.py ...   # with torchao installed there

Candidates: float32 ``F.linear``; fbgemm's dynamic int8 (``torch.ops.quantized.linear_dynamic``:
per-channel int8 weights, activations quantized on the fly; its weights are a ``qint8`` tensor,
whose creation torch 2.13 deprecates, pytorch issue 184982); torch's weight-only
``_weight_int8pack_mm`` and ``_weight_int4pack_mm_for_cpu`` (group 128); ``_int_mm`` (int8 x
int8 with the activations quantized per row); oneDNN's ``qlinear_pointwise``; and torchao's
configurations when torchao imports. Also this machine's copy bandwidth (a 1 GB copy), which
gives each format's floor: the bytes of its weights at that bandwidth. Each figure is the
median of repeated calls after a warm-up; note the load (``uptime``) with it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812

SHAPES = {  # (out, in): the products of one frame of the full-size CSM-1B, and how many
    "backbone gate/up": ((16384, 2048), 16),
    "backbone down": ((2048, 8192), 16),
    "backbone qkv": ((3072, 2048), 16),
    "backbone o": ((2048, 2048), 16),
    "depth gate/up": ((16384, 1024), 4 * 31),
    "depth down": ((1024, 8192), 4 * 31),
    "codebook head": ((2051, 1024), 31),
}
GROUP = 128


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def copy_bandwidth() -> float:
    """GB/s of a 1 GB float32 copy (read + write counted)."""
    a = torch.empty(256 * 1024 * 1024)
    b = torch.empty_like(a)
    b.copy_(a)
    ms = median_ms(lambda: b.copy_(a), 5)
    return 2 * a.numel() * 4 / (ms / 1e3) / 1e9


def candidates(weight: torch.Tensor) -> dict[str, tuple[Callable[[torch.Tensor], Any], float]]:
    """Each kernel's product for ``weight``, and the bytes per weight it reads."""
    out_f, in_f = weight.shape
    scales = (weight.abs().amax(1) / 127).clamp(min=1e-8)
    wq = torch.round(weight / scales[:, None]).clamp(-127, 127).to(torch.int8)
    found: dict[str, tuple[Callable[[torch.Tensor], Any], float]] = {
        "float32": (lambda x: F.linear(x, weight), 4.0),
        "int8 weight-only (_weight_int8pack_mm)": (
            lambda x: torch._weight_int8pack_mm(x, wq, scales),
            1.0,
        ),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the deprecation of qint8 tensors, measured anyway
        qweight = torch._make_per_channel_quantized_tensor(
            wq, scales.double(), torch.zeros(out_f, dtype=torch.long), 0
        )
        packed = torch.ops.quantized.linear_prepack(qweight, None)
    found["int8 dynamic (fbgemm, deprecated qint8)"] = (
        lambda x: torch.ops.quantized.linear_dynamic(x, packed, True),
        1.0,
    )
    if out_f % 16:  # the int4 packing wants rows in sixteens (the codebook heads have 2051)
        found.update(torchao_candidates(weight))
        return found
    grouped = weight.reshape(out_f, in_f // GROUP, GROUP)
    low, high = grouped.amin(-1, keepdim=True), grouped.amax(-1, keepdim=True)
    step = ((high - low) / 15).clamp(min=1e-8)
    q4 = torch.clamp(torch.round((grouped - low) / step), 0, 15).to(torch.int32)
    packed4 = torch._convert_weight_to_int4pack_for_cpu(q4.reshape(out_f, in_f), 1)
    zeros = (low + 8 * step).reshape(out_f, in_f // GROUP, 1)
    scale_zero = torch.cat([step, zeros], -1).transpose(0, 1).contiguous()
    found["int4 weight-only g128 (_weight_int4pack_mm_for_cpu)"] = (
        lambda x: torch._weight_int4pack_mm_for_cpu(x, packed4, GROUP, scale_zero),
        0.5 + 4 / GROUP,
    )
    found.update(int_mm_candidate(wq, scales))
    found.update(torchao_candidates(weight))
    return found


def int_mm_candidate(
    wq: torch.Tensor, scales: torch.Tensor
) -> dict[str, tuple[Callable[[torch.Tensor], Any], float]]:
    wqt = wq.t().contiguous()

    def int_mm(x: torch.Tensor) -> torch.Tensor:
        sx = x.abs().amax(1, keepdim=True) / 127
        xq = torch.round(x / sx).to(torch.int8)
        return torch._int_mm(xq, wqt).float() * sx * scales

    return {"int8 x int8 (_int_mm)": (int_mm, 1.0)}


_UNAVAILABLE: set[str] = set()


def torchao_candidates(weight: torch.Tensor) -> dict[str, tuple[Callable[..., Any], float]]:
    try:
        import torchao.quantization as tq
    except Exception:  # not installed, or its native parts do not load
        return {}
    found: dict[str, tuple[Callable[..., Any], float]] = {}
    for name, config, size in (
        ("Int8WeightOnlyConfig", {}, 1.0),
        ("Int8DynamicActivationInt8WeightConfig", {}, 1.0),
        ("Int8DynamicActivationIntxWeightConfig", {}, 1.0),
        ("Int4WeightOnlyConfig", {"group_size": GROUP}, 0.5),
    ):
        if name in _UNAVAILABLE:
            continue
        linear = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False)
        with torch.no_grad():
            linear.weight.copy_(weight)
        try:
            tq.quantize_(linear, getattr(tq, name)(**config))
            with torch.inference_mode():
                linear(torch.zeros(1, weight.shape[1]))
        except Exception as exc:  # what does not run here is reported
            print(f"torchao {name}: cannot run here ({type(exc).__name__}: {str(exc)[:80]})")
            _UNAVAILABLE.add(name)
            continue
        found[f"torchao {name}"] = (linear, size)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.manual_seed(0)
    bandwidth = copy_bandwidth()
    report: dict[str, Any] = {
        "command": " ".join(sys.argv),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "load_1min": os.getloadavg()[0],
        "copy_gb_per_s": round(bandwidth, 1),
        "shapes": {},
        "frame_ms": {},
    }
    frame: dict[str, dict[int, float]] = {}
    for label, ((out_f, in_f), count) in SHAPES.items():
        weight = torch.randn(out_f, in_f) * 0.02
        if in_f % GROUP:
            continue
        rows_report: dict[str, Any] = {}
        with torch.inference_mode():
            for kernel, (product, size) in candidates(weight).items():
                entry = {"floor_ms": round(out_f * in_f * size / (bandwidth / 2 * 1e9) * 1e3, 3)}
                for rows in (1, 4):
                    x = torch.randn(rows, in_f)
                    ms = median_ms(lambda p=product, x=x: p(x), args.repeats)
                    entry[f"{rows}_row_ms"] = round(ms, 3)
                    frame.setdefault(kernel, {}).setdefault(rows, 0.0)
                    frame[kernel][rows] += ms * count
                rows_report[kernel] = entry
        report["shapes"][f"{label} {out_f}x{in_f} (x{count} per frame)"] = rows_report
        print(label, {k: v["1_row_ms"] for k, v in rows_report.items()})
    report["frame_ms"] = {
        kernel: {f"{rows}_row": round(ms, 1) for rows, ms in by_rows.items()}
        for kernel, by_rows in frame.items()
    }
    print(f"copy bandwidth {bandwidth:.1f} GB/s (read + write), load {report['load_1min']:.2f}")
    print("the frame's products (the shapes above, times their count per frame), ms:")
    for kernel, by_rows in report["frame_ms"].items():
        print(f"  {kernel}: {by_rows}")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
