"""Counting noise that depends on the attempt, not on when it happens to run (the rule lives in
``instruments.noise``: replayed recordings follow it too)."""

from __future__ import annotations

from instruments.noise import attempt_seed

__all__ = ["attempt_seed"]
