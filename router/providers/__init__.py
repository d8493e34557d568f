"""Model providers: the HTTP edge between the router and the models of the pool."""

from router.providers.base import (
    ChatRequest,
    Completion,
    Delta,
    Provider,
    RateLimit,
    StreamEvent,
)
from router.providers.openai_compat import OpenAICompatProvider

__all__ = [
    "ChatRequest",
    "Completion",
    "Delta",
    "OpenAICompatProvider",
    "Provider",
    "RateLimit",
    "StreamEvent",
]
