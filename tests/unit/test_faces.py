"""Every face makes exactly the codes the engine makes for the same request (greedy, fp32, the
tiny checkpoint): ``clone``, ``batch`` and the API's service against the engine called
directly, ``dialogue`` against the conversation core called directly (the window's worker:
tests/gui/test_generation_controller.py). Kept through the move of the faces onto
``desktop_app.session`` (issue 26): a face that rebuilt its request, its voice's clips or its
model differently would fail here."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from desktop_app import cli
from desktop_app.inference import GenerationRequest, load_engine
from desktop_app.library.store import Library
from tests.support.signals import voiced

SEED = 7
SECONDS = 0.8
TEXTS = ("Hello there.", "A second line, said alone.")


@pytest.fixture
def ada(app_home: Path) -> tuple[object, ...]:
    """The library voice Ada (its clip prepared as `voices add` does), and its clips."""
    from desktop_app.audio.reference import prepare_reference
    from desktop_app.session.voices import voice_clips

    with Library() as library:
        voice = library.voices.add(
            "Ada", [(prepare_reference(voiced(3.0, 24_000), 24_000), "I am Ada.", "imported")]
        )
        return voice_clips(voice)


def engine_codes(model: Path, clips: tuple[object, ...], text: str, seed: int) -> np.ndarray:
    engine = load_engine("fast", model, "cpu", "auto")  # every face's default: int8 on the CPU
    request = GenerationRequest(
        text,
        references=clips,
        temperature=0.0,
        seed=seed,
        max_seconds=SECONDS,  # type: ignore[arg-type]
    )
    return np.asarray(engine.generate(request).codes, dtype=np.int64)


def sha(codes: np.ndarray) -> str:
    codes = np.ascontiguousarray(codes, dtype=np.int64)
    return hashlib.sha256(codes.tobytes() + str(codes.shape).encode()).hexdigest()


GREEDY = ["--temperature", "0", "--seed", str(SEED), "--max-seconds", str(SECONDS)]


def test_clone_makes_the_engines_codes(
    tiny_model_dir: Path, ada: tuple[object, ...], tmp_path: Path
) -> None:
    codes = tmp_path / "codes.npy"
    args = ["clone", "--model", str(tiny_model_dir), "--voice", "Ada", "--text", TEXTS[0],
            "--out", str(tmp_path / "take.wav"), "--codes-out", str(codes), *GREEDY]  # fmt: skip
    assert cli.main(args) == 0
    np.testing.assert_array_equal(np.load(codes), engine_codes(tiny_model_dir, ada, TEXTS[0], SEED))


def test_batch_makes_the_engines_codes_for_every_line(
    tiny_model_dir: Path, ada: tuple[object, ...], tmp_path: Path
) -> None:
    lines = tmp_path / "lines.txt"
    lines.write_text("\n".join(TEXTS) + "\n")
    out = tmp_path / "out"
    args = ["batch", "--model", str(tiny_model_dir), "--voice", "Ada", "--input", str(lines),
            "--out-dir", str(out), *GREEDY]  # fmt: skip
    assert cli.main(args) == 0
    made = [json.loads(line) for line in (out / "batch-manifest.jsonl").read_text().splitlines()]
    assert len(made) == len(TEXTS)
    for entry in made:
        expected = engine_codes(tiny_model_dir, ada, entry["text"], int(entry["seed"]))
        assert entry["codes_sha256"] == sha(expected), entry["text"]


def test_the_apis_service_makes_the_engines_codes(
    tiny_model_dir: Path, ada: tuple[object, ...], app_home: Path
) -> None:
    from desktop_app.api.service import SpeechService
    from desktop_app.library.store import library_dir
    from desktop_app.session.jobs import JobQueue
    from desktop_app.session.models import ModelSpec, load_models

    models = load_models(ModelSpec(str(tiny_model_dir), device="cpu"))
    queue = JobQueue(2)
    service = SpeechService(queue, lambda: models, library_dir())
    request = GenerationRequest(
        TEXTS[0],
        temperature=0.0,
        seed=SEED,
        max_seconds=SECONDS,
        references=service.voice_clips("Ada"),
    )
    spoken = service.speak(request, "Ada").future.result(timeout=120)
    queue.close()
    np.testing.assert_array_equal(
        spoken.result.codes, engine_codes(tiny_model_dir, ada, TEXTS[0], SEED)
    )
    assert spoken.record is not None and spoken.record.source == "api"


def test_dialogue_makes_the_conversations_codes_for_every_line(
    tiny_model_dir: Path, ada: tuple[object, ...], tmp_path: Path
) -> None:
    """The CLI's `dialogue` against the conversation core called directly (each line's prompt
    holds the lines before it, so the engine alone is not the reference here)."""
    from desktop_app.conversation.script import parse_script
    from desktop_app.conversation.speak import speak_script

    text = "".join(f"Ada: {line}\n" for line in TEXTS)
    script = tmp_path / "script.txt"
    script.write_text(text)
    report = tmp_path / "report.json"
    args = ["dialogue", "--model", str(tiny_model_dir), "--script", str(script), "--cast",
            "Ada=Ada", "--out", str(tmp_path / "mix.wav"), "--report-json", str(report),
            "--no-check", *GREEDY]  # fmt: skip
    assert cli.main(args) == 0
    made = json.loads(report.read_text())["lines"]
    settings = GenerationRequest("-", temperature=0.0, seed=SEED, max_seconds=SECONDS)
    engine = load_engine("fast", tiny_model_dir, "cpu")
    lines = speak_script(engine, parse_script(text), {"Ada": ada}, settings)  # type: ignore[dict-item]
    assert [entry["codes_sha256"] for entry in made] == [line.result.codes_sha256 for line in lines]
    assert len(set(entry["codes_sha256"] for entry in made)) == len(TEXTS)
