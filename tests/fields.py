"""Periodic Gaussian random fields with a given flat-sky spectrum, for tests.

Convention matches :mod:`dustcmb.stats.power`: a map whose unnormalised ``rfft2`` has
``E|F_k|² = N² C(ℓ_k) / Δ²`` has power spectrum ``C_ℓ`` (Δ = pixel side in radians).
"""

from __future__ import annotations

import math

import numpy as np


def mode_ell(npix: int, size_deg: float) -> np.ndarray:
    """Multipole ``2π|k|/L`` of every ``rfft2`` mode [npix, npix//2 + 1], computed as ``bin_theory`` does."""
    ky = np.fft.fftfreq(npix, 1.0 / npix)[:, None]
    kx = np.fft.rfftfreq(npix, 1.0 / npix)[None, :]
    return (2.0 * math.pi / math.radians(size_deg)) * np.hypot(ky, kx)


def gaussian_fields(spectrum, n: int, npix: int, size_deg: float, seed, *, fixed_amplitude: bool = False):
    """Periodic zero-mean fields [n, npix, npix] with power spectrum ``spectrum(ℓ)`` (map unit² sr).

    Parameters
    ----------
    spectrum : callable
        ``C(ℓ)`` evaluated at every mode with ℓ > 0 (the mean mode is set to zero).
    n, npix, size_deg : int, int, float
        Number of maps, pixels per side, patch side in degrees.
    seed : int or tuple of int
        Seed of the white noise the fields are filtered from.
    fixed_amplitude : bool
        Keep only the phases of the white noise, so every mode has exactly ``|F_k|² = N² C / Δ²``:
        the measured spectrum then equals the ring average of ``C`` without sample variance.
    """
    pixel_rad = math.radians(size_deg) / npix
    ell = mode_ell(npix, size_deg)
    amplitude = np.zeros_like(ell)
    amplitude[ell > 0] = np.sqrt(spectrum(ell[ell > 0])) / pixel_rad
    noise = np.fft.rfft2(np.random.default_rng(seed).standard_normal((n, npix, npix)))
    if fixed_amplitude:
        noise = npix * noise / np.maximum(np.abs(noise), np.finfo(float).tiny)
    return np.fft.irfft2(noise * amplitude, s=(npix, npix))


def smoothed_white_spectrum(npix: int, size_deg: float, sigma_px: float):
    """``C(ℓ) = exp(−(ℓ Δ σ)²)``: white noise smoothed by a Gaussian of σ = ``sigma_px`` pixels."""
    pixel_rad = math.radians(size_deg) / npix
    return lambda ell: np.exp(-((ell * pixel_rad * sigma_px) ** 2))
