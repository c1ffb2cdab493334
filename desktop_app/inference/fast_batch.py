"""The fast engine's batched loop: several takes in one voice, decoded together.

All rows share the voice prompt: its prefill runs once (or not at all when the fast engine still
holds it from the previous take) and its keys and values are copied into every row's cache;
then each row's own text turn is prefilled into its row. Frames are made for all rows at once,
each row at its own position. Every few frames the codes are read back: a row that has made its
end frame, or reached its length cap, leaves the batch, and the caches shrink to the rows still
going, so finished rows stop costing.

The takes can be streamed in order (``on_part_audio``): the first request's row is Mimi-decoded
while the batch runs, as a single take streams; once it has ended, the next request's row catches
up on the frames it has made so far and goes on streaming, and so on. A streamed take's audio is
its pieces joined.

The batch runs eagerly (no CUDA graph: the batch shrinks as rows finish). Only
:meth:`FastEngine.generate_batch <desktop_app.inference.fast_engine.FastEngine.generate_batch>`
calls this module: it is the engine's own code, split off for length.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from desktop_app.inference.batch import BatchError, part_stream
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
from desktop_app.inference.prompt import check_request
from desktop_app.inference.streaming import END_CHECK_EVERY, AudioStream

if TYPE_CHECKING:
    from desktop_app.inference.fast_engine import FastEngine

MAX_ROWS = 16
"""Rows in one batch at most: each row holds its own key/value cache (for the full model about
34 MB per 1000 positions in bf16), so a very long text goes through in batches of this many."""


def generate_in_batches(
    engine: FastEngine,
    requests: Sequence[GenerationRequest],
    on_progress: ProgressCallback | None,
    should_stop: StopCheck | None,
    on_part_audio: PartAudioCallback | None,
) -> list[GenerationResult]:
    """One take per request, in order: batches of at most :data:`MAX_ROWS` rows in turn."""
    results: list[GenerationResult] = []
    for start in range(0, len(requests), MAX_ROWS):  # a very long text: batches in turn
        group = requests[start : start + MAX_ROWS]
        if len(group) == 1:
            stream = part_stream(on_part_audio, start)
            results.append(engine.generate(group[0], on_progress, should_stop, stream))
        else:
            streams = [part_stream(on_part_audio, start + i) for i in range(len(group))]
            streaming = [stream for stream in streams if stream is not None]  # all or none
            results += _Batch(engine, group).run(on_progress, should_stop, streaming)
    return results


class _Batch:
    """The state of one batched run over a FastEngine's weights."""

    def __init__(self, engine: FastEngine, requests: Sequence[GenerationRequest]) -> None:
        self.engine = engine
        self.requests = list(requests)
        for request in self.requests:
            check_request(request)
        self._codes: dict[int, torch.Tensor] = {}  # each finished row's codes, by request

    def run(
        self,
        on_progress: ProgressCallback | None,
        should_stop: StopCheck | None,
        on_audio: Sequence[AudioCallback] = (),
    ) -> list[GenerationResult]:
        """The takes; ``on_audio[i]``, where given, streams request ``i`` (all or none)."""
        e = self.engine
        started = time.perf_counter()
        codec = e.reference.model.codec_model
        streams = _StreamedTakes(codec, on_audio, started) if on_audio else None
        seeds = [r.seed if r.seed is not None else random.randrange(2**31) for r in self.requests]
        prompts = [e.prompt_of(r) for r in self.requests]
        lengths = [int(inputs["input_ids"].shape[1]) for inputs, _, _ in prompts]
        caps = [
            min(e.reference.max_frames(r), e.context - length)
            for r, length in zip(self.requests, lengths, strict=True)
        ]
        rows = len(self.requests)
        device = e.torch_device
        with torch.inference_mode():
            # each row's cache only as long as its prompt plus its cap (not the whole context)
            backbone = e.backbone.with_batch(
                rows, max(length + cap for length, cap in zip(lengths, caps, strict=True))
            )
            depth = e.depth.with_batch(rows)
            check_stop(should_stop)
            hidden = self._prefill(backbone, prompts)
            check_stop(should_stop)
            e.set_sampling(self.requests[0], 0)
            generators = []
            for seed in seeds:
                generator = torch.Generator(device=device)
                generator.manual_seed(seed)
                generators.append(generator)
            greedy = self.requests[0].temperature <= 0
            noise = torch.ones(rows, e.num_codebooks, e.vocab, dtype=torch.float32, device=device)
            position = torch.tensor(lengths, device=device)
            codes = torch.zeros(rows, max(caps), e.num_codebooks, dtype=torch.long, device=device)
            active = list(range(rows))  # request index of each row still in the batch
            frames: dict[int, int] = {}
            ended: dict[int, bool] = {}
            stamps: list[float] = []
            checked = 0
            for done in range(1, max(caps) + 1):
                if not greedy:
                    for row, index in enumerate(active):
                        noise[row].exponential_(generator=generators[index])
                frame = e.frame_codes(hidden, depth, noise)
                codes[:, done - 1] = frame
                embed = e.audio_embed(frame + e.audio_offsets).sum(dim=1, keepdim=True)
                kv_len = int(max(lengths[i] for i in active)) + done
                mask = (e.all_positions[:kv_len][None, :] <= position[:, None])[:, None, None]
                out = backbone.forward(embed, position, kv_len, mask, per_row=True)
                hidden = out[:, -1]
                position = position + 1
                stamps.append(time.perf_counter())
                if on_progress is not None:
                    on_progress(done, done / e.reference.frame_rate)
                last = any(done >= caps[i] for i in active)
                every = streams.check_every(active) if streams else END_CHECK_EVERY
                if done - checked >= every or last:
                    keep = self._finished_rows(codes, active, checked, done, caps, frames, ended)
                    checked = done
                    if streams is not None:
                        streams.emit(codes, active, done, self._codes, frames)
                    if not keep:
                        break
                    if len(keep) < len(active):
                        kept = torch.tensor(keep, device=device)
                        backbone.k = backbone.k[:, kept]
                        backbone.v = backbone.v[:, kept]
                        depth = depth.with_batch(len(keep))
                        hidden, position = hidden[kept], position[kept]
                        codes, noise = codes[kept], noise[kept]
                        active = [active[row] for row in keep]
                check_stop(should_stop)
        finished = time.perf_counter()
        results = []
        for index in range(len(self.requests)):
            take = self._codes[index]
            audio = streams.audio(index) if streams is not None else e.reference.decode(take)
            check_stop(should_stop)
            results.append(
                GenerationResult(
                    audio=audio,
                    codes=take.cpu().numpy().astype(np.int64),
                    frames=frames[index],
                    stopped_by="end-frame" if ended[index] else "max-length",
                    seed=seeds[index],
                    timings=GenerationTimings.measured(
                        started, stamps[: max(1, frames[index])], finished, len(audio) / SAMPLE_RATE
                    ),
                    device=e.device,
                    dtype=e.dtype,
                    engine=f"{e.name} (batch of {len(self.requests)})",
                    notices=(),
                )
            )
        return results

    def _prefill(self, backbone: Any, prompts: list[tuple[Any, int, str]]) -> torch.Tensor:
        """The shared voice part once, copied to every row; then each row's own text turn."""
        e = self.engine
        inputs0, voice_len, key = prompts[0]
        e.prefill(inputs0, voice_len, key)  # the voice (reused when cached) and row 0's text
        hidden = []
        for row, (inputs, row_voice_len, _) in enumerate(prompts):
            if row_voice_len != voice_len:
                raise BatchError("the rows' voice prompts differ in length")
            backbone.k[:, row, :, :voice_len] = e.backbone.k[:, 0, :, :voice_len]
            backbone.v[:, row, :, :voice_len] = e.backbone.v[:, 0, :, :voice_len]
            ids = inputs["input_ids"].to(e.torch_device)
            end = ids.shape[1]
            positions = e.all_positions[voice_len:end]
            mask = (e.all_positions[:end][None, :] <= positions[:, None])[None, None]
            embeds = e.reference.model.embed_text_tokens(ids[:, voice_len:]).to(e.torch_dtype)
            out = backbone.forward(embeds, positions, end, mask, cache_rows=slice(row, row + 1))
            hidden.append(out[:, -1])
        return torch.cat(hidden, dim=0)

    def _finished_rows(
        self,
        codes: torch.Tensor,
        active: list[int],
        start: int,
        stop: int,
        caps: list[int],
        frames: dict[int, int],
        ended: dict[int, bool],
    ) -> list[int]:
        """Read back frames [start, stop); record finished rows; the rows that go on."""
        window = codes[:, start:stop, :-1].cpu()
        hits = (window == self.engine.eos).all(dim=-1)
        keep = []
        for row, index in enumerate(active):
            found = hits[row].nonzero()
            if found.numel():
                end = start + int(found[0, 0])
                frames[index], ended[index] = end, True
            elif stop >= caps[index]:
                end = caps[index]
                frames[index], ended[index] = end, False
            else:
                keep.append(row)
                continue
            self._codes[index] = codes[row, :end].clone()
        return keep


class _StreamedTakes:
    """The batch's takes streamed one after another: one :class:`AudioStream` per request."""

    def __init__(self, codec: Any, on_audio: Sequence[AudioCallback], started: float) -> None:
        self.streams = [AudioStream(codec, callback, started) for callback in on_audio]
        self.current = 0  # the request now streaming; those before it have ended

    def check_every(self, active: list[int]) -> int:
        """Frames until the next read-back: the streaming take's cadence while it is made."""
        if self.current in active:
            return self.streams[self.current].check_every()
        return END_CHECK_EVERY

    def emit(
        self,
        codes: torch.Tensor,
        rows: list[int],
        made: int,
        finished: dict[int, torch.Tensor],
        frames: dict[int, int],
    ) -> None:
        """Hand over what is new: ended takes in full, in order, then the one being made.

        ``codes`` holds ``made`` frames of each row; ``rows`` says which request each row is;
        ``finished`` and ``frames`` hold the ended requests' codes and lengths.
        """
        while self.current < len(self.streams):
            stream = self.streams[self.current]
            if self.current in finished:
                if frames[self.current] > stream.frames:
                    stream.emit(finished[self.current], frames[self.current])
                self.current += 1
                continue
            stream.emit(codes[rows.index(self.current)], made)
            return

    def audio(self, index: int) -> np.ndarray:
        """Request ``index``'s take: the pieces it streamed, joined."""
        return self.streams[index].audio()
