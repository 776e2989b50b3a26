"""Throughput of the statistics core against plain references.

1. Power spectra of N maps (torch, float32) vs a bare ``torch.fft.rfft2`` of the same maps (goal ≥ 50 %).
   The estimator does two real FFTs per map (one per difference map), in chunks that stay in cache;
   the same rfft2 in those chunks is printed too, as the floor one FFT per map could reach.
   ``--profile`` prints where the estimator's time goes, op by op.
2. Minkowski functionals of N maps × T thresholds vs a per-threshold scikit-image loop
   (``euler_number`` + ``perimeter`` + area of each binary excursion set; goal ≥ 10× faster). The
   reference is timed on ``--ref-maps`` maps and scaled to N (it is linear in the number of maps).

Usage: ``python benchmarks/bench_stats.py [--maps 1034] [--npix 256] [--thresholds 50] [--ref-maps 20]``
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np
import torch
from skimage.measure import euler_number, perimeter

from dustcmb.stats import minkowski, power_spectrum
from dustcmb.stats.power import CHUNK_PIXELS


def dust_like_maps(n: int, npix: int, seed: int) -> torch.Tensor:
    """Maps in [−1, 1] with a C_ℓ ∝ ℓ^−2.5 Gaussian field in log space (timing input only)."""
    generator = torch.Generator().manual_seed(seed)
    k = torch.fft.fftfreq(npix) * npix
    kabs = torch.hypot(k[:, None], torch.fft.rfftfreq(npix)[None, :] * npix).clamp_min(1.0)
    white = torch.randn(n, npix, npix, generator=generator)
    field = torch.fft.irfft2(torch.fft.rfft2(white) * kabs**-1.25, s=(npix, npix))
    low, high = field.amin(), field.amax()
    return (2 * (field - low) / (high - low) - 1).float()


def best_of(repeats: int, fn) -> tuple[float, float]:
    """Smallest wall and CPU time of ``repeats`` runs [s]."""
    wall, cpu = math.inf, math.inf
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = min(wall, time.perf_counter() - w0), min(cpu, time.process_time() - c0)
    return wall, cpu


def skimage_reference(maps: np.ndarray, thresholds: np.ndarray) -> None:
    for m in maps:
        for nu in thresholds:
            above = m > nu
            euler_number(above, connectivity=1), perimeter(above, neighborhood=4), above.sum()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=int, default=1034)
    parser.add_argument("--npix", type=int, default=256)
    parser.add_argument("--thresholds", type=int, default=50)
    parser.add_argument("--ref-maps", type=int, default=20, help="maps timed for the scikit-image reference")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print the spectrum's time per torch op")
    args = parser.parse_args()
    maps = dust_like_maps(args.maps, args.npix, seed=0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}")
    print(f"{args.maps} maps of {args.npix}², float32\n")

    fft_wall, fft_cpu = best_of(args.repeats, lambda: torch.fft.rfft2(maps))
    ps_wall, ps_cpu = best_of(args.repeats, lambda: power_spectrum(maps, 20.0))
    print("power spectrum        wall [s]  cpu [s]  maps/s")
    print(f"  torch.fft.rfft2     {fft_wall:8.3f} {fft_cpu:8.3f} {args.maps / fft_wall:7.0f}")
    print(f"  power_spectrum      {ps_wall:8.3f} {ps_cpu:8.3f} {args.maps / ps_wall:7.0f}")
    chunk = max(1, CHUNK_PIXELS // args.npix**2)
    chunked_wall, chunked_cpu = best_of(args.repeats, lambda: [torch.fft.rfft2(maps[i : i + chunk])
                                                              for i in range(0, args.maps, chunk)])
    print(f"  rfft2, {chunk}-map chunks {chunked_wall:8.3f} {chunked_cpu:8.3f} {args.maps / chunked_wall:7.0f}")
    print(f"  throughput vs rfft2: {fft_wall / ps_wall:.0%} (goal >= 50 %); "
          f"vs chunked rfft2: {chunked_wall / ps_wall:.0%}\n")
    if args.profile:
        with torch.profiler.profile() as prof:
            power_spectrum(maps, 20.0)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))

    thresholds = np.linspace(-1.0, 1.0, args.thresholds)
    mf_wall, mf_cpu = best_of(1, lambda: minkowski(maps, thresholds))
    subset = maps[: args.ref_maps].numpy()
    ref_wall, ref_cpu = best_of(1, lambda: skimage_reference(subset, thresholds))
    scale = args.maps / len(subset)
    ref_wall, ref_cpu = ref_wall * scale, ref_cpu * scale
    print(f"Minkowski functionals, {args.thresholds} thresholds   wall [s]  cpu [s]")
    print(f"  scikit-image loop ({len(subset)} maps, scaled to {args.maps}) {ref_wall:8.2f} {ref_cpu:8.2f}")
    print(f"  minkowski                                  {mf_wall:8.2f} {mf_cpu:8.2f}")
    print(f"  speed-up: wall {ref_wall / mf_wall:.1f}x, cpu {ref_cpu / mf_cpu:.1f}x (goal >= 10x)")


if __name__ == "__main__":
    main()
