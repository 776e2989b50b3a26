"""A deterministic offline stand-in for the Planck 353 GHz dust intensity map (docs/science.md#synthetic-sky).

This is NOT the real sky: it only shares the properties the pipeline relies on, so that every stage
runs and is tested without the Planck file. Results on it are labelled "synthetic".

Model, in MJy/sr at 353 GHz::

    ln I(n) = ln I_pole + ln P(b) + sigma_ln * g(n)
    P(b)    = 1 / sqrt(sin²b + sin²w)               (a thin slab seen from inside, softened at |b| < w)
    g       = sqrt(1 - f) * g_gauss + sqrt(f) * g_ridge

``g_gauss`` is a Gaussian field with ``C_ℓ ∝ ℓ^slope``; ``g_ridge = -|h|`` (standardised) for another
such field ``h``: it peaks sharply along the zero lines of ``h``, giving thin, connected, bright
filaments. Both are scaled to unit variance, so the intensity is positive and log-normal-like, with a
filamentary, non-Gaussian morphology and a dust-like power-law spectrum.
"""

from __future__ import annotations

import healpy as hp
import numpy as np


def _gaussian_field(nside: int, slope: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance Gaussian field with ``C_ℓ ∝ ℓ^slope`` for 2 <= ℓ <= 3 nside - 1."""
    lmax = 3 * nside - 1
    ell = np.arange(lmax + 1, dtype=float)
    cl = np.zeros(lmax + 1)
    cl[2:] = ell[2:] ** slope
    ell_of_alm, m_of_alm = hp.Alm.getlm(lmax)
    sigma = np.sqrt(cl[ell_of_alm])
    # m = 0 coefficients are real with variance C_ℓ; m > 0 ones complex with C_ℓ/2 per part.
    real = rng.standard_normal(ell_of_alm.size)
    imag = rng.standard_normal(ell_of_alm.size)
    is_m0 = m_of_alm == 0
    alm = np.where(is_m0, real * sigma, (real + 1j * imag) * sigma / np.sqrt(2.0))
    field = hp.alm2map(alm.astype(np.complex128), nside, lmax=lmax)
    return (field - field.mean()) / field.std()


def latitude_profile(lat_deg: np.ndarray, disk_width_deg: float) -> np.ndarray:
    """Slab brightness profile ``1/sqrt(sin²b + sin²w)``, normalised to 1 at the poles."""
    sin_w2 = np.sin(np.radians(disk_width_deg)) ** 2
    profile = 1.0 / np.sqrt(np.sin(np.radians(lat_deg)) ** 2 + sin_w2)
    return profile * np.sqrt(1.0 + sin_w2)


def synthetic_dust_map(nside: int, seed: int, slope: float = -2.5, sigma_ln: float = 0.6,
                       filament_fraction: float = 0.4, pole_mjysr: float = 0.05,
                       disk_width_deg: float = 3.0) -> np.ndarray:
    """Synthetic 353 GHz dust intensity, HEALPix RING, Galactic coordinates.

    Parameters
    ----------
    nside : int
        HEALPix resolution.
    seed : int
        Seed of the two random fields; the same seed gives a bit-identical map.
    slope : float
        Power-law index of the log-field spectrum (dust: about -2.5).
    sigma_ln : float
        rms of ``ln I`` at fixed latitude.
    filament_fraction : float
        Share of that variance carried by the ridge (filament) component, in [0, 1].
    pole_mjysr : float
        Typical intensity towards the Galactic poles [MJy/sr].
    disk_width_deg : float
        Softening latitude of the slab profile [deg].

    Returns
    -------
    numpy.ndarray, float64 [12 nside²]
        Dust intensity in MJy/sr; strictly positive.
    """
    rng = np.random.default_rng(seed)
    g_gauss = _gaussian_field(nside, slope, rng)
    ridge = -np.abs(_gaussian_field(nside, slope, rng))
    g_ridge = (ridge - ridge.mean()) / ridge.std()
    g = np.sqrt(1.0 - filament_fraction) * g_gauss + np.sqrt(filament_fraction) * g_ridge
    _, lat = hp.pix2ang(nside, np.arange(hp.nside2npix(nside)), lonlat=True)
    return pole_mjysr * latitude_profile(lat, disk_width_deg) * np.exp(sigma_ln * g)
