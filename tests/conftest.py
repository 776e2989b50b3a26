"""Shared fixtures: tiny real configurations of the pipeline (small nside, 32² patches)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from dustcmb.cli import main

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
    assert run_cli("patches", "--params", params_file, "--map", sky, "--out", out) == 0
    return out

