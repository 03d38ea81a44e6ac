"""The campaign figures, drawn from the report-test campaign and from hand-made model slices."""

from __future__ import annotations

import numpy as np
import pytest

from agent.report.data import attempt_points, load_report_data
from agent.report.figures import design_space_figure, model_figure, targets_figure
from agent.report.model import GridSlice, LineSlice
from agent.store import Store
from policies.protocol import Observation
from policies.space import DesignSpace
from tests.agent.report.campaign_store import CAMPAIGN

pytestmark = pytest.mark.timeout(60)


def test_design_space_figure_numbers_the_measured_points(populated: tuple[Store, list[str]]) -> None:
    store, _ = populated
    d = load_report_data(store, CAMPAIGN)
    assert d.space is not None

    fig = design_space_figure(d.space, ["temperature", "time"], attempt_points(d), "yield (fraction)")

    ax, colour_bar = fig.axes
    assert ax.get_xlabel() == "temperature (K)" and ax.get_ylabel() == "time (min)"
    assert colour_bar.get_ylabel() == "yield (fraction)"
    assert sorted(int(t.get_text()) for t in ax.texts) == list(range(1, 9))  # the refused point has no number
    _, labels = ax.get_legend_handles_labels()
    assert labels == ["valid (used by the model)", "invalid / no estimate", "refused proposal"]


def test_targets_figure_has_one_panel_per_target(populated: tuple[Store, list[str]]) -> None:
    store, _ = populated
    d = load_report_data(store, CAMPAIGN)
    first_met = next(e for e in d.evaluations if e.all_met)

    fig = targets_figure(["near_optimum", "precise"], d.evaluations, first_met)

    assert [ax.get_ylabel() for ax in fig.axes] == ["near_optimum", "precise"]
    assert fig.axes[-1].get_xlabel() == "cumulative instrument time (h)"  # 8 × 1890 s


def test_model_figures_for_a_line_and_a_grid() -> None:
    space = DesignSpace.model_validate({"parameters": [
        {"name": "x", "type": "continuous", "low": 0.0, "high": 1.0, "units": "K"},
        {"name": "y", "type": "continuous", "low": 0.1, "high": 10.0, "log_scale": True},
    ]})
    history = [Observation(params={"x": 0.2, "y": 1.0}, value=0.5, sigma=0.1, attempt_id="a-1"),
               Observation(params={"x": 0.7, "y": 3.0}, value=0.9, sigma=None, attempt_id="a-2")]
    xs = np.linspace(0.0, 1.0, 5)

    line = model_figure(space, LineSlice("x", xs, xs, np.full(5, 0.1)), history, history[1], "yield")
    assert len(line.axes) == 1 and line.axes[0].get_xlabel() == "x (K)"

    ys = np.geomspace(0.1, 10.0, 3)
    grid = GridSlice(["x", "y"], xs, ys, np.linspace(-0.125, 1.125, 6), np.geomspace(0.1 / 10, 10.0 * 10, 4),
                     np.arange(15.0), np.ones(15))
    fig = model_figure(space, grid, history, history[1], "yield")
    mean, mean_bar, std, _ = fig.axes
    assert mean.get_title() == "posterior mean" and std.get_title() == "posterior std"
    assert mean.get_yscale() == "log" and mean_bar.get_ylabel() == "posterior mean of yield"
