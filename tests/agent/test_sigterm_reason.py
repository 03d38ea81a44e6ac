"""SIGTERM ends a campaign as ``terminated (SIGTERM)`` whichever asyncio task it lands in.

The handler raises ``SystemExit``; when the signal lands while a task other than the campaign's
runs (a heartbeat, a measurement watcher), ``asyncio.run`` cancels the campaign's task on the way
out, so the campaign sees ``CancelledError`` — which alone reads as Ctrl-C. Run in a fresh process:
the signal and its handler are process-wide."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import asyncio, os, signal
from agent.campaign import how_it_ended
from agent.runtime import _keep_sigterm_exit

_keep_sigterm_exit()

async def other_task():
    await asyncio.sleep(0.05)
    os.kill(os.getpid(), signal.SIGTERM)  # the handler runs here, inside this task
    await asyncio.sleep(10)

async def campaign():
    helper = asyncio.ensure_future(other_task())
    try:
        await asyncio.sleep(10)
    except BaseException as exc:
        print(type(exc).__name__, "->", how_it_ended(exc)[1], flush=True)
        raise

try:
    asyncio.run(campaign())
except SystemExit:
    pass
"""


def test_a_sigterm_landing_in_another_task_is_recorded_as_sigterm_not_as_ctrl_c() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "CancelledError -> terminated (SIGTERM)", done.stdout + done.stderr


SHUTDOWN_SCRIPT = r"""
import asyncio, os, signal
from agent.runtime import _keep_sigterm_exit, until_sigterm

_keep_sigterm_exit()

async def other_task():
    await asyncio.sleep(0.05)
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.sleep(10)

async def campaign():
    service = asyncio.ensure_future(asyncio.sleep(0.3))  # what the shutdown waits for
    helper = asyncio.ensure_future(other_task())
    try:
        await asyncio.sleep(10)
    finally:
        await service  # cancelled with every task if SystemExit left asyncio.run from the other task
        print("shut down and recorded", flush=True)

try:
    asyncio.run(until_sigterm(campaign()))
except SystemExit as exc:
    print("exit", exc.code, flush=True)
"""


def test_sigterm_cancels_the_campaign_task_so_its_shutdown_completes_then_exits() -> None:
    """``until_sigterm``: the signal cancels the campaign's own task (its ``finally`` awaits what it must),
    then the process leaves with SystemExit(15) — not with every task cancelled mid-shutdown."""
    done = subprocess.run([sys.executable, "-c", SHUTDOWN_SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.split("\n")[:2] == ["shut down and recorded", "exit 15"], done.stdout + done.stderr
