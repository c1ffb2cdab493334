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

On the CPU the batch shrinks as rows finish (eagerly). On CUDA it is padded up to a bucket of
1, 2, 4, 8 or 16 rows and each bucket's frame is one CUDA graph, captured once and kept; a
finished row runs on with its position frozen and is ignored (see :class:`_BatchState`). A
capture or replay that raises turns the batch graphs off for the run and the batch goes on
eagerly. The padded loop runs eagerly on the CPU too when asked (``padded_batches=True``),
which is how it is tested here. Only
:meth:`FastEngine.generate_batch <desktop_app.inference.fast_engine.FastEngine.generate_batch>`
calls this module: it is the engine's own code, split off for length.
"""

from __future__ import annotations

import random
import time
from collections.abc import Collection, Sequence
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

BUCKETS = (1, 2, 4, 8, 16)
"""Batch sizes with a CUDA graph of their own: a batch is padded up to the next one."""


def bucket_for(rows: int) -> int:
    """The smallest bucket that holds ``rows`` rows."""
    return next(size for size in BUCKETS if size >= rows)


MAX_ROWS = BUCKETS[-1]
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
        n = len(self.requests)
        device = e.torch_device
        with torch.inference_mode():
            state = _BatchState.for_run(e, n, lengths, caps)
            check_stop(should_stop)
            self._prefill(state, prompts)
            check_stop(should_stop)
            e.set_sampling(self.requests[0], 0)
            graphed = state.graph_ready() if state.padded else False
            generators = []
            for seed in seeds:
                generator = torch.Generator(device=device)
                generator.manual_seed(seed)
                generators.append(generator)
            greedy = self.requests[0].temperature <= 0
            # the request each row makes (-1: padding up to the bucket), and those still going
            active = list(range(n)) + [-1] * (state.rows - n)
            running = set(range(n))
            frames: dict[int, int] = {}
            ended: dict[int, bool] = {}
            stamps: list[float] = []
            checked = 0
            for done in range(1, max(caps) + 1):
                if not greedy:
                    for row, index in enumerate(active):
                        if index in running:
                            state.noise[row].exponential_(generator=generators[index])
                kv_len = max(lengths[i] for i in running) + done
                graphed = state.step(kv_len, graphed)
                stamps.append(time.perf_counter())
                if on_progress is not None:
                    on_progress(done, done / e.reference.frame_rate)
                last = any(done >= caps[i] for i in running)
                every = streams.check_every(running) if streams else END_CHECK_EVERY
                if done - checked >= every or last:
                    ended_rows = self._finished_rows(
                        state.codes, active, running, checked, done, caps, frames, ended
                    )
                    checked = done
                    if streams is not None:
                        streams.emit(state.codes, active, done, self._codes, frames)
                    if not running:
                        break
                    if ended_rows:
                        active = state.retire(ended_rows, active)
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
                    notices=state.notices,
                )
            )
        return results

    def _prefill(self, state: _BatchState, prompts: list[tuple[Any, int, str]]) -> None:
        """The shared voice part once, copied to every row; then each row's own text turn.

        Padding rows (up to the bucket) start at position 0 with a zero state: what they make
        is never read.
        """
        e = self.engine
        backbone = state.backbone
        inputs0, voice_len, key = prompts[0]
        e.prefill(inputs0, voice_len, key)  # the voice (reused when cached) and row 0's text
        state.hidden.zero_()
        state.position.zero_()
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
            state.hidden[row] = out[0, -1]
            state.position[row] = end

    def _finished_rows(
        self,
        codes: torch.Tensor,
        active: list[int],
        running: set[int],
        start: int,
        stop: int,
        caps: list[int],
        frames: dict[int, int],
        ended: dict[int, bool],
    ) -> list[int]:
        """Read back frames [start, stop); record the requests that ended (and take them out of
        ``running``); the rows they were in."""
        window = codes[:, start:stop, :-1].cpu()
        hits = (window == self.engine.eos).all(dim=-1)
        ended_rows = []
        for row, index in enumerate(active):
            if index not in running:
                continue
            found = hits[row].nonzero()
            if found.numel():
                end = start + int(found[0, 0])
                frames[index], ended[index] = end, True
            elif stop >= caps[index]:
                end = caps[index]
                frames[index], ended[index] = end, False
            else:
                continue
            self._codes[index] = codes[row, :end].clone()
            running.discard(index)
            ended_rows.append(row)
        return ended_rows


class _BatchState:
    """Everything one batched frame reads and writes, for ``rows`` rows.

    Two ways to let rows go once they have ended:

    - shrinking (the CPU's default): the finished rows are cut out of every tensor, so they
      stop costing;
    - padded buckets (CUDA's default, where each bucket's frame is one CUDA graph): the batch
      is padded up to a bucket of :data:`BUCKETS` rows and keeps its shape; a finished or
      padding row goes on running with its position frozen, and what it makes is ignored. The
      state of each bucket, sized for the whole context, and its graph are kept on the engine
      for the next batch of that size.
    """

    def __init__(self, engine: FastEngine, rows: int, positions: int, padded: bool) -> None:
        e = self.engine = engine
        device = e.torch_device
        self.rows, self.padded = rows, padded
        self.backbone = e.backbone.with_batch(rows, positions)
        self.depth = e.depth.with_batch(rows)
        hidden_size = int(e.hidden.shape[-1])
        self.hidden = torch.zeros(rows, hidden_size, dtype=e.torch_dtype, device=device)
        self.position = torch.zeros(rows, dtype=torch.long, device=device)
        self.live = torch.ones(rows, dtype=torch.long, device=device)  # 0: frozen
        self.noise = torch.ones(rows, e.num_codebooks, e.vocab, dtype=torch.float32, device=device)
        self.codes = torch.zeros(rows, positions, e.num_codebooks, dtype=torch.long, device=device)
        self.frame_index = torch.zeros(1, dtype=torch.long, device=device)
        self.graph: Any = None
        self.notices: tuple[str, ...] = ()

    @classmethod
    def for_run(
        cls, engine: FastEngine, requests: int, lengths: list[int], caps: list[int]
    ) -> _BatchState:
        """The state for a batch of ``requests`` rows: the kept bucket (padded), or a new one
        only as long as the longest prompt plus its cap (shrinking)."""
        longest = max(length + cap for length, cap in zip(lengths, caps, strict=True))
        if not engine.pads_batches():
            return cls(engine, requests, longest, padded=False)
        rows = bucket_for(requests)
        state = engine.batch_states.get(rows)
        if state is None:
            state = engine.batch_states[rows] = cls(engine, rows, engine.context, padded=True)
        state.live.fill_(1)
        state.live[requests:] = 0
        state.noise.fill_(1.0)
        state.frame_index.zero_()
        state.notices = ()
        return state

    def step(self, kv_len: int, graphed: bool) -> bool:
        """Make one frame for every row; returns whether the graph is still in use.

        Eagerly, attention reads the first ``kv_len`` positions; the graph reads the whole
        cache under the rows' masks. A replay that raises turns graphs off for the run (the
        frame is made eagerly instead and the takes say so).
        """
        if graphed:
            try:
                self.graph.replay()
                return True
            except torch.cuda.OutOfMemoryError:
                raise
            except Exception as exc:
                reason = f"replaying a batch graph failed: {type(exc).__name__}: {exc}"
                self.notices = (*self.notices, self.engine.drop_batch_graphs(reason))
        self._frame(kv_len)
        return False

    def _frame(self, kv_len: int | None) -> None:
        e = self.engine
        frame = e.frame_codes(self.hidden, self.depth, self.noise)
        self.codes.index_copy_(1, self.frame_index, frame[:, None])
        embed = e.audio_embed(frame + e.audio_offsets).sum(dim=1, keepdim=True)
        kv = self.backbone.positions if kv_len is None else kv_len
        mask = (e.all_positions[:kv][None, :] <= self.position[:, None])[:, None, None]
        out = self.backbone.forward(embed, self.position, kv, mask, per_row=True)
        self.hidden.copy_(out[:, -1])
        self.position.add_(self.live)
        self.frame_index.add_(1)

    def graph_ready(self) -> bool:
        """Whether this bucket's frame runs as a CUDA graph (captured on first use)."""
        e = self.engine
        if not e.graphs_batches():
            return False
        if self.graph is None:
            try:
                self.graph = e.capture(lambda: self._frame(None), self._frame_state())
            except torch.cuda.OutOfMemoryError:
                raise
            except Exception as exc:
                reason = f"capturing a batch graph failed: {type(exc).__name__}: {exc}"
                self.notices = (*self.notices, e.drop_batch_graphs(reason))
                return False
        return True

    def _frame_state(self) -> list[torch.Tensor]:
        return [self.hidden, self.position, self.frame_index]

    def retire(self, rows: list[int], active: list[int]) -> list[int]:
        """Let ``rows`` go (they have ended); returns the request of each row from now on."""
        if self.padded:
            self.live[rows] = 0
            return active
        keep = [row for row in range(len(active)) if row not in rows]
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
        return [active[row] for row in keep]


class _StreamedTakes:
    """The batch's takes streamed one after another: one :class:`AudioStream` per request."""

    def __init__(self, codec: Any, on_audio: Sequence[AudioCallback], started: float) -> None:
        self.streams = [AudioStream(codec, callback, started) for callback in on_audio]
        self.current = 0  # the request now streaming; those before it have ended

    def check_every(self, active: Collection[int]) -> int:
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
