"""The one translation from signalroute errors to HTTP responses."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from features.errors import (
    AuthenticationError,
    BudgetExceededError,
    ProviderRateLimitedError,
    SignalrouteError,
)

log = logging.getLogger("signalroute.http")


def error_body(code: str, message: str) -> dict[str, Any]:
    """An OpenAI-style error body, so OpenAI clients surface the message."""
    return {"error": {"code": code, "message": message, "type": code}}


async def _signalroute_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SignalrouteError)
    if exc.status_code >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, exc.message)
    headers: dict[str, str] = {}
    if isinstance(exc, ProviderRateLimitedError) and exc.retry_after_s is not None:
        headers["retry-after"] = f"{exc.retry_after_s:g}"
    if isinstance(exc, AuthenticationError):
        headers["www-authenticate"] = 'Bearer realm="signalroute"'
    if isinstance(exc, BudgetExceededError):
        headers["x-signalroute-budget-remaining-usd"] = f"{max(0.0, exc.remaining_usd):.6f}"
    return JSONResponse(
        error_body(exc.code, exc.message), status_code=exc.status_code, headers=headers
    )


def _problem(error: Mapping[str, Any]) -> str:
    location = tuple(error.get("loc", ()))
    kind = error.get("type")
    if kind == "json_invalid":
        reason = (error.get("ctx") or {}).get("error", "invalid")
        return f"body: not valid JSON ({reason} at character {location[-1]})"
    if kind == "model_attributes_type" and location == ("body",):
        return "body: must be a JSON object (sent with content-type: application/json)"
    where = ".".join(str(part) for part in location if part != "body")
    return f"{where or 'body'}: {error.get('msg', 'invalid')}"


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [_problem(error) for error in exc.errors()]
    return JSONResponse(
        error_body("invalid_request", "; ".join(problems) or "invalid request"), status_code=400
    )


_HTTP_CODES = {
    400: "invalid_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def _http_message(request: Request, exc: StarletteHTTPException) -> str:
    """The framework's terse detail, said in full where we know more."""
    default = HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and exc.detail == default:
        return f"no endpoint at {request.url.path}; the API is described at /docs"
    if exc.status_code == 405 and exc.detail == default:
        allowed = {k.lower(): v for k, v in (exc.headers or {}).items()}.get("allow", "")
        return f"{request.method} is not allowed on {request.url.path} (allowed: {allowed})"
    if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
        return "the request body could not be parsed: send one JSON object, UTF-8 encoded"
    return str(exc.detail or default)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """Errors the framework raises itself (no route, wrong method, unreadable body)."""
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse(
        error_body(_HTTP_CODES.get(exc.status_code, "http_error"), _http_message(request, exc)),
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """A bug: still a JSON error (the server logs the traceback)."""
    return JSONResponse(
        error_body(
            "internal_error",
            f"internal error while serving {request.method} {request.url.path}; "
            "the service log has its traceback",
        ),
        status_code=500,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Map SignalrouteError subclasses, request validation failures and the framework's own
    HTTP errors to JSON errors."""
    app.add_exception_handler(SignalrouteError, _signalroute_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
