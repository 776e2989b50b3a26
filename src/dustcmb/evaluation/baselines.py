"""Two baseline dust models the GAN must beat, put through the same tests as the GAN.

Both draw non-periodic Gaussian fields with :class:`dustcmb.simulation.fields.CroppedGaussianField`
(periodic on ``pad`` times the patch side, then cropped, like the sky) whose *measured* spectrum
(:func:`dustcmb.stats.power_spectrum`) matches the one measured on the real set, and give map ``i`` the
mean of real map ``i``, so the set keeps the real spread of brightness between patches (latitude).
A measured crop spectrum is the input one convolved with the square window (steep spectra leak power
to high ℓ); feeding the real measured spectrum straight in would count that leakage twice (+15 % in
the middle, +60 % near Nyquist at 64²), so the input spectrum is first calibrated by a few fixed-point
iterations ``C_in <- C_in · C_target / <C_measured>`` on :data:`CALIBRATION_MAPS` draws.

Gaussian
    Intensity itself is Gaussian: spectrum = the real set's mean ``C_ℓ`` in (MJy/sr)² sr. Such maps can
    be negative, so they cannot use the log transform of the real set; instead the whole baseline set
    is mapped affinely onto ``[-1, 1]`` by its own minimum and maximum, as the real set's ``ln I`` is
    by its own. Spectra are measured on the MJy/sr maps directly.
Log-normal
    ``ln I`` is a Gaussian field with the real set's mean spectrum of the unit-domain maps (the scaled
    ``ln I``), then the pooled pixel values of the set are rank-matched to the pooled real unit-domain
    pixels (quantile mapping), so its one-point PDF equals the real one by construction; MJy/sr maps
    are :func:`dustcmb.patches.normalise.from_unit` of the result (exponentiation). It has the right
    spectrum and PDF but random phases: no filaments.
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from dustcmb.patches.normalise import from_unit
from dustcmb.simulation.fields import CroppedGaussianField
from dustcmb.stats.power import power_spectrum

BASELINES = {"baseline_gaussian": "Gaussian baseline", "baseline_lognormal": "log-normal baseline"}  # key: label
TAIL_FRACTION = 0.25  # share of the highest multipole bins used to extrapolate a spectrum
CALIBRATION_MAPS = 128  # draws per calibration iteration (≈ 3 % noise on the first ring at 64²)
CALIBRATION_ITERATIONS = 3


def extend_spectrum(ell: np.ndarray, cl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Append a power-law extrapolation of ``C_ℓ`` up to ``√2`` times the last multipole.

    The square patch's Fourier corners (``|k|`` up to ``√2`` Nyquist) carry power in the real maps;
    :meth:`CroppedGaussianField.amplitude` sets modes beyond the last given ``ℓ`` to zero. The slope is
    a least-squares fit of ``log C`` against ``log ℓ`` over the top :data:`TAIL_FRACTION` of the bins.
    """
    tail = slice(-max(2, int(len(ell) * TAIL_FRACTION)), None)
    slope, offset = np.polyfit(np.log(ell[tail]), np.log(cl[tail]), 1)
    ell_end = np.sqrt(2.0) * ell[-1] * 1.01
    return np.append(ell, ell_end), np.append(cl, cl[-1] * (ell_end / ell[-1]) ** slope)


def calibrated_spectrum(field: CroppedGaussianField, ell: np.ndarray, cl: np.ndarray, size_deg: float,
                        rng: np.random.Generator) -> np.ndarray:
    """Input ``C_ℓ`` whose cropped draws have mean measured spectrum ``cl`` (window leakage removed)."""
    cl_in = cl.copy()
    for _ in range(CALIBRATION_ITERATIONS):
        amplitude = field.amplitude(*extend_spectrum(ell, cl_in))
        draws = np.stack([field.draw(amplitude, rng) for _ in range(CALIBRATION_MAPS)])
        cl_in = cl_in * cl / power_spectrum(draws, size_deg)[1].mean(0)
    return cl_in


def gaussian_fields(ell: np.ndarray, cl: np.ndarray, means: np.ndarray, npix: int, size_deg: float,
                    pad: int, rng: np.random.Generator) -> np.ndarray:
    """Non-periodic Gaussian fields [n, N, N] (float64) with spectrum ``C_ℓ`` and map means ``means``.

    Parameters
    ----------
    ell, cl : numpy.ndarray
        Target spectrum (true multipoles, unit² sr), extended to the Fourier corners here.
    means : numpy.ndarray [n]
        Mean added to each map (unit of ``sqrt(C_ℓ)``); sets the number of maps.
    npix, size_deg, pad : int, float, int
        Patch geometry and the drawing grid's size in patch sides.
    rng : numpy.random.Generator
        Source of the white noise.
    """
    field = CroppedGaussianField(npix, size_deg, pad)
    amplitude = field.amplitude(*extend_spectrum(ell, calibrated_spectrum(field, ell, cl, size_deg, rng)))
    maps = np.empty((len(means), npix, npix))
    for i in tqdm(range(len(means)), desc="baseline fields", unit="map", leave=False):
        crop = field.draw(amplitude, rng)
        maps[i] = crop - crop.mean() + means[i]
    return maps


def gaussian_baseline(real_mjysr: np.ndarray, size_deg: float, pad: int,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian intensity fields with the real set's mean spectrum and the real maps' means.

    Returns
    -------
    unit : float32 [n, N, N]
        The set mapped affinely onto ``[-1, 1]`` by its own minimum and maximum.
    mjysr : float32 [n, N, N]
        The fields in MJy/sr (may be negative).
    """
    ell, cl = power_spectrum(real_mjysr, size_deg)
    maps = gaussian_fields(ell, cl.mean(0), real_mjysr.mean(axis=(1, 2), dtype=np.float64),
                           real_mjysr.shape[-1], size_deg, pad, rng)
    low, high = maps.min(), maps.max()
    unit = 2.0 * (maps - low) / (high - low) - 1.0
    return unit.astype(np.float32), maps.astype(np.float32)


def lognormal_baseline(real_unit: np.ndarray, size_deg: float, pad: int, log_min: float, log_max: float,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Log-normal fields: Gaussian ``ln I`` with the real log-map spectrum, rank-matched to the real PDF.

    Parameters
    ----------
    real_unit : numpy.ndarray [n, N, N]
        Real maps in the unit domain (scaled ``ln I``).
    log_min, log_max : float
        The real set's normalisation, to map the result back to MJy/sr.

    Returns
    -------
    unit, mjysr : float32 [n, N, N]
        Unit-domain maps whose pooled pixel values are exactly the real ones, and the same in MJy/sr.
    """
    ell, cl = power_spectrum(real_unit, size_deg)
    maps = gaussian_fields(ell, cl.mean(0), real_unit.mean(axis=(1, 2), dtype=np.float64),
                           real_unit.shape[-1], size_deg, pad, rng)
    unit = np.empty(maps.size, dtype=np.float32)
    unit[np.argsort(maps, axis=None, kind="stable")] = np.sort(real_unit, axis=None)
    unit = unit.reshape(maps.shape)
    return unit, from_unit(unit, log_min, log_max)
