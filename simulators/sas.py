"""A simulated small-angle scattering instrument (SANS or SAXS) on sasmodels physics.

The sample is any sasmodels model or model expression (``sphere``, ``core_shell_sphere``,
``sphere@hardsphere``, ``sphere+cylinder``) with its parameters; scattering-length densities are
given directly (1e-6/Å²) or computed from a chemical formula and mass density with periodictable
(neutron SLD for ``radiation="neutron"``, X-ray SLD at ``xray_energy_kev`` for ``"xray"``). The
instrument is a list of named configurations (Q range, binning, flux, resolution, backgrounds); a
request names one configuration and an exposure time. No form factor is written here: I(Q) comes
from sasmodels kernels, smeared with sasmodels' pinhole resolution (Gaussian, 1-σ ΔQ per point), or
for a USANS (Bonse–Hart) configuration with sasmodels' slit resolution (``slit_length``).

Samples need not be among an analysis' candidates: a model expression such as
``sphere@hardsphere`` (interacting spheres) or ``sphere+power_law`` (spheres and their aggregates'
low-Q power law) is a sample no single-sphere candidate describes — the "model-mismatch" samples
of the benchmarks.

Counting model (per configuration, per Q bin *i*; all in the sample's absolute units)::

    q_i          log-spaced bin centres from q_min to q_max (n_points), 1/Å
    e_i, e_i+1   bin edges: geometric midpoints between centres (half a log step beyond the ends)
    ΔΩ_i         = λ² (e_i+1² − e_i²) / (4π)          solid angle of the full Debye–Scherrer annulus
                                                      between the edges (exact: cos 2θ = 1 − 2(qλ/4π)²), sr
    k_i(t)       = Φ · t · T · d · ε · ΔΩ_i           expected counts per unit of dΣ/dΩ (counts per 1/cm)
                   Φ flux on the sample (particles/s), t exposure (s), T transmission, d thickness (cm),
                   ε detector efficiency × azimuthal coverage
    I_true,i     sasmodels I(Q) with the sample's incoherent background, resolution-smeared, 1/cm
    B_i          = cell_background + cell_background_porod · q_i⁻⁴    empty cell / solvent, 1/cm
    N_i          ~ Poisson(k_i · (I_true,i + B_i))    counted
    I_i          = N_i / k_i − B_i                    reduced (background subtracted), 1/cm
    σ_i          = sqrt(max(N_i, 1)) / k_i            Poisson σ from the observed counts, 1/cm

So E[I_i] = I_true,i (the background adds Poisson noise but no bias), and σ_i ∝ 1/sqrt(t). The
background B is taken as known exactly (its own run counted long enough that its error is
negligible), and it is expressed in the reduced data's units (already divided by T·d). Repeated
exposures of one configuration add counts: the driver keeps N_tot = Σ N and k_tot = Σ k per
configuration, and ``accumulated`` reports N_tot/k_tot − B with σ = sqrt(N_tot)/k_tot — which equals
the inverse-variance combination of the single exposures up to terms of relative order 1/N.

Resolution: a configuration with ``slit_length`` (1/Å, and optionally ``slit_width``) is
slit-smeared, its data carry ``dq_slit_length`` / ``dq_slit_width`` (1/Å) instead of ``dq``, and its
truth is sasmodels' ``Slit1D`` on a dense grid to the end of the slit. Otherwise the configuration's
``dq_over_q_fwhm`` is the fractional FWHM of the (Gaussian) Q resolution; the returned ``dq`` is the 1-σ width, dq = q · fwhm / (2 sqrt(2 ln 2)), which is what
sasmodels' ``Pinhole1D`` (and an analysis smearing its model) expects. The ground truth is smeared
with ``Pinhole1D`` on a dense grid so that it is accurate, not just consistent with sasmodels'
default sampling at the data points, which can be off by several σ of a long exposure (see
``physics.sas.smeared_intensity``).

sasmodels access (model info, compiled kernels, the pinhole evaluator) is ``physics.sas``, shared
with the fit; this module computes each configuration's smeared truth once, when the driver is
built, so a measurement is only a Poisson draw. The request fields and the request check are the
SAS instrument contract, ``instruments.sas``, which a real SAS driver shares.

The sample is either fixed (``sample:``) or made by a materials system (``materials_system:``, kind
``formulation``, ``simulators.materials``): then every request must carry the sample's ``recipe``
(refused otherwise, before anything moves), and the sample measured is the system's nanostructure
for that recipe (sasmodels model, sizes, volume fraction), drawn once per ``sample_id``; its smeared
truth is computed for every configuration when the sample is first measured, and exposures
accumulate per sample and configuration. The cell (transmission, thickness) is the system's, the
same for every sample, so the planning model does not depend on the sample.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

import numpy as np
import periodictable
from pydantic import Field, field_validator, model_validator

from instruments.sas import SASConfigurationModel, SASInstrumentModel, check_sas_request
from instruments.types import DataKey, Measurement, MeasurementRequest, Record, Timing
from physics.constants import HC_KEV_ANGSTROM
from physics.sas import (
    FWHM_PER_SIGMA,
    POLYDISPERSITY_SUFFIXES,
    library_models,
    model_info,
    model_parts,
    SmearedEvaluator,
    polydispersity_types,
    resolution_block,
    smeared_intensity,
    user_parameters,
)
from simulators.clock import VirtualClock
from simulators.journal import JournalledDriver, MeasurementJournal
from simulators.materials import FormulationSystemSettings, MaterialsSystemSettings, NanostructureTruth, SampleTruth
from simulators.materials import materials_system_from_settings
from simulators.materials.samples import MadeSamples
from simulators.noise import attempt_seed

DEFAULT_NEUTRON_WAVELENGTH = 6.0
"""Å; used for a neutron configuration's solid angles when its ``wavelength`` is not given."""


# -- settings ------------------------------------------------------------------------------------


class Material(Record):
    """A scattering-length density computed from composition (periodictable)."""

    formula: str = Field(min_length=1, description="chemical formula as periodictable reads it, e.g. 'D2O', 'C8H8', 'SiO2'")
    density: float = Field(gt=0, description="mass density, g/cm³")


class SASSample(Record):
    """The sample: a sasmodels model and its parameters, plus what the counting model needs."""

    model: str = Field(
        min_length=1,
        description="sasmodels model name or expression: 'sphere', 'core_shell_sphere', 'sphere@hardsphere' "
        "(form factor @ structure factor), 'sphere+cylinder' (mixture)",
    )
    parameters: dict[str, float | str | Material] = Field(
        default_factory=dict,
        description="sasmodels parameters in sasmodels units (lengths Å, SLDs 1e-6/Å²); omitted ones take the "
        "model's defaults. An SLD parameter may be {formula, density}. Size polydispersity: '<name>_pd' "
        "(relative width), '<name>_pd_n' (points), '<name>_pd_nsigma', '<name>_pd_type' "
        f"({', '.join(polydispersity_types())}). 'scale' and 'background' are the fields below.",
    )
    scale: float = Field(
        default=1.0,
        ge=0,
        description="sasmodels 'scale': the particles' volume fraction for a form factor or mixture (e.g. 0.01); "
        "for a P@S product sasmodels multiplies it by the structure factor's 'volfraction', which then is the "
        "volume fraction, so keep scale 1 there",
    )
    background: float = Field(
        default=0.0, ge=0, description="the sample's own flat incoherent background, 1/cm (stays in the reduced data)"
    )
    transmission: float = Field(default=1.0, gt=0, le=1, description="sample transmission, 0 < T ≤ 1")
    thickness_cm: float = Field(default=0.1, gt=0, description="sample thickness (path length), cm")

    @field_validator("model")
    @classmethod
    def _no_blanks(cls, value: str) -> str:
        return "".join(value.split())

    @model_validator(mode="after")
    def _known_model_and_parameters(self) -> SASSample:
        info = sample_model_info(self.model)  # raises ValueError naming an unknown model
        check_parameters(self.model, info, self.parameters)
        return self


class SASConfiguration(Record):
    """One instrument configuration (detector distance, wavelength, collimation) and its Q binning."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.+-]+$", description="what a request names, e.g. '5m'")
    q_min: float = Field(gt=0, description="centre of the first Q bin, 1/Å")
    q_max: float = Field(gt=0, description="centre of the last Q bin, 1/Å")
    n_points: int = Field(default=100, ge=2, le=5000, description="number of log-spaced Q bins")
    flux: float = Field(gt=0, description="incident flux onto the sample, neutrons or photons per second")
    dq_over_q_fwhm: float | None = Field(
        default=None, gt=0, le=0.5,
        description="Q resolution ΔQ/Q as a fraction, FWHM of a Gaussian (the data's dq is 1-σ); required "
        "unless slit_length is given",
    )
    slit_length: float | None = Field(
        default=None, gt=0,
        description="USANS (Bonse–Hart) slit half-length, 1/Å (e.g. 0.117): slit-smeared data with keys "
        "dq_slit_length / dq_slit_width instead of dq",
    )
    slit_width: float = Field(default=0.0, ge=0, description="slit half-width, 1/Å (with slit_length)")
    wavelength: float | None = Field(
        default=None,
        gt=0,
        description="wavelength, Å (sets the bins' solid angles). Default: 6 Å for neutrons; from "
        "xray_energy_kev for X-rays (must agree with it if given)",
    )
    min_exposure_seconds: float = Field(default=1.0, ge=0, description="shortest exposure the instrument accepts, s")
    efficiency: float = Field(default=1.0, gt=0, le=1, description="detector efficiency × azimuthal coverage")
    cell_background: float = Field(
        default=0.0, ge=0, description="empty-cell/solvent background, flat part, 1/cm (counted, then subtracted)"
    )
    cell_background_porod: float = Field(
        default=0.0, ge=0, description="empty-cell background Q⁻⁴ part (window surfaces): adds this × Q⁻⁴, 1/cm·Å⁻⁴"
    )

    @model_validator(mode="after")
    def _q_order(self) -> SASConfiguration:
        if not self.q_min < self.q_max:
            raise ValueError(f"configuration {self.name!r}: q_min ({self.q_min}) must be below q_max ({self.q_max})")
        if (self.dq_over_q_fwhm is None) == (self.slit_length is None):
            raise ValueError(
                f"configuration {self.name!r}: give exactly one of dq_over_q_fwhm (pinhole) and slit_length (slit)"
            )
        return self

    @property
    def is_slit(self) -> bool:
        return self.slit_length is not None


class SASSettings(Record):
    """Settings of the simulated SAS instrument (campaign file: ``instruments[].settings``)."""

    sample: SASSample | None = Field(default=None, description="the one sample measured; or give materials_system")
    materials_system: MaterialsSystemSettings | None = Field(
        default=None, description="a materials system (kind 'formulation') whose samples are measured, one per recipe"
    )
    configurations: list[SASConfiguration] = Field(min_length=1, description="the instrument's configurations")
    change_seconds: float = Field(
        default=120.0, ge=0, description="time to change configuration, s; charged on a change and on the first measurement"
    )
    overhead_seconds: float = Field(default=10.0, ge=0, description="per-measurement overhead (shutters, readout), s")
    realtime_factor: float = Field(default=0.0, ge=0, description="real seconds slept per virtual second")
    journal_dir: str | None = Field(default=None, description="folder for the instrument's own data files")
    seed: int = 0
    radiation: Literal["neutron", "xray"] = Field(default="neutron", description="sets how formula SLDs are computed")
    xray_energy_kev: float | None = Field(
        default=None, gt=0, description="X-ray energy, keV (required for radiation='xray'; e.g. 8.04 for Cu Kα)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> SASSettings:
        if (self.sample is None) == (self.materials_system is None):
            raise ValueError("sample, materials_system: give exactly one (a fixed sample, or a system making one per recipe)")
        if self.materials_system is not None and not isinstance(self.materials_system, FormulationSystemSettings):
            raise ValueError(
                f"materials_system: kind {self.materials_system.kind!r} makes no nanostructures; the SAS simulator needs kind 'formulation'"
            )
        names = [c.name for c in self.configurations]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"configurations: names must be unique; repeated: {duplicates}")
        if self.radiation == "xray" and self.xray_energy_kev is None:
            raise ValueError("xray_energy_kev: required when radiation is 'xray'")
        if self.radiation == "neutron" and self.xray_energy_kev is not None:
            raise ValueError("xray_energy_kev: only applies to radiation 'xray'")
        for index, configuration in enumerate(self.configurations):
            wavelength = configuration_wavelength(self, configuration)  # raises on a mismatch
            edges = _bin_edges(configuration)
            if edges[-1] * wavelength / (4 * math.pi) >= 1:
                raise ValueError(
                    f"configurations[{index}].q_max: {configuration.q_max} 1/Å is beyond 4π/λ "
                    f"({4 * math.pi / wavelength:.4g} 1/Å at λ = {wavelength:.4g} Å)"
                )
        if self.sample is not None:
            resolve_parameters(self)  # formula SLDs must be computable now, not at the first measurement
        return self


# -- the sample's model and parameters -------------------------------------------------------------


def sample_model_info(model: str) -> Any:
    """sasmodels ``ModelInfo`` of a model name or expression; ValueError naming an unknown model."""
    for part in model_parts(model):
        if part.startswith("custom."):
            continue  # a user model in sasmodels' custom-model folder; sasmodels reports it if missing
        if part not in library_models():
            raise ValueError(
                f"sample.model: unknown sasmodels model {part!r} in {model!r}; valid models: "
                f"{', '.join(library_models())} (combine with '+' or '*', or '@' for a structure factor)"
            )
    try:
        return model_info(model)
    except Exception as exc:  # noqa: BLE001 — sasmodels raises assorted errors for a bad expression
        raise ValueError(f"sample.model: sasmodels cannot load {model!r}: {exc}") from exc


def valid_parameter_names(info: Any) -> list[str]:
    """Parameter names ``SASSample.parameters`` accepts for a model (without scale and background)."""
    names = []
    for name, p in user_parameters(info).items():
        if name in ("scale", "background"):
            continue
        names.append(name)
        if p.id in info.parameters.pd_1d:
            names.extend(name + suffix for suffix in POLYDISPERSITY_SUFFIXES)
    return names


def check_parameters(model: str, info: Any, parameters: dict[str, float | str | Material]) -> None:
    """Raise ValueError naming any parameter the model does not have, or a value it cannot take."""
    user = user_parameters(info)
    valid = valid_parameter_names(info)
    for name, value in parameters.items():
        where = f"sample.parameters.{name}"
        if name in ("scale", "background"):
            raise ValueError(f"{where}: set sample.{name} instead")
        if name not in valid:
            raise ValueError(f"{where}: unknown parameter {name!r} for model {model!r}; valid parameters: {', '.join(valid)}")
        base, suffix = _split_polydispersity(name, user)
        if suffix == "_pd_type":
            if value not in polydispersity_types():
                raise ValueError(f"{where}: {value!r} is not a size distribution; choose one of {list(polydispersity_types())}")
            continue
        if isinstance(value, Material):
            if suffix or user[name].type != "sld":
                raise ValueError(f"{where}: only an SLD parameter may be given as {{formula, density}}")
            continue
        if isinstance(value, str):
            choices = list(user[name].choices or []) if not suffix else []
            if value not in choices:
                hint = f"; choose one of {choices}" if choices else ""
                raise ValueError(f"{where}: expected a number, got {value!r}{hint}")
            continue
        if suffix == "_pd":
            low, high = 0.0, math.inf
        elif suffix == "_pd_n":
            if value != int(value):
                raise ValueError(f"{where}: the number of polydispersity points must be an integer, got {value}")
            low, high = 0.0, 1000.0
        elif suffix == "_pd_nsigma":
            low, high = 1e-6, math.inf
        else:
            low, high = user[base].limits
        if not low <= value <= high:
            raise ValueError(f"{where}: {value} is outside the model's limits [{low}, {high}]")


def _split_polydispersity(name: str, user: dict[str, Any]) -> tuple[str, str]:
    if name in user:
        return name, ""
    for suffix in sorted(POLYDISPERSITY_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix) and name[: -len(suffix)] in user:
            return name[: -len(suffix)], suffix
    raise KeyError(name)  # unreachable after the name check


def material_sld(material: Material, radiation: Literal["neutron", "xray"], xray_energy_kev: float | None) -> float:
    """Real part of the SLD of ``material``, in 1e-6/Å² (sasmodels' unit).

    Neutrons: periodictable's coherent SLD (at its default 1.798 Å; the real part depends on the
    wavelength only for strong absorbers). X-rays: the SLD at ``xray_energy_kev``.
    """
    if radiation == "neutron":
        sld = periodictable.neutron_sld(material.formula, density=material.density)[0]
    else:
        sld = periodictable.xray_sld(material.formula, density=material.density, energy=xray_energy_kev)[0]
    return float(sld)


def resolve_parameters(settings: SASSettings) -> dict[str, float | str]:
    """The sasmodels parameters of the sample, numbers only (SLDs from formulas computed), with
    ``scale`` and ``background``: exactly what the kernel is called with."""
    assert settings.sample is not None
    return resolve_sample_parameters(settings.sample, settings)


def resolve_sample_parameters(sample: SASSample, settings: SASSettings) -> dict[str, float | str]:
    """``resolve_parameters`` of any sample, with the settings' radiation."""
    user = user_parameters(sample_model_info(sample.model))
    resolved: dict[str, float | str] = {"scale": sample.scale, "background": sample.background}
    for name, value in sample.parameters.items():
        if isinstance(value, Material):
            try:
                resolved[name] = material_sld(value, settings.radiation, settings.xray_energy_kev)
            except Exception as exc:  # noqa: BLE001 — periodictable's parse errors vary
                raise ValueError(f"sample.parameters.{name}: cannot compute the SLD of {value.formula!r}: {exc}") from exc
        elif name.endswith("_pd_n"):
            resolved[name] = int(value)  # type: ignore[arg-type]
        elif isinstance(value, str) and name in user and user[name].choices:
            resolved[name] = float(list(user[name].choices).index(value))
        else:
            resolved[name] = value
    return resolved


def configuration_wavelength(settings: SASSettings, configuration: SASConfiguration) -> float:
    """The configuration's wavelength in Å (see ``SASConfiguration.wavelength``)."""
    if settings.radiation == "xray":
        assert settings.xray_energy_kev is not None
        from_energy = HC_KEV_ANGSTROM / settings.xray_energy_kev
        if configuration.wavelength is not None and abs(configuration.wavelength / from_energy - 1) > 0.01:
            raise ValueError(
                f"configuration {configuration.name!r}: wavelength {configuration.wavelength} Å disagrees with "
                f"xray_energy_kev {settings.xray_energy_kev} ({from_energy:.4f} Å)"
            )
        return configuration.wavelength or from_energy
    return configuration.wavelength or DEFAULT_NEUTRON_WAVELENGTH


def _bin_centres(configuration: SASConfiguration) -> np.ndarray:
    return np.geomspace(configuration.q_min, configuration.q_max, configuration.n_points)


def _bin_edges(configuration: SASConfiguration) -> np.ndarray:
    log_q = np.log(_bin_centres(configuration))
    step = log_q[1] - log_q[0]
    return np.exp(np.concatenate([[log_q[0] - step / 2], (log_q[:-1] + log_q[1:]) / 2, [log_q[-1] + step / 2]]))


# -- the driver ------------------------------------------------------------------------------------


@dataclass
class _ConfigurationState:
    """Fixed per-configuration arrays, and the running totals of its exposures."""

    q: np.ndarray  # bin centres, 1/Å
    dq: np.ndarray  # 1-σ resolution, 1/Å (0 for a slit configuration)
    truth: np.ndarray  # smeared I(q) with the sample's incoherent background, 1/cm
    cell: np.ndarray  # empty-cell/solvent background B(q), 1/cm
    k_per_second: np.ndarray  # expected counts per second per 1/cm: Φ T d ε ΔΩ
    slit: tuple[np.ndarray, np.ndarray] | None = None  # slit length and width, 1/Å, of a slit configuration
    counts: np.ndarray = field(init=False)
    exposure_seconds: float = 0.0
    attempts: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.counts = np.zeros_like(self.q, dtype=np.int64)


class SASDriver(JournalledDriver):
    """Driver of the simulated SANS/SAXS instrument. Plain class; Ray wraps it in ``InstrumentActor``.

    Request params (``instruments.sas.REQUEST_FIELDS``): ``configuration`` (a configuration name)
    and ``exposure_seconds`` (s), checked by ``instruments.sas.check_sas_request``. Data:
    ``q`` (1/Å), ``intensity`` (1/cm) with σ in ``sigma["intensity"]``, ``dq`` (1-σ, 1/Å) — of this
    exposure only; ``accumulated`` gives the running total per configuration (and sample, with a
    materials system).
    """

    def __init__(self, name: str, settings: SASSettings) -> None:
        self.name = name
        self.settings = settings
        self.clock = VirtualClock(settings.realtime_factor)
        self.true_parameters: dict[str, float | str] = resolve_parameters(settings) if settings.sample else {}
        """The fixed sample's sasmodels parameters as the kernel sees them (SLDs from formulas computed)."""
        self.configurations: dict[str, SASConfiguration] = {c.name: c for c in settings.configurations}
        self.current_configuration: str | None = None
        self.stopped: bool | None = None
        self._lock = threading.Lock()  # recover() may run beside measure() in the actor's threads
        self._made: MadeSamples[dict[str, _ConfigurationState]] | None = None
        if settings.sample is not None:
            self._states = {c.name: self._build_state(c, settings.sample, self.true_parameters) for c in settings.configurations}
        else:
            assert settings.materials_system is not None
            self._made = MadeSamples(materials_system_from_settings(settings.materials_system), name, self._sample_states)
            # The instrument's geometry without a sample (truth NaN: never drawn from): the planning model.
            self._states = {c.name: self._build_state(c, None, {}) for c in settings.configurations}
        self._limits = self.planning_model()  # what check() holds a request against
        self._journal = MeasurementJournal(settings.journal_dir) if settings.journal_dir else None
        if self._journal is not None and self._made is None:
            # The instrument's data files outlive a crash; so do its accumulated totals (a materials
            # system's samples are made again from their recipes, so theirs start afresh).
            for attempt_id in dict.fromkeys(self._journal.acquisitions()):
                measurement = self._journal.read(attempt_id)
                if measurement is not None:
                    self._accumulate_recorded(measurement)

    def _build_state(
        self, configuration: SASConfiguration, sample: SASSample | None, parameters: dict[str, float | str]
    ) -> _ConfigurationState:
        """A configuration's arrays for ``sample`` (None: the instrument alone, truth NaN)."""
        s = self.settings
        cell_transmission, cell_thickness = _cell(s)
        q = _bin_centres(configuration)
        slit = None
        if configuration.is_slit:
            slit = (np.full(q.size, float(configuration.slit_length)), np.full(q.size, configuration.slit_width))
            dq = np.zeros_like(q)
        else:
            dq = q * float(configuration.dq_over_q_fwhm) / FWHM_PER_SIGMA
        edges = _bin_edges(configuration)
        wavelength = configuration_wavelength(s, configuration)
        solid_angle = wavelength**2 * (edges[1:] ** 2 - edges[:-1] ** 2) / (4 * math.pi)
        k_per_second = configuration.flux * cell_transmission * cell_thickness * configuration.efficiency * solid_angle
        if sample is None:
            truth = np.full_like(q, np.nan)
        elif slit:
            truth = _slit_truth(sample.model, parameters, q, slit)
        else:
            truth = smeared_intensity(sample.model, parameters, q, dq)
        cell = configuration.cell_background + configuration.cell_background_porod * q**-4.0
        return _ConfigurationState(q=q, dq=dq, truth=truth, cell=cell, k_per_second=k_per_second, slit=slit)

    def _sample_states(self, truth: SampleTruth) -> dict[str, _ConfigurationState]:
        """Every configuration's arrays for a sample a materials system made."""
        sample = sample_from_truth(truth)
        parameters = resolve_sample_parameters(sample, self.settings)
        return {c.name: self._build_state(c, sample, parameters) for c in self.settings.configurations}

    def _states_for(self, request: MeasurementRequest | None) -> dict[str, _ConfigurationState]:
        """The configurations' states of the fixed sample, or of the sample ``request`` names."""
        if self._made is None:
            return self._states
        return self._made.of_request(request)[1]

    def sample_truth(self, request: MeasurementRequest) -> SampleTruth:
        """The materials system's truth of the request's sample (tests and benchmarks only)."""
        if self._made is None:
            raise ValueError(f"{self.name}: no materials_system; the sample is settings.sample")
        return self._made.get(request)[0]

    # -- the driver protocol ---------------------------------------------------------------------
    def describe(self) -> dict[str, DataKey]:
        n = max(c.n_points for c in self.settings.configurations)
        per = ", ".join(f"{c.name}: {c.n_points}" for c in self.settings.configurations)
        note = f"shape is the largest configuration's; each measurement has its configuration's n_points ({per})"
        return {
            "q": DataKey(dtype="array", shape=[n], units="1/angstrom", description=f"Q bin centres; {note}"),
            "intensity": DataKey(
                dtype="array",
                shape=[n],
                units="1/cm",
                description="background-subtracted absolute intensity dΣ/dΩ of this exposure; σ from counting statistics",
            ),
            "dq": DataKey(
                dtype="array", shape=[n], units="1/angstrom",
                description="1-σ Gaussian Q resolution per point (pinhole configurations)",
            ),
            **(
                {
                    key: DataKey(dtype="array", shape=[n], units="1/angstrom", description=f"{what} (slit configurations)")
                    for key, what in (("dq_slit_length", "slit half-length"), ("dq_slit_width", "slit half-width"))
                }
                if any(c.is_slit for c in self.settings.configurations) else {}
            ),
        }

    def planning_model(self) -> SASInstrumentModel:
        """The configurations and counting model a planner may know (no ground truth in it).

        A slit configuration carries its slit (``slit_length``/``slit_width``, ``dq`` = 0), so a planner
        predicts it slit-smeared as the analysis fits it.
        """
        return SASInstrumentModel(
            configurations=[
                SASConfigurationModel(
                    name=name, q=state.q, dq=state.dq, counts_per_second=state.k_per_second, background=state.cell,
                    slit_length=state.slit[0] if state.slit else None, slit_width=state.slit[1] if state.slit else None,
                    min_exposure_seconds=self.configurations[name].min_exposure_seconds,
                    wavelength_angstrom=configuration_wavelength(self.settings, self.configurations[name]),
                )
                for name, state in self._states.items()
            ],
            radiation=self.settings.radiation,
            change_seconds=self.settings.change_seconds,
            overhead_seconds=self.settings.overhead_seconds,
        )

    def check(self, request: MeasurementRequest) -> None:
        check_sas_request(self._limits, request, instrument=self.name)
        if self._made is not None:
            self._made.check(request)

    def measure(self, request: MeasurementRequest) -> Measurement:
        self.check(request)
        wall_start = time.perf_counter()
        s = self.settings
        name = str(request.params["configuration"])
        exposure = float(request.params["exposure_seconds"])
        state = self._states_for(request)[name]
        started = datetime.now(timezone.utc)
        change = s.change_seconds if self.current_configuration != name else 0.0
        self.clock.advance(exposure + change + s.overhead_seconds)
        self.current_configuration = name

        rng = np.random.default_rng(attempt_seed(s.seed, request))
        k = state.k_per_second * exposure
        # max(·, 0): a spline through a deep, unresolved minimum may dip a hair below zero.
        counts = rng.poisson(np.maximum(k * (state.truth + state.cell), 0.0))
        intensity, sigma = _reduce(counts, k, state.cell)
        measurement = Measurement(
            attempt_id=request.attempt_id,
            instrument=self.name,
            params=dict(request.params),
            sample_id=request.sample_id,
            data={"q": state.q.copy(), "intensity": intensity, **_resolution_data(state)},
            sigma={"intensity": sigma},
            timing=Timing(
                exposure_seconds=exposure,
                motion_seconds=change,
                overhead_seconds=s.overhead_seconds,
                started_at=started,
                wall_seconds=time.perf_counter() - wall_start,
            ),
        )
        self._journalled(measurement)
        self._accumulate(state, request.attempt_id, counts, exposure)
        return measurement

    def recover(self, attempt_id: str) -> Measurement | None:
        # A recovered exposure was counted: it joins the accumulated totals (once per attempt).
        measurement = super().recover(attempt_id)
        if measurement is not None:
            self._accumulate_recorded(measurement)
        return measurement

    # -- accumulation ------------------------------------------------------------------------------
    def _accumulate(self, state: _ConfigurationState, attempt_id: str, counts: np.ndarray, exposure: float) -> None:
        with self._lock:
            if attempt_id in state.attempts:
                return  # a replayed attempt draws the same noise: counting it twice would not be a new exposure
            state.attempts.add(attempt_id)
            state.counts += counts
            state.exposure_seconds += exposure

    def _accumulate_recorded(self, measurement: Measurement) -> None:
        # Counts are recovered exactly from a recorded exposure: N = k (I + B), an integer.
        configuration = measurement.params.get("configuration")
        states = self._recorded_states(measurement)
        if measurement.instrument != self.name or states is None or configuration not in states:
            return
        state = states[str(configuration)]
        exposure = float(measurement.params["exposure_seconds"])
        counts = np.rint(state.k_per_second * exposure * (measurement.data["intensity"] + state.cell)).astype(np.int64)
        self._accumulate(state, measurement.attempt_id, counts, exposure)

    def _recorded_states(self, measurement: Measurement) -> dict[str, _ConfigurationState] | None:
        # A recorded exposure of a materials system's sample joins that sample's totals if the sample
        # has been made in this process (a recording holds no recipe to make it from).
        if self._made is None:
            return self._states
        made = self._made.known(measurement.sample_id if measurement.sample_id is not None else measurement.attempt_id)
        return made[1] if made is not None else None

    def accumulated(
        self, configuration: str, request: MeasurementRequest | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """All exposures of ``configuration`` counted together: (q 1/Å, I 1/cm, σ 1/cm, total exposure s).

        The counts of every distinct attempt are summed, so σ shrinks as 1/sqrt(total exposure).
        With a materials system, of the sample ``request`` names.
        """
        state = self._state(configuration, request)
        with self._lock:
            counts, exposure = state.counts.copy(), state.exposure_seconds
        if exposure == 0:
            raise ValueError(f"{self.name}: no exposures of configuration {configuration!r} yet")
        intensity, sigma = _reduce(counts, state.k_per_second * exposure, state.cell)
        return state.q.copy(), intensity, sigma, exposure

    # -- ground truth, for tests and benchmarks ----------------------------------------------------
    def _state(self, configuration: str, request: MeasurementRequest | None = None) -> _ConfigurationState:
        if configuration not in self._states:
            raise ValueError(
                f"{self.name}: unknown configuration {configuration!r}; valid configurations: {list(self._states)}"
            )
        return self._states_for(request)[configuration]

    def true_intensity(self, configuration: str, request: MeasurementRequest | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(q 1/Å, noise-free resolution-smeared I(q) 1/cm, including the sample's incoherent background);
        with a materials system, of the sample ``request`` names."""
        state = self._state(configuration, request)
        return state.q.copy(), state.truth.copy()

    def resolution(self, configuration: str) -> np.ndarray:
        """1-σ Q resolution (1/Å) of the configuration's bins."""
        return self._state(configuration).dq.copy()

    def expected_sigma(
        self, configuration: str, exposure_seconds: float, request: MeasurementRequest | None = None
    ) -> np.ndarray:
        """σ (1/cm) an exposure of this length would report on average: sqrt(k (I + B)) / k."""
        state = self._state(configuration, request)
        k = state.k_per_second * exposure_seconds
        return np.sqrt(k * (state.truth + state.cell)) / k


def _cell(settings: SASSettings) -> tuple[float, float]:
    """(transmission, thickness cm) of the sample cell: the fixed sample's, or the materials system's."""
    if settings.sample is not None:
        return settings.sample.transmission, settings.sample.thickness_cm
    assert isinstance(settings.materials_system, FormulationSystemSettings)
    return settings.materials_system.transmission, settings.materials_system.thickness_cm


def sample_from_truth(truth: SampleTruth) -> SASSample:
    """The SAS sample of a materials system's truth (a nanostructure as a sasmodels model)."""
    if not isinstance(truth, NanostructureTruth):
        raise TypeError(f"materials_system: the SAS simulator measures nanostructures, not {truth.kind!r}")
    return SASSample(
        model=truth.model, parameters=dict(truth.parameters), scale=truth.scale, background=truth.background,
        transmission=truth.transmission, thickness_cm=truth.thickness_cm,
    )


def _resolution_data(state: _ConfigurationState) -> dict[str, np.ndarray]:
    """A measurement's resolution keys: ``dq`` (pinhole) or ``dq_slit_length`` / ``dq_slit_width`` (slit)."""
    if state.slit is None:
        return {"dq": state.dq.copy()}
    return {"dq_slit_length": state.slit[0].copy(), "dq_slit_width": state.slit[1].copy()}


def _slit_truth(
    model: str, parameters: dict[str, float | str], q: np.ndarray, slit: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    """Slit-smeared I(q) (1/cm) on the dense truth grid (``physics.sas.slit_resolution(dense=True)``)."""
    evaluator = SmearedEvaluator(model, [resolution_block(q, slit_length=slit[0], slit_width=slit[1], dense=True)])
    try:
        return evaluator(parameters)
    finally:
        evaluator.release()


def _reduce(counts: np.ndarray, k: np.ndarray, cell: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Counts → absolute intensity with the background subtracted, and its Poisson σ. An empty bin
    # reports σ as for one count, so no point claims infinite precision.
    counts = np.asarray(counts, dtype=np.float64)
    return counts / k - cell, np.sqrt(np.maximum(counts, 1.0)) / k
