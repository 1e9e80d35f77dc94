"""Benchmarks are not unit tests: run them with `pytest benchmarks/` (pytest-benchmark)."""
