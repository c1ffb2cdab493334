"""A take's prompt, typed, and the prefill that keeps the backbone's cache between takes.

Every prompt records what each of its positions holds (:class:`CodesPlan`: a text token, a
frame's codes, or frame i of some encoded audio). The single-take state's cache keeps the last
prompt's positions (and the frames fed after them), and the next prefill starts at the first
position that differs: a take in the voice of the previous one prefills only its text; a
conversation's next line only the previous line's end and its own text. Turns that carry their
codes are embedded from them as they are, without the codec.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from desktop_app.inference.batch import BatchError
from desktop_app.inference.decoder import Decoder, FrameState
from desktop_app.inference.engine import GenerationRequest
from desktop_app.inference.prompt import SAMPLES_PER_FRAME
from desktop_app.inference.transformers_compat import prompt_embeddings


@dataclass(frozen=True)
class CodesPlan:
    """What each prompt position holds: a key per position, the positions whose embedding comes
    from given codes, and the last position of audio that must be encoded (a prefill may start
    after it only: that audio is then in the cache)."""

    keys: list[bytes]
    code_rows: list[tuple[int, np.ndarray]]
    last_waveform: int  # -1: none


@dataclass(frozen=True)
class Prompt:
    """A take's tokenized prompt: the processor's tensors, the length of its voice part (the
    reference turns), a key for that voice part, and the plan of its positions (None when its
    audio positions do not split into the turns as expected: it is then prefilled whole)."""

    inputs: Mapping[str, Any]
    voice_len: int
    key: str
    plan: CodesPlan | None

    @property
    def length(self) -> int:
        """Positions in the prompt."""
        return int(self.inputs["input_ids"].shape[1])


class PromptCache:
    """Builds prompts and prefills them into the decoder's single-take state."""

    def __init__(self, reference: Any, decoder: Decoder) -> None:
        self.reference = reference  # the transformers engine: processor, model, codec
        self.decoder = decoder
        self.codec_dtype = next(reference.model.codec_model.parameters()).dtype
        self._prompt_key: str | None = None
        self._cache_keys: list[bytes] | None = None  # what each cached position holds
        self.prefilled_positions = 0  # how many positions the last prefill computed

    def prompt_of(self, request: GenerationRequest) -> Prompt:
        """The request's prompt (the processor tokenizes it and prepares the clips' audio)."""
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
        d = self.decoder
        digest.update(f"{d.device}{d.dtype}{request.speaker}".encode())
        plan = self._codes_plan(request, ids, clips)
        return Prompt(inputs, voice_len, digest.hexdigest(), plan)

    def _codes_plan(
        self, request: GenerationRequest, ids: torch.Tensor, clip_digests: list[bytes]
    ) -> CodesPlan | None:
        """Which prompt positions hold which turn's frames, and a key per position."""
        config = self.reference.model.config
        audio_id, eos_id = int(config.audio_token_id), int(config.audio_eos_token_id)
        audio_at = (ids == audio_id).nonzero()[:, 0].tolist()
        counts = [math.ceil(clip.audio.size / SAMPLES_PER_FRAME) for clip in request.references]
        if sum(counts) != len(audio_at):
            return None
        books = self.decoder.num_codebooks
        keys = [b"t" + int(token).to_bytes(8, "little") for token in ids.tolist()]
        eos_frame = np.full(books, self.decoder.eos, dtype=np.int64)
        for at in (ids == eos_id).nonzero()[:, 0].tolist():
            keys[at] = b"c" + eos_frame.tobytes()
        code_rows: list[tuple[int, np.ndarray]] = []
        waveform: list[int] = []
        cursor = 0
        for clip, count, clip_digest in zip(request.references, counts, clip_digests, strict=True):
            positions = audio_at[cursor : cursor + count]
            cursor += count
            if clip.codes is not None and clip.codes.shape == (count, books):
                for at, row in zip(positions, clip.codes.astype(np.int64), strict=True):
                    keys[at] = b"c" + row.tobytes()
                    code_rows.append((at, row))
            else:
                for frame, at in enumerate(positions):
                    keys[at] = b"a" + clip_digest + frame.to_bytes(8, "little")
                    waveform.append(at)
        return CodesPlan(keys, code_rows, max(waveform, default=-1))

    def prefill(self, prompt: Prompt) -> bool:
        """Fill the single state's backbone cache with ``prompt``; True when its voice part
        was kept from before (only what the cache did not hold was prefilled).

        Without a plan, the voice part is reused only when it is the previous take's exactly.
        """
        if prompt.plan is not None:
            return self._prefill_extending(prompt, prompt.plan)
        self._cache_keys = None
        ids = prompt.inputs["input_ids"].to(self.decoder.device)
        reuse = prompt.voice_len > 0 and prompt.key == self._prompt_key
        start = prompt.voice_len if reuse else 0
        model = self.reference.model
        embeds = (
            model.embed_text_tokens(ids[:, start:]) if reuse else self._prompt_embeds(prompt, ids)
        )
        self._prefill_from(ids, embeds, start)
        self._prompt_key = prompt.key
        return reuse

    def _prefill_extending(self, prompt: Prompt, plan: CodesPlan) -> bool:
        d = self.decoder
        model = self.reference.model
        ids = prompt.inputs["input_ids"].to(d.device)
        end = ids.shape[1]
        cached = self._cache_keys or []
        start, limit = 0, min(len(cached), end - 1)
        while start < limit and cached[start] == plan.keys[start]:
            start += 1
        if start <= plan.last_waveform:  # audio to encode after the kept part: all again
            start = 0
        if start == 0:
            embeds = self._prompt_embeds(prompt, ids)
        else:
            embeds = model.embed_text_tokens(ids[:, start:])
            eos_frame = torch.full((1, d.num_codebooks), d.eos, device=d.device)
            eos_at = ids[0, start:] == int(model.config.audio_eos_token_id)
            embeds[0, eos_at] = d.embed_frame(eos_frame)[0].to(embeds.dtype)
        for at, row in plan.code_rows:
            if at >= start:
                embeds[0, at - start] = d.embed_frame(torch.as_tensor(row, device=d.device))
        self._prefill_from(ids, embeds, start)
        self._prompt_key = None
        self._cache_keys = list(plan.keys)
        return prompt.voice_len > 0 and start >= prompt.voice_len

    def _prompt_embeds(self, prompt: Prompt, ids: torch.Tensor) -> torch.Tensor:
        """The whole prompt's input embeddings, its clips encoded by the codec."""
        values = prompt.inputs.get("input_values")
        device = self.decoder.device
        return prompt_embeddings(
            self.reference.model,
            ids,
            # the codec encodes the clips: its dtype (the same as the model's, normally)
            None if values is None else values.to(device, self.codec_dtype),
            None if values is None else prompt.inputs["input_values_cutoffs"].to(device),
        )

    def _prefill_from(self, ids: torch.Tensor, embeds: torch.Tensor, start: int) -> None:
        """Run the backbone over positions ``start`` to the prompt's end (``embeds``); the
        positions before ``start`` are read from the cache."""
        d = self.decoder
        state = d.single
        end = ids.shape[1]
        positions = d.all_positions[start:end]
        mask = None
        if start > 0:  # queries start mid-sequence: causal mask against the cached part
            mask = (d.all_positions[:end][None, :] <= positions[:, None])[None, None]
        out = state.backbone.forward(embeds.to(d.dtype), positions, end, mask)
        state.hidden.copy_(out[:, -1])
        state.position.fill_(end)
        state.frame_index.zero_()
        self.prefilled_positions = end - start

    def prefill_rows(self, state: FrameState, prompts: Sequence[Prompt]) -> bool:
        """A batch's prompts: the shared voice part once (into the single state, reused when
        it holds it), copied to every row; then each row's own text turn into its row.

        Padding rows (up to a bucket) start at position 0 with a zero state: what they make
        is never read. Returns True when the voice part was kept from before.

        Raises:
            BatchError: the prompts' voice parts differ in length.
        """
        d = self.decoder
        voice_len = prompts[0].voice_len
        reused = self.prefill(prompts[0])  # the voice (reused when cached) and row 0's text
        state.hidden.zero_()
        state.position.zero_()
        source = d.single.backbone
        for row, prompt in enumerate(prompts):
            if prompt.voice_len != voice_len:
                raise BatchError("the rows' voice prompts differ in length")
            state.backbone.k[:, row, :, :voice_len] = source.k[:, 0, :, :voice_len]
            state.backbone.v[:, row, :, :voice_len] = source.v[:, 0, :, :voice_len]
            ids = prompt.inputs["input_ids"].to(d.device)
            end = ids.shape[1]
            positions = d.all_positions[voice_len:end]
            mask = (d.all_positions[:end][None, :] <= positions[:, None])[None, None]
            embeds = self.reference.model.embed_text_tokens(ids[:, voice_len:]).to(d.dtype)
            rows = slice(row, row + 1)
            out = state.backbone.forward(embeds, positions, end, mask, cache_rows=rows)
            state.hidden[row] = out[0, -1]
            state.position[row] = end
        return reused

    def remember_frames(self, codes: torch.Tensor) -> None:
        """After a single take on an extending prefill: the cache now also holds these frames."""
        if self._cache_keys is not None:
            rows = codes.cpu().numpy().astype(np.int64)
            self._cache_keys += [b"c" + row.tobytes() for row in rows]

    def forget(self) -> None:
        """The next prompt is prefilled whole (tests compare against this)."""
        self._cache_keys = None
        self._prompt_key = None
