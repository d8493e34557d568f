"""The one exception hierarchy of signalroute.

Every boundary translates what it catches (httpx errors in providers, psycopg errors in the
store, bad files in configuration) into one of these, and the HTTP layer maps each class to a
status code and a JSON body with a message that says what is wrong.
"""

from __future__ import annotations


class SignalrouteError(Exception):
    """Base of every error signalroute raises on purpose."""

    status_code = 500
    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- configuration -------------------------------------------------------------------------


class ConfigError(SignalrouteError):
    """A setting, file or path is invalid; the message names it and says what to fix."""

    code = "config_error"


# --- store -----------------------------------------------------------------------------------


class StoreError(SignalrouteError):
    """The store failed in a way the caller cannot fix."""

    status_code = 503
    code = "store_error"


class StoreUnavailableError(StoreError):
    """The database cannot be reached (wrong URL, server down, embedded server failed)."""

    code = "store_unavailable"


class ConflictError(StoreError):
    """A write collides with an existing row (e.g. an idempotency key reused differently)."""

    status_code = 409
    code = "conflict"


# --- providers -------------------------------------------------------------------------------


class ProviderError(SignalrouteError):
    """A model provider call failed; ``arm`` names the arm that failed."""

    status_code = 502
    code = "provider_error"

    def __init__(self, message: str, *, arm: str) -> None:
        super().__init__(message)
        self.arm = arm


class ProviderTimeoutError(ProviderError):
    """The provider did not answer (or stream) within the configured timeout."""

    status_code = 504
    code = "provider_timeout"


class ProviderRateLimitedError(ProviderError):
    """The provider answered 429; ``retry_after_s`` comes from its Retry-After header."""

    status_code = 429
    code = "provider_rate_limited"

    def __init__(self, message: str, *, arm: str, retry_after_s: float | None) -> None:
        super().__init__(message, arm=arm)
        self.retry_after_s = retry_after_s


class ProviderServerError(ProviderError):
    """The provider answered 5xx, or the connection broke."""

    code = "provider_server_error"


class ProviderRejectedError(ProviderError):
    """The provider answered 4xx (other than 429): our request or credentials are wrong."""

    code = "provider_rejected"


class ProviderBadResponseError(ProviderError):
    """The provider answered 2xx with a body that is not a valid chat completion."""

    code = "provider_bad_response"


# --- requests --------------------------------------------------------------------------------


class RequestError(SignalrouteError):
    """The caller's request is invalid; nothing was written."""

    status_code = 400
    code = "invalid_request"


class NotFoundError(RequestError):
    """A referenced id (request, decision, arm) does not exist."""

    status_code = 404
    code = "not_found"


class PayloadTooLargeError(RequestError):
    """A request body or prompt is over the service's size limits (the message says which)."""

    status_code = 413
    code = "payload_too_large"


class NoEligibleArmError(RequestError):
    """Every arm of the pool violates the request's constraints or is unavailable."""

    status_code = 422
    code = "no_eligible_arm"


class FeedbackWindowClosedError(RequestError):
    """Feedback on a decision older than the feedback window: refused, nothing recorded."""

    status_code = 422
    code = "feedback_window_closed"


# --- access ----------------------------------------------------------------------------------


class AuthenticationError(RequestError):
    """No API key, or one that is unknown or revoked (the message says which)."""

    status_code = 401
    code = "invalid_api_key"


class PermissionDeniedError(RequestError):
    """The caller's key may not do this (another key's feedback, another tenant's name)."""

    status_code = 403
    code = "permission_denied"


class BudgetExceededError(RequestError):
    """A tenant's or session's budget is used up; ``remaining_usd`` is what is left (<= 0)."""

    status_code = 402
    code = "budget_exceeded"

    def __init__(self, message: str, *, scope: str, remaining_usd: float) -> None:
        super().__init__(message)
        self.scope = scope
        self.remaining_usd = remaining_usd
