"""Internal linear combination (ILC) baseline for CMB separation (docs/science.md#multi-frequency-skies).

Per patch, the CMB estimate is ``Σ_c w_c m_c`` with ``w = C⁻¹a / (aᵀC⁻¹a)``: ``a = (1, …, 1)`` because
every channel is in K_CMB (the CMB has the same amplitude in all), and ``C`` the channels' pixel
covariance [µK_CMB²] of that patch. The weights keep the CMB exactly (``wᵀa = 1``) and minimise the
variance of everything else. With a fixed dust SED and no noise ``C`` has rank 2 (CMB + one dust
template), so the pseudo-inverse is used: the minimiser is then still ``C⁺a / (aᵀC⁺a)``.

Beams: when the channels carry beams the ILC first deconvolves each one to the beam-free resolution
of the target (dividing its FFT by ``B_ℓ``, :func:`dustcmb.simulation.instrument.beam_transfer`), so
that the channels share one resolution and the comparison with the ResUNet is at the same ℓ.
"""

from __future__ import annotations

import math

import numpy as np

from dustcmb.simulation.instrument import ARCMIN_RAD, beam_transfer

# singular values below this fraction of the largest are dropped from C⁺: the numerically null direction of
# the rank-2 noiseless covariance (float32 maps carry ~1e-7 relative rounding, i.e. ~1e-14 in variance)
RCOND = 1e-10


def deconvolve_beams(channels_uk: np.ndarray, fwhm_arcmin, pixel_arcmin: float) -> np.ndarray:
    """Divide each channel's periodic FFT by its Gaussian beam transfer ``B_ℓ``.

    Parameters
    ----------
    channels_uk : ndarray [..., C, N, N]
        Beam-convolved maps [µK_CMB].
    fwhm_arcmin : sequence of float [C]
        Beam FWHM of each channel [arcmin]; 0 leaves a channel as it is.
    pixel_arcmin : float
        Pixel side [arcmin].
    """
    npix = channels_uk.shape[-1]
    ky = np.fft.fftfreq(npix)[:, None]
    kx = np.fft.rfftfreq(npix)[None, :]
    ell = 2.0 * math.pi * np.hypot(ky, kx) / (pixel_arcmin * ARCMIN_RAD)
    transfer = np.stack([beam_transfer(ell, f) for f in fwhm_arcmin])
    return np.fft.irfft2(np.fft.rfft2(channels_uk) / transfer, s=(npix, npix))


def ilc_weights(channels_uk: np.ndarray) -> np.ndarray:
    """ILC weights ``[..., C]`` of maps ``[..., C, N, N]`` [µK_CMB] from their per-patch covariance."""
    flat = channels_uk.reshape(*channels_uk.shape[:-2], -1).astype(np.float64)
    flat = flat - flat.mean(axis=-1, keepdims=True)
    cov = flat @ np.swapaxes(flat, -1, -2) / flat.shape[-1]
    cinv_a = np.linalg.pinv(cov, rcond=RCOND, hermitian=True).sum(axis=-1)  # C⁺ a with a = 1
    return cinv_a / cinv_a.sum(axis=-1, keepdims=True)


def ilc_cmb_uk(channels_uk: np.ndarray, fwhm_arcmin, pixel_arcmin: float) -> np.ndarray:
    """ILC CMB estimate ``[..., N, N]`` [µK_CMB] of observed channels ``[..., C, N, N]`` [µK_CMB]."""
    if any(f > 0 for f in fwhm_arcmin):
        channels_uk = deconvolve_beams(channels_uk, fwhm_arcmin, pixel_arcmin)
    w = ilc_weights(channels_uk)
    return np.einsum("...c,...cij->...ij", w, channels_uk.astype(np.float64))
