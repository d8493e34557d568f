"""Benchmarks that print measured numbers (speed, cost, quality); run through the CLI."""
