"""Properties of the synthetic 353 GHz dust map, each beside the real sky's value and its source.

Prints one table (docs/science.md#synthetic-sky):

- brightness: plane (|b| < 5°) median and maximum, inner-plane median (|b| < 1°, |l| < 30°), polar
  (|b| > 80°) and high-latitude (|b| > 25°) medians, plane/pole contrast (plane max / pole median);
- one-point statistics of ln I: skewness and excess kurtosis of ln I minus its 5°-smoothed version
  over |b| > 30°, and per 64² patch of the 1034-patch grid (median over patches), for the map and
  for the log-normal reference (same envelope and spectrum, Gaussian ln I, no filaments or clouds);
- angular power spectrum slopes of I and of ln I at high latitude: ``healpy.anafast`` of the map
  times an apodised mask (0 at |b| < 30°, a sin² ramp to 1 at |b| = 40°), divided by the mean squared
  mask, least-squares fit of ln C_ℓ against ln ℓ over 50 < ℓ < 500. The mask's coupling of multipoles
  biases such a fit slightly (the published slopes are mask-deconvolved PolSpice/Xpol estimates);
- Minkowski V1/V2 of the 64² patches (unit domain, 50 thresholds over [-1, 1]) against the
  project's log-normal baseline (Gaussian ln I with the same mean patch spectrum, rank-matched to the
  same pooled PDF, :func:`dustcmb.evaluation.baselines.lognormal_baseline`): the largest difference
  of the set means in units of the synthetic set's bootstrap spread (1000 resamples), and relative
  to the curve's peak. A second log-normal draw against the first is the control for "no difference".
  The 1034 patches overlap, so the bootstrap spread understates the sampling error (science notes,
  "Overlapping patches"); the control row shows the scale of the noise.

Patches are cut as the pipeline does but band-limited in ln I (the cutter's cos² window applied to
the harmonic coefficients of ln I, then exponentiated), which cannot ring negative around the plane.

Usage: ``python benchmarks/synthetic_sky_properties.py [--nside 512] [--seed 0] [--figures DIR]``
(about a minute at nside 512 on one core; ``--figures`` also writes a log-scale Mollweide view and a
grid of 12 high-latitude patches).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import healpy as hp
import numpy as np

from dustcmb.config import Params
from dustcmb.evaluation.baselines import lognormal_baseline
from dustcmb.patches.cutter import TAPER_START, cut_patches
from dustcmb.patches.grid import patch_centres
from dustcmb.patches.normalise import log_range, to_unit
from dustcmb.sky.synthetic import lognormal_reference, synthetic_dust_map
from dustcmb.stats.bootstrap import bootstrap
from dustcmb.stats.minkowski import minkowski

SIZE_DEG, NPIX = 20.0, 64
FIT = (50, 500)
# Real-sky values. "approx." marks estimates from the cited maps and papers, not quoted numbers.
SOURCES = {
    "plane_median": ("approx. 10-30", "estimate from Planck 2013 XI maps (|b|<5° mixes inner and outer plane)"),
    "plane_max": ("approx. 1e3-5e3", "estimate, GNILC (Planck int. XLVIII) at 5': Sgr B2, W43, W49, Cygnus X"),
    "inner_plane": ("approx. 1e2-1e3", "Planck 2013 XI maps: hundreds to >1000 MJy/sr in the inner plane"),
    "pole": ("approx. 0.02-0.05", "N_HI ≈ 1e20 cm^-2 at the poles × approx. 0.04 MJy/sr per 1e20 H"),
    "high_lat": ("approx. 0.1-0.3", "Planck 2013 XI / GNILC (int. XLVIII) / Planck 2015 X maps, |b| > 25°"),
    "contrast": ("approx. 1e4-1e5", "plane peak / pole median from the rows above"),
    "slope_I": ("approx. -2.4 to -2.7", "Planck int. XXX: α_EE,BB = -2.42 ± 0.02 (40<ℓ<600); I taken similar"),
    "slope_lnI": ("approx. -2.4 to -2.7", "not published for ln I; the model's input slope is -2.5"),
    "skew": ("> 0, no number", "no published value; bright clouds give a bright tail, Gaussian ln I 0"),
    "kurt": ("> 0, no number", "no published value; Gaussian ln I gives 0"),
    "mink": ("≫ 1, no number", "control: a second log-normal draw against the first"),
}


def lonlat(nside: int) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = hp.pix2ang(nside, np.arange(hp.nside2npix(nside)), lonlat=True)
    return (lon + 180.0) % 360.0 - 180.0, lat


def apodised_mask(lat: np.ndarray, cut_deg: float = 30.0, ramp_deg: float = 10.0) -> np.ndarray:
    """0 at |b| < cut, sin² ramp to 1 at |b| = cut + ramp."""
    x = np.clip((np.abs(lat) - cut_deg) / ramp_deg, 0.0, 1.0)
    return np.sin(0.5 * np.pi * x) ** 2


def spectrum_slope(values: np.ndarray, mask: np.ndarray, fit=FIT) -> float:
    """Slope of ln C_ℓ vs ln ℓ over ``fit`` of ``values`` (mask-weighted mean removed) times ``mask``."""
    mean = np.sum(values * mask) / np.sum(mask)
    cl = hp.anafast((values - mean) * mask, lmax=fit[1] + 50, iter=1) / np.mean(mask**2)
    ell = np.arange(cl.size)
    sel = (ell > fit[0]) & (ell < fit[1])
    return float(np.polyfit(np.log(ell[sel]), np.log(cl[sel]), 1)[0])


def skew_kurt(x: np.ndarray, axis=None) -> tuple[np.ndarray, np.ndarray]:
    d = x - x.mean(axis=axis, keepdims=True)
    var = np.mean(d**2, axis=axis)
    return np.mean(d**3, axis=axis) / var**1.5, np.mean(d**4, axis=axis) / var**2 - 3.0


def high_pass_log(hpmap: np.ndarray, lat: np.ndarray, lat_min: float = 30.0, fwhm_deg: float = 5.0) -> np.ndarray:
    """ln I minus ln I smoothed with a ``fwhm_deg`` Gaussian, for pixels at |b| > ``lat_min``.

    Removing the large scales leaves many independent modes, so a Gaussian ln I gives skewness and
    kurtosis 0 to within a few hundredths (unlike the few dominant ℓ < 10 modes of the raw field).
    """
    log = np.log(hpmap)
    return (log - hp.smoothing(log, fwhm=np.radians(fwhm_deg), iter=1))[np.abs(lat) > lat_min]


def bandlimit_log(hpmap: np.ndarray, lmax: int) -> np.ndarray:
    """``exp`` of ln I low-passed with the patch cutter's cos² window up to ``lmax``."""
    ell = np.arange(lmax + 1)
    start = TAPER_START * lmax
    window = np.where(ell <= start, 1.0, np.cos(0.5 * np.pi * (ell - start) / (lmax - start)) ** 2)
    alm = hp.map2alm(np.log(hpmap), lmax=lmax, iter=1)
    return np.exp(hp.alm2map(hp.almxfl(alm, window), hp.get_nside(hpmap), lmax=lmax))


def minkowski_gap(a: np.ndarray, b: np.ndarray, spread: np.ndarray) -> tuple[float, float]:
    """Largest |mean a − mean b| over thresholds in units of ``spread``, and relative to max |mean a|."""
    diff = np.abs(a.mean(0) - b.mean(0))
    ok = spread > 0.05 * spread.max()
    return float(np.max(diff[ok] / spread[ok])), float(diff.max() / np.abs(a.mean(0)).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nside", type=int, default=512)
    parser.add_argument("--seed", type=int, default=Params().seed)
    parser.add_argument("--figures", type=Path, default=None, help="also write figures into this folder")
    args = parser.parse_args()
    params = dataclasses.asdict(Params().sky.synthetic)
    t0 = time.perf_counter()
    sky = synthetic_dust_map(args.nside, args.seed, **params)
    t_map = time.perf_counter() - t0
    lon, lat = lonlat(args.nside)
    reference = lognormal_reference(args.nside, args.seed, **params)
    rows = []

    def row(name, key, value, fmt="{:.3g}"):
        real, source = SOURCES[key]
        rows.append((name, fmt.format(value) if not isinstance(value, str) else value, real, source))

    plane, pole, high = np.abs(lat) < 5, np.abs(lat) > 80, np.abs(lat) > 25
    inner = (np.abs(lat) < 1) & (np.abs(lon) < 30)
    row("plane |b|<5° median [MJy/sr]", "plane_median", np.median(sky[plane]))
    row("plane |b|<5° max [MJy/sr]", "plane_max", sky[plane].max())
    row("inner plane |b|<1°,|l|<30° median", "inner_plane", np.median(sky[inner]))
    row("pole |b|>80° median [MJy/sr]", "pole", np.median(sky[pole]))
    row("|b|>25° median [MJy/sr]", "high_lat", np.median(sky[high]))
    row("contrast plane max / pole median", "contrast", sky[plane].max() / np.median(sky[pole]))

    mask = apodised_mask(lat)
    row(f"C_ℓ slope of I, |b|>30°, {FIT[0]}<ℓ<{FIT[1]}", "slope_I", spectrum_slope(sky, mask), "{:.2f}")
    row(f"C_ℓ slope of ln I, |b|>30°, {FIT[0]}<ℓ<{FIT[1]}", "slope_lnI", spectrum_slope(np.log(sky), mask), "{:.2f}")
    row("  log-normal reference: slope of I", "slope_I", spectrum_slope(reference, mask), "{:.2f}")

    s, k = skew_kurt(high_pass_log(sky, lat))
    s_ref, k_ref = skew_kurt(high_pass_log(reference, lat))
    row("skew of ln I − 5° smoothed, |b|>30°", "skew", f"{s:.2f} (log-normal {s_ref:.2f})")
    row("kurtosis of ln I − 5° smoothed, |b|>30°", "kurt", f"{k:.2f} (log-normal {k_ref:.2f})")

    lmax_patch = int(180.0 / (SIZE_DEG / NPIX))
    centres = patch_centres(5.0, 25.0)
    t1 = time.perf_counter()
    patches = cut_patches(bandlimit_log(sky, lmax_patch), *centres, NPIX, SIZE_DEG, progress=False)
    ref_patches = cut_patches(bandlimit_log(reference, lmax_patch), *centres, NPIX, SIZE_DEG, progress=False)
    polar = np.abs(centres[1]) >= 60
    stats = [skew_kurt(np.log(p.astype(np.float64)).reshape(len(p), -1), axis=1) for p in (patches, ref_patches)]
    for j, (label, key) in enumerate((("skew", "skew"), ("kurtosis", "kurt"))):
        syn, ref = stats[0][j], stats[1][j]
        row(f"per-patch {label} of ln I, median (|b|≥60°)", key,
            f"{np.median(syn):.2f} ({np.median(syn[polar]):.2f}); log-normal {np.median(ref):.2f}")

    log_min, log_max = log_range(patches)
    unit = to_unit(patches, log_min, log_max)
    rng = np.random.default_rng(args.seed)
    lognormal = lognormal_baseline(unit, SIZE_DEG, 2, log_min, log_max, rng)[0]
    control = lognormal_baseline(unit, SIZE_DEG, 2, log_min, log_max, rng)[0]
    nu = np.linspace(-1.0, 1.0, 50)
    _, v1, v2 = minkowski(unit, nu)
    _, v1_ln, v2_ln = minkowski(lognormal, nu)
    _, v1_c, v2_c = minkowski(control, nu)
    for name, syn, ln, ctl in (("V1", v1, v1_ln, v1_c), ("V2", v2, v2_ln, v2_c)):
        spread = bootstrap(lambda x: x.mean(0), syn, seed=args.seed).std
        gap, rel = minkowski_gap(syn, ln, spread)
        spread_ln = bootstrap(lambda x: x.mean(0), ln, seed=args.seed).std
        gap_c, rel_c = minkowski_gap(ln, ctl, spread_ln)
        row(f"Minkowski {name}: max |Δ| / bootstrap σ (rel. peak)", "mink",
            f"{gap:.0f} ({100 * rel:.0f} %); control {gap_c:.1f} ({100 * rel_c:.1f} %)")
    t_stats = time.perf_counter() - t1

    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    print(f"synthetic sky nside {args.nside}, seed {args.seed}: map in {t_map:.1f} s, patch statistics in "
          f"{t_stats:.1f} s ({len(patches)} patches of {NPIX}², {SIZE_DEG:g}°)")
    print(f"{'quantity':<{width}}  {'synthetic':<{vwidth}}  {'real sky':<20}  source")
    for name, value, real, source in rows:
        print(f"{name:<{width}}  {value:<{vwidth}}  {real:<20}  {source}")
    if args.figures:
        write_figures(args.figures, sky, patches, centres)


def write_figures(folder: Path, sky: np.ndarray, patches: np.ndarray, centres) -> None:
    """Log-scale Mollweide view and 12 high-latitude patches (band-limited in ln I)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    folder.mkdir(parents=True, exist_ok=True)
    hp.mollview(sky, norm="log", min=0.02, max=1000, cmap="inferno", unit="MJy/sr",
                title="synthetic 353 GHz dust intensity (NOT the real sky)")
    hp.graticule(dpar=30, dmer=60, alpha=0.3)
    plt.savefig(folder / "synthetic_sky_mollweide.png", dpi=150)
    plt.close("all")
    lon, lat = centres
    pick = np.linspace(0, len(lon) - 1, 12).astype(int)
    fig, axes = plt.subplots(3, 4, figsize=(12, 9.6))
    for ax, i in zip(axes.flat, pick):
        image = patches[i]
        ax.imshow(image, origin="upper", cmap="inferno", norm=LogNorm(image.min(), image.max()))
        ax.set_title(f"l={lon[i]:.0f}° b={lat[i]:.0f}°: {image.min():.2g}–{image.max():.2g} MJy/sr", fontsize=8)
        ax.set_axis_off()
    fig.suptitle("synthetic 353 GHz dust, 20° patches of 64², log colour scale per patch (north up, east left)")
    fig.tight_layout()
    fig.savefig(folder / "synthetic_sky_patches.png", dpi=110)
    plt.close(fig)
    print(f"wrote {folder / 'synthetic_sky_mollweide.png'} and {folder / 'synthetic_sky_patches.png'}")


if __name__ == "__main__":
    main()
