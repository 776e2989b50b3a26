"""``dustcmb separation train``: the Bayesian ResUNet (its evaluation lives in :mod:`dustcmb.evaluation.cli`)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from dustcmb.cliutil import ParamsOption, load, resolve_device
from dustcmb.simulation.cli import DEFAULT_SEPARATION

DEFAULT_MODEL = Path("models/separation")
DEFAULT_CHECKPOINTS = Path("checkpoints/separation")
DEVICE_HELP = "auto | cpu | cuda; default: device in the parameter file."


def train_command(
    data: Path = typer.Option(DEFAULT_SEPARATION, help="Separation data (from `dustcmb separation data`)."),
    out: Path = typer.Option(DEFAULT_MODEL, help="Output folder: resunet.pt (state dict), config.json, "
                                                 "history.json."),
    checkpoints: Path = typer.Option(DEFAULT_CHECKPOINTS, help="Resumable checkpoint folder; keep it "
                                     "outside DVC outputs (DVC deletes those before a stage runs)."),
    resume: bool = typer.Option(False, "--resume", help="Continue a killed run from its last checkpoint."),
    device: str = typer.Option(None, help=DEVICE_HELP),
    params: Path = ParamsOption,
) -> None:
    """Train the ResUNet (map + spectrum loss, Adamax, early stopping); keep the best validation state."""
    from dustcmb.separation.train import train

    p = load(params)
    device = resolve_device(device or p.device)
    config = train(p, data, out, checkpoints, device=device, resume=resume, params_file=params)
    Console(stderr=True).print(
        f"wrote {out}: best val loss {config['best_val_loss']:.4g} at epoch {config['best_epoch']} of "
        f"{config['epochs_run']}, {config['train_seconds']:.0f} s on {device}")

