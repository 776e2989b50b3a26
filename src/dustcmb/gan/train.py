"""Training of the dust GAN (docs/science.md#gan-architecture), top to bottom.

1. Read the patch set (MJy/sr) and map it to the unit domain with the set's ``log_min``/``log_max``.
2. Adam (lr 2e-4, β = (0.5, 0.999)) for the generator and both discriminators; BCE losses. Each
   step the two discriminators see a batch of randomly rotated/flipped real maps, then a batch of
   generated ones (two updates each, so BatchNorm never mixes real and fake), with 1 % of labels
   swapped; the generator's loss is the sum of both discriminators' losses on its maps.
3. Every ``eval_every`` steps, generate as many maps as the real set (fixed latent vectors), map
   them back to MJy/sr and compute the Fréchet distance d_F between real and generated log10 power
   spectra; keep the best state. After ``steps`` steps restart from the best state and refine for
   ``refine_steps`` more, computing d_F every ``refine_eval_every`` steps.
4. Write the best generator (state dict + config JSON + history) atomically to the output folder and
   log everything to MLflow.

Checkpoints (every ``eval_every`` steps) go to a folder outside the DVC output, because DVC deletes
a stage's outputs before it runs it: ``--resume`` then continues a killed run from its last checkpoint
with the same optimiser and RNG state, step counter and MLflow run. Same params -> same maps on CPU.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import torch
from tqdm import tqdm

from dustcmb import checkpoint as checkpoint_io
from dustcmb import tracking
from dustcmb.config import GanConfig, Params
from dustcmb.errors import ConfigError, InputError
from dustcmb.gan.condition import slab_log_column
from dustcmb.gan.models import log_anisotropy, pixel_quantiles
from dustcmb.gan.sample import generate_unit
from dustcmb.gan.selection import (
    FRAME_DETECTED,
    FRAME_SELECTIONS,
    GRAIN_DETECTED,
    frame_distance,
    frame_moments,
    grain_ratio,
    log10_spectra_distance,
    minkowski_distance,
    minkowski_moments,
)
from dustcmb.gan.step import GanNets, build, train_step
from dustcmb.gan.symmetry import random_symmetry
from dustcmb.patches import split
from dustcmb.patches.normalise import to_unit
from dustcmb.patches.store import load_patches
from dustcmb.seeding import Stream, numpy_rng, seed_everything, torch_rng
from dustcmb.stats.borders import border_contrast
from dustcmb.stats.power import beyond_band_power, power_spectrum
from dustcmb.storage import atomic_dir, write_json

EXPERIMENT = "gan"
CHECKPOINT_NAME = "checkpoint.pt"


@dataclasses.dataclass
class RealSet:
    """What training compares against: the real maps and the fixed evaluation latents."""

    meta: dict  # meta.json of the patch set (npix, size_deg, log_min, log_max, ...)
    unit: torch.Tensor  # [n, 1, N, N] real maps in the unit domain
    cl: np.ndarray  # [n, n_bins] C_ℓ of the real maps in MJy/sr, for d_F
    mean_unit_cl: torch.Tensor  # [n_bins] mean C_ℓ of the unit-domain maps, the power discriminator's C̄_ℓ
    mean_log_anisotropy: torch.Tensor  # [n_bins] mean log_anisotropy of the unit-domain maps (directional disc)
    border_moments: torch.Tensor  # [2, n_strips] mean and std over maps of ln(border gradient ratio) (border features)
    level_moments: torch.Tensor  # [2, n_levels] mean and std over maps of their pixel quantiles (level features)
    eval_z: torch.Tensor  # [n, latent] latents of every d_F evaluation
    minkowski: np.ndarray | None = None  # [2, 3, T] mean and std over maps of V0, V1, V2 (morphology selection)
    frame: np.ndarray | None = None  # [2, 2, n_strips] mean, std over maps of border statistics (frame selection)
    grain: np.ndarray | None = None  # [2] mean over maps of beyond_band_power (grain selection)
    condition: torch.Tensor | None = None  # [n] ln csc|b| of each real map's centre (gan.condition_latitude)
    grid_condition: np.ndarray | None = None  # [n_grid] ln csc|b| of every centre of the patch grid (for sampling)


@dataclasses.dataclass
class GanState:
    """Everything a checkpoint must restore besides the weights; plain values only."""

    fingerprint: dict
    step: int = 0
    refining: bool = False
    history: list[dict] = dataclasses.field(default_factory=list)  # {"step", "d_F"} per evaluation
    losses: list[dict] = dataclasses.field(default_factory=list)  # {"step", loss...} every log_every
    best: dict | None = None  # GanNets.state() snapshot with the lowest d_F
    best_d_F: float = math.inf  # d_F of the selected step
    best_score: float = math.inf  # the selection score of that step (d_F, + Minkowski distance)
    best_step: int = -1
    best_clean: bool = False  # whether that step passes the selection's artefact constraints (always, without any)
    run_id: str | None = None
    seconds: float = 0.0


def _fingerprint(params: Params, meta: dict, n_real: int) -> dict:
    """What a checkpoint must share with the current run to be resumed."""
    return {"gan": dataclasses.asdict(params.gan), "seed": params.seed, "n_real": n_real,
            **{k: meta[k] for k in ("npix", "size_deg", "log_min", "log_max")}}


def grid_figure(real_unit: np.ndarray, fake_unit: np.ndarray, n: int = 6):
    """Figure of ``n`` real (top) and ``n`` generated (bottom) unit-domain maps, north up."""
    fig, axes = plt.subplots(2, n, figsize=(2 * n, 4.4), squeeze=False)
    for row, (label, maps) in enumerate((("real", real_unit), ("generated", fake_unit))):
        for col in range(n):
            ax = axes[row, col]
            ax.imshow(maps[col % len(maps)], vmin=-1, vmax=1, cmap="inferno", origin="upper")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row, 0].set_ylabel(label)
    fig.suptitle("353 GHz dust, unit domain (scaled ln I)")
    fig.tight_layout()
    return fig


def _is_eval(step: int, cfg: GanConfig) -> bool:
    if step <= cfg.steps:
        return step % cfg.eval_every == 0 or step == cfg.steps
    return (step - cfg.steps) % cfg.refine_eval_every == 0 or step == cfg.steps + cfg.refine_steps


def _is_checkpoint(step: int, cfg: GanConfig) -> bool:
    return step % cfg.eval_every == 0 or step == cfg.steps


def _save_checkpoint(path: Path, state: GanState, nets: GanNets, rng: torch.Generator) -> None:
    """The resumable state plus every network's and optimiser's state dict, the data RNG and torch's
    global RNGs (the generator's noise injection draws from them)."""
    global_rngs = {"global_rng": torch.get_rng_state()}
    if torch.cuda.is_available():
        global_rngs["cuda_rng"] = torch.cuda.get_rng_state_all()
    checkpoint_io.save(path, {**vars(state), **nets.state(), "rng": rng.get_state(), **global_rngs})


def _batch_indices(step: int, n_real: int, batch: int, seed: int) -> np.ndarray:
    """Real-map indices of ``step``: a fresh permutation each epoch, a pure function of the step."""
    epoch, position = divmod(step, n_real // batch)
    order = numpy_rng(seed, Stream.GAN_BATCHES, epoch).permutation(n_real)
    return order[position * batch:(position + 1) * batch]


def _evaluate(state: GanState, nets: GanNets, real: RealSet, cfg: GanConfig) -> None:
    """Score the current step, log it, and keep a snapshot if it is the best so far.

    The score is d_F, or with ``selection: d_F+minkowski`` d_F plus :func:`minkowski_distance` of the
    same generated maps against the training patches (both dimensionless, both 0 for a perfect
    generator): d_F sees only the spectra, the Minkowski term the morphology and the tails. With
    ``d_F+minkowski+borders`` a step whose :func:`frame_distance` exceeds :data:`FRAME_DETECTED` (a
    frame d_F's window hides) is kept only while no step without a detected frame has been seen;
    ``d_F+minkowski+artefacts`` also counts a :func:`grain_ratio` above :data:`GRAIN_DETECTED` as detected.
    """
    fake = generate_unit(nets.sampler, real.eval_z, cfg.sample_batch, condition=real.condition)
    d_f = log10_spectra_distance(fake, real.cl, real.meta)
    record = {"step": state.step, "d_F": d_f}
    if real.minkowski is not None:
        record["minkowski"] = minkowski_distance(real.minkowski, fake)
    if real.frame is not None:
        record["frame"] = frame_distance(real.frame, len(real.unit), fake)
    if real.grain is not None:
        record["grain"] = grain_ratio(real.grain, fake, real.meta["size_deg"])
    record["score"] = d_f + record.get("minkowski", 0.0)
    state.history.append(record)
    mlflow.log_metrics({k: v for k, v in record.items() if k != "step"}, step=state.step)
    clean = record.get("frame", 0.0) <= FRAME_DETECTED and record.get("grain", 0.0) <= GRAIN_DETECTED
    if state.best is None or (not clean, record["score"]) < (not state.best_clean, state.best_score):
        state.best_score, state.best_d_F, state.best_step = record["score"], d_f, state.step
        state.best_clean, state.best = clean, copy.deepcopy(nets.state())


def real_set(params: Params, patches_dir: Path) -> RealSet:
    """Real maps (unit domain), their MJy/sr spectra for d_F, and the fixed evaluation latents."""
    cfg = params.gan
    patches_mjysr, meta = load_patches(patches_dir)
    train_rows = split.indices(meta, split.TRAIN)
    patches_mjysr = patches_mjysr[train_rows]  # the GAN never sees held-out sky
    if meta["npix"] % 16:
        raise InputError(f"patch npix={meta['npix']} must be a multiple of 16 for the GAN "
                         "(4 upsamplings from npix/16)")
    if len(patches_mjysr) < cfg.batch_size:
        raise ConfigError(f"{len(patches_mjysr)} patches is fewer than gan.batch_size={cfg.batch_size}")
    real_unit = torch.from_numpy(to_unit(patches_mjysr, meta["log_min"], meta["log_max"]))[:, None]
    _, real_cl = power_spectrum(patches_mjysr, meta["size_deg"])
    _, unit_cl = power_spectrum(real_unit[:, 0].double(), meta["size_deg"])
    anisotropy = log_anisotropy(real_unit[:, 0].double(), meta["size_deg"])
    border_ratios = torch.log(border_contrast(real_unit[:, 0].double())[:, 0])
    levels = pixel_quantiles(real_unit[:, 0].double())
    eval_z = torch.randn(len(real_unit), cfg.latent_dim, generator=torch_rng(params.seed, Stream.GAN_EVAL_LATENTS))
    moments = minkowski_moments(real_unit[:, 0].numpy()) if cfg.selection != "d_F" else None
    frame = frame_moments(real_unit[:, 0].numpy()) if cfg.selection in FRAME_SELECTIONS else None
    grain = beyond_band_power(real_unit[:, 0].numpy(), meta["size_deg"]).mean(axis=0) \
        if cfg.selection == "d_F+minkowski+artefacts" else None
    condition = grid = None
    if cfg.condition_latitude:
        grid = slab_log_column(meta["lat_deg"])
        condition = torch.from_numpy(grid[train_rows])
    return RealSet(meta=meta, unit=real_unit, cl=real_cl, mean_unit_cl=unit_cl.mean(0).float(),
                   mean_log_anisotropy=anisotropy.mean(0).float(), eval_z=eval_z,
                   minkowski=moments, frame=frame, grain=grain, condition=condition, grid_condition=grid,
                   border_moments=torch.stack([border_ratios.mean(0), border_ratios.std(0)]).float(),
                   level_moments=torch.stack([levels.mean(0), levels.std(0)]).float())


def _start(params: Params, patches_dir: Path, checkpoint: Path, device: str,
           resume: bool) -> tuple[RealSet, GanNets, torch.Generator, GanState]:
    """Data, networks, training RNG and state: fresh, or restored from ``checkpoint`` on resume."""
    seed_everything(params.seed)
    real = real_set(params, patches_dir)
    nets = build(params.gan, int(real.meta["npix"]), float(real.meta["size_deg"]), real.mean_unit_cl, device,
                 real.mean_log_anisotropy, real.border_moments, real.level_moments)
    rng = torch_rng(params.seed, Stream.GAN_BATCHES)
    state = GanState(fingerprint=_fingerprint(params, real.meta, len(real.unit)))
    if resume:
        saved = checkpoint_io.load(checkpoint, state.fingerprint, "gan parameters or another patch set")
        nets.restore(saved)
        rng.set_state(saved["rng"])
        if "global_rng" in saved:  # absent from checkpoints of runs before noise injection, which never drew on it
            torch.set_rng_state(saved["global_rng"])
        if "cuda_rng" in saved:
            torch.cuda.set_rng_state_all(saved["cuda_rng"])
        # fields added since a checkpoint was written take their defaults
        state = GanState(**{f.name: saved[f.name] for f in dataclasses.fields(GanState) if f.name in saved})
    return real, nets, rng, state


def _advance(state: GanState, nets: GanNets, real: RealSet, rng: torch.Generator, params: Params,
             device: str) -> dict[str, float]:
    """One training step (restarting from the best state when refinement begins); returns its losses."""
    cfg = params.gan
    if state.step == cfg.steps and not state.refining:
        nets.restore(state.best)
        state.refining = True
    idx = _batch_indices(state.step, len(real.unit), cfg.batch_size, params.seed)
    batch = random_symmetry(real.unit[idx].to(device), rng)
    z = torch.randn(cfg.batch_size, cfg.latent_dim, generator=rng).to(device)
    condition = None if real.condition is None else real.condition[idx].to(device)
    losses = train_step(nets, batch, z, rng, cfg, condition)
    state.step += 1
    if state.step % cfg.log_every == 0:
        mlflow.log_metrics(losses, step=state.step)
        state.losses.append({"step": state.step, **losses})
    return losses


def _write_outputs(out_dir: Path, state: GanState, real: RealSet, params: Params) -> dict:
    """Best generator state dict, its config (with the normalisation) and the history, atomically."""
    cfg, meta = params.gan, real.meta
    config = {"npix": int(meta["npix"]), "size_deg": float(meta["size_deg"]),
              "log_min": float(meta["log_min"]), "log_max": float(meta["log_max"]),
              "latent_dim": cfg.latent_dim, "gen_channels": cfg.gen_channels, "gen_padding": cfg.gen_padding,
              "gen_noise": cfg.gen_noise, "gen_fullres": cfg.gen_fullres, "gen_noise_fullres": cfg.gen_noise_fullres,
              "gen_bandlimit": cfg.gen_bandlimit, "gen_crop_px": cfg.gen_crop_px,
              "gen_crop_random": cfg.gen_crop_random, "gen_level_spread": cfg.gen_level_spread,
              "condition_latitude": cfg.condition_latitude,
              "condition_values": None if real.grid_condition is None else real.grid_condition.tolist(),
              "seed": params.seed, "best_d_F": state.best_d_F, "best_score": state.best_score,
              "selection": cfg.selection, "best_step": state.best_step, "best_clean": state.best_clean,
              "initial_d_F": state.history[0]["d_F"], "steps": cfg.steps + cfg.refine_steps,
              "n_real": len(real.unit), "train_seconds": state.seconds, "mlflow_run_id": state.run_id}
    best = state.best["nets"]["generator"] if state.best["ema"] is None else state.best["ema"]
    generator = {k: v.cpu() for k, v in best.items()}
    with atomic_dir(out_dir) as tmp:
        torch.save(generator, tmp / "generator.pt")
        write_json(tmp / "config.json", config)
        write_json(tmp / "history.json", {"d_F": state.history, "losses": state.losses})
    return config


def _finish(out_dir: Path, state: GanState, nets: GanNets, real: RealSet, params: Params) -> dict:
    """Write the outputs, then log the summary metrics, the outputs and a real-vs-generated grid."""
    config = _write_outputs(out_dir, state, real, params)
    mlflow.log_metrics({"best_d_F": config["best_d_F"], "initial_d_F": config["initial_d_F"],
                        "best_step": config["best_step"], "train_seconds": config["train_seconds"]})
    mlflow.log_artifacts(str(out_dir), artifact_path="generator")
    nets.restore(state.best)
    condition = None if real.condition is None else real.condition[:6]
    fake = generate_unit(nets.sampler, real.eval_z[:6], params.gan.sample_batch, condition=condition)
    fig = grid_figure(real.unit[:6, 0].numpy(), fake)
    mlflow.log_figure(fig, "real_vs_generated.png")
    plt.close(fig)
    return config


def train(params: Params, patches_dir: Path, out_dir: Path, checkpoint_dir: Path, device: str = "cpu",
          resume: bool = False, params_file: Path | None = None, root: Path | None = None) -> dict:
    """Train the dust GAN and write the best generator to ``out_dir``.

    Parameters
    ----------
    params : Params
        Uses ``params.gan`` and ``params.seed``.
    patches_dir : Path
        Folder with ``patches.npy`` (float32 [n, N, N], MJy/sr) and ``meta.json``.
    out_dir : Path
        Replaced atomically by ``generator.pt``, ``config.json`` and ``history.json``.
    checkpoint_dir : Path
        Where ``checkpoint.pt`` is kept while training (removed on success); keep it outside DVC outs.
    device : str
        ``cpu`` or ``cuda`` (already resolved).
    resume : bool
        Continue from the checkpoint in ``checkpoint_dir`` (same MLflow run).
    params_file, root : Path, optional
        For MLflow tags and the tracking root (see :mod:`dustcmb.tracking`).

    Returns
    -------
    dict
        The written ``config.json``: ``best_d_F``, ``initial_d_F``, ``best_step``, ``train_seconds``, ...
    """
    cfg = params.gan
    checkpoint = checkpoint_dir / CHECKPOINT_NAME
    real, nets, rng, state = _start(params, patches_dir, checkpoint, device, resume)
    total = cfg.steps + cfg.refine_steps
    t0, seconds0 = time.perf_counter(), state.seconds
    run_params = {"gan": dataclasses.asdict(cfg), "seed": params.seed, "device": device, "n_real": len(real.unit),
                  "data": {k: real.meta[k] for k in ("npix", "size_deg", "log_min", "log_max")}}
    with tracking.run(EXPERIMENT, "gan-train", params=run_params, tags=tracking.pipeline_tags(params_file),
                      run_id=state.run_id, root=root) as active:
        state.run_id = active.info.run_id
        if state.step == 0 and not state.history:
            _evaluate(state, nets, real, cfg)
            _save_checkpoint(checkpoint, state, nets, rng)
        bar = tqdm(total=total, initial=state.step, desc="gan train", unit="step")
        while state.step < total:
            losses = _advance(state, nets, real, rng, params, device)
            bar.update()
            if state.step % cfg.log_every == 0:
                bar.set_postfix({k.removeprefix("loss_"): f"{v:.3f}" for k, v in losses.items()}
                                | {"d_F": f"{state.history[-1]['d_F']:.3g}"})
            if _is_eval(state.step, cfg):
                _evaluate(state, nets, real, cfg)
            state.seconds = seconds0 + time.perf_counter() - t0
            if _is_checkpoint(state.step, cfg) and state.step < total:
                _save_checkpoint(checkpoint, state, nets, rng)
        bar.close()
        config = _finish(out_dir, state, nets, real, params)
    checkpoint.unlink(missing_ok=True)
    return config
