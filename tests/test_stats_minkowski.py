"""Minkowski functionals against geometry and Gaussian-field truth (docs/science.md#generator-statistics)."""

import importlib
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from scipy.special import erfc

from dustcmb.errors import InputError
from dustcmb.stats import minkowski
from fields import gaussian_fields, mode_ell, smoothed_white_spectrum

N = 64
Y, X = np.mgrid[0:N, 0:N].astype(float)
AREA = (N - 1) ** 2  # window spanned by the pixel centres, px²


def test_linear_field_is_exact():
    """A plane is reproduced exactly: straight level lines across the window, no digitisation bias."""
    theta = math.radians(20.0)
    u = X * math.cos(theta) + Y * math.sin(theta)
    v0, v1, v2 = minkowski(u, [30.0])
    assert v1[0] * 4 * AREA == pytest.approx((N - 1) / math.cos(theta), rel=1e-9)
    assert v2[0] == pytest.approx(0.0, abs=1e-15)  # a half-plane has no Euler density
    v0, _, _ = minkowski(X, [10.5, 20.0])
    np.testing.assert_allclose(v0 * (N - 1), [N - 11.5, N - 21.5])  # edge columns weigh ½


@pytest.mark.parametrize("radius", [5.0, 20.0])
def test_disc_length_area_and_euler(radius):
    u = radius - np.hypot(X - 31.3, Y - 30.7)
    v0, v1, v2 = minkowski(u, [0.0])
    assert v1[0] * 4 * AREA == pytest.approx(2 * math.pi * radius, rel=3e-3)  # chords of a circle
    assert v0[0] * AREA == pytest.approx(math.pi * radius**2, rel=0.04)
    assert v2[0] * AREA == pytest.approx(1.0, abs=1e-12)


def test_euler_characteristic_counts_components_minus_holes():
    blobs = np.maximum(5 - np.hypot(X - 15, Y - 15), 6 - np.hypot(X - 45, Y - 40))
    ring = 4 - np.abs(np.hypot(X - 32, Y - 32) - 15)
    _, _, v2 = minkowski(np.stack([blobs, ring]), [0.0])
    np.testing.assert_allclose(v2[:, 0] * AREA, [2.0, 0.0], atol=1e-12)


def test_saddle_is_decided_by_cell_centre():
    """Diagonal corners above ν join through the centre iff the corner mean exceeds ν (symmetric in u → −u)."""
    cell = np.array([[1.0, 0.0], [0.0, 1.0]])
    _, _, v2 = minkowski(cell, [0.4, 0.6])
    # One 1x1 window: corners weigh ¼, so two isolated corners give ½ and joined ones ½ − 1.
    np.testing.assert_allclose(v2, [-0.5, 0.5])


def test_vectorised_over_maps_and_any_threshold_order():
    rng = np.random.default_rng(4)
    maps = rng.standard_normal((2, 3, 16, 16))
    nu = np.linspace(-2, 2, 9)
    batch = minkowski(maps, nu)
    assert all(v.shape == (2, 3, 9) for v in batch)
    single = minkowski(maps[1, 2], nu)
    for b, s in zip(batch, single):
        np.testing.assert_allclose(b[1, 2], s, rtol=1e-12, atol=1e-15)
    order = rng.permutation(9)
    uneven = np.append(nu[order], 0.123)  # not evenly spaced: exercises the binary-search path
    for b, s in zip(batch, minkowski(maps, uneven)):
        np.testing.assert_allclose(s[..., :9], b[..., order], rtol=1e-12, atol=1e-15)
    torch_out = minkowski(torch.from_numpy(maps), nu)
    for b, t in zip(batch, torch_out):
        assert isinstance(t, torch.Tensor)
        np.testing.assert_allclose(t.numpy(), b, rtol=1e-12, atol=1e-15)


def test_large_maps_split_into_strips_match_their_transpose():
    """Transposing or flipping changes how a non-square map is traversed but not the functionals (the
    estimator is symmetric under the square's reflections); strips are covered by the next test."""
    u = gaussian_fields(smoothed_white_spectrum(256, 20.0, 3.0), 1, 256, 20.0, seed=9)[0, :230, :190]
    nu = np.linspace(-2, 2, 7) * u.std()
    for other in (u.T, u[::-1], u[:, ::-1]):
        for a, b in zip(minkowski(u, nu), minkowski(other, nu)):
            np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-15)


def threshold_by_threshold(u, nu, periodic=False):
    """The estimator of the module docstring evaluated directly at each threshold, for one map [H, W]."""
    if periodic:
        u = np.pad(u, ((0, 1), (0, 1)), mode="wrap")  # boundary weights ½ + ½ on the repeated lines
    w_row, w_col = np.ones(u.shape[0]), np.ones(u.shape[1])
    w_row[[0, -1]] = w_col[[0, -1]] = 0.5
    u00, u01, u10, u11 = u[:-1, :-1], u[:-1, 1:], u[1:, :-1], u[1:, 1:]
    centre = ((u00 + u11) + (u01 + u10)) / 4.0
    triangles = []
    for p, q in ((u00, u01), (u10, u11), (u00, u10), (u01, u11)):
        grad = np.hypot(q - p, 2.0 * (centre - (p + q) / 2.0)) / 2.0
        a, b, c = np.sort([p, q, centre], axis=0)
        triangles.append((a, b, c, np.divide(grad, c - a, out=np.zeros_like(a), where=c > a)))

    def ramp(level, x0, x1):
        inside = (level - x0) / np.where(x1 > x0, x1 - x0, 1.0)
        return np.where(level >= x1, 1.0, np.where(level >= x0, inside, 0.0))

    v0, v1, v2 = [], [], []
    for level in nu:
        up, centre_up = u > level, centre > level
        p00, p01, p10, p11 = up[:-1, :-1], up[:-1, 1:], up[1:, :-1], up[1:, 1:]
        saddles = ((p00 & p11 & ~p01 & ~p10) | (p01 & p10 & ~p00 & ~p11)) & centre_up
        v0.append((w_row[:, None] * w_col * up).sum())
        v1.append(sum((peak * (ramp(level, a, b) - ramp(level, b, c))).sum() for a, b, c, peak in triangles))
        v2.append(
            (w_row[:, None] * w_col * up).sum()
            - (w_row[:, None] * (up[:, :-1] & up[:, 1:])).sum()
            - (w_col * (up[:-1] & up[1:])).sum()
            + (p00 & p01 & p10 & p11).sum()
            - saddles.sum()
        )
    area = (u.shape[0] - 1) * (u.shape[1] - 1)
    return np.array(v0) / area, np.array(v1) / (4 * area), np.array(v2) / area


@pytest.mark.parametrize("periodic", [False, True])
def test_histograms_match_threshold_by_threshold_evaluation(periodic):
    """All thresholds at once (running sums of per-triangle kinks, exact χ counts) agree with the
    estimator evaluated level by level: V0 and V2 exactly, V1 to round-off of its scale."""
    u = gaussian_fields(smoothed_white_spectrum(64, 20.0, 2.0), 3, 64, 20.0, seed=3)[:, :37, :29]
    even = np.linspace(-2.5, 2.5, 21) * u.std()
    uneven = np.sort(np.random.default_rng(5).uniform(-2.5, 2.5, 13)) * u.std()
    for nu in (even, uneven):
        batch = minkowski(u, nu, periodic=periodic)
        for i in range(len(u)):
            for got, want in zip(batch, threshold_by_threshold(u[i], nu, periodic)):
                np.testing.assert_allclose(got[i], want, rtol=1e-12, atol=1e-12 * np.abs(want).max())


def test_strips_and_blocks_add_up(monkeypatch):
    """Maps split into row strips, and several maps per block, give the results of whole maps."""
    module = importlib.import_module("dustcmb.stats.minkowski")
    u = gaussian_fields(smoothed_white_spectrum(64, 20.0, 3.0), 5, 64, 20.0, seed=8)[:, :41, :34]
    nu = np.linspace(-2, 2, 9) * u.std()
    for periodic in (False, True):
        whole = minkowski(u, nu, periodic=periodic)
        monkeypatch.setattr(module, "_CPU_BLOCK", 600)  # 1 map per block, strips of 8 cell rows
        assert module._blocking(41 + periodic, 34 + periodic, torch.device("cpu")) == (1, 8 + periodic)
        for a, b in zip(whole, minkowski(u, nu, periodic=periodic)):
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-15)
        monkeypatch.undo()


def test_torch_threads_restored_after_concurrent_calls():
    threads = torch.get_num_threads()
    maps = np.random.default_rng(1).standard_normal((4, 48, 48))
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: minkowski(maps, [0.0, 0.5]), range(6)))
    assert torch.get_num_threads() == threads
    for r in results[1:]:
        for a, b in zip(results[0], r):
            np.testing.assert_array_equal(a, b)


def test_thresholds_at_pixel_values_count_strictly_above():
    u = np.arange(16.0).reshape(4, 4)
    v0, _, _ = minkowski(u, [-1.0, 5.0, 15.0])
    np.testing.assert_allclose(v0, [1.0, 6.0 / 9.0, 0.0])  # edge pixels weigh ½, corners ¼; A = 3² px²


def test_rejects_bad_input():
    with pytest.raises(InputError, match="finite"):
        minkowski(np.full((8, 8), np.nan), [0.0])
    with pytest.raises(InputError, match="H, W >= 2"):
        minkowski(np.zeros((1, 8)), [0.0])
    with pytest.raises(InputError, match="thresholds"):
        minkowski(np.zeros((8, 8)), [[0.0, 1.0]])


def field_moments(spectrum, npix, size_deg):
    """σ0 and σ1 [1/px] of ``gaussian_fields`` output: σ0² = ⟨u²⟩, σ1² = ⟨|∇u|²⟩, over modes."""
    ell = mode_ell(npix, size_deg)
    weight = np.full(ell.shape, 2.0)
    weight[:, [0, -1]] = 1.0  # rfft columns without a stored conjugate
    pixel_rad = math.radians(size_deg) / npix
    power = np.where(ell > 0, spectrum(ell), 0.0) * weight / (pixel_rad * npix) ** 2
    wavenumber = ell * pixel_rad  # rad per pixel
    return math.sqrt(power.sum()), math.sqrt((power * wavenumber**2).sum())


@pytest.mark.parametrize("periodic", [False, True])
def test_gaussian_fields_follow_tomita(periodic):
    """64 periodic Gaussian fields of 256², white noise smoothed by a Gaussian of σ = 4 px (FWHM 9.4 px).

    σ0, σ1 come from the input spectrum. Truth (Tomita 1986) with ν = u/σ0, λ = σ1/(√2 σ0):
    V0 = ½ erfc(ν/√2), V1 = λ/8 e^{−ν²/2}, V2 = λ²/(2π)^{3/2} ν e^{−ν²/2}. Required for |ν| ≤ 2.5:
    V0 within 0.01, V1 and V2 within 5 % of their peak amplitudes. The standard error of the mean over the
    64 maps is ~1 % of the V2 peak and ~0.3 % of the V1 peak (checked below, so the test has power).
    """
    npix, size_deg = 256, 20.0
    spectrum = smoothed_white_spectrum(npix, size_deg, 4.0)
    sigma0, sigma1 = field_moments(spectrum, npix, size_deg)
    nu = np.linspace(-3.0, 3.0, 25)
    v0, v1, v2 = minkowski(gaussian_fields(spectrum, 64, npix, size_deg, seed=7), nu * sigma0, periodic=periodic)
    lam = sigma1 / (math.sqrt(2.0) * sigma0)
    gauss = np.exp(-(nu**2) / 2)
    truth = (0.5 * erfc(nu / math.sqrt(2)), lam / 8 * gauss, lam**2 / (2 * math.pi) ** 1.5 * nu * gauss)
    peak1, peak2 = lam / 8, lam**2 / (2 * math.pi) ** 1.5 * math.exp(-0.5)
    inside = np.abs(nu) <= 2.5
    assert np.abs(v0.mean(0) - truth[0])[inside].max() < 0.01
    assert np.abs(v1.mean(0) - truth[1])[inside].max() < 0.05 * peak1
    assert np.abs(v2.mean(0) - truth[2])[inside].max() < 0.05 * peak2
    assert (v2.std(0) / 8).max() < 0.02 * peak2 and (v1.std(0) / 8).max() < 0.01 * peak1
