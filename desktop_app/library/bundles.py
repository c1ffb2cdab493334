"""Voice bundles: a voice as a portable zip (manifest.json plus one WAV per clip), and its
import, which distrusts the bundle (sizes checked before unpacking, each clip opened by its
content under the clip cap, consent asked again)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from desktop_app.defaults import SAMPLE_RATE as MODEL_RATE
from desktop_app.files import atomic_write
from desktop_app.library.adapters import CONFIG_NAME, WEIGHTS_NAME
from desktop_app.library.database import LibraryError
from desktop_app.library.records import VoiceRecord

if TYPE_CHECKING:
    from desktop_app.library.store import Library

MANIFEST = "manifest.json"
BUNDLE_FORMAT = "csm-studio-voice"


def export_voice(library: Library, name: str, target: Path) -> Path:
    """Write a voice as a portable zip: manifest.json plus one WAV per clip (atomically)."""
    import zipfile

    voice = library.voices.get(name)
    entries = [
        {"file": f"clips/{i:02d}.wav", "transcript": c.transcript, "source": c.source}
        for i, c in enumerate(voice.clips)
    ]
    manifest: dict[str, Any] = {
        "format": BUNDLE_FORMAT,
        "version": 1,
        "name": voice.name,
        "notes": voice.notes,
        "consent_confirmed": voice.consent_confirmed,
        "clips": entries,
    }
    adapter = library.adapters.get(name)
    if adapter is not None:  # a trained voice: peft's own two files, byte for byte
        manifest["adapter"] = {
            "config": f"adapter/{CONFIG_NAME}",
            "weights": f"adapter/{WEIGHTS_NAME}",
            "info": adapter.info,
        }
    with atomic_write(target) as handle, zipfile.ZipFile(handle, "w") as bundle:
        bundle.writestr(MANIFEST, json.dumps(manifest, indent=2))
        for entry, clip in zip(entries, voice.clips, strict=True):
            bundle.write(clip.file, entry["file"])
        if adapter is not None:
            bundle.write(adapter.config_file, f"adapter/{CONFIG_NAME}")
            bundle.write(adapter.weights_file, f"adapter/{WEIGHTS_NAME}")
    return target


BUNDLE_MEMBER_BYTES = 64_000_000
"""The largest member of a voice bundle (a 5-minute clip as the library keeps it is ~29 MB)."""
ADAPTER_BYTES = 256_000_000
"""The largest adapter weights file (CSM-1B's at rank 16 is ~54 MB; rank 64, ~215 MB)."""
BUNDLE_TOTAL_BYTES = 512_000_000
"""All members of a bundle together (room for a voice of many clips)."""
BUNDLE_MAX_CLIPS = 100


def import_voice(
    library: Library, source: Path, *, consent: bool, name: str | None = None
) -> VoiceRecord:
    """Add the voice in a zip made by :func:`export_voice` (optionally under another name).

    The bundle is distrusted: each member's size and their total are checked from the zip's
    directory before anything is decompressed, each clip is opened by its content with a clip's
    length cap and prepared like a clip given to ``voices add`` (trimmed, normalized, at least
    2 s of sound), and the bundle's own consent flag is not taken as given: ``consent`` is the
    person's answer now.

    Raises:
        LibraryError: no consent, not such a zip, damaged, too large, or the name is taken.
        AudioFileError: a clip that is not audio, too long or too short.
    """
    import zipfile

    from desktop_app.audio.reference import reference_from_bytes

    if not consent:
        raise LibraryError(
            "a voice is imported only with the consent of the person it belongs to: confirm it "
            "(--consent)"
        )
    try:
        with zipfile.ZipFile(source) as bundle:
            _check_sizes(bundle, source)
            manifest = json.loads(bundle.read(MANIFEST))
            if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
                raise LibraryError(f"{source} is not a CSM Studio voice bundle")
            entries = manifest["clips"]
            if not isinstance(entries, list) or len(entries) > BUNDLE_MAX_CLIPS:
                raise LibraryError(
                    f"the voice bundle {source} lists more than {BUNDLE_MAX_CLIPS} clips"
                )
            clips = []
            for number, entry in enumerate(entries, start=1):
                audio = reference_from_bytes(
                    bundle.read(str(entry["file"])), what=f"clip {number} of {source.name}"
                )
                clips.append((audio, str(entry["transcript"]), str(entry["source"])))
            adapter = _adapter_of(bundle, manifest, source)
    except (OSError, KeyError, TypeError, ValueError, zipfile.BadZipFile) as exc:
        raise LibraryError(f"cannot read the voice bundle {source}: {exc}") from exc
    if not clips:
        raise LibraryError(f"the voice bundle {source} holds no clips; export the voice again")
    voice = library.voices.add(
        name or str(manifest.get("name") or ""),
        clips,
        notes=str(manifest.get("notes", "")),
        consent_confirmed=True,
        rate=MODEL_RATE,
    )
    if adapter is not None:
        config, weights, info = adapter
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / CONFIG_NAME).write_bytes(config)
            (folder / WEIGHTS_NAME).write_bytes(weights)
            library.adapters.attach(voice.name, folder, info)
    return voice


def _adapter_of(bundle: Any, manifest: dict[str, Any], source: Path) -> Any:
    """A trained voice's adapter files from the bundle (None for an untrained voice), read as
    LoRA weights before anything is stored: a file that is not is refused.

    Raises:
        LibraryError: the adapter is damaged or not LoRA weights.
    """
    entry = manifest.get("adapter")
    if not entry:
        return None
    from desktop_app.errors import RequestError
    from desktop_app.inference.adapter import read_adapter_files

    config, weights = bundle.read(str(entry["config"])), bundle.read(str(entry["weights"]))
    info = dict(entry.get("info") or {})
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / CONFIG_NAME).write_bytes(config)
        (Path(tmp) / WEIGHTS_NAME).write_bytes(weights)
        try:
            read_adapter_files(Path(tmp) / CONFIG_NAME, Path(tmp) / WEIGHTS_NAME, info)
        except RequestError as exc:
            raise LibraryError(f"the trained voice in {source} is damaged: {exc}") from exc
    return config, weights, info


def _check_sizes(bundle: Any, source: Path) -> None:
    """Refuse a bundle whose members would decompress past the caps (a zip bomb)."""
    total = 0
    for info in bundle.infolist():
        cap = ADAPTER_BYTES if info.filename == f"adapter/{WEIGHTS_NAME}" else BUNDLE_MEMBER_BYTES
        if info.file_size > cap:
            raise LibraryError(
                f"{info.filename} in {source} would take {info.file_size / 1e6:.0f} MB: over "
                f"the {cap / 1e6:.0f} MB a bundle's file may have"
            )
        total += info.file_size
    if total > BUNDLE_TOTAL_BYTES:
        raise LibraryError(
            f"{source} would take {total / 1e6:.0f} MB once unpacked: over the "
            f"{BUNDLE_TOTAL_BYTES / 1e6:.0f} MB a voice bundle may have"
        )
