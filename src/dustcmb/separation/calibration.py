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

Neither width alone describes the error: instrument noise and the CMB's own scatter do not grow with
the dust, leaked dust does, and the network's correction is what MC dropout sees. The reported
calibration therefore uses a :class:`WidthModel`, a per-ℓ regression of the log squared error on the
logs of both widths (:func:`fit_width_model`), fitted on the calibration maps before the conformal
factors are.

A coverage averaged over the test maps can still hide maps that are covered too often next to maps
that are covered too rarely. :func:`brightness_groups` sorts maps by the brightness of their
dust-dominated channel into the quartiles of the calibration maps' brightness, plus a fifth group
brighter than any calibration map, where the widths are extrapolated; coverage per group shows
whether the calibration holds across the sky's range of dust brightness.

Test items are not independent: several CMB + noise draws share one dust map, and a map whose leaked
dust the width misjudges is missed in all of its draws. :func:`clustered_standard_error` therefore
gives coverage errors with the dust map as the unit (a cluster-robust standard error), not the
binomial ``√(p(1 − p)/n)`` over items, which is too small by about ``√(1 + (m − 1) ρ)`` for ``m`` draws
per map with within-map correlation ``ρ``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

LEVELS = {"68": (1, 3, 0.68), "95": (0, 4, 0.95)}  # name: (index of the low and high quantile, level)
BRIGHTNESS_GROUPS = 5  # of brightness_groups: the calibration maps' quartiles, and brighter than all of them
MIN_ITEMS_FOR_EXPONENTS = 30  # calibration maps below which fit_width_model keeps a constant width per bin


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


def dust_brightness(cl_dust: np.ndarray) -> np.ndarray:
    """Brightness [n] of maps whose dust-dominated channel has spectra ``cl_dust`` [n, n_bins]: the mean
    over ℓ bins of ``ln C_ℓ`` (``C_ℓ`` in µK² sr, so the value is in ln(µK² sr))."""
    return np.log(cl_dust).mean(axis=1)


def brightness_groups(brightness: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Group [n] of every map's ``brightness`` among the ``reference`` (calibration) maps': 0–3 for
    their quartiles (upper edges inclusive), 4 above the brightest of them; see :func:`group_edges`."""
    return np.searchsorted(group_edges(reference), brightness, side="left")


def group_edges(reference: np.ndarray) -> np.ndarray:
    """Upper edges [4] of :func:`brightness_groups` 0–3: the quartiles and the maximum of ``reference``."""
    return np.append(np.quantile(reference, [0.25, 0.5, 0.75]), reference.max())


def coverage_by_group(cl_true: np.ndarray, interval: tuple[np.ndarray, np.ndarray], groups: np.ndarray,
                      n_groups: int) -> list[float | None]:
    """Coverage of every group (``groups`` [n] in ``0 … n_groups − 1``), averaged over its maps and the ℓ
    bins; ``None`` for a group without maps."""
    low, high = interval
    inside = ((low <= cl_true) & (cl_true <= high)).mean(axis=1)
    return [float(inside[groups == g].mean()) if np.any(groups == g) else None for g in range(n_groups)]


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


def clustered_standard_error(inside: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    """Cluster-robust standard error [n_bins] of the coverage ``inside.mean(axis=0)``.

    Parameters
    ----------
    inside : ndarray of bool [n, n_bins]
        Whether each item's true spectrum lies inside its interval.
    clusters : ndarray of int [n]
        Cluster of every item (its dust map); at least two clusters.

    Notes
    -----
    ``SE² = G / (G − 1) · Σ_c (S_c − p n_c)² / n²`` over the ``G`` clusters, with ``S_c`` the covered
    count and ``n_c`` the size of cluster ``c``: the binomial error when every item is its own
    cluster (up to the ``G / (G − 1)`` factor), larger when items of one cluster agree.
    """
    labels, index = np.unique(clusters, return_inverse=True)
    if len(labels) < 2:
        raise ValueError("a clustered standard error needs items from at least two clusters")
    hits = inside.astype(float)
    p = hits.mean(axis=0)
    sums = np.zeros((len(labels), hits.shape[1]))
    np.add.at(sums, index, hits)
    sizes = np.bincount(index)[:, None]
    g, n = len(labels), len(hits)
    return np.sqrt(g / (g - 1) * ((sums - p * sizes) ** 2).sum(axis=0)) / n


@dataclass(frozen=True)
class WidthModel:
    """The ``ln C_ℓ`` width as a power law in the dust-leakage and MC-dropout widths, per ℓ bin:

        ln w_ℓ² = a_ℓ + b_ℓ ln d_ℓ + c_ℓ ln σ_ℓ

    with ``d`` the leakage width (:func:`leakage_width`) and ``σ`` the MC-dropout width
    (:func:`half_width`). The exponents let the data say how fast the error grows with the sky's
    brightness and with the network's own spread; the overall scale ``a_ℓ`` is set again by the
    conformal factors.

    Attributes
    ----------
    coef : ndarray [n_bins, 3]
        ``(a_ℓ, b_ℓ, c_ℓ)`` per bin.
    """

    coef: np.ndarray

    def width(self, leak: np.ndarray, mc: np.ndarray) -> np.ndarray:
        """``w_ℓ`` [n, n_bins] from the leakage and MC widths [n, n_bins] of the same maps."""
        a, b, c = self.coef.T
        return np.exp(0.5 * (a + b * np.log(leak) + c * np.log(mc)))


def fit_width_model(cl_true: np.ndarray, cl_est: np.ndarray, leak: np.ndarray, mc: np.ndarray) -> WidthModel:
    """:class:`WidthModel` fitted per bin by least squares of ``ln r²`` on ``(1, ln d_ℓ, ln σ_ℓ)``,
    with ``r = ln(C_ℓ^true / Ĉ_ℓ)``.

    For ``r = s ε`` with ``ε`` of one fixed distribution, ``ln r² = ln s² + ln ε²``: the regression
    estimates how ``ln s²`` moves with the regressors, and the constant offset ``E ln ε²`` ends up in
    ``a_ℓ``, where the conformal factors absorb it. The spectra and widths are [n, n_bins] for the same
    maps; a tiny floor (10⁻⁶ of the bin's mean ``r²``) keeps an exact hit from dominating the fit.
    With fewer than :data:`MIN_ITEMS_FOR_EXPONENTS` maps the exponents are not fitted (``b = c = 0``, a
    constant width per bin): three parameters per bin from a handful of maps would interpolate them
    and extrapolate wildly.
    """
    r2 = np.log(cl_true / cl_est) ** 2
    y = np.log(r2 + 1e-6 * r2.mean(axis=0))
    columns = [np.ones_like(leak), np.log(leak), np.log(mc)]
    used = len(columns) if len(y) >= MIN_ITEMS_FOR_EXPONENTS else 1
    design = np.stack(columns[:used], axis=-1)
    coef = np.zeros((y.shape[1], len(columns)))
    for j in range(y.shape[1]):
        coef[j, :used] = np.linalg.lstsq(design[:, j], y[:, j], rcond=None)[0]
    return WidthModel(coef)
