"""Flat-sky angular power spectrum of square patches (docs/science.md#power-spectrum): the one implementation.

For an ``N x N`` patch of side ``L`` radians (pixel ``Δ = L/N``) and the unnormalised 2-D FFT ``F`` of
the mean-subtracted map, the estimator is ``C(ℓ) = Δ² / N² · |F|²`` at ``ℓ = 2π|k|/L`` with ``k`` the
integer wave-vector. Modes are averaged in annuli one FFT ring wide (ring ``i`` holds the modes with
``round(|k|) = i``), for ``i = 1 … N/2`` (Nyquist). A periodic Gaussian field with spectrum ``C_ℓ``
therefore returns, in expectation, the mode average of ``C_ℓ`` over each ring; use
:func:`bin_theory` to bin a model spectrum the same way before comparing.

Works on numpy arrays and on torch tensors (batched, differentiable, on any device); torch in,
torch out. Units: ``C_ℓ`` in (map unit)² sr.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch


@functools.lru_cache(maxsize=32)
def _rings(npix: int) -> tuple[np.ndarray, np.ndarray]:
    """Ring index and weight of each ``rfft2`` mode of an ``npix x npix`` map.

    Returns
    -------
    ring : int64 [npix * (npix//2 + 1)]
        Ring index ``round(|k|)`` of every mode (0 for modes beyond Nyquist or the mean).
    weight : float64 [same]
        2 for the columns whose conjugate is absent from the half-plane, else 1; 0 where excluded.
    """
    ky = np.fft.fftfreq(npix, 1.0 / npix)[:, None]
    kx = np.fft.rfftfreq(npix, 1.0 / npix)[None, :]
    kabs = np.hypot(ky, kx)
    ring = np.rint(kabs).astype(np.int64)
    weight = np.full(kabs.shape, 2.0)
    weight[:, 0] = 1.0
    weight[:, -1] = 1.0
    keep = (ring >= 1) & (ring <= npix // 2)
    weight = np.where(keep, weight, 0.0)
    ring = np.where(keep, ring, 0)
    return ring.ravel(), weight.ravel()


def ell_bins(npix: int, size_deg: float) -> np.ndarray:
    """Multipole of each ring: ``2π i / L`` for ``i = 1 … npix/2`` (ℓ₁ = 18 for 20°)."""
    fundamental = 2.0 * math.pi / math.radians(size_deg)
    return fundamental * np.arange(1, npix // 2 + 1, dtype=np.float64)


def power_spectrum(maps, size_deg: float):
    """Ring-averaged flat-sky power spectrum of square maps.

    Parameters
    ----------
    maps : numpy.ndarray or torch.Tensor, shape [..., N, N]
        Real maps (any unit); each map's mean is removed first.
    size_deg : float
        Side of the square patch in degrees.

    Returns
    -------
    ell : numpy.ndarray [N/2]
        True multipoles ``2π i / L`` of the rings (always numpy).
    cl : same type as ``maps``, shape [..., N/2]
        ``C_ℓ`` in (map unit)² sr. Torch input stays on its device and keeps its graph.
    """
    if not isinstance(maps, torch.Tensor):
        ell, cl = power_spectrum(torch.from_numpy(np.asarray(maps, dtype=np.float64)), size_deg)
        return ell, cl.numpy()
    npix = maps.shape[-1]
    if maps.ndim < 2 or maps.shape[-2] != npix:
        raise ValueError(f"power_spectrum needs square maps [..., N, N], got shape {tuple(maps.shape)}")
    if npix % 2:
        raise ValueError(f"power_spectrum needs an even number of pixels per side, got {npix}")
    x = maps if maps.is_floating_point() else maps.float()
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    f = torch.fft.rfft2(x)
    power = (f.real**2 + f.imag**2).flatten(-2)
    ring, weight = _torch_rings(npix, x.dtype, x.device)
    summed = torch.zeros(*power.shape[:-1], npix // 2 + 1, dtype=x.dtype, device=x.device)
    summed = summed.index_add(-1, ring, power * weight)
    pixel_rad = math.radians(size_deg) / npix
    counts = _ring_counts(npix)
    scale = torch.as_tensor(pixel_rad**2 / npix**2 / counts, dtype=x.dtype, device=x.device)
    return ell_bins(npix, size_deg), summed[..., 1:] * scale


@functools.lru_cache(maxsize=32)
def _ring_counts(npix: int) -> np.ndarray:
    """Number of independent-plane modes (weighted) in rings 1 … npix/2."""
    ring, weight = _rings(npix)
    return np.bincount(ring, weights=weight, minlength=npix // 2 + 1)[1:]


@functools.lru_cache(maxsize=32)
def _torch_rings(npix: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    ring, weight = _rings(npix)
    return torch.as_tensor(ring, device=device), torch.as_tensor(weight, dtype=dtype, device=device)


def bin_theory(ell, cl, npix: int, size_deg: float) -> np.ndarray:
    """Average a model spectrum over each ring's modes, as :func:`power_spectrum` does.

    Parameters
    ----------
    ell, cl : array_like
        Model multipoles (increasing) and ``C_ℓ``; linearly interpolated at every mode's ℓ.
    npix, size_deg : int, float
        Patch geometry.

    Returns
    -------
    numpy.ndarray [npix/2]
        The expectation of :func:`power_spectrum` for a periodic Gaussian field with that ``C_ℓ``.
    """
    ring, weight = _rings(npix)
    ky = np.fft.fftfreq(npix, 1.0 / npix)[:, None]
    kx = np.fft.rfftfreq(npix, 1.0 / npix)[None, :]
    mode_ell = (2.0 * math.pi / math.radians(size_deg)) * np.hypot(ky, kx).ravel()
    mode_cl = np.interp(mode_ell, np.asarray(ell, float), np.asarray(cl, float))
    total = np.bincount(ring, weights=weight * mode_cl, minlength=npix // 2 + 1)[1:]
    return total / _ring_counts(npix)


def dl_from_cl(ell: np.ndarray, cl):
    """``D_ℓ = ℓ(ℓ+1) C_ℓ / 2π`` (same type as ``cl``)."""
    factor = ell * (ell + 1.0) / (2.0 * math.pi)
    if isinstance(cl, torch.Tensor):
        return cl * torch.as_tensor(factor, dtype=cl.dtype, device=cl.device)
    return cl * factor
