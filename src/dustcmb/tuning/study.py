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

Storage (:mod:`dustcmb.tuning.storage`): a journal file ``<root>/mlruns/optuna.journal`` that the
worker processes of one machine share, or a database URL that several machines share; a study
resumes by name. Trials send heartbeats: a trial whose process died is marked FAIL and retried once
with the same rates (the default-rates trial too), by the next process that looks.

Concurrency (:mod:`dustcmb.tuning.runner`): no trial starts before the default-rates trial has set
the loss reference, so every constraint and pruning decision compares with it. The process that
finds that trial waiting runs it (on all its cores); the others wait. Each invocation opens one
parent MLflow run ``study-<name>`` in the ``dustcmb-tune`` experiment; every trial it runs, in
whichever worker process, is a nested run ``trial-<n>`` tagged with the study and the worker.
"""

from __future__ import annotations

import dataclasses
import math
import time
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
from dustcmb.tuning.storage import fail_stale_trials, open_storage

EXPERIMENT = "dustcmb-tune"
REFERENCE = "reference_val_loss"  # study attribute: the default rates' best validation loss
POLL_S = 10.0  # seconds between looks of a process waiting for the default-rates trial
PENDING = (optuna.trial.TrialState.WAITING, optuna.trial.TrialState.RUNNING)


def dropout_rates(max_rate: float, shape: float, levels: int) -> tuple[float, ...]:
    """Dropout rate per level, outermost first: ``max_rate · ((i + 1) / levels) ** shape``."""
    return tuple(round(max_rate * ((i + 1) / levels) ** shape, 4) for i in range(levels))


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


@dataclasses.dataclass(frozen=True)
class Setup:
    """What every process of a study needs; picklable, so that spawned workers receive it whole.

    ``storage`` is a database URL, or None for the journal file under ``root`` (see
    :func:`dustcmb.tuning.storage.open_storage`).
    """

    params: Params
    data_dir: Path
    work_dir: Path
    study_name: str
    device: str = "cpu"
    params_file: Path | None = None
    root: Path | None = None
    storage: str | None = None


def open_study(setup: Setup, seed: int | None) -> optuna.Study:
    """Create or load the study, with a TPE sampler seeded by ``seed`` and the loss-constraint pruner."""
    cfg = setup.params.tune
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=cfg.startup_trials)
    pruner = LossConstraintPruner(cfg.loss_tolerance, cfg.pruner_warmup_epochs)
    return optuna.create_study(study_name=setup.study_name, storage=open_storage(setup.root, setup.storage),
                               direction="minimize", sampler=sampler, pruner=pruner, load_if_exists=True)


def _pending_default_states(study: optuna.Study) -> set[optuna.trial.TrialState]:
    """States (WAITING, RUNNING) of the default-rates trials not finished yet."""
    return {t.state for t in study.get_trials(deepcopy=False, states=PENDING) if t.user_attrs.get("default_rates")}


def settle_reference(study: optuna.Study, objective: Objective, n_trials: int, poll_s: float = POLL_S) -> int:
    """Run the default-rates trial here, or wait while another process runs it, until the loss
    reference exists or ``n_trials`` trials ran here; return how many ran.

    A new study, or one whose default-rates trial failed, gets one enqueued (trial 0 of a new study).
    """
    ran = 0
    while REFERENCE not in study.user_attrs and ran < n_trials:
        fail_stale_trials(study)  # a default-rates trial whose process died comes back WAITING
        states = _pending_default_states(study)
        if not states:
            params = objective.setup.params
            study.enqueue_trial({"max_rate": max(params.separation.dropout), "shape": 1.0},
                                user_attrs={"default_rates": True})
        elif optuna.trial.TrialState.WAITING not in states:
            time.sleep(poll_s)
            continue
        study.optimize(objective, n_trials=1, gc_after_trial=True)
        ran += 1
    return ran


def await_reference(study: optuna.Study, poll_s: float = POLL_S) -> float:
    """The default rates' best validation loss, waiting while their trial runs in another process.

    Only a race lets a trial finish first: processes on two machines that both saw the retry of a
    stale default-rates trial waiting, where one ran it and the other a sampled trial.
    """
    while (reference := study.user_attrs.get(REFERENCE)) is None:
        # one merely WAITING may sit behind this very trial in this very process: fail, do not hang
        if optuna.trial.TrialState.RUNNING not in _pending_default_states(study):
            raise RuntimeError(f"study {study.study_name}: no default-rates trial is running to set the loss reference")
        time.sleep(poll_s)
    return reference


class Objective:
    """One trial: train with the suggested rates, then score coverage on validation maps.

    ``worker`` names the process in the trial's MLflow tags (``optuna.worker``).
    """

    def __init__(self, setup: Setup, worker: str = ""):
        self.setup, self.worker = setup, worker

    def __call__(self, trial: optuna.Trial) -> float:
        setup = self.setup
        cfg, sep = setup.params.tune, setup.params.separation
        max_rate = trial.suggest_float("max_rate", *cfg.max_rate_bounds, log=True)
        shape = trial.suggest_float("shape", *cfg.shape_bounds)
        # The default-rates trial runs the configured rates exactly: it is the loss constraint's reference.
        default = bool(trial.user_attrs.get("default_rates"))
        rates = sep.dropout if default else trial_rates(setup.params, max_rate, shape)
        trial.set_user_attr("dropout", list(rates))
        trial_params = dataclasses.replace(setup.params, separation=dataclasses.replace(sep, dropout=rates))

        def report(epoch: int, metrics: dict) -> bool:
            trial.report(metrics["val_loss"], epoch)
            return trial.should_prune()

        out_dir = setup.work_dir / f"trial_{trial.number}"
        config = train(trial_params, setup.data_dir, out_dir, setup.work_dir / f"checkpoint_{trial.number}",
                       device=setup.device, params_file=setup.params_file, root=setup.root,
                       experiment=EXPERIMENT, run_name=f"trial-{trial.number}", should_stop=report)
        tags = {"optuna.trial": str(trial.number), "optuna.study": trial.study.study_name,
                "optuna.worker": self.worker}
        if config["stopped_by_callback"]:
            with tracking.run(EXPERIMENT, "", run_id=config["mlflow_run_id"], root=setup.root):
                mlflow.set_tags(tags | {"optuna.state": "PRUNED"})
            raise optuna.TrialPruned()
        loss = config["best_val_loss"]
        reference = trial.study.user_attrs.get(REFERENCE, loss) if default else await_reference(trial.study)
        with tracking.run(EXPERIMENT, "", run_id=config["mlflow_run_id"], root=setup.root):
            mlflow.set_tags(tags | {"optuna.state": "COMPLETE"})
            objective = self._score(trial, trial_params, out_dir, loss / reference - 1.0 - cfg.loss_tolerance, loss)
        if default and REFERENCE not in trial.study.user_attrs:
            trial.study.set_user_attr(REFERENCE, loss)
        return objective

    def _score(self, trial: optuna.Trial, trial_params: Params, out_dir: Path, excess: float, loss: float) -> float:
        """Score the trained model's intervals on validation maps; record and log the results."""
        cfg = self.setup.params.tune
        scores = validation_coverage(trial_params, self.setup.data_dir, out_dir, self.setup.device)
        # the interval that belongs to the estimate, judged bin by bin
        centred = scores["centred"]
        objective = per_ell_error(centred["coverage_68_per_ell"], cfg.target_coverage)
        error_95 = per_ell_error(centred["coverage_95_per_ell"], 0.95)
        trial.set_constraint("loss_excess", excess)
        trial.set_user_attr("coverage_68", scores["coverage_68"])
        trial.set_user_attr("calibration_error_95", error_95)
        trial.set_user_attr("val_loss", loss)
        mlflow.log_metrics({"val_coverage_68": scores["coverage_68"], "val_coverage_95": scores["coverage_95"],
                            "val_calibration_error_68": objective, "val_calibration_error_95": error_95,
                            "val_map_rmse_uK": scores["map_rmse_uK"], "objective": objective,
                            "loss_excess": excess})
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
