"""Gnomonic (tangent-plane) patches from a HEALPix map, with band-limiting against aliasing.

Orientation follows what ``healpy.gnomview(rot=(lon, lat), reso=size*60/N, xsize=N)`` displays:
north up, east to the left. Arrays are stored with row 0 at the northern edge and column 0 at the
eastern edge. Pixel ``(i, j)`` sits at tangent-plane coordinates
``x = (N/2 - 1/2 - j) Δ`` (towards east) and ``y = (N/2 - 1/2 - i) Δ`` (towards north), with
``Δ = size/N`` in radians, and the map is sampled there by bilinear interpolation
(``healpy.get_interp_val``) after removing power above the patch Nyquist multipole
(docs/science.md#patch-grid).

Band-limit on ln I. :func:`bandlimit` returns ``exp(W ln I)``, with ``W`` the harmonic window of
:func:`lowpass_window` (1 up to 0.75 ℓ_Nyq, cos² to 0 at ℓ_Nyq = 180 / pixel_deg). Any window with
a flat pass band has a kernel with negative side lobes, so applied to I itself it rings below
zero wherever the sky is faint next to something bright: on a Planck-derived 353 GHz map at
nside 256 (~900 MJy/sr in the plane, ~0.02 at the poles) it left 252 pixels <= 0 in 9 patches,
which cannot be logged for the GAN. Dividing out a smooth latitude profile first does not cure
it, since compact clouds ring on their own (benchmarks/bench_bandlimit.py, 64² patches, nside
256 test sky with plane/pole 7e4 and 40 clouds at 1e3–1e4 × their surroundings: pixels <= 0 are
7365 in 261 patches for the linear filter, 5840 in 166 with the profile divided out, 0 on ln I).
On ln I positivity is exact for any positive input (exp is > 0 and bilinear interpolation is a
convex combination), the filter is independent of the unit (a unit is a constant in ln I,
which passes unchanged), and the GAN, which works on ln I (:mod:`dustcmb.patches.normalise`),
sees a band-limited field (see the last point below).

What the non-linearity costs, in I:

* Mean bias. Removing ln I fluctuations of variance ``σ²_rem = Σ (2ℓ+1)/4π C_ℓ(ln I) (1 - w_ℓ²)``
  lowers the local mean of I by ``exp(-σ²_rem/2)`` (exact for a log-normal field) and the power
  at ℓ < 0.75 ℓ_Nyq by about ``exp(-σ²_rem)``. On the synthetic stand-in sky (nside 512, 64²):
  σ²_rem = 0.013, patch means -0.65 % (as predicted), mean spectrum -0.6 to -1.2 % below
  0.75 ℓ_Nyq and up to +4.9 % in the taper, pixels 0.8 % from the linear result (median; 3.7 %
  at the 99th percentile). The tolerance is 2 % below 0.75 ℓ_Nyq: it covers the expected
  exp(-σ²_rem) and is still ~7× below the statistical error of the mean spectrum of the 1034
  overlapping patches (14–20 % per ring). Where the sky has more small-scale ln-contrast
  (noise, compact clouds) the bias is larger, locally.
* Ringing becomes multiplicative. Beyond 3 FWHM of a 0.5° FWHM cloud 1e4 × a flat background
  (nside 256, ℓ_Nyq 576) the linear filter swings from -32 to +53 × the background, the filter
  on ln I from 0.96 to 1.07 ×; the peak drops by 29 % (17 % linear).
* exp of a band-limited ln I is not band-limited: cloud cores, where ln I changes by several
  units within a few pixels, keep harmonics above ℓ_Nyq that fold back into the top rings of
  the patch spectrum of I. On the test sky at nside 512 (``--nside 512``) the folded power in
  0.9–1 ℓ_Nyq is 20 % of the sky's (1 % for the linear filter) in the mean spectrum, which the
  cloud patches dominate; in the median patch it is 1.6 % (1.9 %), and in ln I it stays below
  0.07 % in every ring. At nside 256
  the bilinear interpolation of 13.7' HEALPix pixels dominates instead: 1.5–1.6 × the sky's power
  in 0.9–1 ℓ_Nyq of the mean spectrum of I for both filters, 1.6 % in ln I after the new one.
"""

from __future__ import annotations

import math

import healpy as hp
import numpy as np
from tqdm import tqdm

from dustcmb.errors import InputError

# The low-pass window is 1 up to this fraction of the patch Nyquist multipole and falls to 0 at
# Nyquist with a cos² taper: a sharp cut would ring around bright filaments, a wider taper would
# needlessly suppress resolved power.
TAPER_START = 0.75


def gnomonic_lonlat(lon0_deg, lat0_deg, npix: int, size_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Directions of every patch pixel.

    Parameters
    ----------
    lon0_deg, lat0_deg : array_like [n]
        Patch centres (Galactic longitude and latitude, deg).
    npix : int
        Pixels per side.
    size_deg : float
        Side of the square in the tangent plane (deg), as ``gnomview``'s ``reso * xsize``.

    Returns
    -------
    lon_deg, lat_deg : numpy.ndarray [n, npix, npix]
        Galactic coordinates of the pixel centres.
    """
    lon0 = np.radians(np.atleast_1d(lon0_deg))[:, None, None]
    lat0 = np.radians(np.atleast_1d(lat0_deg))[:, None, None]
    offsets = (npix / 2 - 0.5 - np.arange(npix)) * math.radians(size_deg) / npix
    y = offsets[None, :, None]
    x = offsets[None, None, :]
    rho = np.hypot(x, y)
    c = np.arctan(rho)
    sin_c, cos_c = np.sin(c), np.cos(c)
    # rho * sin_c / rho written as x, y times sin_c / rho, which is finite (-> 1) at rho = 0.
    sinc_ratio = np.where(rho > 0, sin_c / np.where(rho > 0, rho, 1.0), 1.0)
    sin_lat = cos_c * np.sin(lat0) + y * sinc_ratio * np.cos(lat0)
    lat = np.arcsin(np.clip(sin_lat, -1.0, 1.0))
    lon = lon0 + np.arctan2(x * sinc_ratio, cos_c * np.cos(lat0) - y * sinc_ratio * np.sin(lat0))
    return np.degrees(lon) % 360.0, np.degrees(lat)


def lowpass_window(lmax_patch: int) -> np.ndarray:
    """Harmonic window ``w_ℓ`` for ℓ = 0 … ``lmax_patch``: 1 up to TAPER_START ℓ_Nyq, then cos² to 0."""
    return lowpass_profile(np.arange(lmax_patch + 1) / lmax_patch)


def lowpass_profile(fraction: np.ndarray) -> np.ndarray:
    """The same window at ``fraction`` = ℓ / ℓ_Nyq (any real values): 1 up to TAPER_START, cos² down to
    0 at 1, and 0 beyond (the corners of a 2-D Fourier grid)."""
    taper = np.cos(0.5 * np.pi * (fraction - TAPER_START) / (1.0 - TAPER_START)) ** 2
    return np.where(fraction <= TAPER_START, 1.0, np.where(fraction < 1.0, taper, 0.0))


def harmonic_lowpass(hpmap: np.ndarray, lmax_patch: int) -> np.ndarray:
    """Multiply the map's harmonic coefficients by :func:`lowpass_window` (a linear filter).

    Parameters
    ----------
    hpmap : numpy.ndarray
        Full-sky RING map (any unit); must be finite everywhere.
    lmax_patch : int
        Nyquist multipole of the patch pixels, ``180 / pixel_deg``.

    Returns
    -------
    numpy.ndarray
        The filtered map, same nside and unit; band-limited to ``lmax_patch``, but its ringing can
        take a positive map below zero.
    """
    # For lmax > 2 nside the map2alm quadrature is approximate: a constant map comes back with
    # errors of ~1 % of its value in the polar rings (nside 128, lmax 288). The window passes ℓ = 0
    # unchanged, so the pixel mean goes around the transform instead, exactly.
    mean = hpmap.mean()
    alm = hp.map2alm(hpmap - mean, lmax=lmax_patch, iter=1)
    window = lowpass_window(lmax_patch)
    return mean + hp.alm2map(hp.almxfl(alm, window), hp.get_nside(hpmap), lmax=lmax_patch)


def bandlimit(hpmap: np.ndarray, lmax_patch: int) -> np.ndarray:
    """Band-limit a positive intensity map in ``ln I``: ``exp(harmonic_lowpass(ln I))``.

    Parameters
    ----------
    hpmap : numpy.ndarray
        Full-sky RING intensity map (MJy/sr); finite and > 0 everywhere.
    lmax_patch : int
        Nyquist multipole of the patch pixels, ``180 / pixel_deg``.

    Returns
    -------
    numpy.ndarray
        Strictly positive map (MJy/sr) whose logarithm is band-limited to ``lmax_patch``; see the
        module docstring for why the filter acts on ``ln I`` and what that costs.

    Raises
    ------
    InputError
        If any pixel is NaN, inf, UNSEEN or <= 0.
    """
    check_finite(hpmap)
    check_positive_map(hpmap)
    return np.exp(harmonic_lowpass(np.log(hpmap), lmax_patch))


def check_resolution(nside: int, npix: int, size_deg: float) -> None:
    """Fail if HEALPix pixels are coarser than the patch pixels or ℓ_Nyquist exceeds 3 nside - 1."""
    pixel_arcmin = size_deg * 60.0 / npix
    healpix_arcmin = hp.nside2resol(nside, arcmin=True)
    lmax_patch = int(180.0 / (size_deg / npix))
    if healpix_arcmin > pixel_arcmin or lmax_patch > 3 * nside - 1:
        need = 1
        while hp.nside2resol(need, arcmin=True) > pixel_arcmin or lmax_patch > 3 * need - 1:
            need *= 2
        raise InputError(
            f"map nside {nside} ({healpix_arcmin:.2f}' pixels) is too low for {npix}-pixel patches of "
            f"{size_deg:g} deg ({pixel_arcmin:.2f}' pixels, Nyquist ell {lmax_patch}); use nside >= "
            f"{need} (sky.nside) or fewer patch pixels (patches.npix)")


def _latitude_span(hpmap: np.ndarray, bad: np.ndarray) -> str:
    """``|b| from … to … deg`` of the flagged pixels, for error messages."""
    _, lat = hp.pix2ang(hp.get_nside(hpmap), np.nonzero(bad)[0], lonlat=True)
    return f"|b| from {np.abs(lat).min():.1f} to {np.abs(lat).max():.1f} deg"


def check_finite(hpmap: np.ndarray) -> None:
    """Fail on NaN, inf or UNSEEN pixels: the harmonic low-pass would spread them everywhere."""
    bad = ~np.isfinite(hpmap) | (hpmap == hp.UNSEEN)
    if bad.any():
        raise InputError(
            f"the sky map has {int(bad.sum())} NaN/inf/UNSEEN pixel(s) ({_latitude_span(hpmap, bad)}); "
            "patches need a full-sky map with finite values everywhere — fill or inpaint the masked "
            "pixels first")


def check_positive_map(hpmap: np.ndarray) -> None:
    """Fail on pixels <= 0: the band-limit works on ``ln I``, and the GAN on ``ln`` of the patches."""
    bad = ~(hpmap > 0)
    if bad.any():
        raise InputError(
            f"the sky map has {int(bad.sum())} pixel(s) <= 0 MJy/sr (lowest {np.min(hpmap):.3g}; "
            f"{_latitude_span(hpmap, bad)}) and cannot be logged; an offset-subtracted map needs its zero "
            "level restored (a positive intensity) first")


def cut_patches(hpmap: np.ndarray, lon_deg, lat_deg, npix: int, size_deg: float,
                chunk: int = 64, progress: bool = True) -> np.ndarray:
    """Project a band-limited HEALPix map onto gnomonic patches.

    Parameters
    ----------
    hpmap : numpy.ndarray
        Full-sky RING map, already band-limited with :func:`bandlimit`.
    lon_deg, lat_deg : array_like [n]
        Patch centres (deg).
    npix, size_deg : int, float
        Pixels per side and side length (deg).
    chunk : int
        Patches projected per vectorised batch (bounds memory to ~40 bytes × chunk × npix²).

    Returns
    -------
    numpy.ndarray, float32 [n, npix, npix]
        Patches in the map's unit, row 0 north, column 0 east.
    """
    lon_deg, lat_deg = np.atleast_1d(lon_deg), np.atleast_1d(lat_deg)
    out = np.empty((lon_deg.size, npix, npix), dtype=np.float32)
    with tqdm(total=lon_deg.size, desc="cutting patches", unit="patch", disable=not progress) as bar:
        for start in range(0, lon_deg.size, chunk):
            stop = min(start + chunk, lon_deg.size)
            lon, lat = gnomonic_lonlat(lon_deg[start:stop], lat_deg[start:stop], npix, size_deg)
            out[start:stop] = hp.get_interp_val(hpmap, lon, lat, lonlat=True)
            bar.update(stop - start)
    return out
