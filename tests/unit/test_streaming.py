"""Streaming: Mimi decoded piece by piece equals the whole decode; the take is the pieces joined."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from desktop_app.inference.streaming import StreamingDecoder
from tests.unit.test_fast_engine import greedy


def test_streaming_decoder_equals_the_whole_decode(tiny_engine: Any) -> None:
    codec = tiny_engine.model.codec_model
    # 300 frames: past the decoder transformer's sliding window (250 steps at 25 Hz)
    generator = torch.Generator().manual_seed(0)
    codes = torch.randint(
        0,
        codec.config.codebook_size,
        (300, tiny_engine.model.config.num_codebooks),
        generator=generator,
    )
    whole = tiny_engine.decode(codes)
    decoder = StreamingDecoder(codec)
    pieces, start, sizes = [], 0, [1, 3, 4, 7, 2]
    for step in range(10_000):
        if start >= codes.shape[0]:
            break
        size = sizes[step % len(sizes)]
        piece = decoder.decode(codes[start : start + size])
        assert piece.size == min(size, codes.shape[0] - start) * 1920  # 80 ms per frame
        pieces.append(piece)
        start += size
    streamed = np.concatenate(pieces)
    assert streamed.shape == whole.shape
    np.testing.assert_allclose(streamed, whole, atol=1e-4 * float(np.abs(whole).max()))
    # a reset starts a new stream: the first pieces come out again
    decoder.reset()
    np.testing.assert_allclose(decoder.decode(codes[:4]), whole[: 4 * 1920], atol=1e-4)


def test_the_reference_engine_hands_the_take_over_in_one_piece(tiny_engine: Any) -> None:
    pieces: list[np.ndarray] = []
    result = tiny_engine.generate(greedy(seconds=0.8), on_audio=pieces.append)
    assert len(pieces) == 1
    np.testing.assert_array_equal(pieces[0], result.audio)
    assert result.timings.first_audio_s == result.timings.total_s
