"""Benchmarks: routing quality against RouteLLM's figures, and router overhead. Run ``python -m bench``."""
