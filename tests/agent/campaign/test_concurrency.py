"""Campaigns at once on one store (SQLite file, PostgreSQL database): each completes with its records
apart — the benchmark's check (``benchmarks/concurrency.py``) at a smaller size."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.concurrency import run

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]


def test_three_campaigns_at_once_keep_their_records_apart(store_url: str, tmp_path: Path) -> None:
    summary = run(3, 4, None if store_url.startswith("sqlite") else store_url, tmp_path)
    assert summary["clean"] == 3, summary["problems"]
