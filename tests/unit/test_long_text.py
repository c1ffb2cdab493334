"""Long texts: chunked, batched, joined without clicks; one part can be made again."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from desktop_app.inference import GenerationRequest
from desktop_app.inference.long_text import (
    FADE_SECONDS,
    JoinedStream,
    chunk_requests,
    generate_long,
    join_audio,
    replace_part,
    speak,
)
from desktop_app.inference.text import PARAGRAPH_PAUSE, SENTENCE_PAUSE
from tests.unit.test_fast_engine import two_clips

TEXT = (
    "The morning train was late again, so I walked along the river. "
    "Could you bring the blue notebook from the kitchen table?\n\n"
    "Honestly, I did not expect the concert to be that good."
)


def request(seconds: float = 0.8, seed: int = 11) -> GenerationRequest:
    return GenerationRequest(TEXT, two_clips(), temperature=0.9, seed=seed, max_seconds=seconds)


def test_chunks_get_consecutive_seeds_and_each_gets_the_cap() -> None:
    requests, pauses, seed = chunk_requests(request(seconds=1.5))
    assert seed == 11 and [r.seed for r in requests] == [11, 12, 13]
    assert all(r.max_seconds == 1.5 for r in requests)
    assert pauses == [SENTENCE_PAUSE, PARAGRAPH_PAUSE, 0.0]


def test_a_long_text_is_one_batch_joined_with_pauses(engines: tuple[Any, Any]) -> None:
    fast, _ = engines
    take = generate_long(fast, request())
    assert len(take.parts) == 3 and "batch of 3" in take.engine
    # each part equals that chunk made alone with its own seed
    for part, alone in zip(take.parts, chunk_requests(request())[0], strict=True):
        np.testing.assert_array_equal(part.result.codes, fast.generate(alone).codes)
    expected = sum(p.result.audio.size for p in take.parts) + round(
        (SENTENCE_PAUSE + PARAGRAPH_PAUSE) * 24_000
    )
    assert take.audio.size == expected
    assert take.frames == sum(p.result.frames for p in take.parts)
    # one part made again with another seed: only that stretch of the take changes
    part = take.parts[1]
    again = fast.generate(dataclasses.replace(chunk_requests(request())[0][1], seed=99))
    changed = replace_part(take, 1, again)
    assert changed.parts[0] == take.parts[0] and changed.parts[2] == take.parts[2]
    assert changed.parts[1].result.seed == 99 and part.result.seed == 12
    start = take.parts[0].result.audio.size
    np.testing.assert_array_equal(changed.audio[: start - 300], take.audio[: start - 300])


def test_joins_have_no_click() -> None:
    """Pieces that end and begin at full swing: the join's steps stay within the audio's own."""
    rate = 24_000
    t = np.arange(rate) / rate
    a = (-0.9 * np.sin(2 * np.pi * 220 * t + 1.3)).astype(np.float32)  # ends near -0.86
    b = (0.9 * np.cos(2 * np.pi * 330 * t)).astype(np.float32)  # starts at its peak
    for pause in (0.0, SENTENCE_PAUSE):
        joined = join_audio([a, b], [pause, 0.0], rate)
        assert joined.size == a.size + b.size + round(pause * rate)
        steps = np.abs(np.diff(joined))
        fade = int(FADE_SECONDS * rate)
        around = slice(a.size - 2 * fade, a.size + round(pause * rate) + 2 * fade)
        normal = max(np.abs(np.diff(a)).max(), np.abs(np.diff(b)).max())
        assert steps[around].max() <= normal * 1.01
        # a plain concatenation would have clicked
        assert np.abs(np.diff(np.concatenate([a, b]))).max() > 3 * normal


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 900), min_size=1, max_size=4),
    cuts=st.lists(st.integers(1, 400), min_size=1, max_size=6),
    pause=st.sampled_from([0.0, 0.01, SENTENCE_PAUSE]),
)
def test_joining_parts_as_they_stream_equals_joining_them_whole(
    sizes: list[int], cuts: list[int], pause: float
) -> None:
    """Parts shorter than the fade, empty parts, pieces of any size: the same samples."""
    rate = 24_000
    rng = np.random.default_rng(len(sizes) * 1000 + sum(sizes))
    parts = [rng.uniform(-1, 1, size).astype(np.float32) for size in sizes]
    pauses = [pause] * len(parts)
    out: list[np.ndarray] = []
    joiner = JoinedStream(out.append, pauses, rate)
    for index, part in enumerate(parts):
        start = 0
        for cut in cuts * (part.size // sum(cuts) + 1):
            if start >= part.size:
                break
            joiner.feed(index, part[start : start + cut])
            start += cut
    joiner.close()
    streamed = np.concatenate(out) if out else np.zeros(0, dtype=np.float32)
    np.testing.assert_array_equal(streamed, join_audio(parts, pauses, rate))
    fade = int(FADE_SECONDS * rate)
    whole = [p.copy() for p in parts]
    expected: list[np.ndarray] = []  # the fades written out once more, plainly
    ramp = (0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, fade))).astype(np.float32)
    for index, part in enumerate(whole):
        n = min(fade, part.size)
        if index > 0:
            part[:n] *= ramp[:n]
        if index < len(whole) - 1:
            part[part.size - n :] *= ramp[:n][::-1]
            expected += [part, np.zeros(round(pause * rate), dtype=np.float32)]
        else:
            expected.append(part)
    np.testing.assert_array_equal(streamed, np.concatenate(expected))


def test_a_long_text_streams_while_the_batch_runs(engines: tuple[Any, Any]) -> None:
    fast, _ = engines
    whole = generate_long(fast, request(seconds=1.2))
    pieces: list[tuple[int, np.ndarray]] = []
    frames: list[int] = []
    streamed = speak(
        fast,
        request(seconds=1.2),
        on_progress=lambda f, s: frames.append(f),
        on_audio=lambda piece: pieces.append((len(frames), piece.copy())),
    )
    # the first audio comes with the first frame (before its progress is told), while the other
    # chunks are still being made
    assert pieces[0][0] == 0 and len(pieces) > 3
    joined = np.concatenate([p for _, p in pieces])
    np.testing.assert_array_equal(joined, streamed.audio)  # the take is what was streamed
    for mine, theirs in zip(streamed.parts, whole.parts, strict=True):
        np.testing.assert_array_equal(mine.result.codes, theirs.result.codes)
    np.testing.assert_allclose(streamed.audio, whole.audio, atol=1e-4)
    t = streamed.timings
    assert t.first_audio_s is not None and t.first_audio_s < t.total_s / 2
