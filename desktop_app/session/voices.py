"""A library voice as the clips the model gets."""

from __future__ import annotations

from typing import TYPE_CHECKING

from desktop_app.errors import RequestError

if TYPE_CHECKING:
    from desktop_app.inference import ReferenceClip
    from desktop_app.inference.adapter import VoiceAdapter
    from desktop_app.library.records import VoiceRecord
    from desktop_app.library.store import Library


def voice_clips(voice: VoiceRecord) -> tuple[ReferenceClip, ...]:
    """The reference clips of a stored voice (prepared when they were stored), in order.

    Raises:
        LibraryError: a clip's file is gone or unreadable.
    """
    from desktop_app.inference import ReferenceClip

    return tuple(ReferenceClip(clip.audio(), clip.transcript) for clip in voice.clips)


def library_voice_clips(library: Library | None, name: str) -> tuple[ReferenceClip, ...]:
    """The clips of the library voice ``name``.

    Raises:
        RequestError: there is no library open.
        LibraryError: no voice of that name (the message lists the voices), or a missing clip.
    """
    if library is None:
        raise RequestError(f"the voice {name!r} needs the library, which is not open")
    return voice_clips(library.voices.get(name))


_read: dict[str, VoiceAdapter] = {}
"""Adapters read so far, by their weights file (content-named: a new training is a new file)."""


def voice_adapter(library: Library | None, name: str) -> VoiceAdapter | None:
    """The trained voice ``name``'s adapter (read once per process), None when it is not
    trained.

    Raises:
        RequestError: there is no library open, or the adapter's files cannot be read.
        LibraryError: no voice of that name.
    """
    from desktop_app.inference.adapter import read_adapter_files

    if library is None:
        raise RequestError(f"the voice {name!r} needs the library, which is not open")
    record = library.adapters.get(name)
    if record is None:
        return None
    key = str(record.weights_file)
    if key not in _read:
        _read[key] = read_adapter_files(record.config_file, record.weights_file, record.info)
    return _read[key]
