"""Histogram intersection (docs/science.md#generator-statistics): Σ min(a_i, b_i) / Σ a_i for equal-sized samples."""

import numpy as np
import pytest
import torch

from dustcmb.errors import InputError
from dustcmb.stats import histogram_counts, histogram_intersection, intersection


def test_identical_disjoint_and_hand_computed():
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (10, 16, 16))
    assert histogram_intersection(a, a.copy(), bins=50, value_range=(-1, 1)) == 1.0
    assert histogram_intersection(a * 0.4 - 0.6, a * 0.4 + 0.6, bins=50, value_range=(-1, 1)) == 0.0
    # bins [0, ½) and [½, 1]: a = (2, 2), b = (1, 3) -> (1 + 2) / 4
    assert histogram_intersection([0.1, 0.2, 0.7, 0.8], [0.1, 0.6, 0.7, 0.9], bins=2, value_range=(0, 1)) == 0.75


def test_default_range_covers_both_samples_and_torch_input():
    a, b = torch.linspace(0, 1, 100), torch.linspace(0.5, 1.5, 100)
    assert histogram_intersection(a, b, bins=10) == pytest.approx(0.5, abs=0.02)


def test_counts_per_row_match_numpy():
    rng = np.random.default_rng(1)
    maps = rng.normal(0, 0.3, (5, 8, 8)).clip(-1, 1)
    counts = histogram_counts(maps, 20, (-1.0, 1.0))
    for row, m in zip(counts, maps):
        np.testing.assert_array_equal(row, np.histogram(m, 20, (-1.0, 1.0))[0])
    np.testing.assert_allclose(intersection(counts, counts), np.ones(5))  # batched over rows


def test_rejects_bad_input():
    with pytest.raises(InputError, match="equal"):
        histogram_intersection(np.zeros(10), np.zeros(11))
    with pytest.raises(InputError, match="outside"):
        histogram_intersection(np.zeros(10), np.full(10, 2.0), value_range=(-1, 1))
    with pytest.raises(InputError, match="NaN"):
        histogram_intersection(np.full(3, np.nan), np.zeros(3))
    with pytest.raises(InputError, match="equal-sized"):
        intersection([1.0, 2.0], [1.0, 1.0])
