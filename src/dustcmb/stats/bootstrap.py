"""Bootstrap errors for any statistic of one or more sets (1000 resamples of the set size).

Conventions: docs/science.md#generator-statistics.

Each resample draws, independently for every set, as many rows as the set has (axis 0, with
replacement) and evaluates the statistic on the resampled sets. With ``batched=True`` the statistic
receives a leading resample axis and evaluates a whole block of resamples in one vectorised call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from dustcmb.errors import InputError

_CHUNK_VALUES = 2**24  # values of resampled sets materialised at once in batched mode (~128 MB)


@dataclass(frozen=True)
class BootstrapResult:
    """Distribution of a statistic over bootstrap resamples (arrays shaped like the statistic).

    Attributes
    ----------
    mean, std : numpy.ndarray
        Mean and standard deviation (ddof = 1) over resamples.
    percentiles : tuple of float
        Percentile levels of ``bands``, in percent.
    bands : numpy.ndarray [n_percentiles, ...]
        The statistic's percentiles over resamples (e.g. 16/84 for a 68 % band).
    replicates : numpy.ndarray [n_resamples, ...]
        The statistic on every resample.
    """

    mean: np.ndarray
    std: np.ndarray
    percentiles: tuple[float, ...]
    bands: np.ndarray
    replicates: np.ndarray


def bootstrap(
    statistic,
    *samples,
    n_resamples: int = 1000,
    seed: int,
    percentiles=(2.5, 16.0, 50.0, 84.0, 97.5),
    batched: bool = False,
    progress: bool = False,
) -> BootstrapResult:
    """Resample every set along axis 0 with replacement and summarise ``statistic`` over resamples.

    Parameters
    ----------
    statistic : callable
        ``statistic(*resampled_sets) -> array_like`` of a fixed shape. With ``batched`` it receives
        sets shaped [m, n_k, ...] (m resamples at once) and must return [m, ...].
    *samples : array_like or torch.Tensor, each [n_k, ...]
        The sets (e.g. real and generated spectra); set k is resampled to n_k rows.
    n_resamples : int
        Number of bootstrap resamples (≥ 2).
    seed : int
        Seed of the resampling (same seed, same resamples).
    percentiles : sequence of float
        Levels in percent reported in ``bands``.
    batched : bool
        Evaluate blocks of resamples in one call of a vectorised statistic.
    progress : bool
        Show a progress bar.

    Returns
    -------
    BootstrapResult
    """
    sets = [_as_set(s, k) for k, s in enumerate(samples)]
    levels = _check(sets, n_resamples, percentiles)
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, len(s), size=(n_resamples, len(s))) for s in sets]
    step = max(1, _CHUNK_VALUES // sum(s.size for s in sets)) if batched else 1
    blocks = []
    for start in tqdm(range(0, n_resamples, step), disable=not progress, desc="bootstrap", unit="block"):
        resampled = [s[d[start : start + step] if batched else d[start]] for s, d in zip(sets, draws)]
        blocks.append(_evaluate(statistic, resampled, step if batched else None, n_resamples - start))
    return summarise(np.concatenate(blocks), levels)


def _evaluate(statistic, resampled, step, left: int) -> np.ndarray:
    """Statistic of one resample (``step`` None) or of a block of ``min(step, left)``: [m, ...]."""
    out = np.asarray(statistic(*resampled), dtype=np.float64)
    if step is None:
        return out[None]
    if out.ndim == 0 or out.shape[0] != min(step, left):
        expected = min(step, left)
        raise InputError(f"a batched statistic must return [m, ...] for m = {expected} resamples, got {out.shape}")
    return out


def _as_set(sample, k: int) -> np.ndarray:
    if isinstance(sample, torch.Tensor):
        sample = sample.detach().cpu().numpy()
    sample = np.asarray(sample)
    if sample.ndim < 1 or len(sample) == 0:
        raise InputError(f"sample {k} must be a non-empty set [n, ...], got shape {sample.shape}")
    return sample


def _check(sets, n_resamples: int, percentiles) -> tuple[float, ...]:
    if not sets:
        raise InputError("bootstrap needs at least one sample set")
    if not isinstance(n_resamples, (int, np.integer)) or isinstance(n_resamples, bool) or n_resamples < 2:
        raise InputError(f"n_resamples must be an integer >= 2, got {n_resamples!r}")
    levels = tuple(float(p) for p in percentiles)
    if not all(0.0 <= p <= 100.0 for p in levels):
        raise InputError(f"percentiles must lie in [0, 100], got {levels}")
    return levels


def resample_weights(groups, n_resamples: int, seed: int) -> np.ndarray:
    """Multiplicity of every row in each resample of a (block) bootstrap: float64 [n_resamples, n].

    Rows sharing a group (a sky region) are resampled together: each resample draws as many groups as
    there are, with replacement, so correlated rows never count as independent. With one group per
    row this is the ordinary bootstrap, drawn exactly as :func:`bootstrap` draws it for one set.
    Statistics that are (weighted) sums or means over rows follow as ``weights @ rows``.
    """
    _, inverse = np.unique(np.asarray(groups), return_inverse=True)
    n_groups = int(inverse.max()) + 1
    draws = np.random.default_rng(seed).integers(0, n_groups, size=(n_resamples, n_groups))
    flat = (draws + n_groups * np.arange(n_resamples)[:, None]).ravel()
    counts = np.bincount(flat, minlength=n_resamples * n_groups).reshape(n_resamples, n_groups)
    return counts[:, inverse].astype(np.float64)


def summarise(replicates: np.ndarray, percentiles=(2.5, 16.0, 50.0, 84.0, 97.5)) -> BootstrapResult:
    """A :class:`BootstrapResult` from a statistic's values on every resample, [n_resamples, ...]."""
    replicates = np.asarray(replicates, dtype=np.float64)
    levels = tuple(float(p) for p in percentiles)
    return BootstrapResult(mean=replicates.mean(0), std=replicates.std(0, ddof=1), percentiles=levels,
                           bands=np.percentile(replicates, levels, axis=0), replicates=replicates)
