"""A face's settings as a request: the one way every face builds what it asks the model."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from desktop_app.inference.engine import GenerationRequest


def new_seed() -> int:
    """A random seed, reported with the take so it can be made again."""
    return random.randrange(2**31)


def make_request(
    text: str,
    *,
    temperature: float,
    top_k: int,
    top_p: float,
    seed: int | None,
    max_seconds: float,
) -> GenerationRequest:
    """``text`` with these sampling settings (a ``seed`` of None becomes a new one), checked
    with the same words for every face.

    Raises:
        RequestError: an empty text or a setting out of range.
    """
    from desktop_app.inference import GenerationRequest
    from desktop_app.inference.prompt import check_request

    request = GenerationRequest(
        text=text,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        seed=new_seed() if seed is None else seed,
        max_seconds=max_seconds,
    )
    check_request(request)
    return request
