"""Bootstrap of statistics of one or more sets (docs/science.md#generator-statistics)."""

import numpy as np
import pytest

from dustcmb.errors import InputError
from dustcmb.stats import bootstrap, histogram_counts, histogram_intersection, intersection


def test_standard_error_of_the_mean():
    """Bootstrap std of a mean ≈ s / √n (here n = 400, 2000 resamples: ~2 % Monte Carlo scatter)."""
    x = np.random.default_rng(0).normal(3.0, 2.0, 400)
    result = bootstrap(np.mean, x, n_resamples=2000, seed=1)
    assert result.std == pytest.approx(x.std(ddof=1) / np.sqrt(len(x)), rel=0.08)
    assert result.mean == pytest.approx(x.mean(), abs=0.5 * result.std)
    assert result.bands.shape == (5,) and np.all(np.diff(result.bands) > 0)
    assert result.replicates.shape == (2000,)


def test_reproducible_and_batched_equals_loop():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(30, 4)), rng.normal(size=(20, 4))

    def mean_difference(x, y):  # works on one resample [n, 4] and on a block [m, n, 4]
        return x.mean(-2) - y.mean(-2)

    loop = bootstrap(mean_difference, a, b, n_resamples=50, seed=7, percentiles=(16, 84))
    batched = bootstrap(
        mean_difference, a, b, n_resamples=50, seed=7, percentiles=(16, 84), batched=True, progress=True
    )
    np.testing.assert_allclose(batched.replicates, loop.replicates, rtol=1e-12)
    assert loop.bands.shape == (2, 4) and loop.mean.shape == (4,)
    other = bootstrap(mean_difference, a, b, n_resamples=50, seed=8)
    assert not np.allclose(other.replicates, loop.replicates)


def test_resampled_sets_keep_their_sizes():
    sizes = bootstrap(lambda x, y: [len(x), len(y)], np.zeros(7), np.zeros((3, 2)), n_resamples=3, seed=0)
    np.testing.assert_array_equal(sizes.replicates, [[7, 3]] * 3)


def test_histogram_intersection_from_per_map_counts():
    """Resampling per-map histograms gives the same replicates as re-binning resampled maps."""
    rng = np.random.default_rng(3)
    real, fake = rng.normal(0, 0.3, (12, 8, 8)).clip(-1, 1), rng.normal(0.1, 0.3, (12, 8, 8)).clip(-1, 1)
    ha, hb = histogram_counts(real, 20, (-1, 1)), histogram_counts(fake, 20, (-1, 1))
    fast = bootstrap(lambda x, y: intersection(x.sum(-2), y.sum(-2)), ha, hb, n_resamples=40, seed=5, batched=True)
    slow = bootstrap(lambda x, y: histogram_intersection(x, y, 20, (-1, 1)), real, fake, n_resamples=40, seed=5)
    np.testing.assert_allclose(fast.replicates, slow.replicates, rtol=1e-12)


def test_rejects_bad_input():
    with pytest.raises(InputError, match="n_resamples"):
        bootstrap(np.mean, np.ones(3), n_resamples=1, seed=0)
    with pytest.raises(InputError, match="percentiles"):
        bootstrap(np.mean, np.ones(3), seed=0, percentiles=(50, 120))
    with pytest.raises(InputError, match="non-empty"):
        bootstrap(np.mean, np.ones(0), seed=0)
    with pytest.raises(InputError, match=r"\[m, \.\.\.\]"):
        bootstrap(np.mean, np.ones((4, 2)), n_resamples=5, seed=0, batched=True)
