"""What the API serves, without HTTP: the loaded models, the library's voices, and the jobs that
make a take from a library voice or from an uploaded clip and keep it in the history, through
the session layer like every other face (checked, or at least trimmed; best of N).

The models are read through ``models()`` (None while loading), so the same service runs over
the engine that ``serve`` loads and over the one the window already has. Every job runs on the
queue's worker (:mod:`desktop_app.session.jobs`); the library is opened once per thread that uses
it (SQLite connections stay on their thread).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from desktop_app.errors import RequestError, UserError
from desktop_app.library.database import LibraryError
from desktop_app.library.store import Library
from desktop_app.session.jobs import JobQueue, Ticket
from desktop_app.session.models import LoadedModels
from desktop_app.session.say import SayOptions

if TYPE_CHECKING:
    from desktop_app.checks.best_of import MadeTake
    from desktop_app.checks.take_check import TakeCheck
    from desktop_app.inference.engine import AudioCallback, GenerationRequest, GenerationResult
    from desktop_app.library.records import TakeRecord

log = logging.getLogger(__name__)

SOURCE = "api"
_numbers = itertools.count(1)  # the API takes' files of this process, numbered


class VoiceNotFound(UserError):
    """The request names a voice the library does not have."""


@dataclass(frozen=True)
class Spoken:
    """A finished API take: its result and its history row (None when not recorded)."""

    request: GenerationRequest
    result: GenerationResult  # checked and trimmed (the codes as made)
    record: TakeRecord | None
    transcript: str = ""  # the uploaded clip's transcript when it was heard, not given
    not_kept: str = ""  # why the take is not in the history (the library was busy, ...)
    check: TakeCheck | None = None


class SpeechService:
    """Voices, takes and the queue, for the routes."""

    def __init__(
        self,
        queue: JobQueue,
        models: Callable[[], LoadedModels | None],
        library_folder: Path | None,
        *,
        time_limit: float = 300.0,
        on_kept: Callable[[TakeRecord], None] | None = None,
    ) -> None:
        self.queue = queue
        self.models = models
        self.library_folder = library_folder
        self.time_limit = time_limit
        self.on_kept = on_kept
        self._local = threading.local()
        self._tickets: set[Ticket[Any]] = set()  # this service's jobs not yet finished
        self._tickets_lock = threading.Lock()

    # -- the library, per thread ---------------------------------------------------------------

    def library(self) -> Library | None:
        """This thread's connection to the library (None when there is none or it is broken)."""
        if self.library_folder is None:
            return None
        library = getattr(self._local, "library", None)
        if library is None:
            try:
                library = Library(self.library_folder)
            except LibraryError as exc:
                log.error("the API cannot open the library: %s", exc)
                return None
            self._local.library = library
        return library

    def voice_names(self) -> list[dict[str, Any]]:
        library = self.library()
        if library is None:
            return []
        return [
            {
                "id": v.name,
                "name": v.name,
                "clips": len(v.clips),
                "seconds": round(sum(c.duration for c in v.clips), 2),
            }
            for v in library.voices.all()
        ]

    def voice_clips(self, name: str) -> tuple[Any, ...]:
        """The reference clips of a library voice.

        Raises:
            VoiceNotFound: no voice of that name (any name: it is only ever looked up).
        """
        from desktop_app.session.voices import voice_clips

        library = self.library()
        if library is None:
            raise VoiceNotFound(f"voice {name!r} not found: the library is not available")
        try:
            voice = library.voices.get(name)
        except LibraryError:
            known = ", ".join(v.name for v in library.voices.all()) or "none saved yet"
            raise VoiceNotFound(
                f"voice {name!r} not found in the library (voices: {known}); GET /v1/audio/voices "
                "lists them"
            ) from None
        return voice_clips(voice)

    def voice_adapter(self, name: str) -> Any:
        """The trained voice ``name``'s adapter, None when it is not trained (or there is no
        library)."""
        from desktop_app.session.voices import voice_adapter

        library = self.library()
        if library is None or library.voices.id_of(name) is None:
            return None
        return voice_adapter(library, name)

    # -- health --------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        models = self.models()
        queue = {
            "waiting": self.queue.waiting,
            "running": self.queue.running is not None,
            "max_waiting": self.queue.max_waiting,
        }
        if models is None:
            return {
                "status": "loading",
                "model": None,
                "device": None,
                "engine": None,
                "queue": queue,
            }
        return {
            "status": "healthy",
            "model": models.model,
            "device": models.engine.device,
            "engine": models.engine.name,
            "queue": queue,
        }

    # -- takes ---------------------------------------------------------------------------------

    def speak(
        self,
        request: GenerationRequest,
        voice: str | None,
        *,
        on_audio: AudioCallback | None = None,
        upload: bytes | None = None,
        options: SayOptions | None = None,
    ) -> Ticket[Spoken]:
        """Queue a take of ``request`` (whose references are set, or come from ``upload``: the
        uploaded file's bytes, opened by what they are, transcribed when ``request`` has no
        transcript), said as ``options`` say (default: one take, checked). A streamed take is heard
        as it is made (``on_audio``); the take answered whole and the one kept are checked (or at
        least trimmed).

        Raises:
            QueueFull: too many requests wait.
        """

        def run(ticket: Ticket[Spoken]) -> Spoken:
            should_stop = ticket.should_stop
            models = self.models()
            if models is None:
                raise RequestError("the model is still loading; try again in a moment")
            heard = ""
            made = request
            if upload is not None:
                made, heard = self._reference_from_upload(request, upload, models, should_stop)
            from desktop_app.session.say import Control, say

            take = say(models, made, options or SayOptions(), Control(None, should_stop, on_audio))
            record, problem = self._keep(made, take, models, voice)
            return Spoken(made, take.result, record, heard, problem, take.check)

        ticket = self.queue.submit(run, self.time_limit)
        with self._tickets_lock:
            self._tickets.add(ticket)
        ticket.future.add_done_callback(lambda _: self._forget(ticket))
        return ticket

    def _forget(self, ticket: Ticket[Any]) -> None:
        with self._tickets_lock:
            self._tickets.discard(ticket)

    def cancel_all(self) -> None:
        """Cancel this service's jobs that have not finished (the server stops; the queue may
        go on with another face's jobs)."""
        with self._tickets_lock:
            tickets = list(self._tickets)
        for ticket in tickets:
            ticket.cancel()

    def _reference_from_upload(
        self,
        request: GenerationRequest,
        upload: bytes,
        models: LoadedModels,
        should_stop: Callable[[], bool],
    ) -> tuple[GenerationRequest, str]:
        from desktop_app.audio.reference import reference_from_bytes
        from desktop_app.inference import ReferenceClip

        audio = reference_from_bytes(upload, what="the uploaded `audio`", should_stop=should_stop)
        transcript = request.references[0].transcript if request.references else ""
        heard = ""
        if not transcript.strip():
            if models.recognizer is None:
                raise RequestError(
                    "the clip has no transcript and no speech-recognition model is installed to "
                    "hear it: send `transcript` (exactly what is said in the clip)"
                )
            from desktop_app.checks.listen import transcribe_audio
            from desktop_app.defaults import SAMPLE_RATE

            heard = transcribe_audio(
                models.recognizer, audio, SAMPLE_RATE, what="the clip", should_stop=should_stop
            ).text
            transcript = heard
        clip = ReferenceClip(np.asarray(audio, dtype=np.float32), transcript)
        return dataclasses.replace(request, references=(clip,)), heard

    def _keep(
        self, request: GenerationRequest, take: MadeTake, models: LoadedModels, voice: str | None
    ) -> tuple[TakeRecord | None, str]:
        """The take's history row, or None and why it is not kept (the take is answered
        either way)."""
        from desktop_app import paths
        from desktop_app.session.say import keep

        folder = paths.private_folder(paths.data_dir() / "api-takes")
        stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{next(_numbers)}-seed{take.result.seed}"
        try:
            kept = keep(
                models.names,
                request,
                take,
                file=folder / f"api-take-{stamp}.wav",
                library=self.library(),
                voice=voice,
                private=True,
                source=SOURCE,
            )
        except UserError as exc:  # the take is still answered; only its copy is missing
            log.error("an API take could not be kept: %s", exc)
            return None, str(exc)
        if kept.record is not None and self.on_kept is not None:
            self.on_kept(kept.record)
        return kept.record, kept.problem
