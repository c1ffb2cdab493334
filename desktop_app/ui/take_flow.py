"""Making takes from the window: Generate, make again, make a part again, keep a candidate.

It asks the job controller for a take (the Say form's request, the voice's clips), plays it
while it is made when asked, and when it is done keeps it (the takes folder, the history) and
lists it. The window wires it to the Say form, the takes panel and the job status.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, cast

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMainWindow

from desktop_app.audio.player import Player, StreamingPlayback
from desktop_app.config import Settings
from desktop_app.defaults import FRAME_RATE, SAMPLE_RATE
from desktop_app.errors import UserError
from desktop_app.inference import GenerationRequest, GenerationResult
from desktop_app.library.store import Library
from desktop_app.session.models import ModelNames
from desktop_app.session.say import keep
from desktop_app.takes import session_take_file
from desktop_app.ui.dialogs import ErrorFunnel
from desktop_app.ui.generation import GenerationController, Job, JobHooks
from desktop_app.ui.job_status import JobStatus
from desktop_app.ui.say_form import SayForm
from desktop_app.ui.takes_panel import Take, TakesPanel
from desktop_app.ui.voice_panel import VoicePanel
from desktop_app.ui.workers import ClipAudio, EngineInfo

if TYPE_CHECKING:
    from collections.abc import Callable

    from desktop_app.checks.best_of import BestOf
    from desktop_app.checks.take_check import TakeCheck
    from desktop_app.ui.library_panels import VoiceLibraryBox

WINDOW_SOURCE = "window"  # the history's source of the window's takes


class TakeFlow(QObject):
    """From Generate to a kept, listed take."""

    take_ready = Signal(object)  # Take, once it is listed and written to the takes folder
    keep_failed = Signal(object)  # UserError: the take could not be written
    history_changed = Signal()  # a take went into the history

    def __init__(
        self,
        window: QMainWindow,
        settings: Settings,
        jobs: GenerationController,
        say: SayForm,
        status: JobStatus,
        voice: VoicePanel,
        takes: TakesPanel,
        player: Player,
        library: Library | None,
        library_box: VoiceLibraryBox | None,
        engine: Callable[[], EngineInfo | None],
        errors: ErrorFunnel,
    ) -> None:
        super().__init__(window)
        self.window, self.settings, self.jobs, self.say, self.status = (
            window,
            settings,
            jobs,
            say,
            status,
        )
        self.voice, self.takes, self.player = voice, takes, player
        self.library, self.library_box, self.engine, self.errors = (
            library,
            library_box,
            engine,
            errors,
        )
        self.playback: StreamingPlayback | None = None  # the take playing while it is made
        jobs.chunk_ready.connect(self._chunk_ready)
        jobs.finished.connect(self._finished)
        takes.regenerate_requested.connect(self.regenerate)
        takes.part_regenerate_requested.connect(self.regenerate_part)
        takes.candidate_chosen.connect(self.use_candidate)

    def generate(self) -> None:
        """Start a take with the current text, settings and clips."""
        if self.jobs.generating:
            return
        if self.engine() is None:
            self.errors.show(
                UserError("no model is loaded yet; wait for it or choose one in the Model menu")
            )
            return
        try:
            request = self.say.request(self.voice.clips)
        except UserError as exc:
            self.errors.show(exc)
            return
        clips = tuple(ClipAudio(clip.audio, clip.transcript) for clip in self.voice.clips)
        voice = self.library_box.current_voice() if self.library_box else None
        if voice is not None and self.library_box is not None:
            from desktop_app.session.voices import voice_adapter

            try:  # a trained voice speaks with its adapter
                adapter = voice_adapter(self.library_box.library, voice)
            except UserError as exc:
                self.errors.show(exc)
                return
            request = dataclasses.replace(request, adapter=adapter)
        if self._submit(request, voice, clips=clips, denoise=self.say.denoise.isChecked()):
            self.say.took(request.seed)

    def regenerate(self, take: Take) -> None:
        """Make ``take`` again: same text and settings, a new seed unless the seed is locked."""
        if self.jobs.generating or self.engine() is None:
            return
        seed = self.say.seed_again(take.request.seed)
        self._submit(dataclasses.replace(take.request, seed=seed), take.voice)

    def regenerate_part(self, take: Take, index: int) -> None:
        """Make part ``index`` of a long take again with a new seed; the other parts stay."""
        if self.jobs.generating or self.engine() is None:
            return
        if not 0 <= index < len(take.result.parts):
            return
        from desktop_app.inference.long_text import chunk_requests
        from desktop_app.session.requests import new_seed

        part_request = chunk_requests(take.request)[0][index]
        part_request = dataclasses.replace(part_request, seed=new_seed())
        self._submit(part_request, take.voice, part=(take, index))

    def _submit(
        self,
        request: GenerationRequest,
        voice: str | None = None,
        part: tuple[Take, int] | None = None,
        clips: tuple[ClipAudio, ...] = (),
        denoise: bool = False,
    ) -> bool:
        """Ask for the take; False when it was refused (the error is shown)."""
        say = self.say
        stream = say.play_live.isChecked()
        candidates = say.candidates.value() if part is None else 1
        try:
            self.jobs.generate(
                request,
                clips=clips,
                denoise=denoise,
                stream=stream,
                voice=voice,
                part=part,
                check=say.check_takes.isChecked() or candidates > 1,
                candidates=candidates,
                coherent=say.coherent.isChecked(),
                hooks=JobHooks(on_failed=lambda _: self.player.stop()),
            )
        except UserError as exc:
            self.errors.show(exc)
            return False
        self.status.counting(round(request.max_seconds * FRAME_RATE), "Preparing the voice prompt…")
        self.playback = None
        if stream:
            self.takes.stop()
            from desktop_app.inference.long_text import longest_take_seconds

            total = longest_take_seconds(request)
            self.playback = StreamingPlayback(self.player, SAMPLE_RATE, total)
        return True

    def _chunk_ready(self, piece: object) -> None:
        if self.playback is not None:
            self.playback.feed(piece)  # type: ignore[arg-type]
            if self.playback.error is not None:
                self.window.statusBar().showMessage(f"Not playing: {self.playback.error}", 8000)

    def finish_playback(self) -> None:
        """A job has ended: what was streamed plays out."""
        if self.playback is not None:
            self.playback.finish()

    def _finished(self, job: Job, request: GenerationRequest, result: GenerationResult) -> None:
        self.finish_playback()
        notes = list(result.notices)
        first = result.timings.first_audio_s
        if self.playback is not None and first is not None:
            notes.append(f"first audio after {first:.2f} s")
        note = "; ".join(notes)
        text = f"Made {result.seconds:.1f} s in {result.timings.total_s:.1f} s" + (
            f" ({note})" if note else ""
        )
        check = cast("TakeCheck | None", job.check)
        if check is not None and check.verdict != "good":
            text = f"{text} — {check.summary}"
        self.status.ended(text)
        take = self.keep(request, result, job.voice, check, cast("BestOf | None", job.best_of))
        if take is not None:
            self.take_ready.emit(take)

    def keep(
        self,
        request: GenerationRequest,
        result: GenerationResult,
        voice: str | None,
        check: TakeCheck | None = None,
        best_of: BestOf | None = None,
    ) -> Take | None:
        """Write the take to the takes folder, record it in the history, list it."""
        from desktop_app.checks.best_of import MadeTake
        from desktop_app.inference.model_store import model_revision

        info = self.engine()
        revision = model_revision(info.model_dir) if info is not None else ""
        try:
            kept = keep(
                ModelNames(self.settings.model, revision),
                request,
                MadeTake(result, check, best_of),
                file=session_take_file(len(self.takes.takes) + 1, result.seed),
                library=self.library,
                voice=voice,
                private=True,  # a cloned voice: user-only until the user saves it elsewhere
                source=WINDOW_SOURCE,
            )
        except UserError as exc:
            self.errors.show(exc)
            self.keep_failed.emit(exc)
            return None
        if kept.record is None and self.library is not None:
            self.window.statusBar().showMessage(
                f"Take kept at {kept.file}, not in the history: {kept.problem}"
            )
        take = self.takes.add(request, result, self.settings.model, kept, voice, check, best_of)
        if kept.record is not None:
            self.history_changed.emit()
        return take

    def use_candidate(self, take: Take, chunk: int, index: int) -> None:
        """Keep candidate ``index`` (of part ``chunk``) of a best-of-N take: a new take."""
        if take.best_of is None:
            return
        best = take.best_of.with_choice(chunk, index)
        kept = self.keep(take.request, best.result, take.voice, best.check, best)
        if kept is not None:
            self.status.say(
                f"Take #{kept.number}: candidate seed "
                f"{best.chunks[chunk].best.seed} of take #{take.number}"
            )
            self.take_ready.emit(kept)
