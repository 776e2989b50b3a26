"""Train / validation / test splits of the patch grid by sky region.

Patches are 20° wide on a 5° grid, so neighbours share most of their sky and a random split of
patches holds nothing out. Here each patch centre falls in a region: a held-out box of
``patches.split.val`` or ``patches.split.test`` (boxes of Galactic longitude and latitude, one per
hemisphere by default), or the training sky everywhere else. A held-out patch is kept only if its
footprint shares no sky with any patch of another split (exact footprint test of
:mod:`dustcmb.patches.footprint`); the others straddle a boundary and are dropped. A dropped
patch that touches no kept held-out patch joins ``train``. The result is one label per patch,
``train``, ``val``, ``test`` or ``dropped`` (docs/science.md#patch-grid).

``scheme: paper`` reproduces the paper instead: the GAN sees every patch and validation and test
are random halves of the same overlapping patches. Nothing made that way is held out.
"""

from __future__ import annotations

import numpy as np

from dustcmb.errors import InputError
from dustcmb.patches.footprint import overlap_matrix
from dustcmb.seeding import Stream, numpy_rng

TRAIN, VAL, TEST, DROPPED = "train", "val", "test", "dropped"


def in_boxes(lon_deg: np.ndarray, lat_deg: np.ndarray, boxes) -> np.ndarray:
    """Centres inside any box ``(lon_min, lon_max, lat_min, lat_max)`` [deg]; longitudes wrap at 360°."""
    inside = np.zeros(lon_deg.size, dtype=bool)
    for lon_min, lon_max, lat_min, lat_max in boxes:
        width = (lon_max - lon_min) % 360.0 or 360.0
        inside |= ((lon_deg - lon_min) % 360.0 < width) & (lat_deg >= lat_min) & (lat_deg <= lat_max)
    return inside


def region_split(lon_deg, lat_deg, size_deg: float, val_boxes, test_boxes) -> np.ndarray:
    """Labels (``train``/``val``/``test``/``dropped``) of patches centred at ``lon_deg, lat_deg`` [deg].

    No kept ``val`` or ``test`` patch shares sky with a patch carrying another label than its own
    (``dropped`` patches are unused and may overlap anything).
    """
    lon, lat = np.asarray(lon_deg, float), np.asarray(lat_deg, float)
    touches = overlap_matrix(lon, lat, size_deg)
    test = in_boxes(lon, lat, test_boxes)
    val = in_boxes(lon, lat, val_boxes) & ~test
    train = ~(val | test)
    keep_test = test & ~touches[:, train | val].any(axis=1)
    keep_val = val & ~touches[:, train | test].any(axis=1)
    held_out = keep_val | keep_test
    back_to_train = (val | test) & ~held_out & ~touches[:, held_out].any(axis=1)
    labels = np.full(lon.size, DROPPED, dtype=object)
    labels[train | back_to_train] = TRAIN
    labels[keep_val], labels[keep_test] = VAL, TEST
    return labels.astype(str)


def paper_split(n_patches: int, seed: int) -> np.ndarray:
    """The paper's scheme: a random half of the patches ``val``, the other half ``test`` (not held out)."""
    order = numpy_rng(seed, Stream.VAL_TEST_SPLIT).permutation(n_patches)
    labels = np.full(n_patches, TEST, dtype=object)
    labels[order[:n_patches // 2]] = VAL
    return labels.astype(str)


def indices(meta: dict, *names: str) -> np.ndarray:
    """Sorted patch indices whose label is one of ``names``, from a patch set's ``meta.json``.

    Under the paper's scheme the GAN trains on every patch, so ``train`` there means all of them.
    """
    if "split" not in meta:
        raise InputError("the patch set has no 'split' in meta.json (made by an older version); "
                         "re-run `dustcmb patches`")
    labels = np.asarray(meta["split"])
    if meta.get("split_scheme") == "paper" and TRAIN in names:
        return np.arange(labels.size)
    return np.flatnonzero(np.isin(labels, names))


def held_out(meta: dict) -> bool:
    """Whether the patch set's validation and test patches share no sky with its training patches."""
    return meta.get("split_scheme") == "regions"


def sky_blocks(lon_deg, lat_deg, nside: int) -> np.ndarray:
    """Sky region of every patch centre: its HEALPix pixel at ``nside`` (2: 48 regions of ≈ 29°).

    Patches 5° apart overlap heavily, so a bootstrap must resample regions, not patches; at
    ``nside`` 2 a region is about one and a half patch widths across.
    """
    import healpy as hp

    return hp.ang2pix(nside, np.asarray(lon_deg, float), np.asarray(lat_deg, float), lonlat=True)


def sky_disjoint_halves(lon_deg, lat_deg, size_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices of two halves of the given patches (l < 180° and l ≥ 180°) that share no sky.

    A patch of either half whose footprint touches the other half is dropped, so the halves are
    independent samples of the sky for calibrating comparisons between sets.
    """
    lon, lat = np.asarray(lon_deg, float), np.asarray(lat_deg, float)
    first = lon % 360.0 < 180.0
    touches = overlap_matrix(lon, lat, size_deg)
    keep_a = first & ~touches[:, ~first].any(axis=1)
    keep_b = ~first & ~touches[:, first].any(axis=1)
    return np.flatnonzero(keep_a), np.flatnonzero(keep_b)

