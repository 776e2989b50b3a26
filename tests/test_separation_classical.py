"""Harmonic and constrained ILC: constraints, reduction to the pixel ILC, exact dust null, band physics."""

import numpy as np
import pytest

from dustcmb.separation.cilc import cilc_cmb_uk, cilc_weights, dust_mixing
from dustcmb.separation.hilc import band_edges, hilc_cmb_uk, hilc_combine, hilc_weights
from dustcmb.separation.ilc import ilc_cmb_uk
from dustcmb.simulation.instrument import apply_beam
from test_separation_ilc import FREQS, NPIX, SIZE, _sky

PIXEL = SIZE * 60 / NPIX
BETA, TEMP = 1.53, 19.6


def test_band_edges_cover_every_ring_once():
    for npix in (16, 32, 64, 256):
        edges = band_edges(npix)
        assert edges[0] == 1 and edges[-1] == npix // 2 + 1
        assert np.all(np.diff(edges) >= 2) and len(edges) - 1 <= 8
    np.testing.assert_array_equal(band_edges(64), [1, 3, 5, 7, 9, 11, 14, 21, 33])
    np.testing.assert_array_equal(band_edges(64, 1), [1, 33])


@pytest.mark.parametrize("noise_uk", [0.0, 20.0])
def test_harmonic_ilc_with_one_band_is_the_pixel_ilc(noise_uk):
    """One band: its covariance is the pixel covariance (Parseval), so the maps agree.

    Measured ≈ 6e-14 (noiseless: pseudo-inverse of the same rank-2 matrix) and ≈ 3e-12 (noisy) of
    the CMB rms; asserted to 1e-9.
    """
    channels, cmb, *_ = _sky(4, noise_uk)
    pixel = ilc_cmb_uk(channels, (0.0,) * 3, PIXEL)
    np.testing.assert_allclose(hilc_combine(channels, n_bands=1), pixel, atol=1e-9 * cmb.std())


@pytest.mark.parametrize("noise_uk", [0.0, 20.0])
def test_every_ilc_band_keeps_the_cmb(noise_uk):
    """w_b·a = 1 in every band (measured ≈ 4e-16; asserted to 1e-12)."""
    channels, *_ = _sky(3, noise_uk)
    weights = hilc_weights(channels, band_edges(NPIX))
    assert weights.shape == (3, len(band_edges(NPIX)) - 1, 3)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=0, atol=1e-12)


def test_noiseless_harmonic_ilc_residual_is_the_dust_band_by_band():
    """No noise, fixed SED: in each band the residual's Fourier modes are the dust's times that band's
    chance-correlation coefficient −Σ w_k Re(ŝ d̂*) / Σ w_k |d̂|² (the pixel ILC's bias, band by band;
    w_k the half-plane weights). Measured to ≈ 2e-7 of the largest CMB mode of the band (float32
    channels); asserted to 1e-4."""
    channels, cmb, dust, _ = _sky(2)
    residual = hilc_combine(channels) - cmb
    edges = band_edges(NPIX)
    ky = np.fft.fftfreq(NPIX, 1.0 / NPIX)[:, None]
    kx = np.fft.rfftfreq(NPIX, 1.0 / NPIX)[None, :]
    ring = np.rint(np.hypot(ky, kx)) + 0 * kx
    half_plane = np.where((kx == 0) | (kx == NPIX // 2), 1.0, 2.0) + 0 * ky
    for r, c, d in zip(np.fft.rfft2(residual), np.fft.rfft2(cmb), np.fft.rfft2(dust)):
        for b, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
            band = (ring >= lo) & ((ring < hi) | (b == len(edges) - 2))  # the corners join the top band
            w = half_plane[band]
            coeff = -(w * (c[band] * d[band].conj()).real).sum() / (w * np.abs(d[band]) ** 2).sum()
            np.testing.assert_allclose(r[band], coeff * d[band], rtol=0, atol=1e-4 * np.abs(c[band]).max())


def test_constrained_ilc_nulls_known_dust_exactly():
    """No noise, the simulator's SED: w·a = 1, w·d = 0 and the CMB comes back unchanged.

    Dust: ≈ 340 µK mean, ≈ 190 µK rms at 353 GHz (3500 µK rms at 545 GHz). Measured residual:
    ≈ 8e-6 µK rms from float32 channels (their rounding, ~6e-8 of a 545 GHz pixel), ≈ 5e-14 µK from
    float64 ones. Asserted: < 1e-3 µK and < 1e-9 µK rms.
    """
    channels32, cmb, dust, sed = _sky(6)
    mixing = dust_mixing(FREQS, BETA, TEMP)
    np.testing.assert_allclose(mixing, sed, rtol=1e-12)
    channels64 = cmb[:, None] + sed[None, :, None, None] * dust[:, None]
    for channels, tol in ((channels32, 1e-3), (channels64, 1e-9)):
        w = cilc_weights(channels, mixing)
        np.testing.assert_allclose(w.sum(axis=-1), 1.0, rtol=0, atol=1e-12)
        np.testing.assert_allclose(w @ mixing, 0.0, atol=1e-12)
        residual = cilc_cmb_uk(channels, (0.0,) * 3, PIXEL, mixing) - cmb
        assert np.sqrt((residual**2).mean()) < tol


def test_constrained_ilc_is_minimum_variance_under_both_constraints():
    """With noise, moving the weights along the one direction that keeps w·a = 1 and w·d = 0 only adds variance."""
    channels, *_ = _sky(3, noise_uk=20.0)
    mixing = dust_mixing(FREQS, BETA, TEMP)
    null = np.cross(np.ones(3), mixing)  # ⟂ a and ⟂ d
    w = cilc_weights(channels, mixing)
    flat = channels.reshape(3, 3, -1).astype(np.float64)
    for i in range(3):
        base = (w[i] @ flat[i]).var()
        for t in (-1e-3, 1e-3, -0.1, 0.1):
            assert base <= ((w[i] + t * null / np.linalg.norm(null)) @ flat[i]).var() * (1 + 1e-12)


def test_constrained_ilc_beats_the_ilc_with_noise_and_beams():
    """Planck-like noise and beams: nulling the dust removes the ILC bias, so the CMB error is smaller."""
    fwhm = (30.0, 20.0, 20.0)
    channels, cmb, *_ = _sky(4, noise_uk=5.0)
    beamed = np.stack([apply_beam(channels[:, c], f, PIXEL) for c, f in enumerate(fwhm)], axis=1)
    mixing = dust_mixing(FREQS, BETA, TEMP)

    def rms(est):
        res = est - cmb
        return np.sqrt(((res - res.mean(axis=(-2, -1), keepdims=True)) ** 2).mean())

    assert rms(cilc_cmb_uk(beamed, fwhm, PIXEL, mixing)) < rms(ilc_cmb_uk(beamed, fwhm, PIXEL))
    assert np.isfinite(hilc_cmb_uk(beamed, fwhm, PIXEL)).all()


def test_ell_range_survives_one_failing_bin():
    """ell_range_1pct: the widest run of bins with |bias| < 1 % + 2σ; ring 1 failing does not zero it."""
    from dustcmb.evaluation.separation import ell_max_within, ell_range_within

    ell = 18.0 * np.arange(1, 9)
    bias = np.array([0.05, 0.0, 0.005, -0.02, 0.001, 0.002, -0.004, 0.03])
    err = np.array([0.001, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001, 0.02])  # last: 3 % ± 2 × 2 % passes
    assert ell_max_within(ell, np.abs(bias)) == 0.0
    assert ell_range_within(ell, bias, err) == [ell[4], ell[7]]  # bins 5–8 beat bins 2–3
    assert ell_range_within(ell, bias, np.zeros(8)) == [ell[4], ell[6]]  # without errors bin 8 fails
    tie = np.array([0.05, 0.0, 0.0, 0.05, 0.0, 0.0, 0.05, 0.0])
    assert ell_range_within(ell, tie, np.zeros(8)) == [ell[1], ell[2]]  # equally wide runs: the lowest
    assert ell_range_within(ell, np.full(8, 0.5), err) == [0.0, 0.0]


def test_spectrum_scores_of_a_perfect_and_a_scaled_estimate():
    """Bias, its standard error and residual power of Ĉ = C (perfect) and of an estimate 0.9 × truth."""
    from dustcmb.evaluation.separation import residual_sums, spectrum_scores
    from dustcmb.stats.power import power_spectrum

    _, cmb, *_ = _sky(5)
    ell, cl = power_spectrum(cmb, SIZE)
    scaled = 0.9 * cmb
    _, cl_scaled = power_spectrum(scaled, SIZE)
    _, cl_res = power_spectrum(scaled - cmb, SIZE)
    perfect = spectrum_scores(ell, cl, cl, 0 * cl, residual_sums(cmb, cmb), cmb.size)
    assert perfect["ell_range_1pct"] == [ell[0], ell[-1]] and perfect["map_rmse_uK"] == 0.0
    np.testing.assert_allclose(perfect["spectrum_bias_per_ell"], 0.0, atol=1e-12)
    s = spectrum_scores(ell, cl_scaled, cl, cl_res, residual_sums(scaled, cmb), cmb.size)
    np.testing.assert_allclose(s["spectrum_bias_per_ell"], 0.81 - 1, rtol=1e-9)
    np.testing.assert_allclose(s["spectrum_bias_err_per_ell"], 0.0, atol=1e-12)
    np.testing.assert_allclose(s["residual_power_ratio_per_ell"], 0.01, rtol=1e-9)
    assert s["ell_range_1pct"] == [0.0, 0.0]
    assert s["map_rmse_uK"] == pytest.approx(0.1 * np.sqrt((cmb**2).mean()))
