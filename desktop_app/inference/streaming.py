"""Incremental Mimi decoding: codes in, the audio they add out, keeping the codec's state.

transformers decodes Mimi codes in one piece. Mimi itself is a streaming codec: every convolution
is causal, the transposed convolutions trim their right overhang, and the decoder transformer is
causal. So a decoder that keeps, per layer, what the next chunk needs gives the same audio one
chunk at a time:

- a causal ``Conv1d`` keeps its last ``padding_total`` input samples (zeros, or the first sample
  repeated, before the first chunk: the layer's own pad mode) and puts them in front of the next
  chunk instead of padding;
- a causal ``ConvTranspose1d`` emits ``stride`` samples per input step and keeps the
  ``kernel - stride`` samples that overhang to the right, less the bias, to add to the start of
  the next chunk's output (overlap-add);
- the decoder transformer keeps its key/value cache (transformers' own, sliding window included).

It walks the checkpoint's own modules (no copy of the weights). transformers has no streaming
decoder for Mimi (its padding cache covers the encoder), hence this file.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

STREAM_FIRST = 1
"""Frames before the first piece of a streamed take is decoded and handed over."""

STREAM_EVERY = 4
"""Frames per later piece (320 ms of audio at 12.5 frames per second)."""

END_CHECK_EVERY = 8
"""Frames between two read-backs of the codes to look for the end frame (when not streaming)."""


class StreamingDecoder:
    """Decodes (frames, codebooks) codes chunk by chunk; the chunks join into one take."""

    def __init__(self, codec: Any) -> None:
        decoder: Any = getattr(codec, "decoder", None)
        if hasattr(decoder, "decoder_seanet"):  # transformers >= 5.2x: a MimiDecoderModel
            self.upsample = decoder.upsample
            self.transformer = decoder.decoder_transformer
            self.seanet = decoder.decoder_seanet
        else:  # earlier: the parts sit on the MimiModel itself
            self.upsample = codec.upsample
            self.transformer = codec.decoder_transformer
            self.seanet = codec.decoder
        self.quantizer = codec.quantizer
        parameters = inspect.signature(self.transformer.forward).parameters
        self._cache_arg = "cache" if "cache" in parameters else "past_key_values"
        self.reset()

    def reset(self) -> None:
        """Forget the previous take: the next chunk starts a new stream."""
        self._conv_tails: dict[int, torch.Tensor] = {}
        self._overhangs: dict[int, torch.Tensor] = {}
        self._cache: Any = None

    # -- the stateful layers -------------------------------------------------------------------

    def _conv(self, layer: Any, x: torch.Tensor) -> torch.Tensor:
        """A causal MimiConv1d with its left context carried over from the previous chunk."""
        pad = int(layer.padding_total)
        if int(layer.conv.stride[0]) != 1 or not layer.causal:
            raise ValueError("only causal stride-1 convolutions can stream")
        tail = self._conv_tails.get(id(layer))
        if tail is None:
            if layer.pad_mode == "replicate":
                tail = x[..., :1].expand(-1, -1, pad)
            else:
                tail = x.new_zeros(x.shape[0], x.shape[1], pad)
        x = torch.cat([tail, x], dim=-1)
        self._conv_tails[id(layer)] = x[..., x.shape[-1] - pad :]
        return layer.conv(x)

    def _conv_transpose(self, layer: Any, x: torch.Tensor) -> torch.Tensor:
        """A causal MimiConvTranspose1d: emit stride samples per step, keep the overhang."""
        conv = layer.conv
        stride = int(conv.stride[0])
        if layer.padding_left != 0:
            raise ValueError("only right-trimmed (causal) transposed convolutions can stream")
        y = conv(x)
        overhang = self._overhangs.get(id(layer))
        if overhang is not None:
            y[..., : overhang.shape[-1]] += overhang
        emitted = x.shape[-1] * stride
        rest = y[..., emitted:]
        if conv.bias is not None:
            rest = rest - conv.bias[None, :, None]  # the next chunk's output carries the bias
        self._overhangs[id(layer)] = rest
        return y[..., :emitted]

    def _seanet(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.seanet.layers:
            x = self._layer(layer, x)
        return x

    def _layer(self, layer: Any, x: torch.Tensor) -> torch.Tensor:
        kind = type(layer).__name__
        if kind == "MimiConv1d":
            return self._conv(layer, x)
        if kind == "MimiConvTranspose1d":
            return self._conv_transpose(layer, x)
        if kind == "MimiResnetBlock":
            residual = x
            for inner in layer.block:
                x = self._layer(inner, x)
            return self._layer(layer.shortcut, residual) + x
        return layer(x)  # ELU, Identity: no state

    # -- the chunk -----------------------------------------------------------------------------

    def decode(self, codes: torch.Tensor) -> np.ndarray:
        """The 24 kHz float32 samples that ``codes`` (frames, codebooks) add to the stream."""
        if codes.shape[0] == 0:
            return np.zeros(0, dtype=np.float32)
        with torch.inference_mode():
            latents = self.quantizer.decode(codes.T.unsqueeze(0))
            if self.upsample is not None:
                latents = self._conv_transpose(self.upsample, latents)
            out = self.transformer(
                latents.transpose(1, 2), use_cache=True, **{self._cache_arg: self._cache}
            )
            self._cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
            audio = self._seanet(out.last_hidden_state.transpose(1, 2))
        return audio[0, 0].float().cpu().numpy().astype(np.float32)


class AudioStream:
    """A take's audio handed over while it is made, for the engines' decode loops.

    The loop asks :meth:`check_every` how many frames to make before the next read-back, then
    calls :meth:`emit` with the codes made so far; the pieces handed to ``on_audio``, joined,
    are :meth:`audio`.
    """

    def __init__(self, codec: Any, on_audio: Callable[[np.ndarray], None], started: float) -> None:
        self.decoder = StreamingDecoder(codec)
        self.on_audio = on_audio
        self.started = started  # perf_counter at the call, for the time to first audio
        self.pieces: list[np.ndarray] = []
        self.frames = 0  # frames decoded and handed over so far
        self.first_audio_s: float | None = None

    def check_every(self) -> int:
        """Frames between two pieces: the first comes at once, the rest in steps."""
        return STREAM_FIRST if self.frames == 0 else STREAM_EVERY

    def emit(self, codes: torch.Tensor, upto: int) -> None:
        """Decode frames ``[frames, upto)`` of ``codes`` (frames, codebooks) and hand them over."""
        piece = self.decoder.decode(codes[self.frames : upto])
        self.frames = upto
        self.pieces.append(piece)
        self.on_audio(piece)
        if self.first_audio_s is None:
            self.first_audio_s = time.perf_counter() - self.started

    def audio(self) -> np.ndarray:
        """Everything handed over, joined: the take's audio."""
        return np.concatenate(self.pieces) if self.pieces else np.zeros(0, dtype=np.float32)


class ResumableAudio:
    """The ``on_part_audio`` of a batch (or, as part 0, the ``on_audio`` of one take) that a
    retried run can use again without sending anything twice.

    It counts what it passed on for each part. After :meth:`resume` (a retry, for example on
    the CPU after the GPU ran out of memory) the first samples of each part, as many as were
    already sent, are dropped, and pieces for a part before the last one sent are dropped
    whole (the listener has moved on). :meth:`audio` is what was sent for a part: the take as
    it was heard, which the retried result must carry so that the pieces, joined, stay the take.
    """

    def __init__(self, on_part_audio: Callable[[int, np.ndarray], None]) -> None:
        self.on_part_audio = on_part_audio
        self.sent: dict[int, list[np.ndarray]] = {}
        self._skip: dict[int, int] = {}
        self._closed_below = 0

    def __call__(self, index: int, piece: np.ndarray) -> None:
        if index < self._closed_below:
            return
        skip = self._skip.get(index, 0)
        if skip:
            self._skip[index] = max(0, skip - piece.size)
            piece = piece[skip:]
        if piece.size:
            self.sent.setdefault(index, []).append(piece)
            self.on_part_audio(index, piece)

    def single(self, piece: np.ndarray) -> None:
        """``on_audio`` for a single take (part 0)."""
        self(0, piece)

    def resume(self) -> None:
        """A retry starts: from now on, send each part only what it has not sent yet."""
        self._skip = {i: sum(p.size for p in pieces) for i, pieces in self.sent.items()}
        self._closed_below = max(self.sent, default=0)

    def audio(self, index: int) -> np.ndarray:
        """Everything sent for part ``index``, joined."""
        pieces = self.sent.get(index, [])
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
