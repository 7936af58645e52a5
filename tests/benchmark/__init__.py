"""Benchmark harness for veloz-gateway: `python -m tests.benchmark.bench` (`make bench`)."""
