"""How closely what was heard matches the text: WER, CER and the words that differ.

Both sides are first put through Whisper's English text normaliser (transformers ships it: case,
punctuation, spelled-out numbers, British spellings), so "Nine o'clock!" and "9 o'clock" agree.
The alignment is jiwer's (the usual WER tool); it names each run of skipped, changed or added
words.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

Normalizer = Callable[[str], str]


@dataclass(frozen=True)
class TextMatch:
    """The expected text against what was heard, both normalised."""

    expected: str
    heard: str
    wer: float
    cer: float
    errors: int  # word substitutions + deletions + insertions
    skipped: tuple[str, ...] = ()  # runs of words of the text that were not heard
    changed: tuple[tuple[str, str], ...] = ()  # (the text's words, what was heard instead)
    added: tuple[str, ...] = ()  # runs of words heard that the text does not have


@cache
def english_normalizer() -> Normalizer:
    """Whisper's English normaliser, without a checkpoint's spelling map (British stays)."""
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    normalizer: Any = EnglishTextNormalizer({})
    return lambda text: str(normalizer(text))


def compare_text(expected: str, heard: str, normalize: Normalizer | None = None) -> TextMatch:
    """Score ``heard`` against ``expected`` after normalising both (see the module)."""
    import jiwer

    norm = normalize or english_normalizer()
    ref, hyp = " ".join(norm(expected).split()), " ".join(norm(heard).split())
    if not ref:
        errors = len(hyp.split())
        return TextMatch(ref, hyp, float(errors > 0), float(bool(hyp)), errors, added=_runs(hyp))
    if not hyp:
        words = len(ref.split())
        return TextMatch(ref, hyp, 1.0, 1.0, words, skipped=(ref,))
    out = jiwer.process_words(ref, hyp)
    ref_words, hyp_words = out.references[0], out.hypotheses[0]
    skipped: list[str] = []
    changed: list[tuple[str, str]] = []
    added: list[str] = []
    for chunk in out.alignments[0]:
        said = " ".join(ref_words[chunk.ref_start_idx : chunk.ref_end_idx])
        got = " ".join(hyp_words[chunk.hyp_start_idx : chunk.hyp_end_idx])
        if chunk.type == "delete":
            skipped.append(said)
        elif chunk.type == "substitute":
            changed.append((said, got))
        elif chunk.type == "insert":
            added.append(got)
    errors = out.substitutions + out.deletions + out.insertions
    return TextMatch(
        ref,
        hyp,
        float(out.wer),
        float(jiwer.cer(ref, hyp)),
        int(errors),
        tuple(skipped),
        tuple(changed),
        tuple(added),
    )


def _runs(text: str) -> tuple[str, ...]:
    return (text,) if text else ()


def describe_differences(match: TextMatch, most: int = 3) -> list[str]:
    """The differences in the user's words: "skipped: 'opens at 9'", "said 'cat' for 'hat'"."""
    lines = [f"skipped: {_quote(words)}" for words in match.skipped]
    lines += [f"said {_quote(got)} for {_quote(said)}" for said, got in match.changed]
    lines += [f"added: {_quote(words)}" for words in match.added]
    if len(lines) > most:
        lines = [*lines[:most], f"and {len(lines) - most} more difference(s)"]
    return lines


def _quote(words: str, longest: int = 48) -> str:
    return repr(words if len(words) <= longest else words[: longest - 1] + "…")
