"""API key tokens: random, recognisable by their prefix, stored only as their sha256."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "sr-"
"""Every signalroute API key starts with this, so a leaked one is easy to recognise."""

DISPLAY_CHARS = 10
"""How many leading characters of a token listings and messages show (``sr-`` included)."""


def new_token() -> str:
    """A fresh API key: the prefix and 256 random bits, URL-safe."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The sha256 hex digest under which a token is stored and looked up."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def display_prefix(token: str) -> str:
    """The part of a token that may be shown (in listings, in error messages)."""
    return token[:DISPLAY_CHARS]
