"""Benchmarks that run through the campaign engine (``labpilot bench ...``)."""
