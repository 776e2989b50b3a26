"""Fréchet distance (paper eq. 1) against a scipy.linalg.sqrtm reference and exact cases.

Definition: docs/science.md#generator-statistics.
"""

import numpy as np
import pytest
import scipy.linalg
import torch

from dustcmb.errors import InputError
from dustcmb.stats import frechet_distance, spectra_frechet_distance


def reference(a, b):
    """Textbook d_F with a general matrix square root."""
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(cov_a + cov_b - 2 * root)


def correlated(rng, n, d, shift):
    mixing = rng.standard_normal((d, d))
    return rng.standard_normal((n, d)) @ mixing + shift


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_sqrtm_reference(seed):
    rng = np.random.default_rng(seed)
    a, b = correlated(rng, 300, 12, 0.0), correlated(rng, 250, 12, 0.3)
    assert frechet_distance(a, b) == pytest.approx(reference(a, b), rel=1e-6)


def test_zero_against_itself_and_pure_shift():
    rng = np.random.default_rng(3)
    a = correlated(rng, 200, 10, 1.0)
    scale = np.trace(np.cov(a, rowvar=False))
    assert abs(frechet_distance(a, a)) <= 1e-10 * scale
    shift = np.linspace(-1.0, 1.0, 10)
    assert frechet_distance(a, a + shift) == pytest.approx(np.sum(shift**2), rel=1e-9)


def test_rank_deficient_covariances_are_finite_and_exact():
    """n < d and a constant feature: singular covariances. tr (Σa Σb)^½ equals the nuclear norm of
    Xa Xbᵀ / √((na−1)(nb−1)) for centred data Xa, Xb, an independent exact check."""
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((5, 40)), rng.standard_normal((7, 40)) + 0.1
    a[:, 3] = b[:, 3] = 2.0
    xa, xb = a - a.mean(0), b - b.mean(0)
    nuclear = np.linalg.svd(xa @ xb.T / np.sqrt(4 * 6), compute_uv=False).sum()
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    exact = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * nuclear
    value = frechet_distance(a, b)
    assert np.isfinite(value) and value == pytest.approx(exact, rel=1e-9)


def test_spectra_distance_uses_log10_and_accepts_torch():
    rng = np.random.default_rng(5)
    cl_a, cl_b = 10 ** rng.normal(-3, 0.2, (50, 8)), 10 ** rng.normal(-3.1, 0.25, (60, 8))
    expected = frechet_distance(np.log10(cl_a), np.log10(cl_b))
    assert spectra_frechet_distance(cl_a, cl_b) == pytest.approx(expected, rel=1e-12)
    from_torch = spectra_frechet_distance(torch.from_numpy(cl_a), torch.from_numpy(cl_b))
    assert from_torch == pytest.approx(expected, rel=1e-12)


def test_rejects_bad_input():
    good = np.ones((4, 3))
    bad = good.copy()
    bad[0, 0] = 0.0
    with pytest.raises(InputError, match="non-positive"):
        spectra_frechet_distance(good, bad)
    with pytest.raises(InputError, match="dimension"):
        frechet_distance(good, np.ones((4, 2)))
    with pytest.raises(InputError, match="n >= 2"):
        frechet_distance(np.ones((1, 3)), good)
    with pytest.raises(InputError, match="NaN"):
        frechet_distance(np.full((4, 3), np.nan), good)
