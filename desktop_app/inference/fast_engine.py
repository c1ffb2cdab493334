"""The fast engine: CSM's decode loop over static caches, one CUDA graph per frame.

It loads the checkpoint through the transformers engine (which holds the only copy of the
weights) and runs takes through its own loop: :mod:`.decoder` (the two decoders written out,
one frame), :mod:`.sampling` (codes drawn on the device), :mod:`.prefill` (typed prompts and
the voice prompt's cache kept between takes) and :mod:`.decoding` (the one loop: a single take
is a batch of one). This module chooses and falls back: transformers for a model the loop does
not serve, the CPU when CUDA runs out of memory, int8 weights when asked (:mod:`.cpu_int8`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from desktop_app.errors import RequestError
from desktop_app.inference.batch import one_by_one
from desktop_app.inference.decoder import Decoder, Graphs
from desktop_app.inference.decoding import Loop
from desktop_app.inference.engine import (
    AudioCallback,
    GenerationRequest,
    GenerationResult,
    PartAudioCallback,
    ProgressCallback,
    StopCheck,
)
from desktop_app.inference.hf_engine import CPU_FALLBACK_NOTICE, TransformersEngine
from desktop_app.inference.prefill import PromptCache
from desktop_app.inference.streaming import ResumableAudio

log = logging.getLogger(__name__)

QUANTIZE_CHOICES = ("", "int8")
"""Weight quantization of the fast engine: none, or int8 on the CPU (benchmarks/cpu_int8.py)."""


class FastEngine:
    """CSM-1B with static caches and a hand-written decode loop (CUDA graph on GPUs)."""

    name = "fast"

    def __init__(
        self,
        model_dir: Path,
        device: str = "auto",
        *,
        use_cuda_graph: bool | None = None,
        padded_batches: bool | None = None,
        quantize: str = "",
    ) -> None:
        """Load the checkpoint (through the transformers engine) and build the decode state.

        ``quantize="int8"`` gives the frame loop int8 weights (:mod:`cpu_int8`; CPU only).

        Raises:
            RequestError: an unknown ``quantize``, or int8 asked for off the CPU.
        """
        if quantize not in QUANTIZE_CHOICES:
            raise RequestError(
                f"unknown quantization {quantize!r}; choose {' or '.join(QUANTIZE_CHOICES)}"
            )
        started = time.perf_counter()
        self.reference = TransformersEngine(model_dir, device)
        self.quantize = quantize
        if quantize and self.reference.device != "cpu":
            raise RequestError(
                f"int8 weights run on the CPU only, and the model loaded on "
                f"{self.reference.device}; use --device cpu, or leave --quantize out on a GPU"
            )
        self.model_dir = model_dir
        self.fallback_reason = self._unsupported()
        self.graphs = Graphs(use_cuda_graph)
        self.padded_batches = padded_batches  # None: padded on CUDA, shrinking elsewhere
        if self.fallback_reason:
            log.warning("fast engine falls back to transformers: %s", self.fallback_reason)
        else:
            self._build()
        self.load_seconds = time.perf_counter() - started

    # -- what the engine can serve -------------------------------------------------------------

    def _unsupported(self) -> str:
        config = self.reference.model.config
        if config.depth_decoder_config.num_codebooks != config.num_codebooks:
            return "the depth decoder and the backbone disagree on the number of codebooks"
        for part in (config, config.depth_decoder_config):
            rope = getattr(part, "rope_parameters", None) or {}
            if rope.get("rope_type", "default") in {"dynamic", "longrope"}:
                return f"rope type {rope['rope_type']!r} changes with the sequence length"
        return ""

    @property
    def device(self) -> str:
        return self.reference.device

    @property
    def dtype(self) -> str:
        """The weights' dtype ("int8" when quantized: the activations stay float32)."""
        return "int8" if self.quantize and not self.fallback_reason else self.reference.dtype

    @property
    def device_name(self) -> str:
        return self.reference.device_name

    @property
    def context_positions(self) -> int:
        return self.reference.context_positions

    def max_frames(self, request: GenerationRequest) -> int:
        """Frames allowed by ``request.max_seconds`` (the reference's arithmetic)."""
        return self.reference.max_frames(request)

    def turn_positions(self, speaker: int, text: str, samples: int) -> int:
        """Context positions of one prompt turn (see :func:`prompt.turn_positions`)."""
        return self.reference.turn_positions(speaker, text, samples)

    # -- state ---------------------------------------------------------------------------------

    def _build(self) -> None:
        """The decoder over the loaded weights (again after a move to the CPU)."""
        self.decoder = Decoder(self.reference.model)
        self.prompts = PromptCache(self.reference, self.decoder)
        if self.quantize == "int8":
            self.use_int8()

    def use_int8(self) -> None:
        """Give the frame loop int8 matrix products (:func:`cpu_int8.int8_linear`; the
        decoder puts them in place, so the quantization knows no engine).

        Raises:
            ValueError: the engine is not on the CPU in float32.
        """
        from desktop_app.inference.cpu_int8 import int8_linear

        if self.decoder.device.type != "cpu" or self.decoder.dtype != torch.float32:
            raise ValueError("int8 weights are for the CPU engine in float32")
        self.decoder.quantize(int8_linear)

    def pads_batches(self) -> bool:
        """Whether batches run padded to a bucket (CUDA's default: one graph per bucket) rather
        than shrinking as rows end (the CPU's default: finished rows stop costing)."""
        if self.padded_batches is None:
            return self.decoder.device.type == "cuda"
        return self.padded_batches

    def loop(self) -> Loop:
        """The decode loop over this engine's decoder, as it stands now."""
        return Loop(
            self.decoder,
            self.prompts,
            self.graphs,
            self.reference,
            self.pads_batches(),
            self.device,
            self.dtype,
            self.name,
        )

    # -- the take ------------------------------------------------------------------------------

    def generate(
        self,
        request: GenerationRequest,
        on_progress: ProgressCallback | None = None,
        should_stop: StopCheck | None = None,
        on_audio: AudioCallback | None = None,
    ) -> GenerationResult:
        """Generate one take; see :class:`~desktop_app.inference.engine.Engine`.

        With ``on_audio``, Mimi decodes as frames are made (:class:`AudioStream`): the first
        frame's audio is handed over at once, then every few frames, and the result's audio is
        those pieces joined.
        """
        if self.fallback_reason:
            return self.reference.generate(request, on_progress, should_stop, on_audio)
        part_audio = None if on_audio is None else (lambda _, piece: on_audio(piece))
        return self._takes([request], on_progress, should_stop, part_audio)[0]

    def generate_batch(
        self,
        requests: Sequence[GenerationRequest],
        on_progress: ProgressCallback | None = None,
        should_stop: StopCheck | None = None,
        on_part_audio: PartAudioCallback | None = None,
    ) -> list[GenerationResult]:
        """One take per request, decoded together; see :mod:`desktop_app.inference.batch`.

        If the GPU runs out of memory the whole batch is made again on the CPU (each take then
        says so in its notices); streamed audio already handed over is not sent again.
        """
        if self.fallback_reason:
            return one_by_one(self, requests, on_progress, should_stop, on_part_audio)
        return self._takes(requests, on_progress, should_stop, on_part_audio)

    def _takes(
        self,
        requests: Sequence[GenerationRequest],
        on_progress: ProgressCallback | None,
        should_stop: StopCheck | None,
        on_part_audio: PartAudioCallback | None,
    ) -> list[GenerationResult]:
        stream = ResumableAudio(on_part_audio) if on_part_audio else None
        try:
            return self.loop().in_groups(requests, on_progress, should_stop, stream)
        except torch.cuda.OutOfMemoryError:
            self._fall_back_to_cpu(stream)
            results = self.loop().in_groups(requests, on_progress, should_stop, stream)
        return [
            dataclasses.replace(
                result,
                audio=stream.audio(index) if stream else result.audio,
                notices=(CPU_FALLBACK_NOTICE, *result.notices),
            )
            for index, result in enumerate(results)
        ]

    def _fall_back_to_cpu(self, stream: ResumableAudio | None) -> None:
        """After CUDA ran out of memory: the weights to the CPU, the decode state rebuilt."""
        log.warning("CUDA out of memory in the fast engine; retrying on the CPU")
        self.reference.move_to_cpu()
        self._build()
        if stream is not None:
            stream.resume()
