"""``dustcmb tune``: an Optuna study of the MC-dropout rates, tracked in MLflow."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from dustcmb.cliutil import ParamsOption, load, resolve_device
from dustcmb.simulation.cli import DEFAULT_SEPARATION


def tune_command(
    trials: int = typer.Option(None, "--trials", min=1,
                               help="Trials to run now, by all workers together; default tune.n_trials."),
    study: str = typer.Option("dropout", "--study", help="Study name; an existing study is extended."),
    data: Path = typer.Option(DEFAULT_SEPARATION, help="Separation data (from `dustcmb separation data`)."),
    work: Path = typer.Option(Path("models/tune"), help="Folder for the trials' models and checkpoints."),
    out: Path = typer.Option(Path("models/tune/best_params.yaml"),
                             help="Best rates as a params fragment, with the command that applies them."),
    device: str = typer.Option(None, help="auto | cpu | cuda; default: device in the parameter file."),
    workers: int = typer.Option(1, "--workers", min=1,
                                help="Worker processes sharing the trials, each on cores/workers torch threads."),
    storage: str = typer.Option(None, "--storage",
                                help="Database URL shared by several machines, e.g. postgresql://user:pw@host/db; "
                                     "default: the journal file mlruns/optuna.journal."),
    params: Path = ParamsOption,
) -> None:
    """Tune separation.dropout for calibrated 68 % intervals (validation set, loss kept in check)."""
    from dustcmb.tuning.runner import run_study
    from dustcmb.tuning.study import Setup

    p = load(params)
    setup = Setup(p, data, work, study, device=resolve_device(device or p.device), params_file=params,
                  storage=storage)
    result = run_study(setup, out, trials or p.tune.n_trials, workers=workers)
    Console(stderr=True).print(
        f"study '{study}': {result['n_trials']} trials; best trial {result['best_trial']}: dropout "
        f"{result['dropout']}, validation coverage_68 {result['coverage_68']:.3f}, val loss "
        f"{result['val_loss']:.4g}\nwrote {out}; apply with:  {result['apply_command']}")
