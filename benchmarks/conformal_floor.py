"""The calibration error that a perfectly calibrated interval still shows with finite item counts.

Split-conformal factors are fitted per ℓ bin on ``--calibration`` items and judged on ``--test``
items, both drawn from one distribution (exchangeable: the ideal case). The mean over bins of
``|coverage_ℓ - nominal|`` is then not 0: the factor's quantile is estimated from a finite sample
and the test coverage is a binomial fraction. This prints its mean and 5-95 % range over
``--repeats`` draws, per level, with the project's own calibration functions, so that a measured
calibration error can be read against it.

    python benchmarks/conformal_floor.py                       # the quick profile's counts
    python benchmarks/conformal_floor.py --calibration 1000 --test 1164
"""

from __future__ import annotations

import argparse

import numpy as np

from dustcmb.separation import calibration


def floor(n_cal: int, n_test: int, n_bins: int, repeats: int, level: str, seed: int) -> np.ndarray:
    """Calibration errors [repeats] of exact log-normal errors with a unit width in every bin."""
    rng = np.random.default_rng(seed)
    nominal = calibration.LEVELS[level][2]
    errors = np.empty(repeats)
    for r in range(repeats):
        cal_true, test_true = (np.exp(rng.standard_normal((n, n_bins))) for n in (n_cal, n_test))
        factors = calibration.conformal_factors(cal_true, np.ones_like(cal_true), np.ones_like(cal_true), level)
        interval = calibration.calibrated_interval(np.ones_like(test_true), np.ones_like(test_true), factors)
        errors[r] = np.abs(calibration.coverage(test_true, interval) - nominal).mean()
    return errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibration", type=int, default=384, help="calibration items (validation)")
    parser.add_argument("--test", type=int, default=582, help="test items")
    parser.add_argument("--bins", type=int, default=22, help="reported ℓ bins")
    parser.add_argument("--repeats", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"{args.calibration} calibration items, {args.test} test items, {args.bins} ℓ bins, "
          f"{args.repeats} repeats (exchangeable items: the best a calibration can read)")
    for level in calibration.LEVELS:
        errors = floor(args.calibration, args.test, args.bins, args.repeats, level, args.seed)
        lo, hi = np.percentile(errors, [5, 95])
        print(f"  {level} %: calibration error {errors.mean():.4f} (5-95 %: {lo:.4f}-{hi:.4f})")


if __name__ == "__main__":
    main()
