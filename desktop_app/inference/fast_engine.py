"""The fast engine: CSM's decode loop over static caches, one CUDA graph per frame.

It loads the checkpoint through the transformers engine (which holds the only copy of the
weights) and runs takes through its own loop: :mod:`.decoder` (the two decoders written out,
one frame), :mod:`.sampling` (codes drawn on the device), :mod:`.prefill` (typed prompts and
the voice prompt's cache kept between takes) and :mod:`.decoding` (the one loop: a single take
is a batch of one). This module chooses and falls back: transformers for a model the loop does
not serve, the CPU when CUDA runs out of memory, 8- or 4-bit weights on the CPU
(:mod:`.cpu_weights`, loaded from the cache by :mod:`.quantized_model`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from desktop_app.errors import RequestError
from desktop_app.inference import compute_device
from desktop_app.inference.adapter import VoiceAdapter, check_base
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

QUANTIZE_CHOICES = ("", "int8", "int4")
"""The fast engine's weights: float (""), or packed on the CPU (benchmarks/cpu_weights.py)."""

PACKED_TORCH_THREADS = 1
"""torch's threads while a packed engine decodes: onnxruntime runs the products on its own
threads, and torch's OpenMP threads spinning between two products took their cores (measured on
2 cores, int8: 322 ms/frame with torch on 1 thread, 364 with 2 and OMP_WAIT_POLICY=PASSIVE, 575
with 2 as they are; benchmarks/results/README.md)."""


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
        on_status: Callable[[str], None] | None = None,
        should_stop: StopCheck | None = None,
    ) -> None:
        """Load the checkpoint (through the transformers engine) and build the decode state.

        ``quantize="int8"`` or ``"int4"`` gives the frame loop packed weights (CPU only),
        loaded from the user's cache, which the first such load fills (``on_status`` hears its
        progress, ``should_stop`` can cancel it); the float weights of the packed products are
        then never in memory.

        Raises:
            RequestError: an unknown ``quantize``, packed weights asked for off the CPU, or a
                checkpoint the fast engine does not serve asked for packed.
            GenerationCancelled: ``should_stop`` said so while the weights were being packed.
        """
        if quantize not in QUANTIZE_CHOICES:
            raise RequestError(
                f"unknown quantization {quantize!r}; choose {' or '.join(QUANTIZE_CHOICES[1:])}"
            )
        started = time.perf_counter()
        self.quantize = quantize
        self.model_dir = model_dir
        self._packed: dict[str, Any] = {}
        self._adapter_key: str | None = None
        self._identity: dict[str, Any] | None = None
        self.packed_parameters: tuple[str, ...] = ()  # the model's, replaced by packed products
        if quantize:
            self.reference = self._load_packed(device, on_status, should_stop)
        else:
            self.reference = TransformersEngine(model_dir, device)
        self.fallback_reason = self._unsupported()
        if quantize and self.fallback_reason:
            raise RequestError(
                f"this checkpoint cannot run with {quantize} weights ({self.fallback_reason}); "
                f"load it with --quantize none"
            )
        self.graphs = Graphs(use_cuda_graph)
        self.padded_batches = padded_batches  # None: padded on CUDA, shrinking elsewhere
        if self.fallback_reason:
            log.warning("fast engine falls back to transformers: %s", self.fallback_reason)
        else:
            self._build()
        self.load_seconds = time.perf_counter() - started

    def _load_packed(
        self, device: str, on_status: Callable[[str], None] | None, should_stop: StopCheck | None
    ) -> TransformersEngine:
        from desktop_app.inference import quantized_model

        if compute_device.pick_device(device).type != "cpu":
            raise RequestError(
                f"{self.quantize} weights run on the CPU only; use --device cpu, or "
                f"--quantize none on a GPU"
            )
        model, weights = quantized_model.load_model(
            self.model_dir, self.quantize, on_status, should_stop
        )
        self._packed = weights.packed
        self.packed_parameters = weights.packed_parameters
        return TransformersEngine(self.model_dir, "cpu", model=model)

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
        """The weights' dtype ("int8" or "int4" when packed: the activations stay float32)."""
        return self.quantize or self.reference.dtype

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
        self._adapter_key = None  # a new decoder speaks with the base model
        if self._packed:
            from desktop_app.inference.cpu_weights import PackedLinear
            from desktop_app.inference.quantized_model import release_pages

            packed = self._packed
            # read here: a pool thread's OpenMP setting is its own, not the one torch was given
            threads = torch.get_num_threads()

            def product(name: str) -> PackedLinear:
                made = PackedLinear(packed[name], threads)
                # the product holds its own prepacked copy: the cache file's pages can go now
                # (one product at a time, so the load's peak is not the codes twice)
                release_pages(packed[name])
                return made

            # prepacking runs outside the GIL: two threads halve it (40 products of the full
            # model: 1.85 s one by one, 0.87 s on 2 threads)
            with ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1))) as pool:
                products = dict(zip(packed, pool.map(product, packed), strict=True))
            self.decoder.quantize(lambda name, weight, bias: products[name])
            self._packed = {}

    @contextlib.contextmanager
    def _threads(self) -> Iterator[None]:
        """torch on :data:`PACKED_TORCH_THREADS` while a packed engine decodes."""
        if not self.quantize:
            yield
            return
        before = torch.get_num_threads()
        torch.set_num_threads(min(before, PACKED_TORCH_THREADS))
        try:
            yield
        finally:
            torch.set_num_threads(before)

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
            with self._threads():
                return self._by_adapter(requests, on_progress, should_stop, stream)
        except torch.cuda.OutOfMemoryError:
            self._fall_back_to_cpu(stream)
            results = self._by_adapter(requests, on_progress, should_stop, stream)
        return [
            dataclasses.replace(
                result,
                audio=stream.audio(index) if stream else result.audio,
                notices=(CPU_FALLBACK_NOTICE, *result.notices),
            )
            for index, result in enumerate(results)
        ]

    def _by_adapter(
        self,
        requests: Sequence[GenerationRequest],
        on_progress: ProgressCallback | None,
        should_stop: StopCheck | None,
        stream: ResumableAudio | None,
    ) -> list[GenerationResult]:
        """The takes of each trained voice (and of none) decoded together, one voice after the
        other, in the order they first appear; the results in the requests' order."""
        keys = [None if r.adapter is None else r.adapter.key for r in requests]
        if len(set(keys)) == 1:
            self.use_adapter(requests[0].adapter)
            return self.loop().in_groups(requests, on_progress, should_stop, stream)
        results: list[GenerationResult | None] = [None] * len(requests)
        for key in dict.fromkeys(keys):
            rows = [i for i, k in enumerate(keys) if k == key]
            self.use_adapter(requests[rows[0]].adapter)
            part = None
            if stream is not None:
                part = lambda i, piece, rows=rows: stream(rows[i], piece)  # noqa: E731
            chosen = [requests[i] for i in rows]
            made = self.loop().in_groups(chosen, on_progress, should_stop, part)
            for i, result in zip(rows, made, strict=True):
                results[i] = result
        return [r for r in results if r is not None]

    def use_adapter(self, adapter: VoiceAdapter | None) -> None:
        """Speak with ``adapter``'s low-rank paths from now on (None: the base model); the
        voice prompt kept from the last take is dropped when the voice changes."""
        key = None if adapter is None else adapter.key
        if key == self._adapter_key:
            return
        if adapter is not None:
            check_base(adapter, self.identity(), "the trained voice")
        self.decoder.adapt(adapter)
        self.prompts.forget()
        self._adapter_key = key

    def identity(self) -> dict[str, Any]:
        """The loaded checkpoint's identity (what an adapter records of its base model)."""
        if self._identity is None:
            from desktop_app.inference.quantized_model import checkpoint_identity

            self._identity = checkpoint_identity(self.model_dir)
        return self._identity

    def _fall_back_to_cpu(self, stream: ResumableAudio | None) -> None:
        """After CUDA ran out of memory: the weights to the CPU, the decode state rebuilt."""
        log.warning("CUDA out of memory in the fast engine; retrying on the CPU")
        self.reference.move_to_cpu()
        self._build()
        if stream is not None:
            stream.resume()
