"""Splitting a long text into chunks the model says one at a time.

CSM speaks one turn of at most a few hundred characters well; a longer text is cut at sentence
ends, and a sentence that is still too long at clause marks (; : , and dashes), then between
words. What is not a sentence end: abbreviations ("Dr.", "e.g.", "U.S."), initials ("J. R. R."),
numbers ("3.5", "1,000", "No. 5"), an ellipsis inside a sentence followed by a lower-case word,
and a full stop inside quotes that carries on ("“Wait.” she said"). Closing quotes and brackets
stay with their sentence. A blank line ends a paragraph: the join after it pauses longer.

Hand-written rather than a library: the tokenizers that do this well (nltk's punkt, spaCy) bring
models and hundreds of MB for a few dozen lines of rules, and the rules here are tested.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

MAX_CHARS = 220
"""Longest chunk (about 12-15 s of speech: CSM stays fluent, and it fits the context)."""

SENTENCE_PAUSE = 0.25
PARAGRAPH_PAUSE = 0.7
"""Seconds of silence between chunks when they are joined."""

ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "ft", "vs", "etc", "e.g", "i.e",
    "eg", "ie", "cf", "al", "approx", "dept", "est", "fig", "inc", "ltd", "co", "corp", "no",
    "nos", "vol", "pp", "p", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept",
    "oct", "nov", "dec", "mon", "tue", "wed", "thu", "fri", "sat", "sun", "u.s", "u.k", "a.m",
    "p.m", "ph.d", "gen", "col", "lt", "sgt", "capt", "rev", "hon", "gov", "sen", "rep",
}  # fmt: skip

_CLOSERS = "\"'”’»)]}"
_END = re.compile(r"([.!?…]+)([" + re.escape(_CLOSERS) + r"]*)(\s+)")
_CLAUSE = re.compile(r"[;:,]\s+|\s+[—–-]{1,2}\s+|—")


@dataclass(frozen=True)
class Chunk:
    """One piece of the text and the pause that follows it in the joined take."""

    text: str
    pause_after: float


def clean_text(text: str) -> str:
    """What the model reads: NFC-normalized, control and invisible format characters removed
    (line breaks kept), so pasted terminal colours or zero-width joiners say nothing."""
    kept = []
    for char in unicodedata.normalize("NFC", text):
        category = unicodedata.category(char)
        if char in "\n\t":
            kept.append(char)
        elif category == "Cc":
            kept.append(" ")
        elif category != "Cf":
            kept.append(char)
    return "".join(kept)


def split_text(text: str, max_chars: int = MAX_CHARS) -> list[Chunk]:
    """Chunks of at most ``max_chars`` characters, in order, covering every word of ``text``."""
    text = clean_text(text)
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text)]
    paragraphs = [p for p in paragraphs if p]
    chunks: list[Chunk] = []
    for number, paragraph in enumerate(paragraphs):
        pieces: list[str] = []
        for sentence in _sentences(paragraph):
            pieces.extend(_fit(sentence, max_chars))
        pieces = _merge_short(pieces, max_chars)
        last = number == len(paragraphs) - 1
        for index, piece in enumerate(pieces):
            end_of_paragraph = index == len(pieces) - 1
            pause = 0.0 if last and end_of_paragraph else SENTENCE_PAUSE
            if end_of_paragraph and not last:
                pause = PARAGRAPH_PAUSE
            chunks.append(Chunk(piece, pause))
    return chunks


def _sentences(paragraph: str) -> list[str]:
    """Cut a paragraph (one line, single spaces) at its sentence ends."""
    sentences: list[str] = []
    start = 0
    for match in _END.finditer(paragraph):
        cut = match.end(2)
        if _is_sentence_end(paragraph, match.start(1), match.group(1), cut):
            sentences.append(paragraph[start:cut].strip())
            start = match.end()
    rest = paragraph[start:].strip()
    if rest:
        sentences.append(rest)
    return sentences


def _is_sentence_end(text: str, mark_at: int, marks: str, cut: int) -> bool:
    following = text[cut:].lstrip()
    if not following:
        return True
    first = following[0]
    if first.islower():
        return False  # "... and then", "“Wait.” she said", "e.g. this"
    if marks != ".":
        return True  # ! ? … (followed by a capital, digit or quote)
    word = re.search(r"([\w.]+)$", text[:mark_at])
    if word is None:
        return True
    token = word.group(1).lower().rstrip(".")
    if token in ABBREVIATIONS:
        return False
    if len(token) == 1 and token.isalpha():
        return False  # an initial: "J. Smith"
    return not (token.isdigit() and first.isdigit())  # "No. 5", a list "1. 2."


def _fit(sentence: str, max_chars: int) -> list[str]:
    """A sentence cut at clause marks, then between words, into pieces of at most max_chars."""
    if len(sentence) <= max_chars:
        return [sentence]
    middle = len(sentence) // 2
    cuts = [m.end() for m in _CLAUSE.finditer(sentence) if 0 < m.end() < len(sentence)]
    cuts = [c for c in cuts if not sentence[c - 2 : c].strip(", ").isdigit()]  # not "1, 000"
    if not cuts:
        cuts = [m.end() for m in re.finditer(r"\s+", sentence)]
    if not cuts:  # one enormous word
        return [sentence[i : i + max_chars] for i in range(0, len(sentence), max_chars)]
    cut = min(cuts, key=lambda c: abs(c - middle))
    return _fit(sentence[:cut].strip(), max_chars) + _fit(sentence[cut:].strip(), max_chars)


def _merge_short(pieces: list[str], max_chars: int, short: int = 24) -> list[str]:
    """Join a very short sentence ("Yes.") to its neighbour: CSM says one word poorly alone."""
    merged: list[str] = []
    for piece in pieces:
        fits = bool(merged) and len(merged[-1]) + 1 + len(piece) <= max_chars
        if fits and (len(piece) < short or len(merged[-1]) < short):
            merged[-1] = f"{merged[-1]} {piece}"
        else:
            merged.append(piece)
    return merged
