"""Pixel-space internal linear combination (ILC) baseline for CMB separation (docs/science.md#multi-frequency-skies).

Per patch, the CMB estimate is ``Σ_c w_c m_c`` with

    w = C⁻¹a / (aᵀC⁻¹a)

``a = (1, …, 1)`` because every channel is in K_CMB (the CMB has the same amplitude in all), and ``C``
the channels' pixel covariance [µK_CMB²] of that patch (patch means removed). The weights keep the CMB
exactly (``wᵀa = 1``) and minimise the variance of everything else. With a fixed dust SED and no noise
``C`` has rank 2 (CMB + one dust template), so the pseudo-inverse is used: the minimiser is then still
``C⁺a / (aᵀC⁺a)``.

Beams: when the channels carry beams every classical method first deconvolves each one to the
beam-free resolution of the target (:func:`beam_free`), so that the channels share one resolution and
the comparison with the ResUNet is at the same ℓ. The harmonic and constrained ILCs
(:mod:`dustcmb.separation.hilc`, :mod:`dustcmb.separation.cilc`) share it.
"""

from __future__ import annotations

import numpy as np

from dustcmb.simulation.instrument import apply_beam, beam_margin, beam_transfer, mirror_filter

# singular values below this fraction of the largest are dropped from C⁺: the numerically null direction of
# the rank-2 noiseless covariance (float32 maps carry ~1e-7 relative rounding, i.e. ~1e-14 in variance)
RCOND = 1e-10
# beam deconvolution (see deconvolve_beams): refinement stops once a step changes no pixel of any map by more
# than REFINE_RTOL of that map's largest |value| (float32 inputs carry ~6e-8 rounding), or after MAX_REFINE steps
REFINE_RTOL = 1e-8
MAX_REFINE = 10


def deconvolve_beams(channels_uk: np.ndarray, fwhm_arcmin, pixel_arcmin: float,
                     max_refine: int = MAX_REFINE) -> np.ndarray:
    """Undo each channel's Gaussian beam: divide by ``B_ℓ`` on the mirror-padded patch, then refine.

    The patch is not periodic, so a plain FFT would see a jump where opposite edges meet, and dividing
    by ``B_ℓ`` would amplify that jump's high-ℓ power (with Planck beams at 256² and no noise, the ILC
    residual reached 1.24× the CMB power at ℓ = 2304). Instead each channel is mirror-padded by the
    margin of :func:`dustcmb.simulation.instrument.apply_beam` (``⌈5σ_b/Δ⌉ + 1`` pixels per side) and
    filtered by ``1/B_ℓ`` with the same :func:`~dustcmb.simulation.instrument.mirror_filter`: ``D``.

    ``D`` inverts the forward beam ``L`` (:func:`~dustcmb.simulation.instrument.apply_beam`) only
    approximately: the pixel kernel of a ``B_ℓ`` cut at the Nyquist box rings beyond the margin, so
    near the edges the padded beamed map differs from the beamed padded sky. On ℓ⁻²·⁵ crops the
    round-trip errors are ~1e-3 of the map rms at 64² with 18.75′ pixels and 4–24 % at the edges at
    256²; for a dust-dominated 545 GHz channel at 256² the error power alone reached 9× the CMB at
    ℓ = 2304. Iterative refinement, ``x ← x + D(m − L x)``, removes that: each step shrinks the error
    by a factor ~10 (7.3′ at 4.69′ pixels) to ~10⁴ (64²), and it stops once a step moves no pixel by
    more than ``REFINE_RTOL`` of that map's largest value in the channel (3 steps at 64², 3–6 at 256²). The
    result is then the inverse of the simulator's beam to float rounding, and the classical methods
    see the beam-free sky. No regularisation: noise is amplified by ``1/B_ℓ`` (at most 1.3× at 64²
    for the 7.3′ beam, but up to 75× in the 256² Fourier corners), and the ILC weights have to deal
    with it.

    Parameters
    ----------
    channels_uk : ndarray [..., C, N, N]
        Beam-convolved maps [µK_CMB].
    fwhm_arcmin : sequence of float [C]
        Beam FWHM of each channel [arcmin]; 0 leaves a channel as it is.
    pixel_arcmin : float
        Pixel side [arcmin].
    max_refine : int
        Most refinement steps against the forward beam (0: the padded division ``D`` alone).

    Returns
    -------
    ndarray [..., C, N, N], float64
    """
    observed = np.asarray(channels_uk, dtype=np.float64)
    out = observed.copy()
    npix = out.shape[-1]
    for c, fwhm in enumerate(fwhm_arcmin):
        if fwhm > 0:
            margin = beam_margin(fwhm, pixel_arcmin, npix)

            def divide(maps, f=fwhm, m=margin):
                return mirror_filter(maps, lambda ell: 1.0 / beam_transfer(ell, f), m, pixel_arcmin)

            sky = divide(observed[..., c, :, :])
            for _ in range(max_refine):
                step = divide(observed[..., c, :, :] - apply_beam(sky, fwhm, pixel_arcmin))
                sky = sky + step
                # every map on its own scale: one bright map in a batch must not stop a faint one early
                if np.all(np.abs(step).max(axis=(-2, -1)) <= REFINE_RTOL * np.abs(sky).max(axis=(-2, -1))):
                    break
            out[..., c, :, :] = sky
    return out


def beam_free(channels_uk: np.ndarray, fwhm_arcmin, pixel_arcmin: float) -> np.ndarray:
    """Channels [..., C, N, N] [µK_CMB] in float64, beam-deconvolved if any channel has a beam."""
    if any(f > 0 for f in fwhm_arcmin):
        return deconvolve_beams(channels_uk, fwhm_arcmin, pixel_arcmin)
    return np.asarray(channels_uk, dtype=np.float64)


def pixel_covariance(channels_uk: np.ndarray) -> np.ndarray:
    """Per-patch channel covariance ``[..., C, C]`` [µK²] of maps ``[..., C, N, N]``, patch means removed."""
    flat = channels_uk.reshape(*channels_uk.shape[:-2], -1).astype(np.float64)
    flat = flat - flat.mean(axis=-1, keepdims=True)
    return flat @ np.swapaxes(flat, -1, -2) / flat.shape[-1]


def ilc_weights_from_cov(cov: np.ndarray) -> np.ndarray:
    """``w = C⁺a / (aᵀC⁺a)`` with ``a = 1`` for covariances ``[..., C, C]``; returns ``[..., C]``."""
    cinv_a = np.linalg.pinv(cov, rcond=RCOND, hermitian=True).sum(axis=-1)  # C⁺ a with a = 1
    return cinv_a / cinv_a.sum(axis=-1, keepdims=True)


def ilc_weights(channels_uk: np.ndarray) -> np.ndarray:
    """ILC weights ``[..., C]`` of maps ``[..., C, N, N]`` [µK_CMB] from their per-patch covariance."""
    return ilc_weights_from_cov(pixel_covariance(channels_uk))


def combine(weights: np.ndarray, channels_uk: np.ndarray) -> np.ndarray:
    """``Σ_c w_c m_c``: maps ``[..., N, N]`` from weights ``[..., C]`` and channels ``[..., C, N, N]``."""
    return np.einsum("...c,...cij->...ij", weights, channels_uk.astype(np.float64))


def ilc_combine(channels_uk: np.ndarray) -> np.ndarray:
    """Pixel-ILC CMB ``[..., N, N]`` [µK_CMB] of beam-free channels ``[..., C, N, N]`` [µK_CMB]."""
    return combine(ilc_weights(channels_uk), channels_uk)


def ilc_cmb_uk(channels_uk: np.ndarray, fwhm_arcmin, pixel_arcmin: float) -> np.ndarray:
    """ILC CMB estimate ``[..., N, N]`` [µK_CMB] of observed channels ``[..., C, N, N]`` [µK_CMB]."""
    return ilc_combine(beam_free(channels_uk, fwhm_arcmin, pixel_arcmin))
