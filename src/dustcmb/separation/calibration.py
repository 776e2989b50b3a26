"""Spectrum intervals for the reported estimate, and their per-multipole calibration.

The estimate of a map's CMB spectrum is the spectrum of the MC-mean map, ``Ĉ_ℓ``. The quantiles of
the single passes' spectra describe something else: each pass carries dropout noise that the mean
map averages away, so those quantiles sit above ``Ĉ_ℓ``. The interval that belongs to the estimate
is therefore the passes' *relative* spread placed around it,

    [Ĉ_ℓ · q_lo / q_50,  Ĉ_ℓ · q_hi / q_50]        (q = quantiles of the passes' C_ℓ),

a log-symmetric band of half-width ``w_ℓ = ln(q_hi / q_lo) / 2`` around ``ln Ĉ_ℓ``.

Calibration is split-conformal, per ℓ bin and per level: on calibration maps that training never
scored, the score of a map is ``s = |ln(C_ℓ^true / Ĉ_ℓ)| / w_ℓ`` and the factor ``f_ℓ`` is its
``⌈(n + 1) p⌉``-th smallest value over the ``n`` maps (``p`` = 0.68 or 0.95). The calibrated interval
``exp(ln Ĉ_ℓ ± f_ℓ w_ℓ)`` then covers a new exchangeable map with probability at least ``p`` in every
bin (docs/science.md#bayesian-resunet). Errors of opposite sign in different bins cannot cancel,
because each bin gets its own factor.

The guarantee needs calibration and test maps to be exchangeable; sky regions are not, so the width
``w`` decides how well factors carry from one region to another. Besides the MC-dropout width this
module offers a dust-leakage width, ``w_ℓ ∝ sqrt(C_ℓ^dust / Ĉ_ℓ)`` with ``C^dust`` the spectrum of the
highest-frequency (dust-dominated) input channel: dust that leaks into the estimate with a fixed
fraction of its amplitude shifts ``ln Ĉ_ℓ`` by about that ratio of amplitudes, so brighter sky gets
wider intervals. Any per-ℓ constant in ``w`` is absorbed by ``f_ℓ``.
"""

from __future__ import annotations

import math

import numpy as np

LEVELS = {"68": (1, 3, 0.68), "95": (0, 4, 0.95)}  # name: (index of the low and high quantile, level)


def centred_interval(cl_est: np.ndarray, cl_quantiles: np.ndarray, level: str) -> tuple[np.ndarray, np.ndarray]:
    """Interval ``[n, n_bins]`` around the estimate from the passes' relative spread at ``level``.

    Parameters
    ----------
    cl_est : ndarray [n, n_bins]
        Spectrum of the MC-mean map [µK² sr].
    cl_quantiles : ndarray [n, 5, n_bins]
        Passes' spectrum quantiles at 2.5/16/50/84/97.5 % (:data:`dustcmb.separation.mc.QUANTILES`).
    level : str
        ``"68"`` or ``"95"``.
    """
    lo, hi, _ = LEVELS[level]
    median = cl_quantiles[:, 2]
    return cl_est * cl_quantiles[:, lo] / median, cl_est * cl_quantiles[:, hi] / median


def half_width(cl_quantiles: np.ndarray, level: str) -> np.ndarray:
    """Half-width ``ln(q_hi / q_lo) / 2`` [n, n_bins] of the passes' interval in ``ln C_ℓ``."""
    lo, hi, _ = LEVELS[level]
    return 0.5 * np.log(cl_quantiles[:, hi] / cl_quantiles[:, lo])


def leakage_width(cl_dust: np.ndarray, cl_est: np.ndarray) -> np.ndarray:
    """Dust-leakage width ``sqrt(C_ℓ^dust / Ĉ_ℓ)`` [n, n_bins] (any unit common to both spectra)."""
    return np.sqrt(cl_dust / cl_est)


def conformal_factors(cl_true: np.ndarray, cl_est: np.ndarray, width: np.ndarray, level: str) -> np.ndarray:
    """Per-bin factor ``f_ℓ`` [n_bins] that scales ``width`` [n, n_bins] (in ``ln C_ℓ``, e.g.
    :func:`half_width`) to cover ``level`` on these maps."""
    _, _, p = LEVELS[level]
    n = len(cl_true)
    score = np.abs(np.log(cl_true / cl_est)) / width
    rank = min(n, math.ceil((n + 1) * p))  # finite-sample guarantee of split-conformal prediction
    return np.sort(score, axis=0)[rank - 1]


def calibrated_interval(cl_est: np.ndarray, width: np.ndarray, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The interval ``exp(ln Ĉ_ℓ ± f_ℓ w_ℓ)`` [n, n_bins] with the fitted per-bin factors."""
    spread = np.exp(factors * width)
    return cl_est / spread, cl_est * spread


def coverage(cl_true: np.ndarray, interval: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Fraction of maps [n_bins] whose true spectrum lies inside the interval, per bin."""
    low, high = interval
    return ((low <= cl_true) & (cl_true <= high)).mean(axis=0)
