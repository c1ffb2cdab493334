"""Build a CSM checkpoint with random weights on disk, in the same layout as ``sesame/csm-1b``.

Tests, benchmarks and the frozen-app smoke test load it through the very ``from_pretrained`` path a
real checkpoint takes. ``TINY`` is ~6 MB and builds in about a second; ``SMALL`` (32 codebooks,
~30 M parameters) is for CPU benchmarks; ``FULL`` has the real CSM-1B shapes (for GPU benchmarks
that need no download).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

SPECIAL_TOKENS = ("<|begin_of_text|>", "<|end_of_text|>", "<|AUDIO|>", "<|audio_eos|>")

# Renders a conversation exactly as the csm-1b template does for valid input:
# <|begin_of_text|>[speaker]text<|end_of_text|> then <|AUDIO|><|audio_eos|> for turns with audio.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- bos_token }}{{- '[' + message['role'] + ']' }}{{- message['content'][0]['text'] }}"
    "{{- eos_token }}"
    "{%- if message['content']|length > 1 %}{{- '<|AUDIO|><|audio_eos|>' }}{%- endif %}"
    "{%- endfor %}"
)

_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello from the studio. This is a test of the voice cloning model.",
    "She sells sea shells by the sea shore, and the shells she sells are surely sea shells.",
    'Numbers like 1, 2, 3 and 2026; punctuation: commas, dots! questions? quotes "here".',
]


@dataclass(frozen=True)
class CheckpointShape:
    """The sizes that matter for a CSM model and its Mimi codec."""

    num_codebooks: int = 4
    backbone_hidden: int = 64
    backbone_layers: int = 2
    backbone_heads: int = 4
    backbone_kv_heads: int = 2
    backbone_intermediate: int = 128
    depth_hidden: int = 32
    depth_layers: int = 2
    depth_heads: int = 2
    depth_kv_heads: int = 1
    depth_intermediate: int = 64
    codec_hidden: int = 32
    codec_filters: int = 8
    codec_layers: int = 1
    codebook_dim: int = 16
    text_vocab_size: int = 512
    full_size: bool = False


TINY = CheckpointShape()
SMALL = CheckpointShape(
    num_codebooks=32,
    backbone_hidden=512,
    backbone_layers=4,
    backbone_heads=8,
    backbone_kv_heads=2,
    backbone_intermediate=1536,
    depth_hidden=256,
    depth_layers=2,
    depth_heads=4,
    depth_kv_heads=2,
    depth_intermediate=768,
    text_vocab_size=512,
)
FULL = CheckpointShape(full_size=True, num_codebooks=32)


def build_tokenizer() -> object:
    """A byte-level BPE tokenizer with the csm-1b special tokens and padding."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_CORPUS, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<|begin_of_text|>",
        eos_token="<|end_of_text|>",
        pad_token="<|end_of_text|>",
        padding_side="left",
    )


def build_config(shape: CheckpointShape, token_ids: dict[str, int]) -> object:
    """A CsmConfig for ``shape``; the full size keeps every default of ``CsmConfig()``."""
    from transformers import CsmConfig, MimiConfig

    if shape.full_size:
        return CsmConfig(
            codec_config=MimiConfig().to_dict(),
            bos_token_id=token_ids["<|begin_of_text|>"],
            audio_token_id=token_ids["<|AUDIO|>"],
            audio_eos_token_id=token_ids["<|audio_eos|>"],
            pad_token_id=token_ids["<|AUDIO|>"],
        )
    codec = MimiConfig(
        hidden_size=shape.codec_hidden,
        num_filters=shape.codec_filters,
        num_residual_layers=1,
        upsampling_ratios=[8, 6, 5, 4],  # the processor hard-codes the real frame arithmetic
        codebook_size=2048,
        codebook_dim=shape.codebook_dim,
        num_quantizers=shape.num_codebooks,
        num_semantic_quantizers=1,
        vector_quantization_hidden_dimension=shape.codebook_dim,
        upsample_groups=shape.codec_hidden,
        num_hidden_layers=shape.codec_layers,
        intermediate_size=2 * shape.codec_hidden,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=shape.codec_hidden // 2,
        sliding_window=250,
    )
    depth = {
        "num_codebooks": shape.num_codebooks,
        "backbone_hidden_size": shape.backbone_hidden,
        "vocab_size": 2051,
        "hidden_size": shape.depth_hidden,
        "intermediate_size": shape.depth_intermediate,
        "num_hidden_layers": shape.depth_layers,
        "num_attention_heads": shape.depth_heads,
        "num_key_value_heads": shape.depth_kv_heads,
        "max_position_embeddings": shape.num_codebooks + 1,
    }
    return CsmConfig(
        num_codebooks=shape.num_codebooks,
        vocab_size=2051,
        text_vocab_size=shape.text_vocab_size,
        hidden_size=shape.backbone_hidden,
        intermediate_size=shape.backbone_intermediate,
        num_hidden_layers=shape.backbone_layers,
        num_attention_heads=shape.backbone_heads,
        num_key_value_heads=shape.backbone_kv_heads,
        max_position_embeddings=2048,
        bos_token_id=token_ids["<|begin_of_text|>"],
        audio_token_id=token_ids["<|AUDIO|>"],
        audio_eos_token_id=token_ids["<|audio_eos|>"],
        pad_token_id=token_ids["<|AUDIO|>"],
        depth_decoder_config=depth,
        codec_config=codec.to_dict(),
    )


def build_random_checkpoint(
    dest: str | os.PathLike[str], shape: CheckpointShape = TINY, seed: int = 0
) -> Path:
    """Write tokenizer, processor, config and random safetensors weights into ``dest``."""
    from transformers import (
        CsmForConditionalGeneration,
        CsmProcessor,
        EncodecFeatureExtractor,
        GenerationConfig,
    )

    out = Path(dest)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    token_ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}  # type: ignore[attr-defined]
    config = build_config(shape, token_ids)
    torch.manual_seed(seed)
    model = CsmForConditionalGeneration(config)  # type: ignore[arg-type]
    # the real checkpoint samples by default (both levels); keep that so tests meet the same trap
    model.generation_config = GenerationConfig(
        do_sample=True, top_k=50, temperature=0.9, max_new_tokens=125
    )
    model.save_pretrained(out)
    extractor = EncodecFeatureExtractor(feature_size=1, sampling_rate=24_000, padding_value=0.0)
    processor = CsmProcessor(extractor, tokenizer, chat_template=CHAT_TEMPLATE)
    processor.save_pretrained(out)
    return out
