"""``dialogue`` as a user meets it: a script and a cast in; the mix, stems, subtitles and the
report out; bad scripts and casts as one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from desktop_app import cli
from desktop_app.audio.io import read_metadata
from tests.support.signals import voiced, with_silence

SCRIPT = """# two voices
Ada: Good morning. Did you sleep at all?
Ben: Not a wink.

[pause 1.0]
Ada: Then coffee first.
"""


@pytest.fixture
def clips(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, f0 in (("ada", 210), ("ben", 120)):
        path = tmp_path / f"{name}.wav"
        sf.write(path, with_silence(voiced(3.0, 24_000, f0=f0), 24_000, 0.2, 0.2), 24_000)
        out[name] = path
    return out


def one_line_error(capsys: pytest.CaptureFixture[str], code: int) -> str:
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    return err.strip().splitlines()[-1]


def test_dialogue_writes_mix_stems_subtitles_and_report(
    tiny_model_dir: Path, clips: dict[str, Path], tmp_path: Path
) -> None:
    script = tmp_path / "scene.txt"
    script.write_text(SCRIPT)
    out, stems, srt, report = (
        tmp_path / "mix.flac", tmp_path / "stems", tmp_path / "scene.srt", tmp_path / "r.json"
    )  # fmt: skip
    code = cli.main(
        [
            "dialogue", "--model", str(tiny_model_dir), "--script", str(script),
            "--cast", f"Ada={clips['ada']}|I am Ada, and this is how I sound.",
            "--cast", f"Ben={clips['ben']}|I am Ben, and this is my voice.",
            "--out", str(out), "--stems", str(stems), "--subtitles", str(srt),
            "--report-json", str(report), "--max-seconds", "0.8", "--seed", "9", "--gap", "0.25",
        ]
    )  # fmt: skip
    assert code == 0
    mix, rate = sf.read(out)
    assert rate == 24_000
    assert read_metadata(out)["ai_generated"] == "yes"
    tracks = sorted(stems.iterdir())
    assert [t.name for t in tracks] == ["01-Ada.flac", "02-Ben.flac"]
    for track in tracks:
        assert sf.info(track).frames == mix.size
    data = json.loads(report.read_text())
    lines = data["lines"]
    assert [(x["speaker"], x["seed"], x["speaker_id"]) for x in lines] == [
        ("Ada", 9, 0),
        ("Ben", 10, 1),
        ("Ada", 11, 0),
    ]
    assert [len(x["context"]["lines"]) for x in lines] == [0, 1, 2]
    assert lines[1]["start_s"] == pytest.approx(lines[0]["end_s"] + 0.25, abs=1e-3)
    assert lines[2]["start_s"] == pytest.approx(lines[1]["end_s"] + 0.25 + 0.6 + 1.0, abs=1e-3)
    assert lines[-1]["end_s"] == pytest.approx(mix.size / rate, abs=1e-3)
    cues = srt.read_text().strip().split("\n\n")
    assert len(cues) == 3
    assert cues[1].splitlines()[2] == "Ben: Not a wink."


@pytest.mark.parametrize(
    ("cast", "message"),
    [
        (["Ada=Ada"], r"Ben \(script line 3\) has no voice: add --cast Ben=VOICE"),
        (["Ada=Ada", "Ben=Ben", "Cy=Cy"], r"nobody called 'Cy' speaks"),
        (["Ada=Nobody", "Ben=Nobody"], r"Nobody"),  # a voice not (or no longer) in the library
    ],
)
def test_bad_casts_are_one_line_errors(
    tiny_model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    cast: list[str],
    message: str,
) -> None:
    script = tmp_path / "scene.txt"
    script.write_text(SCRIPT)
    args = ["dialogue", "--model", str(tiny_model_dir), "--script", str(script)]
    args += [f"--cast={c}" for c in cast] + ["--out", str(tmp_path / "mix.wav")]
    import re

    assert re.search(message, one_line_error(capsys, cli.main(args)))
    assert not (tmp_path / "mix.wav").exists()


def test_a_bad_script_names_its_line(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "scene.txt"
    script.write_text("Ada: fine\nthis line has no speaker\n")
    args = ["dialogue", "--script", str(script), "--cast", "Ada=Ada", "--out", "x.wav"]
    error = one_line_error(capsys, cli.main(args))
    assert f"{script} line 2: expected `Name: what they say`" in error


def test_one_line_is_made_again_and_the_others_are_kept(
    tiny_model_dir: Path, clips: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "scene.txt"
    script.write_text(SCRIPT)
    out = tmp_path / "mix.wav"
    base = [
        "dialogue", "--model", str(tiny_model_dir), "--script", str(script),
        "--cast", f"Ada={clips['ada']}|I am Ada, and this is how I sound.",
        "--cast", f"Ben={clips['ben']}|I am Ben, and this is my voice.",
        "--out", str(out), "--max-seconds", "0.8", "--no-check",
    ]  # fmt: skip
    assert "run dialogue without --redo first" in one_line_error(
        capsys, cli.main([*base, "--redo", "2"])
    )
    assert cli.main([*base, "--seed", "9"]) == 0
    lines = out.with_name("mix.lines")
    before = {p.name: np.load(p) for p in lines.glob("*.npy")}  # each line's codes
    assert sorted(before) == ["001.npy", "002.npy", "003.npy"]
    # turn 2 again with its own seed (9 + 1) and the same context: the same line
    assert cli.main([*base, "--redo", "2", "--seed", "10"]) == 0
    np.testing.assert_array_equal(np.load(lines / "002.npy"), before["002.npy"])
    # with another seed only turn 2 changes
    assert cli.main([*base, "--redo", "2", "--seed", "1234"]) == 0
    after = {p.name: np.load(p) for p in lines.glob("*.npy")}
    np.testing.assert_array_equal(after["001.npy"], before["001.npy"])
    np.testing.assert_array_equal(after["003.npy"], before["003.npy"])
    assert not np.array_equal(after["002.npy"], before["002.npy"])
    assert "turn 2 made again, seed 1234" in capsys.readouterr().out
    script.write_text(SCRIPT.replace("Not a wink.", "Like a log."))
    assert "the script changed since" in one_line_error(capsys, cli.main([*base, "--redo", "1"]))
