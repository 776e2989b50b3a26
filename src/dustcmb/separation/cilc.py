"""Constrained ILC that nulls a dust component of assumed SED (docs/science.md#multi-frequency-skies).

Per patch, with ``C`` the channels' pixel covariance [µK_CMB²] (patch means removed, as in
:mod:`dustcmb.separation.ilc`), the CMB response ``a = (1, …, 1)`` and the dust mixing vector
``d_c = dust_kcmb_ratio(ν_c, β, T_d)`` (the modified black body relative to 353 GHz, both in K_CMB,
:func:`dustcmb.simulation.sed.dust_kcmb_ratio`), stack ``A = [a, d]`` (C × 2) and take

    w = e₁ᵀ (Aᵀ C⁻¹ A)⁻¹ Aᵀ C⁻¹,        CMB̂ = Σ_c w_c m_c

the minimum-variance weights under the constraints ``w·a = 1`` (CMB kept) and ``w·d = 0`` (dust of
that SED removed exactly, whatever its amplitude or its correlation with the CMB: no ILC bias from
the dust). With 3 channels one degree of freedom is left to minimise noise and SED mismatch.

Singular case. Without noise and with the SED the simulator uses, ``C`` has rank 2 with range
span(a, d), so ``C⁻¹`` is replaced by the pseudo-inverse ``C⁺`` (the same ``RCOND`` cut as the pixel
ILC): because ``a`` and ``d`` lie in the range of ``C``, ``AᵀC⁺A`` is an invertible 2 × 2 matrix and
``w A = e₁ᵀ (AᵀC⁺A)⁻¹ AᵀC⁺A = e₁ᵀ`` holds exactly, so both constraints still hold. Among the
weights that satisfy them (a line, all giving the same, exact, CMB when the data are CMB + that dust)
``C⁺`` picks the one in span(a, d). If the SED is wrong (β or T_d varies over the patch,
``beta_rms`` or ``temp_dust_rms_k`` > 0, or differs from the assumed values) the dust is only partly
nulled; if ``AᵀC⁺A`` is singular (d ∥ a, or a channel set that cannot see the dust) the 2 × 2 solve
uses a pseudo-inverse as well.

The SED is taken from ``params.simulation`` (β, T_d, frequencies): the method knows the true mean SED,
which is optimistic for real data.
"""

from __future__ import annotations

import numpy as np

from dustcmb.separation.ilc import RCOND, beam_free, combine, pixel_covariance
from dustcmb.simulation.sed import dust_kcmb_ratio


def dust_mixing(freqs_ghz, beta: float, temp_dust_k: float) -> np.ndarray:
    """Dust mixing vector ``d`` [C]: MBB amplitude at each channel relative to 353 GHz, in K_CMB."""
    return np.array([dust_kcmb_ratio(f, beta, temp_dust_k) for f in freqs_ghz], dtype=np.float64)


def cilc_weights_from_cov(cov: np.ndarray, mixing: np.ndarray) -> np.ndarray:
    """``w = e₁ᵀ (AᵀC⁺A)⁻¹ AᵀC⁺`` with ``A = [1, d]`` for covariances ``[..., C, C]``; returns ``[..., C]``."""
    a = np.stack([np.ones_like(mixing), mixing], axis=-1)  # [C, 2]
    cinv = np.linalg.pinv(cov, rcond=RCOND, hermitian=True)
    at_cinv = a.T @ cinv  # [..., 2, C]
    gram = at_cinv @ a  # [..., 2, 2]
    return (np.linalg.pinv(gram, rcond=RCOND, hermitian=True) @ at_cinv)[..., 0, :]


def cilc_weights(channels_uk: np.ndarray, mixing: np.ndarray) -> np.ndarray:
    """Constrained-ILC weights ``[..., C]`` of maps ``[..., C, N, N]`` [µK_CMB] from their per-patch covariance."""
    return cilc_weights_from_cov(pixel_covariance(channels_uk), np.asarray(mixing, dtype=np.float64))


def cilc_combine(channels_uk: np.ndarray, mixing: np.ndarray) -> np.ndarray:
    """Constrained-ILC CMB ``[..., N, N]`` [µK_CMB] of beam-free channels ``[..., C, N, N]`` [µK_CMB]."""
    return combine(cilc_weights(channels_uk, mixing), channels_uk)


def cilc_cmb_uk(channels_uk: np.ndarray, fwhm_arcmin, pixel_arcmin: float, mixing: np.ndarray) -> np.ndarray:
    """Constrained-ILC CMB estimate ``[..., N, N]`` [µK_CMB] of observed channels ``[..., C, N, N]`` [µK_CMB]."""
    return cilc_combine(beam_free(channels_uk, fwhm_arcmin, pixel_arcmin), mixing)
