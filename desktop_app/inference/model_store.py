"""Finding, checking and (only when the user asks) downloading the app's checkpoints.

Three kinds of model (:class:`ModelKind`): CSM-1B, which speaks; a Whisper checkpoint, which
transcribes clips and takes; a speaker-verification model (WavLM x-vectors), which tells how alike
two voices sound. Each is named by a folder or by a hub id. A hub id is resolved from the local
Hugging Face cache only; the single place that may use the network is :func:`download_model`.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from desktop_app import defaults
from desktop_app.errors import ModelDownloadError, ModelNotFoundError, UserError
from desktop_app.inference import fetch
from desktop_app.inference.fetch import Progress

log = logging.getLogger(__name__)

DEFAULT_MODEL_ID = defaults.MODEL_ID
DOWNLOAD_PATTERNS = ["*.json", "*.safetensors", "*.jinja", "*.txt", "*.model", "*.md"]


@dataclass(frozen=True)
class ModelKind:
    """What the app needs of one kind of checkpoint, and how a person gets one."""

    what: str  # in the user's words: "CSM", "speech-recognition", "speaker"
    model_types: tuple[str, ...]  # config.json's model_type
    default_id: str
    option: str  # the command-line option that names it
    download_flag: str  # the download-model flag that fetches it ("" for CSM)
    files: tuple[str, ...]  # besides config.json, the weights and the preprocessor's config
    gated: bool = False
    allow_bin: bool = False  # see SPEAKER
    download_mb: int = 0  # the default checkpoint's download, as the hub lists it


CSM = ModelKind(
    what="CSM",
    model_types=("csm",),
    default_id=DEFAULT_MODEL_ID,
    option="--model",
    download_flag="",
    files=("tokenizer.json",),
    gated=True,
    download_mb=6_200,
)
ASR = ModelKind(
    what="speech-recognition",
    model_types=("whisper",),
    default_id=defaults.ASR_MODEL_ID_CPU,  # defaults.asr_model_for(device) picks per device
    option="--asr-model",
    download_flag="--asr",
    files=("tokenizer.json", "generation_config.json"),
    download_mb=defaults.ASR_MODEL_MB,
)
SPEAKER = ModelKind(
    what="speaker",
    model_types=("wavlm",),
    default_id=defaults.SPEAKER_MODEL_ID,
    option="--speaker-model",
    download_flag="--speaker",
    files=(),
    # microsoft/wavlm-base-plus-sv publishes PyTorch weights only. transformers reads them with
    # torch.load(weights_only=True), which refuses anything but tensors, so no code can run.
    allow_bin=True,
    download_mb=defaults.SPEAKER_MODEL_MB,
)
KINDS = (CSM, ASR, SPEAKER)


def model_page(repo_id: str = DEFAULT_MODEL_ID) -> str:
    """The hub page where the licence of ``repo_id`` is accepted."""
    return f"https://huggingface.co/{repo_id}"


def how_to_get(repo_id: str = DEFAULT_MODEL_ID, kind: ModelKind = CSM) -> str:
    """The one sentence that tells a person how to obtain the checkpoint."""
    if kind.gated:
        return (
            f"accept the model's licence at {model_page(repo_id)} (logged in), then run "
            f"`HF_TOKEN=YOUR_TOKEN python -m desktop_app download-model` (or --token-file), "
            f"or pass {kind.option} with a folder that holds the checkpoint"
        )
    return (
        f"run `python -m desktop_app download-model {kind.download_flag}` (about "
        f"{defaults.DOWNLOAD_MB.get(repo_id, kind.download_mb):,} MB), or pass {kind.option} "
        f"with a folder that holds the checkpoint"
    )


def looks_like_hub_id(spec: str) -> bool:
    """True for ``owner/name`` strings that are not an existing or explicit path."""
    if spec.startswith((".", "/", "~")) or os.sep in spec.replace("/", "", 1):
        return False
    owner, sep, name = spec.partition("/")
    return bool(sep and owner and name) and "/" not in name and not Path(spec).exists()


def resolve_model(spec: str = DEFAULT_MODEL_ID, kind: ModelKind = CSM) -> Path:
    """Turn a folder or a hub id into a checked checkpoint folder, without the network.

    Raises:
        ModelNotFoundError: the folder is missing or incomplete, or the id is not in the cache.
    """
    if looks_like_hub_id(spec):
        folder = _from_cache(spec, kind)
    else:
        folder = Path(spec).expanduser()
        if not folder.exists():
            raise ModelNotFoundError(
                f"{kind.what} model folder not found: {folder}; {how_to_get(kind.default_id, kind)}"
            )
        if not folder.is_dir():
            raise ModelNotFoundError(
                f"{kind.option} must be a checkpoint folder or a hub id, but {folder} is a file"
            )
    check_checkpoint(folder, kind)
    return folder


def model_revision(folder: Path) -> str:
    """The hub commit a checkpoint folder holds: a snapshot of the hub cache, or a folder the
    app downloaded into; else ""."""
    if folder.parent.name == "snapshots":
        return folder.name
    return str(fetch.source_of(folder).get("commit", ""))


def _from_cache(repo_id: str, kind: ModelKind = CSM) -> Path:
    missing = ModelNotFoundError(
        f"{repo_id} is not in the local model cache ({hub_cache_dir()}); "
        f"{how_to_get(repo_id, kind)}"
    )
    # the hub's folder naming; when it is not there, say so without loading the hub client
    # (its first import takes the GIL for ~0.1 s, a visible stall of the window)
    if not (hub_cache_dir() / f"models--{repo_id.replace('/', '--')}").is_dir():
        raise missing
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError) as exc:
        raise missing from exc
    except HFValidationError as exc:
        raise ModelNotFoundError(f"{repo_id!r} is neither a folder nor a valid model id") from exc


def hub_cache_dir() -> Path:
    """Where the Hugging Face cache keeps downloaded models."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def check_checkpoint(folder: Path, kind: ModelKind = CSM) -> None:
    """Check that ``folder`` holds a complete transformers-format checkpoint of ``kind``.

    Raises:
        ModelNotFoundError: naming every missing or damaged part and how to get a good copy.
    """
    problems: list[str] = []
    config_path = folder / "config.json"
    if not config_path.is_file():
        problems.append("config.json")
    else:
        try:
            model_type = json.loads(config_path.read_text(encoding="utf-8")).get("model_type")
        except (OSError, ValueError) as exc:
            raise ModelNotFoundError(
                f"{config_path} is damaged ({exc}); download the model again"
            ) from exc
        if model_type not in kind.model_types:
            wanted = "CSM-1B" if kind is CSM else f"{kind.model_types[0]} ({kind.what})"
            raise ModelNotFoundError(
                f"{folder} holds a {model_type!r} model, not {kind.model_types[0].upper()}; "
                f"point {kind.option} at a {wanted} checkpoint "
                f"({how_to_get(kind.default_id, kind)})"
            )
    problems += _weight_problems(folder, kind)
    for name in kind.files:
        if not (folder / name).is_file():
            problems.append(name)
    if not (folder / "preprocessor_config.json").is_file() and not _has_processor_config(folder):
        problems.append("preprocessor_config.json")
    if kind is CSM and not _has_chat_template(folder):
        problems.append("a chat template (chat_template.jinja)")
    if problems:
        raise ModelNotFoundError(
            f"the {kind.what} checkpoint in {folder} is incomplete: missing or damaged "
            f"{', '.join(problems)}; {how_to_get(kind.default_id, kind)}"
        )


Loaded = TypeVar("Loaded")


def load_checked(folder: Path, kind: ModelKind, load: Callable[[], Loaded]) -> Loaded:
    """Check ``folder`` as a ``kind`` checkpoint, then ``load()`` it; a load that fails (a
    damaged file, a config transformers cannot read) becomes a ModelNotFoundError saying so.

    Raises:
        ModelNotFoundError: incomplete, or it does not load.
    """
    check_checkpoint(folder, kind)
    try:
        return load()
    except (OSError, ValueError, KeyError) as exc:
        log.exception("loading %s failed", folder)
        again = f"download-model {kind.download_flag}".strip()
        raise ModelNotFoundError(
            f"the {kind.what} checkpoint in {folder} could not be loaded ({exc}); it may be "
            f"damaged: download it again ({again})"
        ) from exc


def _has_processor_config(folder: Path) -> bool:
    path = folder / "processor_config.json"
    try:
        return "feature_extractor" in json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False


def _has_chat_template(folder: Path) -> bool:
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    for name in ("processor_config.json", "tokenizer_config.json"):
        try:
            if "chat_template" in json.loads((folder / name).read_text(encoding="utf-8")):
                return True
        except (OSError, ValueError):
            continue
    return False


def _weight_problems(folder: Path, kind: ModelKind = CSM) -> list[str]:
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = sorted(
                set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
            )
        except (OSError, ValueError, KeyError):
            return [index.name]
    elif (folder / "model.safetensors").is_file():
        shards = ["model.safetensors"]
    elif kind.allow_bin and (folder / "pytorch_model.bin").is_file():
        return []
    elif any(folder.glob("*.bin")):
        raise ModelNotFoundError(
            f"{folder} has only PyTorch .bin weights, which can run code when loaded; CSM Studio "
            f"loads .safetensors weights only; {how_to_get(kind.default_id, kind)}"
        )
    else:
        return ["model.safetensors"]
    return [s for s in shards if not safetensors_complete(folder / s)]


def safetensors_complete(path: Path) -> bool:
    """True when a .safetensors file exists and is as long as its header says (not truncated)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            (header_len,) = struct.unpack("<Q", handle.read(8))
            if header_len <= 0 or 8 + header_len > size:
                return False
            header = json.loads(handle.read(header_len))
    except (OSError, ValueError, struct.error):
        return False
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    return size == 8 + header_len + end


def download_model(
    repo_id: str = DEFAULT_MODEL_ID,
    token: str | None = None,
    local_dir: Path | None = None,
    revision: str | None = None,
    progress: Callable[[str], None] | None = None,
    force_online: bool = False,
    kind: ModelKind = CSM,
    on_bytes: Callable[[Progress], None] | None = None,
) -> Path:
    """Download a checkpoint into the Hugging Face cache, or into ``local_dir``, and check it.

    This is the only function of the app that uses the network, and only when a person asks.
    Into a folder the download is :mod:`fetch`'s: resumable byte by byte across runs, every file
    checked against the hub's checksum, ``on_bytes`` told as bytes arrive. Into the cache it is
    the hub's ``snapshot_download`` (finished files are kept; a cut file starts again).
    ``force_online`` lifts the process-wide offline switch for this one call.

    Raises:
        ModelDownloadError: no network, no access to the gated model, a bad token, no space, or a
            damaged file.
    """
    from huggingface_hub import constants

    if force_online:
        was_offline, constants.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE, False
        try:
            return download_model(
                repo_id, token, local_dir, revision, progress, kind=kind, on_bytes=on_bytes
            )
        finally:
            constants.HF_HUB_OFFLINE = was_offline
    if constants.HF_HUB_OFFLINE:
        raise ModelDownloadError(
            "downloads are switched off (HF_HUB_OFFLINE is set); unset it and run download-model "
            "again"
        )
    patterns = DOWNLOAD_PATTERNS + (["pytorch_model.bin"] if kind.allow_bin else [])
    with hub_errors(repo_id):
        plan = fetch.plan_download(repo_id, token, revision, patterns)
        if local_dir is None:
            if progress is not None:
                progress(
                    f"downloading {repo_id} ({plan.total / 1e6:,.0f} MB) into {hub_cache_dir()}"
                )
            from huggingface_hub import snapshot_download

            path = Path(
                snapshot_download(repo_id, token=token, revision=revision, allow_patterns=patterns)
            )
        else:
            have, _ = fetch.missing_bytes(plan, local_dir)
            if progress is not None:
                resumed = f", {have / 1e6:,.0f} MB already here" if have else ""
                progress(
                    f"downloading {repo_id} ({plan.total / 1e6:,.0f} MB{resumed}) into {local_dir}"
                )
            path = fetch.fetch(plan, local_dir, token, on_bytes)
    check_checkpoint(path, kind)
    return path


CONNECTION_LOST = (
    "the connection to the Hugging Face hub broke off ({error}); download again: finished files "
    "are kept and a cut one goes on where it stopped"
)


@contextmanager
def hub_errors(repo_id: str) -> Iterator[None]:
    """Turn the hub client's and the network's errors into one actionable ModelDownloadError."""
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    unreachable = (
        "cannot reach the Hugging Face hub (no network?); check the connection and download "
        "again: finished files are kept and partial ones resume"
    )
    try:
        yield
    except UserError:
        raise
    except GatedRepoError as exc:
        raise ModelDownloadError(
            f"no access to {repo_id}: it is gated; accept its licence at {model_page(repo_id)} "
            "while logged in, then give a token of that account ($HF_TOKEN, --token-file, or the "
            "guide's token field)"
        ) from exc
    except RepositoryNotFoundError as exc:
        raise ModelDownloadError(
            f"{repo_id} was not found on the hub, or the token cannot see it; check the name "
            f"and the token"
        ) from exc
    except HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status == 401:
            raise ModelDownloadError(
                "the hub refused the access token; create a read token at "
                "https://huggingface.co/settings/tokens and give it ($HF_TOKEN, --token-file, or "
                "the guide's token field)"
            ) from exc
        raise ModelDownloadError(f"the download failed ({exc}); download again") from exc
    except (LocalEntryNotFoundError, ConnectionError) as exc:
        raise ModelDownloadError(unreachable) from exc
    except TimeoutError as exc:
        raise ModelDownloadError(CONNECTION_LOST.format(error="no answer")) from exc
    except OSError as exc:
        raise ModelDownloadError(
            f"the download stopped: {exc.strerror or exc}; free some disk space or choose another "
            f"folder, then download again (it resumes)"
        ) from exc
    except Exception as exc:
        # httpx and friends raise their own connection errors
        name = type(exc).__name__.lower()
        if "connect" in name or "network" in name:
            raise ModelDownloadError(unreachable) from exc
        if any(word in name for word in ("timeout", "protocol", "readerror", "stream")):
            raise ModelDownloadError(CONNECTION_LOST.format(error=type(exc).__name__)) from exc
        raise
