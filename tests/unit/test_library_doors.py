"""The library against other programs and hostile bundles: a second process holding the
database's write lock, two programs migrating at once, clean-up racing a writer, zip bombs, a
bundle's own consent flag, and names with terminal escapes."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from desktop_app import cli
from desktop_app.errors import AudioFileError
from desktop_app.library import bundles, database, schema
from desktop_app.library.database import LibraryBusy, LibraryError
from desktop_app.library.store import Library
from tests.support.locker import held
from tests.support.signals import encoded_silence, voiced


def test_a_locked_library_is_a_clear_error_after_a_bounded_wait_and_reading_goes_on(
    tmp_path: Path,
) -> None:
    from desktop_app.inference.engine import (
        GenerationRequest,
        GenerationResult,
        GenerationTimings,
    )
    from desktop_app.takes import keep_take

    library = Library(tmp_path / "lib", busy_seconds=1)
    library.voices.add("Ada", [(voiced(3.0, 24_000), "Hi.", "imported")])
    with held(library.db_path):
        assert [v.name for v in library.voices.all()] == ["Ada"]  # readers are not held up
        assert [v.name for v in Library(tmp_path / "lib").voices.all()] == ["Ada"]  # nor opening
        started = time.monotonic()
        with pytest.raises(LibraryBusy, match="the library is busy: another program"):
            library.voices.rename("Ada", "Ada 2")
        assert 0.9 < time.monotonic() - started < 5
        request = GenerationRequest("Hello.")
        result = GenerationResult(
            audio=np.zeros(2400, np.float32),
            codes=np.zeros((1, 32), np.int64),
            frames=1,
            stopped_by="max-length",
            seed=1,
            timings=GenerationTimings(0.0, 0.0, 0.0, 0.0),
            device="cpu",
            dtype="float32",
            engine="fast",
        )
        kept = keep_take(request, result, model="m", file=tmp_path / "t.wav", library=library)
    assert kept.record is None and "the library is busy" in kept.problem
    assert sf.info(kept.file).frames == 2400  # the take itself is never lost
    assert library.takes.list() == []


def test_clone_with_a_locked_library_writes_the_take_and_says_it_is_not_in_the_history(
    tiny_model_dir: Path,
    app_home: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CSM_STUDIO_LIBRARY_WAIT", "1.5")  # the wait, set as a user would
    with Library() as library:
        library.voices.add("Ada", [(voiced(3.0, 24_000), "I am Ada.", "imported")])
        database = library.db_path
    out = tmp_path / "take.wav"
    with held(database):
        code = cli.main(
            ["clone", "--model", str(tiny_model_dir), "--voice", "Ada", "--text", "Hi.",
             "--out", str(out), "--max-seconds", "0.4", "--seed", "1"]
        )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    assert "note: the take was saved but not added to the history: the library is busy" in err
    assert "kept it for over 1.5 s" in err
    assert "internal error" not in err and sf.info(out).frames > 0


def older_library(folder: Path, version: int) -> Path:
    """A library database at schema ``version``, as an older CSM Studio left it."""
    folder.mkdir(parents=True)
    path = folder / "library.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    for migration in schema.MIGRATIONS[:version]:
        db.executescript(migration)
    db.execute(f"PRAGMA user_version = {version}")
    db.close()
    return path


def test_two_programs_opening_an_older_library_at_once_migrate_it_once(tmp_path: Path) -> None:
    path = older_library(tmp_path / "lib", 4)
    opened: list[object] = []

    def open_it() -> None:  # (SQLite connections stay on the thread that made them)
        try:
            with Library(tmp_path / "lib") as library:
                opened.append(library.schema_version)
        except Exception as exc:
            opened.append(exc)

    last = [s.strip() for s in schema.MIGRATIONS[4].split(";") if s.strip()]
    # the other program migrates inside its transaction while this one reads version 4 and waits
    with held(path, *last, f"PRAGMA user_version = {schema.SCHEMA_VERSION}"):
        opener = threading.Thread(target=open_it)
        opener.start()
        time.sleep(1.0)
        assert opened == []  # waiting for the other program's migration
    opener.join(30)
    assert opened == [schema.SCHEMA_VERSION]  # not "duplicate column name: source"


def test_clean_up_never_removes_a_file_another_program_is_about_to_use(tmp_path: Path) -> None:
    library = Library(tmp_path / "lib", busy_seconds=1)
    audio = voiced(1.0, 24_000, seed=3)
    fresh = library.files.store_audio(audio, 24_000)
    assert library.files.unreferenced() == []  # written moments ago: inside the grace period
    hour_ago = time.time() - 3600
    os.utime(fresh, (hour_ago, hour_ago))
    assert library.files.unreferenced() == [fresh]
    plan = library.files.unreferenced()
    # another program stores the same audio for a row it is about to write: the file is reused
    Library(tmp_path / "lib").files.store_audio(audio, 24_000)
    assert library.files.remove(plan) == (0, 0) and fresh.exists()
    os.utime(fresh, (hour_ago, hour_ago))
    # decided inside a write transaction: while another program writes, nothing is removed
    with held(library.db_path), pytest.raises(LibraryBusy):
        library.files.remove(plan)
    assert fresh.exists()
    count, size = library.files.remove(plan)
    assert count == 1 and size > 0 and not fresh.exists()


def bundle(path: Path, members: dict[str, bytes], consent: bool = True) -> Path:
    clips = [
        {"file": name, "transcript": "Hello there.", "source": "imported"}
        for name in members
        if name.startswith("clips/")
    ]
    manifest = {
        "format": "csm-studio-voice",
        "version": 1,
        "name": "Bundled",
        "consent_confirmed": consent,
        "clips": clips,
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(manifest))
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def wav(audio: np.ndarray, rate: int = 24_000) -> bytes:
    data = io.BytesIO()
    sf.write(data, audio, rate, format="WAV")
    return data.getvalue()


def test_a_hostile_voice_bundle_is_refused_before_it_is_unpacked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from desktop_app.library.bundles import import_voice

    library = Library(tmp_path / "lib")
    # a zip bomb: 200 MB of zeros in a few hundred KB
    bomb = bundle(tmp_path / "bomb.zip", {"clips/00.wav": b"\0" * 200_000_000})
    assert bomb.stat().st_size < 1_000_000
    started = time.monotonic()
    with pytest.raises(LibraryError, match="200 MB: over the 64 MB a bundle's file may have"):
        import_voice(library, bomb, consent=True)
    assert time.monotonic() - started < 1
    # members under the cap each, over it together
    monkeypatch.setattr(bundles, "BUNDLE_TOTAL_BYTES", 2_000_000)
    many = {f"clips/{i:02d}.wav": b"\0" * 900_000 for i in range(3)}
    with pytest.raises(LibraryError, match="once unpacked: over the 2 MB"):
        import_voice(library, bundle(tmp_path / "many.zip", many), consent=True)
    monkeypatch.undo()
    # an hour of silence as a clip (FLAC in a member named .wav): opened by content, refused
    hour = bundle(
        tmp_path / "hour.zip", {"clips/00.wav": encoded_silence("FLAC", "PCM_16", 60, 8_000)}
    )
    with pytest.raises(AudioFileError, match=r"at most 5 minutes of audio, and it holds 60\.0"):
        import_voice(library, hour, consent=True)
    assert library.voices.all() == []


def test_a_bundle_is_prepared_like_voices_add_and_its_consent_is_asked_again(
    tmp_path: Path,
) -> None:
    from desktop_app.library.bundles import import_voice

    padded = np.concatenate([np.zeros(48_000), voiced(3.0, 24_000), np.zeros(48_000)])
    path = bundle(tmp_path / "b.zip", {"clips/00.wav": wav(padded)}, consent=True)
    library = Library(tmp_path / "lib")
    with pytest.raises(LibraryError, match="consent"):
        import_voice(library, path, consent=False)  # the bundle's "yes" is not the person's
    voice = import_voice(library, path, consent=True)
    assert voice.consent_confirmed
    assert 2.9 < voice.clips[0].duration < 3.5  # 7 s given: the 2 s silences trimmed
    short = bundle(tmp_path / "s.zip", {"clips/00.wav": wav(voiced(1.0, 24_000))})
    with pytest.raises(AudioFileError, match="at least 2 s"):
        import_voice(library, short, consent=True, name="Short")


def test_names_with_terminal_escapes_are_printed_escaped(
    app_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = "Eve\x1b]0;owned\x07\x1b[2J\u202eevil\r"
    with Library() as library:
        library.voices.add(name, [(voiced(3.0, 24_000), "Hi\x1b[31m.", "imported")])
    assert cli.main(["voices", "list"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out and "\r" not in out
    assert out.startswith("Eve\\x1b]0;owned\\x07\\x1b[2J\\u202eevil\t1 clip(s)")  # name stripped


def test_the_wait_for_a_busy_library_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    for given, wait in (("5", 5.0), ("0.5", 0.5), ("0", 10.0), ("-3", 10.0), ("soon", 10.0)):
        monkeypatch.setenv("CSM_STUDIO_LIBRARY_WAIT", given)
        assert database.busy_wait() == wait, given
    monkeypatch.delenv("CSM_STUDIO_LIBRARY_WAIT")
    assert database.busy_wait() == database.BUSY_SECONDS == 10.0
