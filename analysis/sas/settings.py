"""Settings of the SAS fit: the candidate models, their fitted parameters and priors, how to fit.

Everything a campaign file's ``analysis.settings`` can get wrong — an unknown sasmodels model, an
unknown parameter, bounds outside the model's limits, a bad fixed value — is raised here, when the
settings are validated, before any data arrive.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from instruments.types import Record
from physics.sas import (
    ParameterTable,
    library_models,
    model_info,
    model_parts,
    parameter_table,
    polydispersity_types,
)


def candidate_model_info(expression: str) -> Any:
    """sasmodels ``ModelInfo`` of a model name or expression (``sphere``, ``sphere+power_law``,
    ``sphere@hardsphere``). Raises ValueError naming an unknown model and the valid ones."""
    known = set(library_models())
    parts = [p.strip() for p in model_parts(expression)]
    unknown = [p for p in parts if p not in known]
    if unknown or not parts:
        raise ValueError(
            f"unknown sasmodels model {', '.join(repr(u) for u in unknown) or repr(expression)} "
            f"in {expression!r}; valid models: {', '.join(sorted(known))}"
        )
    try:
        return model_info(expression)
    except Exception as exc:  # sasmodels raises a mix of types for bad expressions
        raise ValueError(f"sasmodels cannot load model expression {expression!r}: {exc}") from exc


class GaussianPrior(Record):
    """A Gaussian prior on one parameter (truncated to the parameter's bounds), in its units."""

    mean: float
    sigma: float = Field(gt=0)


class FitParameter(Record):
    """One fitted parameter: initial value, bounds (which are also its uniform prior), units."""

    value: float = Field(description="initial guess (also the first point of the start scan)")
    bounds: tuple[float, float] = Field(description="[low, high]; finite — they define the prior")
    units: str | None = Field(default=None, description="defaults to the sasmodels units")
    prior: GaussianPrior | None = Field(default=None, description="None: uniform within bounds")

    @model_validator(mode="after")
    def _check(self) -> FitParameter:
        lo, hi = self.bounds
        if not lo < hi:
            raise ValueError(f"bounds must have low < high, got {list(self.bounds)}")
        if not lo <= self.value <= hi:
            raise ValueError(f"initial value {self.value} outside bounds {list(self.bounds)}")
        return self


class CandidateModel(Record):
    """One candidate model: a sasmodels model (name or expression) with fitted and fixed parameters.

    Polydispersity is set through sasmodels' names: fit ``radius_pd`` (relative width), fix
    ``radius_pd_type`` (gaussian, lognormal, schulz, …; default gaussian), ``radius_pd_n``
    (default 35) and ``radius_pd_nsigma`` (default 3). Unnamed parameters keep sasmodels defaults.
    """

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    model: str = Field(min_length=1, description="sasmodels model name or expression")
    parameters: dict[str, FitParameter] = Field(min_length=1, description="fitted parameters")
    fixed: dict[str, float | int | str] = Field(default_factory=dict)
    fringe_parameters: list[str] | None = Field(
        default=None,
        description="fitted lengths (Å) whose form-factor fringes the start scan must resolve; None: every fitted "
        "length. An orientation-averaged I(q) has no fringes from a cylinder's length (only from its radius), "
        "so counting it would spend the scan on fringes that are not there",
    )

    @model_validator(mode="after")
    def _check_against_sasmodels(self) -> CandidateModel:
        candidate_model_info(self.model)  # raises naming an unknown model
        table = parameter_table(self.model)
        self._check_fitted(table)
        unknown = [p for p in self.fringe_parameters or [] if p not in self.parameters]
        if unknown:
            raise ValueError(f"candidate {self.name!r}: fringe_parameters {unknown} are not fitted parameters; "
                             f"fitted: {sorted(self.parameters)}")
        for pname, value in self.fixed.items():
            self._check_fixed(table, pname, value)
        return self

    def _check_fitted(self, table: ParameterTable) -> None:
        for pname, spec in self.parameters.items():
            if pname not in table.fittable:
                if pname in table.fixed_only:
                    raise ValueError(
                        f"candidate {self.name!r}: parameter {pname!r} of model {self.model!r} cannot be "
                        "fitted; give it under 'fixed'"
                    )
                raise ValueError(
                    f"candidate {self.name!r}: unknown parameter {pname!r} for model {self.model!r}; "
                    f"its parameters are: {', '.join(table.listed)}"
                )
            lo, hi, _ = table.fittable[pname]
            if spec.bounds[0] < lo or spec.bounds[1] > hi:
                raise ValueError(
                    f"candidate {self.name!r}: bounds {list(spec.bounds)} of {pname!r} exceed the model's "
                    f"limits [{lo}, {hi}]"
                )

    def _check_fixed(self, table: ParameterTable, pname: str, value: float | int | str) -> None:
        if pname not in table.fittable and pname not in table.fixed_only:
            raise ValueError(
                f"candidate {self.name!r}: unknown fixed parameter {pname!r} for model {self.model!r}; "
                f"its parameters are: {', '.join(table.listed)}"
            )
        if pname in self.parameters:
            raise ValueError(f"candidate {self.name!r}: {pname!r} is both fitted and fixed")
        if pname.endswith("_pd_type"):
            if value not in polydispersity_types():
                raise ValueError(f"candidate {self.name!r}: {pname} must be one of {list(polydispersity_types())}")
        elif pname.endswith("_pd_n"):
            if isinstance(value, str) or value < 1 or float(value) != int(value):
                raise ValueError(f"candidate {self.name!r}: {pname} must be a positive integer")
        elif pname.endswith("_pd_nsigma") and (isinstance(value, str) or value <= 0):
            raise ValueError(f"candidate {self.name!r}: {pname} must be a positive number")
        elif isinstance(value, str):
            raise ValueError(f"candidate {self.name!r}: fixed {pname!r} must be a number")


class SASFitSettings(Record):
    """Settings of :class:`analysis.sas.SASFitAnalysis` (the campaign file's ``analysis.settings``)."""

    candidates: list[CandidateModel] = Field(min_length=1)
    model_prior: dict[str, float] | None = Field(
        default=None, description="candidate name → prior probability (normalised); None: uniform"
    )
    report: list[str] | None = Field(
        default=None,
        description="parameter estimates to report from the best model; None: every candidate's fitted "
        "parameters (those the best model lacks carry value None)",
    )
    q_min: float = Field(default=0.0, ge=0, description="1/Å; points below are not fitted")
    q_max: float | None = Field(default=None, gt=0, description="1/Å; points above are not fitted")
    evidence: Literal["laplace", "bic"] = "laplace"
    merge: Literal["inverse_variance", "exposure_time"] = "inverse_variance"
    scale_errors: bool = Field(default=False, description="multiply σ by √χ²_red when χ²_red > 1")
    poor_fit_chi2_reduced: float = Field(default=1.5, gt=1, description="flag poor-fit above this χ²_red …")
    poor_fit_p_value: float = Field(default=1e-3, gt=0, lt=1, description="… when χ² is also this improbable")
    n_scan: int = Field(default=16, ge=1, le=4096, description="quasi-random start points scanned per candidate")
    n_starts: int = Field(default=2, ge=1, le=64, description="local fits from the best scan points")
    max_nfev: int = Field(default=200, ge=10, description="model evaluations per local fit")
    seed: int = Field(default=0, description="seed of the start scan (the analysis is deterministic)")

    @field_validator("candidates")
    @classmethod
    def _unique_names(cls, candidates: list[CandidateModel]) -> list[CandidateModel]:
        names = [c.name for c in candidates]
        if len(set(names)) != len(names):
            raise ValueError(f"candidate names must be unique, got {names}")
        return candidates

    @model_validator(mode="after")
    def _check(self) -> SASFitSettings:
        names = {c.name for c in self.candidates}
        if self.model_prior is not None:
            unknown = set(self.model_prior) - names
            if unknown:
                raise ValueError(f"model_prior names unknown candidates {sorted(unknown)}; candidates: {sorted(names)}")
            if any(v < 0 for v in self.model_prior.values()) or sum(self.model_prior.values()) <= 0:
                raise ValueError("model_prior must be non-negative with a positive sum")
        if self.q_max is not None and self.q_max <= self.q_min:
            raise ValueError("q_max must exceed q_min")
        if self.report is not None:
            known = {p for c in self.candidates for p in (*c.parameters, *c.fixed)}
            unknown_report = [r for r in self.report if r not in known]
            if unknown_report:
                raise ValueError(
                    f"report names {unknown_report}, which no candidate fits or fixes; fitted: {sorted(known)}"
                )
        return self

    def candidate(self, name: str) -> CandidateModel:
        for c in self.candidates:
            if c.name == name:
                return c
        raise KeyError(f"no candidate {name!r}; candidates: {[c.name for c in self.candidates]}")

    def log_model_prior(self) -> dict[str, float]:
        """Candidate name → log prior probability (normalised; −inf for a prior of 0)."""
        if self.model_prior is None:
            return {c.name: -math.log(len(self.candidates)) for c in self.candidates}
        total = sum(self.model_prior.values())
        out = {}
        for c in self.candidates:
            p = self.model_prior.get(c.name, 0.0) / total
            out[c.name] = math.log(p) if p > 0 else -math.inf
        return out

    def estimate_names(self) -> list[str]:
        """Every estimate name an interpretation may carry (for campaign validation)."""
        if self.report is not None:
            params = list(self.report)
        else:
            params = list(dict.fromkeys(p for c in self.candidates for p in c.parameters))
        # p(best): the posterior probability of whichever candidate is most probable now.
        return [*params, *(f"p({c.name})" for c in self.candidates), "p(best)"]

    def estimate_units(self) -> dict[str, str]:
        """Every estimate name → its units (probabilities are dimensionless: ``""``)."""
        return {name: "" if name.startswith("p(") else self.parameter_units(name) for name in self.estimate_names()}

    def parameter_units(self, pname: str, preferred: CandidateModel | None = None) -> str:
        """Units of a parameter: a candidate's override, else sasmodels' (``preferred`` first)."""
        order = [preferred] if preferred is not None else []
        order += [c for c in self.candidates if c is not preferred]
        for candidate in order:
            spec = candidate.parameters.get(pname)
            if spec is not None and spec.units is not None:
                return spec.units
            entry = parameter_table(candidate.model).fittable.get(pname)
            if entry is not None:
                return entry[2]
        return ""
