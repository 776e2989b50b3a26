"""``dustcmb separation data``: prepare the streaming multi-frequency train/val/test sets."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console

from dustcmb.cliutil import ParamsOption, load
from dustcmb.gan.cli import DEFAULT_SAMPLES
from dustcmb.patches.cli import DEFAULT_PATCHES

DEFAULT_SEPARATION = Path("data/separation")


def data_command(
    samples: Path = typer.Option(DEFAULT_SAMPLES, help="GAN dust samples: float32 (n, N, N) MJy/sr at "
                                                       "353 GHz (from `dustcmb gan sample`); the train set."),
    patches: Path = typer.Option(DEFAULT_PATCHES, help="Real patch set (patches.npy + meta.json): val/test."),
    out: Path = typer.Option(DEFAULT_SEPARATION, help="Output directory (CMB bank, splits, normalisation)."),
    params: Path = ParamsOption,
) -> None:
    """Compute the CMB spectrum bank, the val/test split and the channel normalisation.

    Maps are simulated on the fly when the sets are read (``dustcmb.simulation.store.open_datasets``).
    """
    from dustcmb.simulation.store import build

    p = load(params)
    start = time.perf_counter()
    manifest = build(p, samples, patches, out)
    preset = p.simulation.instrument
    Console(stderr=True).print(
        f"wrote {out}: {manifest['n_train']} train / {manifest['n_val']} val / {manifest['n_test']} test "
        f"maps of {manifest['npix']}² at {', '.join(f'{f:g}' for f in p.simulation.freqs_ghz)} GHz "
        f"(instrument {preset}), {p.simulation.n_spectra} camb spectra to ℓ={manifest['camb_lmax']}, "
        f"{time.perf_counter() - start:.1f} s")
