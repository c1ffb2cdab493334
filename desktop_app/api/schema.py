"""The API's request fields, declared once: they check each request and make the OpenAPI
document that ``GET /openapi.json`` publishes (so clients can be generated from it).

A field of the wrong type, a number that is not finite, or a fraction where a whole number is
asked is a 422 (``invalid_field``); a value out of its range or not among its choices is a 400
(``invalid_request``) with the same words as the command line where the command line has the
same setting (those ranges are checked by the core's ``check_request``, once for every face).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from desktop_app import defaults
from desktop_app.audio.encode import MEDIA_TYPES, SPEEDS
from desktop_app.checks.best_of import MAX_CANDIDATES
from desktop_app.errors import UserError

MAX_SEED = 2**32 - 1
MAX_TAKE_SECONDS = 120.0  # CSM's 2048 positions hold at most ~160 s of audio, references included
NAME_CHARS = 200


class FieldError(UserError):
    """A field of the wrong type (a 422): the body is not what the route takes."""


@dataclass(frozen=True)
class Field:
    """One field of a request body: its JSON type, its limits and what it means."""

    name: str
    kind: str  # "string", "number", "integer" or "binary" (a file of a form)
    description: str
    required: bool = False
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None  # exclusive minimum
    choices: tuple[str, ...] = ()
    max_length: int | None = None
    core_checked: bool = False  # the range is the core's to check (the CLI's words)

    def schema(self) -> dict[str, Any]:
        """This field as a JSON Schema (OpenAPI 3.1)."""
        if self.kind == "binary":
            return {"type": "string", "format": "binary", "description": self.description}
        out: dict[str, Any] = {"type": self.kind, "description": self.description}
        for key, value in (
            ("default", self.default),
            ("minimum", self.minimum),
            ("maximum", self.maximum),
            ("exclusiveMinimum", self.above),
            ("maxLength", self.max_length),
        ):
            if value is not None:
                out[key] = value
        if self.choices:
            out["enum"] = list(self.choices)
        if self.kind == "string" and self.required and not self.choices:
            out["minLength"] = 1
        return out


_SAMPLING = (
    Field(
        "temperature",
        "number",
        "sampling temperature of both levels; 0 is greedy",
        default=defaults.TEMPERATURE,
        minimum=0.0,
        core_checked=True,
    ),
    Field(
        "top_k",
        "integer",
        "keep the k likeliest codes; 0 turns it off",
        default=defaults.TOP_K,
        minimum=0,
        maximum=65_536,
        core_checked=True,
    ),
    Field(
        "top_p",
        "number",
        "nucleus sampling: keep the likeliest codes up to this probability",
        default=defaults.TOP_P,
        above=0.0,
        maximum=1.0,
        core_checked=True,
    ),
    Field(
        "seed", "integer", "the random seed (a new one when left out)", minimum=0, maximum=MAX_SEED
    ),
    Field(
        "max_seconds",
        "number",
        "the longest a sentence may run (seconds)",
        default=defaults.MAX_SECONDS,
        above=0.0,
        maximum=MAX_TAKE_SECONDS,
    ),
    Field(
        "best_of",
        "integer",
        "make this many takes (seeds seed, seed+1, ...) and answer the one the checks rank best",
        default=1,
        minimum=1,
        maximum=MAX_CANDIDATES,
    ),
    Field(
        "check",
        "string",
        "full: listen back (words, voice) and trim what follows the last speech; trim: only "
        "trim (no speech recogniser: lower latency)",
        default="full",
        choices=("full", "trim"),
    ),
)


def speech_fields(max_text_chars: int) -> tuple[Field, ...]:
    """``POST /v1/audio/speech`` (OpenAI's fields, then this studio's)."""
    return (
        Field(
            "model", "string", "any name (the server has one model)", True, max_length=NAME_CHARS
        ),
        Field("input", "string", "the text to say", True, max_length=max_text_chars),
        Field(
            "voice",
            "string",
            "a voice of the library (GET /v1/audio/voices)",
            True,
            max_length=NAME_CHARS,
        ),
        Field(
            "response_format",
            "string",
            "the audio format",
            default="mp3",
            choices=tuple(MEDIA_TYPES),
        ),
        Field(
            "stream_format",
            "string",
            "audio: the bytes as made; sse: server-sent events of base64 audio",
            choices=("audio", "sse"),
        ),
        Field(
            "speed",
            "number",
            "playback speed, pitch kept",
            default=1.0,
            minimum=SPEEDS[0],
            maximum=SPEEDS[1],
        ),
        *_SAMPLING,
    )


def clone_fields(max_text_chars: int) -> tuple[Field, ...]:
    """``POST /clone-voice`` (a multipart form)."""
    return (
        Field("audio", "binary", "the voice's clip (WAV, FLAC, Ogg, MP3, M4A, AAC, WebM)", True),
        Field("text", "string", "the text to say", True, max_length=max_text_chars),
        Field(
            "transcript",
            "string",
            "exactly what the clip says (heard by the recogniser when left out)",
            max_length=max_text_chars,
        ),
        Field("format", "string", "the audio format", default="wav", choices=("wav", "flac")),
        *_SAMPLING,
    )


def read_fields(
    fields: tuple[Field, ...], data: dict[str, Any], *, from_text: bool = False
) -> dict[str, Any]:
    """Each declared field of ``data`` checked (form fields, ``from_text``, come as strings);
    a field left out is its default (None when it has none).

    Raises:
        FieldError: a missing required field, a wrong type, a number that is not finite.
        UserError: a value out of range or not among the choices (not for ``core_checked``).
    """
    out: dict[str, Any] = {}
    for field in fields:
        if field.kind == "binary":
            continue
        value = data.get(field.name)
        if value is None or (value == "" and not field.required):
            if field.required:
                raise FieldError(f"the field `{field.name}` is missing")
            out[field.name] = field.default
            continue
        out[field.name] = _value(field, value, from_text)
    return out


def _value(field: Field, value: Any, from_text: bool) -> Any:
    if field.kind == "string":
        if not isinstance(value, str):
            raise FieldError(f"the field `{field.name}` must be a string")
        if field.choices and value not in field.choices:
            raise UserError(
                f"`{field.name}` must be one of {', '.join(field.choices)} (got {value!r})"
            )
        if field.max_length is not None and len(value) > field.max_length:
            raise UserError(
                f"`{field.name}` is {len(value)} characters long; this server takes at most "
                f"{field.max_length}"
            )
        return value
    if from_text and isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise FieldError(f"the field `{field.name}` must be a number") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FieldError(f"the field `{field.name}` must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise FieldError(f"the field `{field.name}` must be a finite number")
    if field.kind == "integer":
        if value != int(value):
            raise FieldError(f"the field `{field.name}` must be a whole number")
        value = int(value)
    else:
        value = float(value)
    if not field.core_checked:
        _check_range(field, value)
    return value


def _check_range(field: Field, value: float) -> None:
    low = field.minimum if field.minimum is not None else field.above
    too_low = (field.minimum is not None and value < field.minimum) or (
        field.above is not None and value <= field.above
    )
    too_high = field.maximum is not None and value > field.maximum
    if too_low or too_high:
        raise UserError(
            f"`{field.name}` must be between {low:g} and {field.maximum:g} (got {value:g})"
            if field.maximum is not None
            else f"`{field.name}` must be above {low:g} (got {value:g})"
        )


# -- the OpenAPI document -------------------------------------------------------------------

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "code": {"type": "string"},
            },
        }
    },
}
_REFUSALS = {
    "400": "a value out of range or not among the choices",
    "401": "no API key",
    "403": "a wrong key, or a Host or Origin this server does not answer",
    "404": "an unknown voice or route",
    "408": "the body did not arrive in time",
    "413": "the body is over the route's limit",
    "415": "the wrong content type, or audio that is not a supported file",
    "422": "a field of the wrong type, or a body that is not valid JSON or a form",
    "503": "the model is loading or too many requests wait (see Retry-After)",
    "504": "the request ran past the server's time limit",
}


def _errors(*codes: str) -> dict[str, Any]:
    return {
        code: {
            "description": _REFUSALS[code],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for code in codes
    }


def _object(fields: tuple[Field, ...]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": [f.name for f in fields if f.required],
        "properties": {f.name: f.schema() for f in fields},
        "additionalProperties": True,
    }


def _json_get(summary: str, schema: dict[str, Any], *errors: str) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "responses": {
                "200": {
                    "description": summary,
                    "content": {"application/json": {"schema": schema}},
                },
                **_errors(*errors),
            },
        }
    }


def openapi_document(max_text_chars: int, version: str) -> dict[str, Any]:
    """The API's routes, each request body's fields (types, ranges, choices) and every answer."""
    audio = {
        media: {"schema": {"type": "string", "format": "binary"}}
        for media in sorted(set(MEDIA_TYPES.values()) | {"text/event-stream"})
    }
    take_errors = ("400", "401", "403", "404", "408", "413", "415", "422", "503", "504")
    listing = {
        "type": "object",
        "properties": {"object": {"type": "string"}, "data": {"type": "array"}},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "CSM Studio local API",
            "version": version,
            "description": "OpenAI-compatible speech from this studio's voices, on this machine. "
            "Send the key as `Authorization: Bearer <key>`; GET /health says where it is kept.",
        },
        "components": {
            "schemas": {"Error": _ERROR},
            "securitySchemes": {"key": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"key": []}],
        "paths": {
            "/health": {
                "get": {
                    "summary": "whether the model is loaded, the queue, and where the key is",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "the server's state",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        **_errors("403"),
                    },
                }
            },
            "/v1/models": _json_get("the model", listing, "401", "403"),
            "/v1/audio/voices": _json_get("the library's voices", listing, "401", "403"),
            "/v1/audio/speech": {
                "post": {
                    "summary": "say a text in a library voice",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": _object(speech_fields(max_text_chars))}
                        },
                    },
                    "responses": {
                        "200": {"description": "the audio", "content": audio},
                        **_errors(*take_errors),
                    },
                }
            },
            **{
                route: {
                    "post": {
                        "summary": "say a text in the voice of an uploaded clip",
                        "requestBody": {
                            "required": True,
                            "content": {
                                "multipart/form-data": {
                                    "schema": _object(clone_fields(max_text_chars))
                                }
                            },
                        },
                        "responses": {
                            "200": {"description": "the audio", "content": audio},
                            **_errors(*take_errors),
                        },
                    }
                }
                for route in ("/clone-voice", "/api/voice-clone")
            },
        },
    }
