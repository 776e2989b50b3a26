"""Mollweide map of the patch footprints coloured by split (PNG), north up as every figure."""

from __future__ import annotations

import math

import healpy as hp
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

from dustcmb.patches.footprint import tangent_basis
from dustcmb.patches.split import DROPPED, TEST, TRAIN, VAL

# Paint order: a pixel takes the colour of the highest-ranked split whose footprint covers it.
RANKS = {DROPPED: 1, TRAIN: 2, VAL: 3, TEST: 4}
COLOURS = ["#dddddd", "#9e9e9e", "#4c72b0", "#dd8452", "#c44e52"]  # uncovered, dropped, train, val, test
MAP_NSIDE = 64


def coverage_map(lon_deg, lat_deg, size_deg: float, labels, nside: int = MAP_NSIDE) -> np.ndarray:
    """HEALPix RING map of the highest split rank (:data:`RANKS`) covering each pixel; 0 where none."""
    pixels = np.stack(hp.pix2vec(nside, np.arange(hp.nside2npix(nside))), axis=-1)
    centre, east, north = tangent_basis(np.asarray(lon_deg, float), np.asarray(lat_deg, float))
    half = math.radians(size_deg) / 2
    out = np.zeros(len(pixels))
    for c, e, n, label in zip(centre, east, north, labels):
        depth = pixels @ c
        front = depth > 0
        x = np.where(front, pixels @ e / np.where(front, depth, 1.0), np.inf)
        y = np.where(front, pixels @ n / np.where(front, depth, 1.0), np.inf)
        inside = (np.abs(x) <= half) & (np.abs(y) <= half)
        out[inside] = np.maximum(out[inside], RANKS[label])
    return out


def split_figure(lon_deg, lat_deg, size_deg: float, labels, scheme: str):
    """Mollweide view (Galactic, l = 0 at the centre, l increasing to the left) of the split footprints."""
    labels = np.asarray(labels)
    fig = plt.figure(figsize=(10, 6))
    hp.mollview(coverage_map(lon_deg, lat_deg, size_deg, labels), fig=fig.number, min=-0.5, max=4.5,
                cmap=ListedColormap(COLOURS), cbar=False, title="")
    hp.graticule(dpar=30, dmer=60, alpha=0.3)
    for name in RANKS:
        chosen = labels == name
        hp.projscatter(np.asarray(lon_deg)[chosen], np.asarray(lat_deg)[chosen], lonlat=True, s=4,
                       color="black" if name != DROPPED else "white")
    counts = {name: int((labels == name).sum()) for name in RANKS}
    handles = [Patch(color=COLOURS[RANKS[name]], label=f"{name}: {counts[name]} patches") for name in RANKS]
    fig.legend(handles=handles, loc="lower center", ncol=4, frameon=False)
    held = "held-out regions" if scheme == "regions" else "paper scheme (val/test not held out)"
    fig.suptitle(f"Patch footprints by split ({held}); dots: patch centres", y=0.95)
    return fig
