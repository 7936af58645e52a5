"""Prometheus metrics and structured logging."""
