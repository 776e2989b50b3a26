"""Histogram intersection of two equal-sized samples (docs/science.md#generator-statistics).

``I = Σ_i min(a_i, b_i) / Σ_i a_i`` over common bins: 1 for identical histograms, 0 for disjoint ones.
The paper quotes 94 % for pixel values of real vs generated maps, averaged over bootstrap draws. For
bootstraps over maps, histogram each map once with :func:`histogram_counts` and resample the rows:
the histogram of a resampled set is the sum of its maps' rows, so no pixel is binned twice::

    ha, hb = histogram_counts(real, bins, value_range), histogram_counts(fake, bins, value_range)
    result = bootstrap(lambda x, y: intersection(x.sum(-2), y.sum(-2)), ha, hb, seed=seed, batched=True)
"""

from __future__ import annotations

import numpy as np
import torch

from dustcmb.errors import InputError

_CHUNK_VALUES = 2**22  # values binned at once: bounds the int64 bin indices to ~32 MB


def histogram_counts(samples, bins: int, value_range: tuple[float, float]) -> np.ndarray:
    """Histogram of each row of a set (e.g. of each map), on common bins.

    Parameters
    ----------
    samples : array_like or torch.Tensor, shape [n, ...]
        One row per member of the set (a map, a spectrum); all values finite and inside the range.
    bins : int
        Number of equal-width bins.
    value_range : (float, float)
        Lower and upper edge of the bins, in the samples' unit; the upper edge is included.

    Returns
    -------
    numpy.ndarray [n, bins], float64
        Counts per row and bin.
    """
    x = _values(samples, "samples")
    if x.ndim < 1 or x.shape[0] == 0:
        raise InputError(f"samples must be a non-empty set [n, ...], got shape {x.shape}")
    low, high = _check_bins(bins, value_range)
    rows = x.reshape(x.shape[0], -1)
    if ((rows < low) | (rows > high)).any():
        raise InputError(
            f"values outside the histogram range [{low}, {high}] (found {rows.min():.4g} … {rows.max():.4g}): "
            "widen value_range so every value is counted"
        )
    counts = np.empty((rows.shape[0], bins))
    step = max(1, _CHUNK_VALUES // rows.shape[1])
    for start in range(0, rows.shape[0], step):
        block = rows[start : start + step]
        index = np.minimum(((block - low) * (bins / (high - low))).astype(np.int64), bins - 1)
        index += bins * np.arange(block.shape[0])[:, None]
        counts[start : start + step] = np.bincount(index.ravel(), minlength=bins * block.shape[0]).reshape(-1, bins)
    return counts


def intersection(counts_a, counts_b) -> np.ndarray:
    """``Σ min(a, b) / Σ a`` over the last axis of two histograms of equal totals (batched).

    Parameters
    ----------
    counts_a, counts_b : array_like [..., bins]
        Histograms on the same bins, with equal sums (equal-sized samples).

    Returns
    -------
    numpy.ndarray [...] (a 0-d array for single histograms), dimensionless in [0, 1].
    """
    a, b = np.asarray(counts_a, dtype=np.float64), np.asarray(counts_b, dtype=np.float64)
    if a.shape != b.shape:
        raise InputError(f"histograms must share their bins: shapes {a.shape} and {b.shape}")
    total_a, total_b = a.sum(-1), b.sum(-1)
    if not np.allclose(total_a, total_b, rtol=1e-12, atol=0.0) or not (total_a > 0).all():
        raise InputError("histogram intersection needs non-empty histograms of equal-sized samples")
    return np.minimum(a, b).sum(-1) / total_a


def histogram_intersection(a, b, bins: int = 50, value_range: tuple[float, float] | None = None) -> float:
    """Intersection of the histograms of two equal-sized samples (all values pooled).

    Parameters
    ----------
    a, b : array_like or torch.Tensor
        Samples of any shape with the same number of values (e.g. real and generated maps).
    bins : int
        Number of equal-width bins.
    value_range : (float, float), optional
        Bin range in the samples' unit; default the joint min and max of both samples. Values
        outside it are an error (they would silently drop out of the histograms).

    Returns
    -------
    float
        In [0, 1]: 1 for identical samples, 0 for samples in disjoint bins.
    """
    x, y = _values(a, "a").ravel(), _values(b, "b").ravel()
    if x.size != y.size or x.size == 0:
        raise InputError(f"histogram intersection needs equal, non-zero sample sizes, got {x.size} and {y.size}")
    if value_range is None:
        value_range = (min(x.min(), y.min()), max(x.max(), y.max()))
        if value_range[0] == value_range[1]:
            value_range = (value_range[0] - 0.5, value_range[1] + 0.5)
    counts_a, counts_b = (histogram_counts(v[None], bins, value_range)[0] for v in (x, y))
    return float(intersection(counts_a, counts_b))


def _values(x, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise InputError(f"{name} contains NaN or inf")
    return x


def _check_bins(bins: int, value_range) -> tuple[float, float]:
    if not isinstance(bins, (int, np.integer)) or isinstance(bins, bool) or bins < 1:
        raise InputError(f"bins must be a positive integer, got {bins!r}")
    low, high = (float(v) for v in value_range)
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise InputError(f"value_range must be finite with low < high, got {value_range!r}")
    return low, high
