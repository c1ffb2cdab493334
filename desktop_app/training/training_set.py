"""A training set: a session's utterances kept in a folder of their own, screened, reviewed by the
user (transcripts edited, utterances left out), and split into training and held-out utterances.

The folder holds ``set.json`` (every utterance's times, transcript, problem, the user's choices and
its split) and ``audio/NNNNN.flac`` (24 kHz mono): a review survives a restart, and training reads
nothing but this folder.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from desktop_app import defaults
from desktop_app.audio import dsp
from desktop_app.audio.io import read_audio, write_audio
from desktop_app.errors import RequestError
from desktop_app.files import write_text_atomic
from desktop_app.inference.asr import SpeechRecognizer
from desktop_app.inference.engine import StopCheck, check_stop
from desktop_app.inference.speaker import SpeakerEncoder
from desktop_app.training import utterances as cut
from desktop_app.training.utterances import RATE, Utterance

SET_FILE = "set.json"
SET_VERSION = 1
RECOMMENDED_MINUTES = 10.0
"""What a voice should be trained on; less works, and the review says how much there is."""
HELD_OUT_SHARE = 0.1
MAX_HELD_OUT = 20
MIN_FOR_HELD_OUT = 4
"""With fewer usable utterances none is held out (the evaluation says so)."""

Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class SessionAudio:
    """One recording of the session (24 kHz mono) and its transcript when the user has one."""

    name: str
    audio: np.ndarray
    transcript: str = ""


def read_session_file(path: Path, transcript: str = "") -> SessionAudio:
    """A recording of any length up to three hours, decoded in blocks, as 24 kHz mono.

    Raises:
        AudioFileError: unreadable, or longer than three hours.
    """
    decoded = read_audio(path, max_seconds=defaults.MAX_RECORDING_SECONDS)
    audio = dsp.resample(dsp.to_mono(decoded.samples), decoded.sample_rate, RATE)
    return SessionAudio(path.name, audio, transcript)


def read_transcripts(path: Path) -> dict[str, str]:
    """Transcripts as ``name|text`` lines (LJSpeech's ``metadata.csv`` layout; the name with or
    without its extension), blank lines and ``#`` comments skipped.

    Raises:
        RequestError: a line has no ``|``, or the file cannot be read.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise RequestError(f"cannot read the transcripts {path}: {exc}") from exc
    out: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, bar, text = line.partition("|")
        if not bar or not name.strip() or not text.strip():
            raise RequestError(
                f"{path}:{number}: expected 'file name|transcript', got {line[:60]!r}"
            )
        out[name.strip()] = text.strip()
    return out


def transcript_for(name: str, transcripts: Mapping[str, str]) -> str:
    """The transcript given for a file, by its name or its name without the extension."""
    return transcripts.get(name) or transcripts.get(Path(name).stem, "")


class TrainingSet:
    """The utterances of a session in ``folder``, with the user's review."""

    def __init__(self, folder: Path, utterances: list[Utterance], notes: list[str]) -> None:
        self.folder = folder
        self.utterances = utterances
        self.notes = notes
        """What the screening could not do (no speaker model, too few to hold out)."""
        self.held_out_keys: set[str] = set()

    # -- what there is -------------------------------------------------------------------------

    def usable(self) -> list[Utterance]:
        return [u for u in self.utterances if u.usable]

    def training(self) -> list[Utterance]:
        return [u for u in self.usable() if u.key not in self.held_out_keys]

    def held_out(self) -> list[Utterance]:
        return [u for u in self.usable() if u.key in self.held_out_keys]

    def usable_minutes(self) -> float:
        return sum(u.seconds for u in self.usable()) / 60

    def recommendation(self) -> str:
        """E.g. "10+ minutes recommended; 4.2 usable"."""
        return f"{RECOMMENDED_MINUTES:g}+ minutes recommended; {self.usable_minutes():.1f} usable"

    def find(self, key: str) -> Utterance:
        for utterance in self.utterances:
            if utterance.key == key:
                return utterance
        raise RequestError(f"no utterance {key!r} in the training set")

    # -- the review ----------------------------------------------------------------------------

    def exclude(self, key: str, excluded: bool = True) -> None:
        self.find(key).excluded = excluded
        self.split()

    def set_transcript(self, key: str, text: str) -> None:
        """The user's transcript wins over what was heard."""
        utterance = self.find(key)
        utterance.transcript = " ".join(text.split())
        utterance.given = True
        if utterance.problem.startswith(("the recogniser", "no words")):
            utterance.problem = ""
        self.split()

    def limit_minutes(self, minutes: float) -> None:
        """Use at most ``minutes`` of the usable audio (the rest is left out, in order)."""
        total = 0.0
        for utterance in self.usable():
            total += utterance.seconds
            if total > minutes * 60:
                utterance.excluded = True
        self.split()

    def split(self) -> None:
        """Hold out every tenth usable utterance (at most :data:`MAX_HELD_OUT`; none with fewer
        than :data:`MIN_FOR_HELD_OUT`), spread over the session, the same for the same set."""
        usable = self.usable()
        self.notes = [n for n in self.notes if not n.startswith("too few")]
        if len(usable) < MIN_FOR_HELD_OUT:
            self.held_out_keys = set()
            self.notes.append(
                f"too few usable utterances ({len(usable)}) to hold any out: the evaluation "
                "speaks training sentences"
            )
            return
        count = min(MAX_HELD_OUT, max(1, round(len(usable) * HELD_OUT_SHARE)))
        step = len(usable) / count
        self.held_out_keys = {usable[int(step * i + step / 2)].key for i in range(count)}

    # -- the folder ------------------------------------------------------------------------------

    def save(self) -> None:
        """Write ``set.json`` atomically (the audio is written once, when the set is made)."""
        data = {
            "version": SET_VERSION,
            "notes": self.notes,
            "held_out": sorted(self.held_out_keys),
            "utterances": [
                {
                    "key": u.key,
                    "file": _audio_name(i),
                    "source": u.source,
                    "start": round(u.start, 3),
                    "end": round(u.end, 3),
                    "transcript": u.transcript,
                    "given": u.given,
                    "problem": u.problem,
                    "excluded": u.excluded,
                }
                for i, u in enumerate(self.utterances)
            ],
        }
        write_text_atomic(self.folder / SET_FILE, json.dumps(data, indent=1, ensure_ascii=False))

    @classmethod
    def load(cls, folder: Path) -> TrainingSet:
        """The set kept in ``folder``.

        Raises:
            RequestError: there is none, or it is damaged.
        """
        try:
            data = json.loads((folder / SET_FILE).read_text(encoding="utf-8"))
            rows: list[dict[str, Any]] = data["utterances"]
            utterances = [
                Utterance(
                    key=row["key"],
                    source=row["source"],
                    start=float(row["start"]),
                    end=float(row["end"]),
                    audio=sf.read(folder / "audio" / row["file"], dtype="float32")[0],
                    transcript=row["transcript"],
                    given=bool(row["given"]),
                    problem=row["problem"],
                    excluded=bool(row["excluded"]),
                )
                for row in rows
            ]
            made = cls(folder, utterances, list(data["notes"]))
            made.held_out_keys = set(data["held_out"])
        except FileNotFoundError as exc:
            raise RequestError(f"no training set in {folder}") from exc
        except (OSError, ValueError, KeyError, TypeError, sf.LibsndfileError) as exc:
            raise RequestError(f"the training set in {folder} is damaged ({exc})") from exc
        return made


def _audio_name(index: int) -> str:
    return f"{index:05d}.flac"


def build_training_set(
    folder: Path,
    sources: Sequence[SessionAudio],
    *,
    recognizer: SpeechRecognizer | None,
    encoder: SpeakerEncoder | None,
    language: str | None = None,
    on_progress: Progress | None = None,
    should_stop: StopCheck | None = None,
) -> TrainingSet:
    """Cut, transcribe and screen a session's recordings into a training set in ``folder``.

    A recording no longer than :data:`~desktop_app.training.utterances.LONGEST` seconds with a
    transcript (a voice's clip) is one utterance; a longer one is cut at its pauses, and its
    transcript, if given, is split among the utterances by aligning it with what the recogniser
    heard. Without a recogniser only given transcripts count; without a speaker model the
    other-speaker screening is skipped, and the set's notes say so.

    Raises:
        RequestError: nothing to train on, or a long recording's transcript with no recogniser
            to split it.
        GenerationCancelled: ``should_stop`` said so.
    """
    if not sources:
        raise RequestError("no recordings to train on: record a session or import files")
    found: list[Utterance] = []
    for number, source in enumerate(sources):
        check_stop(should_stop)
        if on_progress:
            on_progress(f"finding the speech in {source.name}", number / len(sources))
        found.extend(_utterances_of(source, recognizer, language, should_stop))
    cut.screen_levels(found)
    notes: list[str] = []
    if recognizer is not None:
        cut.transcribe(
            [u for u in found if not u.given],
            recognizer,
            language=language,
            on_progress=on_progress,
            should_stop=should_stop,
        )
    for utterance in found:
        if not utterance.transcript.strip() and not utterance.problem:
            utterance.problem = "no transcript (give one, or get the speech recogniser)"
    if encoder is not None:
        cut.screen_voices(found, encoder, on_progress=on_progress, should_stop=should_stop)
    else:
        notes.append("other speakers were not screened out: the speaker model is not installed")
    audio_folder = folder / "audio"
    audio_folder.mkdir(parents=True, exist_ok=True)
    for index, utterance in enumerate(found):
        check_stop(should_stop)
        write_audio(audio_folder / _audio_name(index), utterance.audio, RATE)
    made = TrainingSet(folder, found, notes)
    made.split()
    made.save()
    return made


def _utterances_of(
    source: SessionAudio,
    recognizer: SpeechRecognizer | None,
    language: str | None,
    should_stop: StopCheck | None,
) -> list[Utterance]:
    seconds = source.audio.size / RATE
    if source.transcript and seconds <= cut.LONGEST:
        problem = "" if seconds >= cut.SHORTEST else f"shorter than {cut.SHORTEST:g} s"
        return [
            Utterance(
                f"{source.name}@{0:09.3f}",
                source.name,
                0.0,
                seconds,
                source.audio,
                source.transcript,
                given=True,
                problem=problem,
            )
        ]
    pieces = cut.cut_session(source.audio, source.name)
    if not source.transcript:
        return pieces
    if len(pieces) == 1:
        pieces[0].transcript, pieces[0].given = source.transcript, True
        return pieces
    if recognizer is None:
        raise RequestError(
            f"{source.name} is {seconds / 60:.1f} min long: its transcript can only be split "
            "among its sentences with the speech recogniser; get it (download-model --asr) or "
            "give each sentence as a file of its own"
        )
    heard = cut.transcribe(pieces, recognizer, language=language, should_stop=should_stop)
    for piece, text in zip(pieces, cut.align_transcript(source.transcript, heard), strict=True):
        piece.transcript, piece.given = text, True
        if piece.problem.startswith(("the recogniser", "no words")):
            piece.problem = ""
    return pieces
