"""What a perfectly calibrated interval still shows with finite item counts.

Split-conformal factors are fitted per ℓ bin on ``--calibration`` items and judged on ``--test``
items, both drawn from one distribution (exchangeable: the ideal case). The mean over bins of
``|coverage_ℓ - nominal|`` is then not 0: the factor's quantile is estimated from a finite sample
and the test coverage is a binomial fraction. Nor does every bin land inside a tolerance band
around the nominal level. This prints, per level and over ``--repeats`` draws, the calibration
error's mean and 5-95 % range, the mean number of bins outside ``nominal ± tolerance`` and how often
none is, with the project's own calibration functions, so that measured figures can be read
against them.

Items come in clusters of ``--draws`` (the CMB + noise draws of one dust map) whose log errors share
a per-map component with correlation ``--rho`` (0: independent items); the map-level share is what
makes a bin's coverage scatter more than the item binomial says.

    python benchmarks/conformal_floor.py                       # the quick profile's counts
    python benchmarks/conformal_floor.py --rho 0.1             # with the draws of a dust map correlated
"""

from __future__ import annotations

import argparse

import numpy as np

from dustcmb.separation import calibration

TOLERANCE = {"68": 0.03, "95": 0.02}  # the per-bin targets: 68 ± 3 %, 95 ± 2 %


def log_errors(rng: np.random.Generator, n: int, n_bins: int, draws: int, rho: float) -> np.ndarray:
    """Unit-variance Gaussian log errors [n, n_bins]; items ``i`` and ``j`` of the same map
    (``i // draws == j // draws``) correlate by ``rho``."""
    shared = rng.standard_normal((-(-n // draws), n_bins)).repeat(draws, axis=0)[:n]
    return np.sqrt(rho) * shared + np.sqrt(1.0 - rho) * rng.standard_normal((n, n_bins))


def floor(n_cal: int, n_test: int, n_bins: int, draws: int, rho: float, repeats: int, level: str,
          seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Calibration errors [repeats] and numbers of bins outside the tolerance [repeats] of exact
    log-normal errors with a unit width in every bin."""
    rng = np.random.default_rng(seed)
    nominal = calibration.LEVELS[level][2]
    errors, outside = np.empty(repeats), np.empty(repeats, dtype=int)
    for r in range(repeats):
        cal_true, test_true = (np.exp(log_errors(rng, n, n_bins, draws, rho)) for n in (n_cal, n_test))
        factors = calibration.conformal_factors(cal_true, np.ones_like(cal_true), np.ones_like(cal_true), level)
        interval = calibration.calibrated_interval(np.ones_like(test_true), np.ones_like(test_true), factors)
        deviation = np.abs(calibration.coverage(test_true, interval) - nominal)
        errors[r], outside[r] = deviation.mean(), np.sum(deviation > TOLERANCE[level])
    return errors, outside


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibration", type=int, default=1096, help="calibration items (validation)")
    parser.add_argument("--test", type=int, default=1104, help="test items")
    parser.add_argument("--bins", type=int, default=22, help="reported ℓ bins")
    parser.add_argument("--draws", type=int, default=12, help="items per dust map (held_out_realisations)")
    parser.add_argument("--rho", type=float, default=0.0, help="correlation of the log errors of one map's draws")
    parser.add_argument("--repeats", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not 0.0 <= args.rho < 1.0:
        parser.error("--rho must lie in [0, 1)")
    print(f"{args.calibration} calibration items, {args.test} test items, {args.bins} ℓ bins, {args.draws} "
          f"draws per map correlated by {args.rho}, {args.repeats} repeats (exchangeable items: the best a "
          "calibration can read)")
    for level in calibration.LEVELS:
        errors, outside = floor(args.calibration, args.test, args.bins, args.draws, args.rho, args.repeats, level,
                                args.seed)
        lo, hi = np.percentile(errors, [5, 95])
        print(f"  {level} %: calibration error {errors.mean():.4f} (5-95 %: {lo:.4f}-{hi:.4f}); bins outside "
              f"±{TOLERANCE[level]:.2f}: {outside.mean():.1f} on average, "
              f"none in {np.mean(outside == 0):.0%} of repeats")


if __name__ == "__main__":
    main()
