"""``dustcmb tune``: an Optuna study of the MC-dropout rates, tracked in MLflow."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from dustcmb.cliutil import ParamsOption, load, resolve_device
from dustcmb.simulation.cli import DEFAULT_SEPARATION


def tune_command(
    trials: int = typer.Option(None, "--trials", min=1, help="Trials to run now; default tune.n_trials."),
    study: str = typer.Option("dropout", "--study", help="Study name; an existing study is extended."),
    data: Path = typer.Option(DEFAULT_SEPARATION, help="Separation data (from `dustcmb separation data`)."),
    work: Path = typer.Option(Path("models/tune"), help="Folder for the trials' models and checkpoints."),
    out: Path = typer.Option(Path("models/tune/best_params.yaml"),
                             help="Best rates as a params fragment, with the command that applies them."),
    device: str = typer.Option(None, help="auto | cpu | cuda; default: device in the parameter file."),
    params: Path = ParamsOption,
) -> None:
    """Tune separation.dropout for calibrated 68 % intervals (validation set, loss kept in check)."""
    from dustcmb.tuning.study import run_study

    p = load(params)
    device = resolve_device(device or p.device)
    result = run_study(p, data, work, out, trials or p.tune.n_trials, study, device=device, params_file=params)
    Console(stderr=True).print(
        f"study '{study}': {result['n_trials']} trials; best trial {result['best_trial']}: dropout "
        f"{result['dropout']}, validation coverage_68 {result['coverage_68']:.3f}, val loss "
        f"{result['val_loss']:.4g}\nwrote {out}; apply with:  {result['apply_command']}")
