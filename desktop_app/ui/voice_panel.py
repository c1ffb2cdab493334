"""The voice side of the window: record or import clips, see and trim them, type transcripts.

Several clips make one voice prompt; each keeps its own transcript. Trims and deletions go on the
window's undo stack.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QKeySequence, QUndoCommand, QUndoStack
from PySide6.QtWidgets import (
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app import paths
from desktop_app.audio import dsp
from desktop_app.audio.io import read_audio
from desktop_app.audio.player import Player
from desktop_app.audio.recorder import InputMonitor, Recorder
from desktop_app.errors import UserError
from desktop_app.inference.transcript import Transcript, Word
from desktop_app.resources import reading_script
from desktop_app.ui.icons import labelled
from desktop_app.ui.level_meter import LevelMeter
from desktop_app.ui.waveform_view import WaveformView

log = logging.getLogger(__name__)

RATE = dsp.MODEL_RATE


@dataclass(eq=False)
class Clip:
    """One reference clip: 24 kHz mono audio, its transcript, where it came from."""

    audio: np.ndarray
    transcript: str = ""
    source: str = "imported"  # or "recorded"
    path: Path | None = None
    name: str = field(default="clip")
    hand_edited: bool = False  # the user typed or changed the transcript: never overwrite it
    words: tuple[Word, ...] = ()  # the recogniser's word times in this audio, when transcribed

    @property
    def seconds(self) -> float:
        return self.audio.size / RATE


def clip_from_file(path: Path, source: str = "imported") -> Clip:
    """Read any supported file as a 24 kHz mono clip (not yet trimmed or normalized)."""
    decoded = read_audio(path)
    audio = dsp.resample(dsp.remove_dc(dsp.to_mono(decoded.samples)), decoded.sample_rate, RATE)
    return Clip(audio=audio, source=source, path=path, name=path.stem)


class ReplaceAudio(QUndoCommand):
    """Undoable change of a clip's audio (trim, auto-trim)."""

    def __init__(self, panel: VoicePanel, clip: Clip, cut: tuple[int, int], text: str) -> None:
        """Keep samples ``cut[0]:cut[1]`` of ``clip`` (its word times move with the cut)."""
        super().__init__(text)
        self.panel, self.clip = panel, clip
        start, end = cut
        self.before, self.after = clip.audio, clip.audio[start:end].copy()
        self.words_before = clip.words
        self.words_after = shift_words(clip.words, start / RATE, end / RATE)

    def redo(self) -> None:
        self.clip.audio, self.clip.words = self.after, self.words_after
        self.panel.clip_changed(self.clip)

    def undo(self) -> None:
        self.clip.audio, self.clip.words = self.before, self.words_before
        self.panel.clip_changed(self.clip)


class RemoveClip(QUndoCommand):
    """Undoable removal of a clip."""

    def __init__(self, panel: VoicePanel, clip: Clip) -> None:
        super().__init__(f"Remove {clip.name}")
        self.panel, self.clip = panel, clip
        self.index = panel.clips.index(clip)

    def redo(self) -> None:
        self.panel.clips.remove(self.clip)
        self.panel.refresh_list(select=min(self.index, len(self.panel.clips) - 1))

    def undo(self) -> None:
        self.panel.clips.insert(self.index, self.clip)
        self.panel.refresh_list(select=self.index)


def shift_words(words: tuple[Word, ...], start: float, end: float) -> tuple[Word, ...]:
    """The words inside ``[start, end]`` (seconds) of a clip cut there, timed from the cut."""
    return tuple(
        Word(w.word, w.start - start, w.end - start)
        for w in words
        if w.start >= start - 1e-6 and w.end <= end + 1e-6
    )


class VoicePanel(QGroupBox):
    """Recording, importing, the clip list, and the editor of the selected clip."""

    error = Signal(object)
    clips_changed = Signal()
    transcribe_requested = Signal(object)  # Clip
    clip_added = Signal(object)  # Clip: imported, recorded or recovered

    def __init__(self, undo: QUndoStack, player: Player, parent: QWidget | None = None) -> None:
        super().__init__("Voice", parent)
        self.undo = undo
        self.player = player
        self.clips: list[Clip] = []
        self.recorder: Recorder | None = None
        self._record_started = 0.0
        layout = QVBoxLayout(self)

        # recording row
        row = QHBoxLayout()
        self.input_device = QComboBox()
        self.input_device.setToolTip("Microphone to record from")
        self.input_device.setAccessibleName("Input device")
        row.addWidget(QLabel("Input:"))
        row.addWidget(self.input_device, 1)
        self.meter = LevelMeter()
        row.addWidget(self.meter)
        layout.addLayout(row)
        row = QHBoxLayout()
        self.record_button = labelled(QPushButton(), "● Record")
        self.record_button.setCheckable(True)
        self.record_button.setShortcut(QKeySequence("Ctrl+R"))
        self.record_button.setToolTip("Start/stop recording (Ctrl+R)")
        self.record_button.toggled.connect(self._record_toggled)
        self.elapsed = QLabel("0:00.0")
        self.import_button = QPushButton("Import file…")
        self.import_button.setToolTip("Add a recording of the voice from a file (Ctrl+O)")
        self.import_button.setAccessibleName("Import file")
        row.addWidget(self.record_button)
        row.addWidget(self.elapsed)
        row.addStretch()
        row.addWidget(self.import_button)
        layout.addLayout(row)
        guidance = QLabel(
            "Read the script below in your natural voice: 10-30 s of clean speech in a quiet room "
            "works best. Or import a recording (WAV, FLAC, OGG, MP3, M4A, WebM) and type exactly "
            "what it says."
        )
        guidance.setWordWrap(True)
        layout.addWidget(guidance)
        self.script = QTextBrowser()
        self.script.setPlainText(reading_script())
        self.script.setMaximumHeight(110)
        layout.addWidget(self.script)

        # clips
        self.clip_list = QListWidget()
        self.clip_list.setMaximumHeight(90)
        self.clip_list.currentRowChanged.connect(self._show_clip)
        layout.addWidget(QLabel("Clips of this voice (all are used as the voice prompt):"))
        layout.addWidget(self.clip_list)

        # editor of the selected clip
        self.waveform = WaveformView()
        self.waveform.setAccessibleName("Waveform of the clip")
        self.waveform.setToolTip(
            "Click to move the playhead, drag (or Shift+click) to select; Ctrl+wheel zooms"
        )
        self.waveform.seek_requested.connect(self._seek)
        layout.addWidget(self.waveform, 1)
        self._clip_start = 0  # where Play starts without a selection
        self._played = -1  # the player's session of the clip playing (its playhead moves)
        self._clip_timer = QTimer(self)
        self._clip_timer.setInterval(30)
        self._clip_timer.timeout.connect(self._clip_tick)
        tools = QHBoxLayout()
        self.tool_buttons: dict[str, QToolButton] = {}
        for key, label, tip, slot in [
            ("zoom_in", "+", "Zoom in (Ctrl+wheel)", self.waveform.zoom_in),
            ("zoom_out", "−", "Zoom out", self.waveform.zoom_out),
            ("fit", "Fit", "Show the whole clip", self.waveform.zoom_fit),
            ("play", "▶ Play", "Play the selection, or the whole clip", self.play_selection),
            ("stop", "■", "Stop", self.player.stop),
            (
                "trim",
                "Trim to selection",
                "Keep only the selected part (undo: Ctrl+Z)",
                self.trim_to_selection,
            ),
            ("auto_trim", "Auto-trim silence", "Cut silence at both ends", self.auto_trim),
            (
                "words",
                "Snap to words",
                "Widen the selection to whole words and keep only it (needs a transcription; "
                "a clip cut mid-word is a known cause of artefacts)",
                self.trim_to_words,
            ),
            ("remove", "Remove clip", "Remove this clip from the voice", self.remove_clip),
        ]:
            button = QToolButton()
            labelled(button, label)
            button.setToolTip(tip)
            button.setAccessibleName(tip.split(" (")[0])
            button.clicked.connect(slot)
            if key == "trim":  # viewing and playing on one row, editing on the next
                tools.addStretch()
                layout.addLayout(tools)
                tools = QHBoxLayout()
            tools.addWidget(button)
            self.tool_buttons[key] = button
        tools.addStretch()
        layout.addLayout(tools)
        heading = QHBoxLayout()
        heading.addWidget(QLabel("Transcript of this clip (exactly what is said):"), 1)
        self.transcribe_button = QPushButton("Transcribe")
        self.transcribe_button.setToolTip(
            "Hear the clip with the speech-recognition model and fill in its transcript "
            "(your own edits are kept until you press this)"
        )
        self.transcribe_button.clicked.connect(self._transcribe_clicked)
        heading.addWidget(self.transcribe_button)
        layout.addLayout(heading)
        self.transcript = QPlainTextEdit()
        self.transcript.setMaximumHeight(70)
        self.transcript.setPlaceholderText("Type exactly what is said in the selected clip")
        self.transcript.textChanged.connect(self._transcript_edited)
        layout.addWidget(self.transcript)

        self._meter_timer = QTimer(self)
        self._meter_timer.setInterval(33)
        self._meter_timer.timeout.connect(self._poll_recorder)
        self.monitor: InputMonitor | None = None  # the level before and between recordings
        self.input_device.currentTextChanged.connect(lambda _: self.monitor_input())
        self._show_clip(-1)

    # -- devices -------------------------------------------------------------------------------

    def fill_devices(self, names: list[str], remembered: str) -> None:
        """List the input devices, selecting the remembered one (else the first)."""
        self.input_device.clear()
        self.input_device.addItems(names)
        if remembered in names:
            self.input_device.setCurrentText(remembered)
        self.record_button.setEnabled(bool(names))
        self.monitor_input()

    def monitor_input(self) -> None:
        """Let the meter show the chosen input's level now, before any recording (a person
        sets the gain first). An input that cannot be opened leaves the meter still."""
        self.stop_monitoring()
        if self.recorder is not None or not self.input_device.currentText():
            return
        monitor = InputMonitor(self.input_device.currentText() or None)
        try:
            monitor.start()
        except UserError as exc:
            log.info("no input monitoring: %s", exc)
            self.meter.setToolTip(f"Input level: {exc}")
            return
        self.monitor = monitor
        self.meter.setToolTip("Input level of the chosen microphone (dBFS); CLIP holds a moment")
        self._meter_timer.start()

    def stop_monitoring(self) -> None:
        if self.monitor is not None:
            self.monitor.stop()
            self.monitor = None

    # -- clips ---------------------------------------------------------------------------------

    def add_clip(self, clip: Clip) -> None:
        """Append a clip and select it."""
        self.clips.append(clip)
        self.refresh_list(select=len(self.clips) - 1)
        self.clip_added.emit(clip)

    def set_clips(self, clips: list[Clip]) -> None:
        """Replace all clips (a saved voice was picked, or that was undone)."""
        self.clips[:] = clips
        self.refresh_list(select=0 if clips else None)

    def import_file(self, path: Path) -> Clip:
        """Import an audio file as a new clip (errors go to the error funnel by the caller)."""
        clip = clip_from_file(path)
        self.add_clip(clip)
        return clip

    def refresh_list(self, select: int | None = None) -> None:
        """Redraw the clip list, then select row ``select``."""
        self.clip_list.blockSignals(True)
        self.clip_list.clear()
        for number, clip in enumerate(self.clips, start=1):
            self.clip_list.addItem(
                f"Clip {number}: {clip.name} — {clip.seconds:.1f} s ({clip.source})"
            )
        self.clip_list.blockSignals(False)
        row = -1 if select is None else select
        self.clip_list.setCurrentRow(row)
        self._show_clip(row)
        self.clips_changed.emit()

    @property
    def current(self) -> Clip | None:
        row = self.clip_list.currentRow()
        return self.clips[row] if 0 <= row < len(self.clips) else None

    def _show_clip(self, row: int) -> None:
        clip = self.clips[row] if 0 <= row < len(self.clips) else None
        self.waveform.set_audio(clip.audio if clip else np.zeros(0, np.float32), RATE)
        self._clip_start = 0
        self.transcript.blockSignals(True)
        self.transcript.setPlainText(clip.transcript if clip else "")
        self.transcript.blockSignals(False)
        self.transcript.setEnabled(clip is not None)
        for button in self.tool_buttons.values():
            button.setEnabled(clip is not None)
        self.transcribe_button.setEnabled(clip is not None)
        self.tool_buttons["words"].setEnabled(clip is not None and bool(clip.words))

    def clip_changed(self, clip: Clip) -> None:
        """A clip's audio changed (edit, undo): redraw it."""
        if clip is self.current:
            self.waveform.set_audio(clip.audio, RATE, keep_view=True)
        row = self.clips.index(clip) if clip in self.clips else None
        self.refresh_list(select=row)

    def _transcript_edited(self) -> None:
        clip = self.current
        if clip is not None:
            clip.transcript = self.transcript.toPlainText()
            clip.hand_edited = True

    def _transcribe_clicked(self) -> None:
        clip = self.current
        if clip is not None:
            clip.hand_edited = False  # asked for: the recogniser's text replaces the typed one
            self.transcribe_requested.emit(clip)

    def set_transcript(self, clip: Clip, transcript: Transcript) -> bool:
        """Put the recogniser's transcript into ``clip`` unless the user has edited it since;
        returns whether it was put in."""
        if clip.hand_edited or clip not in self.clips:
            return False
        clip.transcript, clip.words = transcript.text, transcript.words
        if clip is self.current:
            self._show_clip(self.clips.index(clip))
        return True

    def trim_to_words(self) -> None:
        """Widen the selection to whole words (from the transcription) and keep only it."""
        from desktop_app.checks.listen import trim_to_words

        clip = self.current
        if clip is None:
            return
        if not clip.words:
            self.error.emit(UserError("transcribe the clip first: the word times come from it"))
            return
        start, end = self.waveform.selection
        if end - start < RATE // 10:
            start, end = 0, clip.audio.size
        transcript = Transcript(clip.transcript, clip.words)
        first, last = trim_to_words(clip.audio, RATE, transcript, start / RATE, end / RATE)
        if (first, last) == (0, clip.audio.size):
            return
        self.undo.push(ReplaceAudio(self, clip, (first, last), "Trim to words"))

    # -- editing -------------------------------------------------------------------------------

    def trim_to_selection(self) -> None:
        """Keep only the selected region of the current clip (undoable)."""
        clip = self.current
        start, end = self.waveform.selection
        if clip is None:
            return
        if end - start < RATE // 10:
            self.error.emit(UserError("select a region first: drag across the waveform"))
            return
        self.undo.push(ReplaceAudio(self, clip, (start, end), "Trim clip"))

    def auto_trim(self) -> None:
        """Cut leading and trailing silence from the current clip (undoable)."""
        clip = self.current
        if clip is None:
            return
        start, end = dsp.speech_bounds(clip.audio, RATE)
        if end <= start:
            self.error.emit(UserError("this clip is silent; record or import another one"))
            return
        if (start, end) != (0, clip.audio.size):
            self.undo.push(ReplaceAudio(self, clip, (start, end), "Auto-trim"))

    def remove_clip(self) -> None:
        """Remove the current clip (undoable)."""
        clip = self.current
        if clip is not None:
            self.undo.push(RemoveClip(self, clip))

    def play_selection(self) -> None:
        """Play the selection, or the whole clip when nothing is selected."""
        clip = self.current
        if clip is None:
            return
        start, end = self.waveform.selection
        if end <= start:
            start, end = self._clip_start, clip.audio.size
        try:
            self.player.play(clip.audio, RATE, start, end)
        except UserError as exc:
            self.error.emit(exc)
            return
        self._played = self.player.session
        self._clip_timer.start()

    def _seek(self, sample: int) -> None:
        """A click on the clip's waveform: play from there next (at once while it plays)."""
        self._clip_start = sample
        if self._clip_timer.isActive() and self.player.playing:
            self.play_selection()

    def _clip_tick(self) -> None:
        """The playhead follows the clip's playback (as on takes)."""
        if self.player.session != self._played or not self.player.playing:
            self._clip_timer.stop()
            self.waveform.set_playhead(self._clip_start or None)
            return
        self.waveform.set_playhead(self.player.position)

    # -- recording -----------------------------------------------------------------------------

    def _record_toggled(self, on: bool) -> None:
        if on:
            self.start_recording()
        else:
            self.stop_recording()

    def start_recording(self) -> None:
        """Start recording from the chosen input into the recordings folder."""
        self.stop_monitoring()  # the recording's own stream takes over the meter
        device = self.input_device.currentText() or None
        self.recorder = Recorder(paths.data_dir() / "recordings", device=device)
        try:
            self.recorder.start()
        except UserError as exc:
            self.recorder = None
            self.record_button.blockSignals(True)
            self.record_button.setChecked(False)
            self.record_button.blockSignals(False)
            self.error.emit(exc)
            self.monitor_input()
            return
        self._record_started = time.monotonic()
        labelled(self.record_button, "■ Stop")
        self._meter_timer.start()

    def stop_recording(self) -> Clip | None:
        """Stop and add what was recorded as a clip."""
        self._meter_timer.stop()
        labelled(self.record_button, "● Record")
        self.meter.set_peak(0.0)
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return None
        path = recorder.stop()
        self.monitor_input()  # between recordings the meter goes on
        try:
            clip = clip_from_file(path, source="recorded")
        except UserError as exc:
            self.error.emit(exc)
            return None
        self.add_clip(clip)
        if recorder.error:
            self.error.emit(
                UserError(
                    f"recording stopped early: {recorder.error}; what was "
                    f"recorded is kept as {clip.name}"
                )
            )
        return clip

    def _poll_recorder(self) -> None:
        recorder = self.recorder
        if recorder is None:
            if self.monitor is not None:
                self.meter.set_peak(self.monitor.peak())
            return
        self.meter.set_peak(recorder.peak())
        elapsed = recorder.seconds
        self.elapsed.setText(f"{int(elapsed // 60)}:{elapsed % 60:04.1f}")
        if recorder.error and self.record_button.isChecked():
            self.record_button.setChecked(False)  # stops and keeps what was recorded

    def shutdown(self) -> None:
        """Finish a recording in progress and stop listening (the window is closing)."""
        self.stop_monitoring()
        if self.recorder is not None:
            self.record_button.setChecked(False)
