"""A trained voice's LoRA adapter as the engines use it, read from peft's own files without
importing peft (the inference package needs only torch, transformers and numpy).

peft keeps, for each adapted linear, ``A`` (rank x in) and ``B`` (out x rank) under
``base_model.model.<module>.lora_A.weight`` / ``.lora_B.weight``, and the scale ``alpha / rank``
(``alpha / sqrt(rank)`` with rsLoRA) in ``adapter_config.json``; a linear's output becomes
``x W^T + scale * (x A^T) B^T``. The fast engine adds that low-rank path beside each product
(float or packed), so a voice changes without reloading or merging weights.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from desktop_app.errors import RequestError

if TYPE_CHECKING:  # torch is imported where an adapter is read: the library names files only
    import torch

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"
INFO_NAME = "csm_studio.json"
_KEY = re.compile(r"^base_model\.model\.(?P<module>.+)\.lora_(?P<which>[AB])\.weight$")


@dataclass(frozen=True, eq=False)
class VoiceAdapter:
    """The low-rank pairs of a trained voice, by the adapted module's path in the CSM model
    (``backbone_model.layers.0.self_attn.q_proj``), and their common scale."""

    key: str
    """The weights' SHA-256: two adapters with the same key are the same voice."""
    scale: float
    pairs: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(repr=False)
    base_model: dict[str, Any] = field(default_factory=dict, repr=False)
    """The base checkpoint's identity as recorded at training time (empty when unknown)."""

    def pair(self, module: str) -> tuple[torch.Tensor, torch.Tensor] | None:
        return self.pairs.get(module)


def read_adapter(folder: Path) -> VoiceAdapter:
    """The adapter in ``folder`` (peft's layout; the studio's record beside it, if any).

    Raises:
        RequestError: the folder does not hold a LoRA adapter this engine can apply.
    """
    info: dict[str, Any] = {}
    if (folder / INFO_NAME).is_file():
        info = json.loads((folder / INFO_NAME).read_text())
    return read_adapter_files(folder / CONFIG_NAME, folder / WEIGHTS_NAME, info)


def read_adapter_files(config_file: Path, weights_file: Path, info: dict[str, Any]) -> VoiceAdapter:
    """An adapter from peft's two files wherever they are (the library keeps them
    content-named) and the studio's record of it (``info``: its ``base_model``).

    Raises:
        RequestError: the files do not hold a LoRA adapter this engine can apply.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        config = json.loads(config_file.read_text())
        data = weights_file.read_bytes()
        tensors = load(data)
    except (OSError, ValueError, RuntimeError, SafetensorError) as exc:
        raise RequestError(f"the voice adapter {weights_file} cannot be read ({exc})") from exc
    if config.get("peft_type", "LORA") != "LORA":
        raise RequestError(f"the adapter {config_file} is {config.get('peft_type')}, not LoRA")
    rank, alpha = int(config["r"]), float(config["lora_alpha"])
    scale = alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank
    found: dict[str, dict[str, torch.Tensor]] = {}
    for name, tensor in tensors.items():
        match = _KEY.match(name)
        if match is None:
            raise RequestError(f"the adapter {weights_file} holds {name!r}, which is not LoRA")
        found.setdefault(match["module"], {})[match["which"]] = tensor.float()
    pairs = {m: (ab["A"], ab["B"]) for m, ab in found.items() if "A" in ab and "B" in ab}
    return VoiceAdapter(
        hashlib.sha256(data).hexdigest(), scale, pairs, dict(info.get("base_model") or {})
    )


def check_base(adapter: VoiceAdapter, identity: dict[str, Any], what: str) -> None:
    """Refuse an adapter trained on another base model than ``identity``.

    Raises:
        RequestError: the recorded identity differs.
    """
    if adapter.base_model and adapter.base_model != identity:
        raise RequestError(
            f"{what} was trained on another base model than the one loaded; load the model it "
            "was trained on, or train the voice again on this one"
        )
