"""A trained voice's adapter for tests: peft's own LoRA with random A and B, saved by peft."""

from __future__ import annotations

from pathlib import Path

import torch

from desktop_app.training import lora


def random_adapter(model_dir: Path, folder: Path, seed: int) -> Path:
    """A LoRA adapter with random A and B (peft's ``init_lora_weights=False``), saved by peft,
    its B scaled up so that it changes the greedy codes of a tiny model."""
    from peft import LoraConfig, get_peft_model

    model, _ = lora.load_base(model_dir, "cpu")
    torch.manual_seed(seed)
    config = LoraConfig(
        r=4, lora_alpha=8, target_modules=lora.TARGET_MODULES, init_lora_weights=False
    )
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.mul_(20)
    peft_model.save_pretrained(folder)
    return folder
