"""``dustcmb patches``: cut the flat 20°×20° patch set from the 353 GHz map."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from dustcmb.cliutil import ParamsOption, load
from dustcmb.errors import ConfigError
from dustcmb.patches.store import make_patches, write_patches
from dustcmb.sky.cli import DEFAULT_SKY
from dustcmb.sky.healpix_io import load_sky
from dustcmb.storage import atomic_dir

DEFAULT_PATCHES = Path("data/patches")
DEFAULT_PLOTS = Path("plots/patches")


def patches_command(
    map_path: Path = typer.Option(DEFAULT_SKY, "--map", help="HEALPix map in MJy/sr (from `dustcmb sky`)."),
    npix: int = typer.Option(None, help="Pixels per side; default patches.npix."),
    out: Path = typer.Option(DEFAULT_PATCHES, help="Output directory (patches.npy + meta.json)."),
    plots: Path = typer.Option(DEFAULT_PLOTS, help="Output folder of splits.png (footprints by split)."),
    params: Path = ParamsOption,
) -> None:
    """Cut the patch grid (gnomonic, band-limited, bilinear), label its splits and store it."""
    import matplotlib.pyplot as plt

    from dustcmb.patches.figures import split_figure

    p = load(params)
    cfg = p.patches
    npix = npix or cfg.npix
    if npix < 8 or npix % 2:
        raise ConfigError(f"--npix {npix} must be even and >= 8")
    hpmap = load_sky(map_path)
    patches, meta = make_patches(hpmap, npix, cfg.size_deg, cfg.step_deg, cfg.lat_min_deg, cfg.split, p.seed,
                                 cfg.chunk)
    fig = split_figure(meta["lon_deg"], meta["lat_deg"], cfg.size_deg, meta["split"], cfg.split.scheme)
    with atomic_dir(plots) as tmp:
        fig.savefig(tmp / "splits.png", dpi=110)
    plt.close(fig)
    write_patches(out, patches, meta)
    counts = ", ".join(f"{n} {name}" for name, n in meta["split_counts"].items())
    Console(stderr=True).print(
        f"wrote {out}/patches.npy: {patches.shape[0]} patches of {npix}² × {meta['pixel_arcmin']:.2f}', "
        f"I_353 {patches.min():.3g}–{patches.max():.3g} MJy/sr, lowest sampled |b| "
        f"{meta['min_abs_lat_deg']:.2f} deg; split ({cfg.split.scheme}): {counts}; {plots}/splits.png")
