"""Centres of the patch grid (docs/science.md#patch-grid).

Rings of constant Galactic latitude ``b = ±lat_min, ±(lat_min + step), … , ±90°``; on each ring the
longitude step is ``step / cos b``, i.e. ``ceil(360 cos b / step)`` centres (one at each pole).
With the paper's values (step 5°, |b| >= 25°) this gives 1034 patches.
"""

from __future__ import annotations

import math

import numpy as np


def ring_counts(step_deg: float, lat_min_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Northern latitudes of the rings and the number of centres on each.

    Returns
    -------
    lat_deg : numpy.ndarray
        Ring latitudes from ``lat_min_deg`` up to 90 deg (the pole only if it lies on the grid).
    count : numpy.ndarray of int
        Centres per ring, ``ceil(360 cos b / step)`` evaluated in float64.

    Notes
    -----
    At b = 60 deg and a 5 deg step the exact value is 36, but ``360 * cos(60 deg) / 5`` is
    36.000000000000014 in float64 and its ceiling is 37. The paper's grid of 1034 patches contains
    that extra centre, so the float64 ceiling is kept on purpose.
    """
    n_rings = int(math.floor((90.0 - lat_min_deg) / step_deg + 1e-9)) + 1
    lat = lat_min_deg + step_deg * np.arange(n_rings)
    count = np.ceil(360.0 * np.cos(np.radians(lat)) / step_deg).astype(int)
    return lat, np.maximum(count, 1)


def patch_centres(step_deg: float, lat_min_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Galactic longitudes and latitudes (deg) of all patch centres, north then south.

    Parameters
    ----------
    step_deg : float
        Grid step in degrees (paper: 5).
    lat_min_deg : float
        Lowest |b| of a centre in degrees (paper: 25).
    """
    lats, counts = ring_counts(step_deg, lat_min_deg)
    lon, lat = [], []
    for sign in (1.0, -1.0):
        for b, n in zip(lats, counts):
            lon.append(np.arange(n) * (360.0 / n))
            lat.append(np.full(n, sign * b))
    return np.concatenate(lon), np.concatenate(lat)
