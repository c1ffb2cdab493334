"""Training a voice: LoRA adapters (peft) on CSM's backbone and depth decoder, through transformers'
own CSM training path (the processor's labels, the model's loss), with checkpoints that resume
exactly.

Each example is two turns of the same speaker: another utterance as the reference (no loss on it)
and the target utterance, whose every frame trains the backbone (codebook 0) and a share of whose
frames (:attr:`TrainSettings.depth_share`, as Sesame does) train the depth decoder. The Mimi codes
of every utterance are computed once and kept in the training set's folder; the model is handed
those codes instead of re-encoding the audio at every step (:func:`merged_inputs` builds what
``CsmForConditionalGeneration._merge_input_ids_with_input_values`` builds, a test holds the two
equal).

Exact resume: every micro-step seeds torch and its own example choice from (seed, step,
micro-step), so a run's randomness never depends on what ran before it in the process; a
checkpoint (written at step boundaries, atomically) holds the adapter, the optimizer and the
scheduler, so a resumed run ends with the same weights as one that never stopped.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from desktop_app.errors import GenerationCancelled, RequestError
from desktop_app.files import atomic_write, write_text_atomic
from desktop_app.inference import compute_device
from desktop_app.inference.adapter import INFO_NAME
from desktop_app.inference.engine import StopCheck
from desktop_app.inference.model_store import CSM, load_checked
from desktop_app.inference.prompt import turn_text
from desktop_app.inference.quantized_model import checkpoint_identity
from desktop_app.training.training_set import TrainingSet
from desktop_app.training.utterances import Utterance

TARGET_MODULES = (
    r".*(backbone_model|depth_decoder\.model)\.layers\.\d+\."
    r"(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)"
)
"""The linears of both transformers' layers (never Mimi's, whose layers have the same names)."""
ADAPTER_INFO = INFO_NAME
"""What the studio records beside peft's files: the base model's identity, the settings, the
data, the curves."""
SPEAKER = "0"


@dataclass(frozen=True)
class TrainSettings:
    """How a voice is trained; the defaults are what the README recommends."""

    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    steps: int = 0
    """0: from the data (:func:`steps_for`)."""
    learning_rate: float = 2e-4
    warmup_share: float = 0.05
    accumulation: int = 4
    """Examples per optimizer step."""
    validate_every: int = 25
    checkpoint_every: int = 25
    depth_share: float = 1 / 16
    """The share of a target's frames that train the depth decoder (Sesame's 1/16)."""
    seed: int = 0

    def resolved(self, examples: int) -> TrainSettings:
        """These settings with ``steps`` fixed from the number of training examples."""
        if self.steps > 0:
            return self
        return TrainSettings(**{**asdict(self), "steps": steps_for(examples, self.accumulation)})


def steps_for(examples: int, accumulation: int) -> int:
    """Three passes over the data, at least 60 and at most 1,500 optimizer steps."""
    return max(60, min(1500, math.ceil(3 * examples / max(accumulation, 1))))


@dataclass
class History:
    """The curves: (step, loss) pairs for training and validation."""

    train: list[tuple[int, float]] = field(default_factory=list)
    validation: list[tuple[int, float]] = field(default_factory=list)
    best_step: int = 0
    best_loss: float = math.inf


@dataclass(frozen=True)
class TrainProgress:
    """One report: where the run is, its last losses and how long it has left."""

    step: int
    steps: int
    train_loss: float | None
    validation_loss: float | None
    seconds_left: float | None
    message: str = ""


Reporter = Callable[[TrainProgress], None]


@dataclass(frozen=True)
class TrainResult:
    adapter: Path
    history: History
    resumed_from: int
    """The step the run went on from (0: from the start)."""
    settings: TrainSettings


def device_dtype(device: str) -> tuple[torch.device, torch.dtype]:
    """bf16 on CUDA, float32 on the CPU."""
    chosen = compute_device.pick_device(device)
    return chosen, torch.bfloat16 if chosen.type == "cuda" else torch.float32


MEMORY_FACTOR = 1.5
"""Training's peak resident memory over the float32 weights' bytes (9.3 GiB for CSM-1B's 6.1 GiB
on the CPU, a 10 s example after a 10 s reference: benchmarks/results/train-voice.json), plus
:data:`MEMORY_MARGIN`."""
MEMORY_MARGIN = 0.5 * 2**30


def memory_needed(model_dir: Path, dtype: torch.dtype) -> int:
    """Bytes training the checkpoint in ``model_dir`` needs, from its weight files' sizes
    (stored as float32 or 16-bit: counted at the training dtype's width)."""
    import json as _json

    stored = sum(p.stat().st_size for p in model_dir.glob("*.safetensors"))
    config = model_dir / "config.json"
    width = 4
    if config.is_file():
        declared = str(_json.loads(config.read_text()).get("torch_dtype") or "")
        width = 2 if declared in ("bfloat16", "float16") else 4
    wanted = 2 if dtype in (torch.bfloat16, torch.float16) else 4
    return int(stored / width * wanted * MEMORY_FACTOR + MEMORY_MARGIN)


def check_memory(model_dir: Path, device: torch.device, dtype: torch.dtype) -> None:
    """Refuse to start a training the machine has no memory for (not a swap storm later).

    Raises:
        RequestError: less free memory (or free GPU memory) than the training needs.
    """
    import psutil

    needed = memory_needed(model_dir, dtype)
    if device.type == "cuda":
        free = torch.cuda.mem_get_info(device)[0]
        where = "free GPU memory"
    else:
        free = psutil.virtual_memory().available
        where = "free memory"
    if needed > free:
        raise RequestError(
            f"training this model needs about {needed / 2**30:.1f} GB of {where}; this machine "
            f"has {free / 2**30:.1f} GB: close other programs, or train on a machine with more"
        )


def load_base(model_dir: Path, device: str) -> tuple[Any, Any]:
    """The CSM model (frozen) and its processor, for training, once the memory is there.

    Raises:
        ModelNotFoundError: the folder is incomplete or does not load.
        RequestError: not enough free memory to train it.
    """
    from transformers import AutoProcessor, CsmForConditionalGeneration

    torch_device, dtype = device_dtype(device)
    check_memory(model_dir, torch_device, dtype)

    def load() -> tuple[Any, Any]:
        processor = AutoProcessor.from_pretrained(model_dir, local_files_only=True)
        model: Any = CsmForConditionalGeneration.from_pretrained(
            model_dir, local_files_only=True, dtype=dtype
        )
        return model.to(torch_device), processor

    model, processor = load_checked(model_dir, CSM, load)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model, processor


# -- the codes and the examples ----------------------------------------------------------------


def codes_of(model: Any, training_set: TrainingSet, utterance: Utterance) -> torch.Tensor:
    """An utterance's Mimi codes, (frames, codebooks), computed once and kept in the set's
    ``codes/`` folder under the audio's hash."""
    audio = np.ascontiguousarray(utterance.audio, dtype=np.float32)
    name = hashlib.sha256(audio.tobytes()).hexdigest()[:24]
    path = training_set.folder / "codes" / f"{name}.npy"
    if path.is_file():
        return torch.from_numpy(np.load(path))
    codec = model.codec_model
    with torch.no_grad():
        values = torch.from_numpy(audio).to(codec.device, codec.dtype)[None, None]
        codes = codec.encode(values).audio_codes[0].transpose(0, 1).cpu()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as handle:
        np.save(handle, codes.numpy())
    return codes


def prompt_of(processor: Any, reference: Utterance, target: Utterance) -> Any:
    """The processor's tokens and labels for the two turns (reference, then target)."""
    conversation = [
        {
            "role": SPEAKER,
            "content": [
                {"type": "text", "text": turn_text(u.transcript)},
                {"type": "audio", "path": u.audio},
            ],
        }
        for u in (reference, target)
    ]
    text = processor.apply_chat_template(conversation, tokenize=False)
    return processor(
        text=text,
        audio=[reference.audio, target.audio],
        output_labels=True,
        depth_decoder_labels_ratio=1.0,
        return_tensors="pt",
    )


def merged_inputs(
    model: Any, input_ids: torch.Tensor, labels: torch.Tensor, codes: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The input embeddings and the (batch, positions, codebooks) labels the model builds from
    the processor's tokens and labels, with the audio's frames taken from ``codes`` (all the
    prompt's frames in order, (frames, codebooks)) instead of encoding the audio again."""
    config = model.config
    embeds = model.embed_text_tokens(input_ids)
    audio = input_ids == config.audio_token_id
    codes = codes.to(input_ids.device)
    embeds[audio] = model.backbone_model.embed_tokens(codes[None])[0].to(embeds.dtype)
    eos = input_ids == config.audio_eos_token_id
    eos_frame = torch.full(
        (1, 1, config.num_codebooks), config.codebook_eos_token_id, device=input_ids.device
    )
    eos_embed = model.backbone_model.embed_tokens(eos_frame).squeeze(1).to(embeds.dtype)
    embeds[eos] = eos_embed.repeat(int(eos.sum()), 1)
    expanded = labels.unsqueeze(-1).repeat(1, 1, config.num_codebooks)
    expanded[audio] = codes
    expanded[eos] = eos_frame[0]
    skipped = (labels == -101).nonzero(as_tuple=True)
    expanded[skipped[0], skipped[1], 1:] = -100
    return embeds, expanded


def example(
    model: Any,
    processor: Any,
    training_set: TrainingSet,
    reference: Utterance,
    target: Utterance,
    depth_share: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One training example: no loss on the reference turn; every target frame trains the
    backbone, ``depth_share`` of them (at least one, drawn from torch's generator) the depth
    decoder. The processor's own frame share is not used: it would count the reference's frames,
    which carry no loss here."""
    batch = prompt_of(processor, reference, target)
    ref_codes = codes_of(model, training_set, reference)
    target_codes = codes_of(model, training_set, target)
    codes = torch.cat([ref_codes, target_codes])
    input_ids = batch["input_ids"].to(model.device)
    frames = (input_ids == model.config.audio_token_id).nonzero()
    if frames.shape[0] != codes.shape[0]:
        raise RuntimeError(f"{frames.shape[0]} audio positions for {codes.shape[0]} frames")
    labels = batch["labels"].to(model.device).clone()
    reference_frames = ref_codes.shape[0]
    target_positions = frames[reference_frames:]
    keep = max(1, round(target_positions.shape[0] * depth_share))
    drop = torch.randperm(target_positions.shape[0])[keep:]
    labels[target_positions[drop, 0], target_positions[drop, 1]] = -101
    embeds, expanded = merged_inputs(model, input_ids, labels, codes)
    # the reference turn, its audio's end marker included, teaches nothing
    first_eos = int((input_ids[0] == model.config.audio_eos_token_id).nonzero()[0, 0])
    expanded[0, : first_eos + 1] = -100
    return embeds, expanded


def pair_for(utterances: list[Utterance], index: int, rng: random.Random) -> Utterance:
    """Another utterance of the set as the reference of ``utterances[index]``."""
    if len(utterances) == 1:
        return utterances[0]
    other = rng.randrange(len(utterances) - 1)
    return utterances[other + (other >= index)]


# -- the run ---------------------------------------------------------------------------------


def lora_config(settings: TrainSettings) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=TARGET_MODULES,
        bias="none",
    )


def _schedule(settings: TrainSettings) -> Callable[[int], float]:
    warmup = max(1, round(settings.steps * settings.warmup_share))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, settings.steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def _swap_in(temporary: Path, final: Path) -> None:
    """A folder written in full at ``temporary`` takes the place of ``final`` (a checkpoint, the
    best adapter): a crash leaves the old one or the new one, never half of either."""
    shutil.rmtree(final, ignore_errors=True)
    os.replace(temporary, final)


def _seed(settings: TrainSettings, step: int, micro: int) -> int:
    return (settings.seed * 1_000_003 + step * 1_009 + micro) % (2**63)


class Trainer:
    """One training run of a voice: ``out`` holds its checkpoints and, at the end, the adapter."""

    def __init__(
        self,
        model: Any,
        processor: Any,
        model_dir: Path,
        training_set: TrainingSet,
        out: Path,
        settings: TrainSettings,
    ) -> None:
        self.base = model
        self.processor = processor
        self.model_dir = model_dir
        self.training_set = training_set
        self.out = out
        train = training_set.training()
        if not train:
            raise RequestError(
                "no usable utterances to train on: record more, or look at why the review "
                "left them out"
            )
        self.train = train
        self.held_out = training_set.held_out()
        self.settings = settings.resolved(len(train))

    # -- checkpoints ---------------------------------------------------------------------------

    @property
    def checkpoints(self) -> Path:
        return self.out / "checkpoints"

    def latest(self) -> Path | None:
        pointer = self.checkpoints / "latest.json"
        if not pointer.is_file():
            return None
        folder = self.checkpoints / json.loads(pointer.read_text())["folder"]
        return folder if folder.is_dir() else None

    def _save(
        self, model: Any, optimizer: Any, scheduler: Any, step: int, history: History
    ) -> None:
        from peft import get_peft_model_state_dict
        from safetensors.torch import save_file

        name = f"step-{step:06d}"
        temporary = self.checkpoints / f"{name}.tmp"
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir(parents=True)
        state = {k: v.contiguous() for k, v in get_peft_model_state_dict(model).items()}
        save_file(state, temporary / "adapter.safetensors")
        torch.save(
            {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
            temporary / "optimizer.pt",
        )
        (temporary / "state.json").write_text(
            json.dumps(
                {"step": step, "settings": asdict(self.settings), "history": asdict(history)}
            )
        )
        _swap_in(temporary, self.checkpoints / name)
        write_text_atomic(self.checkpoints / "latest.json", json.dumps({"folder": name}))
        for old in self.checkpoints.glob("step-*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)

    def _load(
        self, folder: Path, model: Any, optimizer: Any, scheduler: Any
    ) -> tuple[int, History]:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        state = json.loads((folder / "state.json").read_text())
        if state["settings"] != asdict(self.settings):
            raise RequestError(
                "the run to resume was started with other settings; resume with the same ones, "
                "or start again"
            )
        set_peft_model_state_dict(model, load_file(folder / "adapter.safetensors"))
        saved = torch.load(folder / "optimizer.pt", weights_only=True)
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        history = History(
            train=[(int(a), float(b)) for a, b in state["history"]["train"]],
            validation=[(int(a), float(b)) for a, b in state["history"]["validation"]],
            best_step=state["history"]["best_step"],
            best_loss=state["history"]["best_loss"],
        )
        return int(state["step"]), history

    # -- the loop --------------------------------------------------------------------------------

    def run(
        self,
        *,
        resume: bool = False,
        on_progress: Reporter | None = None,
        should_stop: StopCheck | None = None,
    ) -> TrainResult:
        """Train, validating every ``validate_every`` steps and keeping the best adapter.

        Raises:
            GenerationCancelled: ``should_stop`` said so; the last finished step is kept as a
                checkpoint, and ``resume=True`` goes on from it.
            RequestError: nothing to train on, or the checkpoint's settings differ.
        """
        from peft import get_peft_model

        settings = self.settings
        report = on_progress or (lambda _progress: None)
        torch.manual_seed(settings.seed)  # the adapter's starting weights, the same every run
        model = get_peft_model(self.base, lora_config(settings))
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate, weight_decay=0.0)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(settings))
        step, history = 0, History()
        latest = self.latest() if resume else None
        if resume and latest is None:
            report(TrainProgress(0, settings.steps, None, None, None,
                                 "nothing to resume: training from the beginning"))  # fmt: skip
        if latest is not None:
            step, history = self._load(latest, model, optimizer, scheduler)
            report(TrainProgress(step, settings.steps, None, None, None,
                                 f"resuming at step {step} of {settings.steps}"))  # fmt: skip
        elif not resume:
            shutil.rmtree(self.checkpoints, ignore_errors=True)
        resumed_from = step
        try:
            self._loop(model, optimizer, scheduler, step, history, report, should_stop)
            if not self.held_out:
                self._keep(model, "best")
                history.best_step = settings.steps
            adapter = self._finish(history)
        finally:
            self.base = model.unload()  # the base model without the adapter, for a next run
        return TrainResult(adapter, history, resumed_from, settings)

    def _loop(
        self,
        model: Any,
        optimizer: Any,
        scheduler: Any,
        step: int,
        history: History,
        report: Reporter,
        should_stop: StopCheck | None,
    ) -> None:
        settings = self.settings
        first, started = step, time.perf_counter()
        try:
            while step < settings.steps:
                loss = self._step(model, optimizer, scheduler, step, should_stop)
                step += 1
                history.train.append((step, loss))
                validation = None
                if step % settings.validate_every == 0 or step == settings.steps:
                    validation = self.validation_loss(model)
                    if validation is not None:
                        history.validation.append((step, validation))
                        if validation < history.best_loss:
                            history.best_step, history.best_loss = step, validation
                            self._keep(model, "best")
                if step % settings.checkpoint_every == 0 or step == settings.steps:
                    self._save(model, optimizer, scheduler, step, history)
                per_step = (time.perf_counter() - started) / (step - first)
                report(TrainProgress(step, settings.steps, loss, validation,
                                     per_step * (settings.steps - step)))  # fmt: skip
        except GenerationCancelled:
            if step > first:
                self._save(model, optimizer, scheduler, step, history)
            raise

    def _step(
        self, model: Any, optimizer: Any, scheduler: Any, step: int, should_stop: StopCheck | None
    ) -> float:
        settings = self.settings
        model.train()
        total = 0.0
        for micro in range(settings.accumulation):
            if should_stop is not None and should_stop():
                optimizer.zero_grad(set_to_none=True)
                raise GenerationCancelled("training stopped")
            seed = _seed(settings, step, micro)
            torch.manual_seed(seed)
            rng = random.Random(seed)
            index = rng.randrange(len(self.train))
            reference = pair_for(self.train, index, rng)
            embeds, labels = example(
                model.base_model.model,
                self.processor,
                self.training_set,
                reference,
                self.train[index],
                settings.depth_share,
            )
            out = model(inputs_embeds=embeds, labels=labels)
            (out.loss / settings.accumulation).backward()
            total += float(out.loss.detach())
        torch.nn.utils.clip_grad_norm_(
            [p for p in model.parameters() if p.requires_grad], max_norm=1.0
        )
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        return total / settings.accumulation

    def validation_loss(self, model: Any) -> float | None:
        """The mean loss over the held-out utterances, each with a fixed training utterance as
        its reference and every frame training the depth decoder (no randomness)."""
        if not self.held_out:
            return None
        model.eval()
        losses = []
        with torch.no_grad():
            for index, target in enumerate(self.held_out):
                reference = self.train[index % len(self.train)]
                embeds, labels = example(
                    model.base_model.model, self.processor, self.training_set, reference,
                    target, 1.0,
                )  # fmt: skip
                losses.append(float(model(inputs_embeds=embeds, labels=labels).loss))
        return float(np.mean(losses))

    def _keep(self, model: Any, name: str) -> None:
        """peft's own format (adapter_config.json + adapter_model.safetensors), atomically."""
        temporary = self.out / f"{name}.tmp"
        shutil.rmtree(temporary, ignore_errors=True)
        model.save_pretrained(temporary)
        _swap_in(temporary, self.out / name)

    def _finish(self, history: History) -> Path:
        """The kept adapter in ``out/adapter`` with what the studio records beside it."""
        adapter = self.out / "adapter"
        shutil.rmtree(adapter, ignore_errors=True)
        shutil.copytree(self.out / "best", adapter)
        info = {
            "base_model": checkpoint_identity(self.model_dir),
            "settings": asdict(self.settings),
            "training_minutes": round(sum(u.seconds for u in self.train) / 60, 2),
            "utterances": len(self.train),
            "held_out": len(self.held_out),
            "history": asdict(history),
        }
        (adapter / ADAPTER_INFO).write_text(json.dumps(info, indent=1))
        return adapter
