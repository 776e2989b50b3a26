"""The pixel ILC baseline and the beam deconvolution shared by every classical method."""

import numpy as np

from dustcmb.separation.ilc import deconvolve_beams, ilc_cmb_uk, ilc_weights
from dustcmb.simulation.instrument import apply_beam, beam_transfer, mirror_filter
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


def test_ilc_weights_have_unit_cmb_response():
    """w·a = 1 with a = (1, 1, 1), with and without noise (measured to ≈ 1e-16; asserted to 1e-12)."""
    for noise in (0.0, 20.0):
        channels, *_ = _sky(5, noise_uk=noise)
        np.testing.assert_allclose(ilc_weights(channels).sum(axis=-1), 1.0, rtol=0, atol=1e-12)


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


PLANCK_FWHM = (7.3, 4.9, 4.8)  # arcmin, 143/353/545 GHz
PIXEL_64 = 18.75  # arcmin: 20° patches of 64²


def _beamed(sky: np.ndarray, fwhm=PLANCK_FWHM, pixel=PIXEL_64) -> np.ndarray:
    """Maps [n, N, N] observed through each beam: [n, C, N, N], as the simulator does it."""
    return np.stack([apply_beam(sky, f, pixel) for f in fwhm], axis=1)


def test_periodic_beam_filter_round_trip_is_exact():
    """On a periodic map no padding is needed: filtering by B_ℓ then 1/B_ℓ with margin 0 is the identity.

    Measured ≈ 2e-15 of the map rms (float64 FFT rounding); the 1e-12 tolerance leaves room for other FFTs.
    """
    x = gaussian_fields(lambda ell: ell**-2.5, 3, 64, 20.0, seed=5)
    for fwhm in PLANCK_FWHM:
        beamed = mirror_filter(x, lambda ell, f=fwhm: beam_transfer(ell, f), 0, PIXEL_64)
        back = mirror_filter(beamed, lambda ell, f=fwhm: 1.0 / beam_transfer(ell, f), 0, PIXEL_64)
        np.testing.assert_allclose(back, x, atol=1e-12 * x.std())


def test_deconvolution_inverts_the_forward_beam_on_a_periodic_map():
    """apply_beam (mirror-padded) then deconvolve_beams returns a periodic map everywhere, edges included.

    The padded division alone leaves ≈ 1.3e-3 of the rms (the Nyquist-cut beam kernel rings past the
    2-pixel margin); refinement brings it to ≈ 5e-14. Tolerances: 5e-3 and 1e-8.
    """
    x = gaussian_fields(lambda ell: ell**-2.5, 3, 64, 20.0, seed=5)
    beamed = _beamed(x)
    once = deconvolve_beams(beamed, PLANCK_FWHM, PIXEL_64, max_refine=0)
    np.testing.assert_allclose(once, np.repeat(x[:, None], 3, axis=1), atol=5e-3 * x.std())
    back = deconvolve_beams(beamed, PLANCK_FWHM, PIXEL_64)
    np.testing.assert_allclose(back, np.repeat(x[:, None], 3, axis=1), atol=1e-8 * x.std())


def test_mirror_padded_deconvolution_beats_the_periodic_one_on_a_crop():
    """A non-periodic crop of a larger ℓ⁻²·⁵ field, 7.3′ beam at 18.75′ pixels (64²).

    Measured, in units of the map rms: the unpadded (periodic) division errs by ≈ 0.15 at the edges
    and ≈ 2.5e-3 inside a 4-pixel border; the mirror-padded division alone by ≈ 3e-3 and ≈ 4e-4;
    with refinement by ≈ 1e-13 everywhere. Asserted: padded ≥ 10× better than unpadded at the
    edges, padded alone < 1e-3 in the interior and < 1e-2 everywhere, refined < 1e-8 everywhere.
    """
    big = gaussian_fields(lambda ell: ell**-2.5, 4, 256, 80.0, seed=6)
    x = big[:, 10:74, 20:84]
    scale = x.std()
    beamed = _beamed(x, (7.3,))
    unpadded = mirror_filter(beamed[:, 0], lambda ell: 1.0 / beam_transfer(ell, 7.3), 0, PIXEL_64)
    padded = deconvolve_beams(beamed, (7.3,), PIXEL_64, max_refine=0)[:, 0]
    refined = deconvolve_beams(beamed, (7.3,), PIXEL_64)[:, 0]
    core = (slice(None), slice(4, -4), slice(4, -4))
    err_unpadded, err_padded = np.abs(unpadded - x), np.abs(padded - x)
    assert err_padded.max() * 10 < err_unpadded.max()
    assert err_padded[core].max() < 1e-3 * scale and err_padded.max() < 1e-2 * scale
    assert np.abs(refined - x).max() < 1e-8 * scale


def test_deconvolution_leaves_beamless_channels_alone():
    """A 0 FWHM channel is returned as it is (in float64), next to deconvolved ones."""
    x = gaussian_fields(lambda ell: ell**-2.5, 2, 32, SIZE, seed=7)
    beamed = np.stack([apply_beam(x, 20.0, SIZE * 60 / NPIX), x], axis=1).astype(np.float32)
    back = deconvolve_beams(beamed, (20.0, 0.0), SIZE * 60 / NPIX)
    assert back.dtype == np.float64
    np.testing.assert_array_equal(back[:, 1], beamed[:, 1])
    np.testing.assert_allclose(back[:, 0], x, atol=1e-5 * x.std())  # float32 inputs: measured 1.3e-7


def test_a_batch_deconvolves_every_map_as_well_as_alone():
    """Training deconvolves whole batches; a map 10⁶× fainter than its neighbour (a red crop next to
    white noise) must still reach the refinement tolerance on its own scale. Asserted: batched and
    single-map results agree to 1e-8 of each map's rms (the tolerance REFINE_RTOL = 1e-8 of its peak)."""
    red = gaussian_fields(lambda ell: ell**-2.5, 1, 256, 80.0, seed=8)[:, 10:74, 20:84]
    white = 1e-6 * np.random.default_rng(9).standard_normal((1, 64, 64))
    maps = np.concatenate([red, white])
    beamed = _beamed(maps, (7.3,))
    batched = deconvolve_beams(beamed, (7.3,), PIXEL_64)[:, 0]
    for i, x in enumerate(maps):
        alone = deconvolve_beams(beamed[i:i + 1], (7.3,), PIXEL_64)[0, 0]
        np.testing.assert_allclose(batched[i], alone, rtol=0, atol=1e-8 * x.std())
        np.testing.assert_allclose(batched[i], x, rtol=0, atol=1e-6 * x.std())
