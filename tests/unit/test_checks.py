"""Listening back: scoring text, voice, ending; best of N; transcription with the tiny Whisper."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from desktop_app.checks.best_of import make_best_of
from desktop_app.checks.ending import FADE_SECONDS, KEEP_AFTER_SPEECH, clipped_spots, examine
from desktop_app.checks.listen import NoSpeechError, transcribe_audio, trim_to_words
from desktop_app.checks.take_check import BAD, CHECK, GOOD, TakeCheck, TakeChecker, rank_key
from desktop_app.checks.text_match import compare_text, describe_differences
from desktop_app.inference import GenerationRequest, GenerationResult, ReferenceClip
from desktop_app.inference.engine import GenerationTimings
from desktop_app.inference.random_checkpoint import WHISPER_SAYS
from tests.support.speech import speech_24k

RATE = 24_000


# -- text ------------------------------------------------------------------------------------


def test_case_punctuation_and_spelled_numbers_are_no_errors() -> None:
    match = compare_text(
        "The shop opens at nine, in the MORNING!", "the shop opens at 9 in the morning"
    )
    assert (match.wer, match.cer, match.errors) == (0.0, 0.0, 0)
    assert describe_differences(match) == []


def test_skipped_changed_and_added_words_are_named() -> None:
    match = compare_text("The shop opens at nine in the morning.", "Well, the shop in the evening.")
    # normalised: "the shop opens at 9 in the morning" (8 words) vs "well the shop in the evening"
    assert match.skipped == ("opens at 9",)
    assert match.changed == (("morning", "evening"),)
    assert match.added == ("well",)
    assert match.errors == 5
    assert match.wer == pytest.approx(5 / 8)
    assert describe_differences(match) == [
        "skipped: 'opens at 9'",
        "said 'evening' for 'morning'",
        "added: 'well'",
    ]


def test_character_error_rate_counts_characters() -> None:
    match = compare_text("the cat", "the hat")
    assert match.wer == pytest.approx(0.5)
    assert match.cer == pytest.approx(1 / 7)


def test_nothing_heard_is_every_word_skipped() -> None:
    match = compare_text("Red, green and blue.", "")
    assert (match.wer, match.errors, match.skipped) == (1.0, 4, ("red green and blue",))


# -- voice -----------------------------------------------------------------------------------


def test_a_clip_is_its_own_voice(tmp_path: Path, speaker_encoder: Any) -> None:
    from desktop_app.audio import dsp
    from desktop_app.inference.speaker import similarity

    clip = dsp.resample(speech_24k(tmp_path, "A clip that is compared with itself."), RATE, 16_000)
    assert similarity(speaker_encoder.embed(clip), speaker_encoder.embed(clip)) == pytest.approx(
        1.0, abs=1e-5
    )
    other = dsp.resample(speech_24k(tmp_path, "Someone else entirely.", "en+f3"), RATE, 16_000)
    assert similarity(speaker_encoder.embed(clip), speaker_encoder.embed(other)) < 1.0 - 1e-4


# -- ending, pauses, clipping ----------------------------------------------------------------


def test_a_known_tail_of_silence_is_trimmed_with_a_fade(tmp_path: Path) -> None:
    speech = speech_24k(tmp_path, "The tail after this sentence is cut.")
    take = np.concatenate([speech, np.zeros(3 * RATE, dtype=np.float32)])
    trimmed, ending = examine(take, RATE)
    assert ending.speech_end is not None
    assert abs(ending.speech_end - speech.size / RATE) < 0.35
    expected = round((ending.speech_end + KEEP_AFTER_SPEECH) * RATE) + int(FADE_SECONDS * RATE)
    assert trimmed.size == expected
    assert ending.trimmed_s == pytest.approx((take.size - trimmed.size) / RATE)
    assert ending.trimmed_s > 2.5
    np.testing.assert_array_equal(trimmed[: speech.size - RATE], take[: speech.size - RATE])
    assert trimmed[-1] == 0.0  # faded to nothing


def test_a_tail_of_noise_is_trimmed_too(tmp_path: Path) -> None:
    speech = speech_24k(tmp_path, "Noise follows this sentence.")
    noise = np.random.default_rng(0).normal(0, 0.003, 3 * RATE).astype(np.float32)
    trimmed, ending = examine(np.concatenate([speech, noise]), RATE)
    assert ending.trimmed_s > 2.5
    assert trimmed.size < speech.size + RATE


def test_long_pauses_and_clipping_are_found(tmp_path: Path) -> None:
    a = speech_24k(tmp_path, "First part.")
    b = speech_24k(tmp_path, "Second part after a long wait.")
    take = np.concatenate([a, np.zeros(int(2.5 * RATE), dtype=np.float32), b])
    _, ending = examine(take, RATE)
    assert len(ending.long_pauses) == 1
    assert ending.long_pauses[0].seconds > 2.0
    hot = np.zeros(RATE, dtype=np.float32)
    hot[100:110] = 1.0  # one run of 10
    hot[500:502] = -1.0  # two samples: not a clipped spot
    hot[900:905] = -1.0
    assert clipped_spots(hot) == 2


# -- the whole check ---------------------------------------------------------------------------


def made(audio: np.ndarray, stopped_by: str = "end-frame") -> GenerationResult:
    timings = GenerationTimings(0.0, 0.0, 0.0, 0.0)
    return GenerationResult(
        audio, np.zeros((1, 4), np.int64), 1, stopped_by, 1, timings, "cpu", "float32", "test"
    )


@pytest.fixture(scope="module")
def voice_clip(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    return speech_24k(tmp_path_factory.mktemp("voice"), "This is the voice we want to hear.")


def test_a_take_that_says_its_text_in_its_voice_is_good(
    voice_clip: np.ndarray, recognizer: Any, speaker_encoder: Any
) -> None:
    take = np.concatenate([voice_clip, np.zeros(2 * RATE, dtype=np.float32)])
    request = GenerationRequest(WHISPER_SAYS, references=(ReferenceClip(voice_clip, "x"),))
    checked = TakeChecker(recognizer, speaker_encoder).check(request, made(take))
    check = checked.check
    assert check.verdict == GOOD, check.reasons
    assert (check.wer, check.cer, check.word_errors) == (0.0, 0.0, 0)
    assert check.similarity == pytest.approx(1.0, abs=0.02)  # the reference itself, trimmed
    assert check.ended
    assert check.trimmed_s > 1.5
    assert checked.result.audio.size == take.size - round(check.trimmed_s * RATE)
    np.testing.assert_array_equal(checked.result.codes, made(take).codes)  # codes untouched
    assert TakeCheck.from_json(check.as_json()) == dataclasses.replace(
        check, similarity=round(check.similarity, 4), trimmed_s=round(check.trimmed_s, 3)
    )


def test_a_changed_word_and_a_missing_end_are_reasons(
    voice_clip: np.ndarray, recognizer: Any
) -> None:
    text = WHISPER_SAYS.replace("dog", "cat")
    check = (
        TakeChecker(recognizer)
        .check(GenerationRequest(text, max_seconds=4), made(voice_clip, "max-length"))
        .check
    )
    assert check.verdict == CHECK
    assert check.reasons == ("said 'dog' for 'cat'", "ran to the 4 s limit without ending")
    assert check.similarity is None
    assert check.not_checked == ("voice (no speaker model)",)


def test_a_take_with_no_speech_is_bad(recognizer: Any) -> None:
    check = (
        TakeChecker(recognizer)
        .check(GenerationRequest("Hello there."), made(np.zeros(2 * RATE, dtype=np.float32)))
        .check
    )
    assert check.verdict == BAD
    assert check.reasons[0] == "no speech was heard in the take"


def test_best_first_fewest_errors_then_voice_then_ending() -> None:
    def c(errors: int, voice: float, ended: bool) -> TakeCheck:
        return TakeCheck(GOOD, (), word_errors=errors, similarity=voice, ended=ended)

    checks = [c(2, 0.99, True), c(0, 0.70, False), c(0, 0.90, False), c(0, 0.90, True)]
    ranked = sorted(checks, key=rank_key)
    assert ranked == [checks[3], checks[2], checks[1], checks[0]]


# -- transcription ---------------------------------------------------------------------------


def test_transcribe_gives_the_text_and_word_times(tmp_path: Path, recognizer: Any) -> None:
    audio = speech_24k(tmp_path, "Any speech at all.")
    heard = transcribe_audio(recognizer, audio, RATE)
    assert heard.text == WHISPER_SAYS.strip()
    assert [w.word for w in heard.words] == WHISPER_SAYS.split()
    starts = [w.start for w in heard.words]
    assert starts == sorted(starts)
    assert all(0 <= w.start <= w.end <= audio.size / RATE + 0.5 for w in heard.words)


def test_long_audio_is_heard_window_by_window(tmp_path: Path, recognizer: Any) -> None:
    line = speech_24k(tmp_path, "One line of a long recording, then a pause.")
    pause = np.zeros(RATE, dtype=np.float32)
    audio = np.concatenate([np.concatenate([line, pause])] * 20)  # about 70 s
    shares: list[float] = []
    heard = transcribe_audio(recognizer, audio, RATE, on_progress=shares.append)
    windows = heard.text.count(WHISPER_SAYS.strip())
    assert windows >= 3  # 70 s is at least three 28 s windows, each heard
    assert heard.words[-1].start > 40.0  # times count from the start of the file
    assert shares[-1] == pytest.approx(1.0)
    assert shares == sorted(shares)
    assert len(shares) <= 101 + windows  # whole percents of the detector, then one per window


def test_silence_has_no_speech_to_transcribe(recognizer: Any) -> None:
    with pytest.raises(NoSpeechError, match="no speech was heard in the clip"):
        transcribe_audio(recognizer, np.zeros(3 * RATE, np.float32), RATE, what="the clip")


def test_a_cut_inside_a_word_is_widened_to_the_whole_word(tmp_path: Path, recognizer: Any) -> None:
    audio = speech_24k(tmp_path, "Cutting a clip between words.")
    heard = transcribe_audio(recognizer, audio, RATE)
    word = next(w for w in heard.words if w.end - w.start > 0.05)
    inside = (word.start + word.end) / 2
    start, end = trim_to_words(audio, RATE, heard, inside, audio.size / RATE)
    assert start == int(word.start * RATE)
    assert end == audio.size


# -- best of N -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fast(tiny_model_dir: Path) -> Any:
    from desktop_app.inference.fast_engine import FastEngine

    return FastEngine(tiny_model_dir, "cpu")


def test_best_of_candidates_are_the_takes_made_alone(fast: Any, recognizer: Any) -> None:
    request = GenerationRequest("Three candidates of one line.", seed=11, max_seconds=1.2)
    best = make_best_of(fast, request, 3, TakeChecker(recognizer))
    (chunk,) = best.chunks
    assert [c.seed for c in chunk.candidates] == [11, 12, 13]
    for candidate in chunk.candidates:
        alone = fast.generate(dataclasses.replace(request, seed=candidate.seed))
        np.testing.assert_array_equal(candidate.result.codes, alone.codes)
    assert best.result.seed == chunk.best.seed
    assert "batch of 3" in best.result.engine


def test_a_long_text_is_chosen_chunk_by_chunk(fast: Any, recognizer: Any) -> None:
    text = (
        "The first sentence of this text is long enough to be a chunk of its own, as you see. "
        "The second sentence is another chunk, said by the same voice with the next seed, too."
    )
    request = GenerationRequest(text, seed=3, max_seconds=0.8)

    class BySeed(TakeChecker):
        """Ranks the chunk with seed 4 first: candidate 1 of chunk 0, candidate 0 of chunk 1 (a
        scripted stand-in for the verdicts, which random weights cannot earn)."""

        def check(self, request: GenerationRequest, result: GenerationResult, *a: Any, **k: Any):
            checked = super().check(request, result)
            errors = 0 if result.seed == 4 else 3
            return dataclasses.replace(
                checked, check=dataclasses.replace(checked.check, word_errors=errors)
            )

    best = make_best_of(fast, request, 2, BySeed(recognizer))
    assert len(best.chunks) == 2
    assert [c.seed for c in best.chunks[0].candidates] == [3, 4]
    assert [c.seed for c in best.chunks[1].candidates] == [4, 5]
    assert (best.chunks[0].chosen, best.chunks[1].chosen) == (1, 0)
    from desktop_app.inference.long_text import speak

    for j in range(2):  # candidate j is the long take with seed 3 + j, chunk for chunk
        alone = speak(fast, dataclasses.replace(request, seed=3 + j))
        for i, part in enumerate(alone.parts):
            np.testing.assert_array_equal(
                best.chunks[i].candidates[j].result.codes, part.result.codes
            )
    assert [p.result.seed for p in best.result.parts] == [4, 4]


def test_the_speech_detector_leaves_torchs_threads_alone() -> None:
    """silero-vad's import sets torch to one thread for the whole process: CSM on a 2-core CPU
    would run at half speed after the first check. A fresh process, so the import is real."""
    import subprocess
    import sys

    code = (
        "import numpy as np, torch\n"
        "torch.set_num_threads(2)\n"
        "from desktop_app.audio.speech import speech_spans\n"
        "speech_spans(np.zeros(16000, np.float32))\n"
        "print(torch.get_num_threads())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "2"
