"""The fast engine against the transformers oracle, on three differently shaped tiny checkpoints."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from transformers.generation.logits_process import (
    LogitsProcessorList,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from desktop_app.errors import GenerationCancelled
from desktop_app.inference import GenerationRequest, ReferenceClip, load_engine
from desktop_app.inference.decoder import FrameState
from desktop_app.inference.fast_engine import FastEngine
from desktop_app.inference.sampling import filter_logits
from desktop_app.inference.streaming import STREAM_EVERY
from tests.support.signals import voiced


def two_clips() -> tuple[ReferenceClip, ...]:
    return (
        ReferenceClip(voiced(3.0, 24_000, f0=120, seed=1), "Hello there, this is my voice."),
        ReferenceClip(voiced(2.4, 24_000, f0=180, seed=2), "And here is a second clip."),
    )


def greedy(text: str = "Say this in my voice.", seconds: float = 2.4, **kw: Any):
    return GenerationRequest(
        text, kw.pop("references", two_clips()), temperature=0, max_seconds=seconds, **kw
    )


def test_greedy_codes_equal_transformers(engines: tuple[FastEngine, Any]) -> None:
    fast, reference = engines
    want = reference.generate(greedy())
    got = fast.generate(greedy())
    assert got.frames == want.frames == 30
    np.testing.assert_array_equal(got.codes, want.codes)
    np.testing.assert_allclose(got.audio, want.audio, atol=1e-5)
    assert got.engine == "fast"


def test_second_take_reuses_the_voice_prompt_and_stays_exact(
    engines: tuple[FastEngine, Any],
) -> None:
    fast, reference = engines
    fast.generate(greedy("A first sentence."))
    second = fast.generate(greedy("Something else entirely, please."))
    assert "voice prompt reused from the previous take" in second.notices
    np.testing.assert_array_equal(
        second.codes, reference.generate(greedy("Something else entirely, please.")).codes
    )
    other_voice = greedy("Something else entirely, please.", references=two_clips()[1:])
    third = fast.generate(other_voice)
    assert third.notices == ()  # another voice: its prompt is prefilled whole
    assert (
        fast.prompts.prefilled_positions
        == fast.reference.prepare_inputs(other_voice)["input_ids"].shape[-1]
    )
    np.testing.assert_array_equal(third.codes, reference.generate(other_voice).codes)
    fast.generate(greedy("A first sentence."))
    first_clip_only = greedy("Something else entirely, please.", references=two_clips()[:1])
    fourth = fast.generate(first_clip_only)  # the cached first clip is kept, the rest made anew
    np.testing.assert_array_equal(fourth.codes, reference.generate(first_clip_only).codes)


@contextmanager
def end_frame_after(model: Any, frames: int) -> Iterator[None]:
    """From frame ``frames + 1`` on, force codebook 0 and every depth code to 0: the end frame."""
    heads = model.depth_decoder.codebooks_head.weight
    saved = heads.detach().clone()
    calls = {"n": 0}

    def hook(module: Any, args: Any, out: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] <= frames:
            return out
        with torch.no_grad():
            heads.zero_()  # all depth logits equal: greedy picks code 0
        forced = torch.full_like(out, -1e4)
        forced[..., 0] = 1e4
        return forced

    handle = model.lm_head.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()
        with torch.no_grad():
            heads.copy_(saved)


def test_end_frame_stops_both_engines_at_the_same_frame(engines: tuple[FastEngine, Any]) -> None:
    fast, reference = engines
    with end_frame_after(reference.model, 11):
        want = reference.generate(greedy(seconds=4))
    with end_frame_after(reference.model, 11):
        got = fast.generate(greedy(seconds=4))
    assert want.stopped_by == got.stopped_by == "end-frame"
    assert got.frames == want.frames == 11
    np.testing.assert_array_equal(got.codes, want.codes)


def test_seeded_sampling_is_reproducible(engines: tuple[FastEngine, Any]) -> None:
    fast, _ = engines
    req = GenerationRequest(
        "Say this.", two_clips(), temperature=0.9, top_k=50, top_p=0.95, seed=123, max_seconds=1.2
    )
    first, again = fast.generate(req), fast.generate(req)
    np.testing.assert_array_equal(first.codes, again.codes)
    other = fast.generate(GenerationRequest("Say this.", two_clips(), seed=124, max_seconds=1.2))
    assert (other.codes != first.codes).any()


@pytest.mark.parametrize(
    ("temperature", "top_k", "top_p"),
    [(0.9, 50, 1.0), (0.7, 0, 0.8), (1.3, 5, 0.5), (1.0, 2051, 1.0), (0.5, 1, 0.9)],
)
def test_filter_equals_transformers_warpers(temperature: float, top_k: int, top_p: float) -> None:
    logits = torch.randn(3, 2051, generator=torch.Generator().manual_seed(top_k)) * 3
    logits[:, 2048:] = -torch.inf  # suppressed specials, as in generation
    warpers = LogitsProcessorList()
    if temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(temperature))
    if top_k:
        warpers.append(TopKLogitsWarper(top_k))
    if top_p < 1.0:
        warpers.append(TopPLogitsWarper(top_p))
    want = warpers(None, logits.clone()).softmax(-1)
    got = filter_logits(
        logits, torch.tensor([[temperature]]), torch.tensor([[top_k]]), torch.tensor([[top_p]])
    ).softmax(-1)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-7)


def test_sampler_draws_from_the_filtered_distribution(engines: tuple[FastEngine, Any]) -> None:
    """20 000 draws of the engine's on-device sampler match its probabilities (chi-square)."""
    fast, _ = engines
    rows = 20_000
    logits = torch.randn(1, 2051, generator=torch.Generator().manual_seed(9)).expand(rows, -1)
    sampler = fast.decoder.sampler
    sampler.use(GenerationRequest("-", temperature=0.8, top_k=6, top_p=0.9))
    noise = torch.empty(rows, 2051).exponential_(generator=torch.Generator().manual_seed(1))
    draws = sampler.sample(logits, noise)
    probs = filter_logits(
        logits[:1].masked_fill(sampler.suppress, -torch.inf),
        sampler.temperature,
        sampler.top_k,
        sampler.top_p,
    ).softmax(-1)[0]
    support = probs.nonzero()[:, 0]
    assert set(draws.unique().tolist()) <= set(support.tolist())
    observed = torch.stack([(draws == i).sum() for i in support]).double()
    expected = probs[support].double() * rows
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    assert chi2 < 20.5  # the 99.9 % point for up to 5 degrees of freedom


def test_progress_and_cancel(engines: tuple[FastEngine, Any]) -> None:
    fast, _ = engines
    seen: list[int] = []
    fast.generate(greedy(seconds=0.8), on_progress=lambda f, s: seen.append(f))
    assert seen == list(range(1, 11))
    counted: list[int] = []
    with pytest.raises(GenerationCancelled):
        fast.generate(
            greedy(seconds=8),
            on_progress=lambda f, s: counted.append(f),
            should_stop=lambda: len(counted) >= 4,
        )
    assert counted == [1, 2, 3, 4]


def test_fused_weights_are_the_model_weights(engines: tuple[FastEngine, Any]) -> None:
    fast, reference = engines
    attn = reference.model.backbone_model.layers[0].self_attn
    fused = fast.decoder.backbone.layers[0].qkv_w
    assert attn.q_proj.weight.untyped_storage().data_ptr() == fused.untyped_storage().data_ptr()
    assert attn.v_proj.weight.untyped_storage().data_ptr() == fused.untyped_storage().data_ptr()
    mlp = reference.model.depth_decoder.model.layers[0].mlp
    gate_up = fast.decoder.depth.layers[0].gate_up_w
    assert mlp.up_proj.weight.untyped_storage().data_ptr() == gate_up.untyped_storage().data_ptr()


def test_unsupported_model_falls_back_with_a_logged_reason(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(FastEngine, "_unsupported", lambda self: "a test-only unsupported feature")
    with caplog.at_level(logging.WARNING):
        engine = load_engine("fast", tiny_model_dir, "cpu")
    assert "falls back to transformers: a test-only unsupported feature" in caplog.text
    result = engine.generate(greedy(seconds=0.4))
    assert result.engine == "transformers"
    assert result.frames == 5


def test_fast_engine_streams_pieces_that_are_the_take(engines: tuple[FastEngine, Any]) -> None:
    fast, _ = engines
    whole = fast.generate(greedy(seconds=2.4))
    pieces: list[np.ndarray] = []
    progress: list[int] = []
    streamed = fast.generate(
        greedy(seconds=2.4),
        on_progress=lambda frames, seconds: progress.append(frames),
        on_audio=lambda piece: pieces.append((piece.copy(), len(progress))),  # type: ignore[arg-type]
    )
    # the first piece comes after the first frame, the rest while later frames are still made
    assert pieces[0][1] == 0 and pieces[0][0].size == 1920
    assert len(pieces) == 1 + -(-(30 - 1) // STREAM_EVERY)
    assert pieces[1][1] < 30  # handed over before the last frame
    joined = np.concatenate([p for p, _ in pieces])
    np.testing.assert_array_equal(joined, streamed.audio)  # the take is the streamed audio
    np.testing.assert_array_equal(streamed.codes, whole.codes)
    np.testing.assert_allclose(streamed.audio, whole.audio, atol=1e-4)
    t = streamed.timings
    assert t.first_audio_s is not None and 0 < t.first_audio_s < t.total_s


def test_streaming_stops_at_the_end_frame(engines: tuple[FastEngine, Any]) -> None:
    fast, reference = engines
    pieces: list[np.ndarray] = []
    with end_frame_after(reference.model, 10):
        result = fast.generate(greedy(seconds=4), on_audio=pieces.append)
    assert result.stopped_by == "end-frame" and result.frames == 10
    assert sum(p.size for p in pieces) == 10 * 1920  # nothing of the end frame or after it


def three_rows() -> list[GenerationRequest]:
    """Texts of different lengths with caps of 10, 30 and 20 frames."""
    return [
        greedy("A short one.", seconds=0.8),
        greedy("This sentence is quite a lot longer than the first one was.", seconds=2.4),
        greedy("A middle one, neither short nor long.", seconds=1.6),
    ]


def test_a_batch_equals_the_takes_made_one_by_one(engines: tuple[FastEngine, Any]) -> None:
    """Rows of different text lengths and caps; finished rows leave the batch."""
    from desktop_app.inference.batch import generate_batch

    fast, _ = engines
    requests = three_rows()
    alone = [fast.generate(r) for r in requests]
    frames: list[int] = []
    batched = generate_batch(fast, requests, on_progress=lambda f, s: frames.append(f))
    assert [r.frames for r in batched] == [10, 30, 20]
    for one, row in zip(alone, batched, strict=True):
        np.testing.assert_array_equal(row.codes, one.codes)
        np.testing.assert_allclose(row.audio, one.audio, atol=1e-5)
    assert frames[-1] == 30 and "batch of 3" in batched[0].engine


def test_a_batch_streams_every_take_in_order(engines: tuple[FastEngine, Any]) -> None:
    """Rows end at frames 10, 30 and 20: each take streams once the one before it has ended."""
    from desktop_app.inference.batch import generate_batch

    fast, _ = engines
    requests = three_rows()
    plain = generate_batch(fast, requests)
    frames: list[int] = []
    # (request, frames told by then, audio); a frame's audio goes out before its progress
    pieces: list[tuple[int, int, np.ndarray]] = []
    streamed = generate_batch(
        fast,
        requests,
        on_progress=lambda f, s: frames.append(f),
        on_part_audio=lambda index, piece: pieces.append((index, len(frames), piece.copy())),
    )
    order = [index for index, _, _ in pieces]
    assert order == sorted(order) and set(order) == {0, 1, 2}
    # the second take starts streaming when the first has ended, long before its own end
    first_of_second = next(told + 1 for index, told, _ in pieces if index == 1)
    assert 10 <= first_of_second < 30
    assert sum(index == 1 for index in order) > 2  # and goes on in pieces while it is made
    for index, (row, unstreamed) in enumerate(zip(streamed, plain, strict=True)):
        joined = np.concatenate([p for i, _, p in pieces if i == index])
        np.testing.assert_array_equal(joined, row.audio)  # each take is what was streamed
        np.testing.assert_array_equal(row.codes, unstreamed.codes)
        np.testing.assert_allclose(row.audio, unstreamed.audio, atol=1e-4)


def test_a_batch_stops_each_row_at_its_end_frame(engines: tuple[FastEngine, Any]) -> None:
    from desktop_app.inference.batch import generate_batch

    fast, reference = engines
    with end_frame_after(reference.model, 6):
        rows = generate_batch(fast, [greedy("One.", seconds=4), greedy("Two, too.", seconds=4)])
    assert [(r.frames, r.stopped_by) for r in rows] == [(6, "end-frame"), (6, "end-frame")]


def test_sampled_batch_rows_follow_their_seeds(engines: tuple[FastEngine, Any]) -> None:
    from desktop_app.inference.batch import generate_batch

    fast, _ = engines

    def sampled(text: str, seed: int) -> GenerationRequest:
        return GenerationRequest(text, two_clips(), temperature=0.9, seed=seed, max_seconds=0.8)

    rows = generate_batch(fast, [sampled("First words.", 5), sampled("Second words.", 6)])
    again = generate_batch(fast, [sampled("First words.", 5), sampled("Second words.", 6)])
    for one, two in zip(rows, again, strict=True):
        np.testing.assert_array_equal(one.codes, two.codes)
    assert not np.array_equal(rows[0].codes, rows[1].codes)
    alone = fast.generate(sampled("First words.", 5))
    np.testing.assert_array_equal(rows[0].codes, alone.codes)  # one generator per row


def test_more_rows_than_one_batch_holds_go_through_in_turn(
    engines: tuple[FastEngine, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from desktop_app.inference import batch, decoding

    fast, _ = engines
    monkeypatch.setattr(decoding, "MAX_ROWS", 2)
    requests = [greedy(f"Sentence number {n} of five.", seconds=0.4 + 0.4 * n) for n in range(5)]
    rows = batch.generate_batch(fast, requests)
    assert [r.frames for r in rows] == [5, 10, 15, 20, 25]
    assert [r.engine.endswith("(batch of 2)") for r in rows] == [True] * 4 + [False]
    for request, row in zip(requests, rows, strict=True):
        np.testing.assert_array_equal(row.codes, fast.generate(request).codes)


class StandInGraph:
    """Where CUDA cannot exist: a "captured graph" whose replay runs the frame it was given in
    graph mode (attention over the whole cache under the mask, as the captured graph does),
    optionally writing wrong codes or raising on one replay."""

    def __init__(
        self, frame: Any, state: FrameState, wrong: bool = False, fail_at: int = 0
    ) -> None:
        self.frame, self.state = frame, state
        self.wrong, self.fail_at, self.replays = wrong, fail_at, 0

    def replay(self) -> None:
        self.replays += 1
        if self.replays == self.fail_at:
            raise RuntimeError("CUDA error: an illegal memory access was encountered (simulated)")
        self.frame()
        if self.wrong:
            codes = self.state.codes
            index = int(self.state.frame_index[0]) - 1
            codes[0, index, 0] = (codes[0, index, 0] + 1) % 7


def graphed_engine(
    folder: Path, monkeypatch: pytest.MonkeyPatch, **stand_in: Any
) -> tuple[FastEngine, list[StandInGraph]]:
    engine = FastEngine(folder, "cpu", use_cuda_graph=True)
    made: list[StandInGraph] = []

    def capture(frame: Any, tensors: Any) -> StandInGraph:
        made.append(StandInGraph(frame, engine.decoder.single, **stand_in))
        return made[-1]

    monkeypatch.setattr(engine.graphs, "capture", capture)
    return engine, made


def test_a_checked_graph_makes_the_eager_loops_take(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    eager = FastEngine(tiny_model_dir, "cpu").generate(greedy(seconds=1.2))
    engine, made = graphed_engine(tiny_model_dir, monkeypatch)
    result = engine.generate(greedy(seconds=1.2))
    np.testing.assert_array_equal(result.codes, eager.codes)
    assert made[0].replays == 4 + 15  # the check's 4 frames, then the take's 15
    assert not engine.graphs.off_reason and not any("graph" in n for n in result.notices)


def test_a_graph_that_makes_wrong_frames_is_turned_off_for_the_run(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    eager = FastEngine(tiny_model_dir, "cpu").generate(greedy(seconds=1.2))
    engine, made = graphed_engine(tiny_model_dir, monkeypatch, wrong=True)
    with caplog.at_level(logging.WARNING):
        result = engine.generate(greedy(seconds=1.2))
    np.testing.assert_array_equal(result.codes, eager.codes)  # made on the eager loop
    assert "differ from the eager loop's" in engine.graphs.off_reason
    assert "CUDA graphs turned off" in caplog.text
    assert any("the CUDA graph was turned off" in n for n in result.notices)
    engine.generate(greedy(seconds=0.4))
    assert len(made) == 1 and made[0].replays == 4  # never captured or replayed again


def test_a_replay_that_fails_mid_take_finishes_the_take_on_the_eager_loop(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    eager = FastEngine(tiny_model_dir, "cpu").generate(greedy(seconds=1.2))
    engine, made = graphed_engine(tiny_model_dir, monkeypatch, fail_at=4 + 8)
    pieces: list[np.ndarray] = []
    result = engine.generate(greedy(seconds=1.2), on_audio=pieces.append)
    np.testing.assert_array_equal(result.codes, eager.codes)
    np.testing.assert_array_equal(np.concatenate(pieces), result.audio)
    assert "replaying it failed: RuntimeError" in engine.graphs.off_reason
    assert any("turned off" in n for n in result.notices) and made[0].replays == 12


def test_a_capture_that_raises_leaves_the_take_to_the_eager_loop(tiny_model_dir: Path) -> None:
    """A real capture where CUDA cannot exist: torch raises, the take does not fail."""
    eager = FastEngine(tiny_model_dir, "cpu").generate(greedy(seconds=0.8))
    engine = FastEngine(tiny_model_dir, "cpu", use_cuda_graph=True)
    result = engine.generate(greedy(seconds=0.8))
    np.testing.assert_array_equal(result.codes, eager.codes)
    assert engine.graphs.off_reason.startswith("capturing it failed")
    assert any("the CUDA graph was turned off" in n for n in result.notices)


def test_padding_a_batch_to_its_bucket_never_changes_a_rows_codes(
    engines: tuple[FastEngine, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The padded-bucket loop (CUDA's, eager here): 3 rows run as 4 and 5 as 8, finished rows
    keep running with their position frozen; every row's codes are the take made alone."""
    from desktop_app.inference.batch import generate_batch
    from desktop_app.inference.decoding import bucket_for

    fast, _ = engines
    requests = three_rows()
    alone = [fast.generate(r) for r in requests]
    five = [*requests, greedy("Fourth.", seconds=0.4), greedy("And a fifth one.", seconds=1.2)]
    alone += [fast.generate(r) for r in five[3:]]
    monkeypatch.setattr(fast, "padded_batches", True)
    for batch in (requests, five):
        rows = generate_batch(fast, batch)
        assert [r.frames for r in rows] == [a.frames for a in alone[: len(batch)]]
        for row, one in zip(rows, alone, strict=False):
            np.testing.assert_array_equal(row.codes, one.codes)
            np.testing.assert_allclose(row.audio, one.audio, atol=1e-5)
    assert sorted(fast.decoder.buckets) == [bucket_for(3), bucket_for(5)] == [4, 8]


def test_padded_sampled_rows_follow_their_seeds_and_stream_in_order(
    engines: tuple[FastEngine, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from desktop_app.inference.batch import generate_batch

    fast, _ = engines

    def sampled(text: str, seed: int, seconds: float) -> GenerationRequest:
        return GenerationRequest(text, two_clips(), temperature=0.9, seed=seed, max_seconds=seconds)

    requests = [sampled("First words.", 5, 0.8), sampled("Second, longer words here.", 6, 1.6)]
    requests.append(sampled("Third.", 7, 1.2))
    alone = [fast.generate(r) for r in requests]
    monkeypatch.setattr(fast, "padded_batches", True)
    pieces: list[tuple[int, np.ndarray]] = []
    rows = generate_batch(fast, requests, on_part_audio=lambda i, p: pieces.append((i, p.copy())))
    order = [index for index, _ in pieces]
    assert order == sorted(order) and set(order) == {0, 1, 2}
    for index, (row, one) in enumerate(zip(rows, alone, strict=True)):
        np.testing.assert_array_equal(row.codes, one.codes)
        np.testing.assert_array_equal(
            np.concatenate([p for i, p in pieces if i == index]), row.audio
        )


def test_a_bucket_graph_stands_in_for_the_eager_frame_and_a_failing_one_is_dropped(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where CUDA cannot exist: a stand-in capture whose replay runs the frame as the graph
    would (the whole cache under the masks); then one whose replay fails mid-batch."""
    from desktop_app.inference.batch import generate_batch

    requests = three_rows()
    alone = [FastEngine(tiny_model_dir, "cpu").generate(r) for r in requests]
    engine = FastEngine(tiny_model_dir, "cpu", use_cuda_graph=True, padded_batches=True)
    replays = {"n": 0, "fail_at": 0}

    class Replayed:
        def __init__(self, frame: Any) -> None:
            self.frame = frame

        def replay(self) -> None:
            replays["n"] += 1
            if replays["n"] == replays["fail_at"]:
                raise RuntimeError("CUDA error: launch failure (simulated)")
            self.frame()

    monkeypatch.setattr(engine.graphs, "capture", lambda frame, state: Replayed(frame))
    rows = generate_batch(engine, requests)
    assert replays["n"] == 30  # every frame of the longest row replayed the bucket's graph
    for row, one in zip(rows, alone, strict=True):
        np.testing.assert_array_equal(row.codes, one.codes)
    assert not any("turned off" in n for n in rows[0].notices)
    replays.update(n=0, fail_at=12)
    rows = generate_batch(engine, requests)  # the kept bucket and its graph, failing at frame 12
    for row, one in zip(rows, alone, strict=True):
        np.testing.assert_array_equal(row.codes, one.codes)
    assert "replaying a batch graph failed" in engine.graphs.batch_off_reason
    assert any("the batch was made without it" in n for n in rows[0].notices)
    assert replays["n"] == 12  # no replay after the failure


def test_a_bucket_capture_that_raises_leaves_the_batch_to_the_eager_loop(
    tiny_model_dir: Path,
) -> None:
    """A real capture where CUDA cannot exist: torch raises, the batch does not fail."""
    from desktop_app.inference.batch import generate_batch

    requests = three_rows()
    alone = [FastEngine(tiny_model_dir, "cpu").generate(r) for r in requests]
    engine = FastEngine(tiny_model_dir, "cpu", use_cuda_graph=True, padded_batches=True)
    rows = generate_batch(engine, requests)
    for row, one in zip(rows, alone, strict=True):
        np.testing.assert_array_equal(row.codes, one.codes)
    assert engine.graphs.batch_off_reason.startswith("capturing a batch graph failed")
    assert all(any("the batch was made without it" in n for n in r.notices) for r in rows)


def test_without_a_position_plan_the_voice_is_reused_the_older_way(
    engines: tuple[FastEngine, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fall-back when a prompt's audio positions do not split into its turns: the voice
    part is reused only when it is the previous take's exactly, and stays exact."""
    fast, reference = engines
    monkeypatch.setattr(fast.prompts, "_codes_plan", lambda request, ids, clips: None)
    fast.generate(greedy("A first sentence."))
    second = fast.generate(greedy("Something else entirely, please."))
    assert "voice prompt reused from the previous take" in second.notices
    np.testing.assert_array_equal(
        second.codes, reference.generate(greedy("Something else entirely, please.")).codes
    )
