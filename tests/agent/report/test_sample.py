"""The within-sample figures (SAS, XRD) from fabricated measurements and interpretations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent.config import CampaignConfig
from agent.report.sample import sample_figures
from analysis.protocol import Estimate, Interpretation
from instruments.types import Measurement, Timing
from tests.agent.campaign_files import shipped

pytestmark = pytest.mark.timeout(120)
TIMING = Timing(exposure_seconds=60.0)


def sas_measurement(k: int) -> Measurement:
    q = np.geomspace(0.002 * (k + 1), 0.02 * (k + 1), 20)
    intensity = 1.0 / (1.0 + (q * 100) ** 4)
    return Measurement(attempt_id=f"s-{k}", instrument="sans", params={"configuration": "15m", "exposure_seconds": 60.0},
                       data={"q": q, "intensity": intensity, "dq": 0.05 * q}, sigma={"intensity": 0.1 * intensity},
                       timing=TIMING)


def sas_interpretation(k: int, p_sphere: float, *, valid: bool = True) -> Interpretation:
    estimates = {"p(sphere)": Estimate(value=p_sphere), "p(core_shell_sphere)": Estimate(value=1 - p_sphere),
                 "p(best)": Estimate(value=max(p_sphere, 1 - p_sphere))}
    # No fitted values in the details: the fit curve is left out, so no sasmodels kernel is built.
    return Interpretation(attempt_id=f"s-{k}", sample_id="ps", analysis="sas", estimates=estimates, valid=valid,
                          details={"best_model": "sphere"})


def test_sas_figures_show_each_exposure_residuals_and_each_candidates_probability(tmp_path: Path) -> None:
    """Issue 13: the data panel has a residual panel below it; the probabilities are their own figure,
    a line per candidate against the measurement after which each analysis ran."""
    config = CampaignConfig.model_validate(shipped("adaptive_sans.yaml", tmp_path))
    measurements = [sas_measurement(0), sas_measurement(1)]
    interpretations = [sas_interpretation(0, 0.6), sas_interpretation(1, 0.97)]

    [(fig, alt), (odds, odds_alt)] = sample_figures(config, measurements, interpretations)

    top, bottom = fig.axes
    assert alt.startswith("SAS exposures") and "residuals" in alt and top.get_xscale() == top.get_yscale() == "log"
    assert top.get_title().endswith("(after 2)") and bottom.get_ylabel() == "(I − fit)/σ"
    (ax,) = odds.axes
    assert odds_alt == "probability of each candidate model after each analysis"
    _, labels = ax.get_legend_handles_labels()
    assert labels == ["core_shell_sphere", "sphere", "target 0.95"]  # p(best) is not a candidate
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [0.6, 0.97])
    np.testing.assert_allclose(ax.lines[1].get_xdata(), [1, 2])
    assert ax.get_xlim() == (0.5, 2.5)  # one tick per analysis, not a stretch of 0.945–1.05


def test_nothing_to_draw_without_a_valid_interpretation_or_for_other_kinds(tmp_path: Path) -> None:
    config = CampaignConfig.model_validate(shipped("adaptive_sans.yaml", tmp_path))
    assert sample_figures(config, [sas_measurement(0)], [sas_interpretation(0, 0.5, valid=False)]) == []
    assert sample_figures(config, [], [sas_interpretation(0, 0.5)]) == []
    scalar = CampaignConfig.model_validate(shipped("quickstart.yaml", tmp_path))
    assert sample_figures(scalar, [sas_measurement(0)], [sas_interpretation(0, 0.5)]) == []


def test_xrd_figure_draws_each_window_as_a_count_rate(tmp_path: Path) -> None:
    config = CampaignConfig.model_validate(shipped("adaptive_xrd.yaml", tmp_path))
    two_theta = np.arange(20.0, 30.0, 0.5)
    window = Measurement(attempt_id="x-0", instrument="diffractometer", params={"dwell_seconds": 2.0},
                         data={"two_theta": two_theta, "counts": np.full(two_theta.shape, 100.0)}, timing=TIMING)
    interpretation = Interpretation(attempt_id="x-0", sample_id="p25", analysis="xrd", valid=True,
                                    estimates={"p:tio2_anatase": Estimate(value=0.8), "p(best)": Estimate(value=0.8)})

    [(fig, alt), (odds, _)] = sample_figures(config, [window], [interpretation])

    top, bottom = fig.axes
    assert alt.startswith("XRD windows")
    np.testing.assert_allclose(top.lines[0].get_ydata(), 50.0)  # counts per second of dwell
    # One analysis: a bar per phase set (none reported here), not one point on a line.
    assert "the only analysis (measurement #1)" in odds.axes[0].get_title()


def test_the_reports_sas_curve_is_the_fits_own_evaluation(tmp_path: Path) -> None:
    """The figure evaluates the model through physics.sas (no analysis import); it must equal the
    analysis' own smeared prediction at the same values, pinhole and slit alike."""
    from agent.report.sample import _sas_curves
    from analysis.sas import SASFitSettings, predict_with_jacobian

    config = CampaignConfig.model_validate(shipped("adaptive_sans.yaml", tmp_path))
    raw = config.analysis.settings["candidates"][0]
    values = {"radius": 118.0, "radius_pd": 0.11, "scale": 2.1e-4, "background": 0.05}
    pinhole = sas_measurement(0)
    q = np.geomspace(5e-4, 5e-3, 15)
    slit = Measurement(attempt_id="u-0", instrument="usans", params={}, timing=TIMING,
                       data={"q": q, "intensity": np.ones_like(q), "dq_slit_length": np.full(q.shape, 0.01)},
                       sigma={"intensity": np.ones_like(q)})
    curves = _sas_curves(raw, values, [pinhole, slit])
    settings = SASFitSettings.model_validate(config.analysis.settings)
    expected, _, _ = predict_with_jacobian(settings, "sphere", values, pinhole.data["q"], pinhole.data["dq"])
    np.testing.assert_allclose(curves[0], expected, rtol=1e-10)
    slit_expected, _, _ = predict_with_jacobian(settings, "sphere", values, q, np.zeros_like(q),
                                                slit=(np.full(q.shape, 0.01), np.zeros_like(q)))
    np.testing.assert_allclose(curves[1], slit_expected, rtol=1e-10)
