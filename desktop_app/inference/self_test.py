"""The self-test a user runs on their own machine: is the fast engine right, and how fast is it?

It makes one short greedy take with the fast engine and the same take with the transformers
reference it wraps (one copy of the weights), compares the codes frame by frame, and times
ms/frame for both. The table it prints is also what a GPU owner sends with a bug report: it
names the device, dtype, library versions, whether the CUDA graph ran, and where the codes part.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from desktop_app.inference.engine import (
    GenerationRequest,
    GenerationResult,
    ReferenceClip,
    StopCheck,
)

if TYPE_CHECKING:
    from desktop_app.inference.fast_engine import FastEngine

SELF_TEST_FRAMES = 25
"""Frames of the test take: 2 s of audio, a few seconds per engine on a CPU."""

TRANSCRIPT = (
    "I am reading a few sentences aloud so that the studio can learn how my voice sounds. "
    "The weather was calm this morning and the coffee was still warm."
)
TEXT = "Here is a new sentence, spoken in the voice of the reference recording."


def speech_like(seconds: float, rate: int = 24_000) -> np.ndarray:
    """Harmonics with a syllable-rate envelope: enough structure for the codec to encode."""
    t = np.arange(int(seconds * rate)) / rate
    tone = sum(np.sin(2 * np.pi * 130 * k * t + k) / k for k in range(1, 6))
    signal = tone * (0.55 + 0.45 * np.sin(2 * np.pi * 4 * t) ** 2)
    return (signal / np.sqrt(np.mean(signal**2)) * 0.1).astype(np.float32)


class FrameClock:
    """Progress callback that timestamps each frame (synchronising CUDA first, so that every
    frame's time is real)."""

    def __init__(self, cuda: bool, then: Callable[[int, float], None] | None = None) -> None:
        self.cuda = cuda
        self.then = then
        self.start = time.perf_counter()
        self.stamps: list[float] = []

    def __call__(self, frames: int, seconds: float) -> None:
        if self.cuda:
            torch.cuda.synchronize()
        self.stamps.append(time.perf_counter())
        if self.then is not None:
            self.then(frames, seconds)

    @property
    def ms_per_frame(self) -> float:
        """Median time between two frames, in milliseconds."""
        gaps = np.diff(self.stamps) * 1000
        return float(np.median(gaps)) if gaps.size else float("nan")

    @property
    def first_frame_ms(self) -> float:
        """From the call to the first frame (prompt encoding and prefill), in milliseconds."""
        return (self.stamps[0] - self.start) * 1000 if self.stamps else float("nan")


def identical_leading_frames(a: np.ndarray, b: np.ndarray) -> int:
    """How many frames, from the first, two (frames, codebooks) code arrays share exactly."""
    same = 0
    for x, y in zip(a, b, strict=False):
        if not np.array_equal(x, y):
            break
        same += 1
    return same


@dataclass(frozen=True)
class EngineTiming:
    """One engine's take in the self-test."""

    frames: int
    ms_per_frame: float
    first_frame_ms: float


@dataclass(frozen=True)
class SelfTestReport:
    """What the self-test found; :meth:`table` and :meth:`as_json` are what is shown."""

    model: str
    device: str
    device_name: str
    dtype: str
    torch: str
    transformers: str
    frames: int
    fast: EngineTiming
    reference: EngineTiming
    identical_frames: int
    cuda_graph: str
    notices: tuple[str, ...]

    @property
    def codes_equal(self) -> bool:
        return self.fast.frames == self.reference.frames == self.identical_frames

    @property
    def packed(self) -> bool:
        """Whether the fast engine ran packed weights (int8, int4): approximate by design."""
        return self.dtype in PACKED_DTYPES

    @property
    def speedup(self) -> float:
        return self.reference.ms_per_frame / self.fast.ms_per_frame

    @property
    def verdict(self) -> str:
        if self.packed:
            if self.fast.frames != self.reference.frames:
                return (
                    f"FAIL: {self.dtype} weights made {self.fast.frames} frames of "
                    f"{self.reference.frames}; use --quantize none meanwhile, and send this table"
                )
            return (
                f"PASS: {self.dtype} weights make a whole take, {self.speedup:.1f}x faster per "
                f"frame than transformers in float32 ({self.identical_frames} of {self.frames} "
                f"frames identical: packed weights approximate the float ones)"
            )
        if self.codes_equal:
            return (
                f"PASS: the fast engine makes the reference's codes exactly, "
                f"{self.speedup:.1f}x faster per frame"
            )
        return (
            f"FAIL: the codes part after frame {self.identical_frames} of {self.frames}; "
            f"use --engine transformers meanwhile, and send this table with a bug report"
        )

    def rows(self) -> list[tuple[str, str]]:
        """(label, value) lines of the table."""
        return [
            ("model", self.model),
            ("device", f"{self.device_name} ({self.device}, {self.dtype})"),
            ("torch / transformers", f"{self.torch} / {self.transformers}"),
            ("CUDA graph", self.cuda_graph),
            ("take", f"{self.frames} frames, greedy, 5 s voice prompt"),
            (
                "fast engine",
                f"{self.fast.ms_per_frame:.1f} ms/frame, "
                f"first frame {self.fast.first_frame_ms:.0f} ms",
            ),
            (
                "transformers",
                f"{self.reference.ms_per_frame:.1f} ms/frame, "
                f"first frame {self.reference.first_frame_ms:.0f} ms",
            ),
            ("speed-up", f"{self.speedup:.2f}x"),
            ("codes", f"{self.identical_frames}/{self.frames} frames identical"),
            *(("notice", notice) for notice in self.notices),
            ("verdict", self.verdict),
        ]

    def table(self) -> str:
        """The report as aligned text lines."""
        rows = self.rows()
        width = max(len(label) for label, _ in rows)
        return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)

    def as_json(self) -> dict[str, Any]:
        """The report as plain data, with the derived figures."""
        return dataclasses.asdict(self) | {
            "codes_equal": self.codes_equal,
            "speedup": self.speedup,
            "verdict": self.verdict,
        }


PACKED_DTYPES = ("int8", "int4")


def run_self_test(
    fast: FastEngine,
    model: str,
    frames: int = SELF_TEST_FRAMES,
    on_progress: Callable[[int, float], None] | None = None,
    should_stop: StopCheck | None = None,
) -> SelfTestReport:
    """Make the test take with ``fast`` and with its transformers reference; compare and time.

    The fast engine makes it twice: the first take warms it up (and on CUDA captures and
    checks the frame graph); the second is the one timed and compared.
    """
    import transformers

    cuda = fast.device.startswith("cuda")
    clip = ReferenceClip(speech_like(5.0), TRANSCRIPT)
    request = GenerationRequest(
        TEXT, (clip,), temperature=0, seed=0, max_seconds=frames / fast.reference.frame_rate
    )
    # warm-up (graph capture on CUDA) with another voice, so the timed take prefills cold
    warm = dataclasses.replace(request, references=(ReferenceClip(speech_like(4.0), TRANSCRIPT),))
    fast.generate(warm, on_progress, should_stop)

    def timed(engine: Any) -> tuple[GenerationResult, FrameClock]:
        clock = FrameClock(cuda, on_progress)
        clock.start = time.perf_counter()
        return engine.generate(request, clock, should_stop), clock

    got, fast_clock = timed(fast)
    # a packed engine never loaded the float weights: the reference loads them for the test
    # alone (and lets them go after it)
    reference: Any = fast.reference
    if not reference.can_generate:
        from desktop_app.inference.hf_engine import TransformersEngine

        reference = TransformersEngine(fast.model_dir, fast.device)
    want, reference_clock = timed(reference)
    del reference
    if fast.fallback_reason:
        graph = f"not used: the fast engine runs transformers ({fast.fallback_reason})"
    elif fast.graphs.off_reason:
        graph = f"off: {fast.graphs.off_reason}"
    else:
        graph = "on, checked against the eager loop" if cuda else "not used (CPU: eager loop)"
    return SelfTestReport(
        model=model,
        device=fast.device,
        device_name=fast.device_name,
        dtype=fast.dtype,
        torch=torch.__version__,
        transformers=transformers.__version__,
        frames=frames,
        fast=EngineTiming(got.frames, fast_clock.ms_per_frame, fast_clock.first_frame_ms),
        reference=EngineTiming(
            want.frames, reference_clock.ms_per_frame, reference_clock.first_frame_ms
        ),
        identical_frames=identical_leading_frames(got.codes, want.codes),
        cuda_graph=graph,
        notices=tuple(dict.fromkeys(got.notices + want.notices)),
    )
