"""Science shared by simulators and analysis: SAS model access and resolution, XRD wavelengths and
profiles, the phase library. The bottom layer: it imports no labpilot package."""
