"""Per-set statistics and the scores that compare a candidate set of dust maps with the real one.

Each set's per-map statistics are computed once (pixel histograms, spectra, Minkowski functionals,
the artefact statistics of :mod:`dustcmb.evaluation.artefacts`);
resampled sets are weighted sums of those rows, so a (block) bootstrap never recomputes a statistic
from maps. Real patches overlap, so they are resampled by sky region (docs/science.md#generator-statistics).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from dustcmb.config import GanEvalConfig
from dustcmb.errors import ConfigError
from dustcmb.evaluation.artefacts import anisotropy, isotropic_average
from dustcmb.seeding import Stream, derived_seed
from dustcmb.stats import (
    beyond_band_power,
    border_contrast,
    histogram_counts,
    intersection,
    minkowski,
    power_spectrum,
    resample_weights,
    spectra_frechet_distance,
    summarise,
)

UNIT_RANGE = (-1.0, 1.0)
NN_CHUNK = 128  # query maps per distance block (x 8 symmetries)
IN_BAND_Z = 1.96  # two-sided 95 % agreement of two set means


@dataclasses.dataclass(frozen=True)
class MapSet:
    """One set of maps and its per-map statistics (computed once; the bootstrap resamples rows).

    Attributes
    ----------
    name, label : str
        Key in ``metrics/gan.json`` and legend label.
    unit : numpy.ndarray [n, N, N]
        Maps in the unit domain.
    cl : numpy.ndarray [n, n_bins]
        ``C_ℓ`` of the maps in MJy/sr, (MJy/sr)² sr.
    hist : numpy.ndarray [n, hist_bins]
        Pixel counts per map on ``[-1, 1]``.
    mink : numpy.ndarray [n, 3, n_thresholds]
        V0 [1], V1 [1/px], V2 [1/px²] per map.
    anisotropy : numpy.ndarray [n, n_bands, 4]
        Power in the two axis and two diagonal wedges over the isotropic expectation per band [1]
        (:func:`dustcmb.evaluation.artefacts.anisotropy`), unit domain.
    border : numpy.ndarray [n, 2, n_strips]
        Border-strip gradient rms ratio [1] and level offset [u]
        (:func:`dustcmb.evaluation.artefacts.border_contrast`), unit domain.
    grain : numpy.ndarray [n, 2]
        Power above the reported rings over that of the top anisotropy band [1]
        (:func:`dustcmb.stats.power.beyond_band_power`), unit domain.
    groups : numpy.ndarray [n]
        Bootstrap group of each map: its sky region for real patches (which overlap), its own index
        for independent draws (generated and baseline maps).
    """

    name: str
    label: str
    unit: np.ndarray
    cl: np.ndarray
    hist: np.ndarray
    mink: np.ndarray
    anisotropy: np.ndarray
    border: np.ndarray
    grain: np.ndarray
    groups: np.ndarray


def thresholds(cfg: GanEvalConfig) -> np.ndarray:
    """Minkowski thresholds ν, evenly spaced over the unit domain ``[-1, 1]``."""
    return np.linspace(*UNIT_RANGE, cfg.n_thresholds)


def measure(name: str, label: str, unit: np.ndarray, mjysr: np.ndarray, size_deg: float,
            cfg: GanEvalConfig, groups: np.ndarray | None = None, isotropise: bool = False) -> MapSet:
    """Per-map statistics of one set (pixel histograms, spectra, Minkowski functionals, artefacts).

    Unit-domain values outside [-1, 1] (baseline tails, held-out sky beyond the training range) are
    clipped to it, so they land in the edge bins and above/below every threshold. With ``isotropise``
    the anisotropy rows are those of the set in all 8 rotations and flips
    (:func:`~dustcmb.evaluation.artefacts.isotropic_average`): for sky patches, which the GAN learns in
    random orientations, so that the sky's own preferred directions are not asked of it.
    """
    unit = np.clip(unit, *UNIT_RANGE)
    _, cl = power_spectrum(mjysr, size_deg)
    v0, v1, v2 = minkowski(unit, thresholds(cfg), progress=True)
    groups = np.arange(len(unit)) if groups is None else np.asarray(groups)
    wedges = anisotropy(unit, size_deg)
    wedges = isotropic_average(wedges) if isotropise else wedges
    return MapSet(name, label, unit, cl, histogram_counts(unit, cfg.hist_bins, UNIT_RANGE),
                  np.stack([v0, v1, v2], axis=1), wedges, border_contrast(unit),
                  beyond_band_power(unit, size_deg), groups)


def subset(mapset: MapSet, rows: np.ndarray) -> MapSet:
    """The maps ``rows`` of a set, with their per-map statistics."""
    return dataclasses.replace(mapset, **{field.name: getattr(mapset, field.name)[rows]
                                          for field in dataclasses.fields(mapset)
                                          if isinstance(getattr(mapset, field.name), np.ndarray)})


def set_means(mapset: MapSet, cfg: GanEvalConfig, seed: int) -> dict:
    """Block bootstrap of the set means of pixel density, ``log10 C_ℓ``, V0, V1, V2 and the artefacts.

    Groups (sky regions for real patches) are resampled, not maps; one set of resamples for all
    statistics.

    Returns
    -------
    dict of BootstrapResult
        ``pdf`` [hist_bins] (pixel density per unit of u), ``log_cl`` [n_bins], ``v0``, ``v1``, ``v2``
        [n_thresholds], ``anisotropy`` [n_bands · 4], ``border`` [2 · n_strips] (flattened) and
        ``grain`` [2].
    """
    npix_map = mapset.unit.shape[-1] * mapset.unit.shape[-2]
    density = mapset.hist / (npix_map * (UNIT_RANGE[1] - UNIT_RANGE[0]) / cfg.hist_bins)
    parts = {"pdf": density, "log_cl": np.log10(mapset.cl), **{f"v{k}": mapset.mink[:, k] for k in range(3)},
             "anisotropy": mapset.anisotropy, "border": mapset.border, "grain": mapset.grain}
    weights = resample_weights(mapset.groups, cfg.n_bootstrap, seed)
    weights /= weights.sum(axis=1, keepdims=True)
    return {key: summarise(weights @ value.reshape(len(value), -1)) for key, value in parts.items()}


def in_band(real, other, z: float = IN_BAND_Z) -> float:
    """Fraction of entries where the two sets' means agree within ``z`` combined bootstrap errors.

    Both sets' sampling errors count: ``|m_other − m_real| ≤ z √(σ_real² + σ_other²)``, so two sets
    drawn from the same sky score the nominal 95 % (calibrated on sky-disjoint real halves).
    """
    return float(np.mean(np.abs(other.mean - real.mean) <= z * np.hypot(real.std, other.std)))


def bootstrap_intersection(real: MapSet, other: MapSet, counts: tuple[np.ndarray, np.ndarray],
                           cfg: GanEvalConfig, seed: int) -> tuple[float, float]:
    """Mean and std over (block) bootstrap draws of the intersection of the two sets' histograms.

    Resampled sets differ in size under the block bootstrap, so each histogram is normalised first.
    """
    pooled = []
    for k, (mapset, rows) in enumerate(zip((real, other), counts)):
        summed = resample_weights(mapset.groups, cfg.n_bootstrap, seed + k) @ rows
        pooled.append(summed / summed.sum(axis=1, keepdims=True))
    values = intersection(*pooled)
    return float(values.mean()), float(values.std(ddof=1))


def slice_indices(ell: np.ndarray, cfg: GanEvalConfig) -> list[int]:
    """Spectrum bins nearest to ``cfg.slice_ells``; a multipole beyond Nyquist is a config error."""
    too_high = [e for e in cfg.slice_ells if e > ell[-1] * 1.0001]
    if too_high:
        raise ConfigError(f"gan_eval.slice_ells {too_high} exceed the patches' Nyquist multipole "
                          f"{ell[-1]:.0f}; choose multipoles between {ell[0]:.0f} and {ell[-1]:.0f}")
    return [int(np.argmin(np.abs(ell - e))) for e in cfg.slice_ells]


def power_slice_intersections(real: MapSet, other: MapSet, ell: np.ndarray, cfg: GanEvalConfig,
                              seed: int) -> dict[str, float]:
    """Bootstrap-mean intersection of ``log10 C_ℓ`` histograms at each slice multipole (common bins)."""
    out = {}
    for j in slice_indices(ell, cfg):
        a, b = np.log10(real.cl[:, j]), np.log10(other.cl[:, j])
        value_range = (min(a.min(), b.min()), max(a.max(), b.max()))
        counts = tuple(histogram_counts(x[:, None], cfg.slice_bins, value_range) for x in (a, b))
        out[f"ell_{ell[j]:.0f}"] = bootstrap_intersection(real, other, counts, cfg, seed)[0]
    return out


def symmetries(maps: np.ndarray) -> np.ndarray:
    """The 8 rotations/flips of each map, [8, B, N, N] (training augments real maps with them).

    numpy, not torch: ``torch.flip`` on CPU is ~50x slower here.
    """
    turns = [np.rot90(maps, k, axes=(-2, -1)) for k in range(4)]
    return np.stack(turns + [t[..., ::-1] for t in turns])


def nearest_neighbour_distances(queries: np.ndarray, reference: np.ndarray, device: str,
                                leave_one_out: bool = False) -> np.ndarray:
    """RMS pixel difference [u] between each query map and its nearest reference map.

    Each query is compared in all 8 orientations, so a rotated or mirrored copy of a training map
    counts as a copy. With ``leave_one_out`` the queries are the reference set and map ``i`` is not
    its own neighbour.
    """
    ref = torch.as_tensor(reference, dtype=torch.float32, device=device).flatten(1)
    ref_sq = (ref**2).sum(1)
    out = np.empty(len(queries))
    for start in range(0, len(queries), NN_CHUNK):
        block = np.asarray(queries[start:start + NN_CHUNK], dtype=np.float32)
        q = torch.as_tensor(symmetries(block), device=device).flatten(2)  # [8, B, P]
        dist_sq = (q**2).sum(-1, keepdim=True) + ref_sq - 2.0 * q @ ref.T  # [8, B, n_ref]
        if leave_one_out:
            rows = torch.arange(len(block), device=device)
            dist_sq[:, rows, start + rows] = float("inf")
        out[start:start + len(block)] = dist_sq.amin(dim=(0, 2)).clamp_min(0).cpu().numpy()
    return np.sqrt(out / ref.shape[1])


def score(real: MapSet, other: MapSet, means: dict, ell: np.ndarray, nn_real: np.ndarray,
          device: str, cfg: GanEvalConfig, seed: int, index: int) -> tuple[dict, np.ndarray]:
    """All statistics of one candidate set against the real one, and its gen→real NN distances."""
    inter_seed = derived_seed(seed, Stream.GAN_EVAL_INTERSECTION + index)
    hi_mean, hi_std = bootstrap_intersection(real, other, (real.hist, other.hist), cfg, inter_seed)
    nn_other = nearest_neighbour_distances(other.unit, real.unit, device)
    metrics = {
        "frechet_distance": spectra_frechet_distance(real.cl, other.cl),
        "histogram_intersection": hi_mean,
        "histogram_intersection_std": hi_std,
        "spectrum_in_band": in_band(means[real.name]["log_cl"], means[other.name]["log_cl"]),
        "power_slices": power_slice_intersections(real, other, ell, cfg, inter_seed),
        "nearest_neighbour_ratio": float(np.median(nn_other) / np.median(nn_real)),
        # the grain test: mean power above the reported rings over the real set's, the larger of the two
        # regions (1 for a set as band-limited as the sky)
        "grain_power_ratio": float(np.max(means[other.name]["grain"].mean / means[real.name]["grain"].mean)),
    }
    return metrics | band_scores(means[real.name], means[other.name]), nn_other


def band_scores(real: dict, other: dict) -> dict[str, float]:
    """:func:`in_band` of V0, V1, V2 and of the artefact statistics, from two sets' :func:`set_means`."""
    return {**{f"minkowski_v{k}_in_band": in_band(real[f"v{k}"], other[f"v{k}"]) for k in range(3)},
            "anisotropy_in_band": in_band(real["anisotropy"], other["anisotropy"]),
            "border_in_band": in_band(real["border"], other["border"])}


def floor_and_calibration(real: MapSet, halves: tuple[np.ndarray, np.ndarray], n_generated: int,
                          cfg: GanEvalConfig, seed: int) -> dict:
    """Real-vs-real d_F on sky-disjoint halves, scaled to the GAN comparison's set sizes, the in-band
    scores of one half against the other (calibration: nominal 0.95), and the pixel-histogram
    intersection of the real set with itself under two independent block bootstraps: what the
    intersection of a set that draws exactly the real maps reads, below 1 because sky regions are few.

    The finite-sample part of d_F grows as ``1/n_a + 1/n_b`` (the mean term's expectation under the
    null is ``tr Σ (1/n_a + 1/n_b)``), so the halves' value is multiplied by
    ``(1/n_real + 1/n_generated) / (1/n_A + 1/n_B)`` to put it on the GAN comparison's footing.
    """
    a, b = (subset(real, h) for h in halves)
    raw = spectra_frechet_distance(a.cl, b.cl)
    scale = (1 / len(real.cl) + 1 / n_generated) / (1 / len(a.cl) + 1 / len(b.cl))
    means_a = set_means(a, cfg, derived_seed(seed, Stream.GAN_EVAL_HALVES))
    means_b = set_means(b, cfg, derived_seed(seed, Stream.GAN_EVAL_HALVES) + 1)
    calibration = {"spectrum_in_band": in_band(means_a["log_cl"], means_b["log_cl"]), **band_scores(means_a, means_b)}
    ceiling, ceiling_std = bootstrap_intersection(real, real, (real.hist, real.hist), cfg,
                                                  derived_seed(seed, Stream.GAN_EVAL_HALVES) + 2)
    return {"frechet_distance_real_halves": raw, "frechet_floor": raw * scale,
            "real_halves_sizes": [len(a.cl), len(b.cl)], "in_band_calibration": calibration,
            "histogram_intersection_real": ceiling, "histogram_intersection_real_std": ceiling_std}
