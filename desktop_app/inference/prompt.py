"""A generation request as the conversation the CSM processor's chat template expects."""

from __future__ import annotations

import math
from typing import Any

from desktop_app import defaults
from desktop_app.errors import RequestError
from desktop_app.inference.engine import GenerationRequest
from desktop_app.inference.text import clean_text

SAMPLES_PER_FRAME = round(defaults.SAMPLE_RATE / defaults.FRAME_RATE)
"""24 kHz samples per Mimi frame (1920)."""


def check_request(request: GenerationRequest) -> None:
    """Reject requests the model cannot serve, with a message saying what to change.

    Raises:
        RequestError: empty text or transcript, or settings out of range.
    """
    if not clean_text(request.text).strip():
        raise RequestError("nothing to say: the text is empty; type what the voice should say")
    for number, clip in enumerate(request.references, start=1):
        if not clean_text(clip.transcript).strip():
            raise RequestError(
                f"reference clip {number} has no transcript; type exactly what is said in it"
            )
        if clip.audio.ndim != 1 or clip.audio.size == 0:
            raise RequestError(f"reference clip {number} holds no mono audio")
    if request.temperature < 0:
        raise RequestError(f"temperature must be 0 (greedy) or more, not {request.temperature}")
    if request.top_k < 0:
        raise RequestError(f"top-k must be 0 (off) or more, not {request.top_k}")
    if not 0 < request.top_p <= 1:
        raise RequestError(f"top-p must be above 0 and at most 1, not {request.top_p}")
    if not request.max_seconds > 0:
        raise RequestError(f"the maximum length must be above 0 s, not {request.max_seconds}")


def build_conversation(request: GenerationRequest) -> list[dict[str, Any]]:
    """One turn per reference clip (transcript + audio), then the text to speak."""
    speaker = str(request.speaker)
    turns: list[dict[str, Any]] = [
        {
            "role": speaker if clip.speaker is None else str(clip.speaker),
            "content": [
                {"type": "text", "text": " ".join(clean_text(clip.transcript).split())},
                {"type": "audio", "path": clip.audio},
            ],
        }
        for clip in request.references
    ]
    text = " ".join(clean_text(request.text).split())
    turns.append({"role": speaker, "content": [{"type": "text", "text": text}]})
    return turns


def turn_text(text: str) -> str:
    """A turn's text as the prompt holds it (cleaned, whitespace collapsed)."""
    return " ".join(clean_text(text).split())


def turn_positions(tokenizer: Any, speaker: int, text: str, samples: int) -> int:
    """Context positions one turn takes: its rendered text's tokens, then (with ``samples`` of
    24 kHz audio) one position per Mimi frame and one for the audio's end.

    This is the chat template's arithmetic (``<|begin_of_text|>[speaker]text<|end_of_text|>``
    then ``<|AUDIO|>`` expanded to the frames and ``<|audio_eos|>``); a test holds it to what
    the processor makes.
    """
    rendered = f"{tokenizer.bos_token}[{speaker}]{turn_text(text)}{tokenizer.eos_token}"
    tokens = len(tokenizer(rendered, add_special_tokens=False).input_ids)
    return tokens + (math.ceil(samples / SAMPLES_PER_FRAME) + 1 if samples else 0)
