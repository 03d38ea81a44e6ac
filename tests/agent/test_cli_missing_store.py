"""Commands that read a store refuse a SQLite file that does not exist (exit 2), creating nothing;
`run` creates its store."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize(
    "command",
    [["status"], ["status", "quickstart-1"], ["resume", "quickstart-1"], ["report", "quickstart-1"],
     ["export", "quickstart-1-00000", "--format", "xye", "--out", "out.xye"]],
)
def test_a_mistyped_sqlite_url_is_an_error_and_creates_nothing(command: list[str], tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    typo = tmp_path / "labpilto.db"
    result = CliRunner().invoke(app, [*command, "--db", f"sqlite:///{typo}"])
    assert result.exit_code == 2, result.output
    assert "no database at" in result.output and "labpilto.db" in result.output
    assert list(tmp_path.iterdir()) == []  # no database, no -wal, no report, no export
