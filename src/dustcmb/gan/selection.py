"""How a training run scores its checkpoints (docs/science.md#gan-architecture): d_F, and morphology.

d_F compares only the power spectra of real and generated maps, so on its own it cannot tell a
generator of Gaussian blobs from one of filaments with the same spectrum. ``selection: d_F+minkowski``
adds a morphology term, :func:`minkowski_distance`, computed on the same generated maps against the
*training* patches: the selection never looks at held-out sky, and the evaluation stage reports on the
held-out region whether what was selected generalises. ``d_F+minkowski+borders`` also asks that the
mean border strips match the real ones, :func:`frame_distance` ≤ :data:`FRAME_DETECTED`: a step whose
frame is detected loses to any whose frame is not, and the score decides within each kind. The
spectrum's window hides the outer strips from d_F, and whether a step has the real borders' roughness
varies from step to step even when the discriminator sees them. A constraint rather than a third term,
because at the scale of the other terms (one map's scatter) a frame the mean of hundreds of maps
detects is worth ~0.01, and at its own scale (the standard error of that mean) it would outweigh them.
``d_F+minkowski+artefacts`` adds a second constraint, the grain test's :func:`grain_ratio` ≤
:data:`GRAIN_DETECTED`, because a step chosen for its borders alone can carry pixel-scale hatching
that neither d_F nor the Minkowski term sees.
"""

from __future__ import annotations

import numpy as np

from dustcmb.patches.normalise import from_unit
from dustcmb.stats.borders import border_contrast
from dustcmb.stats.frechet import spectra_frechet_distance
from dustcmb.stats.minkowski import minkowski
from dustcmb.stats.power import beyond_band_power, power_spectrum


def log10_spectra_distance(fake_unit: np.ndarray, real_cl: np.ndarray, meta: dict) -> float:
    """d_F between real and generated log10 C_ℓ of MJy/sr maps (``inf`` if a bin has no power).

    Parameters
    ----------
    fake_unit : ndarray [n, N, N]
        Generated maps in the unit domain.
    real_cl : ndarray [n_real, n_bins]
        ``C_ℓ`` of the real maps [(MJy/sr)² sr].
    meta : dict
        The patch set's ``log_min``, ``log_max`` and ``size_deg``.
    """
    _, fake_cl = power_spectrum(from_unit(fake_unit, meta["log_min"], meta["log_max"]), meta["size_deg"])
    if not np.all(fake_cl > 0):  # saturated, constant maps
        return float("inf")
    return spectra_frechet_distance(real_cl, fake_cl)


SELECTION_THRESHOLDS = np.linspace(-0.9, 0.9, 19)  # unit domain; the extremes hold almost no pixels


def minkowski_moments(unit_maps: np.ndarray) -> np.ndarray:
    """Mean and std over maps of V0, V1, V2 [2, 3, T] at :data:`SELECTION_THRESHOLDS`."""
    v = np.stack(minkowski(unit_maps, SELECTION_THRESHOLDS))  # [3, n, T]
    return np.stack([v.mean(axis=1), v.std(axis=1)])


def minkowski_distance(real: np.ndarray, fake_unit: np.ndarray) -> float:
    """Mean over functionals and thresholds of ((⟨V⟩_fake − ⟨V⟩_real) / σ_real)², σ the real per-map std.

    0 when the generated set has the real mean morphology; 1 when it is off by one real map's scatter
    at every threshold. Thresholds where no real map varies are skipped.
    """
    fake_mean = minkowski_moments(fake_unit)[0]
    mean, std = real
    used = std > 0
    return float(np.mean(((fake_mean - mean)[used] / std[used]) ** 2))


FRAME_SELECTIONS = ("d_F+minkowski+borders", "d_F+minkowski+artefacts")  # selections with the frame constraint
FRAME_DETECTED = 4.0  # mean z² of the border statistics above which a frame counts as seen: 2 standard errors rms


def frame_moments(unit_maps: np.ndarray) -> np.ndarray:
    """Mean and std over maps [2, 2, n_strips] of the border strips' ln gradient ratio and level contrast
    (:func:`~dustcmb.stats.borders.border_contrast`; unit domain)."""
    contrast = border_contrast(unit_maps)
    contrast[:, 0] = np.log(contrast[:, 0])  # ratios: symmetric in ln, like the discriminator's features
    return np.stack([contrast.mean(axis=0), contrast.std(axis=0)])


def frame_distance(real: np.ndarray, n_real: int, fake_unit: np.ndarray) -> float:
    """Mean over strips and both statistics of z², ``z = (⟨b⟩_fake − ⟨b⟩_real) / (σ_real √(1/n_fake + 1/n_real))``.

    Unlike :func:`minkowski_distance` the unit is the standard error of the means, not one map's
    scatter: a frame a few per cent smoother than the interior is invisible in one map but shows in the
    mean over hundreds, which is what the evaluation's frame test measures. About 1 for a generator
    with the real borders; above :data:`FRAME_DETECTED` the frame is detected.
    """
    mean, std = real
    error = std * np.sqrt(1.0 / len(fake_unit) + 1.0 / n_real)
    return float(np.mean(((frame_moments(fake_unit)[0] - mean) / error) ** 2))


GRAIN_DETECTED = 1.25  # grain_ratio above which grain counts as seen (band-limited baselines, grain-free: 1.18-1.22)


def grain_ratio(real_mean: np.ndarray, fake_unit: np.ndarray, size_deg: float) -> float:
    """The evaluation's grain test: the larger over the two regions above the reported rings of the
    generated maps' mean :func:`~dustcmb.stats.power.beyond_band_power` over ``real_mean`` (that of the
    real maps, [2]); 1 for a generator band-limited like the sky."""
    return float(np.max(beyond_band_power(fake_unit, size_deg).mean(axis=0) / real_mean))
