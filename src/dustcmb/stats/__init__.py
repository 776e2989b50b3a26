"""Statistics shared by every stage: power spectra (and the grain test), Minkowski functionals, border
strips, Fréchet distance, histograms."""

from dustcmb.stats.bootstrap import BootstrapResult, bootstrap, resample_weights, summarise
from dustcmb.stats.borders import BORDER_DEPTHS_PX, border_contrast
from dustcmb.stats.frechet import frechet_distance, spectra_frechet_distance
from dustcmb.stats.histogram import histogram_counts, histogram_intersection, intersection
from dustcmb.stats.minkowski import minkowski
from dustcmb.stats.power import beyond_band_power, bin_theory, dl_from_cl, ell_bins, power_spectrum

__all__ = [
    "BORDER_DEPTHS_PX",
    "BootstrapResult",
    "beyond_band_power",
    "bin_theory",
    "bootstrap",
    "border_contrast",
    "dl_from_cl",
    "ell_bins",
    "frechet_distance",
    "histogram_counts",
    "histogram_intersection",
    "intersection",
    "minkowski",
    "power_spectrum",
    "resample_weights",
    "spectra_frechet_distance",
    "summarise",
]
