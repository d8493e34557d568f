"""Signals: pure functions from a request, an output or a system snapshot to feature values.

This package is the foundation of signalroute: it imports nothing else of ours, and it also
holds the one exception hierarchy (:mod:`features.errors`) every other package raises from.
"""
