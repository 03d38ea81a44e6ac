"""Opening a store that must exist: a mistyped SQLite path is an error and nothing is created."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.store import Store, StoreUnavailable

pytestmark = pytest.mark.timeout(60)


def test_an_existing_store_is_required_and_a_missing_file_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "labpilot.db"
    with pytest.raises(StoreUnavailable, match="no database at .*typo/labpilot.db"):
        Store(f"sqlite:///{missing}", existing=True)
    assert not missing.exists() and not missing.parent.exists()
    Store(f"sqlite:///{missing}").close()  # `run` creates it
    assert missing.is_file()
    Store(f"sqlite:///{missing}", existing=True).close()  # and then it opens
