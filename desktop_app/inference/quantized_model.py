"""A checkpoint with 8- or 4-bit weights, packed once and loaded from the user's cache.

The first load of a checkpoint in a format reads its float weights (transformers'
``from_pretrained``), packs every product of the frame loop (:mod:`.cpu_weights`) and writes one
file to the cache folder (never the model's folder, which may be read-only): the packed products
and every other tensor the engine needs (embeddings, norms, the Mimi codec, buffers). Every
later load builds the model on the meta device and fills in only those other tensors from the
cache, memory-mapped (two files: :data:`PARTS`): the float weights of the packed products are
never in memory again, and an embedding row is resident only once it is looked up.

The file is named by the checkpoint's identity (the checksums its download recorded, else the
weight files' sizes and modification times: nothing is hashed at a start), the format, the
packing's version and torch's and onnxruntime's versions. It is written to a temporary name and
renamed, under a lock, so that two programs starting at once pack it once; a manifest beside it
holds the files' sizes and CRC-32s (checked once per state of a file), and an entry that does
not match (damaged, cut short) is packed again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from desktop_app.errors import GenerationCancelled
from desktop_app.files import write_text_atomic
from desktop_app.inference.cpu_weights import PackedWeight, pack

log = logging.getLogger(__name__)

PACKING_VERSION = 2
"""Raised whenever the packed layout or what the file holds changes (old files are remade)."""

Status = Callable[[str], None]
StopCheck = Callable[[], bool]


@dataclass
class QuantizedWeights:
    """What a quantized engine loads: the packed products by name and the float rest."""

    fmt: str
    packed: dict[str, PackedWeight]
    floats: dict[str, torch.Tensor]
    attn_implementation: str
    packed_parameters: tuple[str, ...]  # the model's parameters the packed products replace


def checkpoint_identity(model_dir: Path) -> dict[str, Any]:
    """What names a checkpoint's weights without reading them: the checksums its download
    recorded (``.download/source.json``), else each file's size and modification time."""
    from desktop_app.inference.fetch import SOURCE_FILE, WORK_DIR

    record = model_dir / WORK_DIR / SOURCE_FILE
    if record.is_file():
        return {"download": json.loads(record.read_text())}
    files = sorted(
        p for p in model_dir.iterdir() if p.suffix in {".safetensors", ".json"} and p.is_file()
    )
    return {
        "files": [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files],
        "folder": str(model_dir.resolve()),
    }


def cache_folder() -> Path:
    """``$CSM_STUDIO_CACHE/quantized``, else the cache folder of ``$CSM_STUDIO_HOME``, else the
    user's cache folder (XDG). Worked out here rather than by ``desktop_app.paths``: the
    inference package imports nothing beyond torch, transformers and numpy (no platformdirs)."""
    if value := os.environ.get("CSM_STUDIO_CACHE"):
        return Path(value).expanduser() / "quantized"
    if home := os.environ.get("CSM_STUDIO_HOME"):
        return Path(home).expanduser() / "cache" / "quantized"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "csm-studio" / "quantized"


def cache_file(model_dir: Path, fmt: str) -> Path:
    """The manifest of ``model_dir``'s weights in ``fmt`` in the cache (named by the key's hash);
    beside it the two files it describes (:data:`PARTS`)."""
    import onnxruntime

    key = {
        "checkpoint": checkpoint_identity(model_dir),
        "format": fmt,
        "packing": PACKING_VERSION,
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
    return cache_folder() / f"{model_dir.name}-{fmt}-{digest}.json"


PARTS = ("packed", "floats")
"""The cache's two files: the packed products (read once into the kernels, then unmapped) and
the float rest (kept memory-mapped: an embedding row is resident once it is looked up)."""


def part_file(manifest: Path, part: str) -> Path:
    return manifest.with_suffix(f".{part}.pt")


def _crc32(path: Path) -> int:
    crc = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 24):
            crc = zlib.crc32(chunk, crc)
    return crc


def _stamp(path: Path) -> list[int]:
    """What changes when a file is written again: its size, modification time and inode."""
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns, stat.st_ino]


def _intact(manifest: Path) -> bool:
    """Whether the manifest and both files exist and agree (sizes and CRC-32s).

    A file's CRC-32 is checked once for each state of the file (reading 3 GB took 4.5 s of a
    6 s load): the manifest remembers the size, modification time and inode it was checked at,
    and a file written since (cut short, copied over, changed) is read and checked again.
    """
    try:
        recorded = json.loads(manifest.read_text())
        changed = False
        for part in PARTS:
            path, entry = part_file(manifest, part), recorded[part]
            stamp = _stamp(path)
            if stamp[0] != entry["size"]:
                return False
            if entry.get("checked") == stamp:
                continue
            if _crc32(path) != entry["crc32"]:
                return False
            entry["checked"], changed = stamp, True
        if changed:
            write_text_atomic(manifest, json.dumps(recorded))
        return True
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _write(manifest: Path, content: dict[str, dict[str, Any]]) -> None:
    """Each part of ``content`` to its file atomically, then the manifest (the entry counts
    once the manifest is there)."""
    manifest.unlink(missing_ok=True)
    recorded: dict[str, dict[str, Any]] = {}
    for part in PARTS:
        path = part_file(manifest, part)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            torch.save(content[part], temporary)
            with temporary.open("rb+") as f:
                os.fsync(f.fileno())
            recorded[part] = {"size": temporary.stat().st_size, "crc32": _crc32(temporary)}
            os.replace(temporary, path)
            recorded[part]["checked"] = _stamp(path)
        finally:
            temporary.unlink(missing_ok=True)
    write_text_atomic(manifest, json.dumps(recorded))


def load_model(
    model_dir: Path,
    fmt: str,
    on_status: Status | None = None,
    should_stop: StopCheck | None = None,
) -> tuple[Any, QuantizedWeights]:
    """The model of ``model_dir`` as :func:`skeleton` makes it, and its packed weights in
    ``fmt``, packed first when the cache has none (or a damaged one).

    Raises:
        GenerationCancelled: ``should_stop`` said so while packing (nothing is written).
    """
    path = cache_file(model_dir, fmt)
    for attempt in range(2):
        _make_if_needed(path, model_dir, fmt, on_status, should_stop, remake=attempt > 0)
        if on_status is not None:
            on_status(f"loading the {fmt} weights")
        try:
            weights = _read(path, fmt)
            return skeleton(model_dir, weights), weights
        except (RuntimeError, ValueError, KeyError, OSError) as exc:  # a file that reads wrong
            if attempt:
                raise
            log.warning("the quantized cache %s does not load (%s); packing it again", path, exc)
    raise AssertionError("unreachable")


def _make_if_needed(
    path: Path,
    model_dir: Path,
    fmt: str,
    on_status: Status | None,
    should_stop: StopCheck | None,
    remake: bool,
) -> None:
    """Pack ``path`` unless an intact one is there (always with ``remake``), under a lock."""
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with FileLock(str(path) + ".lock"):
        if remake or not _intact(path):
            if path.exists() and not remake:
                log.warning("the quantized cache %s is damaged; packing it again", path)
            _write(path, _packed_content(model_dir, fmt, on_status, should_stop))


def _read(manifest: Path, fmt: str) -> QuantizedWeights:
    packed = torch.load(part_file(manifest, "packed"), mmap=True, weights_only=True)
    rest = torch.load(part_file(manifest, "floats"), mmap=True, weights_only=True)
    weights = {
        name: PackedWeight.from_tensors(packed["tensors"], name, int(bits), int(block))
        for name, (bits, block) in packed["layout"].items()
    }
    return QuantizedWeights(
        fmt,
        weights,
        rest["floats"],
        rest["attn_implementation"],
        tuple(rest["packed_parameters"]),
    )


def _packed_content(
    model_dir: Path, fmt: str, on_status: Status | None, should_stop: StopCheck | None
) -> dict[str, dict[str, Any]]:
    """Load the float checkpoint, pack its products, keep the rest: the cache file's content."""
    from transformers import CsmForConditionalGeneration

    from desktop_app.inference.decoder import Decoder

    if on_status is not None:
        on_status(f"loading the float weights to make {fmt} weights (first time only)")
    model = CsmForConditionalGeneration.from_pretrained(
        model_dir, local_files_only=True, use_safetensors=True, dtype=torch.float32
    ).eval()
    products = Decoder(model).weights()
    packed: dict[str, torch.Tensor] = {}
    layout: dict[str, tuple[int, int]] = {}
    told = -1
    for done, (name, weight, bias) in enumerate(products):
        if should_stop is not None and should_stop():
            raise GenerationCancelled(f"making the {fmt} weights was cancelled")
        percent = 100 * done // len(products)
        if on_status is not None and percent // 10 != told:  # every tenth of the way
            told = percent // 10
            on_status(f"making {fmt} weights (first time only): {percent} %")
        weight_packed = pack(weight, bias, fmt)
        packed |= weight_packed.tensors(name)
        layout[name] = (weight_packed.bits, weight_packed.block)
    # a product's weight shares its storage with the parameters it was fused from
    gone = {weight.untyped_storage().data_ptr() for _, weight, _ in products}
    tensors = [
        *model.named_parameters(remove_duplicate=False),
        *model.named_buffers(remove_duplicate=False),
    ]
    packed_parameters = [n for n, t in tensors if t.untyped_storage().data_ptr() in gone]
    floats = {n: t.detach() for n, t in tensors if t.untyped_storage().data_ptr() not in gone}
    return {
        "packed": {"tensors": packed, "layout": layout},
        "floats": {
            "floats": floats,
            "attn_implementation": str(model.config._attn_implementation),
            "packed_parameters": packed_parameters,
        },
    }


def skeleton(model_dir: Path, weights: QuantizedWeights) -> Any:
    """The CSM model of ``model_dir`` with the cached float tensors and nothing else: the
    packed products' float weights stay on the meta device (no memory).

    Raises:
        ValueError: the cache lacks a tensor the model has (then it is packed again).
    """
    from transformers import AutoConfig, CsmForConditionalGeneration

    config = AutoConfig.from_pretrained(model_dir, local_files_only=True)
    with torch.device("meta"):
        model = CsmForConditionalGeneration._from_config(
            config, attn_implementation=weights.attn_implementation, dtype=torch.float32
        )
    parameters = dict(model.named_parameters(remove_duplicate=False))
    for name, tensor in weights.floats.items():
        owner_name, _, leaf = name.rpartition(".")
        owner = model.get_submodule(owner_name)
        if name in parameters:
            owner._parameters[leaf] = torch.nn.Parameter(tensor, requires_grad=False)
        else:
            owner._buffers[leaf] = tensor
    left = [
        name
        for name, tensor in [*model.named_parameters(), *model.named_buffers()]
        if tensor.is_meta and name not in weights.packed_parameters
    ]
    if left:
        raise ValueError(f"the quantized cache lacks {', '.join(left[:3])}")
    return model.eval()


def release_pages(weight: PackedWeight) -> None:
    """Let the kernel drop the resident pages of packed codes read from the cache file, once
    the products have made their own prepacked copies (Linux ``madvise(MADV_DONTNEED)``; the
    file stays mapped, so a page read again comes back from the file, never as zeros). Only
    for codes that :func:`load_model` memory-mapped: anonymous memory would lose its data."""
    if sys.platform != "linux":
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    page = os.sysconf("SC_PAGE_SIZE")
    start = weight.codes.data_ptr()
    end = start + weight.codes.numel() * weight.codes.element_size()
    first, last = -(-start // page) * page, end // page * page  # whole pages inside
    if last > first:
        libc.madvise(ctypes.c_void_p(first), ctypes.c_size_t(last - first), 4)


def float_copies(model: Any, packed_parameters: tuple[str, ...]) -> list[str]:
    """The names of real (not meta) tensors of ``model`` among ``packed_parameters`` (the
    parameters the packed products replace): empty when no float copy of them is kept."""
    found = dict(model.named_parameters(remove_duplicate=False))
    return [name for name in packed_parameters if not found[name].is_meta]
