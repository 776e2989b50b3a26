"""The ILC baseline: unit CMB response, minimum variance, exact physics of the noiseless case."""

import numpy as np

from dustcmb.separation.ilc import deconvolve_beams, ilc_cmb_uk, ilc_weights
from dustcmb.simulation.instrument import apply_beam
from dustcmb.simulation.sed import dust_kcmb_ratio
from fields import gaussian_fields

NPIX, SIZE = 32, 20.0
FREQS = (143.0, 353.0, 545.0)


def _sky(n: int, noise_uk: float = 0.0):
    """CMB-like (C_ℓ ∝ ℓ⁻², 100 µK rms) + dust (fixed SED, µK_CMB at 353 GHz) + white noise, per channel."""
    cmb = gaussian_fields(lambda ell: 1e3 * ell**-2.0, n, NPIX, SIZE, seed=1)
    cmb *= 100.0 / cmb.std()
    dust353 = gaussian_fields(lambda ell: ell**-2.5, n, NPIX, SIZE, seed=2)
    dust353 = 300.0 * np.exp(0.5 * dust353 / dust353.std())
    sed = np.array([dust_kcmb_ratio(f, 1.53, 19.6) for f in FREQS])
    noise = noise_uk * np.random.default_rng(3).standard_normal((n, len(FREQS), NPIX, NPIX))
    channels = cmb[:, None] + sed[None, :, None, None] * dust353[:, None] + noise
    return channels.astype(np.float32), cmb, dust353, sed


def test_noiseless_ilc_residual_is_the_dust_template():
    """No noise, fixed SED: the ILC keeps the CMB exactly and its residual is a multiple of the dust map.

    That multiple is ILC's chance-correlation bias (−cov(CMB, dust)/var(dust) of the patch), not zero.
    """
    channels, cmb, dust, sed = _sky(4)
    w = ilc_weights(channels)
    np.testing.assert_allclose(w.sum(axis=-1), 1.0, rtol=1e-9)
    residual = ilc_cmb_uk(channels, (0.0,) * 3, SIZE * 60 / NPIX) - cmb
    for r, d, c in zip(residual, dust, cmb):
        dc, cc = d - d.mean(), c - c.mean()
        bias = -(dc * cc).mean() / (dc**2).mean()
        np.testing.assert_allclose(r - r.mean(), bias * dc, atol=1e-3 * cmb.std())  # float32 inputs


def test_ilc_is_minimum_variance_among_unit_response_weights():
    channels, *_ = _sky(3, noise_uk=20.0)
    out = ilc_cmb_uk(channels, (0.0,) * 3, SIZE * 60 / NPIX)
    rng = np.random.default_rng(0)
    for i in range(3):
        for _ in range(20):
            w = rng.normal(size=3)
            w /= w.sum()
            other = np.einsum("c,cij->ij", w, channels[i].astype(np.float64))
            assert out[i].var() <= other.var() * (1 + 1e-9)


def test_beam_deconvolution_restores_a_smooth_map():
    """Beam then deconvolution returns a smooth map away from the edges.

    The beam is applied with a mirror-extended FFT, the deconvolution with a periodic one, so the
    outer pixels differ (the patch is not periodic); inside a 4-pixel border they agree to 1 %.
    """
    smooth = gaussian_fields(lambda ell: np.exp(-(ell / 60.0) ** 2), 2, NPIX, SIZE, seed=4)
    beamed = np.stack([apply_beam(smooth, 30.0, SIZE * 60 / NPIX)] * 3, axis=1)
    back = deconvolve_beams(beamed, (30.0, 30.0, 30.0), SIZE * 60 / NPIX)
    core = (slice(None), slice(4, -4), slice(4, -4))
    np.testing.assert_allclose(back[:, 0][core], smooth[core], atol=1e-2 * smooth.std())
