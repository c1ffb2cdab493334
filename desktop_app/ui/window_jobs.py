"""The window's jobs besides takes, each a small part: transcribing a clip, speaking a
conversation, and the self-test. Each asks the job controller, shows its progress in the job
status, and says what came of it (a signal the window and the tests wait for)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from desktop_app.errors import UserError
from desktop_app.library.store import Library
from desktop_app.ui.dialogs import ErrorFunnel, SelfTestDialog
from desktop_app.ui.generation import GenerationController, Job, JobHooks
from desktop_app.ui.job_status import JobStatus
from desktop_app.ui.say_form import SayForm
from desktop_app.ui.voice_panel import Clip, VoicePanel
from desktop_app.ui.workers import ClipAudio, EngineInfo

if TYPE_CHECKING:
    from desktop_app.inference.self_test import SelfTestReport
    from desktop_app.inference.transcript import Transcript
    from desktop_app.ui.conversation_panel import ConversationPanel, SpeakOrder

Engine = Callable[[], EngineInfo | None]


@dataclass(frozen=True)
class JobDesk:
    """What a part that runs window jobs works with."""

    window: QWidget
    jobs: GenerationController
    status: JobStatus
    engine: Engine  # what is loaded (None while loading)
    errors: ErrorFunnel


class _Part(QObject):
    def __init__(self, desk: JobDesk) -> None:
        super().__init__(desk.window)
        self.window, self.jobs, self.status = desk.window, desk.jobs, desk.status
        self.engine, self.errors = desk.engine, desk.errors


class ClipTranscriber(_Part):
    """Transcribes a clip with the recogniser loaded beside the model (a new clip without a
    transcript at once, when nothing else runs); a hand edit made meanwhile is kept."""

    transcribed = Signal(object)  # Clip, once the recogniser's answer was handled

    def __init__(self, desk: JobDesk, voice: VoicePanel) -> None:
        super().__init__(desk)
        self.voice = voice
        voice.transcribe_requested.connect(self.transcribe)
        voice.clip_added.connect(self._clip_added)
        self.jobs.transcribed.connect(self._transcribed)

    def _clip_added(self, clip: Clip) -> None:
        info = self.engine()
        if clip.transcript.strip() or info is None or not info.asr_model or self.jobs.busy:
            return
        self.transcribe(clip)

    def transcribe(self, clip: Clip) -> None:
        """Transcribe ``clip`` as a job (progress, Esc cancels)."""
        if self.engine() is None:
            self.errors.show(UserError("load a model first: the recogniser loads beside it"))
            return
        hooks = JobHooks(on_share=lambda done, what: self.status.share(done, what, bar=True))
        try:
            self.jobs.transcribe(clip.audio, f"the clip {clip.name!r}", clip, hooks)
        except UserError as exc:
            self.errors.show(exc)
            return
        self.status.counting(100, f"Transcribing {clip.name}…")

    def _transcribed(self, job: Job, transcript: Transcript) -> None:
        clip = cast("Clip", job.target)
        if self.voice.set_transcript(clip, transcript):
            self.status.ended(f"Transcribed {clip.name}: “{transcript.text}”")
        else:
            self.status.ended(
                f"Heard “{transcript.text}” in {clip.name}; your own transcript was kept"
            )
        self.transcribed.emit(clip)


class ConversationJobs(_Part):
    """The Conversation tab's Generate all / from this line / Regenerate line, as one job:
    the lines asked for, each on the lines before it, handed to the tab as they are made."""

    spoken = Signal(object)  # the list of SpokenLine, once all are made
    history_changed = Signal()

    def __init__(
        self, desk: JobDesk, panel: ConversationPanel, library: Library, say: SayForm
    ) -> None:
        super().__init__(desk)
        self.panel, self.library, self.say = panel, library, say
        self._total = self._made = 0  # the lines asked for, and made so far
        panel.generate_requested.connect(self.speak)
        self.jobs.line_ready.connect(self._line_ready)
        self.jobs.conversed.connect(self._conversed)

    def speak(self, order: SpeakOrder) -> None:
        """Speak the lines ``order`` asks for with the Say form's sampling settings."""
        if self.engine() is None:
            self.errors.show(UserError("load a model first; the cast comes from the library"))
            return
        failed = self.panel.failed
        say = self.say
        try:
            voices = {
                name: tuple(
                    ClipAudio(clip.audio(), clip.transcript)
                    for clip in self.library.voices.get(voice).clips
                )
                for name, voice in order.cast.items()
            }
            from desktop_app.session.voices import voice_adapter

            adapters: dict[str, object] = {
                name: voice_adapter(self.library, voice) for name, voice in order.cast.items()
            }
            settings = say.sampling_request("-")
            if order.seed is not None:
                settings = dataclasses.replace(settings, seed=order.seed)
            self.jobs.converse(
                order.script, voices, settings, check=say.check_takes.isChecked(),
                candidates=say.candidates.value(), lines=order.lines, made=order.made,
                hooks=JobHooks(on_cancelled=failed, on_failed=lambda _: failed()),
                adapters=adapters,
            )  # fmt: skip
        except UserError as exc:
            self.errors.show(exc)
            return
        assert settings.seed is not None
        self.say.took(settings.seed)
        self.panel.started(settings.seed)
        count = len(order.lines) if order.lines is not None else len(order.script.turns)
        self._total, self._made = count, 0
        self.status.busy(f"Speaking {count} line(s), each on the lines before it…")
        self.status.context = f"Line 1 of {count}"

    def _line_ready(self, line: object) -> None:
        from desktop_app.inference.model_store import model_revision

        info = self.engine()
        revision = model_revision(info.model_dir) if info is not None else ""
        self.panel.add_line(line, info.model if info else "", revision)  # type: ignore[arg-type]
        self._made += 1
        self.status.say(f"Line {self._made} of {self._total} made…")
        if self._made < self._total:
            self.status.context = f"Line {self._made + 1} of {self._total}"

    def _conversed(self, job: Job, lines: object) -> None:
        self.panel.set_lines(lines)  # type: ignore[arg-type]
        self.status.ended(f"Conversation made: {len(self.panel.lines)} lines")
        self.history_changed.emit()
        self.spoken.emit(lines)


class SelfTestRunner(_Part):
    """Help → Test this computer: the self-test on the loaded model, as a job; its table."""

    tested = Signal(object)  # SelfTestReport, once its table is shown

    def __init__(self, desk: JobDesk, model: Callable[[], str]) -> None:
        super().__init__(desk)
        self.model = model
        self.dialog: SelfTestDialog | None = None
        self.jobs.self_tested.connect(self._tested)

    def run(self) -> None:
        if self.engine() is None:
            self.errors.show(UserError("load a model first, then test this computer with it"))
            return
        say = self.status.say
        hooks = JobHooks(
            on_progress=lambda frames, _: say(f"Testing this computer… frame {frames}")
        )
        try:
            self.jobs.self_test(self.model(), hooks)
        except UserError as exc:
            self.errors.show(exc)
            return
        self.status.busy("Testing this computer: both engines make the same take…")

    def _tested(self, report: SelfTestReport) -> None:
        self.status.ended(report.verdict, complete=False)
        self.dialog = SelfTestDialog(report.table(), self.window)
        self.dialog.open()
        self.tested.emit(report)
