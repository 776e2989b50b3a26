"""Peak memory of ``dustcmb gan sample``: streamed to a memory-mapped .npy vs held in RAM.

Draws N maps (default 10 000 at 64², the quick profile: 164 MB of float32)
1. with :func:`dustcmb.gan.sample.sample_to_npy` (batches written into an ``open_memmap`` file),
2. with a plain reference that concatenates every batch in RAM and then ``np.save`` s the array,
after a one-batch warm-up (torch's one-off allocations), plus the streamed path for N/10 maps to show
that its memory does not grow with N. For each it prints the peak traced Python-heap memory
(tracemalloc; numpy buffers included) and the peak growth of anonymous resident memory (``RssAnon``
sampled every 5 ms; file-backed pages of the memory map are page cache the kernel can drop, so they
are not counted).

    .venv/bin/python benchmarks/gan_sample_memory.py [--model models/gan] [-n 10000]

Without ``--model`` an untrained generator with the params.yaml widths is used (memory does not
depend on the weights).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import torch

from dustcmb.config import load_params
from dustcmb.gan.models import Generator
from dustcmb.gan.sample import load_generator, sample_to_npy
from dustcmb.patches.normalise import from_unit


def rss_anon_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no RssAnon in /proc/self/status")


def measure(fn) -> tuple[float, int, int]:
    """Seconds, peak tracemalloc bytes and peak RssAnon growth while ``fn()`` runs."""
    base, peak, done = rss_anon_bytes(), [0], threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], rss_anon_bytes() - base)
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    tracemalloc.start()
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    done.set()
    watcher.join()
    return seconds, traced, max(peak[0], rss_anon_bytes() - base)


@torch.no_grad()
def in_ram_reference(model: Path, n: int, out: Path, seed: int, batch: int) -> None:
    """Plain reference: same batches, all kept in RAM, saved at the end."""
    generator, config = load_generator(model)
    rng = torch.Generator().manual_seed(seed)
    maps = [from_unit(generator(torch.randn(min(batch, n - i), config["latent_dim"], generator=rng))[:, 0].numpy(),
                      config["log_min"], config["log_max"]) for i in range(0, n, batch)]
    np.save(out, np.concatenate(maps))


def untrained_model(folder: Path, npix: int) -> Path:
    gan = load_params("params.yaml").gan
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(Generator(npix, gan.latent_dim, gan.gen_channels).state_dict(), folder / "generator.pt")
    config = {"npix": npix, "size_deg": 20.0, "latent_dim": gan.latent_dim, "gen_channels": gan.gen_channels,
              "log_min": float(np.log(0.005)), "log_max": float(np.log(2.0))}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="trained generator folder (default: untrained, 64²)")
    parser.add_argument("-n", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=load_params("params.yaml").gan.sample_batch)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = args.model or untrained_model(tmp / "gan", 64)
        npix = json.loads((model / "config.json").read_text())["npix"]
        size_mb = args.n * npix * npix * 4 / 1e6
        print(f"{args.n} maps of {npix}² float32 = {size_mb:.0f} MB, batch {args.batch}")
        sample_to_npy(model, args.batch, tmp / "warm.npy", 0, args.batch)  # one-off torch/allocator set-up
        runs = (("memmap (gan sample), n/10", lambda: sample_to_npy(model, args.n // 10, tmp / "c.npy", 0, args.batch)),
                ("memmap (gan sample)", lambda: sample_to_npy(model, args.n, tmp / "a.npy", 0, args.batch)),
                ("in-RAM reference", lambda: in_ram_reference(model, args.n, tmp / "b.npy", 0, args.batch)))
        for name, fn in runs:
            seconds, traced, anon = measure(fn)
            print(f"{name:27s} {seconds:6.1f} s  tracemalloc peak {traced / 1e6:7.1f} MB "
                  f"({traced / 1e6 / size_mb:5.1%} of output)  RssAnon growth {anon / 1e6:7.1f} MB "
                  f"({anon / 1e6 / size_mb:5.1%})")


if __name__ == "__main__":
    main()
