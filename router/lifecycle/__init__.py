"""The stages of a request's life after the first draw: watch, judge, escalate, repair."""
