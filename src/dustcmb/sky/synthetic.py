"""A deterministic offline stand-in for the Planck 353 GHz dust intensity map (docs/science.md#synthetic-sky).

This is NOT the real sky: it imitates the properties the pipeline relies on, so that every stage runs
and is tested without the Planck file, which stays the pipeline's first-class input. Results on it
are labelled "synthetic".

Model, in MJy/sr at 353 GHz, Galactic coordinates (l, b)::

    I(n)   = [E_slab(b) + E_disk(l, b)] exp(σ g(n))  +  C(n)
    E_slab = I_pole (1/s(b) − c) / (1 − c),      s(b) = √(sin²b + sin²w) / √(1 + sin²w)
    E_disk = I_plane Λ(l) / cosh(b / h(l)),      Λ(l) = f_out + (1 − f_out) exp(−l² / 2σ_l²)
    g      = unit-variance field with C_ℓ ∝ ℓ^slope: a filament part (share f of the power) plus a
             Gaussian part that supplies, ℓ by ℓ, the power the filaments lack; its median is made 0
             in every 5° bin of |b|, so the latitude profile is the envelope's alone.

- ``E_slab``: a plane-parallel dust layer seen from inside (the cosecant law, softened at |b| < w),
  less a local cavity that removes a share ``c`` of the polar column: the Sun sits in the
  low-density Local Bubble, so the poles are fainter than the cosecant law from intermediate
  latitudes predicts. ``E_slab`` equals ``I_pole`` at the poles.
- ``E_disk``: the distant thin disk, ~100 times brighter towards the inner Galaxy (σ_l = 35°) than
  towards the anticentre, with an angular scale height ``h(l)`` from 0.8° (inner Galaxy: distant
  material) to 2.5° (anticentre: nearby material).
- Filaments: strands, Gaussian tubes of width σ_k and length ~``filament_aspect`` × FWHM (up to
  40°), follow the streamlines of a model plane-of-sky magnetic field (uniform, parallel to the
  plane towards l = 70°, plus a turbulent part of 0.9 times its strength, ℓ ≤ 48). They come in
  octaves σ_k = 4.8°, 2.4°, … down to two HEALPix pixels; each octave is half as wide as the last
  and its strands are seeded ∝ exp(1.2 z), z the standardised sum of the wider octaves, so fine
  strands gather in bright filaments (intermittency). The octaves are weighted (non-negative least
  squares) so that their sum, the strand "column density" F, has C_ℓ ∝ ℓ^slope; the filament field
  is ln(F + ⟨F⟩): overlapping strands add like column density, and the field is skewed, elongated
  and oriented, which a Gaussian field of the same spectrum is not. It is then filtered down to
  f C_ℓ^target wherever it has more (large scales).
- ``C``: compact clouds, each ``A W(n) exp(κ g_600)``: an elliptical Plummer-like envelope W
  (axis ratio 1–3) shaped by the fluctuation field low-passed to ℓ ≤ 600 (κ = 2), so clouds are
  irregular, clumpy and continuous with the cirrus around them; ``A`` (the 98th percentile of the
  cloud's pixels) follows dN/dA ∝ A^−cloud_index. Three populations: (i) ``plane_clouds`` distant
  clouds at |b| ≲ h(l)/2, size 0.05–0.5°, A = 0.1–5 × the local disk level (κ = 1); (ii) 24 nearby
  complexes scattered by 6° about a Gould-Belt-like great circle inclined 20° to the plane
  (highest at l ≈ 10°, lowest at l ≈ 190°), size 1–4°, A = 5–500 MJy/sr, like Orion, Taurus,
  Ophiuchus or Chamaeleon; (iii) 40 translucent clouds at |b| = 10° + an exponential of scale 15°,
  size 0.2–1°, A = 3–30 × E_slab, like the MBM clouds, the Polaris flare or Draco. Clumps narrower
  than a pixel are widened to it with their flux kept.

Defaults give (nside 512, benchmarks/synthetic_sky_properties.py): pole median ≈ 0.04 MJy/sr,
|b| > 25° median ≈ 0.13, inner-plane median ≈ 400, plane maximum ≈ 4000, plane/pole contrast
≈ 10⁵, and C_ℓ slopes at |b| > 30° of ≈ −2.5 for ln I and −2.4 to −2.9 (seed to seed) for I —
against approx. 0.02–0.05, 0.1–0.3, hundreds to > 1000 MJy/sr, 10³–5·10³, 10⁴–10⁵ and −2.4 to −2.7
for the real sky (Planck 2013 XI, A&A 571, A11; Planck 2015 X, A&A 594, A10; Planck int. XXX, A&A
586, A133, 2016, whose dust polarization spectra have α_EE,BB = −2.42 ± 0.02 over 40 < ℓ < 600).
Sources and the full table: docs/science.md#synthetic-sky.

Not imitated: the real positions and shapes of clouds and filaments (no Loop I, no real Orion),
the real Galactic magnetic field and any polarization, dust temperature and spectral-index
variations (this is one 353 GHz map), CIB anisotropies, point sources, noise, zero-level offsets
and GNILC's variable effective resolution. Cloud interiors are clumpy (an exponentiated field)
rather than filamentary below ~0.5°.
"""

from __future__ import annotations

import healpy as hp
import numpy as np
from scipy.optimize import nnls

_PROFILE_BIN_DEG = 5.0  # |b| bins in which the fluctuation field is given zero median

# Thin disk (E_disk).
_DISK_LON_SIGMA_DEG = 35.0  # σ_l of the inner-Galaxy brightening
_DISK_OUTER_FRACTION = 0.01  # f_out: anticentre / inner-Galaxy brightness at b = 0
_DISK_H_INNER_DEG, _DISK_H_OUTER_DEG = 0.8, 2.5  # angular scale height towards l = 0 and l = 180

# Model plane-of-sky magnetic field that orients the filaments.
_FIELD_LON_DEG = 70.0  # direction of the uniform (regular) part, in the Galactic plane
_FIELD_TURBULENT = 0.9  # rms of the turbulent part / regular part
_FIELD_NSIDE = 64  # resolution of the direction field (smooth: ℓ <= 48)

# Filament octaves.
_STRAND_SIGMA_MAX_DEG = 4.8  # widest strand (Gaussian σ of its cross-section)
_STRAND_MIN_PIXELS = 2.0  # narrowest strand, in HEALPix pixel sides
_STRAND_FILL = 0.5  # Σ length × FWHM / 4π per octave
_STRAND_AMP_SIGMA = 0.5  # log-normal spread of strand amplitudes
_STRAND_STEP = 0.5  # spacing of the centre-line points, in σ_k
_STRAND_CLUSTERING = 1.2  # β: narrower strands are seeded ∝ exp(β z) of the wider octaves' field
_STRAND_LENGTH_MAX_DEG = 40.0  # longest strand
_STRAND_TRACE_DEG = 4.0  # strands longer than this follow the field line; shorter ones are arcs

# Clouds: (count, size range [deg], peak range: MJy/sr for _GOULD, times E_slab for _TRANSLUCENT).
_GOULD = (24, (1.0, 4.0), (5.0, 500.0))
_GOULD_TILT_DEG, _GOULD_NODE_DEG, _GOULD_SCATTER_DEG = 20.0, 280.0, 6.0
_TRANSLUCENT = (40, (0.2, 1.0), (3.0, 30.0))
_TRANSLUCENT_LAT_DEG = (10.0, 15.0)  # |b| = 10° + exponential with a 15° scale
_PLANE_SIZE_DEG, _PLANE_RATIO = (0.05, 0.5), (0.1, 5.0)  # plane clouds: size, peak / disk level
_CLOUD_PEAK_PERCENTILE = 98.0  # A is this percentile of a cloud's pixels (its densest cores exceed it)
_CLOUD_TEXTURE = 2.0  # κ: clouds are exp(κ g) inside their envelope (denser gas, broader PDF)
_TEXTURE_LMAX = 600  # the texture field is g low-passed to ℓ <= this (cos² taper over the top quarter)
_PLANE_TEXTURE = 1.0  # κ of the (mostly few-pixel) plane clouds


def _power_alm(lmax: int, cl: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Harmonic coefficients of a Gaussian field with spectrum ``cl`` [lmax + 1]."""
    ell, m = hp.Alm.getlm(lmax)
    sigma = np.sqrt(cl[ell])
    real, imag = rng.standard_normal(ell.size), rng.standard_normal(ell.size)
    # m = 0 coefficients are real with variance C_ℓ; m > 0 ones complex with C_ℓ/2 per part.
    return np.where(m == 0, real * sigma, (real + 1j * imag) * sigma / np.sqrt(2.0)).astype(np.complex128)


def _variance(alm: np.ndarray, lmax: int) -> float:
    """Pixel variance about the mean of the field with coefficients ``alm``."""
    cl = hp.alm2cl(alm, lmax=lmax)
    ell = np.arange(lmax + 1)
    return float(np.sum((2 * ell[1:] + 1) * cl[1:]) / (4 * np.pi))


def _normalise(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _random_directions(n: int, rng: np.random.Generator) -> np.ndarray:
    return _normalise(rng.standard_normal((n, 3)))


def _tangent(p: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Unit projection of ``v`` onto the tangent planes at the directions ``p``."""
    return _normalise(v - np.sum(v * p, axis=-1, keepdims=True) * p)


def _offset(p: np.ndarray, t: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Move along the great circle through ``p`` in the tangent direction ``t`` by ``angle`` [rad]."""
    return np.cos(angle)[..., None] * p + np.sin(angle)[..., None] * t


def field_directions(rng: np.random.Generator) -> np.ndarray:
    """Model plane-of-sky field directions [3, 12 _FIELD_NSIDE²] (unit tangent vectors)."""
    npix = hp.nside2npix(_FIELD_NSIDE)
    lmax = 48
    ell = np.arange(lmax + 1, dtype=float)
    cl = np.zeros(lmax + 1)
    cl[2:] = ell[2:] ** -3.0
    turbulent = np.stack([hp.alm2map(_power_alm(lmax, cl, rng), _FIELD_NSIDE, lmax=lmax) for _ in range(3)], axis=-1)
    turbulent *= _FIELD_TURBULENT / np.sqrt(np.mean(np.sum(turbulent**2, axis=-1)))
    lon = np.radians(_FIELD_LON_DEG)
    field = np.array([np.cos(lon), np.sin(lon), 0.0]) + turbulent
    p = np.stack(hp.pix2vec(_FIELD_NSIDE, np.arange(npix)), axis=-1)
    return _tangent(p, field).T


def _direction_at(directions: np.ndarray, p: np.ndarray) -> np.ndarray:
    pix = hp.vec2pix(_FIELD_NSIDE, p[:, 0], p[:, 1], p[:, 2])
    return _tangent(p, directions[:, pix].T)


def _seeds(n: int, density: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """``n`` directions, uniform or drawn ∝ ``density`` (a HEALPix map), jittered within pixels."""
    if density is None:
        return _random_directions(n, rng)
    nside = hp.get_nside(density)
    pix = rng.choice(density.size, size=n, p=density / density.sum())
    p = np.stack(hp.pix2vec(nside, pix), axis=-1)
    t = _tangent(p, rng.standard_normal((n, 3)))
    return _offset(p, t, 0.6 * hp.nside2resol(nside) * np.sqrt(rng.random(n)))


def _strand_octave(nside: int, sigma: float, aspect: float, directions: np.ndarray, density: np.ndarray | None,
                   rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Harmonic coefficients of one octave of strands of cross-section σ [rad], and their lmax.

    Strand centres are drawn ∝ ``density`` (None: uniformly).
    """
    fwhm = np.sqrt(8 * np.log(2)) * sigma
    lmax = int(min(3 * nside - 1, np.ceil(6.0 / sigma)))
    dep_nside = nside
    while dep_nside > 16 and 3 * (dep_nside // 2) - 1 >= lmax:
        dep_nside //= 2
    n = int(np.ceil(_STRAND_FILL * 4 * np.pi / (aspect * fwhm * fwhm)))
    length = aspect * fwhm * np.exp(rng.uniform(-0.7, 0.7, size=n))  # log-uniform over a factor 4
    length = np.minimum(length, np.radians(_STRAND_LENGTH_MAX_DEG))
    centre = _seeds(n, density, rng)
    amplitude = np.exp(_STRAND_AMP_SIGMA * rng.standard_normal(n))
    step = _STRAND_STEP * sigma
    deposit = np.zeros(hp.nside2npix(dep_nside))
    n_half = int(np.ceil(0.5 * length.max() / step))
    traced = length.max() > np.radians(_STRAND_TRACE_DEG)
    for sign in (1.0, -1.0):
        p = centre.copy()
        t = _direction_at(directions, p)
        for j in range(n_half + 1):
            if j == 0 and sign < 0:
                continue  # the centre point is deposited once
            s = j * step
            if traced and j > 0:
                p = _normalise(p + sign * step * _direction_at(directions, p))
            elif j > 0:
                p = _offset(centre, sign * t, np.full(n, s))
            alive = s <= 0.5 * length
            taper = np.cos(np.pi * s / length[alive]) ** 2  # Hann window along the strand
            q = p[alive]
            pix = hp.vec2pix(dep_nside, q[:, 0], q[:, 1], q[:, 2])
            deposit += np.bincount(pix, amplitude[alive] * taper, minlength=deposit.size)
    alm = hp.map2alm(deposit, lmax=lmax, iter=0)
    return hp.almxfl(alm, hp.gauss_beam(fwhm, lmax=lmax)), lmax


def _filament_alm(nside: int, slope: float, aspect: float,
                  rng: np.random.Generator) -> tuple[np.ndarray, float] | None:
    """Filament field ``ln(F + <F>)`` (harmonic coefficients at lmax 3 nside − 1) and the top of its band.

    ``F`` is the strand column density, shifted to a minimum of 0. Above the returned multipole the
    narrowest strands no longer carry their share of the power. None if even the widest octave is
    narrower than two pixels (nside < 32).
    """
    lmax = 3 * nside - 1
    directions = field_directions(rng)
    sigma_min = _STRAND_MIN_PIXELS * hp.nside2resol(nside)
    sigmas = []
    sigma = np.radians(_STRAND_SIGMA_MAX_DEG)
    while sigma >= sigma_min:
        sigmas.append(sigma)
        sigma /= 2.0
    if not sigmas:
        return None
    octaves = []
    # Narrower strands cluster where the wider ones are bright: their centres are drawn ∝ exp(β z),
    # z the standardised sum so far, each octave weighted by the target rms per octave ∝ σ^-(slope+2)/2.
    nside_w = min(nside, 256)
    lmax_w = 3 * nside_w - 1
    cumulative = np.zeros(hp.Alm.getsize(lmax_w), dtype=np.complex128)
    density = None
    for sigma in sigmas:
        alm, lmax_k = _strand_octave(nside, sigma, aspect, directions, density, rng)
        octaves.append(hp.resize_alm(alm, lmax_k, lmax_k, lmax, lmax))
        weight = sigma ** (-(slope + 2) / 2) / np.sqrt(_variance(alm, lmax_k))
        cumulative += weight * hp.resize_alm(alm, lmax_k, lmax_k, lmax_w, lmax_w)
        z = hp.alm2map(cumulative, nside_w, lmax=lmax_w)
        # Clipped: the sum of positive strands has a long tail that would otherwise draw every seed.
        density = np.exp(_STRAND_CLUSTERING * np.clip((z - z.mean()) / z.std(), -2.5, 2.5))
    # Weights: octave spectra summed to follow ℓ^slope from ℓ = 4 to the narrowest octave's scale.
    ell_hi = min(lmax, 1.0 / sigmas[-1])
    edges = np.unique(np.geomspace(4, ell_hi, 25).astype(int))
    spectra = np.array([hp.alm2cl(a, lmax=lmax) for a in octaves])
    binned = np.array([[s[lo:hi].mean() for lo, hi in zip(edges[:-1], edges[1:])] for s in spectra])
    centres = np.sqrt(edges[:-1] * edges[1:])
    design = binned / centres**slope
    design /= design.max()
    power_weights, _ = nnls(design.T, np.ones(len(centres)))
    column = hp.alm2map(np.sum([np.sqrt(w) * a for w, a in zip(power_weights, octaves)], axis=0), nside, lmax=lmax)
    # Strands add up like column density; their log is the filament field: bright where strands
    # overlap, but without the run-away tail of a sum of logs.
    column -= column.min()
    return hp.map2alm(np.log(column + column.mean()), lmax=lmax, iter=0), 0.5 / sigmas[-1]


def _target_spectrum(lmax: int, slope: float) -> np.ndarray:
    """``C_ℓ ∝ ℓ^slope`` for ℓ >= 2 (0 below), normalised to unit pixel variance."""
    ell = np.arange(lmax + 1, dtype=float)
    cl = np.zeros(lmax + 1)
    cl[2:] = ell[2:] ** slope
    return cl / (np.sum((2 * ell + 1) * cl) / (4 * np.pi))


def _flatten_latitude(g: np.ndarray, lat_deg: np.ndarray) -> np.ndarray:
    """``g`` minus its median profile in |b| (medians in 5° bins of |b|, interpolated linearly).

    The latitude profile is the envelope's: afterwards the median of ``exp(σ g)`` is ≈ 1 at every
    |b|, so the region medians follow the parameters rather than the largest random modes. Only a
    smooth function of |b| is removed: only m = 0 modes change, mostly at ℓ ≲ 40.
    """
    edges = np.arange(0.0, 90.1, _PROFILE_BIN_DEG)
    abs_lat = np.abs(lat_deg)
    index = np.clip(np.digitize(abs_lat, edges) - 1, 0, len(edges) - 2)
    order = np.argsort(index, kind="stable")
    bounds = np.searchsorted(index[order], np.arange(len(edges)))
    medians = np.array([np.median(g[order[a:b]]) for a, b in zip(bounds[:-1], bounds[1:])])
    return g - np.interp(abs_lat, 0.5 * (edges[:-1] + edges[1:]), medians)


def disk_longitude(lon_deg: np.ndarray) -> np.ndarray:
    """Λ(l): brightness of the thin disk at b = 0 relative to the Galactic centre."""
    lon = (np.asarray(lon_deg) + 180.0) % 360.0 - 180.0
    return _DISK_OUTER_FRACTION + (1 - _DISK_OUTER_FRACTION) * np.exp(-0.5 * (lon / _DISK_LON_SIGMA_DEG) ** 2)


def disk_height_deg(lon_deg: np.ndarray) -> np.ndarray:
    """h(l): angular scale height of the thin disk [deg]."""
    return _DISK_H_INNER_DEG + (_DISK_H_OUTER_DEG - _DISK_H_INNER_DEG) * np.sin(np.radians(lon_deg) / 2) ** 2


def slab(lat_deg: np.ndarray, pole_mjysr: float, disk_width_deg: float, cavity_fraction: float) -> np.ndarray:
    """``E_slab(b)`` [MJy/sr]: cosecant law softened at |b| < w, less the local cavity; = I_pole at the poles."""
    sin_w2 = np.sin(np.radians(disk_width_deg)) ** 2
    s = np.sqrt((np.sin(np.radians(lat_deg)) ** 2 + sin_w2) / (1.0 + sin_w2))
    return pole_mjysr * (1.0 / s - cavity_fraction) / (1.0 - cavity_fraction)


def envelope(lon_deg: np.ndarray, lat_deg: np.ndarray, pole_mjysr: float, disk_width_deg: float,
             cavity_fraction: float, plane_mjysr: float) -> np.ndarray:
    """Smooth large-scale brightness ``E_slab + E_disk`` [MJy/sr] (no fluctuations, no clouds)."""
    disk = plane_mjysr * disk_longitude(lon_deg) / np.cosh(lat_deg / disk_height_deg(lon_deg))
    return slab(lat_deg, pole_mjysr, disk_width_deg, cavity_fraction) + disk


def _power_law(n: int, low: float, high: float, index: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` draws of dN/dA ∝ A^-index on [low, high]."""
    a, b = low ** (1 - index), high ** (1 - index)
    return (a + (b - a) * rng.random(n)) ** (1 / (1 - index))


def _lonlat_vec(lon_deg: np.ndarray, lat_deg: np.ndarray) -> np.ndarray:
    lon, lat = np.radians(lon_deg), np.radians(lat_deg)
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)


def _paint(g: np.ndarray, centres: np.ndarray, sizes: np.ndarray, peaks: np.ndarray, texture: np.ndarray,
           rng: np.random.Generator) -> np.ndarray:
    """Clouds shaped by the fluctuation field ``g``: each is ``A W(n) exp(κ g(n))`` scaled as below.

    ``W`` is an elliptical Plummer-like envelope ``(1 + r²/2)^-2 (1 − r²/r_max²)²`` in units of its
    σ (``sizes`` [rad] along the major axis, axis ratio 1–3, random orientation), widened to the pixel
    with its flux kept, out to ``r_max`` = 4 σ; ``κ`` = ``texture``. The envelope sets where the
    cloud is, the texture its irregular, clumpy shape. ``A`` is the _CLOUD_PEAK_PERCENTILE-th
    percentile of the cloud's pixels: the densest cores exceed it.
    """
    nside = hp.get_nside(g)
    out = np.zeros(g.size)
    pixel_var = hp.nside2pixarea(nside) / 6.0  # twice the per-axis variance of a pixel-wide top hat
    ratio = rng.uniform(1.0, 3.0, len(centres))
    angle = rng.uniform(0.0, np.pi, len(centres))
    east = _tangent(centres, np.cross([0.0, 0.0, 1.0], centres) + [1e-9, 0.0, 0.0])
    north = np.cross(centres, east)
    r_max = 4.0
    for c, e, nrt, size, a, kappa, q, phi in zip(centres, east, north, sizes, peaks, texture, ratio, angle):
        var_major, var_minor = size**2 + pixel_var, (size / q) ** 2 + pixel_var
        amplitude = a * size**2 / q / np.sqrt(var_major * var_minor)
        pix = hp.query_disc(nside, c, r_max * np.sqrt(var_major))
        if pix.size == 0:
            pix = np.array([hp.vec2pix(nside, *c)])
        v = np.stack(hp.pix2vec(nside, pix), axis=-1)
        x, y = v @ e, v @ nrt
        u, w = x * np.cos(phi) + y * np.sin(phi), -x * np.sin(phi) + y * np.cos(phi)
        r2 = np.minimum(u**2 / var_major + w**2 / var_minor, r_max**2 * (1 - 1e-9))
        log_shape = -2.0 * np.log1p(0.5 * r2) + 2.0 * np.log1p(-r2 / r_max**2) + kappa * g[pix]
        out[pix] += amplitude * np.exp(log_shape - np.percentile(log_shape, _CLOUD_PEAK_PERCENTILE))
    return out


def cloud_map(g: np.ndarray, slab_level, plane_mjysr: float, plane_clouds: int, cloud_index: float,
              rng: np.random.Generator) -> np.ndarray:
    """The compact-cloud component ``C`` [MJy/sr], textured by the fluctuation field ``g``.

    ``slab_level(lat_deg)`` is ``E_slab``: translucent clouds are that many times brighter than it.
    """
    centres, sizes, peaks, textures = [], [], [], []

    def add(where, size_range, peak, texture):
        centres.append(where)
        sizes.append(np.radians(np.exp(rng.uniform(*np.log(size_range), len(where)))))
        peaks.append(peak)
        textures.append(np.full(len(where), texture))

    # Distant clouds in the thin disk: longitudes drawn from Λ(l), latitudes within h(l)/2.
    lon = rng.uniform(-180.0, 180.0, 8 * plane_clouds)
    lon = lon[rng.random(lon.size) < disk_longitude(lon)][:plane_clouds]
    lat = rng.laplace(0.0, 0.5 * disk_height_deg(lon))
    level = plane_mjysr * disk_longitude(lon)
    add(_lonlat_vec(lon, lat), _PLANE_SIZE_DEG, level * _power_law(lon.size, *_PLANE_RATIO, cloud_index, rng),
        _PLANE_TEXTURE)
    # Nearby complexes around a tilted great circle (Gould-Belt-like).
    n, size, peak = _GOULD
    node = np.radians(_GOULD_NODE_DEG)
    axis = np.array([np.cos(node), np.sin(node), 0.0])
    tilt = np.radians(_GOULD_TILT_DEG)
    normal = np.cos(tilt) * np.array([0.0, 0.0, 1.0]) - np.sin(tilt) * np.cross([0.0, 0.0, 1.0], axis)
    phase = rng.uniform(0, 2 * np.pi, n)
    ring = np.cos(phase)[:, None] * axis + np.sin(phase)[:, None] * np.cross(normal, axis)
    scatter = np.radians(_GOULD_SCATTER_DEG) * rng.standard_normal(n)
    add(_offset(ring, np.broadcast_to(normal, ring.shape), scatter), size, _power_law(n, *peak, cloud_index, rng),
        _CLOUD_TEXTURE)
    # Translucent high-latitude clouds.
    n, size, peak = _TRANSLUCENT
    lat = np.minimum(_TRANSLUCENT_LAT_DEG[0] + rng.exponential(_TRANSLUCENT_LAT_DEG[1], n), 85.0)
    lat *= rng.choice([-1.0, 1.0], n)
    add(_lonlat_vec(rng.uniform(0, 360, n), lat), size,
        slab_level(lat) * _power_law(n, *peak, cloud_index, rng), _CLOUD_TEXTURE)
    return _paint(g, *(np.concatenate(x) for x in (centres, sizes, peaks, textures)), rng)


def synthetic_dust_map(nside: int, seed: int, slope: float = -2.5, sigma_ln: float = 0.6,
                       filament_fraction: float = 0.7, pole_mjysr: float = 0.04,
                       disk_width_deg: float = 3.0, cavity_fraction: float = 0.8,
                       plane_mjysr: float = 400.0, plane_clouds: int = 1500, cloud_index: float = 1.8,
                       filament_aspect: float = 12.0) -> np.ndarray:
    """Synthetic 353 GHz dust intensity, HEALPix RING, Galactic coordinates (model: module docstring).

    Deterministic: one seed, one map (three independent streams from ``SeedSequence(seed)``: the
    Gaussian field, the filaments, the clouds).

    Parameters
    ----------
    nside : int
        HEALPix resolution (filaments need nside >= 32; 512 takes ~5 s on one core).
    seed : int
        Seed of every random draw; the same seed gives a bit-identical map.
    slope : float
        Power-law index of the spectrum of the log-intensity fluctuations ``g`` (dust: about -2.5).
    sigma_ln : float
        rms of ``ln I`` about the smooth envelope (the fluctuation field ``g`` has unit variance).
    filament_fraction : float
        Share ``f`` of the power of ``g`` carried by the filaments, in [0, 1], at the multipoles
        where they have power (up to ℓ ≈ 1/σ of the narrowest strands, two pixel sides wide).
    pole_mjysr : float
        ``E_slab`` at the poles, ≈ the median intensity at |b| > 80° [MJy/sr].
    disk_width_deg : float
        Softening latitude ``w`` of the slab's ``1/sin|b|`` profile [deg].
    cavity_fraction : float
        Share ``c`` of the polar slab column missing around the Sun (Local Bubble), in [0, 1).
    plane_mjysr : float
        Smooth thin-disk brightness towards l = 0, b = 0 [MJy/sr] (before fluctuations and clouds).
    plane_clouds : int
        Number of compact clouds in the thin disk.
    cloud_index : float
        Index of the peak-brightness distribution of clouds, dN/dA ∝ A^-index (> 1).
    filament_aspect : float
        Typical filament length / FWHM (log-uniform over a factor 4 around it).

    Returns
    -------
    numpy.ndarray, float64 [12 nside²]
        Dust intensity in MJy/sr; strictly positive and finite.
    """
    gauss_rng, filament_rng, cloud_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    lmax = 3 * nside - 1
    alm = fluctuation_alm(nside, slope, filament_fraction, filament_aspect, gauss_rng, filament_rng)
    lon, lat = hp.pix2ang(nside, np.arange(hp.nside2npix(nside)), lonlat=True)
    g = _flatten_latitude(hp.alm2map(alm, nside, lmax=lmax), lat)
    diffuse = envelope(lon, lat, pole_mjysr, disk_width_deg, cavity_fraction, plane_mjysr) * np.exp(sigma_ln * g)
    # Cloud texture: g without ℓ > _TEXTURE_LMAX, so that exp(κ g) in clouds does not depend on nside.
    ell = np.arange(lmax + 1)
    taper = np.sin(0.5 * np.pi * np.clip((_TEXTURE_LMAX - ell) / (0.25 * _TEXTURE_LMAX), 0.0, 1.0)) ** 2
    texture = _flatten_latitude(hp.alm2map(hp.almxfl(alm, taper), nside, lmax=lmax), lat)
    clouds = cloud_map(texture, lambda b: slab(b, pole_mjysr, disk_width_deg, cavity_fraction),
                       plane_mjysr, plane_clouds, cloud_index, cloud_rng)
    return diffuse + clouds


def fluctuation_alm(nside: int, slope: float, filament_fraction: float, filament_aspect: float,
                    gauss_rng: np.random.Generator, filament_rng: np.random.Generator) -> np.ndarray:
    """Harmonic coefficients (lmax 3 nside − 1) of the unit-variance fluctuation field ``g``.

    The filament field carries ``filament_fraction`` × C_ℓ^target in its band and is filtered down
    to that wherever it has more; a Gaussian field supplies what is left at every ℓ, so ``g`` has
    ``C_ℓ ∝ ℓ^slope`` (up to the draw's scatter).
    """
    lmax = 3 * nside - 1
    target = _target_spectrum(lmax, slope)
    alm = np.zeros(hp.Alm.getsize(lmax), dtype=np.complex128)
    filaments = _filament_alm(nside, slope, filament_aspect, filament_rng) if filament_fraction > 0 else None
    if filaments is not None:
        fil, ell_top = filaments
        cl = hp.alm2cl(fil, lmax=lmax)
        ell = np.arange(lmax + 1)
        band = (ell >= max(4.0, 0.1 * ell_top)) & (ell <= ell_top)
        scale = filament_fraction * np.median(target[band] / cl[band])
        gain = np.sqrt(np.minimum(scale, filament_fraction * target / np.where(cl > 0, cl, np.inf)))
        alm = hp.almxfl(fil, gain)
    residual = np.clip(target - hp.alm2cl(alm, lmax=lmax), 0.0, None)
    alm += _power_alm(lmax, residual, gauss_rng)
    return alm / np.sqrt(_variance(alm, lmax))


def lognormal_reference(nside: int, seed: int, slope: float = -2.5, sigma_ln: float = 0.6,
                        pole_mjysr: float = 0.04, disk_width_deg: float = 3.0, cavity_fraction: float = 0.8,
                        plane_mjysr: float = 400.0, **_ignored) -> np.ndarray:
    """The same envelope times ``exp(σ g)`` with ``g`` Gaussian (same spectrum): no filaments, no clouds.

    The log-normal reference that measurements of non-Gaussianity compare with (benchmarks, tests).
    Accepts the keyword arguments of :func:`synthetic_dust_map` and ignores the filament and cloud
    ones.
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[0])
    lmax = 3 * nside - 1
    alm = _power_alm(lmax, _target_spectrum(lmax, slope), rng)
    g = hp.alm2map(alm, nside, lmax=lmax) / np.sqrt(_variance(alm, lmax))
    lon, lat = hp.pix2ang(nside, np.arange(hp.nside2npix(nside)), lonlat=True)
    g = _flatten_latitude(g, lat)
    return envelope(lon, lat, pole_mjysr, disk_width_deg, cavity_fraction, plane_mjysr) * np.exp(sigma_ln * g)
