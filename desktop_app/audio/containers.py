"""Which audio container a file is, told by its first bytes, never by its name.

A file from outside (an upload, an import, a bundle member) is opened only as one of the
containers listed here, with that format forced: never a playlist (HLS ``.m3u8``, ``.pls``), a
URL, a concatenation script or anything else FFmpeg would follow to other files. Each signature is
the container's own magic number (RIFF/WAVE, ``fLaC``, ``OggS``, an ID3 tag or MPEG audio frame
sync, the ISO-BMFF ``ftyp`` box, ADTS sync, the EBML header of Matroska/WebM).
"""

from __future__ import annotations

from dataclasses import dataclass

HEADER_BYTES = 16
"""How many leading bytes :func:`identify` needs."""


@dataclass(frozen=True)
class Container:
    """An audio container this app opens: its name for people and its FFmpeg demuxer."""

    name: str
    demuxer: str  # PyAV's ``format=`` (FFmpeg's input format name)
    libsndfile: bool  # soundfile reads it (tried first; PyAV otherwise)


WAV = Container("WAV", "wav", True)
FLAC = Container("FLAC", "flac", True)
OGG = Container("Ogg (Vorbis/Opus)", "ogg", True)
MP3 = Container("MP3", "mp3", True)
MP4 = Container("MP4/M4A", "mp4", False)
ADTS = Container("AAC (ADTS)", "aac", False)
MATROSKA = Container("Matroska/WebM", "matroska", False)

ALLOWED = (WAV, FLAC, OGG, MP3, MP4, ADTS, MATROSKA)
ALLOWED_NAMES = ", ".join(c.name for c in ALLOWED)


def identify(head: bytes) -> Container | None:
    """The container whose signature starts ``head`` (its first :data:`HEADER_BYTES` bytes), or
    None when it is none of :data:`ALLOWED` (a playlist, text, random bytes...)."""
    if len(head) >= 12 and head[:4] in (b"RIFF", b"RF64", b"BW64") and head[8:12] == b"WAVE":
        return WAV
    if head.startswith(b"fLaC"):
        return FLAC
    if head.startswith(b"OggS"):
        return OGG
    if len(head) >= 8 and head[4:8] == b"ftyp":
        return MP4
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return MATROSKA
    if head.startswith(b"ID3"):
        return MP3
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        layer = (head[1] >> 1) & 0b11
        if layer == 0 and head[1] & 0xF0 == 0xF0:
            return ADTS  # MPEG-2/4 AAC in ADTS frames (layer bits 00)
        if layer != 0:
            return MP3  # MPEG-1/2 audio layer I-III frame sync
    return None
