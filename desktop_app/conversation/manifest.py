"""What a dialogue run leaves beside its mix, so that one line can be made again later.

``<mix>.lines/`` holds each line's kept audio (``001.wav``, ...), its codes (``001.npy``,
frames x codebooks, untrimmed) and ``manifest.json``: the
script's turns, the base seed, the gap, and each line's seed, frames, stop reason, check and
context. ``dialogue --redo N`` reads it back: the other lines stay exactly as they were and are
the context of the line made again; then the mix, stems and subtitles are written anew.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from desktop_app.audio import dsp
from desktop_app.audio.io import read_audio, write_audio
from desktop_app.conversation.script import Script
from desktop_app.conversation.speak import SpokenLine, kept_line
from desktop_app.defaults import MAX_RECORDING_SECONDS
from desktop_app.errors import RequestError
from desktop_app.files import atomic_write, write_text_atomic

VERSION = 1


def folder_for(mix: Path) -> Path:
    """The lines folder of a mix file."""
    return mix.with_name(f"{mix.stem}.lines")


@dataclass(frozen=True)
class KeptLine:
    """A line of an earlier run, as the manifest holds it."""

    line: SpokenLine
    entry: dict[str, Any]  # its report entry (context, check, ...)


def write_manifest(
    mix: Path, script: Script, lines: list[SpokenLine], report: list[dict[str, Any]], seed: int
) -> Path:
    """Every line's audio and the manifest into :func:`folder_for` ``(mix)``."""
    folder = folder_for(mix)
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for line, entry in zip(lines, report, strict=True):
        file = folder / f"{line.index + 1:03d}.wav"
        write_audio(file, line.result.audio, line.result.sample_rate)
        if line.result.codes.size or not (folder / f"{file.stem}.npy").exists():
            with atomic_write(file.with_suffix(".npy")) as handle:
                np.save(handle, line.result.codes.astype(np.int64))
        entries.append({**entry, "file": file.name})
    data = {
        "version": VERSION,
        "seed": seed,
        "turns": [[t.speaker, t.text] for t in script.turns],
        "lines": entries,
    }
    write_text_atomic(folder / "manifest.json", json.dumps(data, indent=2) + "\n")
    return folder


def read_manifest(mix: Path, script: Script) -> tuple[int, list[KeptLine]]:
    """The base seed and the lines of the earlier run whose mix is ``mix``.

    Raises:
        RequestError: there is no earlier run, its files are gone, or the script changed since.
    """
    folder = folder_for(mix)
    try:
        data = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RequestError(
            f"--redo needs the earlier run of this conversation ({folder / 'manifest.json'} "
            f"cannot be read: {exc}); run dialogue without --redo first, with the same --out"
        ) from exc
    if data.get("turns") != [[t.speaker, t.text] for t in script.turns]:
        raise RequestError(
            f"the script changed since {mix} was made; make the whole conversation again "
            f"(without --redo)"
        )
    kept = []
    for entry in data["lines"]:
        index = int(entry["index"])
        try:
            audio = dsp.to_mono(
                read_audio(folder / entry["file"], max_seconds=MAX_RECORDING_SECONDS).samples
            )
        except Exception as exc:
            raise RequestError(
                f"line {index + 1}'s audio in {folder} cannot be read ({exc}); make the whole "
                f"conversation again"
            ) from exc
        try:
            codes = np.load(folder / Path(entry["file"]).with_suffix(".npy"))
        except (OSError, ValueError):
            codes = np.zeros((0, 0), np.int64)
        line = kept_line(script.turns[index], entry, audio, codes)
        kept.append(KeptLine(line, entry))
    return int(data["seed"]), kept
