"""Benchmark: the patch band-limit on ln I (new) against the linear one on I (old).

Prints four tables for the paper grid (1034 patches of 20°, 64² by default, ℓ_Nyq = 576):

1. Non-positive patch pixels on a high-contrast positive sky (plane/pole ~1e5, a few dozen compact
   clouds at 1e3–1e4 × their surroundings): no band-limit; the previous code (linear on I);
   the linear filter with the mean passed around the transform (:func:`harmonic_lowpass`); the
   linear filter on ``I / P(b)``, a smooth latitude profile divided out and restored; ln I (new).
2. Residual aliasing on that sky: ``(C_N - C_4N) / C_true`` per ℓ ring, with ``C_N`` the spectrum
   of the npix-N cut, ``C_4N`` that of a 4× oversampled cut of the same band-limited map (rings
   1 … N/2 only; its own Nyquist is 4× higher, so it holds no aliased power) and ``C_true`` the
   oversampled spectrum of the unfiltered sky. Both cuts sample the same bilinear interpolant, so
   their difference is the power folded back from above the patch Nyquist, in units of the sky's
   real power at that ℓ. It can be negative: a folded mode adds coherently to the true one at the
   same wave-vector, and their cross term can outweigh the folded power. Spectra use a separable
   cos² apodisation, identical in continuous coordinates for both grids: the patch edges are not
   periodic, and their leakage would otherwise alias too and swamp the top rings. Printed: the
   largest |value| in four ℓ bands, for the mean spectra over all patches and for the median patch
   (nan for ln I where the cut has pixels <= 0). A 4N cut averaged down 4×4 is not used as the
   reference: the box average is itself a low-pass (0.43 in power at Nyquist along an axis) and
   would mix suppression with aliasing.
3. On the synthetic stand-in sky (params.yaml ``seed`` and ``sky.synthetic``, nside 512), where
   the old method works: mean patch spectrum ratio new/old per ring (unapodised, as the pipeline's
   ``power_spectrum``), pixel-level and patch-mean differences, and the mean bias
   ``exp(-σ²_rem/2)`` predicted from the ln I power the filter removes; the ratio is checked
   against SPECTRUM_TOLERANCE below the taper (in the taper both windows are conventions).
4. Ringing around one 0.5° FWHM cloud 1e4 × a flat background (nside 256): the peak, and the
   range of the filtered map beyond 3 FWHM, in units of the background.

Usage: python benchmarks/bench_bandlimit.py [--nside 256] [--npix 64] [--params params.yaml]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import math
import time

import healpy as hp
import numpy as np

from dustcmb.config import load_params
from dustcmb.patches.cutter import TAPER_START, bandlimit, cut_patches, harmonic_lowpass, lowpass_window
from dustcmb.patches.grid import patch_centres
from dustcmb.sky.synthetic import synthetic_dust_map
from dustcmb.stats.power import power_spectrum

SIZE_DEG = 20.0
OVERSAMPLE = 4
# Allowed |<C_new>/<C_old> - 1| below the taper on the stand-in sky: it must cover the expected
# exp(-σ²_rem) - 1 (about -1.3 % there), and it stays ~7× below the statistical error of the mean
# spectrum of the patch set (14–20 % per ring), so no spectral comparison downstream can tell.
SPECTRUM_TOLERANCE = 0.02


def contrast_sky(nside: int, seed: int, n_clouds: int = 40) -> np.ndarray:
    """Positive test sky [MJy/sr]: plane/pole ~1e5, log-normal texture, compact bright clouds.

    A csc|b| slab softened at 1° times a log-normal field (the stand-in model with sigma_ln 0.8),
    times a 2°-thick molecular layer 1e3 × brighter; plus ``n_clouds`` Gaussian clouds of 0.5–2°
    FWHM peaking at 1e3–1e4 × the local level, half of them at 20° < |b| < 40°, the rest spread
    uniformly over the sphere at |b| > 10° (sin 10° = 0.17).
    """
    sky = synthetic_dust_map(nside, seed, sigma_ln=0.8, pole_mjysr=0.02, disk_width_deg=1.0)
    _, lat = hp.pix2ang(nside, np.arange(sky.size), lonlat=True)
    sky *= 1.0 + 1e3 * np.exp(-0.5 * (lat / 2.0) ** 2)
    rng = np.random.default_rng(seed)
    vec = np.array(hp.pix2vec(nside, np.arange(sky.size)))
    local = sky.copy()
    for k in range(n_clouds):
        abs_b = rng.uniform(20, 40) if k % 2 else math.degrees(math.asin(rng.uniform(0.17, 1)))
        centre = hp.ang2vec(rng.uniform(0, 360), rng.choice([-1, 1]) * abs_b, lonlat=True)
        sigma = math.radians(rng.uniform(0.5, 2.0)) / math.sqrt(8 * math.log(2))
        disc = hp.query_disc(nside, centre, 6 * sigma)
        peak = 10 ** rng.uniform(3, 4) * local[hp.vec2pix(nside, *centre)]
        sky[disc] += peak * np.exp(-(1 - centre @ vec[:, disc]) / sigma**2)  # 2(1 - cos r) ≈ r²
    return sky


def previous_bandlimit(hpmap: np.ndarray, lmax_patch: int) -> np.ndarray:
    """The band-limit as it was: the linear window applied to I itself, mean included."""
    alm = hp.map2alm(hpmap, lmax=lmax_patch, iter=1)
    return hp.alm2map(hp.almxfl(alm, lowpass_window(lmax_patch)), hp.get_nside(hpmap), lmax=lmax_patch)


def profile_bandlimit(hpmap: np.ndarray, lmax_patch: int) -> np.ndarray:
    """Linear band-limit of ``I / P(b)``, times ``P(b)``: P = median I in 1° latitude rings."""
    _, lat = hp.pix2ang(hp.get_nside(hpmap), np.arange(hpmap.size), lonlat=True)
    ring = np.minimum((lat + 90.0).astype(int), 179)
    median_log = np.array([np.median(np.log(hpmap[ring == k])) for k in range(180)])
    profile = np.exp(np.interp(lat, np.arange(180) - 89.5, median_log))
    return profile * harmonic_lowpass(hpmap / profile, lmax_patch)


def patch_spectra(hpmap: np.ndarray, npix: int, lon, lat, chunk: int = 64) -> np.ndarray:
    """cos²-apodised spectra [2, n_patches, npix/2] of I and ln I (ln I NaN where a pixel <= 0)."""
    x = (np.arange(npix) + 0.5) / npix - 0.5
    window = np.outer(np.cos(np.pi * x) ** 2, np.cos(np.pi * x) ** 2)
    out = np.empty((2, lon.size, npix // 2))
    for first in range(0, lon.size, chunk):
        patches = cut_patches(hpmap, lon[first:first + chunk], lat[first:first + chunk], npix, SIZE_DEG,
                              progress=False).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            for k, values in enumerate((patches, np.log(patches))):
                values = values - values.mean(axis=(1, 2), keepdims=True)
                out[k, first:first + chunk] = power_spectrum(values * window, SIZE_DEG)[1] / np.mean(window**2)
    return out


def positivity(maps: dict, npix: int, lon, lat) -> None:
    """Table 1: pixels <= 0 in the patches of every band-limited map."""
    print(f"{'band-limit':<22}{'pixels <= 0':>12}{'patches':>9}{'min MJy/sr':>12}")
    for name, hpmap in maps.items():
        patches = cut_patches(hpmap, lon, lat, npix, SIZE_DEG, progress=False)
        bad = ~(patches > 0)
        print(f"{name:<22}{int(bad.sum()):>12}{np.unique(np.nonzero(bad)[0]).size:>9}{patches.min():>12.3g}")


def aliasing(maps: dict, npix: int, lon, lat) -> None:
    """Table 2: largest |(C_N - C_4N) / C_true| per ℓ band, mean spectra and median patch."""
    edges = [0.0, 0.5, TAPER_START, 0.9, 1.0]
    ring = np.arange(1, npix // 2 + 1) / (npix // 2)
    bands = [(ring > lo) & (ring <= hi) for lo, hi in itertools.pairwise(edges)]
    labels = [f"{lo:g}–{hi:g}" for lo, hi in itertools.pairwise(edges)]
    print(f"{'band-limit':<22}{'':>5}" + "".join(f"{'mean ' + b:>16}" for b in labels)
          + "".join(f"{'median ' + b:>18}" for b in labels))
    names = ("none", "linear, mean kept", "new (ln I)")
    fine = {name: patch_spectra(maps[name], OVERSAMPLE * npix, lon, lat)[:, :, : npix // 2] for name in names}
    true = fine["none"]
    for name in names:
        coarse = patch_spectra(maps[name], npix, lon, lat)
        for k, domain in enumerate(("I", "ln I")):
            of_mean = np.abs(coarse[k].mean(0) - fine[name][k].mean(0)) / true[k].mean(0)
            of_median = np.abs(np.median((coarse[k] - fine[name][k]) / true[k], axis=0))
            print(f"{name:<22}{domain:>5}" + "".join(f"{of_mean[b].max():>16.2e}" for b in bands)
                  + "".join(f"{of_median[b].max():>18.2e}" for b in bands))


def contrast_tables(nside: int, npix: int, lon, lat) -> None:
    """Tables 1 and 2 on :func:`contrast_sky`."""
    sky = contrast_sky(nside, seed=7)
    _, sky_lat = hp.pix2ang(nside, np.arange(sky.size), lonlat=True)
    contrast = np.median(sky[np.abs(sky_lat) < 1]) / np.median(sky[np.abs(sky_lat) > 80])
    print(f"\n1. contrast sky, nside {nside}: {sky.min():.2g}–{sky.max():.3g} MJy/sr, median |b|<1° / "
          f"|b|>80° = {contrast:.2g}; {lon.size} patches of {npix}²")
    lmax = int(180.0 / (SIZE_DEG / npix))
    maps = {"none": sky, "previous (I)": previous_bandlimit(sky, lmax),
            "linear, mean kept": harmonic_lowpass(sky, lmax), "I / P(b)": profile_bandlimit(sky, lmax),
            "new (ln I)": bandlimit(sky, lmax)}
    positivity(maps, npix, lon, lat)
    print(f"\n2. aliased power |C_{npix} - C_{OVERSAMPLE * npix}| / C_true, largest in each band of ℓ / ℓ_Nyq")
    aliasing(maps, npix, lon, lat)


def removed_log_variance(hpmap: np.ndarray, lmax_patch: int) -> float:
    """Variance of ln I the filter removes: Σ (2ℓ+1)/4π C_ℓ(ln I) (1 - w_ℓ²), w = 0 above ℓ_Nyq."""
    cl = hp.anafast(np.log(hpmap), iter=1)
    kept = np.zeros(cl.size)
    kept[: lmax_patch + 1] = lowpass_window(lmax_patch) ** 2
    ell = np.arange(cl.size)
    return float(np.sum((2 * ell + 1) / (4 * math.pi) * cl * (1 - kept)))


def stand_in_table(params_path: str, npix: int, lon, lat) -> None:
    """Table 3: new against the previous code on the stand-in sky, where the latter stays positive."""
    params = load_params(params_path)
    nside = 512
    sky = synthetic_dust_map(nside, params.seed, **dataclasses.asdict(params.sky.synthetic))
    lmax = int(180.0 / (SIZE_DEG / npix))
    old = cut_patches(previous_bandlimit(sky, lmax), lon, lat, npix, SIZE_DEG, progress=False).astype(float)
    new = cut_patches(bandlimit(sky, lmax), lon, lat, npix, SIZE_DEG, progress=False).astype(float)
    ell, cl_old = power_spectrum(old, SIZE_DEG)
    cl_new = power_spectrum(new, SIZE_DEG)[1]
    ratio = cl_new.mean(axis=0) / cl_old.mean(axis=0)
    # Independent 20° squares in |b| > 15°: the overlapping grid holds no more information.
    n_independent = 4 * math.pi * (1 - math.sin(math.radians(15))) / math.radians(SIZE_DEG) ** 2
    error = cl_old.std(axis=0) / cl_old.mean(axis=0) / math.sqrt(n_independent)
    print(f"\n3. stand-in sky (seed {params.seed}, nside {nside}); previous patches {old.min():.3g}–"
          f"{old.max():.3g} MJy/sr, all > 0")
    print(f"{'ring':>4}{'ℓ':>6}{'<C_new>/<C_old>':>17}{'σ(<C>)/<C>':>12}"
          f"   (σ: patch scatter / √{n_independent:.0f})")
    for i in range(ell.size):
        print(f"{i + 1:>4}{ell[i]:>6.0f}{ratio[i]:>17.4f}{error[i]:>12.3f}")
    below = ell < TAPER_START * lmax
    relative = np.abs(new / old - 1)
    mean_ratio = new.mean(axis=(1, 2)) / old.mean(axis=(1, 2))
    sigma2 = removed_log_variance(sky, lmax)
    worst = np.abs(ratio[below] - 1).max()
    verdict = "within" if worst < SPECTRUM_TOLERANCE else "OUTSIDE"
    print(f"max |ratio - 1| for ℓ < {TAPER_START:g} ℓ_Nyq ({below.sum()} rings): {worst:.4f}, {verdict} the "
          f"{SPECTRUM_TOLERANCE:.0%} tolerance; in the taper: {np.abs(ratio[~below] - 1).max():.4f}")
    print(f"pixel |new/old - 1|: median {np.median(relative):.2e}, 99% {np.percentile(relative, 99):.2e}, "
          f"max {relative.max():.2e}")
    print(f"patch mean new/old: median {np.median(mean_ratio):.4f}, range {mean_ratio.min():.4f}–"
          f"{mean_ratio.max():.4f}; predicted exp(-σ²_rem/2) = {math.exp(-sigma2 / 2):.4f} "
          f"(σ²_rem = {sigma2:.4f}: ln I variance removed)")


def ringing_table(npix: int) -> None:
    """Table 4: one compact cloud on a flat background, both filters."""
    nside, fwhm = 256, 0.5
    sigma = math.radians(fwhm) / math.sqrt(8 * math.log(2))
    centre = hp.ang2vec(30.0, 30.0, lonlat=True)
    cos_r = centre @ np.array(hp.pix2vec(nside, np.arange(hp.nside2npix(nside))))
    sky = 1.0 + 1e4 * np.exp(-(1 - cos_r) / sigma**2)
    far = cos_r < math.cos(math.radians(3 * fwhm))
    lmax = int(180.0 / (SIZE_DEG / npix))
    print(f"\n4. one {fwhm}° FWHM cloud, 1e4 × a flat background of 1, nside {nside}")
    print(f"{'band-limit':<22}{'peak / true':>12}{'beyond 3 FWHM':>20}")
    for name, band in (("linear, mean kept", harmonic_lowpass), ("new (ln I)", bandlimit)):
        filtered = band(sky, lmax)
        print(f"{name:<22}{filtered.max() / sky.max():>12.3f}"
              f"{filtered[far].min():>11.3g} … {filtered[far].max():.3g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nside", type=int, default=256, help="nside of the contrast sky")
    parser.add_argument("--npix", type=int, default=64)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    lon, lat = patch_centres(5.0, 25.0)
    start = time.perf_counter()
    contrast_tables(args.nside, args.npix, lon, lat)
    stand_in_table(args.params, args.npix, lon, lat)
    ringing_table(args.npix)
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
