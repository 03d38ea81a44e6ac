"""Physical constants shared by the SAS and XRD physics (one home each)."""

HC_KEV_ANGSTROM = 12.398419843320026
"""h·c in keV·Å (CODATA 2018): X-ray wavelength (Å) = HC_KEV_ANGSTROM / photon energy (keV)."""
