"""Spectrum intervals centred on the estimate and their per-ℓ conformal calibration, on exact cases."""

from __future__ import annotations

import numpy as np
import pytest

from dustcmb.separation import calibration

N_BINS = 6


def synthetic_predictions(n: int, true_sigma: np.ndarray, claimed_sigma: np.ndarray, seed: int):
    """Maps whose estimate errs by a log-normal factor of width ``true_sigma`` per bin, while the MC
    passes claim ``claimed_sigma``; quantiles are those of a log-normal with the claimed width."""
    rng = np.random.default_rng(seed)
    truth = np.full((n, N_BINS), 2.0)
    est = truth * np.exp(true_sigma * rng.standard_normal((n, N_BINS)))
    z = np.array([-1.96, -1.0, 0.0, 1.0, 1.96])[None, :, None]
    offset = 1.3  # the passes sit above the mean map's spectrum: dropout noise power
    quantiles = offset * est[:, None, :] * np.exp(claimed_sigma[None, None, :] * z)
    return truth, est, quantiles


def test_centred_interval_belongs_to_the_estimate():
    """Centring removes the passes' offset: with honest widths, coverage is nominal; raw is not."""
    sigma = np.full(N_BINS, 0.2)
    truth, est, q = synthetic_predictions(20_000, sigma, sigma, seed=1)
    centred = calibration.coverage(truth, calibration.centred_interval(est, q, "68"))
    raw = calibration.coverage(truth, (q[:, 1], q[:, 3]))
    np.testing.assert_allclose(centred, 0.683, atol=0.01)  # binomial σ 0.003 per bin
    assert np.all(raw < 0.6)


def test_conformal_factors_fix_per_bin_miscalibration_on_new_maps():
    """Intervals 2× too narrow in some bins and 2× too wide in others: after fitting on 2000
    calibration maps, 20 000 new maps are covered at 68 % and 95 % in every bin to 1.5 % (the
    conformal guarantee is ≥ p; finite calibration sets add ~1 % scatter), and the mean error
    cannot hide opposite-sign errors because every bin has its own factor."""
    true_sigma = np.full(N_BINS, 0.2)
    claimed = true_sigma * np.array([0.5, 0.5, 1.0, 1.0, 2.0, 2.0])
    fit = synthetic_predictions(2000, true_sigma, claimed, seed=2)
    new_truth, new_est, new_q = synthetic_predictions(20_000, true_sigma, claimed, seed=3)
    for level, nominal in (("68", 0.68), ("95", 0.95)):
        raw = calibration.coverage(new_truth, calibration.centred_interval(new_est, new_q, level))
        assert raw[:2].max() < nominal - 0.2 and raw[-2:].min() > nominal + 0.02
        factors = calibration.conformal_factors(fit[0], fit[1], calibration.half_width(fit[2], level), level)
        np.testing.assert_allclose(factors, true_sigma / claimed, rtol=0.1)
        width = calibration.half_width(new_q, level)
        fitted = calibration.coverage(new_truth, calibration.calibrated_interval(new_est, width, factors))
        np.testing.assert_allclose(fitted, nominal, atol=0.015)


def test_leakage_width_carries_factors_to_brighter_sky():
    """Errors that scale with the dust amplitude A (log-error σ = 0.1·A, the leaked-dust case) and MC
    widths that ignore A: factors fitted on faint sky (A in [0.5, 1]) under-cover bright sky (A in
    [1, 2]) with the MC width, but cover it at nominal with the width sqrt(C_dust / Ĉ) ∝ A, to 3σ of
    the binomial scatter of the 5000 calibration maps' quantile plus that of the 20 000 new maps
    (0.030 at 68 %, 0.014 at 95 %; 12 bin-levels are checked)."""
    def sky(n, low, high, seed):
        rng = np.random.default_rng(seed)
        amplitude = rng.uniform(low, high, (n, 1))
        truth = np.full((n, N_BINS), 2.0)
        est = truth * np.exp(0.1 * amplitude * rng.standard_normal((n, N_BINS)))
        cl_dust = 5.0 * amplitude**2 * est  # dust power ∝ A², so sqrt(C_dust / Ĉ) ∝ A
        quantiles = est[:, None, :] * np.exp(0.05 * np.array([-1.96, -1.0, 0.0, 1.0, 1.96]))[None, :, None]
        return truth, est, cl_dust, quantiles
    n_fit, n_new = 5000, 20_000
    fit, new = sky(n_fit, 0.5, 1.0, seed=4), sky(n_new, 1.0, 2.0, seed=5)
    for level, nominal in (("68", 0.68), ("95", 0.95)):
        mc = [calibration.half_width(s[3], level) for s in (fit, new)]
        dust = [calibration.leakage_width(s[2], s[1]) for s in (fit, new)]
        coverages = []
        for width_fit, width_new in (mc, dust):
            factors = calibration.conformal_factors(fit[0], fit[1], width_fit, level)
            coverages.append(calibration.coverage(new[0], calibration.calibrated_interval(new[1], width_new, factors)))
        assert coverages[0].max() < nominal - 0.1
        sigma = np.sqrt(nominal * (1 - nominal))
        np.testing.assert_allclose(coverages[1], nominal, atol=3 * sigma * (n_fit**-0.5 + n_new**-0.5))


def test_width_model_finds_the_exponents_and_carries_to_brighter_sky():
    """Log-errors of scale s with s² = 0.01 · d^0.8 · σ^0.5 (the leakage width d and the MC width σ
    log-uniform and independent): the regression of ln r² on (1, ln d, ln σ) over 20 000 maps finds
    the width's exponents 0.4 and 0.25 to 4σ of their standard errors, sd(ln ε²) / (2 sd(ln x) √n) =
    2.2 / (2 · 0.60 · 141) = 0.013 for d in [0.25, 2] and 2.2 / (2 · 0.40 · 141) = 0.020 for σ in
    [0.5, 2]. Fitted there, its factors cover sky with d in [2, 8] at nominal in every bin to 0.03:
    3σ of the binomial scatter of the fitted and the new maps (0.020 at 68 %) plus the leakage
    exponent's error carried over the gap between the two skies (≈ 0.013 × 1.7 in ln w, ≈ 0.01 in
    coverage). The MC width alone under-covers that brighter sky. From fewer maps than
    MIN_ITEMS_FOR_EXPONENTS the exponents are left at 0 (a constant width per bin)."""
    def sky(n, low, high, seed):
        rng = np.random.default_rng(seed)
        leak = np.exp(rng.uniform(np.log(low), np.log(high), (n, N_BINS)))
        mc = np.exp(rng.uniform(np.log(0.5), np.log(2.0), (n, N_BINS)))
        truth = np.full((n, N_BINS), 2.0)
        est = truth * np.exp(0.1 * leak**0.4 * mc**0.25 * rng.standard_normal((n, N_BINS)))
        return truth, est, leak, mc
    n = 20_000
    fit, new = sky(n, 0.25, 2.0, seed=6), sky(n, 2.0, 8.0, seed=7)
    model = calibration.fit_width_model(*fit)
    np.testing.assert_allclose(model.coef[:, 1] / 2, 0.4, atol=0.05)
    np.testing.assert_allclose(model.coef[:, 2] / 2, 0.25, atol=0.08)
    for level, nominal in (("68", 0.68), ("95", 0.95)):
        covered = {}
        for name, width in (("model", model.width), ("mc", lambda leak, mc: mc)):
            factors = calibration.conformal_factors(fit[0], fit[1], width(fit[2], fit[3]), level)
            covered[name] = calibration.coverage(new[0], calibration.calibrated_interval(
                new[1], width(new[2], new[3]), factors))
        np.testing.assert_allclose(covered["model"], nominal, atol=0.03)
        assert covered["mc"].max() < nominal - 0.1
    few = calibration.fit_width_model(*(part[:calibration.MIN_ITEMS_FOR_EXPONENTS - 1] for part in fit))
    assert np.all(few.coef[:, 1:] == 0)  # too few maps for exponents: a constant width per bin
    np.testing.assert_allclose(few.width(new[2], new[3]), few.width(fit[2], fit[3])[:1].repeat(n, axis=0))


def test_brightness_groups_expose_coverage_that_cancels_across_maps():
    """Groups are the calibration maps' brightness quartiles and a fifth group beyond the brightest
    (exact on 1…100: edges 25.75, 50.5, 75.25, 100). Faint maps whose widths are twice too narrow
    and bright maps whose widths are twice too wide can average to near-nominal coverage; the groups
    read the exact Gaussian coverages of ±0.5σ and ±2σ, 0.383 and 0.954 (to 0.02: 4000 maps each)."""
    reference = np.arange(1.0, 101.0)
    np.testing.assert_allclose(calibration.group_edges(reference), [25.75, 50.5, 75.25, 100.0])
    groups = calibration.brightness_groups(np.array([1.0, 25.75, 26.0, 75.3, 100.0, 100.1]), reference)
    assert groups.tolist() == [0, 0, 1, 3, 3, 4]
    np.testing.assert_allclose(calibration.dust_brightness(np.exp([[1.0, 3.0], [2.0, 2.0]])), [2.0, 2.0])

    rng = np.random.default_rng(8)
    n = 4000
    truth = np.full((2 * n, N_BINS), 2.0)
    est = truth * np.exp(0.1 * rng.standard_normal((2 * n, N_BINS)))
    width = np.concatenate([np.full((n, N_BINS), 0.05), np.full((n, N_BINS), 0.2)])  # true σ is 0.1
    interval = calibration.calibrated_interval(est, width, np.ones(N_BINS))
    brightness = np.concatenate([np.full(n, 10.0), np.full(n, 90.0)])
    by_group = calibration.coverage_by_group(truth, interval, calibration.brightness_groups(brightness, reference), 5)
    assert by_group[1] is None and by_group[2] is None and by_group[4] is None
    assert abs(by_group[0] - 0.383) < 0.02 and abs(by_group[3] - 0.954) < 0.02
    assert abs(calibration.coverage(truth, interval).mean() - (0.383 + 0.954) / 2) < 0.02


def test_clustered_standard_error_counts_dust_maps_not_draws():
    """Exact cases. Every item its own cluster: the binomial √(p(1 − p)/n) times √(G/(G − 1)).
    Clusters of m draws that are all covered or all missed together (one dust map decides): the
    error is that of G = n/m independent maps, √m times the binomial one. Independent draws within
    clusters of 12: the item binomial error, to 10 % (the clustered estimator's own scatter over
    G = 400 clusters is ~√(1/(2G)) ≈ 4 % relative)."""
    rng = np.random.default_rng(3)
    n, m = 4800, 12
    inside = rng.random((n, 2)) < 0.68
    p = inside.mean(axis=0)
    binomial = np.sqrt(p * (1 - p) / n)
    singletons = calibration.clustered_standard_error(inside, np.arange(n))
    np.testing.assert_allclose(singletons, binomial * np.sqrt(n / (n - 1)), rtol=1e-12)
    maps = np.arange(n) % (n // m)  # item i is map i % G, like SeparationDataset's draws
    np.testing.assert_allclose(calibration.clustered_standard_error(inside, maps), binomial, rtol=0.1)
    shared = inside[maps]  # each map's first draw decides all of its draws
    p = shared.mean(axis=0)
    expected = np.sqrt(p * (1 - p) / (n // m)) * np.sqrt((n // m) / (n // m - 1))
    np.testing.assert_allclose(calibration.clustered_standard_error(shared, maps), expected, rtol=1e-12)
    with pytest.raises(ValueError, match="two clusters"):
        calibration.clustered_standard_error(inside, np.zeros(n, dtype=int))
