"""Exact sky footprints of the gnomonic patches, and which pairs of patches share sky.

A patch is the square ``|x|, |y| <= h`` of its own tangent plane (``h = tan``-plane half-side, i.e.
``radians(size_deg) / 2`` in the cutter's coordinates, x towards east, y towards north). The gnomonic
projection maps great circles to straight lines, so a patch's edges are great-circle arcs and its
footprint is a convex spherical quadrilateral. Projected into another patch's tangent plane (when it
lies in front of it) it is again a convex quadrilateral, and two convex polygons overlap exactly
when no edge normal of either separates them (separating-axis theorem). That makes the test exact,
not a sampling of points (docs/science.md#patch-grid).
"""

from __future__ import annotations

import math

import numpy as np

# Patches whose centres are further apart than this cannot touch: each reaches at most its
# half-diagonal arctan(h·√2) from its centre, and that is below 45° for any patch under 90° wide.
_MAX_REACH_FACTOR = 2.0


def tangent_basis(lon_deg: np.ndarray, lat_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit vectors [n, 3] of the centre, local east and local north at each direction (deg)."""
    lon, lat = np.radians(lon_deg), np.radians(lat_deg)
    centre = np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)
    east = np.stack([-np.sin(lon), np.cos(lon), np.zeros_like(lon)], axis=-1)
    north = np.cross(centre, east)
    return centre, east, north


def corner_vectors(lon_deg, lat_deg, size_deg: float) -> np.ndarray:
    """Unit vectors [n, 4, 3] of each patch's corners, counter-clockwise seen from outside."""
    centre, east, north = tangent_basis(np.atleast_1d(lon_deg), np.atleast_1d(lat_deg))
    h = math.radians(size_deg) / 2
    signs = np.array([(1, 1), (-1, 1), (-1, -1), (1, -1)], dtype=float)  # (x, y) per corner
    v = centre[:, None] + h * (signs[None, :, :1] * east[:, None] + signs[None, :, 1:] * north[:, None])
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _separated(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For batches of convex quadrilaterals a, b [m, 4, 2]: True where an edge normal separates them."""
    out = np.zeros(len(a), dtype=bool)
    for poly in (a, b):
        edges = np.roll(poly, -1, axis=1) - poly
        normals = np.stack([-edges[..., 1], edges[..., 0]], axis=-1)  # [m, 4, 2]
        proj_a = np.einsum("mkd,mjd->mkj", normals, a)
        proj_b = np.einsum("mkd,mjd->mkj", normals, b)
        gap = (proj_a.max(-1) < proj_b.min(-1)) | (proj_b.max(-1) < proj_a.min(-1))
        out |= gap.any(axis=1)
    return out


def overlap_matrix(lon_deg, lat_deg, size_deg: float, margin_deg: float = 0.0) -> np.ndarray:
    """Boolean [n, n]: True where two patches share sky (diagonal True).

    Parameters
    ----------
    lon_deg, lat_deg : array_like [n]
        Patch centres (deg).
    size_deg : float
        Patch side (deg), as cut.
    margin_deg : float
        Grow every footprint by this much on each side before testing (a guard band, deg).
    """
    lon, lat = np.atleast_1d(lon_deg).astype(float), np.atleast_1d(lat_deg).astype(float)
    grown = size_deg + 2 * margin_deg
    centre, east, north = tangent_basis(lon, lat)
    corners = corner_vectors(lon, lat, grown)
    reach = math.atan(math.radians(grown) / 2 * math.sqrt(2))
    near = centre @ centre.T > math.cos(min(_MAX_REACH_FACTOR * reach, math.pi / 2 - 1e-6))
    i, j = np.nonzero(np.triu(near, k=1))
    # j's corners in i's tangent plane: (v·e, v·n) / (v·c), in front of i since the pair is near.
    v = corners[j]
    depth = np.einsum("mkd,md->mk", v, centre[i])
    quad_j = np.stack([np.einsum("mkd,md->mk", v, east[i]), np.einsum("mkd,md->mk", v, north[i])], -1)
    quad_j /= depth[..., None]
    h = math.radians(grown) / 2
    square = np.broadcast_to(h * np.array([(1, 1), (-1, 1), (-1, -1), (1, -1)], float), quad_j.shape)
    touching = ~_separated(square, quad_j)
    out = np.eye(lon.size, dtype=bool)
    out[i[touching], j[touching]] = out[j[touching], i[touching]] = True
    return out
