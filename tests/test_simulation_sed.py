"""Dust SED and CMB units against an independent Planck-law calculation (scipy.constants)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.constants import c, h, k

from dustcmb.simulation.sed import dust_kcmb_ratio, dust_ukcmb, mbb_ratio
from dustcmb.units import kcmb_to_mjysr, mjysr_to_kcmb, planck_mjysr

FREQS_GHZ = (143.0, 353.0, 545.0)
BETA, TEMP_K, T_CMB = 1.53, 19.6, 2.7255


def planck_si(nu_hz, temp_k):
    """B_ν(T) [W m⁻² Hz⁻¹ sr⁻¹] written out directly."""
    return 2 * h * nu_hz**3 / c**2 / (np.exp(h * nu_hz / (k * temp_k)) - 1)


def dbdt_si(nu_hz, temp_k):
    """∂B_ν/∂T = (2 k ν² / c²) · x² eˣ / (eˣ - 1)², x = hν / kT (differentiated by hand)."""
    x = h * nu_hz / (k * temp_k)
    return 2 * k * nu_hz**2 / c**2 * x**2 * np.exp(x) / (np.exp(x) - 1) ** 2


@pytest.mark.parametrize("freq", FREQS_GHZ)
def test_planck_and_dbdt_match_independent_formulae(freq):
    nu = freq * 1e9
    assert planck_mjysr(freq, TEMP_K) == pytest.approx(planck_si(nu, TEMP_K) / 1e-20, rel=1e-6)
    assert kcmb_to_mjysr(freq) == pytest.approx(dbdt_si(nu, T_CMB) / 1e-20, rel=1e-6)
    assert mjysr_to_kcmb(freq) * kcmb_to_mjysr(freq) == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("freq", FREQS_GHZ)
def test_mbb_scaling_matches_independent_formula(freq):
    nu, nu0 = freq * 1e9, 353e9
    mbb = (nu / nu0) ** BETA * planck_si(nu, TEMP_K) / planck_si(nu0, TEMP_K)
    assert mbb_ratio(freq, BETA, TEMP_K) == pytest.approx(mbb, rel=1e-6)
    kcmb = mbb * dbdt_si(nu0, T_CMB) / dbdt_si(nu, T_CMB)
    assert dust_kcmb_ratio(freq, BETA, TEMP_K) == pytest.approx(kcmb, rel=1e-6)
    dust = np.full((4, 4), 0.2)
    expected_uk = 0.2 * mbb * 1e-20 / dbdt_si(nu, T_CMB) * 1e6
    np.testing.assert_allclose(dust_ukcmb(dust, freq, BETA, TEMP_K), expected_uk, rtol=1e-6)


def test_reference_numbers():
    """Dust ≈ 0.04× (143) and ≈ 18× (545) of 353 in K_CMB; 1 K_CMB ≈ 380/297/57 MJy/sr.

    Published values: docs/science.md#multi-frequency-skies.
    """
    assert dust_kcmb_ratio(143.0, BETA, TEMP_K) == pytest.approx(0.04, rel=0.1)
    assert dust_kcmb_ratio(545.0, BETA, TEMP_K) == pytest.approx(18.0, rel=0.05)
    np.testing.assert_allclose(kcmb_to_mjysr(np.array(FREQS_GHZ)), [380.0, 297.0, 57.0], rtol=0.01)


def test_beta_map_scales_pixel_by_pixel():
    beta = np.array([[1.4, 1.5], [1.6, 1.7]])
    dust = np.array([[0.1, 0.2], [0.3, 0.4]])
    mapped = dust_ukcmb(dust, 545.0, beta, TEMP_K)
    for idx in np.ndindex(beta.shape):
        assert mapped[idx] == pytest.approx(dust_ukcmb(dust[idx], 545.0, beta[idx], TEMP_K), rel=1e-12)
