"""The local API over real HTTP on the loopback: OpenAI's client, curl with a browser-made
WebM/Opus clip, the queue under 8 clients, a client that goes away, limits, keys and errors."""

from __future__ import annotations

import concurrent.futures
import io
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx
import numpy as np
import pytest
import soundfile as sf

from desktop_app.audio.io import read_audio, read_metadata
from tests.api.conftest import KEY, ORIGIN, Server
from tests.support.signals import voiced
from tests.support.sockets import inet_sockets

SPEECH = {"model": "csm-1b", "voice": "Ada", "input": "Hello there."}


def api_takes(server: Server) -> list[object]:
    library = server.library()
    try:
        return [t for t in library.takes.list() if t.source == "api"]  # type: ignore[attr-defined]
    finally:
        library.close()  # type: ignore[attr-defined]


def test_the_openai_client_makes_speech_whole_and_streamed(server: Server, tmp_path: Path) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=f"{server.url}/v1", api_key=server.key, max_retries=0)
    before = len(api_takes(server))
    made = client.audio.speech.create(
        model="csm-1b",
        voice="Ada",
        input="Hello there.",
        response_format="wav",
        extra_body={"max_seconds": 0.8, "seed": 3},
    )
    file = tmp_path / "take.wav"
    file.write_bytes(made.content)
    audio, rate = sf.read(file)
    assert rate == 24_000 and audio.size > 0
    meta = read_metadata(file)
    assert meta["ai_generated"] == "yes" and meta["seed"] == "3"
    # the take is in the history, marked as made through the API
    takes = api_takes(server)
    assert len(takes) == before + 1 and takes[0].text == "Hello there."  # type: ignore[attr-defined]

    # streamed: raw 24 kHz 16-bit PCM, sent in chunks while the take is made
    with client.audio.speech.with_streaming_response.create(
        model="csm-1b",
        voice="Ada",
        input="Hello again.",
        response_format="pcm",
        extra_body={"max_seconds": 2.0, "seed": 3},
    ) as response:
        assert response.headers.get("transfer-encoding") == "chunked"
        chunks = list(response.iter_bytes(chunk_size=None))
    assert len(chunks) > 1
    assert sum(len(c) for c in chunks) % 2 == 0
    # every compressed format decodes back to audio
    for fmt, suffix in (("mp3", ".mp3"), ("opus", ".ogg"), ("aac", ".aac"), ("flac", ".flac")):
        made = client.audio.speech.create(
            model="csm-1b",
            voice="Ada",
            input="Hi.",
            response_format=fmt,  # type: ignore[arg-type]
            extra_body={"max_seconds": 0.5},
        )
        out = tmp_path / f"take{suffix}"
        out.write_bytes(made.content)
        assert read_audio(out).seconds > 0.3, fmt


def test_speed_keeps_the_pitch_and_changes_the_length(server: Server) -> None:
    base = {**SPEECH, "response_format": "wav", "max_seconds": 1.6, "seed": 9}
    lengths = {}
    for speed in (1.0, 2.0, 0.5):
        reply = httpx.post(
            f"{server.url}/v1/audio/speech", json={**base, "speed": speed}, headers=server.headers
        )
        assert reply.status_code == 200
        lengths[speed] = sf.info(io.BytesIO(reply.content)).frames
    assert lengths[2.0] == pytest.approx(lengths[1.0] / 2, rel=0.03)
    assert lengths[0.5] == pytest.approx(lengths[1.0] * 2, rel=0.03)


def browser_webm(path: Path) -> Path:
    """A clip as browsers' MediaRecorder writes it: WebM with Opus at 48 kHz, 20 ms packets."""
    import av

    audio = voiced(3.0, 48_000)
    with av.open(str(path), "w", format="webm") as container:
        stream = container.add_stream("libopus", rate=48_000, layout="mono")
        for start in range(0, audio.size, 960):
            frame = av.AudioFrame.from_ndarray(
                audio[None, start : start + 960].astype(np.float32), format="flt", layout="mono"
            )
            frame.sample_rate = 48_000
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is installed by the test setup")
def test_curl_clones_a_voice_from_a_webm_recording(server: Server, tmp_path: Path) -> None:
    clip = browser_webm(tmp_path / "clip.webm")
    for route in ("/clone-voice", "/api/voice-clone"):
        out = tmp_path / f"{route.strip('/').replace('/', '-')}.wav"
        done = subprocess.run(
            [
                "curl",
                "-sS",
                "-o",
                str(out),
                "-w",
                "%{http_code}",
                "-H",
                f"X-API-Key: {KEY}",
                "-F",
                f"audio=@{clip};type=audio/webm",
                "-F",
                "text=Nice to meet you.",
                "-F",
                "transcript=I am Ada.",
                "-F",
                "max_seconds=0.8",
                "-F",
                "format=wav",
                server.url + route,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert done.stdout == "200"
        assert sf.info(str(out)).samplerate == 24_000
        assert read_metadata(out)["ai_generated"] == "yes"
    # without a transcript and with no recogniser installed: a 400 saying to send one
    reply = httpx.post(
        f"{server.url}/clone-voice",
        files={"audio": ("clip.webm", clip.read_bytes(), "audio/webm")},
        data={"text": "Hello."},
        headers=server.headers,
    )
    assert reply.status_code == 400
    assert "send `transcript`" in reply.json()["error"]["message"]


def test_eight_clients_at_once_are_each_answered_and_none_is_lost(server: Server) -> None:
    before = len(api_takes(server))
    body = {**SPEECH, "response_format": "wav", "max_seconds": 6.0}

    def ask(i: int) -> httpx.Response:
        return httpx.post(
            f"{server.url}/v1/audio/speech",
            json={**body, "seed": i},
            headers=server.headers,
            timeout=120,
        )

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(ask, range(8)))
    codes = [r.status_code for r in replies]
    assert set(codes) <= {200, 503}
    assert codes.count(503) >= 1  # one runs, two wait (--max-queue 2): the rest are refused
    for reply in replies:
        if reply.status_code == 503:
            assert int(reply.headers["Retry-After"]) >= 1
            assert reply.json()["error"]["code"] == "queue_full"
        else:
            assert sf.info(io.BytesIO(reply.content)).frames > 0
    assert len(api_takes(server)) == before + codes.count(200)


def test_a_client_that_goes_away_frees_the_worker_and_health_answers_meanwhile(
    server: Server,
) -> None:
    before = len(api_takes(server))
    body = {**SPEECH, "response_format": "pcm", "max_seconds": 120.0}
    with httpx.Client(timeout=30) as client:
        with client.stream(
            "POST", f"{server.url}/v1/audio/speech", json=body, headers=server.headers
        ) as response:
            assert response.status_code == 200
            audio = response.iter_bytes()  # kept: a dropped iterator closes the response
            next(audio)
            # the health route answers at once while the take runs
            started = time.monotonic()
            health = httpx.get(f"{server.url}/health").json()
            assert time.monotonic() - started < 1.0
            assert health["status"] == "healthy" and health["queue"]["running"] is True
        # the client closed the stream: the take stops at its next frame
        gone = time.monotonic()
        while httpx.get(f"{server.url}/health").json()["queue"]["running"]:
            assert time.monotonic() - gone < 1.0, "the worker still runs the abandoned take"
            time.sleep(0.05)
    assert len(api_takes(server)) == before  # the abandoned take is not kept
    reply = httpx.post(
        f"{server.url}/v1/audio/speech",
        headers=server.headers,
        json={**SPEECH, "response_format": "wav", "max_seconds": 0.4},
    )
    assert reply.status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({**SPEECH, "input": ""}, 400, "invalid_request"),
        ({**SPEECH, "input": "x" * 5000}, 400, "invalid_request"),
        ({**SPEECH, "temperature": -1}, 400, "invalid_request"),
        ({**SPEECH, "speed": 9}, 400, "invalid_request"),
        ({**SPEECH, "response_format": "ogg"}, 400, "invalid_request"),
        ({**SPEECH, "voice": "../../etc/passwd"}, 404, "voice_not_found"),
        ({**SPEECH, "input": 5}, 422, "invalid_field"),
        ({"voice": "Ada", "model": "m"}, 422, "invalid_field"),
    ],
)
def test_bad_speech_requests_get_openai_shaped_errors(
    server: Server, body: dict[str, object], status: int, code: str
) -> None:
    reply = httpx.post(f"{server.url}/v1/audio/speech", json=body, headers=server.headers)
    assert reply.status_code == status
    error = reply.json()["error"]
    assert error["code"] == code and error["message"] and error["type"]


def test_the_same_message_as_the_cli_for_the_same_bad_input(server: Server) -> None:
    reply = httpx.post(
        f"{server.url}/v1/audio/speech", headers=server.headers, json={**SPEECH, "temperature": -1}
    )
    done = subprocess.run(
        [*CLI, "clone", "--voice", "Ada", "--text", "Hi.", "--out", "x.wav", "--temperature", "-1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {reply.json()['error']['message']}"


CLI = [sys.executable, "-m", "desktop_app"]


def test_malformed_uploads_wrong_types_and_limits(server: Server, tmp_path: Path) -> None:
    url = server.url
    h = server.headers
    bad_json = httpx.post(
        f"{url}/v1/audio/speech", content=b"{bad", headers={**h, "Content-Type": "application/json"}
    )
    assert (bad_json.status_code, bad_json.json()["error"]["code"]) == (422, "invalid_json")
    as_form = httpx.post(f"{url}/v1/audio/speech", data={"input": "hi"}, headers=h)
    assert as_form.status_code == 415
    as_json = httpx.post(f"{url}/clone-voice", json={"text": "hi"}, headers=h)
    assert as_json.status_code == 415
    broken = httpx.post(
        f"{url}/clone-voice",
        content=b"--zz\r\ngarbage",
        headers={**h, "Content-Type": "multipart/form-data; boundary=zz"},
    )
    assert (broken.status_code, broken.json()["error"]["code"]) == (422, "invalid_form")
    no_audio = httpx.post(f"{url}/clone-voice", data={"text": "hi"}, files={"x": b"1"}, headers=h)
    assert no_audio.status_code == 422
    not_audio = httpx.post(
        f"{url}/clone-voice",
        headers=h,
        data={"text": "hi", "transcript": "x"},
        files={"audio": ("clip.webm", b"not audio at all", "audio/webm")},
    )
    assert (not_audio.status_code, not_audio.json()["error"]["code"]) == (415, "unsupported_audio")
    assert "/tmp" not in not_audio.json()["error"]["message"]
    # over the 1 MB limit: refused by its Content-Length, before the body is read
    big = httpx.post(
        f"{url}/clone-voice",
        headers=h,
        data={"text": "hi"},
        files={"audio": ("big.wav", b"\0" * 2_000_000, "audio/wav")},
    )
    assert (big.status_code, big.json()["error"]["code"]) == (413, "upload_too_large")

    # and one sent in chunks without a length: stopped once it passes the limit
    def chunks() -> object:
        yield b'--zz\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n\r\n'
        for _ in range(40):
            yield b"\0" * 65536

    chunked = httpx.post(
        f"{url}/clone-voice",
        content=chunks(),
        headers={  # type: ignore[arg-type]
            **h,
            "Content-Type": "multipart/form-data; boundary=zz",
        },
    )
    assert chunked.status_code == 413
    unknown = httpx.get(f"{url}/v2/nothing", headers=h)
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "unknown_route")


def test_keys_cors_models_and_voices(server: Server) -> None:
    url = server.url
    missing = httpx.get(f"{url}/v1/models")
    assert (missing.status_code, missing.json()["error"]["code"]) == (401, "missing_api_key")
    wrong = httpx.get(f"{url}/v1/models", headers={"Authorization": "Bearer nope"})
    assert (wrong.status_code, wrong.json()["error"]["type"]) == (403, "permission_error")
    assert httpx.get(f"{url}/health").status_code == 200  # open, for monitors
    models = httpx.get(f"{url}/v1/models", headers=server.headers).json()
    assert models["object"] == "list" and len(models["data"]) == 1
    voices = httpx.get(f"{url}/v1/audio/voices", headers=server.headers).json()["data"]
    assert [v["name"] for v in voices] == ["Ada"]
    allowed = httpx.options(
        f"{url}/v1/audio/speech",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert allowed.headers.get("access-control-allow-origin") == ORIGIN
    other = httpx.options(
        f"{url}/v1/audio/speech",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in other.headers
    # the key never reaches the server's output or its log
    logs = [server.stderr, *sorted((server.home / "logs").glob("*"))]
    assert all(KEY not in p.read_text(errors="replace") for p in logs if p.is_file())


def test_opening_the_server_needs_its_host_names_and_a_key_never_goes_on_the_command_line(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "CSM_STUDIO_HOME": str(tmp_path)}
    done = subprocess.run(
        [*CLI, "serve", "--host", "0.0.0.0", "--port", "8999"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: listening on 0.0.0.0 answers any address")
    assert "--allow-host" in done.stderr
    secret = "a-key-for-everyone-to-see"
    done = subprocess.run(
        [*CLI, "serve", "--api-key", secret], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 2 and "--api-key-file" in done.stderr
    assert secret not in done.stderr
    logs = list((tmp_path / "logs").glob("*.log*"))
    assert logs and all(secret not in log.read_text() for log in logs)


def test_the_queue_keeps_order_refuses_when_full_and_stops_on_time() -> None:
    from desktop_app.session.jobs import JobQueue, QueueFull, TimedOut

    queue = JobQueue(max_waiting=2)
    release = threading.Event()
    order: list[int] = []

    def job(i: int) -> object:
        def run(ticket: object) -> int:
            release.wait(10)
            order.append(i)
            return i

        return run

    first = queue.submit(job(0), 10)  # type: ignore[arg-type]
    while queue.running is None:
        time.sleep(0.01)
    waiting = [queue.submit(job(i), 10) for i in (1, 2)]  # type: ignore[arg-type]
    with pytest.raises(QueueFull) as full:
        queue.submit(job(3), 10)  # type: ignore[arg-type]
    assert full.value.retry_after >= 1
    release.set()
    assert [t.future.result(10) for t in (first, *waiting)] == [0, 1, 2] == order

    def forever(ticket: Any) -> None:
        from desktop_app.errors import GenerationCancelled

        while not ticket.should_stop():
            time.sleep(0.01)
        raise GenerationCancelled("stopped")

    late = queue.submit(forever, 0.2)
    with pytest.raises(TimedOut, match=r"time limit of 0\.2 s"):
        late.future.result(10)
    queue.close()


def test_no_socket_is_opened_but_the_listening_one(server: Server) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    reply = httpx.post(
        f"{server.url}/v1/audio/speech",
        headers=server.headers,
        json={**SPEECH, "response_format": "wav", "max_seconds": 0.4},
    )
    assert reply.status_code == 200
    sockets = inet_sockets(server.pid)
    assert any(state == "0A" and lport == port for _, lport, _, _, state in sockets)  # LISTEN
    # every TCP socket is the listening one or a client's connection to it
    assert all(lport == port for _, lport, _, _, _ in sockets), sockets
