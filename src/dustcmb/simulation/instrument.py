"""Instrument effects on a flat patch: Gaussian beams and white noise (docs/science.md#multi-frequency-skies).

Noise levels are map depths in µK_CMB·arcmin: the per-pixel standard deviation is
``level / pixel_arcmin`` and the flat noise spectrum is ``C_N = (level · arcmin)²`` [µK² sr].

Beams are circular Gaussians of full width at half maximum ``fwhm``, transfer function
``B_ℓ = exp(-ℓ² σ² / 2)`` with ``σ = fwhm / √(8 ln 2)`` (flat sky), applied in Fourier space. The
patch is not periodic, so before the FFT it is extended by mirror reflection by five beam σ (plus a
pixel) on every side; a periodic FFT would instead smear each edge into the opposite one. The same
padded filter (:func:`mirror_filter`) undoes the beam in the ILC baselines.
"""

from __future__ import annotations

import math

import numpy as np

ARCMIN_RAD = math.radians(1.0 / 60.0)
FWHM_TO_SIGMA = 1.0 / math.sqrt(8.0 * math.log(2.0))


def beam_transfer(ell, fwhm_arcmin: float):
    """Gaussian beam transfer ``B_ℓ = exp(-ℓ² σ² / 2)`` (power is ``B_ℓ²``) for ``fwhm_arcmin`` [arcmin]."""
    sigma_rad = fwhm_arcmin * ARCMIN_RAD * FWHM_TO_SIGMA
    return np.exp(-0.5 * (np.asarray(ell, dtype=np.float64) * sigma_rad) ** 2)


def beam_margin(fwhm_arcmin: float, pixel_arcmin: float, npix: int) -> int:
    """Mirror-padding width [pixels] for a beam: ``⌈5σ/Δ⌉ + 1``, at most ``npix − 1``."""
    return min(npix - 1, math.ceil(5.0 * fwhm_arcmin * FWHM_TO_SIGMA / pixel_arcmin) + 1)


def mirror_filter(maps: np.ndarray, transfer, margin: int, pixel_arcmin: float) -> np.ndarray:
    """Multiply the FFT of mirror-padded square maps by ``transfer(ℓ)`` and crop back to the patch.

    The maps [..., N, N] are extended by ``margin`` pixels per side by mirror reflection
    (``np.pad(mode="symmetric")``), so the periodic FFT sees no jump at the patch edges; the filtered
    extended map is cropped to the original N × N. This is the one Fourier filter of beams: the
    forward beam (:func:`apply_beam`) and the ILC's deconvolution (``transfer = 1/B_ℓ``) both use it.

    Parameters
    ----------
    maps : ndarray [..., N, N]
        Maps in any unit.
    transfer : callable
        ``transfer(ell)`` on the ``rfft2`` grid of the extended map [rad⁻¹ → factor].
    margin : int
        Padding width per side [pixels]; 0 filters the patch as if it were periodic.
    pixel_arcmin : float
        Pixel side [arcmin].
    """
    npix = maps.shape[-1]
    widths = [(0, 0)] * (maps.ndim - 2) + [(margin, margin)] * 2
    extended = np.pad(maps, widths, mode="symmetric")
    size = extended.shape[-1]
    ky = np.fft.fftfreq(size)[:, None]
    kx = np.fft.rfftfreq(size)[None, :]
    # ℓ of each mode: 2π × (cycles per pixel) / pixel [rad]
    ell = 2.0 * math.pi * np.hypot(ky, kx) / (pixel_arcmin * ARCMIN_RAD)
    filtered = np.fft.irfft2(np.fft.rfft2(extended) * transfer(ell), s=(size, size))
    return filtered[..., margin:margin + npix, margin:margin + npix]


def apply_beam(maps: np.ndarray, fwhm_arcmin: float, pixel_arcmin: float) -> np.ndarray:
    """Convolve square maps [..., N, N] with a Gaussian beam (mirror-extended FFT); 0 FWHM = copy.

    Parameters
    ----------
    maps : ndarray [..., N, N]
        Maps in any unit.
    fwhm_arcmin, pixel_arcmin : float
        Beam FWHM and pixel side [arcmin].
    """
    if fwhm_arcmin == 0.0:
        return np.array(maps, copy=True)
    margin = beam_margin(fwhm_arcmin, pixel_arcmin, maps.shape[-1])
    return mirror_filter(maps, lambda ell: beam_transfer(ell, fwhm_arcmin), margin, pixel_arcmin)


def noise_sigma_uk(level_uk_arcmin: float, pixel_arcmin: float) -> float:
    """Per-pixel white-noise standard deviation [µK_CMB] of a map depth [µK_CMB·arcmin]."""
    return level_uk_arcmin / pixel_arcmin


def white_noise_uk(shape: tuple[int, ...], level_uk_arcmin: float, pixel_arcmin: float,
                   rng: np.random.Generator) -> np.ndarray:
    """Gaussian white noise [µK_CMB] of depth ``level_uk_arcmin`` on pixels of ``pixel_arcmin``."""
    return rng.standard_normal(shape) * noise_sigma_uk(level_uk_arcmin, pixel_arcmin)
