"""Benchmark: cutting the 1034-patch set from an nside-2048 map.

Prints
- the time to cut 1034 patches of 256² (directions + bilinear interpolation), and its ratio to the
  bare cost of one ``healpy.get_interp_val`` per output pixel (goal: <= 2x);
- the one-off band-limiting cost (map2alm + alm2map at the patch Nyquist multipole);
- the speed-up over a per-patch ``healpy.gnomview(..., return_projected_map=True)`` loop, timed on a
  subset and scaled to the full set (gnomview samples the nearest pixel and does no band-limiting,
  so it does less work per pixel than the cutter).

Usage: python benchmarks/bench_patches.py [--nside 2048] [--npix 256] [--subset 20]
"""

from __future__ import annotations

import argparse
import time

import healpy as hp
import matplotlib
import numpy as np

from dustcmb.patches.cutter import bandlimit, cut_patches, gnomonic_lonlat
from dustcmb.patches.grid import patch_centres

matplotlib.use("Agg")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nside", type=int, default=2048)
    parser.add_argument("--npix", type=int, default=256)
    parser.add_argument("--subset", type=int, default=20, help="patches timed with gnomview")
    parser.add_argument("--chunk", type=int, default=16)
    args = parser.parse_args()
    size = 20.0
    rng = np.random.default_rng(0)
    hpmap = 1.0 + 0.1 * rng.random(hp.nside2npix(args.nside))
    lon, lat = patch_centres(5.0, 25.0)
    n_pixels = lon.size * args.npix**2
    print(f"map nside {args.nside}; {lon.size} patches of {args.npix}² = {n_pixels / 1e6:.1f} M pixels")

    start = time.perf_counter()
    smooth = bandlimit(hpmap, int(180.0 / (size / args.npix)))
    t_band = time.perf_counter() - start

    start = time.perf_counter()
    cut_patches(smooth, lon, lat, args.npix, size, chunk=args.chunk, progress=False)
    t_cut = time.perf_counter() - start

    t_interp = 0.0
    for first in range(0, lon.size, args.chunk):
        plon, plat = gnomonic_lonlat(lon[first:first + args.chunk], lat[first:first + args.chunk],
                                     args.npix, size)
        start = time.perf_counter()
        hp.get_interp_val(smooth, plon, plat, lonlat=True)
        t_interp += time.perf_counter() - start

    start = time.perf_counter()
    for lo, la in zip(lon[:args.subset], lat[:args.subset]):
        hp.gnomview(smooth, rot=(lo, la), reso=size * 60 / args.npix, xsize=args.npix,
                    return_projected_map=True, no_plot=True)
    t_gnom = (time.perf_counter() - start) * lon.size / args.subset

    print(f"band-limit (once per map)          {t_band:8.2f} s")
    print(f"cut_patches, all patches           {t_cut:8.2f} s  ({n_pixels / t_cut / 1e6:.1f} M px/s)")
    print(f"bare get_interp_val, same pixels   {t_interp:8.2f} s")
    print(f"ratio cut / bare interpolation     {t_cut / t_interp:8.2f} x   (goal <= 2)")
    print(f"gnomview loop (scaled from {args.subset})    {t_gnom:8.2f} s")
    print(f"speed-up over gnomview loop        {t_gnom / t_cut:8.1f} x")


if __name__ == "__main__":
    main()
