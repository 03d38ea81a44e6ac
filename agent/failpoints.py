"""Named crash points for fault tests: ``LABPILOT_FAILPOINT=after-dispatch:3`` makes the process
SIGKILL itself the third time it passes ``after-dispatch``. A real kill, at a precise point, so the
resume tests are deterministic. Unset (the normal case) it costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

POINTS = frozenset(
    {"after-propose", "after-dispatch", "before-record-measurement", "after-measured", "before-record-analysed", "after-analysed",
     # a campaign over samples (agent/sample_campaign.py): its synthesis and the end of a sample step
     "after-synthesis-dispatch", "after-synthesised", "after-sample-finished"}
)
_passes: Counter[str] = Counter()


def failpoint(name: str) -> None:
    spec = os.environ.get("LABPILOT_FAILPOINT")
    if not spec:
        return
    point, _, count = spec.partition(":")
    if point != name:
        return
    _passes[name] += 1
    if _passes[name] >= int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)
