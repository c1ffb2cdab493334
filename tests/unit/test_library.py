"""The voice library and take history: SQLite schema, migrations, refusal, concurrency."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from desktop_app.library.database import LibraryError
from desktop_app.library.schema import MIGRATIONS, SCHEMA_VERSION
from desktop_app.library.store import Library
from tests.conftest import REPO
from tests.support.signals import voiced

TIMINGS = {"prefill_s": 0.1, "per_frame_s": 0.01, "total_s": 1.0, "real_time_factor": 0.5}


def add_take(library: Library, text: str, voice: str | None = "Ada", seed: int = 1) -> int:
    return library.takes.add(
        text=text,
        audio=voiced(1.0, 24_000, seed=seed),
        settings={"temperature": 0.9},
        seed=seed,
        model="sesame/csm-1b",
        engine="fast",
        device="cpu",
        timings=TIMINGS,
        voice=voice,
    ).id


def test_voices_clips_and_takes_round_trip(tmp_path: Path) -> None:
    library = Library(tmp_path / "lib")
    clip = voiced(3.0, 24_000)
    voice = library.voices.add(
        "Ada", [(clip, "Hello there.", "recorded")], notes="me", consent_confirmed=True
    )
    assert voice.consent_confirmed and voice.notes == "me"
    assert voice.clips[0].duration == pytest.approx(3.0)
    np.testing.assert_array_equal(voice.clips[0].audio(), clip)
    assert voice.clips[0].file.name.startswith(voice.clips[0].file.parent.name)  # hashed name
    first = add_take(library, "Good morning")
    add_take(library, "Good night", seed=2)
    add_take(library, "Unrelated", voice=None, seed=3)
    assert [t.text for t in library.takes.list(voice="Ada")] == ["Good night", "Good morning"]
    assert [t.text for t in library.takes.list(search="good m")] == ["Good morning"]
    assert [t.text for t in library.takes.list(search="100%")] == []
    library.takes.set_favourite(first, True)
    assert library.takes.get(first).favourite
    library.voices.rename("Ada", "Ada L.")
    assert library.takes.get(first).voice == "Ada L."
    library.voices.remove("Ada L.")
    assert library.voices.all() == []
    assert library.takes.get(first).voice is None  # takes outlive their voice
    assert library.integrity_check() == "ok"
    with pytest.raises(LibraryError, match="no voice called 'Bob'"):
        library.voices.get("Bob")


def test_bad_voices_are_refused(tmp_path: Path) -> None:
    library = Library(tmp_path / "lib")
    library.voices.add("Ada", [(voiced(3.0, 24_000), "Hi.", "imported")])
    with pytest.raises(LibraryError, match="already exists"):
        library.voices.add("Ada", [(voiced(3.0, 24_000), "Hi.", "imported")])
    with pytest.raises(LibraryError, match="no transcript"):
        library.voices.add("Bea", [(voiced(3.0, 24_000), "  ", "imported")])
    with pytest.raises(LibraryError, match="needs a name"):
        library.voices.add(" ", [(voiced(3.0, 24_000), "Hi.", "imported")])


@pytest.mark.parametrize("start", range(SCHEMA_VERSION))
def test_migrates_from_every_earlier_version(tmp_path: Path, start: int) -> None:
    folder = tmp_path / "lib"
    folder.mkdir()
    db = sqlite3.connect(folder / "library.sqlite3")
    for script in MIGRATIONS[:start]:
        db.executescript(script)
    db.execute(f"PRAGMA user_version = {start}")
    if start >= 1:
        db.execute("INSERT INTO voices (name, notes, created) VALUES ('Old', '', 0)")
        db.execute(
            "INSERT INTO takes (voice_id, text, settings, seed, model, engine, device, timings, "
            "file, created) VALUES (1, 'old take', '{}', 7, 'm', 'e', 'cpu', '{}', 'x.wav', 0)"
        )
    db.commit()
    db.close()
    library = Library(folder)
    assert library.schema_version == SCHEMA_VERSION
    if start >= 1:
        old = library.voices.get("Old")
        assert old.name == "Old" and not old.consent_confirmed
        (take,) = library.takes.list(voice="Old")
        assert (take.text, take.seed, take.favourite, take.duration) == ("old take", 7, False, 0)
        assert (take.verdict, take.check, take.flagged) == ("", {}, False)  # never checked
        assert take.source == ""  # made before sources were kept
    assert library.integrity_check() == "ok"


def test_newer_or_damaged_database_is_refused_and_kept(tmp_path: Path) -> None:
    folder = tmp_path / "lib"
    Library(folder).close()
    db_file = folder / "library.sqlite3"
    db = sqlite3.connect(db_file)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    before = db_file.read_bytes()
    with pytest.raises(LibraryError, match=r"newer CSM Studio.*left untouched"):
        Library(folder)
    assert db_file.read_bytes() == before
    db_file.write_bytes(b"this is not a database" * 200)
    for suffix in ("-wal", "-shm"):
        (folder / f"library.sqlite3{suffix}").unlink(missing_ok=True)
    damaged = db_file.read_bytes()
    with pytest.raises(LibraryError, match=r"damaged.*left untouched"):
        Library(folder)
    assert db_file.read_bytes() == damaged


def test_two_processes_write_at_once(tmp_path: Path) -> None:
    folder = tmp_path / "lib"
    Library(folder).voices.add("Ada", [(voiced(3.0, 24_000), "Hi.", "imported")])
    writer = textwrap.dedent(f"""
        import numpy as np
        from pathlib import Path
        from desktop_app.library.store import Library
        library = Library(Path({str(folder)!r}))
        for i in range(40):
            library.takes.add(text=f"child {{i}}", audio=np.full(2400, i / 100, np.float32),
                             settings={{}}, seed=i, model="m", engine="fast", device="cpu",
                             timings={{}}, voice="Ada")
    """)
    child = subprocess.Popen(
        [sys.executable, "-c", writer], cwd=REPO, stderr=subprocess.PIPE, text=True
    )
    library = Library(folder)
    for i in range(40):
        add_take(library, f"parent {i}", seed=100 + i)
    _, errors = child.communicate(timeout=120)
    assert child.returncode == 0, errors
    assert "locked" not in errors
    texts = {t.text for t in library.takes.list()}
    assert len(texts) == 80
    assert library.integrity_check() == "ok"


def test_export_import_round_trip(tmp_path: Path) -> None:
    from desktop_app.audio.reference import prepare_reference
    from desktop_app.library.bundles import export_voice, import_voice

    source = Library(tmp_path / "a")
    clips = [  # as the window and `voices add` keep them: prepared (trimmed, normalized)
        (prepare_reference(voiced(3.0, 24_000, seed=1), 24_000), "First clip.", "recorded"),
        (prepare_reference(voiced(2.5, 24_000, seed=2), 24_000), "Second clip.", "imported"),
    ]
    original = source.voices.add("Ada", clips, notes="studio", consent_confirmed=True)
    bundle = export_voice(source, "Ada", tmp_path / "ada.zip")
    copy = import_voice(Library(tmp_path / "b"), bundle, consent=True)
    assert (copy.name, copy.notes, copy.consent_confirmed) == ("Ada", "studio", True)
    assert [(c.transcript, c.source, c.duration) for c in copy.clips] == [
        (c.transcript, c.source, c.duration) for c in original.clips
    ]
    for a, b in zip(original.clips, copy.clips, strict=True):  # preparing again changes nothing
        np.testing.assert_allclose(a.audio(), b.audio(), atol=1e-4)
    (tmp_path / "junk.zip").write_bytes(b"PK not really")
    with pytest.raises(LibraryError, match="cannot read the voice bundle"):
        import_voice(Library(tmp_path / "c"), tmp_path / "junk.zip", consent=True)


def test_a_voice_bundle_with_clips_at_two_rates_imports_each_at_its_own_rate(
    tmp_path: Path,
) -> None:
    """Each clip is resampled from its own rate (they were all stored at the last one's)."""
    import io
    import json
    import zipfile

    import soundfile as sf

    from desktop_app.library.bundles import import_voice

    bundle = tmp_path / "two-rates.zip"
    clips = {
        "clips/00.wav": (voiced(2.0, 16_000), 16_000),
        "clips/01.wav": (voiced(3.0, 48_000), 48_000),
    }
    with zipfile.ZipFile(bundle, "w") as archive:
        entries = []
        for name, (audio, rate) in clips.items():
            data = io.BytesIO()
            sf.write(data, audio, rate, format="WAV")
            archive.writestr(name, data.getvalue())
            entries.append({"file": name, "transcript": f"Clip {name}.", "source": "imported"})
        manifest = {"format": "csm-studio-voice", "version": 1, "name": "Mixed", "clips": entries}
        archive.writestr("manifest.json", json.dumps(manifest))
    with Library(tmp_path / "lib") as library:
        voice = import_voice(library, bundle, consent=True)
        assert [round(c.duration, 3) for c in voice.clips] == [2.0, 3.0]
        assert [c.audio().size for c in voice.clips] == [48_000, 72_000]


def test_a_bundle_without_clips_is_refused_with_a_message(tmp_path: Path) -> None:
    import json
    import zipfile

    from desktop_app.library.bundles import import_voice

    bundle = tmp_path / "empty.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        manifest = {"format": "csm-studio-voice", "version": 1, "name": "Nobody", "clips": []}
        archive.writestr("manifest.json", json.dumps(manifest))
    with Library(tmp_path / "lib") as library, pytest.raises(LibraryError, match="holds no clips"):
        import_voice(library, bundle, consent=True)


def test_a_clip_with_an_unknown_source_is_not_called_a_taken_name(tmp_path: Path) -> None:
    """A bundle whose clip says "source": "microphone", tried as a new user would."""
    with Library(tmp_path / "lib") as library:
        with pytest.raises(LibraryError, match="unknown source 'microphone'") as caught:
            library.voices.add("Ada", [(voiced(3.0, 24_000), "Hello.", "microphone")])
        assert "already exists" not in str(caught.value)
        assert library.voices.all() == []
        library.voices.add("Ada", [(voiced(3.0, 24_000), "Hello.", "recorded")])
        with pytest.raises(LibraryError, match="a voice called 'Ada' already exists"):
            library.voices.add("Ada", [(voiced(3.0, 24_000), "Hello.", "recorded")])


def test_a_missing_clip_file_is_a_library_error(tmp_path: Path) -> None:
    with Library(tmp_path / "lib") as library:
        clip = library.voices.add("Ada", [(voiced(3.0, 24_000), "Hello.", "recorded")]).clips[0]
        clip.file.unlink()
        with pytest.raises(LibraryError, match="cannot be read"):
            clip.audio()


def test_the_library_closes_as_a_context_manager(tmp_path: Path) -> None:
    with Library(tmp_path / "lib") as library:
        assert library.integrity_check() == "ok"
    with pytest.raises(LibraryError, match="is closed"):
        library.integrity_check()


def test_a_takes_check_is_kept_and_flagged_takes_filter(tmp_path: Path) -> None:
    with Library(tmp_path / "lib") as library:
        audio = np.zeros(2400, np.float32)
        common = {"settings": {}, "model": "m", "engine": "e", "device": "cpu", "timings": {}}
        good = library.takes.add(text="fine", audio=audio, seed=1, **common,
                                check={"verdict": "good", "reasons": []})  # fmt: skip
        bad = library.takes.add(text="off", audio=audio, seed=2, **common,
                               check={"verdict": "bad", "reasons": ["skipped: 'x'"]})  # fmt: skip
        unchecked = library.takes.add(text="plain", audio=audio, seed=3, **common)
        assert [t.id for t in library.takes.list(flagged_only=True)] == [bad.id]
        assert library.takes.get(bad.id).check["reasons"] == ["skipped: 'x'"]
        assert (unchecked.verdict, unchecked.check) == ("", {})
        library.takes.set_check(good.id, {"verdict": "check", "reasons": ["ran to the 10 s limit"]})
        assert [t.id for t in library.takes.list(flagged_only=True)] == [bad.id, good.id]
        library.takes.delete(bad.id)
        library.takes.restore(bad)
        assert library.takes.get(bad.id).check == bad.check


def test_listing_voices_and_conversations_takes_a_fixed_number_of_queries(tmp_path: Path) -> None:
    """No query per row: the voices (with their clips) in two queries, the conversations (with
    their lines and the lines' takes) in three, however many there are."""
    import numpy as np

    library = Library(tmp_path / "lib")
    for n in range(4):
        library.voices.add(f"V{n}", [(voiced(2.0, 24_000, seed=n), "Hi.", "imported")] * 2)
    for n in range(3):
        library.conversations.save(
            f"C{n}", "V0: Hi.\nV1: Hello.", {}, n, [("V0", "Hi."), ("V1", "Hello.")]
        )
        for line in range(2):
            take = add_take(library, f"line {line}", voice=f"V{line}", seed=n * 2 + line)
            library.conversations.set_line(
                f"C{n}", line, f"V{line}", "Hi.", take, np.zeros((3, 4)), {}
            )
    statements: list[str] = []
    library._db.connection.set_trace_callback(statements.append)
    voices = library.voices.all()
    assert [len(v.clips) for v in voices] == [2] * 4 and len(statements) == 2
    statements.clear()
    conversations = library.conversations.all()
    assert [len(c.lines) for c in conversations] == [2] * 3 and len(statements) == 3
    assert conversations[0].lines[1].take.voice == "V1"


def test_a_takes_columns_are_declared_once() -> None:
    """The row a take is written as and the query it is read with name the same columns."""
    from desktop_app.library.records import TAKE_COLUMNS, TAKE_QUERY, TakeRecord, take_row

    take = TakeRecord(1, None, "t", {}, 1, "m", "", "fast", "cpu", {}, Path("a"), 0.0, False, 1.0)
    assert tuple(take_row(take, None, "a")) == TAKE_COLUMNS
    assert all(f"t.{column}" in TAKE_QUERY for column in TAKE_COLUMNS if column != "voice_id")
