"""The one place that calls transformers' private CSM code, behind a version check.

The fast engine builds its prefill from the same audio-into-text embedding merge that
``CsmForConditionalGeneration.generate`` uses, so that both engines see the same prompt. That
merge is private (``_merge_input_ids_with_input_values``): its name, keywords or return value
may change in any release. It is called here only, and the range it was tested with is pinned
in pyproject.toml (:data:`TESTED_RANGE`); outside it, a clear error says what to install.
(:mod:`desktop_app.inference.streaming` adapts to Mimi's module layout the same way.)
"""

from __future__ import annotations

from typing import Any

import torch

TESTED_RANGE = ">=5.17,<5.25"
"""transformers versions the fast engine was checked against (5.17 on the GPU machine, 5.24 here);
keep in step with pyproject.toml."""


class TransformersChanged(RuntimeError):
    """The installed transformers no longer offers what the fast engine relies on."""


def prompt_embeddings(
    model: Any,
    input_ids: torch.Tensor,
    input_values: torch.Tensor | None,
    input_values_cutoffs: torch.Tensor | None,
) -> torch.Tensor:
    """The backbone's input embeddings for a tokenized prompt: text tokens embedded, each
    ``<|AUDIO|>`` position replaced by the summed codebook embeddings of its Mimi frame.

    Raises:
        TransformersChanged: the private merge is gone or answers in another shape.
    """
    merge = getattr(model, "_merge_input_ids_with_input_values", None)
    if merge is None:
        raise TransformersChanged(_changed("has no _merge_input_ids_with_input_values"))
    merged = merge(
        input_ids=input_ids,
        input_values=input_values,
        input_values_cutoffs=input_values_cutoffs,
    )
    embeds = merged.get("inputs_embeds") if isinstance(merged, dict) else merged
    if not isinstance(embeds, torch.Tensor):
        raise TransformersChanged(_changed(f"returned {type(merged).__name__} from the merge"))
    return embeds


def _changed(what: str) -> str:
    import transformers

    return (
        f"transformers {transformers.__version__} {what}; the fast engine was tested with "
        f"transformers{TESTED_RANGE}: install such a version, or use --engine transformers"
    )
