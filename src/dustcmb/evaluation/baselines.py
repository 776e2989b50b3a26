"""Two baseline dust models the GAN must beat, put through the same tests as the GAN.

A baseline is only informative if it matches what it claims to match, in the domain being scored, so
both are drawn in the real set's unit domain (scaled ``ln I``, the real set's log range) and map ``i``
of a baseline copies real map ``i``'s own statistics, keeping the real spread between patches:

Gaussian (``baseline_gaussian``)
    Map ``i`` is a non-periodic Gaussian field (periodic on ``pad`` patch sides, then cropped, like the
    sky, and band-limited with the sky's own window, :func:`dustcmb.patches.cutter.lowpass_profile`, so
    that it has no pixel-scale power the sky lacks) with real map ``i``'s mean and real map ``i``'s
    spectrum: the set's geometric-mean spectrum times a power-law modulation
    ``10^(a_i + s_i log10(ℓ/ℓ_mid))`` fitted to map ``i``'s measured one. The fit keeps each map's amplitude and tilt
    but not its sampling noise, which the draw then adds once, as the sky did. The scales larger than
    the lowest reported ring are rescaled so that the map's variance is real map ``i``'s. It matches the
    distribution of per-map spectra (set mean of log10 C_ℓ and its spread), brightness and contrast; its
    one-point PDF is Gaussian per map. Beating it means capturing non-Gaussian structure.
Log-normal (``baseline_lognormal``)
    The same construction, then the pooled pixels of the whole set are rank-matched to the pooled real
    pixels (quantile mapping). Its pooled pixel PDF equals the real one **by construction**, so its V0
    and pixel-histogram scores are automatic; its spectra match approximately (rank-matching distorts
    them a little) and its phases are random: no filaments. Beating it on V1, V2 and the spectra means
    capturing morphology that a PDF and a spectrum cannot.

The scores average log10 C_ℓ, and a measured spectrum's log is biased low by its few modes per ring
(and the estimator leaks a little), so the input is calibrated once, on the geometric-mean spectrum,
by fixed-point iterations ``log C_in <- log C_in + <log C_target> − <log C_measured>`` over
:data:`CALIBRATION_MAPS` draws; every map's input is its target times that calibration ratio.
"""

from __future__ import annotations

import math

import numpy as np
from tqdm.auto import tqdm

from dustcmb.patches.cutter import lowpass_profile
from dustcmb.patches.normalise import from_unit
from dustcmb.simulation.fields import CroppedGaussianField
from dustcmb.stats.power import FIRST_RING, power_spectrum

BASELINES = {"baseline_gaussian": "Gaussian baseline", "baseline_lognormal": "log-normal baseline"}  # key: label
MATCHES = {  # what each baseline is built to match, written into metrics/gan.json beside its scores
    "baseline_gaussian": "each real map's unit-domain mean and smoothed spectrum (Gaussian pixels)",
    "baseline_lognormal": "each real map's mean and smoothed spectrum, and the pooled real pixel PDF "
                          "exactly (so its V0 and pixel-histogram scores are automatic)",
}
TAIL_FRACTION = 0.25  # share of the highest multipole bins used to extrapolate a spectrum
CALIBRATION_MAPS = 128  # draws per calibration iteration (≈ 3 % noise on the first ring at 64²)
CALIBRATION_ITERATIONS = 3


def extend_spectrum(ell: np.ndarray, cl: np.ndarray, ell_nyquist: float) -> tuple[np.ndarray, np.ndarray]:
    """Extrapolate ``C_ℓ`` as power laws down to ℓ = ℓ₀/4 and up to the Fourier corners, ``√2 ℓ_Nyq``.

    The estimator reports neither its lowest ring nor the rings above the band-limit taper, but the
    fields must carry power there: :meth:`CroppedGaussianField.amplitude` holds the first value below
    the first given ℓ and sets modes beyond the last to zero. Each slope is a least-squares fit of
    ``log C`` against ``log ℓ`` over the outer :data:`TAIL_FRACTION` of the bins at that end.
    """
    span = max(2, int(len(ell) * TAIL_FRACTION))
    low, _ = np.polyfit(np.log(ell[:span]), np.log(cl[:span]), 1)
    high, _ = np.polyfit(np.log(ell[-span:]), np.log(cl[-span:]), 1)
    ell_lo, ell_hi = ell[0] / 8.0, np.sqrt(2.0) * ell_nyquist * 1.01
    return (np.concatenate([[ell_lo], ell, [ell_hi]]),
            np.concatenate([[cl[0] * (ell_lo / ell[0]) ** low], cl, [cl[-1] * (ell_hi / ell[-1]) ** high]]))


def band_limited_amplitude(field: CroppedGaussianField, ell: np.ndarray, cl: np.ndarray,
                           ell_nyquist: float) -> np.ndarray:
    """:meth:`CroppedGaussianField.amplitude` of the :func:`extend_spectrum` of ``cl``, times the window
    the sky was band-limited with before the patches were cut (in ln I, i.e. in the unit domain): 1 up
    to 0.75 ℓ_Nyq, cos² to 0 at ℓ_Nyq, 0 in the corners. Without it the power-law extrapolation fills
    the Fourier corners, and the baselines carry ~2 500× the sky's power there (the grain test)."""
    window = lowpass_profile(field.mode_ell / ell_nyquist)
    return field.amplitude(*extend_spectrum(ell, cl, ell_nyquist)) * window


def calibration_ratio(field: CroppedGaussianField, ell: np.ndarray, cl: np.ndarray, size_deg: float,
                      ell_nyquist: float, rng: np.random.Generator) -> np.ndarray:
    """``C_in / C_target`` per bin such that cropped draws of ``C_in`` have geometric-mean spectrum ``cl``."""
    cl_in = cl.copy()
    for _ in range(CALIBRATION_ITERATIONS):
        amplitude = band_limited_amplitude(field, ell, cl_in, ell_nyquist)
        draws = np.stack([field.draw(amplitude, rng) for _ in range(CALIBRATION_MAPS)])
        cl_in = cl_in * cl / 10.0 ** np.log10(power_spectrum(draws, size_deg)[1]).mean(0)
    return cl_in / cl


def spectrum_modulations(ell: np.ndarray, cl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The set's geometric-mean spectrum [n_bins] and each map's fitted power-law modulation [n, n_bins]."""
    log_cl = np.log10(cl)
    mean = log_cl.mean(0)
    x = np.log10(ell / np.sqrt(ell[0] * ell[-1]))
    slope, offset = np.polyfit(x, (log_cl - mean).T, 1)
    return 10.0**mean, 10.0 ** (offset[:, None] + slope[:, None] * x[None, :])


def per_map_fields(real_unit: np.ndarray, size_deg: float, pad: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian fields [n, N, N] (float64): map ``i`` with real map ``i``'s (smoothed) spectrum and mean.

    Parameters
    ----------
    real_unit : numpy.ndarray [n, N, N]
        Real maps in the unit domain.
    size_deg, pad : float, int
        Patch side [deg] and the drawing grid's size in patch sides.
    rng : numpy.random.Generator
        Source of the white noise.
    """
    npix = real_unit.shape[-1]
    ell, cl = power_spectrum(real_unit, size_deg)
    geometric, modulation = spectrum_modulations(ell, cl)
    field = CroppedGaussianField(npix, size_deg, pad)
    ell_nyquist = math.pi / (math.radians(size_deg) / npix)
    target = geometric * calibration_ratio(field, ell, geometric, size_deg, ell_nyquist, rng)
    means = real_unit.mean(axis=(1, 2), dtype=np.float64)
    variances = real_unit.var(axis=(1, 2), dtype=np.float64)
    # scales above the patch that the spectrum does not report carry the rest of each map's variance
    large = field.mode_ell < (FIRST_RING - 0.5) * 2.0 * math.pi / math.radians(size_deg)
    maps = np.empty(real_unit.shape)
    for i in tqdm(range(len(real_unit)), desc="baseline fields", unit="map", leave=False):
        amplitude = band_limited_amplitude(field, ell, target * modulation[i], ell_nyquist)
        small, broad = field.draw(amplitude * ~large, rng), field.draw(amplitude * large, rng)
        small, broad = small - small.mean(), broad - broad.mean()
        gain = math.sqrt(max(variances[i] - small.var(), 0.0) / max(broad.var(), 1e-30))
        maps[i] = small + gain * broad + means[i]
    return maps


def gaussian_baseline(real_unit: np.ndarray, size_deg: float, pad: int, log_min: float, log_max: float,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian unit-domain fields with each real map's spectrum, mean and variance.

    Returns
    -------
    unit, mjysr : float32 [n, N, N]
        The fields in the real set's unit domain (not clipped to [-1, 1]) and in MJy/sr.
    """
    unit = per_map_fields(real_unit, size_deg, pad, rng).astype(np.float32)
    return unit, from_unit(unit, log_min, log_max)


def lognormal_baseline(real_unit: np.ndarray, size_deg: float, pad: int, log_min: float, log_max: float,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The Gaussian construction with its pooled pixels rank-matched to the pooled real pixels.

    Returns
    -------
    unit, mjysr : float32 [n, N, N]
        Unit-domain maps whose pooled pixel values are exactly the real ones, and the same in MJy/sr.
    """
    maps = per_map_fields(real_unit, size_deg, pad, rng)
    unit = np.empty(maps.size, dtype=np.float32)
    unit[np.argsort(maps, axis=None, kind="stable")] = np.sort(real_unit, axis=None)
    unit = unit.reshape(maps.shape)
    return unit, from_unit(unit, log_min, log_max)
