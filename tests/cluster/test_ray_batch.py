"""``batch --ray`` on a real local Ray: a private runtime (``local:2``) and a head started with
``ray start --head`` (joined with ``--ray auto``), against the local batch; a killed actor, a
killed driver, Ctrl+C, a bad line among good ones, an unreachable cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from desktop_app.library.store import Library
from tests.support.signals import voiced

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """32 codebooks (a frame takes milliseconds), so a run lasts long enough to be hurt."""
    from desktop_app.inference.random_checkpoint import CheckpointShape, build_random_checkpoint

    return build_random_checkpoint(
        tmp_path_factory.mktemp("ray-csm"), CheckpointShape(num_codebooks=32)
    )


@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Ray head on this machine (2 CPUs), as a user starts one; ended by its PID."""
    port = 6390
    folder = tmp_path_factory.mktemp("ray-head")
    log = folder / "head.log"
    # the head's actors start from the head's environment, made before any test's own: they get
    # a home and a weight cache in the test's folder, never the user's (~/.cache/csm-studio)
    own = {"CSM_STUDIO_HOME": str(folder / "home"), "CSM_STUDIO_CACHE": str(folder / "cache")}
    ray_cli = str(Path(sys.executable).with_name("ray"))
    command = [ray_cli, "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
               "--include-dashboard=false", "--disable-usage-stats"]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, env={**os.environ, **RAY_ENV, **own}, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while subprocess.run([ray_cli, "status", f"--address={address}"], capture_output=True,
                         env={**os.environ, **RAY_ENV}).returncode:  # fmt: skip
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(1)
    yield address
    os.killpg(process.pid, signal.SIGKILL)  # the head and its raylet (a clean stop takes 30 s)
    process.wait(timeout=60)


@pytest.fixture
def voices(app_home: Path) -> None:
    with Library() as library:
        library.voices.add("Ada", [(voiced(3.0, 24_000, f0=200), "I am Ada.", "imported")])
        library.voices.add("Ben", [(voiced(3.0, 24_000, f0=110), "I am Ben.", "imported")])


def write_lines(path: Path, count: int, bad: bool = False) -> Path:
    rows = [{"text": f"Line number {i} of the book.", "voice": "Ada" if i % 2 else "Ben"}
            for i in range(1, count + 1)]  # fmt: skip
    if bad:
        rows.insert(2, {"text": "Nobody speaks this.", "voice": "Nobody"})
        rows.insert(4, {"text": "  ", "voice": "Ada"})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def batch(model: Path, lines: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "desktop_app", "batch", "--model", str(model), "--input",
            str(lines), "--out-dir", str(out), "--seed", "7", "--no-check", *extra]  # fmt: skip


def entries(out: Path) -> list[dict[str, object]]:
    text = (
        (out / "batch-manifest.jsonl").read_text()
        if (out / "batch-manifest.jsonl").exists()
        else ""
    )
    return [json.loads(row) for row in text.splitlines() if row.strip()]


def run(command: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **RAY_ENV})  # fmt: skip


def start(command: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **RAY_ENV})  # fmt: skip


def ten_lines_on(
    address: str, model: Path, tmp_path: Path
) -> tuple[Path, Path, subprocess.Popen[str]]:
    """Ten lines being made on the cluster at ``address``, one a batch: lines, folder, driver."""
    lines = write_lines(tmp_path / "lines.jsonl", 10)
    out = tmp_path / "out"
    command = batch(
        model, lines, out, "--max-seconds", "1.5", "--batch-size", "1", "--ray", address
    )
    return lines, out, start(command)


def wait_for(out: Path, count: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 180
    while len(entries(out)) < count:
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_local_ray_makes_the_same_codes_as_the_local_batch_and_bad_lines_fail_alone(
    model: Path, voices: None, tmp_path: Path
) -> None:
    lines = write_lines(tmp_path / "lines.jsonl", 6, bad=True)
    here = run(batch(model, lines, tmp_path / "here", "--max-seconds", "1", "--batch-size", "2"))
    ray = run(batch(model, lines, tmp_path / "ray", "--max-seconds", "1", "--batch-size", "2",
                    "--ray", "local:2", "--report-json", str(tmp_path / "r.json")))  # fmt: skip
    for done in (here, ray):
        assert done.returncode == 2, done.stderr[-3000:]  # two bad lines, the rest made
        assert "2 line(s) failed:" in done.stdout
        assert "line 3: no voice called 'Nobody'" in done.stdout
        assert "line 5: the text is empty" in done.stdout
    codes = [{e["line"]: e["codes_sha256"] for e in entries(tmp_path / d)} for d in ("here", "ray")]
    assert codes[0] == codes[1] and len(codes[0]) == 6
    report = json.loads((tmp_path / "r.json").read_text())
    assert set(report["lines_per_worker"]) == {"actor-1", "actor-2"}
    made = sum(float(e["seconds"]) for e in entries(tmp_path / "ray"))  # type: ignore[arg-type]
    assert report["lines_done"] == 6 and report["audio_seconds"] == pytest.approx(made, abs=0.01)
    assert report["throughput"] > 0 and report["eta_seconds"] == 0


def test_a_killed_actor_loses_no_line_and_writes_none_twice(
    model: Path, head: str, voices: None, tmp_path: Path
) -> None:
    lines = write_lines(tmp_path / "lines.jsonl", 8)
    out = tmp_path / "out"
    process = start(batch(model, lines, out, "--max-seconds", "1", "--batch-size", "1",
                          "--ray", "auto"))  # fmt: skip
    wait_for(out, 1, process)
    actors = subprocess.run(["pgrep", "-f", "^ray::SpeakerActor"], capture_output=True,
                            text=True).stdout.split()  # fmt: skip
    assert actors, "no actor process found"
    os.kill(int(actors[0]), signal.SIGKILL)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-3000:]
    made = [e["line"] for e in entries(out)]
    assert sorted(made) == list(range(1, 9))  # every line, exactly once
    assert "8 take(s)" in stdout and "lines per worker: actor-1" in stdout


def test_a_killed_driver_resumes_where_it_stopped(
    model: Path, head: str, voices: None, tmp_path: Path
) -> None:
    lines, out, process = ten_lines_on(head, model, tmp_path)
    wait_for(out, 2, process)
    process.kill()  # SIGKILL: no clean-up of any kind
    process.communicate()
    first = {e["line"] for e in entries(out)}
    assert 2 <= len(first) < 10
    # the same command again, this time without Ray: only the rest is made
    again = run(batch(model, lines, out, "--max-seconds", "1.5", "--batch-size", "1"))
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{len(first)} line(s) already made" in again.stderr
    made = [e["line"] for e in entries(out)]
    assert sorted(made) == list(range(1, 11))  # each line once: none made twice
    assert not list(out.glob(".*.part"))  # nothing half-written is left


def test_ctrl_c_stops_cleanly_and_an_unreachable_cluster_is_one_line(
    model: Path, head: str, voices: None, tmp_path: Path
) -> None:
    from desktop_app.batch.manifest import file_hash

    lines, out, process = ten_lines_on(head, model, tmp_path)
    wait_for(out, 1, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-3000:]
    assert "interrupted:" in stderr and "run the same command again" in stderr
    assert "Traceback" not in stderr
    for entry in entries(out):
        assert file_hash(out / str(entry["file"])) == entry["sha256"]
    assert not list(out.glob(".*.part"))
    # nothing listens there: an error at once, not a wait of minutes
    started = time.monotonic()
    far = run(batch(model, lines, tmp_path / "far", "--ray", "ray://127.0.0.1:1"), timeout=60)
    assert far.returncode == 2 and time.monotonic() - started < 30
    assert far.stderr.strip().splitlines()[-1].startswith("error: cannot reach the Ray cluster")


def test_without_ray_the_error_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from desktop_app.cluster import ray_runner
    from desktop_app.errors import RequestError

    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    with pytest.raises(RequestError, match=r"pip install '\.\[cluster\]'"):
        ray_runner.check_ray()


PROBE = """
import json, os
from desktop_app.cluster.ray_runner import connected
from tests.support.sockets import address, descendants, inet_sockets
with connected("local:1", 1) as (ray, actors, gpus):
    @ray.remote
    def pid():
        return os.getpid()
    ray.get(pid.remote())  # a worker is up and has its own server too
    listening = [
        str(address(local))
        for process in descendants(os.getpid())
        for local, _, _, _, state in inet_sockets(process)
        if state == "0A"
    ]
print(json.dumps(listening))
"""


def test_the_private_runtime_listens_on_this_machine_only() -> None:
    """``--ray local``'s runtime (GCS, raylet, driver, workers) binds to the loopback alone:
    Ray's default binds every interface, so other machines could reach its servers."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **RAY_ENV, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    listening = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(listening) >= 3  # at least the GCS, the raylet and the driver
    assert set(listening) == {"127.0.0.1"}, listening
