"""The reference engine: transformers' own ``CsmForConditionalGeneration.generate``.

Slow (one Python-level step per frame, 31 depth passes each) but the oracle every faster engine
is checked against.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from desktop_app.errors import GenerationCancelled, ModelNotFoundError, RequestError
from desktop_app.inference import compute_device
from desktop_app.inference.batch import one_by_one
from desktop_app.inference.engine import (
    SAMPLE_RATE,
    AudioCallback,
    GenerationRequest,
    GenerationResult,
    GenerationTimings,
    PartAudioCallback,
    ProgressCallback,
    StopCheck,
    check_stop,
)
from desktop_app.inference.model_store import check_checkpoint
from desktop_app.inference.prompt import build_conversation, check_request, turn_positions

log = logging.getLogger(__name__)

CPU_FALLBACK_NOTICE = "the GPU ran out of memory, so this take was made on the CPU (slower)"


class _StopRequested(Exception):
    """Raised from inside generate() to leave it between two frames."""


@dataclass
class _FrameClock:
    """Receives each frame from generate(): reports progress, checks cancel, keeps timestamps."""

    frame_rate: float
    on_progress: ProgressCallback | None
    should_stop: StopCheck | None
    started: float = field(default_factory=time.perf_counter)
    stamps: list[float] = field(default_factory=list)
    _prompt_seen: bool = False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:  # generate() first hands over the prompt itself
            self._prompt_seen = True
            return
        self.stamps.append(time.perf_counter())
        frames = len(self.stamps)
        if self.on_progress is not None:
            self.on_progress(frames, frames / self.frame_rate)
        if self.should_stop is not None and self.should_stop():
            raise _StopRequested

    def end(self) -> None:
        """Part of the streamer protocol; nothing to flush."""


def sampling_kwargs(config: Any, request: GenerationRequest, max_frames: int) -> dict[str, Any]:
    """generate() keyword arguments for both levels (backbone and depth decoder), set every call.

    The depth decoder's settings persist in its generation config across calls, and the
    checkpoint samples by default, so each one is passed explicitly, greedy included.
    """
    codec_size = int(config.codec_config.codebook_size)
    # codes >= the codec's codebook size are specials the codec cannot decode
    suppress = list(range(codec_size, int(config.vocab_size)))
    kwargs: dict[str, Any] = {
        "max_new_tokens": max_frames,
        "suppress_tokens": suppress,
        "depth_decoder_suppress_tokens": suppress,
    }
    if request.temperature <= 0:
        for prefix in ("", "depth_decoder_"):
            kwargs |= {
                f"{prefix}do_sample": False,
                f"{prefix}temperature": 1.0,
                f"{prefix}top_k": None,
                f"{prefix}top_p": None,
            }
    else:
        for prefix in ("", "depth_decoder_"):
            kwargs |= {
                f"{prefix}do_sample": True,
                f"{prefix}temperature": float(request.temperature),
                f"{prefix}top_k": int(request.top_k) if request.top_k > 0 else None,
                f"{prefix}top_p": float(request.top_p) if request.top_p < 1 else None,
            }
    return kwargs


def end_frame_index(codes: torch.Tensor, eos_id: int) -> int | None:
    """Index of the first end-of-speech frame in (frames, codebooks) codes, or None.

    transformers stops when every codebook but the last equals the end id; the same rule here.
    """
    hits = (codes[:, :-1] == eos_id).all(dim=-1).nonzero()
    return int(hits[0, 0]) if hits.numel() else None


class TransformersEngine:
    """CSM-1B through transformers ``generate``: the reference implementation."""

    name = "transformers"

    def __init__(self, model_dir: Path, device: str = "auto", model: Any = None) -> None:
        """Load the checkpoint in ``model_dir`` once (offline) onto the chosen device.

        With ``model`` (the quantized engine's, whose packed products' float weights were
        never loaded) only the processor is loaded: this engine then prepares prompts and
        decodes audio for the fast engine, and cannot generate itself.
        """
        from transformers import AutoProcessor, CsmForConditionalGeneration

        check_checkpoint(model_dir)
        self.model_dir = model_dir
        torch_device = compute_device.pick_device(device)
        started = time.perf_counter()
        # a model handed in may be a skeleton whose packed products' weights are on the meta
        # device (the quantized path): transformers cannot generate with it
        self.can_generate = model is None or not any(p.is_meta for p in model.parameters())
        try:
            self.processor = AutoProcessor.from_pretrained(model_dir, local_files_only=True)
            if model is None:
                model = self._load_model(CsmForConditionalGeneration, torch_device)
            self.model = model
        except torch.cuda.OutOfMemoryError:
            log.warning("CUDA out of memory while loading; loading on the CPU instead")
            torch_device = torch.device("cpu")
            self.model = self._load_model(CsmForConditionalGeneration, torch_device)
        except (OSError, ValueError, KeyError) as exc:
            log.exception("loading %s failed", model_dir)
            raise ModelNotFoundError(
                f"the checkpoint in {model_dir} could not be loaded ({exc}); it may be damaged: "
                f"download it again"
            ) from exc
        self.load_seconds = time.perf_counter() - started
        self._torch_device = torch_device
        self.notices: list[str] = []
        codec_config = self.model.config.codec_config
        self.frame_rate = float(codec_config.frame_rate)
        self.context_positions = int(self.model.config.max_position_embeddings)
        log.info(
            "loaded %s on %s (%s) in %.2f s", model_dir, self.device, self.dtype, self.load_seconds
        )

    def _load_model(self, cls: Any, device: torch.device) -> Any:
        model = cls.from_pretrained(
            self.model_dir,
            local_files_only=True,
            use_safetensors=True,
            dtype=compute_device.pick_dtype(device),
        )
        return model.to(device).eval()

    @property
    def device(self) -> str:
        return str(self._torch_device)

    @property
    def dtype(self) -> str:
        return str(next(self.model.parameters()).dtype).removeprefix("torch.")

    @property
    def device_name(self) -> str:
        return compute_device.describe(self._torch_device)

    def turn_positions(self, speaker: int, text: str, samples: int) -> int:
        """Context positions of one prompt turn (see :func:`prompt.turn_positions`)."""
        return turn_positions(self.processor.tokenizer, speaker, text, samples)

    def max_frames(self, request: GenerationRequest) -> int:
        """Frames allowed by ``request.max_seconds``."""
        # rounded first: 1.2000000000000002 s (float arithmetic) means 15 frames, not 16
        return max(1, math.ceil(round(request.max_seconds * self.frame_rate, 6)))

    def prepare_inputs(self, request: GenerationRequest) -> Any:
        """Tokenize the conversation and check it fits the context window.

        Raises:
            RequestError: the prompt plus the maximum length do not fit in the context.
        """
        check_request(request)
        inputs = self.processor.apply_chat_template(
            build_conversation(request), tokenize=True, return_dict=True
        )
        self._check_context(inputs["input_ids"], request)
        return inputs

    def _check_context(self, input_ids: torch.Tensor, request: GenerationRequest) -> None:
        prompt_positions = int(input_ids.shape[-1])
        budget = self.max_frames(request)
        if prompt_positions + budget <= self.context_positions:
            return
        audio_positions = int((input_ids == self.model.config.audio_token_id).sum())
        other = prompt_positions - audio_positions
        room = self.context_positions - other - budget
        ctx = self.context_positions
        if room <= 0:
            raise RequestError(
                f"the text is too long for one take: with a {request.max_seconds:g} s maximum "
                f"length it needs {other + budget} of the model's {ctx} positions; "
                f"shorten the text or lower the maximum length"
            )
        given = sum(clip.seconds for clip in request.references)
        raise RequestError(
            f"the voice reference is too long: {given:.1f} s given, but with this text and a "
            f"{request.max_seconds:g} s maximum length only {room / self.frame_rate:.1f} s fit in "
            f"the model's {ctx}-position context; trim the reference or use fewer clips"
        )

    def generate(
        self,
        request: GenerationRequest,
        on_progress: ProgressCallback | None = None,
        should_stop: StopCheck | None = None,
        on_audio: AudioCallback | None = None,
    ) -> GenerationResult:
        """Generate one take; see :class:`~desktop_app.inference.engine.Engine`.

        transformers' ``generate`` cannot stream audio: ``on_audio`` gets the whole take at once.
        """
        if not self.can_generate:
            raise RequestError(
                "the transformers engine needs the float weights, and only quantized ones are "
                "loaded; load the model with --quantize none"
            )
        if request.adapter is not None:
            raise RequestError(
                "a trained voice is spoken by the fast engine only; use --engine fast"
            )
        inputs = self.prepare_inputs(request)
        seed = request.seed if request.seed is not None else random.randrange(2**31)
        notices: list[str] = []
        try:
            result = self._generate(inputs, request, seed, on_progress, should_stop, notices)
        except torch.cuda.OutOfMemoryError:
            log.warning("CUDA out of memory during generation; retrying on the CPU")
            self.move_to_cpu()
            notices.append(CPU_FALLBACK_NOTICE)
            result = self._generate(inputs, request, seed, on_progress, should_stop, notices)
        if on_audio is not None:
            on_audio(result.audio)
        return result

    def generate_batch(
        self,
        requests: Sequence[GenerationRequest],
        on_progress: ProgressCallback | None = None,
        should_stop: StopCheck | None = None,
        on_part_audio: PartAudioCallback | None = None,
    ) -> list[GenerationResult]:
        """The takes one after another: the reference has no batched loop."""
        return one_by_one(self, requests, on_progress, should_stop, on_part_audio)

    def move_to_cpu(self) -> None:
        """Move the weights to the CPU in float32 (after CUDA ran out of memory)."""
        self.model = self.model.to(device="cpu", dtype=torch.float32)
        self._torch_device = torch.device("cpu")
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _generate(
        self,
        inputs: Any,
        request: GenerationRequest,
        seed: int,
        on_progress: ProgressCallback | None,
        should_stop: StopCheck | None,
        notices: list[str],
    ) -> GenerationResult:
        model_dtype = next(self.model.parameters()).dtype
        batch = {k: v.to(self._torch_device) for k, v in inputs.items()}
        if "input_values" in batch:
            batch["input_values"] = batch["input_values"].to(model_dtype)
        max_frames = self.max_frames(request)
        check_stop(should_stop)
        clock = _FrameClock(self.frame_rate, on_progress, should_stop)
        torch.manual_seed(seed)
        try:
            with torch.inference_mode():
                codes = self.model.generate(
                    **batch,
                    **sampling_kwargs(self.model.config, request, max_frames),
                    streamer=clock,
                )[0]
        except _StopRequested:
            raise GenerationCancelled() from None
        end = end_frame_index(codes, int(self.model.config.codebook_eos_token_id))
        stopped_by = "end-frame" if end is not None else "max-length"
        codes = codes[:end] if end is not None else codes
        audio = self.decode(codes)
        check_stop(should_stop)
        timings = GenerationTimings.measured(
            clock.started, clock.stamps, time.perf_counter(), len(audio) / SAMPLE_RATE
        )
        timings = dataclasses.replace(timings, first_audio_s=timings.total_s)  # all at the end
        return GenerationResult(
            audio=audio,
            codes=codes.cpu().numpy().astype(np.int64),
            frames=int(codes.shape[0]),
            stopped_by=stopped_by,
            seed=seed,
            timings=timings,
            device=self.device,
            dtype=self.dtype,
            engine=self.name,
            notices=tuple(notices),
        )

    def decode(self, codes: torch.Tensor) -> np.ndarray:
        """Mimi-decode (frames, codebooks) codes to 24 kHz float32 audio."""
        if codes.shape[0] == 0:
            return np.zeros(0, dtype=np.float32)
        with torch.inference_mode():
            out = self.model.codec_model.decode(codes.T.unsqueeze(0).to(self._torch_device))
        return out.audio_values[0, 0].float().cpu().numpy().astype(np.float32)
