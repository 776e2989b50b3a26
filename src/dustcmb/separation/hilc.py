"""Harmonic ILC on the flat patch: one ILC per ℓ band, the flat-sky NILC (docs/science.md#multi-frequency-skies).

Per patch, with ``F_c(k)`` the ``rfft2`` of beam-free channel ``c`` [µK_CMB] and the Fourier modes
grouped into ℓ bands b (whole rings of the power-spectrum estimator, ring ``round(|k|)``):

    C_b = Σ_{k ∈ b} w_k Re[F(k) F(k)†]                      (3 × 3 channel cross-covariance of band b)
    w_b = C_b⁺a / (aᵀC_b⁺a),     a = (1, …, 1)
    F̂(k) = Σ_c w_{b(k),c} F_c(k),   CMB̂ = irfft2(F̂)

``w_k`` are the half-plane weights of :func:`dustcmb.stats.power.power_spectrum` (2, or 1 on the
``k_x = 0`` and ``k_x = N/2`` columns), so that ``C_b`` is the covariance of the map band-passed to b.
The mean mode (k = 0) takes the weights of the lowest band and enters no covariance; the Fourier
corners beyond ring N/2 join the highest band. Every band keeps the CMB exactly (``w_b·a = 1``) and
minimises the variance of the rest in that band alone, so the weights can follow the dust-to-CMB
ratio, which changes with ℓ. With one band, ``C`` is the pixel covariance (Parseval) and the result
is the pixel ILC of :mod:`dustcmb.separation.ilc`.

Bands: ``n_bands`` (8) groups of rings whose lower edges grow geometrically from ring 1 to N/2, each
at least ``MIN_RINGS`` (2) rings wide; at 64² they are rings 1–2, 3–4, 5–6, 7–8, 9–10, 11–13, 14–20 and
21–32 (+ corners). Few modes per band raise the ILC bias (the chance CMB–foreground correlation is
removed with the foreground): rings 1–2 hold only 20 Fourier modes at any N. In a synthetic check
(camb CMB, Planck-like noise and beams, log-normal dust crops at 64²) the residual power in rings
1–2 was ≈ 9–16 % of the CMB's, against ≈ 3.5 % for the pixel ILC; from ℓ ≈ 300 up it was at or
below the pixel ILC's. Wider low bands (≥ 160 modes) halve the low-ℓ residual but lose the gain at
ℓ ≈ 300; the bands are not tuned.
"""

from __future__ import annotations

import functools

import numpy as np

from dustcmb.separation.ilc import beam_free, ilc_weights_from_cov

N_BANDS = 8
MIN_RINGS = 2


def band_edges(npix: int, n_bands: int = N_BANDS, min_rings: int = MIN_RINGS) -> np.ndarray:
    """Lower ring of each band, then ``npix/2 + 1``: band b holds rings ``edges[b] … edges[b+1] − 1``.

    The targets ``round(geomspace(1, N/2 + 1, n_bands + 1))`` are pushed up to keep every band at least
    ``min_rings`` wide; bands that would start past ring N/2 are dropped (fewer bands on small maps).
    One band: ``[1, N/2 + 1]``.
    """
    if n_bands < 1:
        raise ValueError(f"n_bands={n_bands}: need at least one band")
    top = npix // 2 + 1
    targets = np.rint(np.geomspace(1.0, top, n_bands + 1)).astype(int)
    edges = [1]
    for target in targets[1:-1]:
        edge = max(int(target), edges[-1] + min_rings)
        if edge >= top:
            break
        edges.append(edge)
    return np.array([*edges, top])


@functools.lru_cache(maxsize=16)
def _mode_bands(npix: int, edges: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Band of every ``rfft2`` mode [N, N/2 + 1] and its covariance weight (0 for the mean mode)."""
    ky = np.fft.fftfreq(npix, 1.0 / npix)[:, None]
    kx = np.fft.rfftfreq(npix, 1.0 / npix)[None, :]
    ring = np.rint(np.hypot(ky, kx)).astype(np.int64)
    band = np.clip(np.searchsorted(np.asarray(edges), ring, side="right") - 1, 0, len(edges) - 2)
    weight = np.full(ring.shape, 2.0)
    weight[:, 0] = 1.0
    weight[:, -1] = 1.0
    weight[0, 0] = 0.0
    return band, weight


def hilc_weights(channels_uk: np.ndarray, edges) -> np.ndarray:
    """Per-band ILC weights ``[..., B, C]`` of beam-free maps ``[..., C, N, N]`` [µK_CMB]."""
    weights, _ = _weights_and_fft(np.asarray(channels_uk, dtype=np.float64), tuple(int(e) for e in edges))
    return weights


def _weights_and_fft(channels: np.ndarray, edges: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    npix = channels.shape[-1]
    band, weight = _mode_bands(npix, edges)
    f = np.fft.rfft2(channels)  # [..., C, N, N/2+1]
    flat = f.reshape(*f.shape[:-2], -1)
    onehot = np.zeros((band.size, len(edges) - 1))
    onehot[np.arange(band.size), band.ravel()] = weight.ravel()
    # C_b[c, d] = Σ_k w_k Re(F_c F_d*) over the modes of band b
    cross = (flat[..., :, None, :] * flat[..., None, :, :].conj()).real  # [..., C, C, modes]
    cov = np.moveaxis(cross @ onehot, -1, -3)  # [..., B, C, C]
    return ilc_weights_from_cov(cov), f


def hilc_combine(channels_uk: np.ndarray, n_bands: int = N_BANDS) -> np.ndarray:
    """Harmonic-ILC CMB ``[..., N, N]`` [µK_CMB] of beam-free channels ``[..., C, N, N]`` [µK_CMB]."""
    channels = np.asarray(channels_uk, dtype=np.float64)
    npix = channels.shape[-1]
    edges = tuple(int(e) for e in band_edges(npix, n_bands))
    weights, f = _weights_and_fft(channels, edges)
    band, _ = _mode_bands(npix, edges)
    per_mode = weights[..., band, :]  # [..., N, N/2+1, C]
    cmb_f = np.einsum("...ijc,...cij->...ij", per_mode, f)
    return np.fft.irfft2(cmb_f, s=(npix, npix))


def hilc_cmb_uk(channels_uk: np.ndarray, fwhm_arcmin, pixel_arcmin: float, n_bands: int = N_BANDS) -> np.ndarray:
    """Harmonic-ILC CMB estimate ``[..., N, N]`` [µK_CMB] of observed channels ``[..., C, N, N]`` [µK_CMB]."""
    return hilc_combine(beam_free(channels_uk, fwhm_arcmin, pixel_arcmin), n_bands)
