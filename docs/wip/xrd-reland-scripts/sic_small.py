"""SiC_Zn.dat, candidates NiO + SiC + Zn only, the full library's prior per phase. argv: extra settings json"""
import sys, time, shutil, tempfile, math, json
from pathlib import Path
import numpy as np
from pymatgen.core import Lattice, Structure
from analysis.xrd import XRDPhaseIdentification, XRDPhaseIDSettings
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
n_lib = len(list(folder.glob("*.cif")))
over = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
s = XRDPhaseIDSettings(library=str(folder), candidates=over.pop("candidates", ["nio_bunsenite", "sic_3c", "zn"]), log_prior_per_phase=-math.log(n_lib),
                       wavelength=1.5406, two_theta_range=(20.0, 100.0), **over)
t0 = time.perf_counter()
r = XRDPhaseIdentification(s).interpret([m])
print(n_lib, r.details["best_set"], "p=%.3f" % r.estimates["p(best)"].value, {k: round(e.value, 3) for k, e in r.estimates.items() if k.startswith("p:") or k.startswith("w:") and e.value},
      [f for f in r.flags if not f.startswith("fit-not")], "%.0f s" % (time.perf_counter() - t0), flush=True)
