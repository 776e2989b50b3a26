"""Statistics shared by every stage: power spectra, Minkowski functionals, Fréchet distance, histograms."""

from dustcmb.stats.power import bin_theory, dl_from_cl, ell_bins, power_spectrum

__all__ = ["bin_theory", "dl_from_cl", "ell_bins", "power_spectrum"]
