"""``dustcmb separation train`` and ``dustcmb separation evaluate``: the Bayesian ResUNet."""

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


def evaluate_command(
    data: Path = typer.Option(DEFAULT_SEPARATION, help="Separation data (from `dustcmb separation data`)."),
    model: Path = typer.Option(DEFAULT_MODEL, help="Trained ResUNet folder (from `dustcmb separation train`)."),
    metrics: Path = typer.Option(Path("metrics/separation.json"), help="Output metrics JSON."),
    plots: Path = typer.Option(Path("plots/separation"), help="Output folder for the PNG figures."),
    device: str = typer.Option(None, help=DEVICE_HELP),
    params: Path = ParamsOption,
) -> None:
    """MC-dropout posterior on the test maps, coverage per ℓ, ILC baseline, Figs 6-7."""
    from dustcmb.evaluation.separation import evaluate

    p = load(params)
    device = resolve_device(device or p.device)
    result = evaluate(p, data, model, metrics, plots, device=device, params_file=params)
    ilc = result["ilc"]
    Console(stderr=True).print(
        f"wrote {metrics}, {plots}: coverage 68 % {result['coverage_68']:.3f}, 95 % {result['coverage_95']:.3f}; "
        f"ℓ_max(1 %) ResUNet {result['ell_max_1pct']:.0f} / ILC {ilc['ell_max_1pct']:.0f}; "
        f"map RMSE ResUNet {result['map_rmse_uK']:.3g} µK / ILC {ilc['map_rmse_uK']:.3g} µK "
        f"(monopole removed: {result['map_rmse_nomono_uK']:.3g} / {ilc['map_rmse_nomono_uK']:.3g} µK)")
