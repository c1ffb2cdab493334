"""The window's job handling: one job at a time, loads refused mid-take, late reports dropped;
the window's worker over the session layer (the queue itself: tests/unit/test_jobs.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pytestqt.qtbot import QtBot

from desktop_app.inference import GenerationRequest
from desktop_app.ui.main_window import MainWindow
from desktop_app.ui.workers import ClipAudio, GenerateWork, InferenceWorker
from tests.support.gui import drop_file, speech_file


def test_a_model_load_is_refused_while_a_take_is_made(
    window: MainWindow, qtbot: QtBot, tiny_model_dir: Path, tmp_path: Path
) -> None:
    drop_file(window, speech_file(tmp_path))
    window.voice.clips[0].transcript = "Hello there, this is my voice."
    window.say.text.setPlainText("A long text that would take a while to say.")
    window.say.max_seconds.setValue(60.0)
    frames: list[int] = []
    window.jobs.progressed.connect(lambda f, s: frames.append(f))
    window.generate()
    qtbot.waitUntil(lambda: len(frames) >= 5, timeout=30_000)
    job = window.jobs.job
    window.loader.load(str(tiny_model_dir))  # Model -> Reload while the take runs
    assert "cannot load a model now: a take is being made" in window.errors.last_message
    assert window.jobs.job is job and window.generating  # the take goes on
    made = len(frames)
    qtbot.waitUntil(lambda: len(frames) > made + 3, timeout=30_000)
    with qtbot.waitSignal(window.generation_cancelled, timeout=30_000):
        window.cancel()
    assert window.engine_info is not None  # the loaded model is still there


def test_reports_of_a_job_no_longer_waited_for_are_dropped(
    window: MainWindow, qtbot: QtBot, tiny_model_dir: Path
) -> None:
    """A report that comes after its job has ended (what a worker might still hold) changes
    nothing: no progress shown, no second "loaded"."""
    frames: list[int] = []
    loaded: list[object] = []
    window.jobs.progressed.connect(lambda f, s: frames.append(f))
    window.jobs.loaded.connect(loaded.append)
    with qtbot.waitSignal(window.model_ready, timeout=60_000):
        window.loader.load(str(tiny_model_dir))
        job = window.jobs.job
        assert job is not None and job.bridge is not None
        late = job.bridge.listener()
    assert len(loaded) == 1 and window.jobs.job is None
    late.on_progress(3, 0.24)
    late.on_finished(loaded[0])
    qtbot.wait(50)  # the queued signals are delivered, and dropped
    assert frames == [] and len(loaded) == 1 and window.not_ready().startswith("Record or import")


def test_help_test_this_computer_runs_the_self_test_in_the_worker(
    window: MainWindow, qtbot: QtBot
) -> None:
    with qtbot.waitSignal(window.self_tested, timeout=120_000) as tested:
        window.self_test.run()
        assert not window.say.generate_button.isEnabled()  # one job at a time
        window.say.text.setPlainText("Say this meanwhile.")
        window.generate()
        assert "cannot start another take now: the self-test is running" in (
            window.errors.last_message
        )
    report = tested.args[0]
    # the window's default on the CPU is int8: the test loads the float reference for itself
    # and passes a whole take (exact codes are the float engine's promise, tested elsewhere)
    assert report.dtype == "int8" and report.fast.frames == report.reference.frames
    assert report.verdict.startswith("PASS: int8 weights make a whole take")
    shown = window.self_test.dialog.text.toPlainText()
    assert shown == report.table() and "verdict" in shown
    assert window.not_ready().startswith("Record or import")  # the model is free again


def test_the_windows_worker_makes_the_engines_greedy_codes(
    qtbot: QtBot, tiny_model_dir: Path
) -> None:
    """The window's face (its worker, over the session layer) makes exactly the codes the engine
    makes for the same request, as clone, batch and the API do (tests/unit/test_faces.py)."""
    from desktop_app.audio.reference import prepare_reference
    from desktop_app.inference import ReferenceClip, load_engine
    from desktop_app.session.jobs import JobQueue
    from desktop_app.ui.workers import LoadWork
    from tests.support.signals import voiced

    queue, worker = JobQueue(name="test-inference"), InferenceWorker()
    load = LoadWork(str(tiny_model_dir), "fast", "cpu")
    queue.submit(lambda ticket: worker.load(ticket, load)).future.result(timeout=60)
    audio = voiced(3.0, 24_000)
    request = GenerationRequest("Hello there.", temperature=0.0, seed=7, max_seconds=0.8)
    work = GenerateWork(request, (ClipAudio(audio, "I am Ada."),))
    outcome = queue.submit(lambda ticket: worker.generate(ticket, work)).future.result(timeout=60)
    queue.close()
    clips = (ReferenceClip(prepare_reference(audio, 24_000), "I am Ada."),)
    direct = load_engine("fast", tiny_model_dir, "cpu").generate(
        GenerationRequest("Hello there.", clips, temperature=0.0, seed=7, max_seconds=0.8)
    )
    np.testing.assert_array_equal(outcome.result.codes, direct.codes)


def test_the_model_menu_chooses_the_weights_and_the_status_bar_names_them(
    window: MainWindow, qtbot: QtBot
) -> None:
    """The CPU's default is int8 (Weights: automatic); choosing int4 or float32 reloads the
    model with them, remembers the choice, and the status bar says what is in use."""
    actions = window.menu_actions
    assert actions["weights-auto"].isChecked()
    assert window.loader.labels.model.text().endswith("(fast, int8)")
    for choice, shown in (("int4", "int4"), ("none", "float32")):
        with qtbot.waitSignal(window.model_ready, timeout=60_000):
            actions[f"weights-{choice}"].trigger()
        assert actions[f"weights-{choice}"].isChecked()
        assert window.settings.quantize == choice
        assert window.loader.labels.model.text().endswith(f"(fast, {shown})")
