"""Secrets never stored or published: a database password planted in the campaign file appears
nowhere in the store, the documents, the report or an error message."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from agent.campaign import run_campaign
from agent.config import parse_campaign
from agent.report import write_report
from agent.store import Store, StoreUnavailable
from agent.store.schema import Base
from tests.agent.campaign_files import quickstart

pytestmark = [pytest.mark.timeout(240), pytest.mark.postgres]

PASSWORD = "planted-Secret-7f3a"


def _with_password(url: str) -> str:
    # The test server trusts local connections, so any password is accepted — and must be hidden.
    scheme, rest = url.split("://", 1)
    user, host = rest.split("@", 1)
    return f"{scheme}://{user}:{PASSWORD}@{host}"


def _everything_stored(store: Store) -> str:
    with store.engine.connect() as conn:
        return "\n".join(str(row) for table in Base.metadata.sorted_tables
                         for row in conn.execute(text(f"SELECT * FROM {table.name}")))


def test_a_planted_password_is_in_no_record_document_report_or_message(pg_url: str, tmp_path: Path,
                                                                      ray_local: None) -> None:
    url = _with_password(pg_url)
    data = quickstart(tmp_path, storage=url, policy={"name": "sobol", "options": {}}, budgets={"max_measurements": 3})
    config = parse_campaign(data)
    store = Store(config.storage)
    result = run_campaign(config, store)
    assert result.n_measurements == 3
    stored = _everything_stored(store)
    assert PASSWORD not in stored and "***" in store.campaign(result.campaign_id).config["storage"]
    documents = (tmp_path / "data" / result.campaign_id / "documents.jsonl").read_text()
    assert "labpilot_campaign" in documents and PASSWORD not in documents
    report = write_report(store, result.campaign_id, tmp_path / "report")
    assert PASSWORD not in "".join(p.read_text(errors="replace") for p in report.parent.rglob("*") if p.is_file())
    assert PASSWORD not in store.database


@pytest.mark.parametrize("bad", [f"postgresql://u:{PASSWORD}@[::1:5432/x", f"not a url://u:{PASSWORD}@host/x"])
def test_an_unusable_url_is_named_without_its_password(bad: str) -> None:
    with pytest.raises(StoreUnavailable) as info:
        Store(bad)
    assert PASSWORD not in str(info.value) and "***" in str(info.value)
