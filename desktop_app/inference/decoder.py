"""CSM's two decoders written out for the frame loop: fused stacks, embeddings, heads, one frame.

It reuses the checkpoint's modules and weights (the transformers model holds the only copy; the
fused QKV and gate/up matrices are made the storage of the original ``nn.Linear`` weights, which
become views into them). One frame is the codebook-0 head on the backbone's last state, the
depth decoder over the other codebooks, each code sampled on the device (:mod:`.sampling`), and
the backbone stepped with the frame's embedding.

:class:`Decoder` holds the weights; every matrix product is a callable (:data:`Linear`) that
:meth:`Decoder.quantize` can replace with another format's, knowing nothing of the engine.
:class:`FrameState` holds what a frame reads and writes for some rows (a single take is a batch of
one); :class:`Graphs` says whether a state's frame runs as a CUDA graph and captures it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from desktop_app.inference.sampling import Sampler

log = logging.getLogger(__name__)

Linear = Callable[[torch.Tensor], torch.Tensor]
"""A matrix product ``x -> x @ W.T + b``, whatever holds the weights."""

MakeLinear = Callable[[str, torch.Tensor, torch.Tensor | None], Linear]
"""Makes a :data:`Linear` in some format for the product called ``name`` (see
:meth:`Decoder.weights`) from its float weight (out, in) and bias; a weight may be on the meta
device when the format's codes come from elsewhere (the quantized cache)."""

SMALL_BATCH_ROWS = 16
"""Up to this many rows (a batch's frame), a CPU product runs as ``weight @ x.T``."""


def rms_norm(x: torch.Tensor, norm: Any) -> torch.Tensor:
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


def dense_named(name: str, weight: torch.Tensor, bias: torch.Tensor | None) -> Linear:
    """:func:`dense` as a :data:`MakeLinear` (the float weights as they are)."""
    return dense(weight, bias)


def times(weight: torch.Tensor) -> Linear:
    """``x @ weight`` for a weight stored (in features, out features)."""
    return lambda x: x @ weight


STACK_MODULES = {"backbone": "backbone_model.layers", "depth": "depth_decoder.model.layers"}
"""Where each stack's layers are in the CSM model (an adapter names its modules so)."""

LowRankPair = tuple[torch.Tensor, torch.Tensor]
"""A LoRA pair: ``A`` (rank, in) and ``B`` (out, rank)."""


def low_rank(
    base: Linear, pairs: list[LowRankPair | None], sizes: list[int], scale: float
) -> Linear:
    """``base(x)`` plus ``scale * (x A^T) B^T`` (peft's LoRA, in its order of operations).

    A fused product (QKV, gate/up) gets one pair per part, its output ``sizes`` in order: the A's
    are stacked and the B's set block-diagonally, so the parts' paths run as two products; a
    part without a pair adds zeros.
    """
    rank = [0 if p is None else p[0].shape[0] for p in pairs]
    reference = next(p for p in pairs if p is not None)[0]
    stacked_a = torch.cat(
        [
            torch.zeros(0, reference.shape[1], dtype=reference.dtype, device=reference.device)
            if p is None
            else p[0]
            for p in pairs
        ]
    )
    block_b = torch.zeros(sum(sizes), sum(rank), dtype=reference.dtype, device=reference.device)
    row = column = 0
    for pair, size, r in zip(pairs, sizes, rank, strict=True):
        if pair is not None:
            block_b[row : row + size, column : column + r] = pair[1]
        row, column = row + size, column + r

    def product(x: torch.Tensor) -> torch.Tensor:
        delta = F.linear(F.linear(x, stacked_a.to(x.dtype)), block_b.to(x.dtype)) * scale
        return base(x) + delta

    return product


@dataclass
class Layer:
    """One decoder layer's weights, QKV and gate/up fused; its four products as callables."""

    input_norm: Any
    post_norm: Any
    qkv_w: torch.Tensor
    qkv_b: torch.Tensor | None
    o_w: torch.Tensor
    o_b: torch.Tensor | None
    gate_up_w: torch.Tensor
    gate_up_b: torch.Tensor | None
    down_w: torch.Tensor
    down_b: torch.Tensor | None
    act: Any
    heads: int
    kv_heads: int
    head_dim: int
    qkv: Linear = dataclasses.field(init=False)
    o_proj: Linear = dataclasses.field(init=False)
    gate_up: Linear = dataclasses.field(init=False)
    down_proj: Linear = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.quantize(dense_named, "")

    def weights(self, prefix: str) -> list[tuple[str, torch.Tensor, torch.Tensor | None]]:
        """The four products' names (after ``prefix``), weights and biases."""
        return [
            (f"{prefix}qkv", self.qkv_w, self.qkv_b),
            (f"{prefix}o", self.o_w, self.o_b),
            (f"{prefix}gate_up", self.gate_up_w, self.gate_up_b),
            (f"{prefix}down", self.down_w, self.down_b),
        ]

    def quantize(self, make: MakeLinear, prefix: str) -> None:
        """Make the four products with ``make`` (``dense_named``: the float weights)."""
        self.qkv, self.o_proj, self.gate_up, self.down_proj = (
            make(*named) for named in self.weights(prefix)
        )

    def adapt(self, pair_of: Callable[[str], LowRankPair | None], scale: float) -> None:
        """Add a low-rank path beside each product that has pairs (``pair_of`` the module's
        name within the layer: ``self_attn.q_proj``, ``mlp.down_proj``...)."""
        q = self.heads * self.head_dim
        kv = self.kv_heads * self.head_dim
        parts: list[tuple[str, list[str], list[int]]] = [
            ("qkv", ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"], [q, kv, kv]),
            ("o_proj", ["self_attn.o_proj"], [self.o_w.shape[0]]),
            ("gate_up", ["mlp.gate_proj", "mlp.up_proj"], [self.gate_up_w.shape[0] // 2] * 2),
            ("down_proj", ["mlp.down_proj"], [self.down_w.shape[0]]),
        ]
        for attribute, modules, sizes in parts:
            pairs = [pair_of(m) for m in modules]
            if any(p is not None for p in pairs):
                base = getattr(self, attribute)
                setattr(self, attribute, low_rank(base, pairs, sizes, scale))

    @classmethod
    def of(cls, layer: Any) -> Layer:
        attn, mlp = layer.self_attn, layer.mlp
        qkv_w, qkv_b = _fuse([attn.q_proj, attn.k_proj, attn.v_proj])
        gate_up_w, gate_up_b = _fuse([mlp.gate_proj, mlp.up_proj])
        return cls(
            input_norm=layer.input_layernorm,
            post_norm=layer.post_attention_layernorm,
            qkv_w=qkv_w,
            qkv_b=qkv_b,
            o_w=attn.o_proj.weight,
            o_b=attn.o_proj.bias,
            gate_up_w=gate_up_w,
            gate_up_b=gate_up_b,
            down_w=mlp.down_proj.weight,
            down_b=mlp.down_proj.bias,
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
        h = rms_norm(x, self.input_norm)
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
        h = rms_norm(x, self.post_norm)
        gate, up = self.gate_up(h).chunk(2, dim=-1)
        return x + self.down_proj(self.act(gate) * up)


class Stack:
    """A stack of decoder layers with its own static KV cache and RoPE tables."""

    def __init__(
        self,
        layers: nn.ModuleList,
        norm: nn.Module,
        rotary: nn.Module,
        positions: int,
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        self.layers = [Layer.of(layer) for layer in layers]
        self.norm = norm
        self.positions = positions
        probe = torch.zeros(1, dtype=dtype, device=device)
        cos, sin = rotary(probe, torch.arange(positions, device=device)[None])
        self.cos, self.sin = cos[0], sin[0]  # (positions, head_dim), in the model's dtype
        self._allocate(1, dtype, device)

    def _allocate(self, batch: int, dtype: torch.dtype, device: torch.device) -> None:
        first = self.layers[0]
        shape = (len(self.layers), batch, first.kv_heads, self.positions, first.head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)

    def with_batch(self, batch: int, positions: int | None = None) -> Stack:
        """The same layers and weights with a cache of its own: ``batch`` rows of ``positions``
        (default: as many as this stack has)."""
        other = object.__new__(Stack)
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
        return rms_norm(x, self.norm)


class Decoder:
    """The backbone and the depth decoder of a loaded CSM model, as the frame loop runs them.

    ``single`` is the state of one take over the whole context: its backbone cache is the one
    the prompt cache (:mod:`.prefill`) keeps between takes. ``buckets`` keeps padded batch
    states by size (see :mod:`.decoding`).
    """

    def __init__(self, model: Any) -> None:
        config = model.config
        # read from an embedding: with quantized weights the linears' float weights are on the
        # meta device (never loaded), the embeddings and norms are real
        device = model.embed_text_tokens.weight.device
        dtype = model.embed_text_tokens.weight.dtype
        self.device, self.dtype = device, dtype
        self.num_codebooks = int(config.num_codebooks)
        self.vocab = int(config.vocab_size)
        self.context = int(config.max_position_embeddings)
        self.eos = int(config.codebook_eos_token_id)
        self.hidden_size = int(config.hidden_size)
        backbone, depth = model.backbone_model, model.depth_decoder
        self.backbone = Stack(
            backbone.layers, backbone.norm, backbone.rotary_emb, self.context, dtype, device
        )
        self.depth = Stack(
            depth.model.layers,
            depth.model.norm,
            depth.model.rotary_emb,
            self.num_codebooks,
            dtype,
            device,
        )
        self.audio_embed = backbone.embed_tokens.embed_audio_tokens
        self.audio_offsets = torch.arange(self.num_codebooks, device=device) * int(
            config.codebook_size
        )
        self.depth_embed = depth.model.embed_tokens
        self._projector = depth.model.inputs_embeds_projector
        self.depth_projector: Linear = dense(self._projector.weight, self._projector.bias)
        self.codebook_heads = depth.codebooks_head.weight  # (codebooks - 1, hidden, vocab)
        # codebook b's logits: codebook_head[b - 1](h); these weights are stored (in, out), and
        # h @ head is the fast way round for them (head.T @ h.T was 11x slower for 5 rows)
        self.codebook_head: list[Linear] = [times(head) for head in self.codebook_heads]
        # the module itself (one product per frame; tests reach the end frame through its hook)
        self._lm_head = model.lm_head
        self.lm_head: Linear = model.lm_head
        self.sampler = Sampler(self.vocab, int(config.codec_config.codebook_size), device)
        self.all_positions = torch.arange(self.context, device=device)
        self.single = FrameState(self, self.backbone, self.depth, padded=False)
        self.buckets: dict[int, FrameState] = {}
        self._plain: list[tuple[Layer, tuple[Linear, Linear, Linear, Linear]]] | None = None
        """The layers' products without an adapter (kept by :meth:`adapt`)."""

    def weights(self) -> list[tuple[str, torch.Tensor, torch.Tensor | None]]:
        """Every product of the frame loop, named, with its float weight (out, in) and bias:
        the layers of both stacks, the codebook-0 head, the codebook heads and the depth
        decoder's input projection."""
        found = []
        for stack_name, stack in (("backbone", self.backbone), ("depth", self.depth)):
            for i, layer in enumerate(stack.layers):
                found += layer.weights(f"{stack_name}.{i}.")
        found.append(("lm_head", self._lm_head.weight, self._lm_head.bias))
        found += [
            (f"codebook_head.{b}", head.T, None) for b, head in enumerate(self.codebook_heads)
        ]
        found.append(("depth_projector", self._projector.weight, self._projector.bias))
        return found

    def quantize(self, make: MakeLinear) -> None:
        """Make every product of :meth:`weights` with ``make`` (an adapter's paths go)."""
        if self._plain is not None:
            self.adapt(None)
            self._plain = None
        for stack_name, stack in (("backbone", self.backbone), ("depth", self.depth)):
            for i, layer in enumerate(stack.layers):
                layer.quantize(make, f"{stack_name}.{i}.")
        self.lm_head = make("lm_head", self._lm_head.weight, self._lm_head.bias)
        self.codebook_head = [
            make(f"codebook_head.{b}", head.T, None) for b, head in enumerate(self.codebook_heads)
        ]
        self.depth_projector = make("depth_projector", self._projector.weight, self._projector.bias)

    def adapt(self, adapter: Any | None) -> None:
        """Run with ``adapter``'s low-rank paths beside the layers' products (None: without
        any). The plain products are kept, so changing voices never reloads a weight."""
        if self._plain is None:
            self._plain = [
                (layer, (layer.qkv, layer.o_proj, layer.gate_up, layer.down_proj))
                for stack in (self.backbone, self.depth)
                for layer in stack.layers
            ]
        for layer, products in self._plain:
            layer.qkv, layer.o_proj, layer.gate_up, layer.down_proj = products
        for state in (self.single, *self.buckets.values()):
            state.graph = None  # a captured frame runs the products it was captured with
        if adapter is None:
            return
        for stack_name, stack in (("backbone", self.backbone), ("depth", self.depth)):
            prefix = STACK_MODULES[stack_name]
            for i, layer in enumerate(stack.layers):
                start = f"{prefix}.{i}."
                pairs: dict[str, LowRankPair] = {
                    name.removeprefix(start): (
                        a.to(self.device, self.dtype),
                        b.to(self.device, self.dtype),
                    )
                    for name, (a, b) in adapter.pairs.items()
                    if name.startswith(start)
                }
                layer.adapt(pairs.get, adapter.scale)

    def embed_frame(self, frame: torch.Tensor) -> torch.Tensor:
        """The backbone's input for frames (rows, codebooks): their codes' embeddings summed."""
        return self.audio_embed(frame + self.audio_offsets).sum(dim=-2)

    def frame_codes(self, hidden: torch.Tensor, depth: Stack, noise: torch.Tensor) -> torch.Tensor:
        """One frame's codes (batch, codebooks) from the backbone's last hidden state."""
        sample = self.sampler.sample
        codes = [sample(self.lm_head(hidden), noise[:, 0])]
        # depth decoder: position 0 is the backbone state, position 1 codebook 0 (as transformers
        # runs them: together, then one position at a time)
        first = self.depth_embed(codes[0])
        x = self.depth_projector(torch.stack([hidden, first], dim=1))
        h = depth.forward(x, self.all_positions[:2], 2, None)[:, -1]
        for book in range(1, self.num_codebooks):
            codes.append(sample(self.codebook_head[book - 1](h), noise[:, book]))
            if book + 1 == self.num_codebooks:
                break
            x = self.depth_projector(self.depth_embed(codes[-1] + book * self.vocab))[:, None]
            h = depth.forward(x, self.all_positions[book + 1 : book + 2], book + 2, None)[:, -1]
        return torch.stack(codes, dim=1)


class FrameState:
    """Everything a frame reads and writes for some rows, at fixed addresses (so a CUDA graph
    can replay it): the rows' hidden states, positions, noise, codes made and caches.

    A row whose ``live`` is 0 runs on with its position frozen (a padded batch's finished or
    padding row); what it makes is never read.
    """

    def __init__(self, decoder: Decoder, backbone: Stack, depth: Stack, padded: bool) -> None:
        d = self.decoder = decoder
        rows, positions = backbone.k.shape[1], backbone.positions
        self.rows, self.padded = rows, padded
        self.backbone, self.depth = backbone, depth
        device = d.device
        self.hidden = torch.zeros(rows, d.hidden_size, dtype=d.dtype, device=device)
        self.position = torch.zeros(rows, dtype=torch.long, device=device)
        self.live = torch.ones(rows, dtype=torch.long, device=device)
        self.noise = torch.ones(rows, d.num_codebooks, d.vocab, dtype=torch.float32, device=device)
        self.codes = torch.zeros(rows, positions, d.num_codebooks, dtype=torch.long, device=device)
        self.frame_index = torch.zeros(1, dtype=torch.long, device=device)
        self.graph: Any = None

    @classmethod
    def for_rows(cls, decoder: Decoder, rows: int, positions: int, padded: bool) -> FrameState:
        """A state of its own for ``rows`` rows of ``positions`` (the decoder's weights)."""
        backbone = decoder.backbone.with_batch(rows, positions)
        return cls(decoder, backbone, decoder.depth.with_batch(rows), padded)

    def frame(self, kv_len: int | None) -> None:
        """Make one frame for every row and step the backbone with it.

        ``kv_len`` is how many cache positions attention reads on the eager path (the furthest
        row's position + 1); None inside a CUDA graph, where attention reads the whole cache
        under a mask built from the rows' positions.
        """
        d = self.decoder
        made = d.frame_codes(self.hidden, self.depth, self.noise)
        self.codes.index_copy_(1, self.frame_index, made[:, None])
        embed = d.embed_frame(made)[:, None]
        kv = self.backbone.positions if kv_len is None else kv_len
        per_row = self.rows > 1
        mask = None
        if per_row or kv_len is None:
            mask = (d.all_positions[:kv][None, :] <= self.position[:, None])[:, None, None]
        out = self.backbone.forward(embed, self.position, kv, mask, per_row=per_row)
        self.hidden.copy_(out[:, -1])
        self.position.add_(self.live)
        self.frame_index.add_(1)

    def tensors(self) -> list[torch.Tensor]:
        """What a captured frame changes besides the caches and codes (restored after capture)."""
        return [self.hidden, self.position, self.frame_index]

    def retire(self, rows: list[int]) -> None:
        """Let ``rows`` go: frozen in a padded state, cut out of every tensor otherwise."""
        if self.padded:
            self.live[rows] = 0
            return
        keep = [row for row in range(self.rows) if row not in rows]
        kept = torch.tensor(keep, device=self.hidden.device)
        self.backbone.k = self.backbone.k[:, kept]
        self.backbone.v = self.backbone.v[:, kept]
        self.depth = self.depth.with_batch(len(keep))
        self.hidden, self.position, self.live = (
            self.hidden[kept],
            self.position[kept],
            self.live[kept],
        )
        self.codes, self.noise = self.codes[kept], self.noise[kept]
        self.rows = len(keep)


class Graphs:
    """Whether frames run as CUDA graphs, captures them, and turns them off after a failure.

    Graphs are used on CUDA unless turned off (``wanted=False``, or a failure this run);
    ``wanted=True`` asks for them anywhere (a capture on the CPU fails, and the take goes on
    without it). Single takes and padded batches are turned off apart.
    """

    def __init__(self, wanted: bool | None) -> None:
        self.wanted = wanted
        self.off_reason = ""  # why graphs are off for single takes for the rest of this run
        self.batch_off_reason = ""  # the same for padded batches

    def used(self, state: FrameState) -> bool:
        """Whether ``state``'s frame is to run as a CUDA graph."""
        off_reason = self.batch_off_reason if state.padded else self.off_reason
        if off_reason:
            return False
        if self.wanted is None:
            return state.hidden.device.type == "cuda"
        return self.wanted

    def turn_off(self, state: FrameState, reason: str) -> str:
        """Turn graphs off for this run (for states like ``state``), saying why in the log;
        returns the take's notice."""
        state.graph = None
        if state.padded:
            log.warning("CUDA graphs for batches turned off: %s; going on eagerly", reason)
            self.batch_off_reason = reason
            made = "the batch was made"
        else:
            log.warning("CUDA graphs turned off: %s; going on with the eager loop", reason)
            self.off_reason = reason
            made = "the take was made"
        return f"the CUDA graph was turned off ({reason}); {made} without it (slower)"

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
