"""Training of the Bayesian ResUNet (docs/science.md#bayesian-resunet), top to bottom.

1. Open the streaming train/val sets of a separation-data directory (GAN dust + CMB, normalised).
2. Loss = map MSE + ``spectrum_weight`` × spectrum MSE, where the spectrum term compares the ``D_ℓ``
   heads of prediction and target *relative to the mean target D_ℓ of the training set*:
   ``mean_ℓ ((D̂_ℓ − D_ℓ) / D̄_ℓ)²``. Both terms are then dimensionless and of order one for a poor
   prediction (a zero map scores ≈ 1 on each, since the target has unit variance), so neither
   dominates; dividing by ``D̄_ℓ`` gives every ℓ bin the same weight for the same *fractional*
   error, which is what the spectrum figures judge, while an unscaled MSE would be ruled by the
   first acoustic peak. (A log-spectrum MSE would do the same but diverges for near-zero early
   predictions.) ``D̄_ℓ`` is the bank's mean lensed spectrum binned like the estimator
   (:func:`dustcmb.stats.bin_theory`), in network units: the expectation of the training targets.
3. Adamax (lr 0.002, β = (0.9, 0.999)), batch 32; each epoch draws ``steps_per_epoch`` batches from
   a fresh permutation of the training set (a pure function of seed and epoch), then scores the
   validation maps with dropout off. Early stopping: ``patience`` epochs without a better val loss.
4. After every epoch a checkpoint (weights, optimiser, RNG, counters, MLflow run id) is written to a
   folder outside the DVC outputs; ``--resume`` continues from it with nothing lost.
5. The best weights (state dict), ``config.json`` and ``history.json`` go atomically to the output
   folder and to MLflow. Same params -> same weights on CPU.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path

import mlflow
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from dustcmb import checkpoint as checkpoint_io
from dustcmb import tracking
from dustcmb.config import Params
from dustcmb.errors import ConfigError
from dustcmb.seeding import Stream, numpy_rng
from dustcmb.separation.inputs import NetworkInputs, n_inputs
from dustcmb.separation.mc import MODEL_NAME
from dustcmb.separation.resunet import ResUNet
from dustcmb.simulation.dataset import SeparationDataset
from dustcmb.simulation.store import open_datasets
from dustcmb.stats.power import bin_theory, dl_from_cl, ell_bins
from dustcmb.storage import atomic_dir, write_json

EXPERIMENT = "separation"
CHECKPOINT_NAME = "checkpoint.pt"


def mean_target_dl(train_set: SeparationDataset, size_deg: float) -> torch.Tensor:
    """Expected ``D_ℓ`` of the training targets in network units² at the estimator's rings ``[n_bins]``."""
    sim, norm = train_set.simulator, train_set.normalisation
    cl_uk2 = bin_theory(sim.bank.ell, sim.bank.cl_uk2.mean(axis=0), sim.npix, size_deg)
    dl = dl_from_cl(ell_bins(sim.npix, size_deg), cl_uk2) / norm.target_scale_uk**2
    return torch.as_tensor(dl, dtype=torch.float32)


def losses(model: ResUNet, inputs: torch.Tensor, target: torch.Tensor, dl_ref: torch.Tensor,
           spectrum_weight: float) -> dict[str, torch.Tensor]:
    """Map MSE, relative spectrum MSE and their weighted sum (``loss``) for one batch."""
    pred, pred_dl = model(inputs)
    map_mse = F.mse_loss(pred, target)
    spec_mse = (((pred_dl - model.spectrum(target)) / dl_ref) ** 2).mean()
    return {"loss": map_mse + spectrum_weight * spec_mse, "map_mse": map_mse, "spec_mse": spec_mse}


@torch.no_grad()
def validate(model: ResUNet, loader: DataLoader, dl_ref: torch.Tensor, spectrum_weight: float,
             device: str) -> dict[str, float]:
    """Mean losses over the validation maps with dropout off (BatchNorm in eval mode)."""
    model.eval()
    totals, count = {}, 0
    for inputs, target in loader:
        batch = losses(model, inputs.to(device), target.to(device), dl_ref, spectrum_weight)
        for name, value in batch.items():
            totals[name] = totals.get(name, 0.0) + value.item() * len(inputs)
        count += len(inputs)
    return {f"val_{name}": value / count for name, value in totals.items()}


def epoch_order(n_train: int, steps: int, batch: int, seed: int, epoch: int) -> list[int]:
    """Training indices of ``epoch``: a permutation of the set cut to ``steps`` full batches."""
    order = numpy_rng(seed, Stream.RESUNET_BATCHES, epoch).permutation(n_train)
    per_epoch = n_train // batch if steps == 0 else steps
    return np.resize(order, per_epoch * batch).tolist()


@dataclasses.dataclass
class ResUNetState:
    """Everything a checkpoint must restore besides the weights; plain values only."""

    fingerprint: dict
    epoch: int = 0
    best_val_loss: float = math.inf
    best_epoch: int = 0
    best_state: dict | None = None  # state dict (CPU copies) of the best epoch
    bad_epochs: int = 0  # epochs since the last better validation loss
    history: list[dict] = dataclasses.field(default_factory=list)  # {"epoch", metrics...} per epoch
    run_id: str | None = None
    seconds: float = 0.0
    stopped_by_callback: bool = False


@dataclasses.dataclass
class Trainer:
    """The model, its optimiser and the fixed inputs of one training run."""

    model: ResUNet
    opt: torch.optim.Adamax
    dl_ref: torch.Tensor  # [n_bins] mean target D_ℓ in network units², the spectrum loss's scale
    sets: dict[str, SeparationDataset]
    device: str


def _fingerprint(params: Params, sets: dict) -> dict:
    """What a checkpoint must share with the current run to be resumed."""
    return {"separation": dataclasses.asdict(params.separation), "seed": params.seed,
            "simulation": dataclasses.asdict(params.simulation), "npix": params.patches.npix,
            "n_train": len(sets["train"]), "normalisation": dataclasses.asdict(sets["train"].normalisation)}


def _loaders(params: Params, sets: dict, order: list[int]) -> tuple[DataLoader, DataLoader]:
    cfg = params.separation
    val = NetworkInputs(sets["val"], params)
    val = val if cfg.val_maps == 0 else Subset(val, range(min(cfg.val_maps, len(val))))
    train = DataLoader(NetworkInputs(sets["train"], params), batch_size=cfg.batch_size, sampler=order,
                       drop_last=True, num_workers=cfg.workers)
    return train, DataLoader(val, batch_size=cfg.batch_size, num_workers=cfg.workers)


@contextlib.contextmanager
def _cores_for_workers(device: str, workers: int):
    """On CPU, leave one core to each DataLoader worker: torch's intra-op threads drop by ``workers``.

    The workers simulate the next batches (one process each, single-threaded numpy) while the main
    process runs the optimiser step; with all cores also given to the step's OpenMP threads the two
    fight over the cores. At 64² on 2 cores one worker and one torch thread took 390 ms per step
    against 640 ms with the data simulated in the main process on two threads (the simulation,
    beam deconvolution and constrained-ILC prior of a batch, ~350 ms, is then hidden behind the step).
    """
    threads = torch.get_num_threads()
    if device == "cpu" and workers > 0:
        torch.set_num_threads(max(1, threads - workers))
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _start(params: Params, data_dir: Path, checkpoint: Path, device: str,
           resume: bool) -> tuple[Trainer, ResUNetState]:
    """Data, model, optimiser and state: fresh, or restored from ``checkpoint`` on resume."""
    cfg = params.separation
    sets = open_datasets(data_dir, params)
    if len(sets["train"]) < cfg.batch_size:
        raise ConfigError(f"{len(sets['train'])} training maps is fewer than separation.batch_size="
                          f"{cfg.batch_size}; sample more GAN maps or lower the batch size")
    torch.manual_seed(params.seed)
    model = ResUNet(params.patches.npix, params.patches.size_deg,
                    n_inputs(sets["train"].simulator.n_channels, cfg), cfg.base_channels, cfg.dropout,
                    prior_channel=cfg.prior != "none").to(device)
    opt = torch.optim.Adamax(model.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    dl_ref = mean_target_dl(sets["train"], params.patches.size_deg).to(device)
    state = ResUNetState(fingerprint=_fingerprint(params, sets))
    if resume:
        saved = checkpoint_io.load(checkpoint, state.fingerprint,
                                   "separation/simulation parameters or another data set")
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        torch.set_rng_state(saved["rng"])
        if saved["cuda_rng"] and device == "cuda":
            torch.cuda.set_rng_state_all(saved["cuda_rng"])
        state = ResUNetState(**{f.name: saved[f.name] for f in dataclasses.fields(ResUNetState)})
    return Trainer(model, opt, dl_ref, sets, device), state


def _train_epoch(run: Trainer, params: Params, epoch: int) -> dict[str, float]:
    """One epoch of optimiser steps, then the validation losses; returns both as metrics."""
    cfg = params.separation
    order = epoch_order(len(run.sets["train"]), cfg.steps_per_epoch, cfg.batch_size, params.seed, epoch)
    train_loader, val_loader = _loaders(params, run.sets, order)
    run.model.train()
    sums = {}
    for inputs, target in tqdm(train_loader, desc=f"separation epoch {epoch}", unit="batch", leave=False):
        batch = losses(run.model, inputs.to(run.device), target.to(run.device), run.dl_ref, cfg.spectrum_weight)
        run.opt.zero_grad(set_to_none=True)
        batch["loss"].backward()
        run.opt.step()
        for name, value in batch.items():
            sums[name] = sums.get(name, 0.0) + value.item() / len(train_loader)
    metrics = {f"train_{k}": v for k, v in sums.items()}
    return metrics | validate(run.model, val_loader, run.dl_ref, cfg.spectrum_weight, run.device)


def _record_epoch(state: ResUNetState, run: Trainer, epoch: int, metrics: dict[str, float],
                  seconds: float) -> None:
    """Early-stopping bookkeeping, history and MLflow metrics of a finished epoch."""
    if metrics["val_loss"] < state.best_val_loss:
        state.best_val_loss, state.best_epoch, state.bad_epochs = metrics["val_loss"], epoch, 0
        state.best_state = {k: v.detach().cpu().clone() for k, v in run.model.state_dict().items()}
    else:
        state.bad_epochs += 1
    state.epoch, state.seconds = epoch, seconds
    state.history.append({"epoch": epoch, **metrics})
    mlflow.log_metrics(metrics | {"elapsed_seconds": seconds}, step=epoch)
    tqdm.write(f"epoch {epoch}: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))


def _save_checkpoint(path: Path, state: ResUNetState, run: Trainer) -> None:
    """The resumable state plus weights, optimiser and torch RNG states."""
    checkpoint_io.save(path, {
        **vars(state), "model": run.model.state_dict(), "opt": run.opt.state_dict(), "rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []})


def _write_outputs(out_dir: Path, state: ResUNetState, model: ResUNet, params: Params, data_dir: Path) -> dict:
    """Best state dict, its config (architecture + normalisation + summary) and the history, atomically."""
    config = {"architecture": model.config(), "normalisation": state.fingerprint["normalisation"],
              "data_dir": str(data_dir), "seed": params.seed, "instrument": params.simulation.instrument,
              "best_epoch": state.best_epoch, "best_val_loss": state.best_val_loss,
              "epochs_run": state.epoch, "stopped_early": state.bad_epochs >= params.separation.patience,
              "train_seconds": state.seconds, "mlflow_run_id": state.run_id}
    with atomic_dir(out_dir) as tmp:
        torch.save(state.best_state, tmp / MODEL_NAME)
        write_json(tmp / "config.json", config)
        write_json(tmp / "history.json", {"epochs": state.history})
    return config


def _finish(out_dir: Path, state: ResUNetState, run: Trainer, params: Params, data_dir: Path) -> dict:
    """Write the outputs and log the summary metrics and the model folder to MLflow."""
    config = _write_outputs(out_dir, state, run.model, params, data_dir)
    config["stopped_by_callback"] = state.stopped_by_callback
    mlflow.log_metrics({"best_val_loss": config["best_val_loss"], "best_epoch": config["best_epoch"],
                        "train_seconds": config["train_seconds"]})
    mlflow.log_artifacts(str(out_dir), artifact_path="resunet")
    return config


def train(params: Params, data_dir: Path, out_dir: Path, checkpoint_dir: Path, device: str = "cpu",
          resume: bool = False, params_file: Path | None = None, root: Path | None = None,
          experiment: str = EXPERIMENT, run_name: str = "separation-train",
          should_stop: Callable[[int, dict], bool] | None = None) -> dict:
    """Train the ResUNet on a separation-data directory and write the best weights to ``out_dir``.

    Parameters
    ----------
    params : Params
        Uses ``params.separation``, ``params.seed`` (and checks ``simulation``/``patches`` against the data).
    data_dir : Path
        Written by ``dustcmb separation data``.
    out_dir : Path
        Replaced atomically by ``resunet.pt`` (state dict), ``config.json`` and ``history.json``.
    checkpoint_dir : Path
        Holds ``checkpoint.pt`` while training (removed on success); keep it outside DVC outputs.
    device : str
        ``cpu`` or ``cuda`` (already resolved).
    resume : bool
        Continue from the checkpoint (same MLflow run, same epoch order, same RNG).
    params_file, root : Path, optional
        For MLflow tags and the tracking root (see :mod:`dustcmb.tracking`).
    experiment, run_name : str
        MLflow experiment and run name (an Optuna trial logs into the study's experiment).
    should_stop : callable, optional
        Called as ``should_stop(epoch, metrics)`` after every epoch; returning True ends training
        there (an Optuna pruner); ``config["stopped_by_callback"]`` then says so.

    Returns
    -------
    dict
        The written ``config.json``.
    """
    cfg = params.separation
    checkpoint = checkpoint_dir / CHECKPOINT_NAME
    run, state = _start(params, data_dir, checkpoint, device, resume)
    run_params = {"separation": dataclasses.asdict(cfg), "seed": params.seed, "device": device,
                  "instrument": params.simulation.instrument, "npix": params.patches.npix,
                  "n_train": len(run.sets["train"]), "n_val": len(run.sets["val"]),
                  "n_params": sum(p.numel() for p in run.model.parameters())}
    t0, seconds0 = time.perf_counter(), state.seconds
    with _cores_for_workers(device, cfg.workers), tracking.run(
            experiment, run_name, params=run_params, tags=tracking.pipeline_tags(params_file),
            run_id=state.run_id, root=root) as active:
        state.run_id = active.info.run_id
        while state.epoch < cfg.max_epochs and state.bad_epochs < cfg.patience:
            epoch = state.epoch + 1
            metrics = _train_epoch(run, params, epoch)
            _record_epoch(state, run, epoch, metrics, seconds0 + time.perf_counter() - t0)
            _save_checkpoint(checkpoint, state, run)
            if should_stop is not None and should_stop(epoch, metrics):
                state.stopped_by_callback = True
                break
        config = _finish(out_dir, state, run, params, data_dir)
    checkpoint.unlink(missing_ok=True)
    return config
