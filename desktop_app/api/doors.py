"""What a request must be before the API does any work for it, as two ASGI middlewares.

:class:`Doorman` (outermost) answers only this machine's names and allowed web pages: a ``Host``
that is not a loopback name (or one the user allowed with ``--allow-host``) is DNS rebinding; an
``Origin`` not allowed, or a browser's ``Sec-Fetch-Site: cross-site`` without one, is a web page the
user merely visits. :class:`Guard` (inside CORS) checks the key, the exact content type of each
route, and the body: its size per route (by Content-Length before reading, and while it arrives)
and the time it may take to arrive. Every refusal is a 4xx in OpenAI's error shape.
"""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
OPEN_PATHS = frozenset({"/health", "/openapi.json"})  # answered without the key


def error_response(
    status: int, message: str, kind: str, code: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """``{"error": {"message", "type", "code"}}`` with ``status``."""
    body = {"error": {"message": message, "type": kind, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def host_name(host: str) -> str:
    """The name in a ``Host`` header, without its port (``[::1]:8000`` -> ``::1``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class _Door:
    """An ASGI middleware that answers an HTTP request with its :meth:`refusal`, if any, before
    the app sees it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(scope, _headers(scope))
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, self.receive_for(scope, receive), send)

    def refusal(self, scope: Scope, headers: dict[str, str]) -> JSONResponse | None:
        raise NotImplementedError

    def receive_for(self, scope: Scope, receive: Receive) -> Receive:
        """What the app reads the body through."""
        return receive


class Doorman(_Door):
    """Refuses a request whose ``Host`` is not one of ``hosts``, or that a web page of another
    origin sends (``Origin`` not in ``origins``, or ``Sec-Fetch-Site: cross-site``)."""

    def __init__(self, app: ASGIApp, hosts: frozenset[str], origins: frozenset[str]) -> None:
        super().__init__(app)
        self.hosts = hosts
        self.origins = origins

    def refusal(self, scope: Scope, headers: dict[str, str]) -> JSONResponse | None:
        name = host_name(headers.get("host", ""))
        if name not in self.hosts:
            return error_response(
                403,
                f"this server answers only the host names {', '.join(sorted(self.hosts))}; "
                f"{name or 'no Host'} is not one of them (start it with --allow-host NAME to "
                "add one)",
                "permission_error",
                "host_not_allowed",
            )
        origin = headers.get("origin")
        if origin is not None and origin not in self.origins:
            return error_response(
                403,
                f"web pages from {origin} may not use this server (start it with "
                "--allow-origin URL to allow one)",
                "permission_error",
                "origin_not_allowed",
            )
        if origin is None and headers.get("sec-fetch-site") == "cross-site":
            return error_response(
                403,
                "a web page of another site may not use this server",
                "permission_error",
                "origin_not_allowed",
            )
        return None


@dataclass(frozen=True)
class RouteRule:
    """What a route takes: its content type and the most bytes its body may have."""

    content_type: str
    max_body: int
    what: str  # for the 413 message: what to send instead


NO_BODY = RouteRule("", 65_536, "send no body with this request")
"""The limit of a request that takes no body (a GET, an unknown route)."""


class Guard(_Door):
    """Checks the API key (except on :data:`OPEN_PATHS` and CORS preflights), the content type
    of each POST route, and its body's size and arrival time."""

    def __init__(
        self,
        app: ASGIApp,
        api_key: str | None,
        rules: dict[str, RouteRule],
        body_seconds: float,
    ) -> None:
        super().__init__(app)
        self.api_key = api_key
        self.rules = rules
        self.body_seconds = body_seconds

    def _rule(self, scope: Scope) -> RouteRule | None:
        return self.rules.get(scope["path"]) if scope["method"] == "POST" else None

    def receive_for(self, scope: Scope, receive: Receive) -> Receive:
        """``receive`` that ends the body (as a disconnect, marked in the scope's state) when it
        passes the route's size or does not arrive in ``body_seconds``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_seconds
        limits = self._rule(scope) or NO_BODY
        seen = 0
        complete = False
        state = scope.setdefault("state", {})

        async def receive_body() -> Message:
            nonlocal seen, complete
            if complete:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0.001))
            except TimeoutError:
                state["body_timeout"] = self.body_seconds
                return {"type": "http.disconnect"}
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limits.max_body:
                    state["too_large"] = limits
                    return {"type": "http.disconnect"}
                complete = not message.get("more_body", False)
            return message

        return receive_body

    def refusal(self, scope: Scope, headers: dict[str, str]) -> JSONResponse | None:
        if self.api_key and scope["method"] != "OPTIONS" and scope["path"] not in OPEN_PATHS:
            given = headers.get("x-api-key", "")
            auth = headers.get("authorization", "")
            if auth.lower().startswith("bearer "):
                given = auth[7:].strip()
            if not given:
                return error_response(
                    401,
                    "this server needs an API key: send `Authorization: Bearer <key>` (GET "
                    "/health says where the key is kept)",
                    "authentication_error",
                    "missing_api_key",
                )
            if not hmac.compare_digest(given.encode(), self.api_key.encode()):
                return error_response(
                    403, "the API key is not this server's", "permission_error", "invalid_api_key"
                )
        rule = self._rule(scope)
        if rule is None:
            return None
        kind = headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != rule.content_type:
            return error_response(
                415,
                f"send {rule.content_type} (Content-Type: {rule.content_type}), not "
                f"{kind or 'a body without a content type'}",
                "invalid_request_error",
                "unsupported_content_type",
            )
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > rule.max_body:
            return too_large(rule)
        return None


def too_large(rule: RouteRule) -> JSONResponse:
    return error_response(
        413,
        f"the request is larger than this route's limit of {rule.max_body / 1e6:g} MB; {rule.what}",
        "invalid_request_error",
        "upload_too_large",
    )


def too_slow(seconds: float) -> JSONResponse:
    return error_response(
        408,
        f"the request's body did not arrive within {seconds:g} s; send it again",
        "invalid_request_error",
        "request_timeout",
    )
