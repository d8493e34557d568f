"""Model providers: the HTTP edge between the router and the models of the pool."""

from router.providers.base import (
    ChatRequest,
    Completion,
    Delta,
    FunctionCall,
    Provider,
    RateLimit,
    StreamEvent,
    ToolCallDelta,
)
from router.providers.openai_compat import OpenAICompatProvider

__all__ = [
    "ChatRequest",
    "Completion",
    "Delta",
    "FunctionCall",
    "OpenAICompatProvider",
    "Provider",
    "RateLimit",
    "StreamEvent",
    "ToolCallDelta",
]
