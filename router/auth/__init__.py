"""API keys and callers: who a request acts for, and what it may touch."""
