"""Reading any common audio file and writing takes atomically, with metadata.

soundfile (libsndfile) reads WAV, FLAC, OGG/Vorbis/Opus and MP3; what phones and browsers record
(M4A/AAC, WebM, MP4) goes through PyAV, whose wheels carry FFmpeg.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf

from desktop_app.audio import containers
from desktop_app.defaults import MAX_CLIP_SECONDS
from desktop_app.errors import AudioFileError, GenerationCancelled, OutputFileError
from desktop_app.files import atomic_write

log = logging.getLogger(__name__)

READABLE = containers.ALLOWED_NAMES
_WRITE_FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_24")}
AI_MARK = "AI-generated speech"


@dataclass(frozen=True)
class DecodedAudio:
    """Samples as float32 of shape (frames, channels) and their sample rate."""

    samples: np.ndarray
    sample_rate: int

    @property
    def seconds(self) -> float:
        return self.samples.shape[0] / self.sample_rate if self.sample_rate else 0.0


@dataclass(frozen=True)
class TakeMetadata:
    """What a saved take says about itself."""

    text: str
    model: str
    seed: int
    engine: str = ""
    voice: str = ""
    software: str = "CSM Studio"


StopCheck = Callable[[], bool]
_BLOCK_FRAMES = 1 << 16  # frames decoded at a time: the cap and a stop are checked between blocks


def read_audio(
    path: str | os.PathLike[str],
    *,
    max_seconds: float = MAX_CLIP_SECONDS,
    should_stop: StopCheck | None = None,
) -> DecodedAudio:
    """Decode an audio file of any sample rate, bit depth and channel count.

    The file is opened by what its first bytes say it is (:mod:`desktop_app.audio.containers`),
    never by its name, and decoded in blocks: more than ``max_seconds`` of audio (declared by
    the file or found while decoding) is refused before it is held in memory.

    Raises:
        AudioFileError: the file is missing, unreadable, not one of the allowed containers,
            damaged, empty or longer than ``max_seconds``.
        GenerationCancelled: ``should_stop`` said so between two blocks.
    """
    p = Path(path)
    _check_readable(p)
    with p.open("rb") as handle:
        return _decode(handle, str(p), max_seconds, should_stop)


def read_audio_bytes(
    data: bytes,
    *,
    what: str = "the upload",
    max_seconds: float = MAX_CLIP_SECONDS,
    should_stop: StopCheck | None = None,
) -> DecodedAudio:
    """:func:`read_audio` for bytes received from outside (an upload, a bundle member), named
    ``what`` in errors."""
    if not data:
        raise AudioFileError(f"{what} is empty (0 bytes)")
    return _decode(io.BytesIO(data), what, max_seconds, should_stop)


def _decode(
    handle: BinaryIO, what: str, max_seconds: float, should_stop: StopCheck | None
) -> DecodedAudio:
    head = handle.read(containers.HEADER_BYTES)
    handle.seek(0)
    container = containers.identify(head)
    if container is None:
        raise AudioFileError(
            f"cannot decode {what}: it is not a supported audio file (supported: {READABLE}; "
            "playlists and links are never opened)"
        )
    limit = _Limit(what, max_seconds, should_stop)
    decoders = (_read_soundfile, _read_pyav) if container.libsndfile else (_read_pyav,)
    decoded: DecodedAudio | None = None
    for decode in decoders:
        handle.seek(0)
        try:
            decoded = decode(handle, container, limit)
            break
        except (AudioFileError, GenerationCancelled):
            raise
        except Exception as exc:  # each decoder has its own error types; keep them for the log
            log.info("%s could not decode %s: %s", decode.__name__, what, exc)
    if decoded is None:
        raise AudioFileError(
            f"cannot decode {what}: it looks like {container.name} but is damaged or not "
            f"audio (supported: {READABLE})"
        )
    if decoded.samples.shape[0] == 0:
        raise AudioFileError(f"{what} holds no audio (0 samples); record or choose another file")
    samples = decoded.samples
    if not np.isfinite(samples).all():
        samples = np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)
    return DecodedAudio(np.ascontiguousarray(samples, dtype=np.float32), decoded.sample_rate)


@dataclass
class _Limit:
    """The decoded-length cap and the stop check, applied between blocks."""

    what: str
    max_seconds: float
    should_stop: StopCheck | None

    def check(self, frames: float, rate: float, declared: bool = False) -> None:
        if self.should_stop is not None and self.should_stop():
            raise GenerationCancelled(f"reading {self.what} was stopped")
        if rate > 0 and frames / rate > self.max_seconds:
            length = f"{frames / rate / 60:.1f} minutes" if declared else "more than that"
            raise AudioFileError(
                f"{self.what} is too long: this takes at most {_minutes(self.max_seconds)} of "
                f"audio, and it holds {length}; cut it to the part you need"
            )


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} minutes" if seconds >= 60 else f"{seconds:g} s"


def _check_readable(p: Path) -> None:
    try:
        info = p.stat()
    except FileNotFoundError:
        raise AudioFileError(f"file not found: {p}") from None
    except PermissionError:  # a folder on the way may not be ours to enter
        raise AudioFileError(
            f"cannot read {p}: permission denied (the file or a folder on its path); copy it "
            f"somewhere you can read, or ask its owner"
        ) from None
    except OSError as exc:
        raise AudioFileError(f"cannot read {p}: {exc.strerror or exc}") from None
    if p.is_dir():
        raise AudioFileError(f"{p} is a folder, not an audio file")
    if not os.access(p, os.R_OK):
        raise AudioFileError(f"cannot read {p}: permission denied; copy it somewhere you can read")
    if info.st_size == 0:
        raise AudioFileError(f"{p} is empty (0 bytes)")


def _read_soundfile(
    handle: BinaryIO, container: containers.Container, limit: _Limit
) -> DecodedAudio:
    with sf.SoundFile(handle) as f:
        rate = int(f.samplerate)
        if 0 < f.frames < 2**62:  # libsndfile's "unknown" is a huge count: then blocks decide
            limit.check(f.frames, rate, declared=True)
        blocks: list[np.ndarray] = []
        total = 0
        while True:
            block = f.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)
            if block.shape[0] == 0:
                break
            blocks.append(block)
            total += block.shape[0]
            limit.check(total, rate)
        channels = f.channels
    if not blocks:
        return DecodedAudio(np.zeros((0, channels), np.float32), rate)
    return DecodedAudio(np.concatenate(blocks), rate)


def _read_pyav(handle: BinaryIO, container: containers.Container, limit: _Limit) -> DecodedAudio:
    import av  # imported here: only compressed phone/browser formats need FFmpeg

    # a file object (no URL, no protocol) and the format forced: nothing else is opened
    with av.open(handle, mode="r", format=container.demuxer) as opened:
        if not opened.streams.audio:
            raise AudioFileError(f"{limit.what} has no audio track")
        stream = opened.streams.audio[0]
        if stream.duration is not None and stream.time_base is not None:
            limit.check(float(stream.duration * stream.time_base), 1.0, declared=True)
        elif opened.duration is not None:
            limit.check(opened.duration / av.time_base, 1.0, declared=True)
        resampler = av.AudioResampler(format="fltp")
        chunks: list[np.ndarray] = []
        rate = int(stream.rate or 0)
        total = 0
        for frame in opened.decode(stream):
            for out in resampler.resample(frame):
                rate = out.sample_rate
                chunks.append(out.to_ndarray())
                total += out.samples
            limit.check(total, rate)
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray())
    if not chunks:
        return DecodedAudio(np.zeros((0, 1), np.float32), rate)
    planar = np.concatenate(chunks, axis=1)
    return DecodedAudio(planar.T.astype(np.float32, copy=False), rate)


def write_audio(
    path: str | os.PathLike[str],
    audio: np.ndarray,
    sample_rate: int,
    metadata: TakeMetadata | None = None,
    permissions: int = 0o644,
) -> Path:
    """Write mono or (frames, channels) audio as WAV or FLAC, atomically, with metadata.

    The file appears complete or not at all: a temporary file in the same folder is written,
    flushed and fsynced, then renamed over the target.

    Raises:
        OutputFileError: unsupported extension, or the folder cannot be written (permission,
            read-only, disk full).
    """
    p = Path(path)
    fmt = _WRITE_FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise OutputFileError(f"cannot save {p.name}: choose a file name ending in .wav or .flac")
    if not p.parent.is_dir():
        raise OutputFileError(f"cannot save {p}: the folder {p.parent} does not exist")
    data = np.asarray(audio, dtype=np.float32)
    data = np.clip(np.nan_to_num(data), -1.0, 1.0)
    channels = 1 if data.ndim == 1 else data.shape[1]
    # encode in memory first: libsndfile's write callback cannot report a full disk (soundfile
    # turns the OSError into a failed assertion), a plain write of the bytes can
    encoded = io.BytesIO()
    try:
        with sf.SoundFile(
            encoded,
            "w",
            samplerate=sample_rate,
            channels=channels,
            format=fmt[0],
            subtype=fmt[1],
        ) as out:
            if metadata is not None:
                _apply_metadata(out, metadata)
            out.write(data)
    except sf.LibsndfileError as exc:
        raise OutputFileError(f"cannot save {p}: {exc}") from exc
    with atomic_write(p, permissions=permissions) as handle:
        handle.write(encoded.getbuffer())
    return p


def _apply_metadata(out: sf.SoundFile, meta: TakeMetadata) -> None:
    out.title = meta.text[:1000]
    out.artist = meta.voice or "CSM Studio voice clone"
    out.software = meta.software
    out.comment = f"{AI_MARK} | model={meta.model} | seed={meta.seed} | engine={meta.engine}"


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read back the text fields of a WAV/FLAC file (title, artist, software, comment, ...)."""
    with sf.SoundFile(str(path)) as f:
        fields = {k: v for k, v in f.copy_metadata().items() if v}
    comment = fields.get("comment", "")
    for part in comment.split("|")[1:]:
        key, _, value = part.strip().partition("=")
        if key:
            fields[key] = value
    fields["ai_generated"] = "yes" if comment.startswith(AI_MARK) else "no"
    return fields
