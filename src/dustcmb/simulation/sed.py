"""Thermal dust spectral energy distribution and CMB unit conversions (docs/science.md#multi-frequency-skies).

Dust intensity follows a modified black body ``I_ν ∝ ν^β B_ν(T_d)``: the 353 GHz patches [MJy/sr]
are scaled to any frequency by ``(ν/ν₀)^β B_ν(T_d) / B_ν₀(T_d)``. Maps are then expressed in
thermodynamic CMB units with the monochromatic conversion ``dB_ν/dT`` at ``T_CMB = 2.7255 K``
(no bandpass integration: Planck's band-averaged 353/545 GHz factors differ by a few per cent).
``β`` may be a scalar or a map (spatially varying spectral index).
"""

from __future__ import annotations

import numpy as np
from scipy import constants

T_CMB_K = 2.7255
DUST_REF_GHZ = 353.0
MJYSR_SI = 1e-20  # 1 MJy/sr in W m⁻² Hz⁻¹ sr⁻¹


def planck_mjysr(freq_ghz, temp_k):
    """Black-body intensity ``B_ν(T)`` [MJy/sr] at ``freq_ghz`` [GHz] and temperature ``temp_k`` [K]."""
    nu = np.asarray(freq_ghz, dtype=np.float64) * 1e9
    x = constants.h * nu / (constants.k * np.asarray(temp_k, dtype=np.float64))
    return 2.0 * constants.h * nu**3 / constants.c**2 / np.expm1(x) / MJYSR_SI


def kcmb_to_mjysr(freq_ghz):
    """``dB_ν/dT`` at T_CMB: the intensity [MJy/sr] of a 1 K_CMB temperature fluctuation at ``freq_ghz``."""
    nu = np.asarray(freq_ghz, dtype=np.float64) * 1e9
    x = constants.h * nu / (constants.k * T_CMB_K)
    # dB/dT = B_ν(T) · x eˣ / (T (eˣ - 1))
    return planck_mjysr(freq_ghz, T_CMB_K) * x * np.exp(x) / (T_CMB_K * np.expm1(x))


def mjysr_to_kcmb(freq_ghz):
    """K_CMB per MJy/sr at ``freq_ghz`` [GHz] (inverse of :func:`kcmb_to_mjysr`)."""
    return 1.0 / kcmb_to_mjysr(freq_ghz)


def mbb_ratio(freq_ghz: float, beta, temp_dust_k: float, ref_ghz: float = DUST_REF_GHZ):
    """Modified-black-body intensity ratio ``I_ν / I_ν₀`` (both in MJy/sr); ``beta`` scalar or map."""
    planck = planck_mjysr(freq_ghz, temp_dust_k) / planck_mjysr(ref_ghz, temp_dust_k)
    return np.power(freq_ghz / ref_ghz, beta) * planck


def dust_kcmb_ratio(freq_ghz: float, beta, temp_dust_k: float, ref_ghz: float = DUST_REF_GHZ):
    """Dust amplitude at ``freq_ghz`` relative to ``ref_ghz``, both in K_CMB (≈0.04 at 143, ≈18 at 545)."""
    return mbb_ratio(freq_ghz, beta, temp_dust_k, ref_ghz) * mjysr_to_kcmb(freq_ghz) / mjysr_to_kcmb(ref_ghz)


def dust_ukcmb(dust_ref_mjysr: np.ndarray, freq_ghz: float, beta, temp_dust_k: float,
               ref_ghz: float = DUST_REF_GHZ) -> np.ndarray:
    """Scale reference-frequency dust [MJy/sr] to ``freq_ghz`` and express it in µK_CMB.

    Parameters
    ----------
    dust_ref_mjysr : ndarray [..., N, N]
        Dust intensity at ``ref_ghz`` (353 GHz patches or GAN samples) in MJy/sr.
    freq_ghz : float
        Target frequency [GHz].
    beta : float or ndarray broadcastable to ``dust_ref_mjysr``
        Dust spectral index.
    temp_dust_k : float
        Dust temperature [K].
    """
    factor = mbb_ratio(freq_ghz, beta, temp_dust_k, ref_ghz) * (1e6 * mjysr_to_kcmb(freq_ghz))
    return dust_ref_mjysr * factor
