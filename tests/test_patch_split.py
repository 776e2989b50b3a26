"""Sky-region splits: exact footprints, no shared sky across splits, sizes, determinism, paper scheme."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dustcmb.config import PatchConfig, SplitConfig
from dustcmb.patches import split
from dustcmb.patches.footprint import overlap_matrix, tangent_basis
from dustcmb.patches.grid import patch_centres

SIZE = 20.0
LON, LAT = patch_centres(5.0, 25.0)


def _sampled_points(i: int, n: int = 61) -> np.ndarray:
    """Unit vectors on an n×n grid over patch ``i``'s tangent-plane square, edges included."""
    centre, east, north = (v[i] for v in tangent_basis(LON, LAT))
    h = math.radians(SIZE) / 2
    x, y = np.meshgrid(np.linspace(-h, h, n), np.linspace(-h, h, n))
    v = centre + x[..., None] * east + y[..., None] * north
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).reshape(-1, 3)


def _inside(points: np.ndarray, j: int) -> np.ndarray:
    centre, east, north = (v[j] for v in tangent_basis(LON, LAT))
    depth = points @ centre
    h = math.radians(SIZE) / 2
    return (depth > 0) & (np.abs(points @ east) <= h * depth) & (np.abs(points @ north) <= h * depth)


def _sampled_overlap(i: int, j: int) -> bool:
    """Brute force: does any sampled point of one footprint fall inside the other?"""
    return bool(_inside(_sampled_points(i), j).any() or _inside(_sampled_points(j), i).any())


def test_exact_footprint_overlap_matches_brute_force_sampling():
    """On every near pair of one latitude band, the exact test agrees with dense sampling.

    Sampling at 61² points (0.33° apart) can miss overlaps thinner than that, so pairs whose verdict
    changes when the footprints grow or shrink by 0.4° on each side are borderline and skipped.
    """
    band = np.flatnonzero((LAT >= 35) & (LAT <= 55) & (LON < 90))
    exact = overlap_matrix(LON, LAT, SIZE)
    grown, shrunk = overlap_matrix(LON, LAT, SIZE, 0.4), overlap_matrix(LON, LAT, SIZE, -0.4)
    checked = 0
    for a, i in enumerate(band):
        for j in band[a + 1:]:
            if grown[i, j] != shrunk[i, j]:
                continue
            assert exact[i, j] == _sampled_overlap(i, j), (LON[i], LAT[i], LON[j], LAT[j])
            checked += 1
    assert checked > 300 and exact[np.ix_(band, band)].any() and not exact[np.ix_(band, band)].all()


def test_default_split_holds_out_disjoint_sky_in_both_hemispheres():
    labels = split.region_split(LON, LAT, SIZE, SplitConfig().val, SplitConfig().test)
    counts = {name: int((labels == name).sum()) for name in ("train", "val", "test", "dropped")}
    assert counts == {"train": 474, "val": 102, "test": 92, "dropped": 366}
    for name in ("val", "test"):
        chosen = labels == name
        assert (LAT[chosen] > 0).any() and (LAT[chosen] < 0).any(), name
    # no kept held-out patch shares sky with a patch of another used split, by brute-force sampling
    touches = overlap_matrix(LON, LAT, SIZE, margin_deg=0.5)  # candidates, generously
    for i in np.flatnonzero(np.isin(labels, ["val", "test"])):
        others = np.flatnonzero(touches[i] & (labels != labels[i]) & (labels != "dropped"))
        assert not any(_sampled_overlap(i, j) for j in others), (LON[i], LAT[i])


def test_split_is_deterministic_and_boxes_wrap_in_longitude():
    boxes = ((340.0, 20.0, 30.0, 60.0),)
    inside = split.in_boxes(LON, LAT, boxes)
    assert inside.any() and np.all((LON[inside] >= 340) | (LON[inside] < 20))
    a = split.region_split(LON, LAT, SIZE, SplitConfig().val, SplitConfig().test)
    b = split.region_split(LON, LAT, SIZE, SplitConfig().val, SplitConfig().test)
    np.testing.assert_array_equal(a, b)


def test_paper_scheme_is_random_halves_and_trains_on_everything():
    labels = split.paper_split(LON.size, seed=3)
    assert (labels == "val").sum() == (labels == "test").sum() == 517
    np.testing.assert_array_equal(labels, split.paper_split(LON.size, seed=3))
    meta = {"split": labels.tolist(), "split_scheme": "paper"}
    assert split.indices(meta, "train").size == 1034 and not split.held_out(meta)


def test_bad_split_settings_fail_clearly():
    with pytest.raises(Exception, match="scheme"):
        PatchConfig(split=SplitConfig(scheme="random"))
    with pytest.raises(Exception, match="lat_min"):
        SplitConfig(test=((0.0, 10.0, 40.0, 30.0),))
