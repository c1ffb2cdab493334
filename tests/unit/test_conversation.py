"""Conversations: the script and cast, the context budget, speaker ids and positions in the
real prompt, the whole dialogue (greedy determinism, context fed back), mix, stems, subtitles."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desktop_app.conversation import render
from desktop_app.conversation.context import PromptTurn, plan_context
from desktop_app.conversation.script import (
    BLANK_LINE_PAUSE,
    Script,
    Turn,
    parse_cast,
    parse_jsonl,
    parse_script,
)
from desktop_app.conversation.speak import speak_script
from desktop_app.errors import RequestError
from desktop_app.inference import GenerationRequest, ReferenceClip
from tests.support.signals import voiced

RATE = 24_000

# -- the script ------------------------------------------------------------------------------

names = (
    st.text(
        alphabet=st.characters(
            whitelist_categories=("Lu", "Ll", "Lo", "Nd"), whitelist_characters=" .'-"
        ),
        min_size=1,
        max_size=20,
    )
    .map(lambda s: " ".join(s.split()))
    .filter(lambda s: s and s[0] not in ".'-")
)
texts = (
    st.text(
        alphabet=st.characters(
            blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="\r\n"
        ),
        min_size=1,
        max_size=60,
    )
    .map(str.strip)
    .filter(bool)
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(names, texts, st.sampled_from(["", "blank", "pause", "comment"])),
        min_size=1,
        max_size=12,
    )
)
def test_any_script_parses_back_to_its_turns(rows: list[tuple[str, str, str]]) -> None:
    lines: list[str] = []
    expected: list[tuple[str, str, float]] = []
    for name, text, after in rows:
        lines.append(f"{name}: {text}")
        pause = 0.0
        if after == "blank":
            lines.append("")
            pause = BLANK_LINE_PAUSE
        elif after == "pause":
            lines.append("[pause 1.25]")
            pause = 1.25
        elif after == "comment":
            lines.append("# stage direction: a door closes")
        expected.append((name, text, pause))
    script = parse_script("\n".join(lines) + "\n")
    assert [(t.speaker, t.text, t.pause_after) for t in script.turns] == [
        (n, t, pytest.approx(p)) for n, t, p in expected
    ]
    assert script.speakers == tuple(dict.fromkeys(n for n, _, _ in expected))


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("Ada: hi\njust words here\n", r"line 2: expected `Name: what they say`"),
        ("Ada: hi\nBen:   \n", r"line 2: Ben says nothing"),
        ("Ada: hi\n[pause 99]\n", r"line 2: a pause of 99 s"),
        ("Ada: hi\n[wait 2]\n", r"line 2: .* is not a pause"),
        ("# only a comment\n\n", r"holds no turn"),
    ],
)
def test_bad_scripts_name_the_line(script: str, message: str) -> None:
    with pytest.raises(RequestError, match=message):
        parse_script(script, "s.txt")


def test_jsonl_scripts_and_their_errors() -> None:
    script = parse_jsonl(
        '{"speaker": "Ada", "text": "Hello.", "pause_after": 0.5}\n\n'
        '{"speaker": "Ben", "text": "Hi."}\n'
    )
    assert [(t.line, t.speaker, t.pause_after) for t in script.turns] == [
        (1, "Ada", 0.5),
        (3, "Ben", 0.0),
    ]
    with pytest.raises(RequestError, match=r"line 1: not a JSON object"):
        parse_jsonl('{"speaker": "Ada"}')


def test_the_cast_covers_every_speaker(tmp_path: Path) -> None:
    script = parse_script("Ada: one\nBen: two\nAda: three\n")
    clip = tmp_path / "ben.wav"
    clip.write_bytes(b"")
    cast = parse_cast(["Ada=Ada (studio)", f"Ben={clip}|What Ben says."], script)
    assert cast["Ada"].voice == "Ada (studio)"
    assert (cast["Ben"].clip, cast["Ben"].transcript) == (clip, "What Ben says.")
    with pytest.raises(RequestError, match=r"Ben \(script line 2\) has no voice"):
        parse_cast(["Ada=Ada"], script)
    with pytest.raises(RequestError, match=r"nobody called 'Cy' speaks"):
        parse_cast(["Ada=Ada", "Ben=Ben", "Cy=Cy"], script)


# -- the context budget ----------------------------------------------------------------------


def test_the_newest_lines_that_fit_are_kept_and_the_references_stay() -> None:
    refs = [PromptTurn("reference", "Ada", 500), PromptTurn("reference", "Ben", 400)]
    history = [PromptTurn("line", "Ada" if i % 2 else "Ben", 300, i + 1) for i in range(6)]
    plan = plan_context(refs, history[:3], text_positions=20, frames=125, window=2048)
    # 2048 - 900 - 20 - 125 = 1003 positions left: 3 lines (900) fit
    assert ([t.line for t in plan.history], plan.slid) == ([1, 2, 3], False)
    assert plan.positions == 900 + 900 + 20
    # 6 lines do not: the window slides to three quarters of the room (752): the 2 newest
    plan = plan_context(refs, history, text_positions=20, frames=125, window=2048)
    assert ([t.line for t in plan.history], plan.dropped, plan.slid) == ([5, 6], 4, True)
    # and goes on from there while the lines fit: line 7 joins, nothing is dropped
    more = [*history, PromptTurn("line", "Ben", 300, 7)]
    after = plan_context(refs, more, 20, 125, 2048, keep_from=plan.first_kept)
    assert ([t.line for t in after.history], after.slid) == ([5, 6, 7], False)
    capped = plan_context(refs, history, 20, 125, 2048, context_lines=2)
    assert [t.line for t in capped.history] == [5, 6]
    assert plan_context(refs, history, 20, 125, 2048, context_lines=0).history == ()
    with pytest.raises(RequestError, match=r"about 76\.1 s of each voice \(Ada, Ben\) fit"):
        plan_context([*refs, PromptTurn("reference", "Ben", 1200)], [], 20, 125, 2048)


@pytest.fixture(scope="module")
def fast(tiny_model_dir: Path) -> Any:
    from desktop_app.inference.fast_engine import FastEngine

    return FastEngine(tiny_model_dir, "cpu")


def test_positions_and_speaker_ids_are_those_of_the_real_prompt(fast: Any) -> None:
    a = ReferenceClip(voiced(2.3, RATE), "Ada speaks first.", speaker=0)
    b = ReferenceClip(voiced(1.7, RATE), "And then Ben.", speaker=1)
    request = GenerationRequest("Ben's new line.", references=(a, b), speaker=1)
    inputs = fast.reference.prepare_inputs(request)
    counted = (
        fast.turn_positions(0, a.transcript, a.audio.size)
        + fast.turn_positions(1, b.transcript, b.audio.size)
        + fast.turn_positions(1, request.text, 0)
    )
    assert counted == inputs["input_ids"].shape[-1]
    text = fast.reference.processor.tokenizer.decode(inputs["input_ids"][0])
    assert re.findall(r"\[(\d)\]", text) == ["0", "1", "1"]


# -- a whole dialogue ------------------------------------------------------------------------


def test_a_greedy_dialogue_is_deterministic_and_feeds_its_lines_back(fast: Any) -> None:
    script = parse_script("Ada: Good morning.\nBen: Morning.\nAda: Coffee?\nBen: Please.\n")
    voices = {
        "Ada": [ReferenceClip(voiced(2.0, RATE, f0=200), "I am Ada.")],
        "Ben": [ReferenceClip(voiced(2.0, RATE, f0=110), "I am Ben.")],
    }
    settings_ = GenerationRequest("-", temperature=0, max_seconds=0.8, seed=5)
    first = speak_script(fast, script, voices, settings_)
    again = speak_script(fast, script, voices, settings_)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.result.codes, b.result.codes)
    assert [line.speaker_id for line in first] == [0, 1, 0, 1]
    assert [line.result.seed for line in first] == [5, 6, 7, 8]
    last = first[-1]
    assert [t.line for t in last.context.history] == [1, 2, 3]
    past = last.request.references[2:]  # after the two reference turns
    assert [(c.transcript, c.speaker) for c in past] == [
        ("Good morning.", 0),
        ("Morning.", 1),
        ("Coffee?", 0),
    ]
    np.testing.assert_array_equal(past[0].audio, first[0].result.audio)
    # a line made again alone, against the others, is the same line
    redo = speak_script(fast, script, voices, settings_, lines=[2], made=first[:2])
    np.testing.assert_array_equal(redo[2].result.codes, first[2].result.codes)
    # the context-lines cap keeps that many
    capped = speak_script(fast, script, voices, settings_, context_lines=1)
    assert [len(line.context.history) for line in capped] == [0, 1, 1, 1]


def spoken(texts: list[tuple[str, float, float]]) -> list[Any]:
    """Stand-in lines for the renderer: (speaker, seconds, pause after)."""
    from desktop_app.conversation.speak import SpokenLine
    from desktop_app.inference.engine import GenerationResult, GenerationTimings

    out = []
    for i, (speaker, seconds, pause) in enumerate(texts):
        audio = np.full(round(seconds * RATE), 0.1 * (i + 1), np.float32)
        result = GenerationResult(
            audio, np.zeros((1, 4), np.int64), 1, "end-frame", i,
            GenerationTimings(0, 0, 0, 0), "cpu", "float32", "test",
        )  # fmt: skip
        turn = Turn(i + 1, speaker, f"line {i + 1}", pause)
        out.append(SpokenLine(i, turn, 0, GenerationRequest("x"), result, None, None))  # type: ignore[arg-type]
    return out


def test_mix_stems_and_subtitles_line_up() -> None:
    lines = spoken([("Ada", 1.0, 0.0), ("Ben", 0.5, 1.0), ("Ada", 0.25, 0.0)])
    spans = render.place(lines, RATE, gap=0.3, lead_in=0.5)
    assert [(s.start / RATE, s.end / RATE) for s in spans] == [
        (0.5, 1.5),
        (1.8, 2.3),
        (3.6, 3.85),
    ]
    mix = render.mix(lines, spans)
    tracks = render.stems(lines, spans)
    assert set(tracks) == {"Ada", "Ben"}
    assert all(track.size == mix.size for track in tracks.values())
    np.testing.assert_allclose(tracks["Ada"] + tracks["Ben"], mix)
    assert not tracks["Ben"][spans[0].start : spans[0].end].any()  # silent while Ada speaks
    srt = render.subtitles(lines, spans, RATE, "srt")
    assert srt.splitlines()[:3] == ["1", "00:00:00,500 --> 00:00:01,500", "Ada: line 1"]
    vtt = render.subtitles(lines, spans, RATE, "vtt")
    assert vtt.startswith("WEBVTT\n\n00:00:00.500 --> 00:00:01.500\nAda: line 1")
    assert "00:00:03.600 --> 00:00:03.850\nAda: line 3" in vtt


def test_twelve_speakers_long_lines_and_odd_names_parse() -> None:
    names_ = [f"Spieler {i}" for i in range(10)] + ["Dr. O'Brien-Smith", "Zoë 李"]
    script_ = "\n".join(f"{name}: {'word ' * (1000 if i == 3 else 3)}" for i, name in
                        enumerate(names_))  # fmt: skip
    parsed = parse_script(script_)
    assert parsed.speakers == tuple(names_)
    assert len(parsed.turns[3].text) == len("word " * 1000) - 1
    big = "\n".join(f"{'Ada' if i % 2 else 'Ben'}: line number {i}." for i in range(1000))
    assert len(parse_script(big).turns) == 1000
    assert isinstance(parsed, Script)


def test_a_coherent_long_text_gives_each_chunk_the_chunks_before(fast: Any) -> None:
    from desktop_app.conversation.speak import speak_coherent
    from desktop_app.inference.long_text import chunk_requests, speak

    text = (
        "The first sentence of this text is long enough to be a chunk of its own, as you see. "
        "The second sentence is another chunk, said by the same voice with the next seed, too."
    )
    voice = ReferenceClip(voiced(2.0, RATE), "This is the voice.")
    request = GenerationRequest(text, references=(voice,), temperature=0, max_seconds=0.8, seed=4)
    calls: list[GenerationRequest] = []
    real = fast.generate

    def recording(r: GenerationRequest, *a: Any, **k: Any) -> Any:
        calls.append(r)
        return real(r, *a, **k)

    fast.generate = recording
    try:
        pieces: list[np.ndarray] = []
        made = speak_coherent(fast, request, on_audio=pieces.append)
    finally:
        del fast.generate
    chunks = chunk_requests(request)[0]
    assert [p.text for p in made.result.parts] == [c.text for c in chunks]
    assert [p.result.seed for p in made.result.parts] == [4, 5]
    assert [len(c.references) for c in calls] == [1, 2]  # chunk 2 hears chunk 1
    np.testing.assert_array_equal(calls[1].references[1].audio, made.result.parts[0].result.audio)
    np.testing.assert_array_equal(np.concatenate(pieces), made.result.audio)  # streamed = take
    batched = speak(fast, request)  # the batched way: chunk 1 alike, chunk 2 without context
    np.testing.assert_array_equal(batched.parts[0].result.codes, made.result.parts[0].result.codes)
    assert made.check is None


def test_the_conversation_cache_is_extended_not_prefilled_again(fast: Any) -> None:
    """Line k+1's prompt is line k's prompt, line k's frames and the new text: only the new
    positions are prefilled, and the next line's codes are those of a fresh prefill of the same
    prompt (fp32, greedy)."""
    script = parse_script(
        "Ada: Good morning to you.\nBen: And to you.\nAda: Coffee, then?\nBen: Yes, please.\n"
    )
    voices = {
        "Ada": [ReferenceClip(voiced(2.0, RATE, f0=200), "I am Ada.")],
        "Ben": [ReferenceClip(voiced(2.0, RATE, f0=110), "I am Ben.")],
    }
    greedy = GenerationRequest("-", temperature=0, max_seconds=0.8, seed=2)
    fast.prompts.forget()
    prefilled: list[int] = []
    lines = speak_script(
        fast,
        script,
        voices,
        greedy,
        on_line=lambda _: prefilled.append(fast.prompts.prefilled_positions),
    )
    assert prefilled[0] == lines[0].context.positions  # the first line: its whole prompt
    for k, line in enumerate(lines[1:], start=1):
        assert line.context.positions > lines[k - 1].context.positions + 10  # the prompt grows
        new_text = fast.turn_positions(line.speaker_id, line.turn.text, 0)
        assert prefilled[k] <= new_text + 2  # the previous line's end and the new text only
    for line in lines[1:]:
        fast.prompts.forget()
        fresh = fast.generate(line.request)
        assert fast.prompts.prefilled_positions == line.context.positions
        np.testing.assert_array_equal(fresh.codes, line.result.codes)


def test_a_conversation_kept_in_the_library_reopens_and_a_line_is_made_again_alike(
    fast: Any, tmp_path: Path
) -> None:
    from desktop_app.conversation import saved
    from desktop_app.library.store import Library

    text = "Ada: Good morning.\nBen: Morning.\n\nAda: Coffee?\n"
    script = parse_script(text)
    library = Library(tmp_path / "lib")
    for name, f0 in (("Ada", 200), ("Ben", 110)):
        library.voices.add(name, [(voiced(2.0, RATE, f0=f0), f"I am {name}.", "imported")])
    voices = {
        name: [
            ReferenceClip(clip.audio(), clip.transcript) for clip in library.voices.get(name).clips
        ]
        for name in ("Ada", "Ben")
    }
    settings_ = GenerationRequest("-", temperature=0, max_seconds=0.8, seed=11)
    cast = {"Ada": "Ada", "Ben": "Ben"}
    saved.save_script(library, "Breakfast", text, script, cast, 11)
    first = speak_script(
        fast,
        script,
        voices,
        settings_,
        on_line=lambda line: saved.keep_line(
            library, "Breakfast", line, voice=cast[line.turn.speaker], model="tiny"
        ),
    )
    library.close()

    reopened = saved.reopen(Library(tmp_path / "lib").conversations.get("Breakfast"))
    assert (reopened.record.script, reopened.record.cast, reopened.record.seed) == (text, cast, 11)
    assert reopened.script == script and reopened.lost == 0
    for made, back in zip(first, reopened.lines, strict=True):
        np.testing.assert_array_equal(made.result.codes, back.result.codes)
        np.testing.assert_allclose(made.result.audio, back.result.audio, atol=1e-6)
        assert (back.index, back.speaker_id, back.result.seed) == (
            made.index,
            made.speaker_id,
            made.result.seed,
        )
    takes = reopened.record.lines[0].take
    assert (takes.source, takes.voice, takes.text) == ("conversation", "Ada", "Good morning.")
    # the last line made again on the reopened lines is the line made the first time
    redo = speak_script(fast, script, voices, settings_, lines=[2], made=reopened.lines[:2])
    np.testing.assert_array_equal(redo[2].result.codes, first[2].result.codes)

    # a changed line is let go (its take stays in the history); the others stay
    library = Library(tmp_path / "lib")
    changed = text.replace("Morning.", "Hello there.")
    record = saved.save_script(library, "Breakfast", changed, parse_script(changed), cast, 11)
    assert [line.index for line in record.lines] == [0, 2]
    assert len(library.takes.list()) == 3
    # a line whose take is deleted from the history goes with it
    library.takes.delete(record.lines[0].take.id)
    assert [line.index for line in library.conversations.get("Breakfast").lines] == [2]
    library.conversations.remove("Breakfast")
    assert library.conversations.all() == [] and len(library.takes.list()) == 2
