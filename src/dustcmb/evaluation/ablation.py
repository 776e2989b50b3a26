"""GAN recipe ablation: each training addition alone and all together, over several seeds.

Every run trains the GAN with ``params``, every recipe addition off (the paper's recipe,
:data:`dustcmb.config.PAPER_RECIPE`, whatever the parameter file's defaults), then one variant's
``gan.*`` overrides, and master seed ``params.seed + k`` (k = 0, 1, ...), then runs the full GAN
evaluation (:mod:`dustcmb.evaluation.gan`) into its own folder::

    <out>/<variant>/seed<k>/model/       generator (as `dustcmb gan train` writes it)
    <out>/<variant>/seed<k>/gan.json     metrics (as `metrics/gan.json`)
    <out>/<variant>/seed<k>/plots/       figures, samples.png included

A finished run is never redone and a killed one resumes from its GAN checkpoint, so the command can
be re-run until ``<out>/summary.json`` (mean and standard deviation over seeds of every figure of
merit, on the held-out region) is complete. The seed changes the generator's initialisation, its
batches and the evaluation draws: the spread is what another machine's trajectory would show.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from dustcmb.config import PAPER_RECIPE, Params
from dustcmb.errors import InputError
from dustcmb.evaluation.gan import evaluate
from dustcmb.gan.train import train
from dustcmb.storage import write_json

# name: gan.* overrides on top of the parameter file (recipe "custom" unless the variant says otherwise)
EMA, AUGMENT, R1 = {"ema_decay": 0.99}, {"augment_fakes": True}, {"r1_gamma": 0.1}
SPECTRAL, MBSTD, DIRECTIONS = {"spectral_norm": True}, {"minibatch_std": True}, {"power_directions": True}
TTUR, SELECTION = {"lr": 1.0e-4, "disc_lr": 4.0e-4}, {"selection": "d_F+minkowski"}
NOISE, FULLRES = {"gen_noise": True}, {"gen_fullres": True}
VARIANTS: dict[str, dict] = {
    "paper": {"recipe": "paper"},
    "ema": EMA, "augment_fakes": AUGMENT, "r1": R1, "spectral_norm": SPECTRAL, "minibatch_std": MBSTD,
    "power_directions": DIRECTIONS, "ttur": TTUR, "minkowski_selection": SELECTION, "gen_noise": NOISE,
    "gen_fullres": FULLRES, "fullres_noise": {**FULLRES, **NOISE},
    "fullres_noise_augment": {**FULLRES, **NOISE, **AUGMENT},
    "fullres_noise_minkowski": {**FULLRES, **NOISE, **SELECTION},
    "fullres_noise_long": {**FULLRES, **NOISE, "steps": 1600},  # twice the quick profile's main steps
    "fullres_noise_directions": {**FULLRES, **NOISE, **DIRECTIONS},
    "fullres_noise_directions_minkowski": {**FULLRES, **NOISE, **DIRECTIONS, **SELECTION},
    # the same with noise maps only up to npix/2 (tests whether full-resolution noise makes the hatching: it does not)
    "coarse_noise_directions_minkowski": {**FULLRES, **NOISE, **DIRECTIONS, **SELECTION, "gen_noise_fullres": False},
    # the same with ln(P_x/P_y) and ln(P_diagonal/P_antidiagonal) per ring in the power discriminator too: the
    # default's maps all lean along one diagonal (power at kx·ky > 0 half that at kx·ky < 0), which it cannot see
    "handed_directions_minkowski": {**FULLRES, **NOISE, **DIRECTIONS, **SELECTION, "power_handedness": True},
    # the same trained networks, each generated map turned into a random orientation of the square (what
    # the discriminators are trained against): no shared orientation survives; streaks would still show, along
    # both axes
    "handed_symmetric": {**FULLRES, **NOISE, **DIRECTIONS, **SELECTION, "power_handedness": True,
                         "symmetrise_samples": True},
    # and the generator's output band-limited like the real patches: no pixel-scale grain in the corners
    "bandlimited": {**FULLRES, **NOISE, **DIRECTIONS, **SELECTION, "power_handedness": True,
                    "symmetrise_samples": True, "gen_bandlimit": True},
    # and the generator drawing a canvas 8 px wider on every side, cropped to the patch: the padding's
    # imprint on the outer strips (frame test) is cut away
    "cropped": {**FULLRES, **NOISE, **DIRECTIONS, **SELECTION, "power_handedness": True,
                "symmetrise_samples": True, "gen_crop_px": 8},
    # and the power discriminator seeing the border strips' gradients (frame test: smoothed borders)
    "borders": {**FULLRES, **NOISE, **DIRECTIONS, **SELECTION, "power_handedness": True,
                "symmetrise_samples": True, "gen_bandlimit": True, "power_borders": True},
    # and checkpoint selection restricted to steps whose mean borders match the real ones (frame test over seeds)
    "select_borders": {**FULLRES, **NOISE, **DIRECTIONS, "power_handedness": True, "symmetrise_samples": True,
                       "gen_bandlimit": True, "power_borders": True, "selection": "d_F+minkowski+borders"},
    # and selection restricted to steps with neither a detected frame nor detected grain
    "select_clean": {**FULLRES, **NOISE, **DIRECTIONS, "power_handedness": True, "symmetrise_samples": True,
                     "gen_bandlimit": True, "power_borders": True, "selection": "d_F+minkowski+artefacts"},
    # and the map discriminator seeing every map circularly shifted: the borders inside its field of view
    "rolled": {**FULLRES, **NOISE, **DIRECTIONS, **SELECTION, "power_handedness": True,
               "symmetrise_samples": True, "gen_bandlimit": True, "power_borders": True, "disc_roll": True},
    # and the generator drawing a canvas 8 px wider on every side, cropped: `cropped` with the band-limit and
    # border features of `borders` (whether the padding's imprint is what remains of the frame)
    "borders_cropped": {**FULLRES, **NOISE, **DIRECTIONS, **SELECTION, "power_handedness": True,
                        "symmetrise_samples": True, "gen_bandlimit": True, "power_borders": True, "gen_crop_px": 8},
    # and generator and both discriminators conditioned on the latitude of the patch centre (ln csc|b|), so that
    # the generator can be asked for the held-out footprint's latitudes instead of the training region's mixture
    "conditioned": {**FULLRES, **NOISE, **DIRECTIONS, **SELECTION, "power_handedness": True,
                    "symmetrise_samples": True, "gen_bandlimit": True, "power_borders": True,
                    "condition_latitude": True},
    # and the generator drawing a canvas 16 px wider on every side, each map a window at a random offset of it:
    # the centre-to-edge texture gradient of the conditioned maps (rms gradient 0.86 of the centre's at the
    # edges) can no longer line up with the patch borders
    "conditioned_random_crop": {**FULLRES, **NOISE, **DIRECTIONS, **SELECTION, "power_handedness": True,
                                "symmetrise_samples": True, "gen_bandlimit": True, "power_borders": True,
                                "condition_latitude": True, "gen_crop_px": 16, "gen_crop_random": True},
    # and the power discriminator judging each map's pixel quantiles together with its latitude (a small perceptron):
    # the conditioned generator draws dark, cavity-like maps at |b| = 25-30 deg where the sky has none (spread of
    # map means 0.11-0.12 u against the training patches' 0.06-0.07), which the spectrum cannot see
    "conditioned_levels": {**FULLRES, **NOISE, **DIRECTIONS, **SELECTION, "power_handedness": True,
                           "symmetrise_samples": True, "gen_bandlimit": True, "power_borders": True,
                           "condition_latitude": True, "power_levels": True},
    # and the generator scaling each map's mean level by a learnt function of the latitude (the spread of the
    # patches' levels shrinks towards the plane, where a longer column averages more clouds)
    "conditioned_levels_spread": {**FULLRES, **NOISE, **DIRECTIONS, **SELECTION, "power_handedness": True,
                                  "symmetrise_samples": True, "gen_bandlimit": True, "power_borders": True,
                                  "condition_latitude": True, "power_levels": True, "gen_level_spread": True},
    # the three additions that each lowered the training-region d_F most in single-seed runs, together
    "r1_augment_mbstd": {**R1, **AUGMENT, **MBSTD},
    "all": {**EMA, **AUGMENT, **R1, **SPECTRAL, **MBSTD, **DIRECTIONS, **TTUR, **SELECTION, **NOISE, **FULLRES},
}
# figures of merit summarised, all read from the held-out section of gan.json except the floor
FIGURES = ("frechet_distance", "histogram_intersection", "minkowski_v0_in_band", "minkowski_v1_in_band",
           "minkowski_v2_in_band", "anisotropy_in_band", "border_in_band", "grain_power_ratio",
           "nearest_neighbour_ratio")
REFERENCES = ("real", "baseline_gaussian", "baseline_lognormal")
LABELS = {"real": "training patches at the held-out latitudes (floor)",
          "baseline_gaussian": "Gaussian fields (baseline)", "baseline_lognormal": "log-normal fields (baseline)"}


def variant_params(params: Params, variant: str, seed_index: int) -> Params:
    """``params`` with every recipe addition off, then the variant's ``gan.*`` overrides, and master seed
    ``params.seed + seed_index``."""
    if variant not in VARIANTS:
        raise InputError(f"unknown ablation variant {variant!r}; choose from {', '.join(VARIANTS)}")
    overrides = {**PAPER_RECIPE, "disc_lr": params.gan.lr, "recipe": "custom", **VARIANTS[variant]}
    return dataclasses.replace(params, seed=params.seed + seed_index,
                               gan=dataclasses.replace(params.gan, **overrides))


def run_one(params: Params, patches_dir: Path, run_dir: Path, device: str, root: Path | None) -> None:
    """Train (resuming a killed run) and evaluate one variant and seed into ``run_dir``, unless done."""
    metrics_path = run_dir / "gan.json"
    if metrics_path.is_file():
        return
    model, checkpoints = run_dir / "model", run_dir / "checkpoint"
    if not (model / "config.json").is_file():
        resume = (checkpoints / "checkpoint.pt").is_file()
        train(params, patches_dir, model, checkpoints, device=device, resume=resume, root=root)
    evaluate(params, patches_dir, model, metrics_path, run_dir / "plots", device=device, root=root)


def _mean_std(values: list[float]) -> dict:
    arr = np.asarray(values, dtype=float)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0,
            "values": arr.tolist()}


def _scores(metrics: dict, region: str, name: str) -> dict:
    """One set's figures of merit in a gan.json: against the training-region patches or the held-out ones
    (NaN for a figure the run's evaluation did not have yet)."""
    if region == "held_out":
        scores = metrics["held_out"][name]
    else:
        scores = metrics if name == "gan" else metrics[name]
    return {key: scores.get(key, float("nan")) for key in FIGURES}


def summarise(runs: dict[str, list[dict]]) -> dict:
    """Mean ± std over seeds of each variant's figures of merit, and of the reference sets'.

    Two regions: ``train`` (against the training-region patches the GAN learnt from and its checkpoint
    was selected on) and ``held_out`` (against the validation + test patches). ``runs`` maps a variant
    to its seeds' gan.json contents. The references (Gaussian and log-normal fields, and on the held-out
    region the training patches themselves) do not depend on the GAN, so their rows pool every run
    scored with the current evaluation (one that has every figure): older runs' baselines were built
    differently.
    """
    summary: dict = {"overrides": {v: VARIANTS[v] for v in runs}}
    every = [m for metrics in runs.values() for m in metrics]
    pooled = [m for m in every if _complete(m)] or every
    for region, references in (("train", REFERENCES[1:]), ("held_out", REFERENCES)):
        rows = {variant: {key: _mean_std([_scores(m, region, "gan")[key] for m in metrics]) for key in FIGURES}
                | {"n_seeds": len(metrics), "best_step": [m["best_step"] for m in metrics]}
                for variant, metrics in runs.items()}
        refs = {name: {key: _mean_std([_scores(m, region, name)[key] for m in pooled]) for key in FIGURES}
                | {"n_seeds": len(pooled)} for name in references}
        summary[region] = {"variants": rows, "references": refs}
    summary["train"]["frechet_floor"] = _mean_std([m["frechet_floor"] for m in pooled])
    return summary


def _complete(metrics: dict) -> bool:
    """Whether a run's gan.json has every figure of merit for every reference set."""
    return all(not np.isnan(_scores(metrics, "held_out", name)[key]) for name in REFERENCES for key in FIGURES)


def run_ablation(params: Params, patches_dir: Path, out_dir: Path, variants: list[str], n_seeds: int,
                 device: str = "cpu", root: Path | None = None, first_seed: int = 0) -> dict:
    """Run (or resume) every variant × seed, then write and return ``out_dir/summary.json``.

    Parameters
    ----------
    params : Params
        The base parameters (quick profile for the README table); each run overrides ``gan.*`` and ``seed``.
    patches_dir : Path
        The patch set (``dvc repro patches``), MJy/sr, with its train/val/test split.
    out_dir : Path
        Folder of the runs and the summary.
    variants : list of str
        Names from :data:`VARIANTS`.
    n_seeds : int
        Training seeds per variant (``params.seed``, ``params.seed + 1``, ...).
    first_seed : int
        Skip the seed indices below this one (so two processes can share the seeds of one variant).
    device : str
        ``cpu`` or ``cuda``.
    root : Path, optional
        MLflow tracking root (see :mod:`dustcmb.tracking`); every run is logged there.
    """
    if not 0 <= first_seed < n_seeds:
        raise InputError(f"first seed index {first_seed} runs none of seeds 0..{n_seeds - 1}: --seeds counts from "
                          f"seed index 0, so --seeds {first_seed + 1} --first-seed {first_seed} runs seed index "
                          f"{first_seed} alone")
    for variant in variants:
        variant_params(params, variant, 0)  # fail on a bad name before hours of training
    for k in range(first_seed, n_seeds):  # seeds outermost: an interrupted study has every variant at the same depth
        for variant in variants:
            run_one(variant_params(params, variant, k), patches_dir, _run_dir(out_dir, variant, k), device, root)
    summary = summarise(finished_runs(out_dir))
    write_json(out_dir / "summary.json", summary)
    return summary


def _run_dir(out_dir: Path, variant: str, seed_index: int) -> Path:
    return out_dir / variant / f"seed{seed_index}"


def finished_runs(out_dir: Path) -> dict[str, list[dict]]:
    """Every evaluated run under ``out_dir`` (also those of earlier calls), by variant in :data:`VARIANTS` order."""
    runs = {}
    for variant in VARIANTS:
        paths = sorted((out_dir / variant).glob("seed*/gan.json"))
        if paths:
            runs[variant] = [json.loads(p.read_text()) | _best_step(p.parent) for p in paths]
    if not runs:
        raise InputError(f"{out_dir} holds no finished ablation run (<variant>/seed<k>/gan.json)")
    return runs


def _best_step(run_dir: Path) -> dict:
    return {"best_step": json.loads((run_dir / "model" / "config.json").read_text())["best_step"]}


COLUMNS = [  # (header, key, format of the mean and std)
    ("d_F", "frechet_distance", "{:.2f}"), ("hist. inters.", "histogram_intersection", "{:.3f}"),
    ("V0 in band", "minkowski_v0_in_band", "{:.2f}"), ("V1 in band", "minkowski_v1_in_band", "{:.2f}"),
    ("V2 in band", "minkowski_v2_in_band", "{:.2f}"), ("anisotropy in band", "anisotropy_in_band", "{:.2f}"),
    ("border in band", "border_in_band", "{:.2f}"), ("grain power ×", "grain_power_ratio", "{:.3g}"),
    ("NN ratio", "nearest_neighbour_ratio", "{:.2f}"),
]


def _pm(stat: dict, fmt: str) -> str:
    if np.isnan(stat["mean"]):
        return "–"  # evaluated before the figure existed
    return f"{fmt.format(stat['mean'])} ± {fmt.format(stat['std'])}"


def ablation_markdown(summary: dict) -> str:
    """The README's ablation tables, training region then held-out region: mean ± std over seeds."""
    titles = {"train": "against the training-region patches (where the checkpoint is selected)",
              "held_out": "against the held-out validation + test patches (the references, and conditional "
                          "variants' maps, drawn at their latitudes)"}
    lines = []
    for region, title in titles.items():
        lines += [f"**{title}**", "", "| variant | seeds | " + " | ".join(c[0] for c in COLUMNS) + " |",
                  "|---|---|" + "---|" * len(COLUMNS)]
        rows = [(v, row) for v, row in summary[region]["variants"].items()]
        rows += [(LABELS[name], row) for name, row in summary[region]["references"].items()]
        for label, row in rows:
            lines.append(f"| {label} | {row['n_seeds']} | "
                         + " | ".join(_pm(row[key], fmt) for _, key, fmt in COLUMNS) + " |")
        lines.append("")
    floor = summary["train"]["frechet_floor"]
    lines.append(f"Real-vs-real d_F floor on the training region (sky-disjoint halves, scaled to the "
                 f"comparison's set sizes): {_pm(floor, '{:.2f}')}.")
    return "\n".join(lines)
