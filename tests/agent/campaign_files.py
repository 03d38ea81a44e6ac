"""Campaign documents for tests, built from the shipped quick-start so they stay in step with it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def shipped(file: str, tmp_path: Path) -> dict[str, Any]:
    """A shipped campaign file's document with its store and data folder inside ``tmp_path``."""
    data = yaml.safe_load((EXPERIMENTS / file).read_text())
    data["storage"] = f"sqlite:///{tmp_path}/labpilot.db"
    data["data_dir"] = str(tmp_path / "data")
    return data


def run_shipped(file: str, tmp_path: Path, campaign_id: str, **overrides: Any) -> tuple[Any, Any, Any]:
    """Run a shipped campaign file (store and data inside ``tmp_path``; ``overrides`` replace top-level
    fields): (config, store, result)."""
    from agent.campaign import run_campaign
    from agent.config import parse_campaign
    from agent.store import Store

    config = parse_campaign({**shipped(file, tmp_path), **overrides})
    store = Store(config.storage)
    return config, store, run_campaign(config, store, campaign_id=campaign_id)


def run_in_process(file: str, tmp_path: Path, campaign_id: str, *, instrument: dict[str, Any] | None = None,
                   **overrides: Any) -> tuple[Any, Any, Any]:
    """Like :func:`run_shipped`, with the drivers and the analysis in this process (the same services
    the actors host; no Ray needed); ``instrument`` updates the first instrument's settings."""
    import asyncio

    from agent.campaign import CampaignRunner
    from agent.config import parse_campaign
    from agent.store import Store

    data = {**shipped(file, tmp_path), **overrides}
    if instrument:
        instrument_settings(data, **instrument)
    config = parse_campaign(data)
    store = Store(config.storage)
    return config, store, asyncio.run(CampaignRunner(config, store, campaign_id, in_process=True).run())


def quickstart(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    """The quick-start campaign with its store and data folder inside ``tmp_path``."""
    data = yaml.safe_load((EXPERIMENTS / "quickstart.yaml").read_text())
    data["storage"] = f"sqlite:///{tmp_path}/labpilot.db"
    data["data_dir"] = str(tmp_path / "data")
    for key, value in overrides.items():
        data[key] = value
    return copy.deepcopy(data)


def instrument_settings(data: dict[str, Any], **settings: Any) -> dict[str, Any]:
    data["instruments"][0]["settings"].update(settings)
    return data
