"""What a recogniser heard: text and word times (plain data, importable without torch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Word:
    """One recognised word and where it is, in seconds from the start of the audio."""

    word: str
    start: float
    end: float


@dataclass(frozen=True)
class Transcript:
    """What the recogniser heard: the text, its words with their times, and the language when
    one was asked for ("" when Whisper detected it)."""

    text: str
    words: tuple[Word, ...] = ()
    language: str = ""

    def as_json(self) -> dict[str, Any]:
        """``{"text", "words": [{"word", "start", "end"}], "language"}`` (times in seconds)."""
        return {
            "text": self.text,
            "words": [
                {"word": w.word, "start": round(w.start, 3), "end": round(w.end, 3)}
                for w in self.words
            ],
            "language": self.language,
        }
