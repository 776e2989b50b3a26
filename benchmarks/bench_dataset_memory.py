"""Peak memory and throughput of the streaming separation training set at paper scale.

Builds a paper-sized GAN sample file (default 48 000 × 256² float32 = 12.6 GB) as a *sparse* file in
a temporary directory: only the maps the benchmark reads hold synthetic log-normal dust, the rest is
never allocated on disk. It then iterates a DataLoader (batch 32, like training) over ``--items``
maps spread evenly through the whole file and reports the peak resident memory of the process and
its workers, against a plain reference: the same maps read through a persistent
``np.load(mmap_mode="r")`` view, whose touched pages stay resident (growth per map, projected to
the full set). Pass ``--items 48000`` for a full epoch. The file is removed at the end.

    .venv/bin/python benchmarks/bench_dataset_memory.py --params params_paper.yaml --instrument planck --beta-rms 0.1
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import tempfile
import threading
import time
from multiprocessing import active_children
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader, Subset

from dustcmb.config import load_params
from dustcmb.simulation.cmb import camb_lmax, make_bank
from dustcmb.simulation.dataset import DustStack, Normalisation, SeparationDataset
from dustcmb.simulation.simulator import SkySimulator

GIB = 1024.0**3


def rss_bytes(pid: int | str = "self") -> int:
    """Current resident set size of a process [bytes] from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class PeakSampler(threading.Thread):
    """Samples the summed RSS of this process and its live children every 50 ms; keeps the peak."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak, self._done = 0, threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            total = rss_bytes()
            for child in active_children():
                try:
                    total += rss_bytes(child.pid)
                except (FileNotFoundError, ProcessLookupError):
                    pass
            self.peak = max(self.peak, total)
            time.sleep(0.05)

    def stop(self) -> int:
        self._done.set()
        self.join()
        return self.peak


def sparse_samples(path: Path, n_maps: int, npix: int, picks: np.ndarray) -> None:
    """A float32 [n_maps, npix, npix] .npy whose ``picks`` maps hold log-normal dust [MJy/sr]."""
    view = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n_maps, npix, npix))
    offset = view.offset
    del view  # the file now has its full (sparse) size; fill only the maps that will be read
    rng = np.random.default_rng(0)
    with open(path, "r+b") as f:
        for i in picks:
            f.seek(offset + 4 * npix * npix * int(i))
            f.write(np.exp(rng.normal(np.log(0.05), 0.6, (npix, npix))).astype(np.float32).tobytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params_paper.yaml")
    parser.add_argument("--n-maps", type=int, default=48_000, help="size of the sample file")
    parser.add_argument("--items", type=int, default=2_000, help="maps iterated, spread through the file")
    parser.add_argument("--instrument", default=None, help="override simulation.instrument")
    parser.add_argument("--beta-rms", type=float, default=None, help="override simulation.beta_rms")
    parser.add_argument("--spectra", type=int, default=4, help="camb spectra in the bank")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    args = parser.parse_args()

    params = load_params(args.params)
    npix, size_deg = params.patches.npix, params.patches.size_deg
    cfg = params.simulation
    cfg = dataclasses.replace(cfg, instrument=args.instrument or cfg.instrument, n_spectra=args.spectra,
                              beta_rms=cfg.beta_rms if args.beta_rms is None else args.beta_rms)
    picks = np.unique(np.linspace(0, args.n_maps - 1, args.items).round().astype(np.int64))
    bank = make_bank(cfg.n_spectra, camb_lmax(npix, size_deg), np.random.default_rng(0))
    simulator = SkySimulator(bank, cfg, npix, size_deg, params.seed)
    identity = Normalisation(cfg.freqs_ghz, (0.0,) * len(cfg.freqs_ghz), (1.0,) * len(cfg.freqs_ghz), 0.0, 1.0)

    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        path = Path(tmp) / "samples.npy"
        sparse_samples(path, args.n_maps, npix, picks)
        size_gb = path.stat().st_size / 1e9
        base = rss_bytes()
        train = SeparationDataset(DustStack(path, npix, "samples"), np.arange(args.n_maps), "train",
                                  simulator, identity)
        loader = DataLoader(Subset(train, picks.tolist()), batch_size=32, num_workers=args.workers)
        sampler = PeakSampler()
        sampler.start()
        start = time.perf_counter()
        for inputs, _target in loader:
            assert inputs.shape[1:] == (len(cfg.freqs_ghz), npix, npix)
        elapsed = time.perf_counter() - start
        peak = max(sampler.stop(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)

        ref_before = rss_bytes()
        view = np.load(path, mmap_mode="r")
        checksum = sum(float(view[i].sum()) for i in picks)
        ref_growth = rss_bytes() - ref_before
        del view

    per_map_mb = ref_growth / picks.size / 1e6
    print(f"sample file: {args.n_maps} × {npix}² float32 = {size_gb:.1f} GB (sparse), read {picks.size} maps "
          f"spread through it; instrument {cfg.instrument}, beta_rms {cfg.beta_rms}, {args.workers} workers")
    print(f"streaming set : peak RSS {peak / GIB:.2f} GiB (process{' + workers' if args.workers else ''}; "
          f"{base / GIB:.2f} GiB before the loop), {picks.size / elapsed:.1f} maps/s "
          f"({elapsed / picks.size * 1e3:.1f} ms/map) -> {args.n_maps * elapsed / picks.size / 60:.1f} min/epoch")
    print(f"reference mmap: RSS grew {ref_growth / GIB:.2f} GiB for {picks.size} maps ({per_map_mb:.3f} MB/map) "
          f"-> {per_map_mb * args.n_maps / 1e3:.1f} GB projected for a full epoch (checksum {checksum:.3g})")
    print(f"ratio projected-reference / streaming peak: {per_map_mb * args.n_maps * 1e6 / peak:.1f}×; "
          f"under 4 GiB: {peak < 4 * GIB}")


if __name__ == "__main__":
    main()
