"""Splitting long texts: sentence ends, things that only look like them, clause cuts, pauses."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desktop_app.inference.text import (
    PARAGRAPH_PAUSE,
    SENTENCE_PAUSE,
    clean_text,
    split_text,
)


def texts(text: str, max_chars: int = 220) -> list[str]:
    return [chunk.text for chunk in split_text(text, max_chars)]


def test_sentences_become_chunks_with_pauses() -> None:
    chunks = split_text(
        "The morning train was late again. Could you bring the blue notebook? "
        "Honestly, I didn't expect that!\n\nA second paragraph begins here, after a break."
    )
    assert [c.text for c in chunks] == [
        "The morning train was late again.",
        "Could you bring the blue notebook?",
        "Honestly, I didn't expect that!",
        "A second paragraph begins here, after a break.",
    ]
    assert [c.pause_after for c in chunks] == [
        SENTENCE_PAUSE,
        SENTENCE_PAUSE,
        PARAGRAPH_PAUSE,
        0.0,
    ]


@pytest.mark.parametrize(
    "sentence",
    [
        "Dr. Smith met Mrs. Jones at the St. Louis office on Jan. 5th at 3 p.m. today.",
        "The price rose 3.5 percent to 1,250.75 dollars over the whole quarter.",
        "Item No. 5 goes on the top shelf, e.g. beside the old lamp.",
        "J. R. R. Tolkien wrote the book that everyone in the room had read.",
        "I thought... well, maybe it was nothing at all in the end.",
        "“Wait.” she said, and we all stopped walking down the hill.",
        "The U.S. team and the U.K. team both arrived at 9 a.m. sharp.",
    ],
)
def test_what_only_looks_like_a_sentence_end_stays_together(sentence: str) -> None:
    assert texts(sentence) == [sentence]


def test_closing_quotes_stay_with_their_sentence() -> None:
    assert texts("He shouted as loud as he could, “Run!” Then everyone ran to the doors.") == [
        "He shouted as loud as he could, “Run!”",
        "Then everyone ran to the doors.",
    ]


def test_a_long_sentence_is_cut_at_clauses_then_words() -> None:
    sentence = (
        "We walked along the river for an hour, watching the boats go by, counting the "
        "herons on the far bank; then, as the light faded, we turned back toward the town, "
        "where the lamps were already lit and the bakery was closing its doors for the night"
    )
    pieces = texts(sentence, max_chars=80)
    assert all(len(p) <= 80 for p in pieces) and len(pieces) >= 3
    assert " ".join(pieces).split() == sentence.split()  # every word, in order
    assert pieces[0].endswith((",", ";"))  # cut after a clause mark, not mid-clause
    words = "spoken " * 100
    assert all(len(p) <= 50 for p in texts(words, max_chars=50))


def test_very_short_sentences_join_a_neighbour() -> None:
    assert texts("Yes. I will be there at noon with the books you asked for.") == [
        "Yes. I will be there at noon with the books you asked for."
    ]


def test_empty_and_whitespace_give_no_chunks() -> None:
    assert split_text("") == [] and split_text(" \n\n \t ") == []


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=2_000), st.integers(min_value=20, max_value=300))
def test_any_text_splits_into_bounded_chunks_keeping_every_word(text: str, limit: int) -> None:
    chunks = split_text(text, limit)
    assert all(0 < len(c.text) <= limit for c in chunks)
    # every character but whitespace, in order (a word longer than the limit is cut)
    said = "".join(clean_text(text).split())  # control and invisible characters say nothing
    assert "".join("".join(c.text for c in chunks).split()) == said
    assert all(c.pause_after >= 0 for c in chunks)
    assert not chunks or chunks[-1].pause_after == 0.0
