"""The local API as an ASGI app (Starlette): OpenAI's ``/v1/audio/speech``, a voice-clone route
for uploaded clips, the library's voices, the models and the health of the server.

Starlette rather than FastAPI: the routes are few and their errors must have OpenAI's shape and
the CLI's messages, which explicit parsing gives directly (FastAPI's automatic validation answers
in its own shape and brings pydantic into the bundle). Errors: :func:`error_response`.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from desktop_app import __version__
from desktop_app.api import schema
from desktop_app.api.doors import (
    LOOPBACK_NAMES,
    Doorman,
    Guard,
    RouteRule,
    error_response,
    too_large,
    too_slow,
)
from desktop_app.api.schema import FieldError
from desktop_app.api.service import SpeechService, Spoken, VoiceNotFound
from desktop_app.audio.encode import MEDIA_TYPES, StreamEncoder, change_speed, encode
from desktop_app.audio.io import TakeMetadata
from desktop_app.defaults import SAMPLE_RATE
from desktop_app.errors import AudioFileError, GenerationCancelled, UserError
from desktop_app.session.jobs import QueueFull, Ticket, TimedOut
from desktop_app.session.say import SayOptions

log = logging.getLogger(__name__)

_END = object()  # the take is done (or failed): no more audio comes


@dataclass(frozen=True)
class ServeOptions:
    """How the server is run (``csm-studio-cli serve``'s options and the window's)."""

    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    key_source: str = ""  # where a client finds the key (a file's path), said by /health
    allow_origins: tuple[str, ...] = ()
    allow_hosts: tuple[str, ...] = ()  # Host names answered besides the loopback ones
    max_queue: int = 8
    max_upload_mb: float = 50.0
    max_json_bytes: int = 1_000_000
    max_text_chars: int = 4096
    time_limit: float = 300.0
    max_connections: int = 32
    header_seconds: float = 10.0
    body_seconds: float = 60.0

    @property
    def host_names(self) -> frozenset[str]:
        """The ``Host`` names answered: this machine's, the bound address, the allowed ones."""
        bound = {self.host.strip("[]").lower()} - {"0.0.0.0", "::", ""}
        return LOOPBACK_NAMES | bound | {h.lower() for h in self.allow_hosts}


class APIError(Exception):
    """An answer other than 200, in OpenAI's shape."""

    def __init__(
        self, status: int, message: str, kind: str, code: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.code = status, message, kind, code
        self.headers = headers or {}


def error_for(exc: BaseException) -> JSONResponse:
    """The answer for an exception raised while serving a request (internals only in the log)."""
    if isinstance(exc, APIError):
        return error_response(exc.status, exc.message, exc.kind, exc.code, exc.headers)
    if isinstance(exc, VoiceNotFound):
        return error_response(404, str(exc), "invalid_request_error", "voice_not_found")
    if isinstance(exc, AudioFileError):
        return error_response(415, str(exc), "invalid_request_error", "unsupported_audio")
    if isinstance(exc, QueueFull):
        headers = {"Retry-After": str(exc.retry_after)}
        return error_response(503, str(exc), "server_error", "queue_full", headers)
    if isinstance(exc, TimedOut):
        return error_response(504, str(exc), "server_error", "timeout")
    if isinstance(exc, FieldError):
        return error_response(422, str(exc), "invalid_request_error", "invalid_field")
    if isinstance(exc, UserError):
        return error_response(400, str(exc), "invalid_request_error", "invalid_request")
    log.error("internal error while serving a request", exc_info=exc)
    return error_response(
        500, "internal error; the server's log has the details", "server_error", "internal_error"
    )


# -- the app ---------------------------------------------------------------------------------


def build_app(service: SpeechService, options: ServeOptions) -> Starlette:
    """The ASGI app over ``service``."""
    routes = _Routes(service, options)

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if status == 405:
            return error_response(
                405, f"{request.method} is not allowed here", "invalid_request_error", "bad_method"
            )
        if status == 404:
            return error_response(
                404, f"no route {request.url.path}", "invalid_request_error", "unknown_route"
            )
        return error_for(exc)

    middleware = [
        Middleware(Doorman, hosts=options.host_names, origins=frozenset(options.allow_origins))
    ]
    if options.allow_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(options.allow_origins),
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["Authorization", "Content-Type", "X-API-Key"],
            )
        )
    middleware.append(
        Middleware(
            Guard,
            api_key=options.api_key,
            rules=route_rules(options),
            body_seconds=options.body_seconds,
        )
    )
    app = Starlette(
        routes=[
            Route("/health", routes.health, methods=["GET"]),
            Route("/openapi.json", routes.openapi, methods=["GET"]),
            Route("/v1/models", routes.models, methods=["GET"]),
            Route("/v1/audio/voices", routes.voices, methods=["GET"]),
            Route("/v1/audio/speech", routes.speech, methods=["POST"]),
            Route("/clone-voice", routes.clone_voice, methods=["POST"]),
            Route("/api/voice-clone", routes.clone_voice, methods=["POST"]),
        ],
        middleware=middleware,
        exception_handlers={HTTPException: not_found, Exception: not_found},
    )
    return app


def route_rules(options: ServeOptions) -> dict[str, RouteRule]:
    """What each POST route takes: its content type and body limit."""
    upload = RouteRule(
        "multipart/form-data",
        int(options.max_upload_mb * 1e6),
        "send a shorter clip (a 10-30 s reference is plenty)",
    )
    return {
        "/v1/audio/speech": RouteRule(
            "application/json", options.max_json_bytes, "send a shorter text"
        ),
        "/clone-voice": upload,
        "/api/voice-clone": upload,
    }


Handler = Callable[[Request], Awaitable[Response]]


def _answers_errors(handler: Handler) -> Handler:
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except ClientDisconnect:
            state = request.scope.get("state", {})
            if state.get("too_large"):
                return too_large(state["too_large"])
            if state.get("body_timeout"):
                return too_slow(state["body_timeout"])
            return Response(status_code=499)
        except Exception as exc:
            return error_for(exc)

    return wrapped


class _Routes:
    def __init__(self, service: SpeechService, options: ServeOptions) -> None:
        self.service = service
        self.options = options
        self.health = _answers_errors(self._health)
        self.openapi = _answers_errors(self._openapi)
        self.models = _answers_errors(self._models)
        self.voices = _answers_errors(self._voices)
        self.speech = _answers_errors(self._speech)
        self.clone_voice = _answers_errors(self._clone_voice)

    async def _health(self, request: Request) -> Response:
        health = self.service.health()
        health["auth"] = {
            "key_required": bool(self.options.api_key),
            "key": self.options.key_source,
        }
        return JSONResponse(health)

    async def _openapi(self, request: Request) -> Response:
        return JSONResponse(schema.openapi_document(self.options.max_text_chars, __version__))

    async def _models(self, request: Request) -> Response:
        models = self.service.models()
        data = (
            []
            if models is None
            else [{"id": models.model, "object": "model", "created": 0, "owned_by": "csm-studio"}]
        )
        return JSONResponse({"object": "list", "data": data})

    async def _voices(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": self.service.voice_names()})

    def _ready(self) -> None:
        if self.service.models() is None:
            raise APIError(
                503,
                "the model is still loading; try again in a moment",
                "server_error",
                "loading",
                {"Retry-After": "5"},
            )

    # -- /v1/audio/speech ----------------------------------------------------------------------

    async def _speech(self, request: Request) -> Response:
        body = await request.body()  # the Guard has checked its type and capped its size
        data = await run_in_threadpool(_json_object, body)
        fields = schema.read_fields(schema.speech_fields(self.options.max_text_chars), data)
        voice = fields["voice"]
        fmt = fields["response_format"]
        stream_format = fields["stream_format"]
        speed = fields["speed"]
        settings = self._settings(fields)
        self._ready()
        references = self.service.voice_clips(voice)
        adapter = self.service.voice_adapter(voice)
        settings = dataclasses.replace(settings, references=references, adapter=adapter)
        streams = speed == 1.0 and fmt != "flac" and (stream_format is not None or fmt != "wav")
        options = _say_options(fields)
        return await self._answer(
            request, settings, options, voice, None, fmt, stream_format, speed, streams
        )

    def _settings(self, fields: dict[str, Any]) -> Any:
        from desktop_app.session.requests import make_request

        return make_request(  # the CLI's own messages for out-of-range settings
            fields["input"] if "input" in fields else fields["text"],
            temperature=fields["temperature"],
            top_k=fields["top_k"],
            top_p=fields["top_p"],
            seed=fields["seed"],
            max_seconds=fields["max_seconds"],
        )

    # -- /clone-voice --------------------------------------------------------------------------

    async def _clone_voice(self, request: Request) -> Response:
        try:
            form = await request.form(max_files=1, max_fields=20)
        except ClientDisconnect:
            raise
        except Exception as exc:  # python-multipart's and Starlette's parse errors
            raise APIError(
                422, f"the form cannot be read: {exc}", "invalid_request_error", "invalid_form"
            ) from None
        try:
            upload = form.get("audio")
            if upload is None or isinstance(upload, str):
                raise APIError(
                    422,
                    "the form needs the file field `audio` (the voice's clip)",
                    "invalid_request_error",
                    "invalid_form",
                )
            values = {k: v for k, v in form.items() if isinstance(v, str)}
            fields = schema.read_fields(
                schema.clone_fields(self.options.max_text_chars), values, from_text=True
            )
            settings = self._settings(fields)
            self._ready()
            data = await upload.read()
        finally:
            await form.close()
        from desktop_app.inference import ReferenceClip

        placeholder = (ReferenceClip(np.zeros(1, np.float32), fields["transcript"] or ""),)
        settings = dataclasses.replace(settings, references=placeholder)
        options = _say_options(fields)
        fmt = fields["format"]
        return await self._answer(request, settings, options, None, data, fmt, None, 1.0, False)

    # -- making and answering ------------------------------------------------------------------

    async def _answer(
        self,
        request: Request,
        settings: Any,
        options: SayOptions,
        voice: str | None,
        upload: bytes | None,
        fmt: str,
        stream_format: str | None,
        speed: float,
        streams: bool,
    ) -> Response:
        loop = asyncio.get_running_loop()
        chunks: asyncio.Queue[Any] = asyncio.Queue()

        def on_audio(piece: np.ndarray) -> None:
            loop.call_soon_threadsafe(chunks.put_nowait, np.array(piece, dtype=np.float32))

        ticket = self.service.speak(
            settings, voice, on_audio=on_audio if streams else None, upload=upload, options=options
        )
        ticket.future.add_done_callback(
            lambda _: loop.call_soon_threadsafe(chunks.put_nowait, _END)
        )
        meta = TakeMetadata(settings.text, self._model_name(), settings.seed, voice=voice or "")
        if not streams:
            await _until_done_or_gone(request, ticket, chunks)
            spoken: Spoken = ticket.future.result()
            audio = change_speed(spoken.result.audio, SAMPLE_RATE, speed)
            headers = _take_headers(spoken)
            return Response(
                encode(audio, SAMPLE_RATE, fmt, meta), media_type=MEDIA_TYPES[fmt], headers=headers
            )
        first = await _until_done_or_gone(request, ticket, chunks)
        if first is _END and ticket.future.exception() is not None:
            raise ticket.future.exception()  # type: ignore[misc]
        sse = stream_format == "sse"
        media = "text/event-stream" if sse else MEDIA_TYPES[fmt]
        return StreamingResponse(
            _stream(ticket, chunks, first, fmt, meta, sse),
            media_type=media,
            headers={"X-Seed": str(settings.seed)},
        )

    def _model_name(self) -> str:
        models = self.service.models()
        return models.model if models is not None else ""


async def _until_done_or_gone(request: Request, ticket: Ticket, chunks: asyncio.Queue[Any]) -> Any:
    """The first piece of audio (or the end), cancelling the take if the client goes first."""
    got = asyncio.ensure_future(chunks.get())
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({got, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    if not got.done():
        got.cancel()
        ticket.cancel()
        raise ClientDisconnect()
    piece = got.result()
    if piece is _END:
        error = ticket.future.exception()
        if isinstance(error, GenerationCancelled) and ticket.cancelled:
            raise ClientDisconnect()
        if error is not None:
            raise error
        return _END
    # not streaming: wait on for the end (the pieces are not used)
    return piece


async def _disconnected(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def _stream(
    ticket: Ticket,
    chunks: asyncio.Queue[Any],
    first: Any,
    fmt: str,
    meta: TakeMetadata,
    sse: bool,
) -> AsyncIterator[bytes]:
    encoder = StreamEncoder("pcm" if sse and fmt == "flac" else fmt, SAMPLE_RATE, meta)

    def out(data: bytes) -> bytes:
        if not sse:
            return data
        event = {"type": "speech.audio.delta", "audio": base64.b64encode(data).decode()}
        return f"data: {json.dumps(event)}\n\n".encode()

    try:
        piece = first
        while piece is not _END:
            data = encoder.feed(piece)
            if data:
                yield out(data)
            piece = await chunks.get()
        error = ticket.future.exception()
        if error is not None:
            log.error("a streamed take stopped: %s", error)
            return
        tail = encoder.finish()
        if tail:
            yield out(tail)
        if sse:
            yield b'data: {"type": "speech.audio.done"}\n\n'
    finally:
        ticket.cancel()  # the client went away mid-stream: the take stops at its next frame


def _say_options(fields: dict[str, Any]) -> SayOptions:
    """How the request's take is made: best of N, checked or only trimmed."""
    return SayOptions(candidates=fields["best_of"], check=fields["check"])


def _take_headers(spoken: Spoken) -> dict[str, str]:
    headers = {"X-Seed": str(spoken.result.seed)}
    if spoken.check is not None:
        headers["X-Verdict"] = spoken.check.verdict
    if spoken.record is not None:
        headers["X-Take-Id"] = str(spoken.record.id)
    elif spoken.not_kept:
        headers["X-Take-Not-Kept"] = _header_text(spoken.not_kept)
    if spoken.transcript:
        headers["X-Transcript"] = _header_text(spoken.transcript)
    return headers


def _header_text(text: str) -> str:
    """``text`` as a header value: printable ASCII, at most 500 characters."""
    ascii_text = text.encode("ascii", "replace").decode()
    return "".join(c if c.isprintable() else " " for c in ascii_text)[:500]


def _json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object (run off the event loop).

    Raises:
        APIError: not JSON, a constant JSON does not have (NaN, Infinity), nested too deep, or
            not an object.
    """

    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    try:
        data = json.loads(body, parse_constant=no_constants)
    except (ValueError, RecursionError) as exc:
        reason = "it is nested too deep" if isinstance(exc, RecursionError) else str(exc)
        raise APIError(
            422, f"the body is not valid JSON: {reason}", "invalid_request_error", "invalid_json"
        ) from None
    if not isinstance(data, dict):
        raise APIError(
            422, "the body must be a JSON object", "invalid_request_error", "invalid_json"
        )
    return data
