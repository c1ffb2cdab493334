"""The local API as an attacker meets it, over real HTTP against the real ``serve``: a rebinding
``Host``, a web page's cross-site requests, uploads that name local files or decode to hours,
slow and many connections, hostile bodies and numbers, a locked library; then its published
OpenAPI document, and a bounded fuzz run from it."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import numpy as np
import pytest
import soundfile as sf

from tests.api.conftest import ORIGIN, Server, free_port
from tests.support.locker import held
from tests.support.signals import encoded_silence, voiced

SPEECH = {"model": "csm-1b", "voice": "Ada", "input": "Hello there.", "max_seconds": 0.4}


def api_takes(server: Server) -> int:
    library = server.library()
    try:
        return sum(1 for t in library.takes.list() if t.source == "api")  # type: ignore[attr-defined]
    finally:
        library.close()  # type: ignore[attr-defined]


def refused(reply: httpx.Response, status: int, code: str) -> None:
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert (error["code"], bool(error["message"]), bool(error["type"])) == (code, True, True)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


# -- who may knock ----------------------------------------------------------------------------


def test_a_rebinding_host_is_refused_whatever_else_the_request_has(server: Server) -> None:
    port = server.url.rsplit(":", 1)[1]
    before = api_takes(server)
    for host in (f"rebind.example:{port}", "rebind.example", f"192.168.1.10:{port}", ""):
        reply = httpx.get(f"{server.url}/v1/audio/voices", headers={**server.headers, "Host": host})
        refused(reply, 403, "host_not_allowed")
        reply = httpx.post(
            f"{server.url}/v1/audio/speech",
            json=SPEECH,
            headers={**server.headers, "Host": host},
        )
        refused(reply, 403, "host_not_allowed")
        refused(httpx.get(f"{server.url}/health", headers={"Host": host}), 403, "host_not_allowed")
    assert api_takes(server) == before
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"):  # this machine
        reply = httpx.get(f"{server.url}/v1/audio/voices", headers={**server.headers, "Host": host})
        assert reply.status_code == 200, host


def test_a_web_page_of_another_site_cannot_make_a_take(server: Server) -> None:
    before = api_takes(server)
    body = json.dumps(SPEECH).encode()
    # what `fetch(url, {method: "POST", body: blob})` sends from a page: no preflight, no type
    browser = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
    for headers in (browser, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}):
        for key in ({}, server.headers):  # with or without the key: the door is shut first
            reply = httpx.post(
                f"{server.url}/v1/audio/speech", content=body, headers={**headers, **key}
            )
            refused(reply, 403, "origin_not_allowed")
    form = httpx.post(  # a cross-site form post of a clip
        f"{server.url}/clone-voice",
        headers={**browser, **server.headers},
        data={"text": "Hi.", "transcript": "Hello."},
        files={"audio": ("clip.wav", wav_bytes(voiced(3.0, 24_000)), "audio/wav")},
    )
    refused(form, 403, "origin_not_allowed")
    # the allowed page, and a program (no Origin), must say what they send, exactly
    for headers in ({"Origin": ORIGIN}, {}):
        for kind in (
            None,
            "text/plain",
            "application/json-seq",
            "application/x-www-form-urlencoded",
        ):
            typed = {"Content-Type": kind} if kind else {}
            reply = httpx.post(
                f"{server.url}/v1/audio/speech",
                content=body,
                headers={**headers, **typed, **server.headers},
            )
            refused(reply, 415, "unsupported_content_type")
    assert api_takes(server) == before  # nothing was made nor kept
    ok = httpx.post(
        f"{server.url}/v1/audio/speech",
        json={**SPEECH, "response_format": "wav"},
        headers={"Origin": ORIGIN, **server.headers},
    )
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == ORIGIN


def test_without_options_serve_uses_this_installs_own_key_and_says_where_it_is(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    port = free_port()
    env = {**os.environ, "CSM_STUDIO_HOME": str(tmp_path), "HF_HUB_CACHE": str(tmp_path / "hf")}
    env.pop("CSM_STUDIO_API_KEY", None)
    command = [sys.executable, "-m", "desktop_app", "serve", "--model", str(tiny_model_dir)]
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        health = wait_listening(url, process)
        key_file = tmp_path / "config" / "api-key"
        key = key_file.read_text().strip()
        assert len(key) >= 40 and key_file.stat().st_mode & 0o777 == 0o600
        assert health["auth"] == {"key_required": True, "key": f"the file {key_file}"}
        assert key not in json.dumps(health)
        refused(httpx.get(f"{url}/v1/audio/voices"), 401, "missing_api_key")
        reply = httpx.get(f"{url}/v1/audio/voices", headers={"Authorization": f"Bearer {key}"})
        assert reply.status_code == 200
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    assert str(key_file) in err and key not in err
    logs = list((tmp_path / "logs").glob("*.log*"))
    assert logs and all(key not in log.read_text() for log in logs)


def wait_listening(url: str, process: subprocess.Popen[str]) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            return dict(httpx.get(f"{url}/health", timeout=1).json())
        except httpx.HTTPError:
            assert process.poll() is None, "the server ended"
            time.sleep(0.1)
    raise AssertionError("the server did not listen")


# -- what may come in ---------------------------------------------------------------------------


def wav_bytes(audio: np.ndarray, rate: int = 24_000) -> bytes:
    data = io.BytesIO()
    sf.write(data, audio, rate, format="WAV")
    return data.getvalue()


def clone(server: Server, name: str, data: bytes, kind: str = "audio/wav") -> httpx.Response:
    return httpx.post(
        f"{server.url}/clone-voice",
        headers=server.headers,
        data={"text": "Hi.", "transcript": "Hello.", "max_seconds": "0.4"},
        files={"audio": (name, data, kind)},
        timeout=60,
    )


def test_an_upload_is_opened_by_what_it_is_and_never_reads_a_file_it_names(
    server: Server, tmp_path: Path
) -> None:
    secret = tmp_path / "private-voice.wav"
    sf.write(secret, voiced(3.0, 24_000), 24_000)

    def playlist(target: Path) -> bytes:
        return (
            f"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXTINF:3.0,\n{target}\n"
            "#EXT-X-ENDLIST\n"
        ).encode()

    answers = []
    for target in (secret, tmp_path / "no-such-file.wav"):
        for name, kind in (
            ("clip.m3u8", "application/vnd.apple.mpegurl"),
            ("clip.wav", "audio/wav"),
        ):
            reply = clone(server, name, playlist(target), kind)
            refused(reply, 415, "unsupported_audio")
            answers.append(reply.json())
    assert all(a == answers[0] for a in answers)  # the same answer: no oracle for local files
    assert str(tmp_path) not in json.dumps(answers[0])
    # the name and type a client gives mean nothing: a real WAV called .m3u8 is a WAV
    reply = clone(server, "clip.m3u8", wav_bytes(voiced(3.0, 24_000)), "audio/x-mpegurl")
    assert reply.status_code == 200 and reply.content[:4] == b"RIFF"


def test_audio_that_decodes_to_hours_is_refused_before_it_is_held(server: Server) -> None:
    flac = encoded_silence("FLAC", "PCM_16", 60, 8_000)  # an hour of silence in about 90 KB
    unknown = bytearray(encoded_silence("FLAC", "PCM_16", 30, 8_000))
    unknown[21] &= 0xF0  # STREAMINFO's total samples set to 0: "unknown", found while decoding
    unknown[22:26] = b"\0\0\0\0"
    opus = encoded_silence("OGG", "OPUS", 6, 8_000)
    assert len(flac) < 200_000 and len(opus) < 200_000
    rss = rss_mb(server.pid)
    for data, holds in ((flac, "60.0 minutes"), (bytes(unknown), "more than that"), (opus, "6.0")):
        started = time.monotonic()
        reply = clone(server, "clip.flac", data)
        refused(reply, 415, "unsupported_audio")
        message = reply.json()["error"]["message"]
        assert "at most 5 minutes of audio" in message and holds in message
        assert time.monotonic() - started < 5
    assert rss_mb(server.pid) - rss < 150  # an hour at 8 kHz as float32 would be +115 MB alone


# -- how it may come ----------------------------------------------------------------------------


def raw(server: Server) -> socket.socket:
    port = int(server.url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


def closed(sock: socket.socket, within: float) -> bool:
    """Whether the server closes ``sock`` within ``within`` seconds (what it sent is ignored)."""
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except OSError:
        return True
    return True


def test_slow_headers_and_too_many_connections_do_not_hold_the_server(server: Server) -> None:
    # a request whose headers come a byte at a time (slowloris): closed after 2 s (its limit)
    slow = [raw(server) for _ in range(4)]
    for sock in slow:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    time.sleep(1.0)
    for sock in slow:
        sock.sendall(b"a")  # still sending: the deadline is for the whole headers
    assert all(closed(sock, 4.0) for sock in slow)
    # over the cap of 16 open connections, a new one is closed at once
    idle = [raw(server) for _ in range(16)]
    extra = raw(server)
    assert closed(extra, 1.0)
    for sock in [*slow, *idle, extra]:
        sock.close()
    time.sleep(0.2)
    assert httpx.get(f"{server.url}/health", timeout=5).status_code == 200


def test_a_body_that_does_not_arrive_in_time_is_a_408(server: Server) -> None:
    sock = raw(server)
    head = (
        "POST /v1/audio/speech HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {server.key}\r\nContent-Length: 1000\r\n\r\n"
    )
    sock.sendall(head.encode() + b'{"input": "')  # and then nothing
    sock.settimeout(10)
    started = time.monotonic()
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
        piece = sock.recv(65536)
        if not piece:
            break
        answer += piece
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"request_timeout"' in answer and 3.5 < time.monotonic() - started < 8


FIELDS = b'{"model": "m", "voice": "Ada", "input": "Hi.", '


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b'{"input": "' + b"x" * 1_200_000 + b'"}', 413, "upload_too_large"),
        (b'{"input": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 422, "invalid_json"),
        (FIELDS + b'"max_seconds": Infinity}', 422, "invalid_json"),
        (FIELDS + b'"temperature": NaN}', 422, "invalid_json"),
        (FIELDS + b'"seed": 1e300}', 400, "invalid_request"),
        (FIELDS + b'"seed": -1}', 400, "invalid_request"),
        (FIELDS + b'"max_seconds": 1e9}', 400, "invalid_request"),
        (FIELDS + b'"top_k": 1.5}', 422, "invalid_field"),
        (FIELDS + b'"speed": "fast"}', 422, "invalid_field"),
        (FIELDS + b'"speed": 1e400}', 422, "invalid_field"),
        (b'[1, 2, 3]', 422, "invalid_json"),
    ],
)  # fmt: skip
def test_hostile_bodies_and_numbers_are_answered_in_openais_shape(
    server: Server, body: bytes, status: int, code: str
) -> None:
    reply = httpx.post(
        f"{server.url}/v1/audio/speech",
        content=body,
        headers={**server.headers, "Content-Type": "application/json"},
        timeout=30,
    )
    refused(reply, status, code)
    assert "Traceback" not in reply.text


def test_a_take_made_while_another_program_holds_the_library_is_answered_all_the_same(
    server: Server,
) -> None:
    before = api_takes(server)
    with held(server.home / "data" / "library" / "library.sqlite3"):
        voices = httpx.get(f"{server.url}/v1/audio/voices", headers=server.headers, timeout=5)
        assert [v["name"] for v in voices.json()["data"]] == ["Ada"]  # reading goes on
        reply = httpx.post(
            f"{server.url}/v1/audio/speech",
            json={**SPEECH, "response_format": "wav"},
            headers=server.headers,
            timeout=60,
        )
    assert reply.status_code == 200 and sf.info(io.BytesIO(reply.content)).frames > 0
    assert "the library is busy" in reply.headers["x-take-not-kept"]
    assert "for over 2 s" in reply.headers["x-take-not-kept"]  # the server's set wait
    assert "X-Take-Id" not in reply.headers
    assert api_takes(server) == before
    files = sorted((server.home / "data" / "api-takes").glob("*.wav"), key=os.path.getmtime)
    assert files and sf.info(files[-1]).frames == sf.info(io.BytesIO(reply.content)).frames


# -- the published document, and a fuzz run from it -------------------------------------------


def test_the_openapi_document_describes_every_route_body_and_answer(server: Server) -> None:
    document = httpx.get(f"{server.url}/openapi.json").json()  # open, like /health
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    assert set(paths) >= {"/v1/audio/speech", "/clone-voice", "/v1/models", "/v1/audio/voices"}
    speech = paths["/v1/audio/speech"]["post"]
    fields = speech["requestBody"]["content"]["application/json"]["schema"]
    assert fields["required"] == ["model", "input", "voice"]
    properties = fields["properties"]
    assert properties["seed"] == {
        "type": "integer",
        "description": properties["seed"]["description"],
        "minimum": 0,
        "maximum": 2**32 - 1,
    }
    assert properties["top_p"]["exclusiveMinimum"] == 0 and properties["top_p"]["maximum"] == 1
    assert properties["input"]["maxLength"] == 4096
    assert "wav" in properties["response_format"]["enum"]
    assert {"200", "400", "401", "403", "413", "415", "422", "503"} <= set(speech["responses"])
    form = paths["/clone-voice"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert form["schema"]["properties"]["audio"]["format"] == "binary"


@pytest.mark.parametrize(
    "operation",
    ["GET /v1/models", "GET /v1/audio/voices", "POST /v1/audio/speech", "POST /clone-voice"],
)
def test_a_fuzz_run_from_the_document_finds_no_server_error_and_no_hang(
    server: Server, operation: str
) -> None:
    """schemathesis, from the server's own /openapi.json: bodies the document allows and ones it
    does not, a bounded number of examples, each with a time limit; no 500 and no hang."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    method, path = operation.split()
    documented = set(
        httpx.get(f"{server.url}/openapi.json").json()["paths"][path][method.lower()]["responses"]
    )
    failures: list[str] = []
    seen: set[int] = set()

    @given(case=schema[path][method].as_strategy())
    @settings(
        max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def run(case: object) -> None:
        response = case.call(  # type: ignore[attr-defined]
            base_url=server.url, headers=server.headers, timeout=60
        )
        seen.add(response.status_code)
        if response.status_code >= 500 and response.status_code not in (503, 504):
            failures.append(f"{response.status_code} {response.text[:300]}")

    run()
    assert failures == []
    assert seen and {str(status) for status in seen} <= documented, (seen, documented)
