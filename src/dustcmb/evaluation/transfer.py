"""The transfer test: how good the GAN is as a training set for the cleaner (the paper's own test).

The same ResUNet, on the same schedule (``params.separation``, same seed), is trained twice:

- on GAN dust: the pipeline's ``models/separation``, trained on ``data/separation``;
- on real dust of the ``train`` region, the oracle: the training patches under the 8 rotations and
  flips of the square (the symmetries the GAN is trained with), shuffled and cycled to the GAN
  training set's size, so both runs see as many distinct (dust, CMB, noise) items.

Both are scored by the pipeline's own evaluation (:func:`dustcmb.evaluation.separation.collect`) on
the same held-out test items: the real ``test``-region dust with identical CMB and noise draws. The
figures of merit are ratios, GAN-trained over oracle-trained (1 = the GAN is as good as real dust;
the issue's target is ≤ 1.5):

- ``transfer_rmse_ratio``: map RMSE [µK_CMB];
- ``transfer_rmse_nomono_ratio``: map RMSE after removing each residual's patch mean;
- ``transfer_residual_power_ratio``: residual over CMB power, mean over the bins above ℓ = 30;
- ``transfer_spectrum_error_ratio``: median ``|Ĉ_ℓ / C_ℓ − 1|``, mean over ℓ bins.

Layout of ``out_dir`` (every step is kept, so a killed run resumes where it stopped)::

    inputs.json       what the oracle was made from (:func:`oracle_inputs`); a resume with other
                      inputs fails instead of reusing a stale oracle
    oracle_dust.npy   real training-region dust, float32 [n_train, N, N] MJy/sr
    data/             its separation data (`dustcmb separation data`)
    model/            the oracle ResUNet (`dustcmb separation train`)
    transfer.json     both runs' scores and the ratios
    transfer.png      residual power and spectrum error per ℓ, both runs and the constrained ILC
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from dustcmb.config import Params
from dustcmb.errors import InputError
from dustcmb.evaluation.gan_scores import symmetries
from dustcmb.evaluation.separation import collect, load_checked, spectrum_scores
from dustcmb.patches import split
from dustcmb.seeding import Stream, numpy_rng
from dustcmb.separation.train import train
from dustcmb.simulation.store import build, open_datasets
from dustcmb.storage import atomic_dir, atomic_file, write_json

LOW_ELL = 30.0  # the residual-power ratio averages the bins above this ℓ (as README's separation table)
RUNS = {"gan": "trained on GAN dust", "oracle": "trained on real train-region dust (oracle)"}


def oracle_dust(patches_dir: Path, n_maps: int, seed: int) -> np.ndarray:
    """``n_maps`` real training-region maps [MJy/sr]: every patch in its 8 orientations, shuffled, cycled."""
    meta = json.loads((Path(patches_dir) / "meta.json").read_text())
    if not split.held_out(meta):
        raise InputError(f"{patches_dir} uses the '{meta.get('split_scheme')}' split, whose test sky overlaps "
                         "the training sky; the transfer test needs patches.split.scheme: regions")
    index = split.indices(meta, split.TRAIN)
    if index.size == 0:
        raise InputError(f"{patches_dir} has no train-region patch")
    patches = np.load(Path(patches_dir) / "patches.npy", mmap_mode="r")
    choice = np.resize(numpy_rng(seed, Stream.TRANSFER_ORACLE).permutation(8 * index.size), n_maps)
    out = np.empty((n_maps, *patches.shape[1:]), np.float32)
    for k, pick in enumerate(choice):
        patch, orientation = divmod(int(pick), 8)
        out[k] = symmetries(np.asarray(patches[index[patch]]))[orientation]
    return out


def _scores(params: Params, data_dir: Path, model_dir: Path, device: str) -> dict:
    """The ResUNet's and the constrained ILC's test-region scores (:func:`spectrum_scores`)."""
    test = open_datasets(data_dir, params)["test"]
    model, config = load_checked(model_dir, data_dir, test, params, device)
    torch.manual_seed(params.seed)  # the same dropout masks as `dustcmb separation evaluate`
    data = collect(model, test, params)
    n_pixels = len(test) * params.patches.npix**2
    scores = {e: spectrum_scores(data["ell"], data[f"cl_{e}"], data["cl_true"], data[f"clres_{e}"],
                                 data[f"sq_{e}"], n_pixels) for e in ("est", "cilc")}
    return {"ell": data["ell"].tolist(), "n_test": len(test), "architecture": config["architecture"],
            "seed": config["seed"], "best_epoch": config["best_epoch"], "resunet": scores["est"],
            "cilc": scores["cilc"]}


def _summary(ell, s: dict) -> dict:
    """The four figures of merit (module docstring) of one estimator's :func:`spectrum_scores` ``s``."""
    return {"rmse": s["map_rmse_uK"], "rmse_nomono": s["map_rmse_nomono_uK"],
            "residual_power": float(np.mean(np.asarray(s["residual_power_ratio_per_ell"])[np.asarray(ell) > LOW_ELL])),
            "spectrum_error": float(np.mean(s["spectrum_abs_error_median_per_ell"]))}


def transfer_ratios(gan: dict, oracle: dict) -> dict:
    """``transfer_<figure>_ratio``: GAN-trained over oracle-trained, for each figure of :func:`_summary`."""
    a, b = (_summary(run["ell"], run["resunet"]) for run in (gan, oracle))
    return {f"transfer_{key}_ratio": a[key] / b[key] for key in a}


def oracle_inputs(params: Params, patches_dir: Path) -> dict:
    """What the oracle's dust, data and model depend on: the patch set's ``meta.json`` (grid and split,
    by SHA-256) and the ``seed``, ``simulation`` and ``separation`` parameters."""
    meta = hashlib.sha256((Path(patches_dir) / "meta.json").read_bytes()).hexdigest()
    settings = {"seed": params.seed, "simulation": dataclasses.asdict(params.simulation),
                "separation": dataclasses.asdict(params.separation)}
    return {"patches_meta_sha256": meta, **json.loads(json.dumps(settings))}


def _check_resumable(params: Params, patches_dir: Path, out_dir: Path) -> None:
    """Fail if ``out_dir`` holds an oracle made from other inputs than ``out_dir/inputs.json`` records.

    A resumed oracle must be the one these inputs would train: a changed split, say, moves its early
    stopping and its test items, and a silently reused model would make the ratios compare two skies.
    """
    record, current = out_dir / "inputs.json", oracle_inputs(params, patches_dir)
    if record.is_file():
        if json.loads(record.read_text()) != current:
            raise InputError(f"{out_dir} holds an oracle made from other patches or parameters; remove it "
                             "(or pass another --out) to train the oracle afresh")
        return
    if (out_dir / "data").exists() or (out_dir / "model").exists() or (out_dir / "checkpoint").exists():
        raise InputError(f"{out_dir} holds an oracle without a record of its inputs (made by an older "
                         "version); remove it (or pass another --out) to train the oracle afresh")


def _prepare_oracle(params: Params, patches_dir: Path, out_dir: Path, device: str, root: Path | None) -> None:
    """Write the oracle's dust, separation data and trained model under ``out_dir``, or resume them."""
    _check_resumable(params, patches_dir, out_dir)
    dust = out_dir / "oracle_dust.npy"
    if not dust.is_file():
        maps = oracle_dust(patches_dir, params.simulation.n_train, params.seed)  # checks the split first
        out_dir.mkdir(parents=True, exist_ok=True)
        with atomic_file(dust) as tmp:
            np.save(tmp, maps)
    if not (out_dir / "inputs.json").is_file():
        write_json(out_dir / "inputs.json", oracle_inputs(params, patches_dir))
    if not (out_dir / "data" / "manifest.json").is_file():
        build(params, dust, patches_dir, out_dir / "data")
    if not (out_dir / "model" / "config.json").is_file():
        checkpoints = out_dir / "checkpoint"
        train(params, out_dir / "data", out_dir / "model", checkpoints, device=device, root=root,
              resume=(checkpoints / "checkpoint.pt").is_file(), run_name="separation-train-oracle")


def run_transfer(params: Params, patches_dir: Path, gan_data: Path, gan_model: Path, out_dir: Path,
                 device: str = "cpu", root: Path | None = None) -> dict:
    """Train the oracle (unless done), score both ResUNets on the test region, write ``transfer.json``.

    Parameters
    ----------
    params : Params
        The parameters the pipeline's ResUNet was trained with (``separation``, ``simulation``, ``seed``).
    patches_dir : Path
        The patch set, region split; its ``train`` patches are the oracle's dust.
    gan_data, gan_model : Path
        The pipeline's separation data and its trained ResUNet (``data/separation``, ``models/separation``).
    out_dir : Path
        Folder of the oracle's files and the results (module docstring).
    device : str
        ``cpu`` or ``cuda``.
    root : Path, optional
        MLflow tracking root; the oracle's training is logged there.

    Returns
    -------
    dict
        The content of ``transfer.json``: ``gan`` and ``oracle`` scores and the ratios.
    """
    _prepare_oracle(params, patches_dir, out_dir, device, root)
    runs = {"gan": _scores(params, gan_data, gan_model, device),
            "oracle": _scores(params, out_dir / "data", out_dir / "model", device)}
    if runs["gan"]["architecture"] != runs["oracle"]["architecture"] or runs["gan"]["seed"] != params.seed:
        raise InputError(f"{gan_model} was trained with another architecture or seed than params give; "
                         "re-run `dvc repro train_resunet` with these params first")
    result = {**transfer_ratios(runs["gan"], runs["oracle"]), **runs}
    write_json(out_dir / "transfer.json", result)
    with atomic_dir(out_dir / "figures") as tmp:
        figure = transfer_figure(result)
        figure.savefig(tmp / "transfer.png", dpi=110)
        plt.close(figure)
    return result


def transfer_figure(result: dict) -> plt.Figure:
    """Residual power over CMB power and median spectrum error per ℓ: both ResUNets and the constrained ILC."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    ell = np.asarray(result["gan"]["ell"])
    curves = {RUNS["gan"]: result["gan"]["resunet"], RUNS["oracle"]: result["oracle"]["resunet"],
              "constrained ILC": result["gan"]["cilc"]}
    for (label, scores), style in zip(curves.items(), ("-o", "-s", "--")):
        axes[0].plot(ell, scores["residual_power_ratio_per_ell"], style, ms=3, label=label)
        axes[1].plot(ell, scores["spectrum_abs_error_median_per_ell"], style, ms=3, label=label)
    axes[0].set_ylabel("residual / CMB power")
    axes[1].set_ylabel("median |Ĉ_ℓ / C_ℓ − 1|")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("ℓ")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"transfer to the held-out real sky: map RMSE ratio GAN / oracle "
                 f"{result['transfer_rmse_ratio']:.2f}")
    fig.tight_layout()
    return fig


def transfer_markdown(result: dict) -> str:
    """README's transfer table: both ResUNets and the constrained ILC on the test region, and the ratios."""
    rows = {RUNS["gan"]: result["gan"]["resunet"], RUNS["oracle"]: result["oracle"]["resunet"],
            "constrained ILC (no training)": result["gan"]["cilc"]}
    lines = ["| ResUNet | map RMSE [µK] | without patch mean [µK] | residual/CMB power, mean ℓ > 30 "
             "| median spectrum error, mean over ℓ |", "|---|---|---|---|---|"]
    for label, scores in rows.items():
        f = _summary(result["gan"]["ell"], scores)
        lines.append(f"| {label} | {f['rmse']:.3g} | {f['rmse_nomono']:.3g} | {f['residual_power']:.3g} "
                     f"| {f['spectrum_error']:.3g} |")
    ratios = ", ".join(f"`{key}` {value:.2f}" for key, value in result.items() if key.startswith("transfer_"))
    lines += ["", f"GAN-trained over oracle-trained ({result['gan']['n_test']} test items): {ratios}."]
    return "\n".join(lines)
