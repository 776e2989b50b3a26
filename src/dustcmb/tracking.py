"""The one MLflow helper: where runs are stored, how they start, end and are tagged (docs/science.md#tracking).

Runs go to ``sqlite:///<root>/mlruns/mlflow.db`` with artifacts under ``<root>/mlruns/artifacts``.
``<root>`` is ``$DVC_ROOT`` when DVC runs the stage (``dvc exp run`` works in a temporary copy and
sets it, so runs still land in the real repository), else the current directory. A run whose body
raises ends with status FAILED. Every run is tagged with the DVC experiment name (when there is
one) and a hash of the parameter file, so the runs of one ``dvc repro`` can be found together.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import mlflow

from dustcmb.errors import InputError

logging.getLogger("alembic").setLevel(logging.WARNING)


def tracking_root(root: str | Path | None = None) -> Path:
    """Repository root under which ``mlruns/`` lives."""
    return Path(root or os.environ.get("DVC_ROOT") or Path.cwd()).resolve()


def configure(root: str | Path | None = None) -> str:
    """Point MLflow at ``<root>/mlruns/mlflow.db`` and return the tracking URI."""
    mlruns = tracking_root(root) / "mlruns"
    mlruns.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{mlruns / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    return uri


def _experiment_id(name: str, root: str | Path | None) -> str:
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    artifacts = (tracking_root(root) / "mlruns" / "artifacts" / name).as_uri()
    return mlflow.create_experiment(name, artifact_location=artifacts)


def flatten(params: Mapping, prefix: str = "") -> dict[str, object]:
    """Flatten nested mappings to ``{"a.b": value}`` for ``mlflow.log_params``."""
    flat: dict[str, object] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def pipeline_tags(params_file: str | Path | None = None) -> dict[str, str]:
    """Tags that group the runs of one pipeline execution."""
    tags = {}
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc.experiment"] = os.environ["DVC_EXP_NAME"]
    if params_file and Path(params_file).is_file():
        digest = hashlib.sha256(Path(params_file).read_bytes()).hexdigest()[:12]
        tags["params.sha256"] = digest
    return tags


@contextlib.contextmanager
def run(experiment: str, run_name: str, params: Mapping | None = None,
        tags: Mapping[str, str] | None = None, run_id: str | None = None,
        nested: bool = False, root: str | Path | None = None) -> Iterator[mlflow.ActiveRun]:
    """Start (or resume, with ``run_id``) an MLflow run; end it FAILED if the body raises.

    Parameters
    ----------
    experiment : str
        Experiment name, created on first use with artifacts under ``mlruns/artifacts``.
    run_name : str
        Display name of a new run (ignored when resuming).
    params : mapping, optional
        Nested parameters, flattened and logged once (not re-logged on resume).
    tags : mapping, optional
        Extra tags; see :func:`pipeline_tags`.
    run_id : str, optional
        Resume this run instead of starting a new one.
    nested : bool
        Start as a child of the active run; implied when a run is already active (a training run
        started inside an Optuna study's parent run becomes its child).
    """
    configure(root)
    nested = nested or mlflow.active_run() is not None
    experiment_id = _experiment_id(experiment, root)
    if run_id is not None and not mlflow.search_runs(experiment_ids=[experiment_id],
                                                     filter_string=f"attributes.run_id = '{run_id}'",
                                                     output_format="list"):
        raise InputError(f"MLflow run {run_id} of the checkpoint being resumed is not in the tracking store at "
                         f"{tracking_root(root)}; resume with the DVC_ROOT (or working directory) of the killed "
                         "run, or delete its checkpoint to start afresh")
    active = mlflow.start_run(run_id=run_id, experiment_id=None if run_id else experiment_id,
                              run_name=None if run_id else run_name, nested=nested,
                              tags=dict(tags or {}))
    try:
        if params and run_id is None:
            mlflow.log_params(flatten(params))
        yield active
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    mlflow.end_run(status="FINISHED")

