"""One owner per campaign: a lease in the store, kept alive by a heartbeat.

``run`` and ``resume`` take the campaign's lease before they write anything; a second process asking
for a campaign whose lease is alive is refused with the owner named. A lease is *stale* — and taken
over — when its heartbeat is older than ``stale_after`` seconds, or at once when its owner is a
process on this machine that no longer exists (a killed campaign is resumed without waiting).
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, insert, select, update

from agent.store.schema import LeaseRow, utcnow

#: How often an owner renews its lease, s.
HEARTBEAT_SECONDS = 10.0
#: A lease whose heartbeat is older than this is stale, s.
STALE_AFTER_SECONDS = 60.0


class CampaignOwned(RuntimeError):
    """The campaign is being run by another live process."""

    def __init__(self, campaign_id: str, owner: str, heartbeat_at: datetime, stale_after: float) -> None:
        age = (utcnow() - _aware(heartbeat_at)).total_seconds()
        super().__init__(
            f"campaign {campaign_id} is running in another process ({owner}, last heartbeat {age:.0f} s ago); "
            f"it is taken over when that process has ended or its heartbeat is older than {stale_after:.0f} s"
        )
        self.owner = owner


def new_owner() -> str:
    """This process's owner id: host, pid and a random token (a reused pid is still another owner)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Lease:
    owner: str
    heartbeat_at: datetime


def acquire(conn: Connection, campaign_id: str, owner: str, stale_after: float) -> None:
    """Take the campaign's lease, or raise ``CampaignOwned`` (inside the caller's transaction)."""
    row = conn.execute(select(LeaseRow.owner, LeaseRow.heartbeat_at).where(LeaseRow.campaign_id == campaign_id)
                       .with_for_update()).first()
    now = utcnow()
    if row is None:
        conn.execute(insert(LeaseRow).values(campaign_id=campaign_id, owner=owner, acquired_at=now, heartbeat_at=now))
        return
    if row.owner != owner and not _stale(row.owner, row.heartbeat_at, stale_after):
        raise CampaignOwned(campaign_id, row.owner, row.heartbeat_at, stale_after)
    conn.execute(update(LeaseRow).where(LeaseRow.campaign_id == campaign_id)
                 .values(owner=owner, acquired_at=now, heartbeat_at=now))


def renew(conn: Connection, campaign_id: str, owner: str) -> bool:
    """Renew the heartbeat; False if the lease is no longer this owner's (it was taken over)."""
    done = conn.execute(update(LeaseRow).where(LeaseRow.campaign_id == campaign_id, LeaseRow.owner == owner)
                        .values(heartbeat_at=utcnow()))
    return bool(done.rowcount)


def release(conn: Connection, campaign_id: str, owner: str) -> None:
    conn.execute(delete(LeaseRow).where(LeaseRow.campaign_id == campaign_id, LeaseRow.owner == owner))


def _stale(owner: str, heartbeat_at: datetime, stale_after: float) -> bool:
    if utcnow() - _aware(heartbeat_at) > timedelta(seconds=stale_after):
        return True
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    return host == socket.gethostname() and pid.isdigit() and not _alive(int(pid))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def _aware(moment: datetime) -> datetime:
    # SQLite returns naive datetimes for timezone-aware columns; they were written in UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=utcnow().tzinfo)
