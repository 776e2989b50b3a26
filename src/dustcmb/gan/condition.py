"""The generator's condition: where on the sky a patch lies (docs/science.md#latitude-condition).

High-latitude dust is a slab seen through a column that grows as ``csc|b|``: a patch at |b| = 30°
looks through twice the dust of one at the pole (a pure slab's mean ``ln I`` falls by
ln(csc 25°/csc 55°) = 0.66 from |b| = 25° to 55°; the stand-in sky's training patches, with their
Local-Bubble cavity, fall by 1.5). A generator trained on the whole training region draws that mixture of
latitudes; asked for the sky of a footprint (the held-out boxes lie at 25° ≤ |b| ≤ 55°) it cannot
follow. Conditioned on ``ln csc|b|`` of the patch centre it can. The condition is geometry only:
the latitudes of the patch grid, never a pixel of held-out sky.
"""

from __future__ import annotations

import numpy as np

from dustcmb.errors import InputError

# The networks see (ln csc|b| − CENTRE) / SCALE: 0 at |b| = 45°, the patch grid's median latitude, and
# −1.4 to +2.1 over |b| = 90° … 25° (the grid's ln csc|b| has a spread of 0.27), an input of order one
# like the latent vector's entries.
CENTRE, SCALE = 0.5 * np.log(2.0), 0.25


def network_input(condition):
    """The condition as the networks take it, ``(ln csc|b| − CENTRE) / SCALE`` (same type as given)."""
    return (condition - CENTRE) / SCALE


def slab_log_column(lat_deg) -> np.ndarray:
    """``ln csc|b|`` of patch centres at Galactic latitudes ``lat_deg`` [deg]: 0 at the poles, ln 2 at
    |b| = 30°, 0.86 at 25° (dimensionless, float32).

    Raises
    ------
    InputError
        If a latitude is 0 (the plane, where the slab column diverges) or beyond ±90°.
    """
    abs_lat = np.abs(np.asarray(lat_deg, dtype=np.float64))
    if np.any(abs_lat <= 0.0) or np.any(abs_lat > 90.0):
        raise InputError("the latitude condition needs patch centres with 0 < |b| <= 90 deg")
    return (-np.log(np.sin(np.radians(abs_lat)))).astype(np.float32)


def same_latitude_rows(source_lat_deg, target_lat_deg, per_target: int, rng: np.random.Generator,
                       tolerance_deg: float = 1e-6) -> np.ndarray:
    """For every target centre, ``per_target`` random rows of the source centres at the same |b|.

    The patch grid's centres lie on rings of one latitude each, so a held-out patch has training
    patches on its own ring (at other longitudes). Drawing them builds the training-sky reference
    for a held-out footprint: what a generator of the training sky at those latitudes can reach.

    Parameters
    ----------
    source_lat_deg, target_lat_deg : array_like [n_source], [n_target]
        Centre latitudes [deg].
    per_target : int
        Rows drawn (with replacement) per target centre.
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray [n_target * per_target] of int
        Source rows, target by target (``per_target`` consecutive rows each).

    Raises
    ------
    InputError
        If a target's |b| has no source centre within ``tolerance_deg``.
    """
    source, target = np.abs(np.asarray(source_lat_deg, float)), np.abs(np.asarray(target_lat_deg, float))
    rows = []
    for lat in target:
        ring = np.flatnonzero(np.abs(source - lat) <= tolerance_deg)
        if ring.size == 0:
            raise InputError(f"no training patch at |b| = {lat:g} deg to match a held-out patch")
        rows.append(rng.choice(ring, size=per_target))
    return np.concatenate(rows)
