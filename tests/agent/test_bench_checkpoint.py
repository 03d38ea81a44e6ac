"""A benchmark's finished runs survive its crash, and ``--resume`` runs only the missing ones."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from agent.bench.checkpoint import RunCheckpoint

pytestmark = pytest.mark.timeout(120)


def _campaign(label: str, marks: str, fail: bool) -> dict[str, object]:
    """A stand-in for one benchmark campaign (a real Ray task): leaves a mark per execution; the
    failing one finishes last, as the crash of a long campaign would."""
    Path(marks, f"{label}-{time.monotonic_ns()}").touch()
    if fail and label == "c":
        time.sleep(1.0)
        raise RuntimeError("the campaign died")
    return {"label": label, "seconds": 1.5}


def test_a_crashed_benchmark_keeps_its_finished_runs_and_resume_runs_only_the_rest(ray_local: None, tmp_path: Path) -> None:
    from agent.bench.common import run_tasks

    marks = tmp_path / "marks"
    marks.mkdir()
    path = tmp_path / "out" / "sas_runs.jsonl"
    arguments = [(label, str(marks), True) for label in "abc"]
    with pytest.raises(Exception, match="the campaign died"):
        run_tasks(_campaign, arguments, checkpoint=RunCheckpoint(path, reuse=False))
    assert sorted(json.loads(line)["result"]["label"] for line in path.read_text().splitlines()) == ["a", "b"]

    with path.open("a") as out:
        out.write('{"key": "torn')  # a kill in the middle of a write
    progress: list[tuple[int, int]] = []
    resumed = [(label, str(marks), True) for label in "ab"] + [("c", str(marks), False)]
    # the first two runs' arguments are those that finished; the third's differ (fail=False), so it runs
    results = run_tasks(_campaign, resumed, lambda done, total: progress.append((done, total)),
                        RunCheckpoint(path, reuse=True))
    assert sorted(r["label"] for r in results) == ["a", "b", "c"]
    assert sorted(p.name.split("-")[0] for p in marks.iterdir()) == ["a", "b", "c", "c"]  # a and b ran once
    assert progress == [(2, 3), (3, 3)]  # the stored runs count at once
    assert len(path.read_text().splitlines()) == 3


def test_without_resume_a_former_benchmark_s_runs_are_not_mixed_in(tmp_path: Path) -> None:
    path = tmp_path / "xrd_runs.jsonl"
    RunCheckpoint(path, reuse=False).record(("s0", "adaptive", 8000.0), {"sample": 0})
    assert RunCheckpoint(path, reuse=True).finished(("s0", "adaptive", 8000.0)) == {"sample": 0}
    assert RunCheckpoint(path, reuse=True).finished(("s0", "adaptive", 4000.0)) is None  # another budget
    assert RunCheckpoint(path, reuse=False).finished(("s0", "adaptive", 8000.0)) is None
    assert path.read_text() == ""


def test_a_result_json_cannot_carry_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="set"):
        RunCheckpoint(tmp_path / "r.jsonl", reuse=False).record(("x",), {"odd": {1, 2}})
