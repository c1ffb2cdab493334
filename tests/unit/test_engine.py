"""The transformers engine on the tiny checkpoint: determinism, greedy oracle, cancel, limits."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
import torch

from desktop_app.errors import GenerationCancelled, RequestError
from desktop_app.inference import GenerationRequest, ReferenceClip
from desktop_app.inference.hf_engine import (
    CPU_FALLBACK_NOTICE,
    TransformersEngine,
    end_frame_index,
    sampling_kwargs,
)
from tests.support.signals import voiced

SAMPLES_PER_FRAME = 1920  # 24 kHz / 12.5 frames per second


def clip(seconds: float = 3.0, text: str = "Hello there, this is my voice.", seed: int = 0):
    return ReferenceClip(voiced(seconds, 24_000, seed=seed), text)


def request(**changes: Any) -> GenerationRequest:
    base: dict[str, Any] = {
        "text": "Say this in my voice.",
        "references": (clip(),),
        "max_seconds": 1.6,
        "seed": 7,
    }
    return GenerationRequest(**(base | changes))


def test_result_shape_and_timings(tiny_engine: TransformersEngine) -> None:
    result = tiny_engine.generate(request())
    assert result.frames == 20 and result.stopped_by == "max-length"
    assert result.codes.shape == (20, tiny_engine.model.config.num_codebooks)
    assert result.audio.shape == (20 * SAMPLES_PER_FRAME,)
    assert result.audio.dtype == np.float32 and np.isfinite(result.audio).all()
    t = result.timings
    assert 0 < t.prefill_s < t.total_s and 0 < t.per_frame_s < t.total_s
    assert t.real_time_factor == pytest.approx(t.total_s / result.seconds)
    assert (result.device, result.dtype, result.engine, result.seed) == (
        "cpu",
        "float32",
        "transformers",
        7,
    )


def test_same_seed_same_audio_other_seed_other_audio(tiny_engine: TransformersEngine) -> None:
    first = tiny_engine.generate(request(seed=11))
    again = tiny_engine.generate(request(seed=11))
    other = tiny_engine.generate(request(seed=12))
    np.testing.assert_array_equal(first.codes, again.codes)
    np.testing.assert_array_equal(first.audio, again.audio)
    assert (first.codes != other.codes).any()


def test_no_seed_picks_one_and_reports_it(tiny_engine: TransformersEngine) -> None:
    result = tiny_engine.generate(request(seed=None, max_seconds=0.4))
    replay = tiny_engine.generate(request(seed=result.seed, max_seconds=0.4))
    np.testing.assert_array_equal(result.codes, replay.codes)


def test_greedy_equals_a_direct_transformers_generate(tiny_engine: TransformersEngine) -> None:
    req = request(temperature=0, references=(clip(), clip(2.5, "And a second clip.", seed=1)))
    result = tiny_engine.generate(req)
    inputs = tiny_engine.prepare_inputs(req)
    sup = [2048, 2049, 2050]
    with torch.inference_mode():
        direct = tiny_engine.model.generate(
            **inputs,
            max_new_tokens=20,
            do_sample=False,
            depth_decoder_do_sample=False,
            suppress_tokens=sup,
            depth_decoder_suppress_tokens=sup,
        )[0]
    np.testing.assert_array_equal(result.codes, direct.numpy())
    # greedy ignores the seed
    np.testing.assert_array_equal(tiny_engine.generate(req).codes, result.codes)


def test_progress_every_frame_and_cancel_between_frames(tiny_engine: TransformersEngine) -> None:
    seen: list[tuple[int, float]] = []
    tiny_engine.generate(request(), on_progress=lambda f, s: seen.append((f, s)))
    assert [f for f, _ in seen] == list(range(1, 21))
    assert seen[-1][1] == pytest.approx(20 / 12.5)

    counted: list[int] = []
    with pytest.raises(GenerationCancelled):
        tiny_engine.generate(
            request(max_seconds=8),
            on_progress=lambda f, s: counted.append(f),
            should_stop=lambda: len(counted) >= 3,
        )
    assert counted == [1, 2, 3]
    # the engine is still usable after a cancel
    assert tiny_engine.generate(request(max_seconds=0.4)).frames == 5


def test_stops_on_the_end_frame(tiny_engine: TransformersEngine) -> None:
    """Heads forced to favour code 0 after 6 frames make the model emit the all-zero end frame."""
    model = tiny_engine.model
    calls = {"backbone": 0}

    def backbone_hook(module: Any, args: Any, out: torch.Tensor) -> torch.Tensor:
        calls["backbone"] += 1
        if calls["backbone"] <= 6:
            return out
        forced = torch.full_like(out, -1e4)
        forced[..., 0] = 1e4
        return forced

    def depth_hook(module: Any, args: Any, out: torch.Tensor) -> torch.Tensor:
        if calls["backbone"] <= 6:
            return out
        forced = torch.full_like(out, -1e4)
        forced[..., 0] = 1e4
        return forced

    handles = [
        model.lm_head.register_forward_hook(backbone_hook),
        model.depth_decoder.codebooks_head.register_forward_hook(depth_hook),
    ]
    try:
        result = tiny_engine.generate(request(max_seconds=4))
    finally:
        for handle in handles:
            handle.remove()
    assert result.stopped_by == "end-frame"
    assert result.frames == 6
    assert result.audio.size == 6 * SAMPLES_PER_FRAME
    assert end_frame_index(torch.as_tensor(result.codes), 0) is None


def test_too_long_reference_is_refused_with_what_fits(tiny_engine: TransformersEngine) -> None:
    long_clip = ReferenceClip(np.zeros(24_000 * 170, np.float32) + 0.01, "A very long read.")
    with pytest.raises(RequestError, match=r"170\.0 s given.*only (\d+\.\d) s fit") as info:
        tiny_engine.prepare_inputs(request(references=(long_clip,), max_seconds=10))
    fits = float(re.search(r"only (\d+\.\d) s fit", str(info.value)).group(1))  # type: ignore[union-attr]
    assert 140 < fits < 155  # 2048 positions - 125 frames - the text, at 12.5 frames/s
    ok = ReferenceClip(long_clip.audio[: int((fits - 0.2) * 24_000)], "A very long read.")
    inputs = tiny_engine.prepare_inputs(request(references=(ok,), max_seconds=10))
    assert inputs["input_ids"].shape[-1] + 125 <= 2048


def test_text_too_long_for_any_reference(tiny_engine: TransformersEngine) -> None:
    with pytest.raises(RequestError, match="text is too long for one take"):
        tiny_engine.prepare_inputs(request(max_seconds=170))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"text": "   "}, "nothing to say"),
        ({"references": (ReferenceClip(voiced(3, 24_000), " "),)}, "clip 1 has no transcript"),
        ({"temperature": -1}, "temperature must be 0"),
        ({"top_p": 0}, "top-p must be above 0"),
        ({"top_k": -5}, "top-k must be 0"),
        ({"max_seconds": 0}, "maximum length must be above 0"),
    ],
)
def test_bad_requests_are_refused(
    tiny_engine: TransformersEngine, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(RequestError, match=message):
        tiny_engine.generate(request(**changes))


def test_sampling_settings_reach_both_levels(tiny_engine: TransformersEngine) -> None:
    kwargs = sampling_kwargs(
        tiny_engine.model.config, request(temperature=0.7, top_k=20, top_p=0.9), 5
    )
    assert kwargs["temperature"] == kwargs["depth_decoder_temperature"] == 0.7
    assert kwargs["top_k"] == kwargs["depth_decoder_top_k"] == 20
    assert kwargs["top_p"] == kwargs["depth_decoder_top_p"] == 0.9
    greedy = sampling_kwargs(tiny_engine.model.config, request(temperature=0), 5)
    assert greedy["do_sample"] is False and greedy["depth_decoder_do_sample"] is False


def test_cuda_out_of_memory_retries_on_cpu(
    tiny_engine: TransformersEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No GPU here: the out-of-memory error is injected into the first generate() call."""
    real_generate = tiny_engine.model.generate
    calls = {"n": 0}

    def flaky_generate(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(tiny_engine.model, "generate", flaky_generate)
    result = tiny_engine.generate(request(max_seconds=0.4))
    assert calls["n"] == 2
    assert result.notices == (CPU_FALLBACK_NOTICE,)
    assert result.device == "cpu" and result.frames == 5


def test_a_transformers_without_the_private_merge_gets_a_clear_error() -> None:
    from desktop_app.inference.transformers_compat import (
        TESTED_RANGE,
        TransformersChanged,
        prompt_embeddings,
    )

    with pytest.raises(TransformersChanged, match="--engine transformers") as caught:
        prompt_embeddings(object(), torch.zeros(1, 3, dtype=torch.long), None, None)
    assert TESTED_RANGE in str(caught.value)
