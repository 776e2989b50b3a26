"""Black-body intensity and the one K_CMB ↔ MJy/sr convention of the project.

A temperature fluctuation δT of the CMB black body shows up as an intensity ``δI = dB_ν/dT · δT``
evaluated at ``T_CMB = 2.7255 K``. dustcmb converts *monochromatically* at the channel frequency
(no bandpass integration), in both directions: when a K_CMB map is ingested (``dustcmb sky``) and
when dust is expressed in K_CMB for the multi-frequency simulation. At 353 GHz this gives
1 K_CMB = 296.65 MJy/sr; Planck's bandpass-integrated 353 GHz factor (≈ 287.5) differs by 3 %
(docs/science.md#units).
"""

from __future__ import annotations

import numpy as np
from scipy import constants

T_CMB_K = 2.7255
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
