"""Takes: the list of generated takes, their waveform with a moving playhead, and the transport.

Every take is written to the takes folder (and the history) as soon as it exists, by
:func:`desktop_app.takes.keep_take`, before it is listed here, so none is lost; "Save as" copies
it anywhere as WAV or FLAC with metadata.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.audio.io import write_audio
from desktop_app.audio.player import Player
from desktop_app.defaults import SAMPLE_RATE
from desktop_app.errors import UserError
from desktop_app.inference import GenerationRequest, GenerationResult
from desktop_app.inference.engine import GenerationTimings
from desktop_app.library.records import TakeRecord
from desktop_app.library.store import Library
from desktop_app.takes import KeptTake, take_metadata
from desktop_app.ui.describe import describe
from desktop_app.ui.dialogs import ask_audio_path, audio_target
from desktop_app.ui.icons import labelled
from desktop_app.ui.library_panels import verdict_text
from desktop_app.ui.waveform_view import WaveformView

if TYPE_CHECKING:
    from desktop_app.checks.best_of import BestOf
    from desktop_app.checks.take_check import TakeCheck


@dataclass(eq=False)
class Take:
    """A generated take, the request that made it, and where it is kept."""

    number: int
    request: GenerationRequest
    result: GenerationResult
    model: str
    path: Path
    voice: str | None = None  # the saved voice whose clips made it, if any
    record_id: int | None = None  # its id in the history, once recorded there
    check: TakeCheck | None = None  # its listen-back check, when it was checked
    best_of: BestOf | None = None  # every candidate, when it is the best of several

    favourite: bool = False
    restored: bool = False  # listed again from the history after a restart

    def label(self) -> str:
        """The row: number, verdict and score, text, voice, length, star."""
        r = self.request
        text = r.text if len(r.text) <= 56 else r.text[:53] + "…"
        verdict = f"{verdict_text(self.check.verdict, self.check.wer)}  " if self.check else ""
        star = "  ★" if self.favourite else ""
        return (
            f"#{self.number}  {verdict}“{text}”  ·  {self.voice or 'clips'}  ·  "
            f"{self.result.seconds:.1f} s{star}"
        )

    def settings_text(self) -> str:
        """The settings and timings (the row's tooltip)."""
        r, t = self.request, self.result.timings
        settings = (
            "greedy" if r.temperature <= 0 else f"temperature {r.temperature:g}, top-k {r.top_k}"
        )
        where = f"{self.result.engine}, {self.result.device}" if self.result.device else "history"
        return (
            f"{settings}, top-p {r.top_p:g}, seed {self.result.seed}, max {r.max_seconds:g} s\n"
            f"{self.result.frames} frames ({self.result.stopped_by}) · RTF "
            f"{t.real_time_factor:.2f} ({where})"
            + ("\nfrom an earlier session" if self.restored else "")
        )

    def check_lines(self) -> str:
        """The check in words: verdict, scores and reasons (empty when not checked)."""
        c = self.check
        if c is None:
            return ""
        scores = [f"WER {c.wer:.2f}, CER {c.cer:.2f}"] if c.wer is not None and c.cer else []
        scores += [f"voice match {c.similarity:.2f}"] if c.similarity is not None else []
        scores += ["ended by the end frame" if c.ended else "no end frame"]
        scores += [f"{c.trimmed_s:.1f} s of tail trimmed"] if c.trimmed_s >= 0.05 else []
        lines = [f"Check: {verdict_text(c.verdict)} — {', '.join(scores)}"]
        lines += [f" • {reason}" for reason in c.reasons]
        if c.heard:
            lines.append(f" heard: “{c.heard}”")
        lines += [f" not checked: {what}" for what in c.not_checked]
        return "\n".join(lines)


class TakesPanel(QGroupBox):
    """List of takes, waveform + playhead, play/pause/stop, save, reveal, regenerate, compare."""

    error = Signal(object)
    regenerate_requested = Signal(object)  # Take
    part_regenerate_requested = Signal(object, int)  # Take, index of the part
    candidate_chosen = Signal(object, int, int)  # Take, chunk, candidate: keep that one instead
    saved = Signal(object)  # Path: where a take was saved (Save as)

    def __init__(self, player: Player, parent: QWidget | None = None) -> None:
        super().__init__("Takes", parent)
        self.player = player
        self.takes: list[Take] = []
        self.library: Library | None = None  # set by the window: stars go into the history
        self._queue: list[Take] = []
        self._playing: Take | None = None
        layout = QVBoxLayout(self)
        self.take_list = QListWidget()
        self.take_list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.take_list.currentRowChanged.connect(self._show_take)
        layout.addWidget(self.take_list, 1)
        self.waveform = WaveformView()
        self.waveform.setAccessibleName("Waveform of the take")
        self.waveform.setToolTip(
            "Click to move the playhead, drag (or Shift+click) to select; Ctrl+wheel zooms"
        )
        self.waveform.seek_requested.connect(self.seek)
        layout.addWidget(self.waveform, 1)
        view = QHBoxLayout()
        self.loop_button = labelled(QPushButton(), "⟲ Loop")
        self.loop_button.setCheckable(True)
        self.loop_button.setShortcut(QKeySequence("Ctrl+L"))
        self.loop_button.setToolTip("Play the selection (or the take) over and over (Ctrl+L)")
        self.spectrum_button = QPushButton("Spectrogram")
        self.spectrum_button.setCheckable(True)
        self.spectrum_button.setToolTip("Show the take's spectrogram: clicks and artefacts show")
        self.spectrum_button.toggled.connect(self.waveform.show_spectrogram)
        self.zoom_button = QPushButton("Zoom to selection")
        self.zoom_button.setShortcut(QKeySequence("Ctrl+E"))
        self.zoom_button.setToolTip("Show just the selection (Ctrl+E)")
        self.zoom_button.clicked.connect(self.waveform.zoom_to_selection)
        self.fit_button = QPushButton("Fit")
        self.fit_button.setShortcut(QKeySequence("Ctrl+F"))
        self.fit_button.setToolTip("Show the whole take (Ctrl+F)")
        self.fit_button.clicked.connect(self.waveform.zoom_fit)
        for widget in (self.loop_button, self.spectrum_button, self.zoom_button, self.fit_button):
            widget.setAccessibleName(widget.text().strip("⟲ "))
            view.addWidget(widget)
        view.addStretch()
        layout.addLayout(view)
        self._start_at = 0  # where the next play starts (a click on the waveform)
        self.details = QLabel("")
        self.details.setWordWrap(True)
        layout.addWidget(self.details)
        row = QHBoxLayout()
        self.play_button = labelled(QPushButton(), "▶ Play")
        self.play_button.setShortcut(QKeySequence("Space"))
        self.play_button.setToolTip("Play / pause the selected take (Space)")
        self.play_button.clicked.connect(self.toggle_play)
        self.stop_button = labelled(QPushButton(), "■ Stop")
        self.stop_button.clicked.connect(self.stop)
        self.compare_button = QPushButton("Compare")
        self.compare_button.setToolTip("Play the selected takes one after another (Ctrl+click)")
        self.compare_button.clicked.connect(self.compare)
        self.output_device = QComboBox()
        self.output_device.setToolTip("Output device for playback")
        self.output_device.currentTextChanged.connect(self._output_changed)
        for widget in (self.play_button, self.stop_button, self.compare_button):
            row.addWidget(widget)
        row.addWidget(QLabel("Output:"))
        row.addWidget(self.output_device, 1)
        layout.addLayout(row)
        row = QHBoxLayout()
        self.save_button = QPushButton("Save as…")
        self.save_button.clicked.connect(self.save_dialog)
        self.reveal_button = QPushButton("Show in folder")
        self.reveal_button.clicked.connect(self.reveal)
        self.regenerate_button = QPushButton("Regenerate")
        self.regenerate_button.setToolTip("Make this take again with the same text and settings")
        self.regenerate_button.clicked.connect(self._regenerate)
        self.part_picker = QComboBox()
        self.part_picker.setToolTip("A long text is said in parts; pick one to make again")
        self.part_button = QPushButton("Regenerate part")
        self.part_button.setToolTip("Make only this part again (new seed); the rest stays")
        self.part_button.clicked.connect(self._regenerate_part)
        self.star_button = labelled(QPushButton(), "★ Star")
        self.star_button.setCheckable(True)
        self.star_button.setShortcut(QKeySequence("Ctrl+D"))
        self.star_button.setToolTip("Star the take (in the History too) (Ctrl+D)")
        self.star_button.setAccessibleName("Star")
        self.star_button.clicked.connect(lambda _: self.toggle_favourite())
        for widget in (
            self.save_button,
            self.reveal_button,
            self.regenerate_button,
            self.star_button,
        ):
            row.addWidget(widget)
        row.addStretch()
        row.addWidget(self.part_picker, 1)
        row.addWidget(self.part_button)
        layout.addLayout(row)
        row = QHBoxLayout()
        self.candidate_picker = QComboBox()
        self.candidate_picker.setToolTip(
            "The candidates of this take (best of N): pick one to hear it or keep it instead"
        )
        self.candidate_picker.setAccessibleName("Candidates")
        self.candidate_play = labelled(QPushButton(), "▶ Hear candidate")
        self.candidate_play.setToolTip("Play the candidate picked on the left")
        self.candidate_play.clicked.connect(self._play_candidate)
        self.candidate_button = QPushButton("Use this candidate")
        self.candidate_button.setToolTip(
            "Keep the picked candidate instead (a new take; for a long text, in the chosen part)"
        )
        self.candidate_button.clicked.connect(self._choose_candidate)
        self.candidate_label = QLabel("Candidates:")
        self.candidate_row: tuple[QWidget, ...] = (
            self.candidate_label,
            self.candidate_picker,
            self.candidate_play,
            self.candidate_button,
        )
        for part in self.candidate_row:
            row.addWidget(part)
        self.part_picker.currentIndexChanged.connect(lambda _: self._fill_candidates())
        layout.addLayout(row)
        self._timer = QTimer(self)
        self._timer.setInterval(30)
        self._timer.timeout.connect(self._tick)
        describe(
            (self.stop_button, "Stop playback and rewind", "Stop"),
            (self.save_button, "Save the selected take as WAV or FLAC (Ctrl+S)", "Save as"),
            (self.reveal_button, "Show the take's file in the file manager", "Show in folder"),
            (self.output_device, "Output device for playback", "Output device"),
            (self.part_picker, "A long text is said in parts; pick one to make again", "Part"),
        )
        self._show_take(-1)

    # -- takes ---------------------------------------------------------------------------------

    def add(
        self,
        request: GenerationRequest,
        result: GenerationResult,
        model: str,
        kept: KeptTake,
        voice: str | None = None,
        check: TakeCheck | None = None,
        best_of: BestOf | None = None,
    ) -> Take:
        """List a take already kept (its file written, its history row made) and select it."""
        take = Take(
            len(self.takes) + 1,
            request,
            result,
            model,
            kept.file,
            voice,
            kept.record.id if kept.record is not None else None,
            check,
            best_of,
        )
        self._list(take)
        self.take_list.setCurrentRow(len(self.takes) - 1)
        return take

    def _list(self, take: Take) -> None:
        self.takes.append(take)
        self.take_list.addItem(take.label())
        item = self.take_list.item(self.take_list.count() - 1)
        item.setToolTip(take.settings_text())

    def restore(self, records: list[TakeRecord]) -> None:
        """List the window's takes of earlier sessions (newest first from the history) again,
        oldest first, before the ones made now. A take whose file is gone is left out."""
        from desktop_app.checks.take_check import TakeCheck

        for record in reversed(records):
            try:
                audio = record.audio()
            except UserError:
                continue
            timings = _timings(record.timings)
            settings = record.settings
            request = GenerationRequest(
                record.text,
                temperature=float(settings.get("temperature", 0.9)),
                top_k=int(settings.get("top_k", 50)),
                top_p=float(settings.get("top_p", 1.0)),
                seed=record.seed,
                max_seconds=float(settings.get("max_seconds", 10.0)),
            )
            frames = round(audio.size / 1920)
            result = GenerationResult(
                audio,
                np.zeros((frames, 0), np.int64),
                frames,
                "kept",
                record.seed,
                timings,
                record.device,
                "",
                record.engine,
            )
            check = TakeCheck.from_json(record.check) if record.verdict else None
            take = Take(
                len(self.takes) + 1,
                request,
                result,
                record.model,
                record.file,
                record.voice,
                record.id,
                check,
                None,
                record.favourite,
                True,
            )
            self._list(take)
        if self.takes:
            self.take_list.setCurrentRow(len(self.takes) - 1)

    def toggle_favourite(self) -> None:
        """Star (or unstar) the selected take, in the history too."""
        take = self.current
        if take is None:
            return
        take.favourite = not take.favourite
        if self.library is not None and take.record_id is not None:
            try:
                self.library.takes.set_favourite(take.record_id, take.favourite)
            except UserError as exc:
                self.error.emit(exc)
        row = self.takes.index(take)
        self.take_list.item(row).setText(take.label())
        self.star_button.setChecked(take.favourite)

    @property
    def current(self) -> Take | None:
        row = self.take_list.currentRow()
        return self.takes[row] if 0 <= row < len(self.takes) else None

    def _show_take(self, row: int) -> None:
        take = self.takes[row] if 0 <= row < len(self.takes) else None
        self._start_at = 0
        self.star_button.setChecked(take is not None and take.favourite)
        if take is None:
            self.waveform.set_audio(self.waveform.audio[:0], SAMPLE_RATE)
            self.details.setText("No takes yet: type a text and press Generate (Ctrl+Return).")
        else:
            r, t = take.request, take.result.timings
            self.waveform.set_audio(take.result.audio, take.result.sample_rate)
            self.details.setText(
                f"{r.text}\n temperature {r.temperature:g}, top-k {r.top_k}, top-p {r.top_p:g}, "
                f"seed {take.result.seed}, max {r.max_seconds:g} s · {take.result.frames} frames "
                f"({take.result.stopped_by}) · first frame {t.prefill_s * 1000:.0f} ms, "
                f"{t.per_frame_s * 1000:.1f} ms/frame, RTF {t.real_time_factor:.2f} · "
                f"{take.path}" + (f"\n{take.check_lines()}" if take.check else "")
            )
        for button in (
            self.play_button,
            self.stop_button,
            self.save_button,
            self.reveal_button,
            self.regenerate_button,
            self.compare_button,
        ):
            button.setEnabled(take is not None)
        parts = take.result.parts if take is not None else ()
        self.part_picker.clear()
        for number, part in enumerate(parts, start=1):
            text = part.text if len(part.text) <= 40 else part.text[:37] + "…"
            self.part_picker.addItem(f"Part {number}: “{text}”")
        self.part_picker.setVisible(bool(parts))
        self.part_button.setVisible(bool(parts))
        self._fill_candidates()

    def _candidate_chunk(self) -> int:
        take = self.current
        if take is None or take.best_of is None:
            return -1
        chunk = self.part_picker.currentIndex() if len(take.best_of.chunks) > 1 else 0
        return chunk if 0 <= chunk < len(take.best_of.chunks) else 0

    def _fill_candidates(self) -> None:
        """The candidates of the selected take (of the picked part, for a long text)."""
        take = self.current
        chunk = self._candidate_chunk()
        self.candidate_picker.clear()
        if take is not None and take.best_of is not None and chunk >= 0:
            choice = take.best_of.chunks[chunk]
            for index, c in enumerate(choice.candidates):
                kept = " (kept)" if index == choice.chosen else ""
                self.candidate_picker.addItem(
                    f"seed {c.seed}: {verdict_text(c.check.verdict, c.check.wer)}{kept}"
                )
                self.candidate_picker.setItemData(index, c.check.summary, 3)  # tooltip
            self.candidate_picker.setCurrentIndex(choice.chosen)
        for widget in self.candidate_row:
            widget.setVisible(take is not None and take.best_of is not None)

    def _play_candidate(self) -> None:
        take, chunk = self.current, self._candidate_chunk()
        index = self.candidate_picker.currentIndex()
        if take is None or take.best_of is None or chunk < 0 or index < 0:
            return
        candidate = take.best_of.chunks[chunk].candidates[index]
        self.stop()
        try:
            self.player.play(candidate.result.audio, candidate.result.sample_rate)
        except UserError as exc:
            self.error.emit(exc)

    def _choose_candidate(self) -> None:
        take, chunk = self.current, self._candidate_chunk()
        index = self.candidate_picker.currentIndex()
        if (
            take is not None
            and take.best_of is not None
            and chunk >= 0
            and 0 <= index != take.best_of.chunks[chunk].chosen
        ):
            self.candidate_chosen.emit(take, chunk, index)

    # -- transport -----------------------------------------------------------------------------

    def _output_changed(self, name: str) -> None:
        self.player.device = name or None

    def toggle_play(self) -> None:
        """Play the selected take; pause or resume when it is the one playing."""
        take = self.current
        if take is None:
            return
        try:
            if self._playing is take and self.player.playing:
                self.player.pause()
                labelled(self.play_button, "▶ Play")
            elif self._playing is take and 0 < self.player.position < take.result.audio.size:
                self.player.resume()
                labelled(self.play_button, "❚❚ Pause")
                self._timer.start()
            else:
                self._queue = []
                self._start(take)
        except UserError as exc:
            self.error.emit(exc)

    def _range(self, take: Take) -> tuple[int, int | None]:
        """What Play plays of the shown take: the selection, else from the playhead on."""
        if take is not self.current:
            return 0, None
        start, end = self.waveform.selection
        if end > start:
            return start, end
        return self._start_at, None

    def seek(self, sample: int) -> None:
        """A click on the waveform: play from there (at once, when this take plays)."""
        self._start_at = sample
        take = self.current
        if take is not None and self._playing is take and self.player.playing:
            try:
                self.player.play(take.result.audio, take.result.sample_rate, start=sample)
            except UserError as exc:
                self.error.emit(exc)

    def _start(self, take: Take) -> None:
        self._playing = take
        if take is not self.current:
            self.take_list.setCurrentRow(self.takes.index(take))
        start, end = self._range(take)
        self.player.play(take.result.audio, take.result.sample_rate, start, end)
        labelled(self.play_button, "❚❚ Pause")
        self._timer.start()

    def compare(self) -> None:
        """Play the selected takes (or the last two) one after another."""
        rows = sorted(index.row() for index in self.take_list.selectedIndexes())
        chosen = [self.takes[r] for r in rows] if len(rows) > 1 else self.takes[-2:]
        if not chosen:
            return
        self._queue = chosen[1:]
        try:
            self._start(chosen[0])
        except UserError as exc:
            self.error.emit(exc)

    def stop(self) -> None:
        """Stop playback and rewind."""
        self._queue = []
        self.player.stop()
        self._playing = None
        self._timer.stop()
        self.waveform.set_playhead(None)
        labelled(self.play_button, "▶ Play")

    def _tick(self) -> None:
        take = self._playing
        if take is None:
            self._timer.stop()
            return
        if take is self.current:
            self.waveform.set_playhead(self.player.position)
        _, end = self._range(take)
        finished = self.player.position >= (end if end is not None else take.result.audio.size)
        if not self.player.playing and finished:
            if self.loop_button.isChecked() and not self._queue:
                self._start(take)
                return
            if self._queue:
                self._start(self._queue.pop(0))
                return
            self._timer.stop()
            self._playing = None
            labelled(self.play_button, "▶ Play")

    # -- files ---------------------------------------------------------------------------------

    def save_dialog(self) -> None:
        """Ask where to save the selected take."""
        take = self.current
        if take is None:
            return
        target = ask_audio_path(self, "Save take", Path.home() / take.path.name)
        if target is not None:
            self.save(take, target)

    def save(self, take: Take, target: Path) -> bool:
        """Write ``take`` to ``target`` (WAV or FLAC, with metadata); errors go to the funnel."""
        try:
            write_audio(
                audio_target(target),
                take.result.audio,
                take.result.sample_rate,
                take_metadata(take.request, take.result, take.model, take.voice),
            )
        except UserError as exc:
            self.error.emit(exc)
            return False
        self.saved.emit(audio_target(target))
        return True

    def reveal(self) -> None:
        """Open the folder that holds the selected take in the file manager."""
        take = self.current
        if take is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(take.path.parent)))

    def _regenerate(self) -> None:
        take = self.current
        if take is not None:
            self.regenerate_requested.emit(take)

    def _regenerate_part(self) -> None:
        take = self.current
        if take is not None and take.result.parts:
            self.part_regenerate_requested.emit(take, self.part_picker.currentIndex())


def _timings(stored: dict[str, float]) -> GenerationTimings:
    """A take's timings as the history kept them (zeros where a field is missing)."""
    known = {f.name for f in dataclasses.fields(GenerationTimings)}
    values = {k: v for k, v in stored.items() if k in known}
    for name in ("prefill_s", "per_frame_s", "total_s", "real_time_factor"):
        values.setdefault(name, 0.0)
    return GenerationTimings(**values)
