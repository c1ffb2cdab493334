"""Reading any common audio file and writing takes atomically, with metadata.

soundfile (libsndfile) reads WAV, FLAC, OGG/Vorbis/Opus and MP3; what phones and browsers record
(M4A/AAC, WebM, MP4) goes through PyAV, whose wheels carry FFmpeg.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from desktop_app.errors import AudioFileError, OutputFileError
from desktop_app.files import atomic_write

READABLE = "WAV, FLAC, OGG/Opus, MP3, M4A/AAC, WebM"
_PYAV_FIRST = {".m4a", ".aac", ".mp4", ".webm", ".mka", ".mkv", ".3gp", ".wma"}
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


def read_audio(path: str | os.PathLike[str]) -> DecodedAudio:
    """Decode an audio file of any sample rate, bit depth and channel count.

    Raises:
        AudioFileError: the file is missing, unreadable, not audio, damaged or empty.
    """
    p = Path(path)
    _check_readable(p)
    decoders = (
        (_read_pyav, _read_soundfile)
        if p.suffix.lower() in _PYAV_FIRST
        else (
            _read_soundfile,
            _read_pyav,
        )
    )
    problems: list[str] = []
    decoded: DecodedAudio | None = None
    for decode in decoders:
        try:
            decoded = decode(p)
            break
        except AudioFileError:
            raise
        except Exception as exc:  # each decoder has its own error types; keep them for the log
            problems.append(f"{decode.__name__}: {exc}")
    if decoded is None:
        raise AudioFileError(
            f"cannot decode {p}: it is not a supported audio file or it is damaged "
            f"(supported: {READABLE})"
        )
    if decoded.samples.shape[0] == 0:
        raise AudioFileError(f"{p} holds no audio (0 samples); record or choose another file")
    samples = decoded.samples
    if not np.isfinite(samples).all():
        samples = np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)
    return DecodedAudio(np.ascontiguousarray(samples, dtype=np.float32), decoded.sample_rate)


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


def _read_soundfile(p: Path) -> DecodedAudio:
    data, rate = sf.read(str(p), dtype="float32", always_2d=True)
    return DecodedAudio(data, int(rate))


def _read_pyav(p: Path) -> DecodedAudio:
    import av  # imported here: only compressed phone/browser formats need FFmpeg

    with av.open(str(p)) as container:
        if not container.streams.audio:
            raise AudioFileError(f"{p} has no audio track")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp")
        chunks: list[np.ndarray] = []
        rate = 0
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                rate = out.sample_rate
                chunks.append(out.to_ndarray())
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray())
    if not chunks:
        return DecodedAudio(np.zeros((0, 1), np.float32), rate or int(stream.rate or 0))
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
