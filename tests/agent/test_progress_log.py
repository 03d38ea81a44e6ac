"""Progress when stderr is not a terminal: ``labpilot run`` with stderr to a file writes one log line
per measurement (time, attempt, sample, request with units, instrument time against the budget,
targets) and one at the stop; the lines come from a real store, each attempt once — also after a
resume — and refusals and failures get their own line."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from agent.campaign import Progress
from agent.config import parse_campaign
from agent.progress_log import LOGGER, ProgressLog, logged_bench
from agent.store import ProposedAttempt, Store
from agent.targets import TargetResult
from instruments.types import Measurement, Timing
from tests.agent.campaign_files import quickstart

pytestmark = pytest.mark.timeout(300)
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def test_run_with_stderr_to_a_file_logs_a_line_per_measurement_and_the_stop(tmp_path: Path, shared_ray_env: dict[str, str]) -> None:
    data = quickstart(tmp_path)
    data["budgets"] = {"max_measurements": 4, "max_instrument_seconds": 100000}
    campaign_file = tmp_path / "campaign.yaml"
    campaign_file.write_text(yaml.safe_dump(data))
    log = tmp_path / "stderr.log"
    # rich would take FORCE_COLOR or TTY_COMPATIBLE=1 to mean a terminal whatever the file is.
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")} | shared_ray_env
    with log.open("w") as stderr:  # a file, as nohup or systemd would give: not a terminal
        code = subprocess.run([sys.executable, "-m", "agent.cli", "run", str(campaign_file), "--no-report"],
                              cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=stderr, timeout=240).returncode
    text = log.read_text()
    assert code == 3, text[-3000:]
    assert "\x1b[" not in text  # plain lines, no terminal control sequences
    with Store(data["storage"]) as store:
        cid = store.campaigns()[0].id
        measured = {a.id: a for a in store.attempts(cid, states=["analysed", "measured"])}
    assert len(measured) == 4
    lines = [line for line in text.splitlines() if re.match(rf"^{STAMP} {cid}-\d+ measured ", line)]
    assert sorted(re.split(r"\s+", line)[1] for line in lines) == sorted(measured)  # each measurement once
    for line in lines:
        a = measured[line.split()[1]]
        assert f"sample={a.sample_id or a.id} instrument={a.instrument}, took {a.instrument_seconds:,.0f} s" in line
        assert f"request temperature={a.params['temperature']:.4g} K, time={a.params['time']:.4g} min" in line
        assert re.search(r"\| measurements [1-4]/4, instrument [\d,]+/100,000 s, wall [\d.]+ s \| targets near_optimum=", line)
    stop = [line for line in text.splitlines() if re.match(rf"^{STAMP} {cid} budget_exhausted: ", line)]
    assert len(stop) == 1 and "max_measurements (4) reached | measurements 4/4" in stop[0]


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _logger(name: str) -> tuple[logging.Logger, _Lines]:
    logger, handler = logging.getLogger(f"tests.progress.{name}"), _Lines()
    logger.handlers, logger.propagate = [handler], False
    logger.setLevel(logging.INFO)
    return logger, handler


def _progress(cid: str, n: int, refused: int = 0, failed: int = 0) -> Progress:
    return Progress(campaign_id=cid, n_measurements=n, instrument_seconds=100.0 * n, wall_seconds=1.5, in_flight=0,
                    refused=refused, failed=failed, targets={"near_optimum": TargetResult(value=0.5, goal=0.9, met=False)})


def test_each_attempt_is_logged_once_with_refusals_failures_and_after_a_resume(tmp_path: Path) -> None:
    config = parse_campaign(quickstart(tmp_path))
    with Store(config.storage) as store:
        store.create_campaign("c", "quickstart", config.stored_form(), 0, str(tmp_path), {})
        logger, handler = _logger("once")
        log = ProgressLog(config, store, "c", logger)  # before anything ended, as a run starts
        params = {"temperature": 350.0, "time": 12.5}
        attempts = [ProposedAttempt("c-0", 0, params, path=("validated", "dispatched"), instrument="reactor-1"),
                    ProposedAttempt("c-1", 1, params, path=("refused",), reason="outside the reactor's limits"),
                    ProposedAttempt("c-2", 2, params, path=("validated", "dispatched"), instrument="reactor-2")]
        store.record_decision("c", 0, policy="sobol", fallback=False, error=None, seed=0, n_history=0, n_pending=0,
                              reasons=[{}] * 3, decision_seconds=0.1, versions={}, attempts=attempts)
        log(_progress("c", 0, refused=1))
        assert handler.lines == ["c-1 refused: outside the reactor's limits | request temperature=350 K, time=12.5 min"]
        measurement = Measurement(attempt_id="c-0", instrument="reactor-1", params=params, data={"yield": np.array(0.4)},
                                  timing=Timing(exposure_seconds=100, motion_seconds=0, overhead_seconds=0))
        store.record_measurement("c", measurement)
        log(_progress("c", 1, refused=1))
        log(_progress("c", 1, refused=1))  # nothing new ended: nothing logged
        assert handler.lines[1:] == ["c-0 measured sample=c-0 instrument=reactor-1, took 100 s | request temperature=350 K, "
                                     "time=12.5 min | measurements 1/60, instrument 100/200,000 s, wall 1.5/600 s "
                                     "| targets near_optimum=0.5/0.9 not met"]
        store.transition("c-2", "failed", reason="instrument error: shutter stuck")
        log(_progress("c", 1, refused=1, failed=1))
        assert handler.lines[2] == "c-2 failed: instrument error: shutter stuck | request temperature=350 K, time=12.5 min"
        resumed, after = _logger("resumed")
        ProgressLog(config, store, "c", resumed)(_progress("c", 1, refused=1, failed=1))
        assert after.lines == []  # a resume does not log again what ended before it
        log.stopped()
        assert handler.lines[3] == ("c running:  | measurements 1/60, instrument 100/200,000 s, wall 1.5/600 s "
                                    "| targets near_optimum=0.5/0.9 not met")


def test_a_benchmark_logs_a_line_per_finished_campaign() -> None:
    handler, level = _Lines(), LOGGER.level
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.INFO)
    try:
        with logged_bench("SAS campaigns", 2) as on_done:
            on_done(1, 2)
            on_done(2, 2)
    finally:
        LOGGER.removeHandler(handler)
        LOGGER.setLevel(level)
    assert handler.lines[0] == "SAS campaigns: 2 campaigns"
    assert re.fullmatch(r"SAS campaigns: 1/2 campaigns done, \d+ s", handler.lines[1])
    assert re.fullmatch(r"SAS campaigns: 2/2 campaigns done, \d+ s", handler.lines[2])
    assert re.fullmatch(r"SAS campaigns: all 2 campaigns done in \d+ s", handler.lines[3]) and len(handler.lines) == 4
