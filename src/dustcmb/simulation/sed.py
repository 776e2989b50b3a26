"""Thermal dust spectral energy distribution, scaled from 353 GHz and expressed in K_CMB.

Conventions: docs/science.md#multi-frequency-skies and #units.

Dust intensity follows a modified black body ``I_ν ∝ ν^β B_ν(T_d)``: the 353 GHz patches [MJy/sr]
are scaled to any frequency by ``(ν/ν₀)^β B_ν(T_d) / B_ν₀(T_d)``. Maps are then expressed in
thermodynamic CMB units with the project's one monochromatic conversion (:mod:`dustcmb.units`).
``β`` may be a scalar or a map (spatially varying spectral index).
"""

from __future__ import annotations

import numpy as np

from dustcmb.units import mjysr_to_kcmb, planck_mjysr

DUST_REF_GHZ = 353.0


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
