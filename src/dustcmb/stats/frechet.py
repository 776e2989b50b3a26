"""Fréchet distance between two sets of feature vectors (docs/science.md#generator-statistics, paper eq. 1).

``d_F = |μ_a − μ_b|² + tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^½)`` with sample means and covariances (ddof = 1).
``tr (Σ_a Σ_b)^½`` is the sum of square roots of the eigenvalues of ``Σ_a Σ_b``, which equal those of
the symmetric PSD matrix ``Σ_a^½ Σ_b Σ_a^½``; both square roots come from ``eigh`` with round-off
eigenvalues (negative or below d · eps · largest) set to zero. This stays finite and real when the
covariances are singular (fewer samples than features, constant features), where a general ``sqrtm``
turns complex or unstable.
"""

from __future__ import annotations

import numpy as np
import torch

from dustcmb.errors import InputError


def frechet_distance(a, b) -> float:
    """Fréchet distance between the Gaussians fitted to two feature sets.

    Parameters
    ----------
    a, b : array_like or torch.Tensor, shapes [n_a, d] and [n_b, d]
        Feature vectors, one per row (at least 2 rows each, finite). Unit: features² for the result.

    Returns
    -------
    float
        ``d_F ≥ 0`` (round-off below zero is clipped); 0 for a set against itself up to round-off.
    """
    a, b = _features(a, "a"), _features(b, "b")
    if a.shape[1] != b.shape[1]:
        raise InputError(f"feature sets differ in dimension: {a.shape[1]} vs {b.shape[1]}")
    cov_a, cov_b = np.cov(a, rowvar=False, ddof=1), np.cov(b, rowvar=False, ddof=1)
    cov_a, cov_b = np.atleast_2d(cov_a), np.atleast_2d(cov_b)
    root_a = _psd_sqrt(cov_a)
    trace_root = np.sqrt(_clean(np.linalg.eigvalsh(_symmetrise(root_a @ cov_b @ root_a)))).sum()
    mean_term = float(np.sum((a.mean(0) - b.mean(0)) ** 2))
    return max(mean_term + float(np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_root), 0.0)


def spectra_frechet_distance(cl_a, cl_b) -> float:
    """Fréchet distance between two sets of power spectra, on ``log10 C_ℓ`` (docs/science.md#generator-statistics).

    Parameters
    ----------
    cl_a, cl_b : array_like or torch.Tensor, shapes [n_a, n_ell] and [n_b, n_ell]
        Spectra from :func:`dustcmb.stats.power_spectrum` (any unit², all positive).
    """
    logs = []
    for name, cl in (("cl_a", cl_a), ("cl_b", cl_b)):
        cl = _features(cl, name)
        if not (cl > 0).all():
            raise InputError(f"{name} has non-positive power: log10 spectra need C_ell > 0 in every bin")
        logs.append(np.log10(cl))
    return frechet_distance(*logs)


def _features(x, name: str) -> np.ndarray:
    """Feature set as float64 [n, d]; InputError for wrong shape, too few rows or non-finite values."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise InputError(f"{name} must be a feature set [n >= 2, d >= 1], got shape {x.shape}")
    if not np.isfinite(x).all():
        raise InputError(f"{name} contains NaN or inf")
    return x


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix (round-off eigenvalues set to 0)."""
    values, vectors = np.linalg.eigh(_symmetrise(matrix))
    return _symmetrise((vectors * np.sqrt(_clean(values))) @ vectors.T)


def _clean(eigenvalues: np.ndarray) -> np.ndarray:
    """Zero the eigenvalues of a PSD matrix that are round-off (below d · eps · largest).

    Their square roots would otherwise add ~√eps each to the trace on singular covariances.
    """
    cutoff = eigenvalues.size * np.finfo(np.float64).eps * max(eigenvalues.max(), 0.0)
    return np.where(eigenvalues > cutoff, eigenvalues, 0.0)


def _symmetrise(matrix: np.ndarray) -> np.ndarray:
    return 0.5 * (matrix + matrix.T)
