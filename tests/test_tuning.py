"""`dustcmb tune`: real Optuna studies (one process, two worker processes) with nested MLflow runs and a
best-params file."""

from __future__ import annotations

import ast
import dataclasses
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import optuna
import pytest
import yaml

from conftest import REPO, run_cli, separation_params
from dustcmb.config import load_params
from dustcmb.tuning import storage as storage_module
from dustcmb.tuning.runner import split_trials
from dustcmb.tuning.storage import open_storage
from dustcmb.tuning.study import (
    EXPERIMENT,
    LossConstraintPruner,
    await_reference,
    dropout_rates,
    levels_used,
    per_ell_error,
    trial_rates,
)


def test_dropout_rates_follow_max_rate_and_shape():
    assert dropout_rates(0.3, 1.0, 4) == (0.075, 0.15, 0.225, 0.3)
    assert dropout_rates(0.2, 0.0, 3) == (0.2, 0.2, 0.2)


def test_schedule_spans_the_levels_the_network_has():
    """At 64² the ResUNet has 3 dropout levels: max_rate must be the innermost one's rate."""
    params = load_params(REPO / "params.yaml")
    assert levels_used(params) == 3
    assert trial_rates(params, 0.3, 1.0) == (0.1, 0.2, 0.3, 0.3)
    paper = dataclasses.replace(params, patches=dataclasses.replace(params.patches, npix=256))
    assert levels_used(paper) == 4 and trial_rates(paper, 0.3, 1.0) == (0.075, 0.15, 0.225, 0.3)


def test_objective_is_per_bin_so_errors_cannot_cancel():
    assert per_ell_error([0.58, 0.78], 0.68) == pytest.approx(0.10)
    assert abs(np.mean([0.58, 0.78]) - 0.68) < 1e-12


def _trial(losses, **user_attrs):
    return optuna.trial.create_trial(value=0.0, intermediate_values=dict(enumerate(losses)), user_attrs=user_attrs)


def test_pruner_follows_the_loss_constraint_not_the_median():
    """Prune only a trial whose best loss so far trails the default rates' by more than the tolerance."""
    study = optuna.create_study()
    study.add_trial(_trial([1.0, 0.8, 0.6, 0.5], default_rates=True))
    study.add_trial(_trial([0.5, 0.4, 0.3, 0.2]))  # a much better trial: a median pruner would use it
    pruner = LossConstraintPruner(tolerance=0.05, warmup_epochs=1)
    assert not pruner.prune(study, _trial([1.0, 0.83]))      # 0.83 <= 1.05 × 0.8
    assert pruner.prune(study, _trial([1.0, 0.85]))          # 0.85 >  1.05 × 0.8
    assert not pruner.prune(study, _trial([2.0]))            # still in the warm-up
    assert not pruner.prune(study, _trial([0.9, 0.95, 0.62]))  # best so far 0.62 <= 1.05 × 0.6
    assert not pruner.prune(optuna.create_study(), _trial([9.0, 9.0]))  # no reference yet


def test_trials_are_split_so_that_none_is_lost_or_run_twice():
    assert split_trials(9, 2) == [5, 4] and split_trials(3, 4) == [1, 1, 1] and split_trials(0, 2) == []


def test_a_sampled_trial_never_scores_against_a_missing_reference():
    """Without the default rates' loss and with no default-rates trial to come, a trial fails loudly."""
    study = optuna.create_study(study_name="no-reference")
    study.enqueue_trial({"max_rate": 0.3, "shape": 1.0}, user_attrs={"default_rates": True})
    with pytest.raises(RuntimeError, match="no default-rates trial is running"):
        await_reference(study, poll_s=0.0)  # waiting, not running: nobody would ever set the reference
    study.set_user_attr("reference_val_loss", 0.5)
    assert await_reference(study, poll_s=0.0) == 0.5


def _tune_params(tmp_path, n_trials):
    """Tiny parameters for a real study: 3 epochs a trial, scored on 6 validation maps."""
    params = separation_params(tmp_path / "params.yaml", max_epochs=3, val_maps=2)
    data = yaml.safe_load(params.read_text())
    data["tune"] = {"n_trials": n_trials, "val_maps": 6, "startup_trials": 2, "pruner_warmup_epochs": 1}
    params.write_text(yaml.safe_dump(data))
    return params


def _study_runs(tmp_path, name):
    """The parent MLflow run of study ``name`` and its nested trial runs."""
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=[EXPERIMENT], output_format="list")
    parents = [r for r in runs if r.info.run_name == f"study-{name}"]
    assert len(parents) == 1
    return parents[0], [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]


def test_three_trial_study(tmp_path, separation_data, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = _tune_params(tmp_path, n_trials=3)
    best = tmp_path / "best.yaml"
    assert run_cli("tune", "--study", "tiny", "--data", separation_data, "--work", tmp_path / "work",
                   "--out", best, "--params", params) == 0

    study = optuna.load_study(study_name="tiny", storage=open_storage(tmp_path))
    assert len(study.trials) == 3
    first = study.trials[0]
    assert first.user_attrs["dropout"] == list(load_params(params).separation.dropout)
    assert all(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
               for t in study.trials)
    assert study.user_attrs["reference_val_loss"] == pytest.approx(first.user_attrs["val_loss"])
    # A trial trains on the pipeline's schedule (separation.max_epochs = 3), not a shortened one.
    assert first.state == optuna.trial.TrialState.COMPLETE and len(first.intermediate_values) == 3

    _, children = _study_runs(tmp_path, "tiny")
    assert len(children) == 3
    assert all("val_loss" in r.data.metrics and "separation.dropout" in r.data.params for r in children)
    assert any("val_coverage_68" in r.data.metrics for r in children)

    applied = yaml.safe_load(best.read_text())
    rates = applied["separation"]["dropout"]
    assert len(rates) == 4 and all(0 <= r < 1 for r in rates)
    assert "dvc exp run -S 'separation.dropout=[" in best.read_text()


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")  # study.ask() below plays the dead process
def test_a_trial_killed_mid_run_is_retried(tmp_path, separation_data, monkeypatch):
    """A trial left RUNNING by a dead process is failed on the next run and retried with the same rates."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(storage_module, "HEARTBEAT_S", 1)
    params = separation_params(tmp_path / "params.yaml", max_epochs=1)
    storage = open_storage(tmp_path)
    study = optuna.create_study(study_name="killed", storage=storage)
    study.enqueue_trial({"max_rate": 0.3, "shape": 1.0}, user_attrs={"default_rates": True})
    killed = study.ask()  # the default-rates trial, as a process killed mid-trial leaves it
    storage.record_heartbeat(killed._trial_id)
    time.sleep(2.5)  # longer than the grace period of two heartbeats
    assert run_cli("tune", "--study", "killed", "--trials", "1", "--data", separation_data,
                   "--work", tmp_path / "work", "--out", tmp_path / "best.yaml", "--params", params) == 0

    first, retry = optuna.load_study(study_name="killed", storage=open_storage(tmp_path)).trials
    assert first.state == optuna.trial.TrialState.FAIL
    assert retry.state == optuna.trial.TrialState.COMPLETE and retry.system_attrs["failed_trial"] == 0
    assert retry.user_attrs["dropout"] == list(load_params(params).separation.dropout)


def test_two_worker_processes_share_one_study(tmp_path, separation_data, monkeypatch):
    """Five trials on two worker processes: the default-rates trial first, then 2 + 2 in parallel, each
    trial run and logged exactly once, and the best-params file is the study's best trial."""
    monkeypatch.chdir(tmp_path)
    params = _tune_params(tmp_path, n_trials=5)
    best = tmp_path / "best.yaml"
    assert run_cli("tune", "--study", "pair", "--workers", "2", "--data", separation_data,
                   "--work", tmp_path / "work", "--out", best, "--params", params) == 0

    study = optuna.load_study(study_name="pair", storage=open_storage(tmp_path))
    trials = study.trials
    assert sorted(t.number for t in trials) == [0, 1, 2, 3, 4]
    assert all(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in trials)
    assert trials[0].user_attrs["default_rates"] and trials[0].state == optuna.trial.TrialState.COMPLETE
    reference = study.user_attrs["reference_val_loss"]
    assert reference == pytest.approx(trials[0].user_attrs["val_loss"])
    tolerance = load_params(params).tune.loss_tolerance
    for t in trials:  # every constraint compares with the default rates' loss
        if t.state == optuna.trial.TrialState.COMPLETE:
            assert t.constraints["loss_excess"] == pytest.approx(t.user_attrs["val_loss"] / reference - 1 - tolerance)

    parent, children = _study_runs(tmp_path, "pair")
    assert parent.info.status == "FINISHED" and "best_val_loss" in parent.data.metrics
    logged = sorted(int(r.data.tags["optuna.trial"]) for r in children)
    assert logged == [0, 1, 2, 3, 4]
    by_number = {t.number: t for t in trials}
    for run in children:
        trial = by_number[int(run.data.tags["optuna.trial"])]
        assert list(ast.literal_eval(run.data.params["separation.dropout"])) == trial.user_attrs["dropout"]
        assert run.data.tags["optuna.state"] == trial.state.name
    workers = sorted(run.data.tags["optuna.worker"].rsplit("/", 1)[1] for run in children)
    assert workers == ["0", "1", "1", "2", "2"]  # trial 0 here, then two trials in each worker process

    assert f"(trial {study.best_trial.number})" in best.read_text()
    assert yaml.safe_load(best.read_text())["separation"]["dropout"] == study.best_trial.user_attrs["dropout"]


WORKERS_SCRIPT = """
import time
from dustcmb.tuning.runner import run_processes

def nap(seconds):
    time.sleep(seconds)

if __name__ == "__main__":
    run_processes(nap, [(600,), (600,)], "test")
"""


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (Linux /proc)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads child processes from Linux /proc")
def test_terminating_the_tuner_terminates_its_workers(tmp_path):
    """SIGTERM to a process running two worker processes (each sleeping 10 min) ends both workers
    within 30 s, and the process exits with 128 + SIGTERM."""
    script = tmp_path / "workers.py"
    script.write_text(WORKERS_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers, deadline = [], time.time() + 60
    while len(workers) < 2 and time.time() < deadline:
        time.sleep(0.2)
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        workers = [int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]
    assert len(workers) == 2, "the workers did not start"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    deadline = time.time() + 30
    while any(_alive(pid) for pid in workers) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in workers)
