"""The Say form: what to say and how (sampling, length, checks, best of N), and Generate.

It turns its fields into a request (:meth:`SayForm.request`), puts a past take's text and
settings back (:meth:`SayForm.apply`) and keeps its fields in the settings
(:meth:`SayForm.store`). It knows nothing of the model or the voice: the window asks it for a
request and hands it the clips to check.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
)

from desktop_app.audio.reference import check_transcripts
from desktop_app.config import Settings
from desktop_app.errors import RequestError
from desktop_app.inference import GenerationRequest
from desktop_app.session.requests import make_request, new_seed
from desktop_app.ui.describe import describe

if TYPE_CHECKING:
    from desktop_app.library.records import TakeRecord
    from desktop_app.ui.voice_panel import Clip


class SayForm(QGroupBox):
    """The text, the sampling settings, the checks and the Generate button."""

    generate_requested = Signal()

    def __init__(self, settings: Settings) -> None:
        super().__init__("Say")
        layout = QVBoxLayout(self)
        self.text = QPlainTextEdit()
        self.text.setPlaceholderText("Type what the voice should say, then press Ctrl+Return")
        self.text.setMaximumHeight(100)
        self.text.setPlainText(settings.say_text)
        layout.addWidget(self.text)
        form = QFormLayout()
        s = settings
        self.temperature = QDoubleSpinBox(decimals=2, minimum=0.0, maximum=2.0, singleStep=0.05)
        self.temperature.setValue(s.temperature)
        self.temperature.setToolTip("0 = greedy (always the same); 0.9 is the usual setting")
        self.top_k = QSpinBox(minimum=0, maximum=2051)
        self.top_k.setValue(s.top_k)
        self.top_k.setToolTip("Sample among the k most likely codes (0 = all)")
        self.top_p = QDoubleSpinBox(decimals=2, minimum=0.05, maximum=1.0, singleStep=0.05)
        self.top_p.setValue(s.top_p)
        seed_row = QHBoxLayout()
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1)
        self.seed.setValue(s.seed)
        self.seed_lock = QCheckBox("Lock")
        self.seed_lock.setChecked(s.seed_locked)
        self.seed_lock.setToolTip(
            "Locked: every take uses this seed. Unlocked: a new seed each time"
        )
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.seed_lock)
        self.max_seconds = QDoubleSpinBox(decimals=1, minimum=0.5, maximum=60.0, singleStep=1.0)
        self.max_seconds.setValue(s.max_seconds)
        self.max_seconds.setSuffix(" s")
        self.denoise = QCheckBox("Lightly denoise the clips")
        self.denoise.setToolTip("Reduce steady background noise in the clips before they are used")
        self.denoise.setChecked(s.denoise)
        self.play_live = QCheckBox("Play while generating")
        self.play_live.setToolTip(
            "Hear the take as it is made: playback starts once the rest can follow without gaps"
        )
        self.play_live.setChecked(s.play_while_generating)
        describe(
            (self.temperature, "", "Temperature"),
            (self.top_k, "", "Top-k"),
            (self.top_p, "Sample among the most likely codes up to this share (1 = all)", "Top-p"),
            (self.seed, "The random seed of the next take (the same seed, the same take)", "Seed"),
            (self.max_seconds, "The longest take to make, in seconds", "Maximum length"),
        )
        form.addRow("Temperature", self.temperature)
        form.addRow("Top-k", self.top_k)
        form.addRow("Top-p", self.top_p)
        form.addRow("Seed", seed_row)
        form.addRow("Maximum length", self.max_seconds)
        form.addRow("", self.denoise)
        form.addRow("", self.play_live)
        self.check_takes = QCheckBox("Check every take")
        self.check_takes.setToolTip(
            "Listen back: transcribe the take, compare its voice with the clips, trim what "
            "follows the speech, and give a verdict with reasons"
        )
        self.check_takes.setChecked(s.check_takes)
        self.candidates = QSpinBox(minimum=1, maximum=8)
        self.candidates.setValue(max(1, min(8, s.candidates)))
        self.candidates.setPrefix("best of ")
        self.candidates.setToolTip(
            "Make this many takes at once (seeds seed, seed+1, ...), check each, keep the best; "
            "with playback on, the chosen one plays when all are made"
        )
        self.candidates.setAccessibleName("Best of N")
        self.coherent = QCheckBox("Long texts: one sentence after another")
        self.coherent.setToolTip(
            "Each sentence is said with the ones before it as context: a steadier voice, about "
            "3x slower than making all sentences at once (the default)"
        )
        self.coherent.setChecked(s.coherent_long_text)
        form.addRow("", self.check_takes)
        form.addRow("", self.coherent)
        form.addRow("Candidates", self.candidates)
        layout.addLayout(form)
        self.generate_button = QPushButton("Generate")
        self.generate_button.setToolTip("Generate a take (Ctrl+Return)")
        self.generate_button.clicked.connect(self.generate_requested)
        layout.addWidget(self.generate_button)
        self.reason = QLabel("")  # why Generate is off, when it is
        self.reason.setWordWrap(True)
        self.reason.setAccessibleName("Why Generate is off")
        layout.addWidget(self.reason)

    def set_ready(self, reason: str) -> None:
        """Generate on when ``reason`` is empty; else off, with the reason shown beside it."""
        self.generate_button.setEnabled(not reason)
        self.generate_button.setToolTip(reason or "Generate a take (Ctrl+Return)")
        self.reason.setText(reason)
        self.reason.setVisible(bool(reason))

    def request(self, clips: Sequence[Clip], text: str | None = None) -> GenerationRequest:
        """The request for the text (or ``text``) and settings; its voice prompt comes from
        ``clips``, which the worker prepares.

        Raises:
            UserError: no text, or a clip without transcript.
        """
        text = self.text.toPlainText() if text is None else text
        if not text.strip():
            raise RequestError("nothing to say: type some text first")
        check_transcripts(clips)
        return self.sampling_request(text)

    def sampling_request(self, text: str) -> GenerationRequest:
        """``text`` with the sampling settings and the seed (a new one unless it is locked;
        the field shows it once the take starts: :meth:`took`)."""
        seed = self.seed.value() if self.seed_lock.isChecked() else new_seed()
        return make_request(
            text,
            temperature=self.temperature.value(),
            top_k=self.top_k.value(),
            top_p=self.top_p.value(),
            seed=seed,
            max_seconds=self.max_seconds.value(),
        )

    def took(self, seed: int | None) -> None:
        """A take of the form's request has started: its seed goes into the field."""
        if seed is not None:
            self.seed.setValue(seed)

    def seed_again(self, seed: int | None) -> int:
        """The seed of a take made again: its own when the seed is locked, else a new one."""
        return seed if self.seed_lock.isChecked() and seed is not None else new_seed()

    def apply(self, record: TakeRecord) -> None:
        """Put a past take's text, settings and seed back (the seed locked: the same take)."""
        settings = record.settings
        self.text.setPlainText(record.text)
        self.temperature.setValue(float(settings.get("temperature", self.temperature.value())))
        self.top_k.setValue(int(settings.get("top_k", self.top_k.value())))
        self.top_p.setValue(float(settings.get("top_p", self.top_p.value())))
        self.max_seconds.setValue(float(settings.get("max_seconds", self.max_seconds.value())))
        self.seed.setValue(record.seed)
        self.seed_lock.setChecked(True)

    def store(self, settings: Settings) -> None:
        """Copy the form's fields into ``settings``."""
        s = settings
        s.temperature = self.temperature.value()
        s.top_k = self.top_k.value()
        s.top_p = self.top_p.value()
        s.seed = self.seed.value()
        s.seed_locked = self.seed_lock.isChecked()
        s.max_seconds = self.max_seconds.value()
        s.denoise = self.denoise.isChecked()
        s.play_while_generating = self.play_live.isChecked()
        s.check_takes = self.check_takes.isChecked()
        s.candidates = self.candidates.value()
        s.coherent_long_text = self.coherent.isChecked()
        s.say_text = self.text.toPlainText()
