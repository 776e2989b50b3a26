"""Artefact statistics against truth: isotropic crops read isotropic, planted streaks and frames are caught.

Truth fields are Gaussian, drawn periodic on twice the patch side and cropped to one 64² patch of 20°
(non-periodic, like the sky), with red spectra C_ℓ ∝ ℓ^-2.5 … ℓ^-3. A statistic "catches" an
artefact when the set of maps carrying it falls outside the band of a clean set in
:func:`dustcmb.evaluation.gan_scores.in_band` (σ of each set mean from the spread over its maps: the
maps are independent).
"""

from types import SimpleNamespace

import numpy as np
import pytest

from dustcmb.evaluation.artefacts import (
    WEDGE_HALF_WIDTH_DEG,
    anisotropy,
    isotropic_average,
)
from dustcmb.evaluation.gan_scores import in_band
from dustcmb.patches.cutter import lowpass_profile
from dustcmb.stats.borders import border_contrast
from dustcmb.stats.power import anisotropy_bands, beyond_band_power
from fields import mode_ell

SIZE_DEG, NPIX, PAD = 20.0, 64, 2


def red(slope: float):
    return lambda ell: (ell / 100.0) ** slope


def crops(spectrum, n: int, seed: int, quadrupole: float = 0.0) -> np.ndarray:
    """``n`` NPIX² crops of periodic fields PAD × larger, spectrum ``C(ℓ) (1 + quadrupole · cos 4θ)``.

    ``θ`` is the direction of the wave vector: a positive ``quadrupole`` puts more power along the
    axes and less along the diagonals, with the 8 symmetries of the grid.
    """
    big = NPIX * PAD
    ell = mode_ell(big, SIZE_DEG * PAD)
    theta = np.arctan2(np.fft.fftfreq(big, 1 / big)[:, None], np.fft.rfftfreq(big, 1 / big)[None, :])
    power = np.zeros_like(ell)
    power[ell > 0] = spectrum(ell[ell > 0]) * (1 + quadrupole * np.cos(4 * theta[ell > 0]))
    noise = np.fft.rfft2(np.random.default_rng(seed).standard_normal((n, big, big)))
    return np.fft.irfft2(noise * np.sqrt(power), s=(big, big))[:, :NPIX, :NPIX]


def set_mean(rows: np.ndarray) -> SimpleNamespace:
    """Mean over independent maps and its standard error, flattened like the evaluation's set means."""
    flat = rows.reshape(len(rows), -1)
    return SimpleNamespace(mean=flat.mean(0), std=flat.std(0, ddof=1) / np.sqrt(len(flat)))


@pytest.fixture(scope="module")
def clean():
    """Two independent sets of 512 isotropic ℓ^-2.75 crops."""
    return crops(red(-2.75), 512, seed=1), crops(red(-2.75), 512, seed=2)


@pytest.mark.parametrize("slope", [-2.5, -3.0])
def test_isotropic_crops_read_isotropic_and_frameless(slope):
    """1024 crops: every anisotropy bin within 0.05 of 1, border gradient ratios within 0.01 of 1,
    level offsets within 5 % of the map rms of 0.

    Anisotropy: σ of the mean is 0.016 in the lowest band (8 modes per wedge) and ≤ 0.01 above;
    measured deviations ≤ 0.026 (the lowest band, a ratio of two noisy sums, also carries a small
    estimator bias), so 0.05 leaves 3σ. Border: σ of the mean gradient ratio is 0.0017 and its bias (the mean
    of a square root of a ratio) < 0.002, so 0.01 leaves 4σ; the level offset's σ is 1.5 % of the
    map rms (large scales), so 5 % leaves over 3σ.
    """
    maps = crops(red(slope), 1024, seed=3)
    ratio = anisotropy(maps, SIZE_DEG)
    assert ratio.shape == (1024, 4, 4)
    assert np.abs(ratio.mean(0) - 1).max() < 0.05, np.round(ratio.mean(0), 3)
    border = border_contrast(maps).mean(0)
    assert np.abs(border[0] - 1).max() < 0.01, np.round(border[0], 4)
    assert np.abs(border[1]).max() < 0.05 * maps.std(), np.round(border[1] / maps.std(), 4)


def _predicted_wedges(quadrupole: float) -> np.ndarray:
    """Wedge power over the ring-average expectation for ``1 + q cos 4θ``, from the grid's modes, [band, wedge]:
    the ``k_x`` axis, the ``k_y`` axis, the diagonal and the anti-diagonal."""
    k = np.fft.fftfreq(NPIX, 1 / NPIX)
    ky, kx = k[:, None], k[None, :]
    ring, theta = np.rint(np.hypot(ky, kx)), np.arctan2(ky, kx)
    folded = np.degrees(np.arctan2(np.abs(ky), np.abs(kx)))
    modulation = 1 + quadrupole * np.cos(4 * theta)
    ring_mean = {r: modulation[ring == r].mean() for r in np.unique(ring)}
    axes, diagonals = (np.minimum(folded, 90 - folded) <= WEDGE_HALF_WIDTH_DEG,
                       np.abs(folded - 45) <= WEDGE_HALF_WIDTH_DEG)
    wedges = (axes & (np.abs(ky) <= np.abs(kx)), axes & (np.abs(ky) > np.abs(kx)),
              diagonals & (kx * ky >= 0), diagonals & (kx * ky < 0))
    out = np.empty((len(anisotropy_bands(NPIX)), 4))
    for b, (first, last) in enumerate(anisotropy_bands(NPIX)):
        for w, wedge in enumerate(wedges):
            modes = wedge & (ring >= first) & (ring <= last)
            out[b, w] = modulation[modes].mean() / np.mean([ring_mean[r] for r in ring[modes]])
    return out


def test_an_anisotropic_spectrum_is_measured():
    """C_ℓ (1 + 0.3 cos 4θ): 1.25 along both axes, 0.75 along both diagonals, as the grid's modes predict.

    Bands 2–4 within 0.04 of the prediction (σ of the mean of 512 maps ≤ 0.008, bias ≤ 0.02). The
    window's kernel is a few modes wide and smooths the angular pattern most where a ring has fewest
    modes: the lowest band (rings 3–4) keeps at least half of the excess (measured: 0.18 of 0.25).
    """
    ratio = anisotropy(crops(red(-2.75), 512, seed=4, quadrupole=0.3), SIZE_DEG).mean(0)
    predicted = _predicted_wedges(0.3)
    np.testing.assert_allclose(ratio[1:], predicted[1:], atol=0.04)
    assert np.all(np.abs(ratio[0] - 1) > 0.5 * np.abs(predicted[0] - 1))
    assert np.all(np.sign(ratio[0] - 1) == [1, 1, -1, -1])


def _lines(n: int, diagonal: bool, seed: int) -> np.ndarray:
    """Four 1-px lines per map at random offsets: rows, or diagonals ``i + j = c`` through the centre."""
    rng = np.random.default_rng(seed)
    i, j = np.indices((NPIX, NPIX))
    position, span = (i + j, (NPIX // 2, 3 * NPIX // 2)) if diagonal else (i, (0, NPIX))
    offsets = rng.integers(*span, size=(n, 4))
    return (position[None, None] == offsets[:, :, None, None]).sum(1).astype(float)


@pytest.mark.parametrize("diagonal", [True, False], ids=["diagonal", "rows"])
def test_planted_streaks_are_caught(clean, diagonal):
    """Four lines of 0.5 × the map rms per map raise the wedge at right angles to them, and only that one.

    The clean sets agree with each other in at least 13 of the 16 bins (95 % each). With lines, the
    wedge the lines' power lands in (the diagonal k_x = k_y for lines i + j = c, the k_y axis for
    rows) reads > 1.05 in the top two bands (measured 1.27–1.95) and is outside the clean band in the top three bands
    (rings 5–24); the lowest band holds too few modes to tell. Its mirror wedge (the anti-diagonal;
    the k_x axis) stays below 1.05 there (measured 0.82–0.95): the statistic tells which way the streaks
    lean.
    """
    reference, other = clean
    streaky = other + 0.5 * other.std() * _lines(len(other), diagonal, seed=5)
    real, same, lines = (set_mean(anisotropy(m, SIZE_DEG)) for m in (reference, other, streaky))
    assert in_band(real, same) >= 13 / 16
    wedge, mirror = (2, 3) if diagonal else (1, 0)
    table = lines.mean.reshape(4, 4)
    assert np.all(table[2:, wedge] > 1.05) and np.all(table[2:, mirror] < 1.05), np.round(table, 3)
    raised = SimpleNamespace(mean=lines.mean[4 + wedge::4], std=lines.std[4 + wedge::4])
    assert in_band(SimpleNamespace(mean=real.mean[4 + wedge::4], std=real.std[4 + wedge::4]), raised) == 0


def test_maps_that_all_lean_one_way_are_caught_against_the_isotropised_sky(clean):
    """The GAN learns the sky in random orientations, so its reference is the sky's rows averaged over
    the 8 symmetries. A set whose maps all carry lines along i + j = c (leaning one way) falls outside
    that reference's band in its two diagonal wedges of the top two bands (measured 1.27–1.68 and
    0.88–0.95 against their average 1.11–1.28); the same maps each turned by a random one of the 8
    symmetries agree with it in at least 13 of 16 bins, like two clean sets (measured 16)."""
    _, other = clean
    leaning = other + 0.5 * other.std() * _lines(len(other), True, seed=5)
    rows = anisotropy(leaning, SIZE_DEG)
    reference = set_mean(isotropic_average(rows))
    table = set_mean(rows).mean.reshape(4, 4)
    diagonal = SimpleNamespace(mean=reference.mean.reshape(4, 4)[2:, 2:].ravel(),
                               std=reference.std.reshape(4, 4)[2:, 2:].ravel())
    leaned = SimpleNamespace(mean=set_mean(rows).mean.reshape(4, 4)[2:, 2:].ravel(),
                             std=set_mean(rows).std.reshape(4, 4)[2:, 2:].ravel())
    assert in_band(diagonal, leaned) == 0, np.round(table, 3)
    rng = np.random.default_rng(7)
    turned = np.stack([np.rot90(m.T if rng.integers(2) else m, rng.integers(4)) for m in leaning])
    assert in_band(reference, set_mean(anisotropy(turned, SIZE_DEG))) >= 13 / 16
    np.testing.assert_allclose(isotropic_average(rows)[..., 0], isotropic_average(rows)[..., 1])


def test_planted_frames_are_caught_in_pixel_space_and_missed_by_the_spectrum(clean):
    """A brighter or a noisier outer 2 px (0.2 × the map rms) is caught; the windowed spectrum misses it.

    Brighter: the level offsets of strips 0 and 1 rise by exactly the planted 0.2 rms and strips
    2–7 px do not move (to round-off); the step between pixel rows 1 and 2 raises the gradient of
    strip 1. Noisier: the gradient ratios of strips 0 and 1 rise (by ≈ 0.25 and 0.13) while strips
    2–7 px, whose cells do not touch the frame, do not move (the noise's own mean moves the level
    offsets of strips 0 and 1 a little). Both frames fall outside the clean band
    in every bin they raise, and the clean sets agree in at least 6 of 8 bins. The spectrum's
    window weighs the outer 2 px by < 0.03 in amplitude, so the set-mean anisotropy moves by less than
    a tenth of its standard error (measured ≤ 1e-4 against ≥ 0.003).
    """
    reference, other = clean
    depth = np.minimum.outer(*(2 * [np.minimum(np.arange(NPIX), np.arange(NPIX)[::-1])]))
    frame = (depth < 2) * 0.2 * other.std()
    noise = np.random.default_rng(6).standard_normal(other.shape)
    clean_rows, clean_spectral = border_contrast(other), set_mean(anisotropy(other, SIZE_DEG))
    real, same = set_mean(border_contrast(reference)), set_mean(clean_rows)
    assert in_band(real, same) >= 6 / 8
    # entries [statistic, strip]: gradient ratios 0–3, level offsets 4–7
    for name, framed, moved, caught in (("brighter", other + frame, [1, 4, 5], [1, 4, 5]),
                                        ("noisier", other + frame * noise, [0, 1, 4, 5], [0, 1])):
        rows = border_contrast(framed)
        assert (np.abs(rows - clean_rows).max(0) > 1e-9).ravel().nonzero()[0].tolist() == moved, name
        picked = set_mean(rows)
        assert in_band(SimpleNamespace(mean=real.mean[caught], std=real.std[caught]),
                       SimpleNamespace(mean=picked.mean[caught], std=picked.std[caught])) == 0, name
        blind = set_mean(anisotropy(framed, SIZE_DEG))
        assert np.all(np.abs(blind.mean - clean_spectral.mean) < 0.1 * clean_spectral.std), name
    level = border_contrast(other + frame)[:, 1] - clean_rows[:, 1]
    np.testing.assert_allclose(level[:, :2], 0.2 * other.std(), rtol=1e-9)


def test_border_contrast_rejects_maps_without_an_interior():
    with pytest.raises(ValueError):
        border_contrast(np.zeros((17, 17)))


def test_beyond_band_power_is_1_for_white_noise_and_sees_grain_on_a_band_limited_red_sky():
    """Truth cases for the grain test. White noise has equal power in every mode, so both regions read
    1 (5 %: 64 maps, ~10^5 modes per region, with the window's correlation between neighbouring
    modes). A red field (ℓ^-3) band-limited like the patches (the cutter's window on the periodic
    256² grid, then non-periodic 64² crops) has no power in the corners beyond ℓ_Nyq: the
    prewhitened estimator reads < 1e-3 there (7.7e-6 measured: the window leaks almost nothing), and
    white pixel noise of 2 % of the field's rms raises the corners by more than 100× (3000× measured)."""
    rng = np.random.default_rng(0)
    white = beyond_band_power(rng.standard_normal((64, NPIX, NPIX)), SIZE_DEG).mean(axis=0)
    np.testing.assert_allclose(white, 1.0, rtol=0.05)
    side = 4 * NPIX
    k = np.fft.fftfreq(side, 1.0 / side)
    kabs = np.hypot(k[:, None], k[None, :])
    amplitude = np.where(kabs > 0, np.maximum(kabs, 1.0) ** -1.5, 0.0) * lowpass_profile(kabs / (side / 2))
    fields = np.fft.ifft2(np.fft.fft2(rng.standard_normal((16, side, side))) * amplitude).real
    crops = np.concatenate([fields[:, i:i + NPIX, j:j + NPIX] for i in (0, 2 * NPIX) for j in (0, 2 * NPIX)])
    clean = beyond_band_power(crops, SIZE_DEG).mean(axis=0)
    grainy = beyond_band_power(crops + 0.02 * crops.std() * rng.standard_normal(crops.shape), SIZE_DEG).mean(axis=0)
    assert clean[1] < 1e-3
    assert grainy[1] > 100 * clean[1] and grainy[0] > clean[0]
