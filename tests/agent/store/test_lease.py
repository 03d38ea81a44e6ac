"""One owner per campaign: the lease, against SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from agent.store import CampaignOwned, Store
from agent.store.lease import new_owner

pytestmark = pytest.mark.timeout(60)


def _campaign(store: Store) -> str:
    cid = f"c-{uuid.uuid4().hex[:8]}"
    store.create_campaign(cid, "test", {"name": "test"}, 0, "/tmp", {})
    return cid


def test_a_live_owner_keeps_its_campaign_and_is_named(store_url: str) -> None:
    with Store(store_url) as store:
        cid, first, second = _campaign(store), new_owner(), new_owner()
        store.acquire_lease(cid, first)
        store.acquire_lease(cid, first)  # the owner itself may take it again (a resume in-process)
        with pytest.raises(CampaignOwned, match=rf"campaign {cid} is running in another process \({first}"):
            store.acquire_lease(cid, second)
        assert store.renew_lease(cid, first) and not store.renew_lease(cid, second)
        store.release_lease(cid, first)
        store.acquire_lease(cid, second)  # free again


def test_a_stale_lease_is_taken_over(store_url: str) -> None:
    with Store(store_url) as store:
        cid, first, second = _campaign(store), new_owner(), new_owner()
        store.acquire_lease(cid, first)
        store.acquire_lease(cid, second, stale_after=0.0)  # the heartbeat is older than 0 s
        assert not store.renew_lease(cid, first), "the old owner learns that it lost the campaign"


def test_an_owner_whose_process_ended_is_taken_over_at_once(store_url: str) -> None:
    ended = subprocess.run([sys.executable, "-c", "from agent.store.lease import new_owner; print(new_owner())"],
                           capture_output=True, text=True, check=True).stdout.strip()
    with Store(store_url) as store:
        cid = _campaign(store)
        store.acquire_lease(cid, ended)  # as a campaign killed a moment ago left it
        store.acquire_lease(cid, new_owner())  # its heartbeat is fresh, but the process is gone
