"""Simulated instruments and samples with real physics, a virtual clock and fault injection."""
