"""The fast engine: CSM's decode loop written out over static caches, one CUDA graph per frame.

It reuses the checkpoint's modules and weights (the transformers engine it wraps holds the only
copy; the fused QKV and gate/up matrices are made the storage of the original ``nn.Linear``
weights, which become views into them). Per frame it runs the backbone step, the codebook-0 head,
the depth decoder unrolled over the codebooks, and temperature/top-k/top-p sampling on the device
with no host synchronisation; whether the all-zero end frame has appeared is read back only every
few frames. On CUDA one frame is captured once as a CUDA graph and replayed; on the CPU the same
``_frame`` function runs eagerly.

Sampling settings live in device tensors, so one captured graph serves every temperature, top-k and
top-p. Random numbers come from a seeded generator that fills a noise buffer before each frame
(exponential race: argmax(p / E) with E ~ Exp(1) draws exactly from p), so a seed reproduces a take.

The voice prompt's KV cache is kept between takes: when the next take has the same reference turns
(same tokens, same audio, same device and dtype), only the new text turn is prefilled.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from desktop_app.errors import RequestError
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
from desktop_app.inference.hf_engine import CPU_FALLBACK_NOTICE, TransformersEngine
from desktop_app.inference.prompt import SAMPLES_PER_FRAME
from desktop_app.inference.streaming import END_CHECK_EVERY, AudioStream, ResumableAudio
from desktop_app.inference.transformers_compat import prompt_embeddings

log = logging.getLogger(__name__)

QUANTIZE_CHOICES = ("", "int8")
"""Weight quantization of the fast engine: none, or int8 on the CPU (benchmarks/cpu_int8.py)."""

GRAPH_CHECK_FRAMES = 4
"""Greedy frames that a newly captured graph must make exactly as the eager loop does."""


def _rms_norm(x: torch.Tensor, norm: Any) -> torch.Tensor:
    """transformers' CsmRMSNorm, op for op (float32 statistics, cast back, then scale)."""
    dtype = x.dtype
    xf = x.to(torch.float32)
    xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + norm.variance_epsilon)
    return norm.weight * xf.to(dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _fuse(linears: list[nn.Linear]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Concatenate the weights (and biases) of ``linears`` and make each module's weight a view
    into the result, so the fused matrix is the only copy in memory."""
    weight = torch.cat([lin.weight.data for lin in linears], dim=0)
    has_bias = all(lin.bias is not None for lin in linears)
    bias = torch.cat([lin.bias.data for lin in linears]) if has_bias else None
    start = 0
    for lin in linears:
        rows = lin.weight.shape[0]
        lin.weight.data = weight[start : start + rows]
        if bias is not None and lin.bias is not None:
            lin.bias.data = bias[start : start + rows]
        start += rows
    return weight, bias


Linear = Callable[[torch.Tensor], torch.Tensor]
"""A matrix product ``x -> x @ W.T + b``, whatever holds the weights."""


SMALL_BATCH_ROWS = 16
"""Up to this many rows (a batch's frame), a CPU product runs as ``weight @ x.T``."""


def dense(weight: torch.Tensor, bias: torch.Tensor | None = None) -> Linear:
    """``x @ weight.T + bias`` with the float weights.

    On the CPU, for 2 to 16 rows (a batched frame) the product is computed as
    ``(weight @ x.T).T``: the BLAS then streams the weight once, as for one row, where
    ``F.linear`` takes a general matrix product that repacks the whole weight on every call
    (measured on 2 cores with a 8192 x 2048 weight: 5 rows 28 ms against 7.9 ms, one row 5.9
    ms; see benchmarks/results/README.md). One row and long inputs (a prefill) keep ``F.linear``.
    """

    def product(x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // x.shape[-1]
        if x.device.type != "cpu" or not 1 < rows <= SMALL_BATCH_ROWS:
            return F.linear(x, weight, bias)
        flat = x.reshape(rows, x.shape[-1])
        out = (weight @ flat.T).T.contiguous()
        if bias is not None:
            out = out + bias
        return out.reshape(*x.shape[:-1], weight.shape[0])

    return product


def times(weight: torch.Tensor) -> Linear:
    """``x @ weight`` for a weight stored (in features, out features)."""
    return lambda x: x @ weight


@dataclass(frozen=True)
class _CodesPlan:
    """A prompt whose audio turns (some) carry their codes: a key per position (what it holds:
    a text token, a frame's codes, or frame i of some encoded audio), the positions whose
    embedding comes from given codes, and the last position of audio that must be encoded (a
    prefill may start after it only: that audio is then in the cache)."""

    keys: list[bytes]
    code_rows: list[tuple[int, np.ndarray]]
    last_waveform: int  # -1: none


@dataclass
class _Layer:
    """One decoder layer's weights, QKV and gate/up fused."""

    source: Any  # the checkpoint's decoder layer these weights belong to
    input_norm: Any
    post_norm: Any
    qkv_w: torch.Tensor
    qkv_b: torch.Tensor | None
    o_proj: Linear
    gate_up_w: torch.Tensor
    gate_up_b: torch.Tensor | None
    down_proj: Linear
    act: Any
    heads: int
    kv_heads: int
    head_dim: int
    # the four matrix products, as callables: the float weights above, or int8 ones (cpu_int8)
    qkv: Linear = dataclasses.field(init=False)
    gate_up: Linear = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.qkv = dense(self.qkv_w, self.qkv_b)
        self.gate_up = dense(self.gate_up_w, self.gate_up_b)

    @classmethod
    def of(cls, layer: Any) -> _Layer:
        attn, mlp = layer.self_attn, layer.mlp
        qkv_w, qkv_b = _fuse([attn.q_proj, attn.k_proj, attn.v_proj])
        gate_up_w, gate_up_b = _fuse([mlp.gate_proj, mlp.up_proj])
        return cls(
            source=layer,
            input_norm=layer.input_layernorm,
            post_norm=layer.post_attention_layernorm,
            qkv_w=qkv_w,
            qkv_b=qkv_b,
            o_proj=dense(attn.o_proj.weight, attn.o_proj.bias),
            gate_up_w=gate_up_w,
            gate_up_b=gate_up_b,
            down_proj=dense(mlp.down_proj.weight, mlp.down_proj.bias),
            act=mlp.act_fn,
            heads=attn.q_proj.weight.shape[0] // attn.head_dim,
            kv_heads=attn.k_proj.weight.shape[0] // attn.head_dim,
            head_dim=attn.head_dim,
        )

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        positions: torch.Tensor,
        kv_len: int,
        mask: torch.Tensor | None,
        rows: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Run the layer on ``x`` (batch, tokens, hidden) at ``positions``, updating the cache.

        With ``rows`` (batched decoding, one token per row) ``positions`` holds each row's own
        position, and each row's key and value land at that position in its cache row.
        """
        batch, tokens, _ = x.shape
        h = _rms_norm(x, self.input_norm)
        qkv = self.qkv(h)
        q_size, kv_size = self.heads * self.head_dim, self.kv_heads * self.head_dim
        q, k, v = qkv.split([q_size, kv_size, kv_size], dim=-1)
        q = q.view(batch, tokens, self.heads, self.head_dim).transpose(1, 2)
        k = k.view(batch, tokens, self.kv_heads, self.head_dim).transpose(1, 2)
        v = v.view(batch, tokens, self.kv_heads, self.head_dim).transpose(1, 2)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        if rows is None:
            k_cache.index_copy_(2, positions, k)
            v_cache.index_copy_(2, positions, v)
        else:
            k_cache[rows, :, positions] = k[:, :, 0]
            v_cache[rows, :, positions] = v[:, :, 0]
        attn = F.scaled_dot_product_attention(
            q,
            k_cache[:, :, :kv_len],
            v_cache[:, :, :kv_len],
            attn_mask=mask,
            is_causal=mask is None and tokens > 1,
            scale=self.head_dim**-0.5,
            enable_gqa=self.heads != self.kv_heads,
        )
        x = x + self.o_proj(attn.transpose(1, 2).reshape(batch, tokens, q_size))
        h = _rms_norm(x, self.post_norm)
        gate, up = self.gate_up(h).chunk(2, dim=-1)
        return x + self.down_proj(self.act(gate) * up)


class _Stack:
    """A stack of decoder layers with its own static KV cache and RoPE tables."""

    def __init__(
        self,
        layers: nn.ModuleList,
        norm: nn.Module,
        rotary: nn.Module,
        positions: int,
        batch: int,
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        self.layers = [_Layer.of(layer) for layer in layers]
        self.norm = norm
        self.positions = positions
        probe = torch.zeros(1, dtype=dtype, device=device)
        cos, sin = rotary(probe, torch.arange(positions, device=device)[None])
        self.cos, self.sin = cos[0], sin[0]  # (positions, head_dim), in the model's dtype
        self._allocate(batch, dtype, device)

    def _allocate(self, batch: int, dtype: torch.dtype, device: torch.device) -> None:
        first = self.layers[0]
        shape = (len(self.layers), batch, first.kv_heads, self.positions, first.head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)

    def with_batch(self, batch: int, positions: int | None = None) -> _Stack:
        """The same layers and weights with a cache of its own: ``batch`` rows of ``positions``
        (default: as many as this stack has)."""
        other = object.__new__(_Stack)
        other.layers, other.norm = self.layers, self.norm
        other.positions = min(positions or self.positions, self.positions)
        other.cos, other.sin = self.cos, self.sin
        other._allocate(batch, self.k.dtype, self.k.device)
        return other

    def forward(
        self,
        x: torch.Tensor,
        positions: torch.Tensor,
        kv_len: int,
        mask: torch.Tensor | None,
        cache_rows: slice = slice(None),
        per_row: bool = False,
    ) -> torch.Tensor:
        """Normed hidden states for ``x`` at ``positions``; keys/values land in the cache.

        ``cache_rows`` picks the cache rows ``x`` belongs to; ``per_row`` means one token per row
        at each row's own position (batched decoding).
        """
        rows = None
        cos, sin = self.cos[positions], self.sin[positions]
        if per_row:
            rows = torch.arange(x.shape[0], device=x.device)
            cos, sin = cos[:, None, None, :], sin[:, None, None, :]
        for i, layer in enumerate(self.layers):
            k, v = self.k[i][cache_rows], self.v[i][cache_rows]
            x = layer.forward(x, cos, sin, k, v, positions, kv_len, mask, rows)
        return _rms_norm(x, self.norm)


def filter_logits(
    logits: torch.Tensor,
    temperature: torch.Tensor,
    top_k: torch.Tensor,
    top_p: torch.Tensor,
) -> torch.Tensor:
    """transformers' temperature, top-k and top-p warpers, in that order, with tensor settings.

    ``top_k`` of 0 or at least the vocabulary, and ``top_p`` of 1, leave the logits as they are, as
    transformers does when it leaves those warpers out.
    """
    scores = logits / temperature
    vocab = scores.shape[-1]
    descending = torch.sort(scores, dim=-1, descending=True).values
    k = torch.where(top_k > 0, top_k.clamp(max=vocab), vocab) - 1
    kth = descending.gather(-1, k.expand(scores.shape[0], 1))
    scores = scores.masked_fill(scores < kth, -math.inf)
    ascending, order = torch.sort(scores, dim=-1)
    cumulative = ascending.softmax(dim=-1).cumsum(dim=-1)
    remove = cumulative <= (1 - top_p)
    remove[..., -1:] = False
    remove = remove.scatter(-1, order, remove)
    return scores.masked_fill(remove, -math.inf)


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
        self._want_graph = use_cuda_graph
        self.padded_batches = padded_batches  # None: padded on CUDA, shrinking elsewhere
        self.batch_states: dict[int, Any] = {}  # fast_batch's kept state per padded bucket
        self.batch_graph_off_reason = ""
        self._graph: Any = None
        self.graph_off_reason = ""  # why CUDA graphs are off for the rest of this run, if so
        self._prompt_key: str | None = None
        self._cache_keys: list[bytes] | None = None
        self.prefilled_positions = 0  # how many positions the last prefill computed
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
        model = self.reference.model
        config = model.config
        device = next(model.parameters()).device
        dtype = next(model.parameters()).dtype
        self.torch_device, self.torch_dtype = device, dtype
        self.codec_dtype = next(model.codec_model.parameters()).dtype
        self.num_codebooks = int(config.num_codebooks)
        self.vocab = int(config.vocab_size)
        self.codec_size = int(config.codec_config.codebook_size)
        self.context = int(config.max_position_embeddings)
        self.backbone = _Stack(
            model.backbone_model.layers,
            model.backbone_model.norm,
            model.backbone_model.rotary_emb,
            self.context,
            1,
            dtype,
            device,
        )
        depth = model.depth_decoder
        self.depth = _Stack(
            depth.model.layers,
            depth.model.norm,
            depth.model.rotary_emb,
            self.num_codebooks,
            1,
            dtype,
            device,
        )
        self.audio_embed = model.backbone_model.embed_tokens.embed_audio_tokens
        self.audio_offsets = torch.arange(self.num_codebooks, device=device) * int(
            config.codebook_size
        )
        self.depth_embed = depth.model.embed_tokens
        projector = depth.model.inputs_embeds_projector
        self.depth_projector: Linear = dense(projector.weight, projector.bias)
        self.codebook_heads = depth.codebooks_head.weight  # (codebooks - 1, hidden, vocab)
        # codebook b's logits: codebook_head[b - 1](h); these weights are stored (in, out), and
        # h @ head is the fast way round for them (head.T @ h.T was 11x slower for 5 rows)
        self.codebook_head: list[Linear] = [times(head) for head in self.codebook_heads]
        # the module itself (one product per frame; tests reach the end frame through its hook)
        self.lm_head: Linear = model.lm_head
        self.eos = int(config.codebook_eos_token_id)
        # frame state: everything a frame reads or writes lives at a fixed address
        self.hidden = torch.zeros(1, int(config.hidden_size), dtype=dtype, device=device)
        self.position = torch.zeros(1, dtype=torch.long, device=device)
        self.frame_index = torch.zeros(1, dtype=torch.long, device=device)
        self.codes = torch.zeros(
            1, self.context, self.num_codebooks, dtype=torch.long, device=device
        )
        self.noise = torch.ones(
            1, self.num_codebooks, self.vocab, dtype=torch.float32, device=device
        )
        self.temperature = torch.ones(1, 1, dtype=torch.float32, device=device)
        self.top_k = torch.zeros(1, 1, dtype=torch.long, device=device)
        self.top_p = torch.ones(1, 1, dtype=torch.float32, device=device)
        self.greedy = torch.zeros(1, 1, dtype=torch.bool, device=device)
        self.suppress = torch.zeros(self.vocab, dtype=torch.bool, device=device)
        self.suppress[self.codec_size :] = True
        self.all_positions = torch.arange(self.context, device=device)
        self._graph = None
        self._prompt_key = None
        self._cache_keys = None  # what each cached position holds
        self.batch_states = {}
        if self.quantize == "int8":
            self.use_int8()

    def use_int8(self) -> None:
        """Give the frame loop int8 matrix products (:mod:`cpu_int8` makes each one; the engine
        puts them in its own places, so the quantization knows no engine).

        Raises:
            ValueError: the engine is not on the CPU in float32.
        """
        from desktop_app.inference.cpu_int8 import int8_linear

        if self.torch_device.type != "cpu" or self.torch_dtype != torch.float32:
            raise ValueError("int8 weights are for the CPU engine in float32")
        for stack in (self.backbone, self.depth):
            for layer in stack.layers:
                layer.qkv = int8_linear(layer.qkv_w, layer.qkv_b)
                layer.gate_up = int8_linear(layer.gate_up_w, layer.gate_up_b)
                attn, mlp = layer.source.self_attn, layer.source.mlp
                layer.o_proj = int8_linear(attn.o_proj.weight, attn.o_proj.bias)
                layer.down_proj = int8_linear(mlp.down_proj.weight, mlp.down_proj.bias)
        model = self.reference.model
        self.lm_head = int8_linear(model.lm_head.weight, model.lm_head.bias)
        self.codebook_head = [int8_linear(head.T) for head in self.codebook_heads]
        projector = model.depth_decoder.model.inputs_embeds_projector
        self.depth_projector = int8_linear(projector.weight, projector.bias)

    def pads_batches(self) -> bool:
        """Whether batches run padded to a bucket (CUDA's default: one graph per bucket) rather
        than shrinking as rows end (the CPU's default: finished rows stop costing)."""
        if self.padded_batches is None:
            return self.torch_device.type == "cuda"
        return self.padded_batches

    def graphs_batches(self) -> bool:
        """Whether a padded batch's frame runs as a CUDA graph."""
        return self._uses_graph() and not self.batch_graph_off_reason

    def drop_batch_graphs(self, reason: str) -> str:
        """Turn the batch graphs off for this run, saying why in the log; the takes' notice."""
        log.warning("CUDA graphs for batches turned off: %s; going on eagerly", reason)
        self.batch_graph_off_reason = reason
        for state in self.batch_states.values():
            state.graph = None
        return f"the CUDA graph was turned off ({reason}); the batch was made without it (slower)"

    def _uses_graph(self) -> bool:
        """CUDA graphs on CUDA unless turned off (``use_cuda_graph=False``, or a failure this
        run); ``use_cuda_graph=True`` asks for them anywhere (a capture on the CPU fails, and
        the take goes on without it)."""
        if self.graph_off_reason:
            return False
        if self._want_graph is None:
            return self.torch_device.type == "cuda"
        return self._want_graph

    def _drop_graph(self, reason: str) -> str:
        """Turn graphs off for this run, saying why in the log; the notice for the take."""
        log.warning("CUDA graphs turned off: %s; going on with the eager loop", reason)
        self._graph = None
        self.graph_off_reason = reason
        return f"the CUDA graph was turned off ({reason}); the take was made without it (slower)"

    def _prepare_graph(self, inputs: Any, voice_len: int, key: str) -> str:
        """Capture the frame graph and check its first greedy frames against the eager loop's on
        this prompt; the prompt is prefilled again afterwards. Returns "" when the graph is good,
        else the take's notice (graphs are then off for the run)."""
        try:
            self._graph = self._capture()
            greedy = GenerationRequest("-", temperature=0)
            self.set_sampling(greedy, 0)
            start = int(inputs["input_ids"].shape[1])
            for i in range(GRAPH_CHECK_FRAMES):
                self._frame(start + i)
            eager = self.codes[0, :GRAPH_CHECK_FRAMES].clone()
            self.prefill(inputs, voice_len, key)
            for _ in range(GRAPH_CHECK_FRAMES):
                self._graph.replay()
            graphed = self.codes[0, :GRAPH_CHECK_FRAMES].clone()
            self.prefill(inputs, voice_len, key)
        except torch.cuda.OutOfMemoryError:
            self._graph = None
            raise  # the engine's CPU fall-back handles it
        except Exception as exc:  # whatever the capture raises, the take goes on without it
            self.prefill(inputs, voice_len, key)
            return self._drop_graph(f"capturing it failed: {type(exc).__name__}: {exc}")
        if not torch.equal(eager, graphed):
            return self._drop_graph(
                f"its first {GRAPH_CHECK_FRAMES} greedy frames differ from the eager loop's"
            )
        return ""

    # -- one frame -----------------------------------------------------------------------------

    def _sample(self, logits: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """One code per row: greedy argmax, or an exponential race over the filtered softmax."""
        logits = logits.to(torch.float32).masked_fill(self.suppress, -math.inf)
        greedy = logits.argmax(dim=-1)
        probs = filter_logits(logits, self.temperature, self.top_k, self.top_p).softmax(dim=-1)
        drawn = (probs / noise).argmax(dim=-1)
        return torch.where(self.greedy[:, 0], greedy, drawn)

    def frame_codes(self, hidden: torch.Tensor, depth: _Stack, noise: torch.Tensor) -> torch.Tensor:
        """One frame's codes (batch, codebooks) from the backbone's last hidden state."""
        codes = [self._sample(self.lm_head(hidden), noise[:, 0])]
        # depth decoder: position 0 is the backbone state, position 1 codebook 0 (as transformers
        # runs them: together, then one position at a time)
        first = self.depth_embed(codes[0])
        x = self.depth_projector(torch.stack([hidden, first], dim=1))
        h = depth.forward(x, self.all_positions[:2], 2, None)[:, -1]
        for book in range(1, self.num_codebooks):
            codes.append(self._sample(self.codebook_head[book - 1](h), noise[:, book]))
            if book + 1 == self.num_codebooks:
                break
            x = self.depth_projector(self.depth_embed(codes[-1] + book * self.vocab))[:, None]
            h = depth.forward(x, self.all_positions[book + 1 : book + 2], book + 2, None)[:, -1]
        return torch.stack(codes, dim=1)

    def _frame(self, position: int | None) -> None:
        """Make one frame from ``self.hidden`` and step the backbone with it.

        ``position`` is the backbone position as a Python int on the eager path (attention then
        reads only the filled part of the cache); None inside a CUDA graph, where attention
        reads the whole cache under a mask built from ``self.position``.
        """
        frame = self.frame_codes(self.hidden, self.depth, self.noise)
        self.codes.index_copy_(1, self.frame_index, frame[:, None])
        embed = self.audio_embed(frame + self.audio_offsets).sum(dim=1, keepdim=True)
        if position is None:
            mask = (self.all_positions <= self.position)[None, None, None]
            out = self.backbone.forward(embed, self.position, self.context, mask)
        else:
            out = self.backbone.forward(embed, self.position, position + 1, None)
        self.hidden.copy_(out[:, -1])
        self.position += 1
        self.frame_index += 1

    def _capture(self) -> Any:
        """Record one frame of a single take as a CUDA graph."""
        return self.capture(
            lambda: self._frame(None), [self.hidden, self.position, self.frame_index]
        )

    def capture(self, frame: Callable[[], None], state: list[torch.Tensor]) -> Any:
        """Record ``frame`` as a CUDA graph, leaving the tensors of ``state`` as they were (the
        warm-up runs it twice)."""
        saved = [t.clone() for t in state]
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):  # warm-up: lazy cuBLAS/cuDNN initialisation happens here
                frame()
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            frame()
        for target, value in zip(state, saved, strict=True):
            target.copy_(value)
        return graph

    # -- prefill -------------------------------------------------------------------------------

    def prompt_of(self, request: GenerationRequest) -> tuple[Any, int, str]:
        """Tokenized prompt, the length of its voice part, and a key for that voice part."""
        inputs = self.reference.prepare_inputs(request)
        ids = inputs["input_ids"][0]
        bos = int(self.reference.model.config.bos_token_id)
        starts = (ids == bos).nonzero()
        voice_len = int(starts[-1, 0]) if starts.numel() else 0
        clips = [  # each clip's audio hashed once: for the voice key and the position keys
            hashlib.sha256(np.ascontiguousarray(clip.audio, dtype=np.float32).tobytes()).digest()
            for clip in request.references
        ]
        digest = hashlib.sha256()
        digest.update(ids[:voice_len].numpy().tobytes())
        for clip_digest in clips:
            digest.update(clip_digest)
        digest.update(f"{self.torch_device}{self.torch_dtype}{request.speaker}".encode())
        plan = self._codes_plan(request, ids, clips)
        if plan is not None:  # every prompt records what its positions hold
            inputs["csm_studio_codes_plan"] = plan
        return inputs, voice_len, digest.hexdigest()

    def _codes_plan(
        self, request: GenerationRequest, ids: torch.Tensor, clip_digests: list[bytes]
    ) -> _CodesPlan | None:
        """Which prompt positions hold which turn's frames, and a key per position; None when
        the prompt's audio positions do not split into the turns as expected (the prompt is
        then prefilled the usual way, the codes encoded again from the audio)."""
        model = self.reference.model
        audio_id = int(model.config.audio_token_id)
        eos_id = int(model.config.audio_eos_token_id)
        audio_at = (ids == audio_id).nonzero()[:, 0].tolist()
        counts = [math.ceil(clip.audio.size / SAMPLES_PER_FRAME) for clip in request.references]
        if sum(counts) != len(audio_at):
            return None
        keys = [b"t" + int(token).to_bytes(8, "little") for token in ids.tolist()]
        eos_frame = np.full(self.num_codebooks, self.eos, dtype=np.int64)
        for at in (ids == eos_id).nonzero()[:, 0].tolist():
            keys[at] = b"c" + eos_frame.tobytes()
        code_rows: list[tuple[int, np.ndarray]] = []
        waveform: list[int] = []
        cursor = 0
        for clip, count, clip_digest in zip(request.references, counts, clip_digests, strict=True):
            positions = audio_at[cursor : cursor + count]
            cursor += count
            if clip.codes is not None and clip.codes.shape == (count, self.num_codebooks):
                for at, row in zip(positions, clip.codes.astype(np.int64), strict=True):
                    keys[at] = b"c" + row.tobytes()
                    code_rows.append((at, row))
            else:
                for frame, at in enumerate(positions):
                    keys[at] = b"a" + clip_digest + frame.to_bytes(8, "little")
                    waveform.append(at)
        return _CodesPlan(keys, code_rows, max(waveform, default=-1))

    def prefill(self, inputs: Any, voice_len: int, key: str) -> bool:
        """Fill the backbone cache with the prompt; returns True when the voice part was reused.

        Normally the prompt carries a plan of what each position holds (:meth:`_codes_plan`)
        and only what the cache does not already hold is prefilled. Without one (its audio
        positions did not split into the turns), the voice part is reused only when it is the
        previous take's exactly.
        """
        plan = inputs.get("csm_studio_codes_plan")
        if plan is not None:
            return self._prefill_extending(inputs, plan, voice_len)
        self._cache_keys = None
        ids = inputs["input_ids"].to(self.torch_device)
        reuse = voice_len > 0 and key == self._prompt_key
        start = voice_len if reuse else 0
        embeds = (
            self.reference.model.embed_text_tokens(ids[:, start:])
            if reuse
            else self._prompt_embeds(inputs, ids)
        )
        self._prefill_from(ids, embeds, start)
        self._prompt_key = key
        return reuse

    def _prefill_extending(self, inputs: Any, plan: _CodesPlan, voice_len: int) -> bool:
        """Prefill the prompt from the first position the cache does not already hold: a take
        in the voice of the previous one prefills only its text; a conversation's next line only
        the previous line's end and its own text (that line's prompt and frames are cached).
        Turns that carry their codes are embedded from them as they are. Returns True when the
        whole voice part was kept (the notice says so)."""
        model = self.reference.model
        ids = inputs["input_ids"].to(self.torch_device)
        end = ids.shape[1]
        cached = self._cache_keys or []
        start, limit = 0, min(len(cached), end - 1)
        while start < limit and cached[start] == plan.keys[start]:
            start += 1
        if start <= plan.last_waveform:  # audio to encode after the kept part: all again
            start = 0
        if start == 0:
            embeds = self._prompt_embeds(inputs, ids)
        else:
            embeds = model.embed_text_tokens(ids[:, start:])
            eos_frame = torch.full((1, 1, self.num_codebooks), self.eos, device=self.torch_device)
            eos_embed = self.audio_embed(eos_frame + self.audio_offsets).sum(dim=2)[0, 0]
            eos_at = ids[0, start:] == int(model.config.audio_eos_token_id)
            embeds[0, eos_at] = eos_embed.to(embeds.dtype)
        for at, row in plan.code_rows:
            if at >= start:
                frame = torch.as_tensor(row, device=self.torch_device)
                embeds[0, at - start] = self.audio_embed(frame + self.audio_offsets).sum(0)
        self._prefill_from(ids, embeds, start)
        self._prompt_key = None
        self._cache_keys = list(plan.keys)
        return voice_len > 0 and start >= voice_len

    def _prompt_embeds(self, inputs: Any, ids: torch.Tensor) -> torch.Tensor:
        """The whole prompt's input embeddings, its clips encoded by the codec."""
        values = inputs.get("input_values")
        return prompt_embeddings(
            self.reference.model,
            ids,
            # the codec encodes the clips: its dtype (the same as the model's, normally)
            None if values is None else values.to(self.torch_device, self.codec_dtype),
            None if values is None else inputs["input_values_cutoffs"].to(self.torch_device),
        )

    def _prefill_from(self, ids: torch.Tensor, embeds: torch.Tensor, start: int) -> None:
        """Run the backbone over positions ``start`` to the prompt's end (``embeds``); the
        positions before ``start`` are read from the cache."""
        end = ids.shape[1]
        positions = self.all_positions[start:end]
        mask = None
        if start > 0:  # queries start mid-sequence: causal mask against the cached part
            mask = (self.all_positions[:end][None, :] <= positions[:, None])[None, None]
        out = self.backbone.forward(embeds.to(self.torch_dtype), positions, end, mask)
        self.hidden.copy_(out[:, -1])
        self.position.fill_(end)
        self.frame_index.zero_()
        self.prefilled_positions = end - start

    def remember_frames(self, codes: torch.Tensor) -> None:
        """After a take on an extending prefill: the cache now also holds these fed frames."""
        if self._cache_keys is not None:
            rows = codes.cpu().numpy().astype(np.int64)
            self._cache_keys += [b"c" + row.tobytes() for row in rows]

    def forget_cache(self) -> None:
        """The next prompt is prefilled whole (tests compare against this)."""
        self._cache_keys = None
        self._prompt_key = None

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
        stream = ResumableAudio(lambda _, piece: on_audio(piece)) if on_audio else None
        single = stream.single if stream else None
        try:
            return self._generate(request, on_progress, should_stop, single, ())
        except torch.cuda.OutOfMemoryError:
            self._fall_back_to_cpu(stream)
            notices = (CPU_FALLBACK_NOTICE,)
            result = self._generate(request, on_progress, should_stop, single, notices)
        return dataclasses.replace(result, audio=stream.audio(0)) if stream else result

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
        if self.fallback_reason or len(requests) == 1:
            return one_by_one(self, requests, on_progress, should_stop, on_part_audio)
        self._cache_keys = None  # the batch's own prefill leaves the cache as it likes
        from desktop_app.inference.fast_batch import generate_in_batches

        stream = ResumableAudio(on_part_audio) if on_part_audio else None
        try:
            return generate_in_batches(self, requests, on_progress, should_stop, stream)
        except torch.cuda.OutOfMemoryError:
            self._fall_back_to_cpu(stream)
            results = generate_in_batches(self, requests, on_progress, should_stop, stream)
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
        self._graph = None
        self.reference.move_to_cpu()
        self._build()
        if stream is not None:
            stream.resume()

    def set_sampling(self, request: GenerationRequest, seed: int) -> torch.Generator:
        greedy = request.temperature <= 0
        self.greedy.fill_(greedy)
        self.temperature.fill_(1.0 if greedy else float(request.temperature))
        self.top_k.fill_(max(0, int(request.top_k)))
        self.top_p.fill_(float(request.top_p))
        generator = torch.Generator(device=self.torch_device)
        generator.manual_seed(seed)
        return generator

    def _generate(
        self,
        request: GenerationRequest,
        on_progress: ProgressCallback | None,
        should_stop: StopCheck | None,
        on_audio: AudioCallback | None,
        notices: tuple[str, ...],
    ) -> GenerationResult:
        started = time.perf_counter()
        codec = self.reference.model.codec_model
        stream = AudioStream(codec, on_audio, started) if on_audio else None
        seed = request.seed if request.seed is not None else random.randrange(2**31)
        inputs, voice_len, key = self.prompt_of(request)  # encodes the voice clips (Mimi)
        check_stop(should_stop)
        max_frames = min(
            self.reference.max_frames(request), self.context - inputs["input_ids"].shape[1]
        )
        frame_rate = self.reference.frame_rate
        stamps: list[float] = []
        end: int | None = None
        with torch.inference_mode():
            reused = self.prefill(inputs, voice_len, key)
            check_stop(should_stop)
            graphed = self._uses_graph()
            if graphed and self._graph is None:
                problem = self._prepare_graph(inputs, voice_len, key)
                if problem:
                    graphed, notices = False, (*notices, problem)
            generator = self.set_sampling(request, seed)
            greedy = request.temperature <= 0
            position = inputs["input_ids"].shape[1]  # host copy of self.position: no sync
            checked = 0
            for done in range(1, max_frames + 1):
                if not greedy:
                    self.noise.exponential_(generator=generator)
                if graphed:
                    try:
                        self._graph.replay()
                    except torch.cuda.OutOfMemoryError:
                        raise
                    except Exception as exc:  # finish this take (and the run) without graphs
                        problem = f"replaying it failed: {type(exc).__name__}: {exc}"
                        graphed, notices = False, (*notices, self._drop_graph(problem))
                        self._frame(position)
                else:
                    self._frame(position)
                position += 1
                stamps.append(time.perf_counter())
                every = END_CHECK_EVERY if stream is None else stream.check_every()
                if done - checked >= every or done == max_frames:
                    end = self._find_end(checked, done)
                    checked = done
                    if stream is not None:
                        stream.emit(self.codes[0], end if end is not None else done)
                    if end is not None:
                        break
                if on_progress is not None:
                    on_progress(done, done / frame_rate)
                check_stop(should_stop)
            frames = end if end is not None else len(stamps)
            codes = self.codes[0, :frames].clone()
            if "csm_studio_codes_plan" in inputs:
                self.remember_frames(self.codes[0, : len(stamps)])
        audio = stream.audio() if stream is not None else self.reference.decode(codes)
        check_stop(should_stop)
        timings = GenerationTimings.measured(
            started, stamps, time.perf_counter(), len(audio) / SAMPLE_RATE
        )
        if stream is not None:
            timings = dataclasses.replace(timings, first_audio_s=stream.first_audio_s)
        return GenerationResult(
            audio=audio,
            codes=codes.cpu().numpy().astype(np.int64),
            frames=frames,
            stopped_by="end-frame" if end is not None else "max-length",
            seed=seed,
            timings=timings,
            device=self.device,
            dtype=self.dtype,
            engine=self.name,
            notices=notices + (("voice prompt reused from the previous take",) if reused else ()),
        )

    def _find_end(self, start: int, stop: int) -> int | None:
        """Index of the first end frame among frames [start, stop), read back from the device."""
        window = self.codes[0, start:stop, :-1].cpu()
        hits = (window == self.eos).all(dim=-1).nonzero()
        return start + int(hits[0, 0]) if hits.numel() else None
