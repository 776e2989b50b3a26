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
import random
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from tqdm import tqdm  # noqa: E402

from dustcmb import checkpoint as checkpoint_io  # noqa: E402
from dustcmb import tracking  # noqa: E402
from dustcmb.config import GanConfig, Params  # noqa: E402
from dustcmb.errors import ConfigError, InputError  # noqa: E402
from dustcmb.gan.models import Generator, MapDiscriminator, PowerDiscriminator  # noqa: E402
from dustcmb.patches.normalise import from_unit, to_unit  # noqa: E402
from dustcmb.patches.store import load_patches  # noqa: E402
from dustcmb.stats.frechet import spectra_frechet_distance  # noqa: E402
from dustcmb.stats.power import power_spectrum  # noqa: E402
from dustcmb.storage import atomic_dir, write_json  # noqa: E402

EXPERIMENT = "gan"
CHECKPOINT_NAME = "checkpoint.pt"
NETS = ("generator", "map_disc", "power_disc")
DISC_LOSS = {"map_disc": "loss_d_map", "power_disc": "loss_d_power"}
TRAIN_STREAM, EVAL_STREAM = 0, 1


def derived_seed(seed: int, stream: int) -> int:
    """An independent 63-bit seed for random stream ``stream`` of master seed ``seed``."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch's global generators (explicit generators are used where it matters)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build(cfg: GanConfig, npix: int, size_deg: float, mean_cl: torch.Tensor, device: str):
    """The three networks and their Adam optimisers, on ``device``."""
    nets = {"generator": Generator(npix, cfg.latent_dim, cfg.gen_channels, cfg.gen_padding),
            "map_disc": MapDiscriminator(npix, cfg.disc_width),
            "power_disc": PowerDiscriminator(npix, size_deg, cfg.power_width, mean_cl)}
    nets = {name: net.to(device) for name, net in nets.items()}
    opts = {name: torch.optim.Adam(net.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
            for name, net in nets.items()}
    return nets, opts


def augment(maps: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Random k·90° rotation and mirror flip of each map (the 8 symmetries of the square)."""
    quarter = torch.randint(0, 4, (len(maps),), generator=rng).to(maps.device)
    flip = (torch.rand(len(maps), generator=rng) < 0.5).to(maps.device)
    out = torch.empty_like(maps)
    for k in range(4):
        out[quarter == k] = torch.rot90(maps[quarter == k], k, dims=(-2, -1))
    return torch.where(flip[:, None, None, None], out.flip(-1), out)


def _labels(n: int, target: float, swap: float, rng: torch.Generator, device) -> torch.Tensor:
    """Target labels with a fraction ``swap`` flipped (noisy labels keep the discriminators honest)."""
    flipped = torch.rand(n, generator=rng) < swap
    return torch.where(flipped, 1.0 - target, target).to(device)


def train_step(nets: dict, opts: dict, real: torch.Tensor, z: torch.Tensor, rng: torch.Generator,
               label_swap: float) -> dict[str, float]:
    """One GAN step: each discriminator on real then fake maps, then the generator on both.

    Parameters
    ----------
    real : torch.Tensor [B, 1, N, N]
        Augmented real maps in the unit domain.
    z : torch.Tensor [B, latent_dim]
        Latent vectors for this step.

    Returns
    -------
    dict
        BCE losses: ``loss_d_map``, ``loss_d_power`` (mean of the real and fake updates), ``loss_g``.
    """
    fake = nets["generator"](z)
    losses = {}
    for name in DISC_LOSS:
        total = 0.0
        for maps, target in ((real, 1.0), (fake.detach(), 0.0)):
            labels = _labels(len(maps), target, label_swap, rng, maps.device)
            loss = F.binary_cross_entropy_with_logits(nets[name](maps), labels)
            opts[name].zero_grad(set_to_none=True)
            loss.backward()
            opts[name].step()
            total += loss.item() / 2
        losses[DISC_LOSS[name]] = total
    ones = torch.ones(len(z), device=z.device)
    loss_g = sum(F.binary_cross_entropy_with_logits(nets[name](fake), ones) for name in DISC_LOSS)
    opts["generator"].zero_grad(set_to_none=True)
    loss_g.backward()
    opts["generator"].step()
    losses["loss_g"] = loss_g.item()
    return losses


@torch.no_grad()
def generate_unit(generator: Generator, z: torch.Tensor, batch: int) -> np.ndarray:
    """Unit-domain maps [n, N, N] (float32) for latent vectors ``z`` [n, latent], BatchNorm in eval mode."""
    was_training = generator.training
    generator.eval()
    device = next(generator.parameters()).device
    out = [generator(z[i:i + batch].to(device))[:, 0].cpu().numpy() for i in range(0, len(z), batch)]
    generator.train(was_training)
    return np.concatenate(out)


def log10_spectra_distance(generator: Generator, eval_z: torch.Tensor, real_cl: np.ndarray, meta: dict,
                           batch: int) -> tuple[float, np.ndarray]:
    """d_F between real and generated log10 C_ℓ of MJy/sr maps, and the generated unit maps.

    A generator whose maps have no power in some bin (saturated, constant maps) scores ``inf``.
    """
    unit = generate_unit(generator, eval_z, batch)
    _, fake_cl = power_spectrum(from_unit(unit, meta["log_min"], meta["log_max"]), meta["size_deg"])
    if not np.all(fake_cl > 0):
        return float("inf"), unit
    return spectra_frechet_distance(real_cl, fake_cl), unit


def _snapshot(nets: dict, opts: dict) -> dict:
    return copy.deepcopy({"nets": {k: v.state_dict() for k, v in nets.items()},
                          "opts": {k: v.state_dict() for k, v in opts.items()}})


def _restore(nets: dict, opts: dict, snapshot: dict) -> None:
    for name in NETS:
        nets[name].load_state_dict(snapshot["nets"][name])
        opts[name].load_state_dict(snapshot["opts"][name])


def _fingerprint(params: Params, meta: dict, n_real: int) -> dict:
    """What a checkpoint must share with the current run to be resumed."""
    return {"gan": dataclasses.asdict(params.gan), "seed": params.seed, "n_real": n_real,
            **{k: meta[k] for k in ("npix", "size_deg", "log_min", "log_max")}}


def _grid_figure(real_unit: np.ndarray, fake_unit: np.ndarray, n: int = 6):
    """PNG-ready figure: ``n`` real (top) and ``n`` generated (bottom) maps in the unit domain."""
    fig, axes = plt.subplots(2, n, figsize=(2 * n, 4.4), squeeze=False)
    for row, (label, maps) in enumerate((("real", real_unit), ("generated", fake_unit))):
        for col in range(n):
            ax = axes[row, col]
            ax.imshow(maps[col % len(maps)], vmin=-1, vmax=1, cmap="inferno", origin="lower")
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


def _with_weights(state: dict, nets: dict, opts: dict, rng: torch.Generator) -> dict:
    """The resumable state plus every network's and optimiser's state dict and the data RNG."""
    return {**state, "nets": {k: v.state_dict() for k, v in nets.items()},
            "opts": {k: v.state_dict() for k, v in opts.items()}, "rng": rng.get_state()}


def _batch_indices(step: int, n_real: int, batch: int, seed: int) -> np.ndarray:
    """Real-map indices of ``step``: a fresh permutation each epoch, a pure function of the step."""
    per_epoch = n_real // batch
    epoch, position = divmod(step, per_epoch)
    order = np.random.default_rng([seed, TRAIN_STREAM, epoch]).permutation(n_real)
    return order[position * batch:(position + 1) * batch]


def _record_eval(step: int, state: dict, nets: dict, opts: dict, data: dict, cfg: GanConfig) -> None:
    """Compute d_F at ``step``, log it, and keep a snapshot if it is the best so far."""
    d_f, _ = log10_spectra_distance(nets["generator"], data["eval_z"], data["real_cl"], data["meta"],
                                    cfg.sample_batch)
    state["history"].append({"step": step, "d_F": d_f})
    mlflow.log_metric("d_F", d_f, step=step)
    if state["best"] is None or d_f < state["best_d_F"]:
        state.update(best_d_F=d_f, best_step=step, best=_snapshot(nets, opts))


def _prepare(params: Params, patches_dir: Path) -> dict:
    """Real maps (unit domain), their MJy/sr spectra for d_F, and the fixed evaluation latents."""
    cfg = params.gan
    patches_mjysr, meta = load_patches(patches_dir)
    if meta["npix"] % 16:
        raise InputError(f"patch npix={meta['npix']} must be a multiple of 16 for the GAN "
                         "(4 upsamplings from npix/16)")
    if len(patches_mjysr) < cfg.batch_size:
        raise ConfigError(f"{len(patches_mjysr)} patches is fewer than gan.batch_size={cfg.batch_size}")
    real_unit = torch.from_numpy(to_unit(patches_mjysr, meta["log_min"], meta["log_max"]))[:, None]
    _, real_cl = power_spectrum(patches_mjysr, meta["size_deg"])
    _, unit_cl = power_spectrum(real_unit[:, 0].double(), meta["size_deg"])
    eval_rng = torch.Generator().manual_seed(derived_seed(params.seed, EVAL_STREAM))
    return {"meta": meta, "real_unit": real_unit, "real_cl": real_cl, "mean_unit_cl": unit_cl.mean(0).float(),
            "eval_z": torch.randn(len(real_unit), cfg.latent_dim, generator=eval_rng)}


def _write_outputs(out_dir: Path, state: dict, data: dict, params: Params) -> dict:
    """Best generator state dict, its config (with the normalisation) and the history, atomically."""
    cfg, meta = params.gan, data["meta"]
    config = {"npix": int(meta["npix"]), "size_deg": float(meta["size_deg"]),
              "log_min": float(meta["log_min"]), "log_max": float(meta["log_max"]),
              "latent_dim": cfg.latent_dim, "gen_channels": cfg.gen_channels, "gen_padding": cfg.gen_padding,
              "seed": params.seed, "best_d_F": state["best_d_F"], "best_step": state["best_step"],
              "initial_d_F": state["history"][0]["d_F"], "steps": cfg.steps + cfg.refine_steps,
              "n_real": len(data["real_unit"]), "train_seconds": state["seconds"],
              "mlflow_run_id": state["run_id"]}
    generator = {k: v.cpu() for k, v in state["best"]["nets"]["generator"].items()}
    with atomic_dir(out_dir) as tmp:
        torch.save(generator, tmp / "generator.pt")
        write_json(tmp / "config.json", config)
        write_json(tmp / "history.json", {"d_F": state["history"], "losses": state["losses"]})
    return config


def _finish(out_dir: Path, state: dict, generator: Generator, data: dict, params: Params) -> dict:
    """Write the outputs, then log the summary metrics, the outputs and a real-vs-generated grid."""
    config = _write_outputs(out_dir, state, data, params)
    mlflow.log_metrics({"best_d_F": config["best_d_F"], "initial_d_F": config["initial_d_F"],
                        "best_step": config["best_step"], "train_seconds": config["train_seconds"]})
    mlflow.log_artifacts(str(out_dir), artifact_path="generator")
    generator.load_state_dict(state["best"]["nets"]["generator"])
    fake = generate_unit(generator, data["eval_z"][:6], params.gan.sample_batch)
    fig = _grid_figure(data["real_unit"][:6, 0].numpy(), fake)
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
    seed_everything(params.seed)
    data = _prepare(params, patches_dir)
    meta, real_unit = data["meta"], data["real_unit"]
    nets, opts = build(cfg, int(meta["npix"]), float(meta["size_deg"]), data["mean_unit_cl"], device)
    rng = torch.Generator().manual_seed(derived_seed(params.seed, TRAIN_STREAM))
    checkpoint = checkpoint_dir / CHECKPOINT_NAME
    state = {"fingerprint": _fingerprint(params, meta, len(real_unit)), "step": 0, "refining": False,
             "history": [], "losses": [], "best": None, "best_d_F": float("inf"), "best_step": -1,
             "run_id": None, "seconds": 0.0}
    if resume:
        saved = checkpoint_io.load(checkpoint, state["fingerprint"], "gan parameters or another patch set")
        _restore(nets, opts, saved)
        rng.set_state(saved["rng"])
        state = {k: saved[k] for k in state}
    total = cfg.steps + cfg.refine_steps
    t0, seconds0 = time.perf_counter(), state["seconds"]
    run_params = {"gan": dataclasses.asdict(cfg), "seed": params.seed, "device": device, "n_real": len(real_unit),
                  "data": {k: meta[k] for k in ("npix", "size_deg", "log_min", "log_max")}}
    with tracking.run(EXPERIMENT, "gan-train", params=run_params, tags=tracking.pipeline_tags(params_file),
                      run_id=state["run_id"], root=root) as active:
        state["run_id"] = active.info.run_id
        if state["step"] == 0 and not state["history"]:
            _record_eval(0, state, nets, opts, data, cfg)
            checkpoint_io.save(checkpoint, _with_weights(state, nets, opts, rng))
        bar = tqdm(total=total, initial=state["step"], desc="gan train", unit="step")
        while state["step"] < total:
            if state["step"] == cfg.steps and not state["refining"]:
                _restore(nets, opts, state["best"])
                state["refining"] = True
            idx = _batch_indices(state["step"], len(real_unit), cfg.batch_size, params.seed)
            real = augment(real_unit[idx].to(device), rng)
            z = torch.randn(cfg.batch_size, cfg.latent_dim, generator=rng).to(device)
            losses = train_step(nets, opts, real, z, rng, cfg.label_swap)
            state["step"] += 1
            step = state["step"]
            bar.update()
            if step % cfg.log_every == 0:
                mlflow.log_metrics(losses, step=step)
                state["losses"].append({"step": step, **losses})
                bar.set_postfix({k.removeprefix("loss_"): f"{v:.3f}" for k, v in losses.items()}
                                | {"d_F": f"{state['history'][-1]['d_F']:.3g}"})
            if _is_eval(step, cfg):
                _record_eval(step, state, nets, opts, data, cfg)
            state["seconds"] = seconds0 + time.perf_counter() - t0
            if _is_checkpoint(step, cfg) and step < total:
                checkpoint_io.save(checkpoint, _with_weights(state, nets, opts, rng))
        bar.close()
        config = _finish(out_dir, state, nets["generator"], data, params)
    checkpoint.unlink(missing_ok=True)
    return config
