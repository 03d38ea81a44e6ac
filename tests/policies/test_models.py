"""GP modelling: per-point noise, units and sign, the history cache and warm starts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from policies.baselines import space_filling_points
from policies.models import ModelCache, history_key
from policies.protocol import Observation
from tests.policies.spaces import bump, observe, plane_space


def _history(n: int, sigma: float | None = 0.02, seed: int = 1) -> list[Observation]:
    return observe(space_filling_points(plane_space(), 0, n, seed), bump, sigma=sigma, noise_seed=seed)


def test_every_sigma_becomes_a_fixed_noise_variance() -> None:
    history = _history(12)
    history[3] = history[3].model_copy(update={"sigma": 0.2})
    fitted = ModelCache().fit(plane_space(), history, "maximize")
    expected = torch.tensor([[o.sigma**2] for o in history], dtype=torch.float64)
    assert fitted.noise_model == "fixed"
    assert torch.allclose(fitted.train_Yvar, expected, rtol=1e-12, atol=0)
    # The likelihood really uses them (in Standardize's units: divided by the value variance).
    y_std = float(fitted.model.outcome_transform.stdvs.reshape(-1)[0])
    assert torch.allclose(fitted.model.likelihood.noise.reshape(-1) * y_std**2, expected.reshape(-1), rtol=1e-9)
    assert fitted.hyperparameters()["noise"] is None


def test_missing_sigmas_are_imputed_with_the_median_known_variance() -> None:
    history = _history(9)
    sigmas = [0.01, 0.02, 0.04, None, 0.08, None, 0.02, 0.01, 0.03]
    history = [o.model_copy(update={"sigma": s}) for o, s in zip(history, sigmas, strict=True)]
    fitted = ModelCache().fit(plane_space(), history, "maximize")
    median = float(np.median([s**2 for s in sigmas if s is not None]))
    assert fitted.noise_model == "imputed"
    assert fitted.train_Yvar[3, 0].item() == pytest.approx(median)
    assert fitted.train_Yvar[5, 0].item() == pytest.approx(median)
    assert fitted.train_Yvar[4, 0].item() == pytest.approx(0.08**2)


def test_without_sigmas_the_noise_is_inferred() -> None:
    fitted = ModelCache().fit(plane_space(), _history(15, sigma=None), "maximize")
    hyper = fitted.hyperparameters()
    assert fitted.train_Yvar is None and fitted.noise_model == "inferred"
    assert hyper["noise"] is not None and hyper["noise"] > 0
    json.dumps(hyper)  # JSON-friendly
    assert len(hyper["lengthscales"]) == 2 and hyper["n_train"] == 15


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_predictions_are_in_objective_units_and_sign(direction: str) -> None:
    history = _history(20, sigma=0.001)
    fitted = ModelCache().fit(plane_space(), history, direction)  # type: ignore[arg-type]
    mean, std = fitted.predict([o.params for o in history])
    observed = np.array([o.value for o in history])
    assert np.max(np.abs(mean - observed)) < 0.02
    assert np.all(std >= 0) and np.all(std < 0.05)
    # train_Y is flipped so that larger is better for the acquisition functions.
    sign = 1.0 if direction == "maximize" else -1.0
    assert torch.allclose(fitted.train_Y.reshape(-1), torch.tensor(sign * observed))


def test_cache_reuses_an_unchanged_history_and_refits_a_changed_one() -> None:
    cache = ModelCache()
    history = _history(10)
    first = cache.fit(plane_space(), history, "maximize")
    again = cache.fit(plane_space(), [o.model_copy() for o in history], "maximize")
    assert again is first and cache.stats.hits == 1 and cache.stats.fits == 1

    changed_value = [*history[:-1], history[-1].model_copy(update={"value": history[-1].value + 1e-9})]
    changed_sigma = [*history[:-1], history[-1].model_copy(update={"sigma": 0.5})]
    assert history_key(plane_space(), changed_value, "maximize") != first.key
    assert cache.fit(plane_space(), changed_value, "maximize") is not first
    assert cache.fit(plane_space(), changed_sigma, "maximize") is not first
    assert cache.fit(plane_space(), history, "minimize") is not first
    assert cache.stats.fits == 4


@pytest.mark.timeout(60)
def test_warm_start_is_used_and_fits_as_well_as_a_cold_fit() -> None:
    history = _history(60, sigma=None, seed=3)
    warm_cache = ModelCache(cold_check_growth=None)
    warm_cache.fit(plane_space(), history[:-1], "maximize")
    warm = warm_cache.fit(plane_space(), history, "maximize")
    cold = ModelCache(warm_start=False).fit(plane_space(), history, "maximize")
    assert warm.warm_started and not cold.warm_started and warm_cache.stats.warm_starts == 1
    # Same data, so the losses are comparable: the warm start must not settle somewhere worse.
    assert warm.neg_log_marginal_likelihood <= cold.neg_log_marginal_likelihood + 1e-4
    grid = space_filling_points(plane_space(), 0, 64, 7)
    warm_mean, _ = warm.predict(grid)
    cold_mean, _ = cold.predict(grid)
    assert np.max(np.abs(warm_mean - cold_mean)) < 1e-2


def test_cold_check_runs_when_the_data_has_doubled() -> None:
    cache = ModelCache(cold_check_growth=2.0)
    history = _history(16)
    cache.fit(plane_space(), history[:8], "maximize")  # cold: the lineage starts at n = 8
    cache.fit(plane_space(), history[:12], "maximize")  # warm only
    assert cache.stats.cold_checks == 0
    cache.fit(plane_space(), history, "maximize")  # n = 16 = 2 × 8: warm and cold, better kept
    assert cache.stats.cold_checks == 1 and cache.stats.warm_starts == 2


def test_empty_history_and_bad_direction_are_refused() -> None:
    with pytest.raises(ValueError, match="empty history"):
        ModelCache().fit(plane_space(), [], "maximize")
    with pytest.raises(ValueError, match="direction"):
        ModelCache().fit(plane_space(), _history(3), "upwards")  # type: ignore[arg-type]
