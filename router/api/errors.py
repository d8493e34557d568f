"""The one translation from signalroute errors to HTTP responses."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

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


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        problems.append(f"{where or 'body'}: {error.get('msg', 'invalid')}")
    return JSONResponse(
        error_body("invalid_request", "; ".join(problems) or "invalid request"), status_code=400
    )


def install_error_handlers(app: FastAPI) -> None:
    """Map SignalrouteError subclasses and request validation failures to JSON errors."""
    app.add_exception_handler(SignalrouteError, _signalroute_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
