"""The guard between a policy and the hardware: nothing reaches an instrument unless it is a point of
the design space and the instrument's own ``check`` accepts it. Refusals are recorded with reasons.
"""

from __future__ import annotations

from collections.abc import Mapping

from instruments.types import ParamValue
from policies.space import DesignSpace


def design_space_refusal(space: DesignSpace, params: Mapping[str, ParamValue]) -> str | None:
    """None if ``params`` is a feasible point of ``space``, else every reason it is not."""
    problems = space.violations(params)
    return "; ".join(problems) if problems else None
