"""Optuna study of the ResUNet's MC-dropout rates, aiming at calibrated 68 % intervals.

The paper's intervals were far too wide (93 % coverage for a nominal 68 %). Here each trial trains
the ResUNet with other dropout rates and scores them on the validation split (never the test split):

- search space: two numbers instead of one rate per level, so ten trials can explore it —
  ``rate_i = max_rate · ((i + 1) / L) ** shape`` for levels ``i = 0 … L-1`` (outermost first), i.e. a
  maximum rate (sampled log-uniformly: it is a scale) and how fast rates grow with depth (the paper's
  0.05/0.1/0.2/0.3 is close to ``max_rate = 0.3, shape = 1``);
- objective (minimised): the mean over ℓ bins of ``|coverage_68,ℓ − target|`` of the spectrum
  interval centred on the estimate, on validation maps that early stopping never scored (the 95 %
  calibration error is logged beside it); per bin, so errors of opposite sign cannot cancel;
- rates: the schedule runs over the levels the network has at this ``npix`` (3 at 64²), so
  ``max_rate`` always acts;
- constraint: the trial's best validation loss may exceed that of the default rates by at most
  ``loss_tolerance`` (relative). Trial 0 always runs the default rates to set that reference. A
  constraint rather than a second objective keeps the study single-objective, which is what lets a
  pruner stop hopeless trials early and gives one "best" answer instead of a Pareto front;
- pruning: the per-epoch validation loss is reported to :class:`LossConstraintPruner`, which stops a
  trial once its best loss so far trails the default rates' at the same epoch by more than the
  tolerance, i.e. once it is heading for an infeasible result. A median pruner is the wrong rule
  here: lower dropout rates train to lower losses, so it stops calibrated-but-slower trials that
  would meet the constraint;
- schedule: trials train and are scored exactly as ``train_resunet`` and ``evaluate_resunet`` do
  (``separation.max_epochs``, ``patience``, ``mc_passes``). Calibration depends on training length:
  on the quick profile the default rates cover 0.50 of the validation spectra after 10 epochs and
  0.96 after 40, so rates tuned on shortened trials do not carry over to the pipeline's model.

Storage: ``sqlite:///<root>/mlruns/optuna.db`` (resumable with the same study name). Each trial is a
nested MLflow run under one parent run per study invocation, in the ``dustcmb-tune`` experiment.
Trials send a heartbeat: when a study is run again after its process was killed mid-trial, the
interrupted trial is marked FAIL and retried once with the same rates (the default-rates trial too).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path

import mlflow
import numpy as np
import optuna
import torch
import yaml

from dustcmb import tracking
from dustcmb.config import Params
from dustcmb.evaluation.separation import collect, metrics_from
from dustcmb.separation.mc import load_model
from dustcmb.separation.resunet import n_blocks
from dustcmb.separation.train import train
from dustcmb.simulation.store import open_datasets
from dustcmb.storage import atomic_file

EXPERIMENT = "dustcmb-tune"
HEARTBEAT_S = 60  # a RUNNING trial without a heartbeat for two intervals belongs to a dead process


def dropout_rates(max_rate: float, shape: float, levels: int) -> tuple[float, ...]:
    """Dropout rate per level, outermost first: ``max_rate · ((i + 1) / levels) ** shape``."""
    return tuple(round(max_rate * ((i + 1) / levels) ** shape, 4) for i in range(levels))


def storage_url(root: str | Path | None = None) -> str:
    """Optuna's sqlite storage next to the MLflow database."""
    mlruns = tracking.tracking_root(root) / "mlruns"
    mlruns.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{mlruns / 'optuna.db'}"


def open_storage(root: str | Path | None = None) -> optuna.storages.RDBStorage:
    """The study database with heartbeats; a trial left RUNNING by a killed process is retried once."""
    with warnings.catch_warnings():  # Optuna flags heartbeats experimental; tests/test_tuning.py covers our use
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            storage_url(root), heartbeat_interval=HEARTBEAT_S, grace_period=2 * HEARTBEAT_S,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1))


def levels_used(params: Params) -> int:
    """Dropout levels the network has at this patch size (3 at 64², 4 at 256²): one rate each."""
    return min(len(params.separation.dropout), math.ceil(n_blocks(params.patches.npix) / 2))


def trial_rates(params: Params, max_rate: float, shape: float) -> tuple[float, ...]:
    """Rates for every configured level: the schedule over the levels the network uses, so that
    ``max_rate`` is the innermost *existing* level's rate; unused deeper levels repeat it."""
    used = dropout_rates(max_rate, shape, levels_used(params))
    return used + (used[-1],) * (len(params.separation.dropout) - len(used))


def validation_coverage(params: Params, data_dir: Path, model_dir: Path, device: str) -> dict:
    """Coverage and map RMSE of MC-dropout intervals on ``tune.val_maps`` validation maps that early
    stopping never scored (the items after its first ``separation.val_maps``)."""
    val = open_datasets(data_dir, params)["val"]
    model, _ = load_model(model_dir, device)
    torch.manual_seed(params.seed)
    start = min(params.separation.val_maps or len(val), len(val) - 1)
    n_maps = min(params.tune.val_maps, len(val) - start)
    data = collect(model, val, params, n_maps=n_maps, start=start)
    return metrics_from(data, params, n_maps * params.patches.npix**2)


def per_ell_error(coverage_per_ell, target: float) -> float:
    """Mean over ℓ bins of ``|coverage_ℓ − target|``: errors of opposite sign cannot cancel."""
    return float(np.mean(np.abs(np.asarray(coverage_per_ell) - target)))


class Objective:
    """One trial: train with the suggested rates, then score coverage on validation maps."""

    def __init__(self, params: Params, data_dir: Path, work_dir: Path, device: str,
                 params_file: Path | None, root: Path | None):
        self.params, self.data_dir, self.work_dir = params, data_dir, work_dir
        self.device, self.params_file, self.root = device, params_file, root

    def __call__(self, trial: optuna.Trial) -> float:
        cfg, sep = self.params.tune, self.params.separation
        max_rate = trial.suggest_float("max_rate", *cfg.max_rate_bounds, log=True)
        shape = trial.suggest_float("shape", *cfg.shape_bounds)
        # Trial 0 runs the configured rates exactly: it is the reference for the loss constraint.
        rates = sep.dropout if trial.user_attrs.get("default_rates") else trial_rates(self.params, max_rate, shape)
        trial.set_user_attr("dropout", list(rates))
        trial_params = dataclasses.replace(self.params, separation=dataclasses.replace(sep, dropout=rates))

        def report(epoch: int, metrics: dict) -> bool:
            trial.report(metrics["val_loss"], epoch)
            return trial.should_prune()

        out_dir = self.work_dir / f"trial_{trial.number}"
        config = train(trial_params, self.data_dir, out_dir, self.work_dir / f"checkpoint_{trial.number}",
                       device=self.device, params_file=self.params_file, root=self.root,
                       experiment=EXPERIMENT, run_name=f"trial-{trial.number}", should_stop=report)
        tags = {"optuna.trial": str(trial.number), "optuna.study": trial.study.study_name}
        if config["stopped_by_callback"]:
            with tracking.run(EXPERIMENT, "", run_id=config["mlflow_run_id"], root=self.root):
                mlflow.set_tags(tags | {"optuna.state": "PRUNED"})
            raise optuna.TrialPruned()
        with tracking.run(EXPERIMENT, "", run_id=config["mlflow_run_id"], root=self.root):
            mlflow.set_tags(tags | {"optuna.state": "COMPLETE"})
            scores = validation_coverage(trial_params, self.data_dir, out_dir, self.device)
            reference = trial.study.user_attrs.get("reference_val_loss", config["best_val_loss"])
            excess = config["best_val_loss"] / reference - 1.0 - cfg.loss_tolerance
            # the interval that belongs to the estimate, judged bin by bin
            centred = scores["centred"]
            objective = per_ell_error(centred["coverage_68_per_ell"], cfg.target_coverage)
            error_95 = per_ell_error(centred["coverage_95_per_ell"], 0.95)
            trial.set_constraint("loss_excess", excess)
            trial.set_user_attr("coverage_68", scores["coverage_68"])
            trial.set_user_attr("calibration_error_95", error_95)
            trial.set_user_attr("val_loss", config["best_val_loss"])
            mlflow.log_metrics({"val_coverage_68": scores["coverage_68"], "val_coverage_95": scores["coverage_95"],
                                "val_calibration_error_68": objective, "val_calibration_error_95": error_95,
                                "val_map_rmse_uK": scores["map_rmse_uK"], "objective": objective,
                                "loss_excess": excess})
        if "reference_val_loss" not in trial.study.user_attrs:
            trial.study.set_user_attr("reference_val_loss", config["best_val_loss"])
        return objective


class LossConstraintPruner(optuna.pruners.BasePruner):
    """Prune a trial whose best validation loss so far trails the default rates' by > ``tolerance``.

    Parameters
    ----------
    tolerance : float
        Allowed relative excess of the best validation loss (``tune.loss_tolerance``).
    warmup_epochs : int
        Epochs before any trial may be pruned: the first epochs' losses are noisy.
    """

    def __init__(self, tolerance: float, warmup_epochs: int):
        self.tolerance, self.warmup_epochs = tolerance, warmup_epochs

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        epoch = trial.last_step
        if epoch is None or epoch < self.warmup_epochs:
            return False
        reference = next((t for t in study.get_trials(deepcopy=False)
                          if t.user_attrs.get("default_rates") and t.state == optuna.trial.TrialState.COMPLETE), None)
        if reference is None:
            return False
        best_reference = min(v for e, v in reference.intermediate_values.items() if e <= epoch)
        best_trial = min(v for e, v in trial.intermediate_values.items() if e <= epoch)
        return best_trial > (1.0 + self.tolerance) * best_reference


def best_feasible(study: optuna.Study) -> optuna.trial.FrozenTrial:
    """Lowest objective among completed trials that satisfy the loss constraint."""
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    feasible = [t for t in done if t.constraints.get("loss_excess", math.inf) <= 0] or done
    if not feasible:
        raise RuntimeError(f"study {study.study_name} has no completed trial")
    return min(feasible, key=lambda t: t.value)


def write_best(path: Path, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> str:
    """Write the best rates as a params fragment; return the command that applies them."""
    rates = trial.user_attrs["dropout"]
    command = f"dvc exp run -S 'separation.dropout=[{', '.join(f'{r:g}' for r in rates)}]'"
    header = (f"# Best dropout rates of Optuna study '{study.study_name}' (trial {trial.number}):\n"
              f"# validation coverage_68 = {trial.user_attrs['coverage_68']:.3f}, "
              f"best val loss = {trial.user_attrs['val_loss']:.4g}\n# Apply with:  {command}\n")
    with atomic_file(path) as tmp:
        tmp.write_text(header + yaml.safe_dump({"separation": {"dropout": rates}}, default_flow_style=None))
    return command


def run_study(params: Params, data_dir: Path, work_dir: Path, best_path: Path, n_trials: int,
              study_name: str, device: str = "cpu", params_file: Path | None = None,
              root: Path | None = None) -> dict:
    """Run (or extend) a study and write the best rates to ``best_path``.

    Returns
    -------
    dict
        ``best_trial``, ``dropout``, ``coverage_68``, ``val_loss``, ``apply_command``, ``n_trials``.
    """
    sampler = optuna.samplers.TPESampler(seed=params.seed, n_startup_trials=params.tune.startup_trials)
    pruner = LossConstraintPruner(params.tune.loss_tolerance, params.tune.pruner_warmup_epochs)
    study = optuna.create_study(study_name=study_name, storage=open_storage(root), direction="minimize",
                                sampler=sampler, pruner=pruner, load_if_exists=True)
    if not study.trials:
        study.enqueue_trial({"max_rate": max(params.separation.dropout), "shape": 1.0},
                            user_attrs={"default_rates": True})
    objective = Objective(params, data_dir, work_dir, device, params_file, root)
    run_params = {"tune": dataclasses.asdict(params.tune), "study": study_name, "n_trials": n_trials}
    with tracking.run(EXPERIMENT, f"study-{study_name}", params=run_params,
                      tags=tracking.pipeline_tags(params_file), root=root):
        study.optimize(objective, n_trials=n_trials, gc_after_trial=True)
        best = best_feasible(study)
        command = write_best(best_path, study, best)
        mlflow.log_metrics({"best_val_coverage_68": best.user_attrs["coverage_68"],
                            "best_val_loss": best.user_attrs["val_loss"]})
        mlflow.log_artifact(str(best_path))
    return {"best_trial": best.number, "dropout": best.user_attrs["dropout"],
            "coverage_68": best.user_attrs["coverage_68"], "val_loss": best.user_attrs["val_loss"],
            "apply_command": command, "n_trials": len(study.trials)}
