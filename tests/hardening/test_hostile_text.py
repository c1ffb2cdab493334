"""Texts and transcripts a user can type: each is said, or refused with a clear message."""

from __future__ import annotations

from typing import Any

import pytest

from desktop_app.errors import UserError
from desktop_app.inference import GenerationRequest, ReferenceClip
from desktop_app.inference.long_text import speak
from tests.support.signals import voiced

VOICE = (ReferenceClip(voiced(3.0, 24_000), "Hello there, this is my voice."),)

TEXTS = {
    "emoji": "I love this 😀🎉 so much!",
    "right to left": "שלום עולם, זה קול שלי. مرحبا بالعالم",
    "control characters": "Hello\x00 there\x07,\x1b[31m how\r\n are\tyou?\x7f",
    "only punctuation": "?!... --- ,,, ;;",
    "mixed scripts and numbers": "Le prix est 3,50 € — 価格は350円です. Ok?",
    "one word": "Yes",
    "zero-width and combining": "Cafe\u0301 \u200bzero\u200dwidth\ufeff",
}


def say(engine: Any, text: str, transcript: str = VOICE[0].transcript) -> str:
    voice = (ReferenceClip(VOICE[0].audio, transcript),)
    request = GenerationRequest(text, voice, temperature=0.9, seed=1, max_seconds=0.4)
    try:
        result = speak(engine, request)
    except UserError as exc:
        return f"refused: {exc}"
    assert result.audio.size > 0 and result.frames > 0
    return "ok"


@pytest.mark.parametrize("name", list(TEXTS))
def test_unusual_texts_are_said(fast_engine: Any, name: str) -> None:
    assert say(fast_engine, TEXTS[name]) == "ok"


@pytest.mark.parametrize("text", ["", "   \n\t  ", "\u200b\u200b"])
def test_empty_texts_are_refused_clearly(fast_engine: Any, text: str) -> None:
    assert "nothing to say" in say(fast_engine, text)


def test_twenty_thousand_characters_are_said_in_chunks(fast_engine: Any) -> None:
    sentence = "The quick brown fox jumps over the lazy dog near the quiet river bank. "
    text = (sentence * 300)[:20_000]
    request = GenerationRequest(text, VOICE, temperature=0.9, seed=1, max_seconds=0.16)
    result = speak(fast_engine, request)
    assert len(result.parts) > 60 and all(len(p.text) <= 220 for p in result.parts)
    assert result.frames == sum(p.result.frames for p in result.parts)


def test_a_transcript_that_does_not_match_still_works(fast_engine: Any) -> None:
    """The model cannot know; the take is made (the guidance says to type what is said)."""
    assert say(fast_engine, "Say this.", transcript="Something else entirely was said.") == "ok"


@pytest.mark.parametrize("transcript", ["", "  ", "\x00"])
def test_an_empty_transcript_is_refused_clearly(fast_engine: Any, transcript: str) -> None:
    assert "no transcript" in say(fast_engine, "Say this.", transcript=transcript)
