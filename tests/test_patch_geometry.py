"""Patch grid and projection against known functions on the sphere (docs/science.md#patch-grid)."""

from __future__ import annotations

import healpy as hp
import numpy as np
import pytest

from dustcmb.patches.cutter import bandlimit, cut_patches, gnomonic_lonlat
from dustcmb.patches.grid import patch_centres, ring_counts


def smooth_function(lon_deg, lat_deg):
    """A cubic polynomial in the unit vector: band-limited to ℓ <= 3, values within about ±2."""
    lon, lat = np.radians(lon_deg), np.radians(lat_deg)
    x, y, z = np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)
    return 1.0 + 0.8 * x - 0.5 * y * z + 0.6 * z**2 + 0.3 * x * y * z


def test_paper_grid_has_1034_patches_above_the_plane():
    lon, lat = patch_centres(step_deg=5.0, lat_min_deg=25.0)
    assert lon.size == 1034
    assert np.abs(lat).min() == 25.0 and np.abs(lat).max() == 90.0
    rings, counts = ring_counts(5.0, 25.0)
    assert counts.tolist() == [66, 63, 59, 56, 51, 47, 42, 37, 31, 25, 19, 13, 7, 1]
    assert np.all(lon >= 0) and np.all(lon < 360)


def test_patch_edges_stay_out_of_the_excluded_band():
    """Edge midpoints of every patch stay at |b| >= 15 deg; at 64² so do all pixel centres.

    A gnomonic square's corners sag below its edge midpoints: at 256² the lowest pixel centre sits
    at |b| = 14.91 deg, which the patch metadata reports as ``min_abs_lat_deg``.
    """
    lon, lat = patch_centres(5.0, 25.0)
    half_side = np.degrees(np.arctan(np.radians(10.0)))  # tangent-plane half side seen from the centre
    assert np.abs(lat).min() - half_side >= 15.0
    pixel_lat = gnomonic_lonlat(lon, lat, 64, 20.0)[1]
    assert np.abs(pixel_lat).min() >= 15.0


@pytest.mark.parametrize("centre", [(30.0, 40.0), (200.0, -60.0), (123.0, 25.0), (0.0, 90.0)])
def test_patch_pixels_equal_the_function_at_their_directions(centre):
    """Bilinear interpolation of an nside-128 map of a smooth (ℓ <= 3) function.

    Tolerance 1e-3 (function values O(1)): the interpolation error is about Δ²|∇²f|/8 with
    Δ = 27' (0.008 rad) and |∇²f| <= ℓ(ℓ+1)|f| = 12·2, i.e. <= 2e-4, and the band-limit (which
    filters ln f; for this smooth f >= 0.2 the harmonic content of ln f is negligible well below
    ℓ = 288) leaves f untouched up to the quadrature error of map2alm (measured ~1e-5).
    """
    nside, npix, size = 128, 32, 20.0
    lon, lat = hp.pix2ang(nside, np.arange(hp.nside2npix(nside)), lonlat=True)
    hpmap = bandlimit(smooth_function(lon, lat), lmax_patch=288)
    patch = cut_patches(hpmap, [centre[0]], [centre[1]], npix, size, progress=False)[0]
    plon, plat = gnomonic_lonlat([centre[0]], [centre[1]], npix, size)
    error = np.abs(patch - smooth_function(plon[0], plat[0]))
    # In the polar cap HEALPix ring i holds only 4i pixels, so healpy interpolates across wider
    # gaps; within ~6 pixels (3 deg at nside 128, 11' at nside 2048) of the pole the error grows
    # to the nearest-pixel level |∇f| Δ <= 2 × 0.008: bound that region separately.
    near_pole = 90.0 - np.abs(plat[0]) < 3.0
    assert error[~near_pole].max() < 1e-3
    assert error[near_pole].max(initial=0.0) < 0.02


def test_orientation_north_row0_east_column0():
    lon, lat = gnomonic_lonlat([100.0], [45.0], 16, 20.0)
    assert np.all(np.diff(lat[0, :, 8]) < 0), "latitude must fall from row 0 (north) downwards"
    assert np.all(np.diff(lon[0, 8, :]) < 0), "longitude must fall from column 0 (east) to the west"
    centre_lat = 0.5 * (lat[0, 7, 7] + lat[0, 8, 8])
    assert centre_lat == pytest.approx(45.0, abs=0.01)


@pytest.mark.parametrize("centre", [(30.0, 40.0), (200.0, -60.0), (0.0, 90.0)])
def test_same_pixels_as_healpy_gnomview(centre):
    """Each patch pixel falls in the HEALPix pixel that gnomview shows there (after flipud)."""
    nside, npix, size = 256, 32, 20.0
    index_map = np.arange(hp.nside2npix(nside), dtype=float)
    shown = hp.gnomview(index_map, rot=centre, reso=size * 60 / npix, xsize=npix,
                        return_projected_map=True, no_plot=True)
    lon, lat = gnomonic_lonlat([centre[0]], [centre[1]], npix, size)
    ours = hp.ang2pix(nside, lon[0], lat[0], lonlat=True)
    np.testing.assert_array_equal(ours, np.flipud(np.asarray(shown)).astype(int))
