"""Shared fixtures: tiny real configurations of the pipeline (small nside, 32² patches)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from dustcmb.cli import main
from fields import gaussian_fields

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]


def tiny_params() -> dict:
    """The real params.yaml, shrunk: nside 128 sky, 32² patches (pixels 37.5', Nyquist ℓ 288)."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["sky"]["nside"] = 128
    params["patches"]["npix"] = 32
    return params


@pytest.fixture
def params_file(tmp_path: Path) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(tiny_params()))
    return path


def run_cli(*args: str) -> int:
    """Run the ``dustcmb`` entry point in-process and return its exit status."""
    try:
        main([str(a) for a in args])
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


@pytest.fixture
def tiny_patches(tmp_path: Path, params_file: Path) -> Path:
    """A real tiny patch set made by the CLI: synthetic nside-128 sky, 1034 patches of 32²."""
    sky = tmp_path / "sky.fits"
    out = tmp_path / "patches"
    assert run_cli("sky", "--params", params_file, "--out", sky) == 0
    assert run_cli("patches", "--params", params_file, "--map", sky, "--out", out,
                   "--plots", tmp_path / "plots") == 0
    return out


def split_meta(n_train: int, n_val: int, n_test: int) -> dict:
    """The split entries of a hand-made patch set's meta.json: train, then val, then test patches."""
    labels = ["train"] * n_train + ["val"] * n_val + ["test"] * n_test
    return {"split": labels, "split_scheme": "regions"}


NPIX, N_REAL, N_GAN = 32, 12, 24
TINY_SEPARATION = {"base_channels": 4, "batch_size": 8, "max_epochs": 2, "steps_per_epoch": 2, "val_maps": 0,
        "patience": 10, "mc_passes": 8, "mc_batch": 16}


def lognormal_dust(n: int, seed: int) -> np.ndarray:
    """Log-normal dust-like maps [MJy/sr at 353 GHz] with a C_ℓ ∝ ℓ^-2.5 log-intensity."""
    g = gaussian_fields(lambda ell: ell**-2.5, n, NPIX, 20.0, seed)
    return (0.05 * np.exp(0.6 * g / g.std())).astype(np.float32)


def separation_params(path, **separation):
    """Tiny parameters with the Planck-like instrument (noise and beams exercise every code path)."""
    data = {"seed": 11, "device": "cpu", "patches": {"npix": NPIX},
            "simulation": {"n_spectra": 2, "norm_maps": 8, "instrument": "planck", "held_out_realisations": 1},
            "separation": TINY_SEPARATION | separation}
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def separation_data(tmp_path_factory):
    """Separation data from real-patch stand-ins (val/test) and a 'GAN' sample file (train), MJy/sr.

    Shared by the tests: it depends only on seed, geometry and ``simulation``, not on ``separation``.
    """
    root = tmp_path_factory.mktemp("separation")
    patches = root / "patches"
    patches.mkdir()
    np.save(patches / "patches.npy", lognormal_dust(N_REAL, 0))
    meta = {"npix": NPIX, "size_deg": 20.0} | split_meta(0, N_REAL // 2, N_REAL // 2)
    (patches / "meta.json").write_text(json.dumps(meta))
    np.save(root / "samples.npy", lognormal_dust(N_GAN, 1))
    assert run_cli("separation", "data", "--samples", root / "samples.npy", "--patches", patches,
                   "--out", root / "data", "--params", separation_params(root / "params.yaml")) == 0
    return root / "data"
