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
import hmac
import json
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from desktop_app.api.queue import QueueFull, Ticket, TimedOut
from desktop_app.api.service import SpeechService, Spoken, VoiceNotFound
from desktop_app.audio.encode import MEDIA_TYPES, SPEEDS, StreamEncoder, change_speed, encode
from desktop_app.audio.io import TakeMetadata
from desktop_app.defaults import SAMPLE_RATE
from desktop_app.errors import AudioFileError, GenerationCancelled, UserError

log = logging.getLogger(__name__)

UPLOAD_SUFFIXES = {
    "audio/webm": ".webm",
    "video/webm": ".webm",
    "audio/ogg": ".ogg",
    "audio/opus": ".ogg",
    "audio/wav": ".wav",
    "audio/x-wav": ".wav",
    "audio/wave": ".wav",
    "audio/flac": ".flac",
    "audio/mpeg": ".mp3",
    "audio/mp4": ".m4a",
    "audio/aac": ".aac",
}
_END = object()  # the take is done (or failed): no more audio comes


@dataclass(frozen=True)
class ServeOptions:
    """How the server is run (``csm-studio-cli serve``'s options)."""

    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    allow_origins: tuple[str, ...] = ()
    max_queue: int = 8
    max_upload_mb: float = 50.0
    max_text_chars: int = 4096
    time_limit: float = 300.0


class APIError(Exception):
    """An answer other than 200, in OpenAI's shape."""

    def __init__(
        self, status: int, message: str, kind: str, code: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.code = status, message, kind, code
        self.headers = headers or {}


def error_response(
    status: int, message: str, kind: str, code: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """``{"error": {"message", "type", "code"}}`` with ``status``."""
    body = {"error": {"message": message, "type": kind, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


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
    if isinstance(exc, UserError):
        return error_response(400, str(exc), "invalid_request_error", "invalid_request")
    log.error("internal error while serving a request", exc_info=exc)
    return error_response(
        500, "internal error; the server's log has the details", "server_error", "internal_error"
    )


# -- the guard: keys and body size ------------------------------------------------------------


class Guard:
    """Checks the API key (except for ``/health`` and CORS preflights) and refuses a body over
    the limit: by its Content-Length before reading it, or as soon as a chunked body passes it."""

    def __init__(self, app: ASGIApp, api_key: str | None, max_body: int) -> None:
        self.app = app
        self.api_key = api_key
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    scope.setdefault("state", {})["too_large"] = True
                    return {"type": "http.disconnect"}
            return message

        await self.app(scope, counted, send)

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> JSONResponse | None:
        if self.api_key and scope["method"] != "OPTIONS" and scope["path"] != "/health":
            given = headers.get("x-api-key", "")
            auth = headers.get("authorization", "")
            if auth.lower().startswith("bearer "):
                given = auth[7:].strip()
            if not given:
                return error_response(
                    401,
                    "this server needs an API key: send `Authorization: Bearer <key>`",
                    "authentication_error",
                    "missing_api_key",
                )
            if not hmac.compare_digest(given.encode(), self.api_key.encode()):
                return error_response(
                    403, "the API key is not this server's", "permission_error", "invalid_api_key"
                )
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body:
            return too_large(self.max_body)
        return None


def too_large(limit: int) -> JSONResponse:
    return error_response(
        413,
        f"the request is larger than this server's limit of {limit / 1e6:g} MB; send a shorter "
        "clip (a 10-30 s reference is plenty)",
        "invalid_request_error",
        "upload_too_large",
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

    middleware = []
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
        Middleware(Guard, api_key=options.api_key, max_body=int(options.max_upload_mb * 1e6))
    )
    app = Starlette(
        routes=[
            Route("/health", routes.health, methods=["GET"]),
            Route("/v1/models", routes.models, methods=["GET"]),
            Route("/v1/audio/voices", routes.voices, methods=["GET"]),
            Route("/v1/audio/speech", routes.speech, methods=["POST"]),
            Route("/clone-voice", routes.clone_voice, methods=["POST"]),
            Route("/api/voice-clone", routes.clone_voice, methods=["POST"]),
        ],
        middleware=middleware,
        exception_handlers={HTTPException: not_found, Exception: not_found},
    )
    app.state.max_body = int(options.max_upload_mb * 1e6)
    return app


Handler = Callable[[Request], Awaitable[Response]]


def _answers_errors(handler: Handler) -> Handler:
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except ClientDisconnect:
            if request.scope.get("state", {}).get("too_large"):
                return too_large(int(request.app.state.max_body))
            return Response(status_code=499)
        except Exception as exc:
            return error_for(exc)

    return wrapped


class _Routes:
    def __init__(self, service: SpeechService, options: ServeOptions) -> None:
        self.service = service
        self.options = options
        self.health = _answers_errors(self._health)
        self.models = _answers_errors(self._models)
        self.voices = _answers_errors(self._voices)
        self.speech = _answers_errors(self._speech)
        self.clone_voice = _answers_errors(self._clone_voice)

    async def _health(self, request: Request) -> Response:
        return JSONResponse(self.service.health())

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
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind not in ("application/json", ""):
            raise APIError(
                415,
                f"send JSON (Content-Type: application/json), not {kind}",
                "invalid_request_error",
                "unsupported_content_type",
            )
        body = await request.body()
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise APIError(
                422, f"the body is not valid JSON: {exc}", "invalid_request_error", "invalid_json"
            ) from None
        if not isinstance(data, dict):
            raise APIError(
                422, "the body must be a JSON object", "invalid_request_error", "invalid_json"
            )
        fields = _Fields(data)
        fields.text("model")
        text = fields.text("input")
        voice = fields.text("voice")
        fmt = fields.choice("response_format", tuple(MEDIA_TYPES), "mp3")
        stream_format = fields.choice("stream_format", ("audio", "sse"), None)
        speed = fields.number("speed", 1.0)
        if not SPEEDS[0] <= speed <= SPEEDS[1]:
            raise UserError(f"speed must be between {SPEEDS[0]} and {SPEEDS[1]} (got {speed:g})")
        settings = self._settings(fields, text)
        self._ready()
        references = self.service.voice_clips(voice)
        settings = dataclasses.replace(settings, references=references)
        streams = speed == 1.0 and fmt != "flac" and (stream_format is not None or fmt != "wav")
        return await self._answer(
            request, settings, voice, None, fmt, stream_format, speed, streams
        )

    def _settings(self, fields: _Fields, text: str) -> Any:
        from desktop_app.inference import GenerationRequest
        from desktop_app.inference.prompt import check_request

        if len(text) > self.options.max_text_chars:
            raise UserError(
                f"the text is {len(text)} characters long; this server takes at most "
                f"{self.options.max_text_chars} (split it, or start it with --max-text-chars)"
            )
        base = GenerationRequest(text)
        seed = fields.integer("seed", None)
        request = GenerationRequest(
            text=text,
            temperature=fields.number("temperature", base.temperature),
            top_k=fields.integer("top_k", base.top_k) or 0,
            top_p=fields.number("top_p", base.top_p),
            seed=seed if seed is not None else random.randrange(2**31),
            max_seconds=fields.number("max_seconds", base.max_seconds),
        )
        check_request(request)  # the CLI's own messages for out-of-range settings
        return request

    # -- /clone-voice --------------------------------------------------------------------------

    async def _clone_voice(self, request: Request) -> Response:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "multipart/form-data":
            raise APIError(
                415,
                "send a multipart form (Content-Type: multipart/form-data) with `audio` and "
                f"`text`, not {kind or 'no content type'}",
                "invalid_request_error",
                "unsupported_content_type",
            )
        try:
            form = await request.form(max_files=1, max_fields=20)
        except ClientDisconnect:
            raise
        except Exception as exc:  # python-multipart's and Starlette's parse errors
            raise APIError(
                422, f"the form cannot be read: {exc}", "invalid_request_error", "invalid_form"
            ) from None
        upload = form.get("audio")
        if upload is None or isinstance(upload, str):
            raise APIError(
                422,
                "the form needs the file field `audio` (the voice's clip)",
                "invalid_request_error",
                "invalid_form",
            )
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        fields = _Fields(values, numbers_from_text=True)
        text = fields.text("text")
        transcript = fields.text("transcript", required=False)
        fmt = fields.choice("format", ("wav", "flac"), "wav")
        settings = self._settings(fields, text)
        self._ready()
        data = await upload.read()
        await form.close()
        suffix = Path(upload.filename or "").suffix.lower() or UPLOAD_SUFFIXES.get(
            (upload.content_type or "").split(";")[0].strip().lower(), ""
        )
        from desktop_app.inference import ReferenceClip

        placeholder = (ReferenceClip(np.zeros(1, np.float32), transcript),)
        settings = dataclasses.replace(settings, references=placeholder)
        return await self._answer(request, settings, None, (data, suffix), fmt, None, 1.0, False)

    # -- making and answering ------------------------------------------------------------------

    async def _answer(
        self,
        request: Request,
        settings: Any,
        voice: str | None,
        upload: tuple[bytes, str] | None,
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
            settings, voice, on_audio=on_audio if streams else None, upload=upload
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


def _take_headers(spoken: Spoken) -> dict[str, str]:
    headers = {"X-Seed": str(spoken.result.seed)}
    if spoken.record is not None:
        headers["X-Take-Id"] = str(spoken.record.id)
    if spoken.transcript:
        headers["X-Transcript"] = spoken.transcript.encode("ascii", "replace").decode()[:500]
    return headers


class _Fields:
    """A request's fields, checked one by one (a missing or mistyped field is a 422)."""

    def __init__(self, data: dict[str, Any], numbers_from_text: bool = False) -> None:
        self.data = data
        self.used: set[str] = set()
        self.from_text = numbers_from_text

    def _bad(self, message: str) -> APIError:
        return APIError(422, message, "invalid_request_error", "invalid_field")

    def text(self, name: str, required: bool = True) -> str:
        self.used.add(name)
        value = self.data.get(name)
        if value is None and not required:
            return ""
        if not isinstance(value, str):
            if value is None:
                raise self._bad(f"the field `{name}` is missing")
            raise self._bad(f"the field `{name}` must be a string")
        return value

    def choice(self, name: str, options: tuple[str, ...], default: str | None) -> Any:
        self.used.add(name)
        value = self.data.get(name)
        if value is None or value == "":
            return default
        if value not in options:
            raise UserError(f"`{name}` must be one of {', '.join(options)} (got {value!r})")
        return value

    def number(self, name: str, default: float) -> float:
        self.used.add(name)
        value = self.data.get(name)
        if value is None or value == "":
            return default
        if self.from_text and isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise self._bad(f"the field `{name}` must be a number") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._bad(f"the field `{name}` must be a number")
        return float(value)

    def integer(self, name: str, default: int | None) -> int | None:
        value = self.number(name, float("nan") if default is None else default)
        if value != value:  # NaN: absent
            return None
        if value != int(value):
            raise self._bad(f"the field `{name}` must be a whole number")
        return int(value)
