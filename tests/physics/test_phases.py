"""The phase library: every CIF is the structure it claims, and bad CIFs are named."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from pymatgen.analysis.diffraction.xrd import XRDCalculator
from pymatgen.core import Composition
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from physics.phases import DEFAULT_LIBRARY, PhaseLibrary, PhaseLibraryError, read_phase

pytestmark = pytest.mark.timeout(120)

# id: (formula, Z, space group, handbook density g/cm³, a strong Cu Kα1 line 2θ, shortest distance floor Å)
EXPECTED = {
    "si": ("Si", 8, "Fd-3m", 2.329, 28.44, 2.2),
    "fe_alpha": ("Fe", 2, "Im-3m", 7.874, 44.67, 2.2),
    "al": ("Al", 4, "Fm-3m", 2.7, 38.47, 2.5),
    "cu": ("Cu", 4, "Fm-3m", 8.96, 43.3, 2.3),
    "ni": ("Ni", 4, "Fm-3m", 8.908, 44.51, 2.3),
    "ag": ("Ag", 4, "Fm-3m", 10.49, 38.12, 2.5),
    "au": ("Au", 4, "Fm-3m", 19.3, 38.19, 2.5),
    "w": ("W", 2, "Im-3m", 19.25, 40.26, 2.5),
    "ge": ("Ge", 8, "Fd-3m", 5.323, 27.28, 2.3),
    "c_diamond": ("C", 8, "Fd-3m", 3.515, 43.92, 1.5),
    "c_graphite": ("C", 4, "P6_3/mmc", 2.26, 26.54, 1.4),
    "nacl_halite": ("NaCl", 4, "Fm-3m", 2.165, 31.69, 2.7),
    "kcl_sylvite": ("KCl", 4, "Fm-3m", 1.988, 28.35, 3.0),
    "mgo_periclase": ("MgO", 4, "Fm-3m", 3.58, 42.92, 2.0),
    "cao_lime": ("CaO", 4, "Fm-3m", 3.34, 37.36, 2.2),
    "nio_bunsenite": ("NiO", 4, "Fm-3m", 6.67, 43.29, 2.0),
    "mno_manganosite": ("MnO", 4, "Fm-3m", 5.37, 40.55, 2.0),
    "pbs_galena": ("PbS", 4, "Fm-3m", 7.6, 30.1, 2.7),
    "caf2_fluorite": ("CaF2", 4, "Fm-3m", 3.18, 28.27, 2.2),
    "ceo2_cerianite": ("CeO2", 4, "Fm-3m", 7.22, 28.55, 2.2),
    "zro2_cubic": ("ZrO2", 4, "Fm-3m", 6.0, 30.17, 2.1),
    "zns_sphalerite": ("ZnS", 4, "F-43m", 4.09, 28.56, 2.2),
    "srtio3": ("SrTiO3", 1, "Pm-3m", 5.12, 32.42, 1.9),
    "lab6": ("LaB6", 1, "Pm-3m", 4.72, 30.38, 1.6),
    "cu2o_cuprite": ("Cu2O", 2, "Pn-3m", 6.0, 36.42, 1.8),
    "zno_zincite": ("ZnO", 2, "P6_3mc", 5.61, 36.25, 1.9),
    "tio2_rutile": ("TiO2", 2, "P4_2/mnm", 4.25, 27.45, 1.9),
    "sno2_cassiterite": ("SnO2", 2, "P4_2/mnm", 6.95, 26.61, 2.0),
    "tio2_anatase": ("TiO2", 4, "I4_1/amd", 3.89, 25.28, 1.9),
    "tio2_brookite": ("TiO2", 8, "Pbca", 4.12, 25.34, 1.8),
    "al2o3_corundum": ("Al2O3", 6, "R-3c", 3.99, 35.15, 1.8),
    "fe2o3_hematite": ("Fe2O3", 6, "R-3c", 5.26, 33.15, 1.9),
    "cr2o3_eskolaite": ("Cr2O3", 6, "R-3c", 5.22, 33.6, 1.9),
    "caco3_calcite": ("CaCO3", 6, "R-3c", 2.71, 29.41, 1.25),
    "caco3_aragonite": ("CaCO3", 4, "Pnma", 2.93, 26.21, 1.25),
    "sio2_quartz": ("SiO2", 3, "P3_221", 2.65, 26.64, 1.55),
    "sio2_cristobalite": ("SiO2", 4, "P4_12_12", 2.33, 21.98, 1.55),
    "mg2sio4_forsterite": ("Mg2SiO4", 4, "Pnma", 3.27, 36.5, 1.55),
    "zro2_monoclinic": ("ZrO2", 4, "P2_1/c", 5.68, 28.18, 1.95),
    "zro2_tetragonal": ("ZrO2", 2, "P4_2/nmc", 6.08, 30.17, 2.0),
    "fe3o4_magnetite": ("Fe3O4", 8, "Fd-3m", 5.18, 35.42, 1.8),
    "mgal2o4_spinel": ("MgAl2O4", 8, "Fd-3m", 3.58, 36.85, 1.8),
    "znal2o4_gahnite": ("ZnAl2O4", 8, "Fd-3m", 4.61, 36.83, 1.8),
    "coal2o4_spinel": ("CoAl2O4", 8, "Fd-3m", 4.4, 36.8, 1.8),
    "znfe2o4_franklinite": ("ZnFe2O4", 8, "Fd-3m", 5.32, 35.26, 1.8),
    "co3o4_spinel": ("Co3O4", 8, "Fd-3m", 6.11, 36.85, 1.8),
    "cuo_tenorite": ("CuO", 4, "C2/c", 6.5, 35.54, 1.85),
    "y2o3_bixbyite": ("Y2O3", 16, "Ia-3", 5.01, 29.15, 2.1),
}


def test_the_library_has_at_least_thirty_phases_with_the_overlapping_families() -> None:
    names = PhaseLibrary().names()
    assert len(names) >= 30 and set(EXPECTED) <= set(names)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_cif_is_the_structure_it_claims(name: str) -> None:
    formula, z, space_group, density, line, shortest = EXPECTED[name]
    phase = PhaseLibrary().phase(name)
    structure = phase.structure
    assert structure.composition.almost_equals(Composition(formula) * z)  # type: ignore[attr-defined]
    assert abs(phase.density - density) / density < 0.03, (phase.density, density)
    distances = structure.distance_matrix + 1e9 * np.eye(len(structure))  # type: ignore[attr-defined]
    assert distances.min() >= shortest
    assert SpacegroupAnalyzer(structure, symprec=0.01).get_space_group_symbol() == space_group
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pattern = XRDCalculator("CuKa1").get_pattern(structure, two_theta_range=(10, 90))
    assert sum(y for x, y in zip(pattern.x, pattern.y) if abs(x - line) < 0.15) >= 75  # a strong line where published


def test_reflections_carry_f2_times_multiplicity_independent_of_wavelength() -> None:
    si = PhaseLibrary().phase("si")
    reflections = si.reflections(0.8)
    # Diamond lattice: (111) first, d = a/√3; (200) is forbidden; (220) next.
    a = si.structure.lattice.a  # type: ignore[attr-defined]
    assert reflections.d[0] == pytest.approx(a / np.sqrt(3), rel=1e-6)
    assert reflections.d[1] == pytest.approx(a / np.sqrt(8), rel=1e-6)
    assert all(fam[0] != (2, 0, 0) for families in reflections.hkls for fam in families)
    assert np.all(reflections.d >= 0.8)


def test_a_malformed_cif_is_reported_with_its_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.cif"
    bad.write_text("data_broken\n_cell_length_a 3.0\n")
    with pytest.raises(PhaseLibraryError, match="broken.cif"):
        read_phase(bad)
    with pytest.raises(PhaseLibraryError, match="no such CIF file"):
        read_phase(tmp_path / "missing.cif")


def test_an_unknown_phase_lists_the_library() -> None:
    with pytest.raises(PhaseLibraryError, match="unknown phase 'unobtainium'.*tio2_rutile"):
        PhaseLibrary().phase("unobtainium")
    with pytest.raises(PhaseLibraryError, match="no such folder"):
        PhaseLibrary(DEFAULT_LIBRARY / "nowhere")
