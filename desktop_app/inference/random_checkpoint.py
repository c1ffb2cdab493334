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
from typing import Any

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
    initializer_range: float = 0.02
    """transformers' init std (a trained model's heads are far sharper than 0.02 random ones)."""


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
        "initializer_range": shape.initializer_range,
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
        initializer_range=shape.initializer_range,
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
    (out / RANDOM_MARKER).write_text("random weights built by CSM Studio for tests\n")
    return out


RANDOM_MARKER = "random-weights.txt"
"""A file in every random checkpoint: what is measured with it is a proxy of the plumbing, not
of quality (an evaluation says so)."""


def is_random(model_dir: Path) -> bool:
    """Whether ``model_dir`` is a random checkpoint built here."""
    return (model_dir / RANDOM_MARKER).is_file()


# -- listen-back models: a tiny Whisper that says a chosen sentence, a tiny speaker model ------

WHISPER_SAYS = " The quick brown fox jumps over the lazy dog."
"""What :func:`build_random_whisper` hears in any audio, unless told otherwise."""


@dataclass(frozen=True)
class WhisperShape:
    """The sizes of a random Whisper (the defaults: ~0.3 M parameters)."""

    d_model: int = 64
    layers: int = 1  # encoder layers
    heads: int = 2
    ffn: int = 128
    mel_bins: int = 80
    decoder_layers: int = 1


TINY_WHISPER = WhisperShape()
WHISPER_BASE = WhisperShape(d_model=512, layers=6, heads=8, ffn=2048, decoder_layers=6)
WHISPER_SMALL = WhisperShape(d_model=768, layers=12, heads=12, ffn=3072, decoder_layers=12)
WHISPER_TURBO = WhisperShape(  # openai/whisper-large-v3-turbo: large-v3's encoder, 4 decoder layers
    d_model=1280, layers=32, heads=20, ffn=5120, mel_bins=128, decoder_layers=4
)


def build_random_whisper(
    dest: str | os.PathLike[str],
    says: str = WHISPER_SAYS,
    shape: WhisperShape = TINY_WHISPER,
    seed: int = 0,
) -> Path:
    """A Whisper checkpoint in ``dest`` with the hub's layout, whose decoder says ``says``.

    The token ids follow Whisper's layout (byte-level BPE, ``<|endoftext|>``, the start token,
    the languages in the library's order, the task tokens, ``<|notimestamps|>`` as the last
    special token, then the timestamps). A purely random decoder would emit special and timestamp
    tokens and never stop, so its weights are shaped: every layer's output projection is zero,
    the positions are orthonormal vectors, and the untied output head maps position ``p`` to the
    token due there (``<|en|>``, ``<|transcribe|>``, ``<|notimestamps|>``, the words of ``says``,
    then ``<|endoftext|>``). The encoder is random, so the word times come from real (random)
    cross-attention through Whisper's own alignment code.
    """
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
    )
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    out = Path(dest)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _whisper_tokenizer(out, says)
    ids = tokenizer.convert_tokens_to_ids  # type: ignore[attr-defined]
    eot, sot, notimestamps = (
        ids("<|endoftext|>"),
        ids("<|startoftranscript|>"),
        ids("<|notimestamps|>"),
    )
    config = WhisperConfig(
        vocab_size=len(tokenizer),  # type: ignore[arg-type]
        num_mel_bins=shape.mel_bins,
        d_model=shape.d_model,
        encoder_layers=shape.layers,
        decoder_layers=shape.decoder_layers,
        encoder_attention_heads=shape.heads,
        decoder_attention_heads=shape.heads,
        encoder_ffn_dim=shape.ffn,
        decoder_ffn_dim=shape.ffn,
        max_source_positions=1500,
        max_target_positions=448,
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        decoder_start_token_id=sot,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config)
    words = tokenizer(says, add_special_tokens=False).input_ids  # type: ignore[operator]
    sequence = [sot, ids("<|en|>"), ids("<|transcribe|>"), notimestamps, *words, eot]
    _shape_whisper_decoder(model, sequence)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=sot,
        eos_token_id=eot,
        pad_token_id=eot,
        bos_token_id=eot,
        max_length=448,
        is_multilingual=True,
        lang_to_id={f"<|{code}|>": ids(f"<|{code}|>") for code in LANGUAGES},
        task_to_id={"transcribe": ids("<|transcribe|>"), "translate": ids("<|translate|>")},
        no_timestamps_token_id=notimestamps,
        prev_sot_token_id=ids("<|startofprev|>"),
        alignment_heads=[[i, 0] for i in range(config.decoder_layers)],
        max_initial_timestamp_index=50,
        suppress_tokens=[],
        begin_suppress_tokens=[eot],
    )
    model.save_pretrained(out)
    extractor = WhisperFeatureExtractor(feature_size=shape.mel_bins)
    WhisperProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(out)
    return out


def _whisper_tokenizer(out: Path, says: str) -> object:
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import AddedToken, WhisperTokenizer
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    bpe.train_from_iterator([*_CORPUS, says], trainer=trainer)
    trained = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in trained["merges"]]
    spelling = out / "normalizer.json"  # Whisper's English spelling map (a two-word one here)
    spelling.write_text(json.dumps({"colour": "color", "favourite": "favorite"}), encoding="utf-8")
    tokenizer = WhisperTokenizer(
        vocab=trained["vocab"], merges=merges, normalizer_file=str(spelling)
    )
    specials = [
        "<|endoftext|>",
        "<|startoftranscript|>",
        *(f"<|{code}|>" for code in LANGUAGES),
        "<|translate|>",
        "<|transcribe|>",
        "<|startoflm|>",
        "<|startofprev|>",
        "<|nocaptions|>",
        "<|notimestamps|>",
    ]
    tokenizer.add_special_tokens(
        {
            "additional_special_tokens": [
                AddedToken(t, special=True, normalized=False) for t in specials
            ]
        }
    )
    tokenizer.add_tokens(
        [AddedToken(f"<|{i * 0.02:.2f}|>", special=False, normalized=False) for i in range(1501)]
    )
    return tokenizer


def _shape_whisper_decoder(model: Any, sequence: list[int]) -> None:
    """Make the decoder predict ``sequence[p + 1]`` at position ``p`` whatever it hears."""
    decoder = model.model.decoder
    d = decoder.embed_positions.weight.shape[1]
    if len(sequence) > d:
        raise ValueError(f"a random Whisper of width {d} can say at most {d - 5} tokens")
    with torch.no_grad():
        for layer in decoder.layers:
            for linear in (layer.self_attn.out_proj, layer.encoder_attn.out_proj, layer.fc2):
                linear.weight.zero_()
                if linear.bias is not None:
                    linear.bias.zero_()
        decoder.embed_tokens.weight.mul_(0.01)
        basis = torch.randn(d, len(sequence))
        basis -= basis.mean(0, keepdim=True)  # the layer norm removes the mean: stay orthogonal
        directions, _ = torch.linalg.qr(basis)
        decoder.embed_positions.weight.zero_()
        decoder.embed_positions.weight[: len(sequence)] = directions.T * 8
        head = model.proj_out.weight
        head.mul_(0.01)
        for position, token in enumerate(sequence[1:]):
            head[token] += directions[:, position] * 8


@dataclass(frozen=True)
class SpeakerShape:
    """The sizes of a random WavLM x-vector model (the defaults: ~50 k parameters)."""

    hidden: int = 32
    layers: int = 1
    heads: int = 2
    conv: int = 32
    embedding: int = 32


TINY_SPEAKER = SpeakerShape()
SPEAKER_BASE = SpeakerShape(hidden=768, layers=12, heads=12, conv=512, embedding=512)


def build_random_speaker_model(
    dest: str | os.PathLike[str], shape: SpeakerShape = TINY_SPEAKER, seed: int = 0
) -> Path:
    """A WavLMForXVector checkpoint in ``dest`` with the layout of microsoft/wavlm-base-plus-sv."""
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMForXVector

    out = Path(dest)
    out.mkdir(parents=True, exist_ok=True)
    config = WavLMConfig(
        hidden_size=shape.hidden,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        intermediate_size=4 * shape.hidden,
        conv_dim=(shape.conv,) * 7,
        num_conv_pos_embeddings=16 if shape.hidden < 256 else 128,
        num_conv_pos_embedding_groups=4 if shape.hidden < 256 else 16,  # must divide hidden
        tdnn_dim=(shape.hidden,) * 4 + (2 * shape.hidden,),
        xvector_output_dim=shape.embedding,
    )
    torch.manual_seed(seed)
    WavLMForXVector(config).save_pretrained(out)
    Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=16_000,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=True,
    ).save_pretrained(out)
    return out
