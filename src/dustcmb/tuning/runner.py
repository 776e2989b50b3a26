"""Run a study in this process or on several worker processes, then write the best rates once.

The default-rates trial runs first, here and on every core (:func:`settle_reference`); the
remaining trials are then split between the workers, ``n // workers`` each and one more for the
first ``n % workers``, so that exactly the requested number runs with none lost or run twice (a
shared "stop at N" counter would let two workers both start the last trial). Each worker process
uses ``cores // workers`` torch threads and resumes the invocation's parent MLflow run, so that its
trials nest under it like those of a single process. Worker processes draw their TPE seeds from the
operating system: with one seed they would sample the same rates side by side.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import socket
from pathlib import Path

import mlflow
import torch

from dustcmb import tracking
from dustcmb.tuning.study import EXPERIMENT, Objective, Setup, best_feasible, open_study, settle_reference, write_best


def split_trials(n_trials: int, workers: int) -> list[int]:
    """Trials per worker: ``n_trials`` in all, as even as possible, no worker without one."""
    return [n for k in range(workers) if (n := n_trials // workers + (k < n_trials % workers))]


def cpu_cores() -> int:
    """Cores this process may run on (the affinity mask, where the system has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def worker_name(index: int) -> str:
    """``<host>/<index>``: the MLflow tag ``optuna.worker`` of a trial (0 = the invoking process)."""
    return f"{socket.gethostname()}/{index}"


def _work(setup: Setup, index: int, n_trials: int, threads: int, parent_run_id: str) -> None:
    """Entry point of worker process ``index``: run ``n_trials`` trials as children of the parent run."""
    torch.set_num_threads(threads)
    study = open_study(setup, seed=None)
    # Resuming the parent makes each trial's run its child; leaving it marks the parent FINISHED until
    # the invoking process, which ends it last, logs the best trial and ends it again.
    with tracking.run(EXPERIMENT, "", run_id=parent_run_id, root=setup.root):
        study.optimize(Objective(setup, worker_name(index)), n_trials=n_trials, gc_after_trial=True)


def run_workers(setup: Setup, shares: list[int], parent_run_id: str) -> None:
    """Run ``shares[k]`` trials in worker process ``k + 1`` each, in parallel; fail if any worker did."""
    threads = max(1, cpu_cores() // len(shares))
    run_processes(_work, [(setup, k + 1, n, threads, parent_run_id) for k, n in enumerate(shares)],
                  f"study {setup.study_name}")


def run_processes(target, args: list[tuple], what: str) -> None:
    """Run ``target(*a)`` for every ``a`` in ``args``, each in its own spawned process named
    ``tune-worker-<k>``, and wait for all; raise if any failed. Interrupted (SIGTERM or Ctrl-C), this
    process terminates its workers before it exits, so that none is left training on its own."""
    # spawn, not fork: a forked child would inherit this process's storage and MLflow connections
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=target, args=a, name=f"tune-worker-{k + 1}") for k, a in enumerate(args)]
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        for process in processes:
            process.start()
        for process in processes:
            process.join()
    finally:
        signal.signal(signal.SIGTERM, previous)
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join()
    failed = [f"{p.name} (exit {p.exitcode})" for p in processes if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"{what}: {', '.join(failed)} failed; rerun to finish the trials")


def _exit_on_sigterm(signum: int, frame) -> None:
    raise SystemExit(128 + signum)


def run_study(setup: Setup, best_path: Path, n_trials: int, workers: int = 1) -> dict:
    """Run (or extend) a study by ``n_trials`` trials on ``workers`` processes; write the best rates.

    Returns
    -------
    dict
        ``best_trial``, ``dropout``, ``coverage_68``, ``val_loss``, ``apply_command``, ``n_trials``.
    """
    setup = dataclasses.replace(setup, root=tracking.tracking_root(setup.root))  # workers may start elsewhere
    # One process on the local journal is reproducible; processes that share a study are not anyway.
    study = open_study(setup, seed=setup.params.seed if workers == 1 and setup.storage is None else None)
    objective = Objective(setup, worker_name(0))
    run_params = {"tune": dataclasses.asdict(setup.params.tune), "study": setup.study_name,
                  "n_trials": n_trials, "workers": workers}
    with tracking.run(EXPERIMENT, f"study-{setup.study_name}", params=run_params,
                      tags=tracking.pipeline_tags(setup.params_file), root=setup.root) as parent:
        ran = settle_reference(study, objective, n_trials)
        shares = split_trials(n_trials - ran, workers)
        if len(shares) == 1:
            study.optimize(objective, n_trials=shares[0], gc_after_trial=True)
        elif shares:
            run_workers(setup, shares, parent.info.run_id)
        best = best_feasible(study)
        command = write_best(best_path, study, best)
        mlflow.log_metrics({"best_val_coverage_68": best.user_attrs["coverage_68"],
                            "best_val_loss": best.user_attrs["val_loss"]})
        mlflow.log_artifact(str(best_path))
    return {"best_trial": best.number, "dropout": best.user_attrs["dropout"],
            "coverage_68": best.user_attrs["coverage_68"], "val_loss": best.user_attrs["val_loss"],
            "apply_command": command, "n_trials": len(study.trials)}
