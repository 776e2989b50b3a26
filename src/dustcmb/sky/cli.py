"""``dustcmb sky``: write the 353 GHz dust intensity map the pipeline uses."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import typer
from rich.console import Console

from dustcmb.cliutil import ParamsOption, load
from dustcmb.sky.healpix_io import read_dust_map, write_dust_map
from dustcmb.sky.synthetic import synthetic_dust_map

DEFAULT_SKY = Path("data/sky/dust_353.fits")


def sky_command(
    source: str = typer.Option(None, help="'synthetic' or a HEALPix FITS path; default: sky.source "
                                          "in the parameter file."),
    out: Path = typer.Option(DEFAULT_SKY, help="Output map (HEALPix RING, Galactic, MJy/sr)."),
    params: Path = ParamsOption,
) -> None:
    """Make (synthetic) or ingest (real FITS) the 353 GHz dust map, at nside sky.nside."""
    p = load(params)
    source = source or p.sky.source
    console = Console(stderr=True)
    with console.status(f"building the 353 GHz dust map from {source} at nside {p.sky.nside}"):
        if source == "synthetic":
            hpmap = synthetic_dust_map(p.sky.nside, p.seed, **asdict(p.sky.synthetic))
            description = f"dustcmb synthetic stand-in, seed {p.seed} (NOT the real sky)"
        else:
            hpmap = read_dust_map(source, p.sky.nside, p.sky.smoothing_fwhm_arcmin)
            description = f"ingested from {Path(source).name}"
        write_dust_map(out, hpmap, description)
    console.print(f"wrote {out}: nside {p.sky.nside}, I_353 from {hpmap.min():.3g} to "
                  f"{hpmap.max():.3g} MJy/sr (median {np.median(hpmap):.3g})")
