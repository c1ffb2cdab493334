"""The decode loop: takes in one voice made frame by frame. A single take is a batch of one.

All rows share the voice prompt: its prefill runs once (not at all when the single-take cache
still holds it) and, for several rows, its keys and values are copied into every row's cache;
then each row's own text turn is prefilled into its row (:mod:`.prefill`). Frames are made for
all rows at once, each row at its own position. Every few frames the codes are read back: a row
that has made its end frame, or reached its length cap, leaves the batch.

Several rows on the CPU shrink as rows finish (finished rows stop costing). On CUDA they are
padded up to a bucket of 1, 2, 4, 8 or 16 rows and each bucket's frame is one CUDA graph,
captured once and kept; a finished row runs on with its position frozen and is ignored. A single
take's frame is its own graph, checked against the eager loop's first greedy frames when
captured. A capture or replay that raises turns graphs off for the run (single takes and
batches apart) and the take goes on eagerly.

The takes can be streamed in order (``on_audio``): the first request's row is Mimi-decoded while
the batch runs; once it has ended, the next request's row catches up on the frames it has made
so far and goes on streaming, and so on. A streamed take's audio is its pieces joined.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from desktop_app.inference.batch import part_stream
from desktop_app.inference.decoder import Decoder, FrameState, Graphs
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
from desktop_app.inference.prefill import Prompt, PromptCache
from desktop_app.inference.prompt import check_request
from desktop_app.inference.streaming import END_CHECK_EVERY, AudioStream

BUCKETS = (1, 2, 4, 8, 16)
"""Batch sizes with a CUDA graph of their own: a batch is padded up to the next one."""

MAX_ROWS = BUCKETS[-1]
"""Rows in one batch at most: each row holds its own key/value cache (for the full model about
34 MB per 1000 positions in bf16), so a very long text goes through in batches of this many."""

GRAPH_CHECK_FRAMES = 4
"""Greedy frames that a newly captured single-take graph must make exactly as the eager loop."""

REUSED_NOTICE = "voice prompt reused from the previous take"


def bucket_for(rows: int) -> int:
    """The smallest bucket that holds ``rows`` rows."""
    return next(size for size in BUCKETS if size >= rows)


@dataclass(frozen=True)
class Loop:
    """What the loop runs on: the decoder and its prompt cache, the graph policy, the
    transformers engine (length caps, frame rate, the codec) and how results name the engine."""

    decoder: Decoder
    prompts: PromptCache
    graphs: Graphs
    reference: Any
    padded: bool  # several rows run padded to a bucket (else they shrink as rows end)
    device: str
    dtype: str
    name: str

    def in_groups(
        self,
        requests: Sequence[GenerationRequest],
        on_progress: ProgressCallback | None,
        should_stop: StopCheck | None,
        on_part_audio: PartAudioCallback | None,
    ) -> list[GenerationResult]:
        """One take per request, in order: groups of at most :data:`MAX_ROWS` rows in turn."""
        results: list[GenerationResult] = []
        for start in range(0, len(requests), MAX_ROWS):
            group = requests[start : start + MAX_ROWS]
            streams = [part_stream(on_part_audio, start + i) for i in range(len(group))]
            streaming = [stream for stream in streams if stream is not None]  # all or none
            results += self.takes(group, on_progress, should_stop, streaming)
        return results

    def takes(
        self,
        requests: Sequence[GenerationRequest],
        on_progress: ProgressCallback | None,
        should_stop: StopCheck | None,
        on_audio: Sequence[AudioCallback] = (),
    ) -> list[GenerationResult]:
        """The takes of ``requests`` (one voice), made together; ``on_audio[i]``, where given,
        streams request ``i`` (all or none)."""
        started = time.perf_counter()
        for request in requests:
            check_request(request)
        d = self.decoder
        streams = _StreamedTakes(self.reference.model.codec_model, on_audio, started)
        seeds = [r.seed if r.seed is not None else random.randrange(2**31) for r in requests]
        prompts = [self.prompts.prompt_of(r) for r in requests]  # encodes the clips (Mimi)
        check_stop(should_stop)
        caps = [
            min(self.reference.max_frames(r), d.context - p.length)
            for r, p in zip(requests, prompts, strict=True)
        ]
        notices: list[str] = []
        with torch.inference_mode():
            if len(requests) == 1:
                state = d.single
                reused = self.prompts.prefill(prompts[0])
            else:
                state = self._batch_state(len(requests), prompts, caps)
                reused = self.prompts.prefill_rows(state, prompts)
            check_stop(should_stop)
            graphed = self._graph_ready(state, prompts[0], notices)
            d.sampler.use(requests[0])
            generators = [d.sampler.generator(seed) for seed in seeds]
            made = _Rows(d.eos, caps)
            stamps = self._run(
                state,
                requests,
                prompts,
                generators,
                graphed,
                made,
                notices,
                streams,
                on_progress,
                should_stop,
            )
            if len(requests) == 1 and prompts[0].plan is not None:
                self.prompts.remember_frames(state.codes[0, : len(stamps)])
        finished = time.perf_counter()
        if reused:
            notices.append(REUSED_NOTICE)
        name = self.name if len(requests) == 1 else f"{self.name} (batch of {len(requests)})"
        results = []
        for index in range(len(requests)):
            codes = made.codes[index]
            audio = streams.audio(index) if on_audio else self.reference.decode(codes)
            check_stop(should_stop)
            timings = GenerationTimings.measured(
                started, stamps[: max(1, made.frames[index])], finished, len(audio) / SAMPLE_RATE
            )
            if on_audio:
                first = streams.streams[index].first_audio_s
                timings = dataclasses.replace(timings, first_audio_s=first)
            results.append(
                GenerationResult(
                    audio=audio,
                    codes=codes.cpu().numpy().astype(np.int64),
                    frames=made.frames[index],
                    stopped_by="end-frame" if made.ended[index] else "max-length",
                    seed=seeds[index],
                    timings=timings,
                    device=self.device,
                    dtype=self.dtype,
                    engine=name,
                    notices=tuple(notices),
                )
            )
        return results

    def _run(
        self,
        state: FrameState,
        requests: Sequence[GenerationRequest],
        prompts: Sequence[Prompt],
        generators: list[torch.Generator],
        graphed: bool,
        made: _Rows,
        notices: list[str],
        streams: _StreamedTakes,
        on_progress: ProgressCallback | None,
        should_stop: StopCheck | None,
    ) -> list[float]:
        """The frames, until every row has ended; returns each frame's time stamp."""
        caps = made.caps
        greedy = requests[0].temperature <= 0
        n = len(requests)
        active = list(range(n)) + [-1] * (state.rows - n)  # each row's request (-1: padding)
        running = set(range(n))
        stamps: list[float] = []
        checked = 0
        for done in range(1, max(caps) + 1):
            if not greedy:
                for row, index in enumerate(active):
                    if index in running:
                        state.noise[row].exponential_(generator=generators[index])
            kv_len = max(prompts[i].length for i in running) + done
            graphed = self._step(state, kv_len, graphed, notices)
            stamps.append(time.perf_counter())
            last = any(done >= caps[i] for i in running)
            due = done - checked >= streams.check_every(running) or last
            ended_rows: list[int] = []
            if due:  # read back; the audio goes out before the progress is told
                ended_rows = made.read_back(state.codes, active, running, checked, done)
                checked = done
                streams.emit(state.codes, active, done, made.codes, made.frames)
            if on_progress is not None:
                on_progress(done, done / self.reference.frame_rate)
            if due:
                if not running:
                    break
                if ended_rows:
                    if not state.padded:
                        active = [a for row, a in enumerate(active) if row not in ended_rows]
                    state.retire(ended_rows)
            check_stop(should_stop)
        return stamps

    def _batch_state(self, rows: int, prompts: Sequence[Prompt], caps: list[int]) -> FrameState:
        """The state for a batch of ``rows`` rows: the kept bucket (padded), or a new one only
        as long as the longest prompt plus its cap (shrinking)."""
        d = self.decoder
        if not self.padded:
            longest = max(p.length + cap for p, cap in zip(prompts, caps, strict=True))
            return FrameState.for_rows(d, rows, longest, padded=False)
        size = bucket_for(rows)
        state = d.buckets.get(size)
        if state is None:
            state = d.buckets[size] = FrameState.for_rows(d, size, d.context, padded=True)
        state.live.fill_(1)
        state.live[rows:] = 0
        state.noise.fill_(1.0)
        state.frame_index.zero_()
        return state

    def _step(self, state: FrameState, kv_len: int, graphed: bool, notices: list[str]) -> bool:
        """Make one frame for every row; returns whether the graph is still in use.

        Eagerly, attention reads the first ``kv_len`` positions; the graph reads the whole
        cache under the rows' masks. A replay that raises turns graphs off for the run (the
        frame is made eagerly instead and the takes say so).
        """
        if graphed:
            try:
                state.graph.replay()
                return True
            except torch.cuda.OutOfMemoryError:
                raise
            except Exception as exc:
                what = "a batch graph" if state.padded else "it"
                reason = f"replaying {what} failed: {type(exc).__name__}: {exc}"
                notices.append(self.graphs.turn_off(state, reason))
        state.frame(kv_len)
        return False

    def _graph_ready(self, state: FrameState, first: Prompt, notices: list[str]) -> bool:
        """Whether ``state``'s frame runs as a CUDA graph, capturing it on first use (a single
        take's graph is checked against the eager loop; the prompt is prefilled again)."""
        graphs = self.graphs
        if not graphs.used(state):
            state.graph = None
            return False
        if state.graph is not None:
            return True
        problem = ""
        try:
            state.graph = graphs.capture(lambda: state.frame(None), state.tensors())
            if not state.padded:
                problem = self._check_graph(state, first)
        except torch.cuda.OutOfMemoryError:
            state.graph = None
            raise  # the engine's CPU fall-back handles it
        except Exception as exc:  # whatever the capture raises, the take goes on without it
            if not state.padded:
                self.prompts.prefill(first)
            what = "a batch graph" if state.padded else "it"
            problem = f"capturing {what} failed: {type(exc).__name__}: {exc}"
        if problem:
            notices.append(graphs.turn_off(state, problem))
            return False
        return True

    def _check_graph(self, state: FrameState, prompt: Prompt) -> str:
        """Run the first greedy frames eagerly and by the graph; "" when they agree, else the
        problem. The prompt is prefilled again after each."""
        self.decoder.sampler.use(GenerationRequest("-", temperature=0))
        for i in range(GRAPH_CHECK_FRAMES):
            state.frame(prompt.length + i + 1)
        eager = state.codes[0, :GRAPH_CHECK_FRAMES].clone()
        self.prompts.prefill(prompt)
        for _ in range(GRAPH_CHECK_FRAMES):
            state.graph.replay()
        graphed = state.codes[0, :GRAPH_CHECK_FRAMES].clone()
        self.prompts.prefill(prompt)
        if torch.equal(eager, graphed):
            return ""
        return f"its first {GRAPH_CHECK_FRAMES} greedy frames differ from the eager loop's"


@dataclass
class _Rows:
    """What the loop has made for each request: its codes, frames and how it ended."""

    eos: int
    caps: list[int]
    codes: dict[int, torch.Tensor] = dataclasses.field(default_factory=dict)
    frames: dict[int, int] = dataclasses.field(default_factory=dict)
    ended: dict[int, bool] = dataclasses.field(default_factory=dict)

    def read_back(
        self, codes: torch.Tensor, active: list[int], running: set[int], start: int, stop: int
    ) -> list[int]:
        """Read back frames [start, stop); record the requests that ended (and take them out of
        ``running``); the rows they were in."""
        window = codes[:, start:stop, :-1].cpu()
        hits = (window == self.eos).all(dim=-1)
        ended_rows = []
        for row, index in enumerate(active):
            if index not in running:
                continue
            found = hits[row].nonzero()
            if found.numel():
                end = start + int(found[0, 0])
                self.frames[index], self.ended[index] = end, True
            elif stop >= self.caps[index]:
                end = self.caps[index]
                self.frames[index], self.ended[index] = end, False
            else:
                continue
            self.codes[index] = codes[row, :end].clone()
            running.discard(index)
            ended_rows.append(row)
        return ended_rows


class _StreamedTakes:
    """The takes streamed one after another: one :class:`AudioStream` per request (none when
    nothing streams)."""

    def __init__(self, codec: Any, on_audio: Sequence[AudioCallback], started: float) -> None:
        self.streams = [AudioStream(codec, callback, started) for callback in on_audio]
        self.current = 0  # the request now streaming; those before it have ended

    def check_every(self, active: Collection[int]) -> int:
        """Frames until the next read-back: the streaming take's cadence while it is made."""
        if self.current < len(self.streams) and self.current in active:
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
