"""SiC_Zn.dat per-set log L / Occam / p (test_real_patterns' settings). argv: library folder."""
import sys, time, shutil, tempfile
from pathlib import Path
import numpy as np
from pymatgen.core import Lattice, Structure
from analysis.xrd import XRDPhaseIdentification, XRDPhaseIDSettings
from analysis.xrd.pattern import collect
from instruments.types import Measurement, Timing
from physics.phases import DEFAULT_LIBRARY
folder = Path(tempfile.mkdtemp())
for cif in DEFAULT_LIBRARY.glob("*.cif"):
    shutil.copy(cif, folder)
Structure.from_spacegroup("F-43m", Lattice.cubic(4.3596), ["Si", "C"], [[0, 0, 0], [0.25, 0.25, 0.25]]).to(filename=str(folder / "sic_3c.cif"))
Structure.from_spacegroup("P6_3/mmc", Lattice.hexagonal(2.6649, 4.9468), ["Zn"], [[1 / 3, 2 / 3, 0.25]]).to(filename=str(folder / "zn.cif"))
data = np.loadtxt("/work/fityk/x/usr/share/fityk/samples/SiC_Zn.dat")
m = Measurement(attempt_id="sic", instrument="file", params={"dwell_seconds": 1.0, "wavelength_angstrom": 1.5406},
                data={"two_theta": data[:, 0], "counts": data[:, 1]}, timing=Timing(exposure_seconds=1.0))
an = XRDPhaseIdentification(XRDPhaseIDSettings(library=str(folder), wavelength=1.5406, two_theta_range=(20.0, 100.0), axial_strain_bound=0.01))
pattern, _ = collect([m], "dwell_seconds")
t0 = time.perf_counter(); rep = an.identify(pattern)
print(f"T={rep.temperature:.3f} pmiss={rep.p_missing:.3g} {time.perf_counter()-t0:.0f}s flags={[f for f in rep.flags if not f.startswith('fit-not')]}")
import sys; sys.path.insert(0, __import__("os").path.dirname(__file__)); from variants import show; show(rep, an.settings.phase_log_prior())
for f in []:
    print(f"  {f.label:40s} p={rep.probabilities.get(f.label,0):.3f} logL={f.log_likelihood:.1f} occ={f.log_occam:.2f} k={f.n_parameters} atb={f.at_bound}")
