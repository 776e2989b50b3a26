"""``dustcmb separation evaluate``: MC-dropout ResUNet vs ILC on the test split.

Conventions: docs/science.md#bayesian-resunet and #multi-frequency-skies.

For every test map (real dust + a fresh CMB): the MC-dropout passes (:mod:`dustcmb.separation.mc`)
give the estimate (their mean), a per-pixel standard deviation and quantiles of the passes' spectra;
the ILC (:mod:`dustcmb.separation.ilc`) gives the baseline. All spectra are ``C_ℓ`` [µK_CMB² sr]
from :func:`dustcmb.stats.power_spectrum` at the true multipoles.

Figures of merit (``metrics/separation.json``):

- ``coverage_68_per_ell`` (``_95``): fraction of test maps whose true ``C_ℓ`` lies inside the
  central 68 % (95 %) interval of their passes' ``C_ℓ``; ``coverage_68`` is its mean over ℓ bins;
- ``spectrum_ratio_median_per_ell``: median over maps of ``Ĉ_ℓ / C_ℓ`` (estimate vs true CMB);
- ``ell_max_1pct``: the largest ℓ such that in every bin up to it the median over maps of
  ``|Ĉ_ℓ / C_ℓ − 1|`` is below 1 % (0 if the first bin already fails);
- ``map_rmse_uK``: root-mean-square pixel residual over all test maps [µK_CMB];
  ``map_rmse_nomono_uK`` the same after removing each residual's patch mean (the monopole, which
  the spectra ignore and which dominates the ILC residual: its dust leak is mostly a mean offset);
- the same spectrum and RMSE figures under ``ilc``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import torch
from tqdm import tqdm

from dustcmb import tracking
from dustcmb.config import Params
from dustcmb.errors import InputError
from dustcmb.evaluation.separation_plots import coverage_figure, maps_figure, spectra_figure
from dustcmb.separation.ilc import ilc_cmb_uk
from dustcmb.separation.mc import QUANTILES, load_model, mc_predict
from dustcmb.separation.train import EXPERIMENT
from dustcmb.simulation.store import open_datasets
from dustcmb.stats.power import power_spectrum
from dustcmb.storage import atomic_dir, write_json

TOLERANCE = 0.01  # fractional spectrum accuracy that defines ell_max_1pct
N_EXAMPLES = 2  # test maps shown in the map figure
CHUNK = 32  # test maps simulated and processed together


def ell_max_within(ell: np.ndarray, abs_error: np.ndarray, tol: float = TOLERANCE) -> float:
    """Largest ``ell[i]`` with ``abs_error[:i+1] < tol`` throughout; 0 if the first bin fails."""
    bad = np.flatnonzero(~(abs_error < tol))
    last = len(ell) if bad.size == 0 else bad[0]
    return float(ell[last - 1]) if last > 0 else 0.0


def residual_sums(est_uk: np.ndarray, true_uk: np.ndarray) -> np.ndarray:
    """Sums of squared residuals [µK²] of maps ``[n, N, N]``: as they are, and with each patch mean removed."""
    residual = est_uk - true_uk
    centred = residual - residual.mean(axis=(-2, -1), keepdims=True)
    return np.array([(residual**2).sum(), (centred**2).sum()])


def spectrum_scores(ell: np.ndarray, cl_est: np.ndarray, cl_true: np.ndarray, residual_sq: np.ndarray,
                    n_pixels: int) -> dict:
    """Median ratio per ℓ, ``ell_max_1pct`` and map RMSEs of one estimator (spectra ``[n, n_bins]``)."""
    ratio = cl_est / cl_true
    abs_error = np.median(np.abs(ratio - 1.0), axis=0)
    rmse, rmse_nomono = np.sqrt(residual_sq / n_pixels)
    return {"spectrum_ratio_median_per_ell": np.median(ratio, axis=0).tolist(),
            "spectrum_abs_error_median_per_ell": abs_error.tolist(), "ell_max_1pct": ell_max_within(ell, abs_error),
            "map_rmse_uK": float(rmse), "map_rmse_nomono_uK": float(rmse_nomono)}


def collect(model, test, params: Params, n_maps: int | None = None) -> dict:
    """Run MC dropout and ILC over the first ``n_maps`` maps of a set (default: all of them).

    Returns per-map spectra, residual sums and example maps.
    """
    cfg, preset = params.separation, params.simulation.preset
    norm, pixel_arcmin = test.normalisation, params.patches.pixel_arcmin
    keys = ("cl_true", "cl_quantiles", "cl_est", "cl_ilc", "cl_channels")
    out = {k: [] for k in keys} | {"sq_est": np.zeros(2), "sq_ilc": np.zeros(2), "std_sum": 0.0, "examples": []}
    n_maps = len(test) if n_maps is None else min(n_maps, len(test))
    for start in tqdm(range(0, n_maps, CHUNK), desc="MC dropout + ILC", unit="chunk"):
        items = [test.sample_uk(i) for i in range(start, min(start + CHUNK, n_maps))]
        channels_uk = np.stack([c for c, _ in items])
        cmb_uk = np.stack([t for _, t in items]).astype(np.float64)
        inputs = torch.from_numpy(np.asarray(norm.inputs_to_unit(channels_uk), dtype=np.float32))
        pred = mc_predict(model, inputs, norm, cfg.mc_passes, cfg.mc_batch)
        ilc = ilc_cmb_uk(channels_uk, preset.beam_fwhm_arcmin, pixel_arcmin)
        ell, spectra = power_spectrum(np.concatenate([cmb_uk, pred.mean_uk, ilc]), params.patches.size_deg)
        for key, part in zip(("cl_true", "cl_est", "cl_ilc"), np.split(spectra, 3)):
            out[key].append(part)
        out["cl_quantiles"].append(pred.cl_quantiles_uk2)
        out["cl_channels"].append(power_spectrum(channels_uk, params.patches.size_deg)[1])
        out["sq_est"] += residual_sums(pred.mean_uk, cmb_uk)
        out["sq_ilc"] += residual_sums(ilc, cmb_uk)
        out["std_sum"] += float(pred.std_uk.sum())
        for j in range(min(N_EXAMPLES - len(out["examples"]), len(items))):
            out["examples"].append({"channels_uk": channels_uk[j], "cmb_uk": cmb_uk[j], "mean_uk": pred.mean_uk[j],
                                    "std_uk": pred.std_uk[j], "ilc_uk": ilc[j]})
    return {k: np.concatenate(v) if k in keys else v for k, v in out.items()} | {"ell": ell}


def metrics_from(data: dict, params: Params, n_pixels: int) -> dict:
    """The ``metrics/separation.json`` content from :func:`collect`'s output."""
    ell, cl_true, q = data["ell"], data["cl_true"], data["cl_quantiles"]
    lo95, lo68, _, hi68, hi95 = (q[:, k] for k in range(len(QUANTILES)))
    cov68 = ((lo68 <= cl_true) & (cl_true <= hi68)).mean(axis=0)
    cov95 = ((lo95 <= cl_true) & (cl_true <= hi95)).mean(axis=0)
    return {"n_test": int(len(cl_true)), "mc_passes": params.separation.mc_passes,
            "instrument": params.simulation.instrument, "ell": ell.tolist(),
            "coverage_68": float(cov68.mean()), "coverage_95": float(cov95.mean()),
            "coverage_68_per_ell": cov68.tolist(), "coverage_95_per_ell": cov95.tolist(),
            **spectrum_scores(ell, data["cl_est"], cl_true, data["sq_est"], n_pixels),
            "mean_pixel_std_uK": data["std_sum"] / n_pixels,
            "ilc": spectrum_scores(ell, data["cl_ilc"], cl_true, data["sq_ilc"], n_pixels)}


def evaluate(params: Params, data_dir: Path, model_dir: Path, metrics_path: Path, plots_dir: Path,
             device: str = "cpu", params_file: Path | None = None, root: Path | None = None) -> dict:
    """Evaluate the trained ResUNet and the ILC on the test split; write metrics and figures.

    Parameters
    ----------
    params : Params
        ``separation.mc_passes``/``mc_batch``, ``seed`` (dropout masks), ``simulation`` (beams for ILC).
    data_dir, model_dir : Path
        From ``dustcmb separation data`` and ``dustcmb separation train``.
    metrics_path : Path
        JSON written atomically (see the module docstring for its keys).
    plots_dir : Path
        Replaced atomically by ``maps.png`` (Fig 6), ``spectra.png`` (Fig 7) and ``coverage.png``.
    device : str
        ``cpu`` or ``cuda`` (already resolved).

    Returns
    -------
    dict
        The metrics.
    """
    test = open_datasets(data_dir, params)["test"]
    model, config = load_model(model_dir, device)
    if config["normalisation"] != json.loads(json.dumps(dataclasses.asdict(test.normalisation))):
        raise InputError(f"{model_dir} was trained with another channel normalisation than {data_dir}; "
                         "re-run `dustcmb separation train` on this data")
    if model.npix != params.patches.npix:
        raise InputError(f"{model_dir} is for {model.npix}² maps but patches.npix={params.patches.npix}")
    torch.manual_seed(params.seed)
    data = collect(model, test, params)
    metrics = metrics_from(data, params, len(test) * params.patches.npix**2)
    manifest = json.loads((Path(data_dir) / "manifest.json").read_text())
    metrics |= {"n_test_dust_maps": int(test.source_index.size), "realisations_per_map": test.realisations,
                "split_scheme": manifest["split_scheme"], "is_held_out": manifest["held_out"]}
    figures = {"maps.png": maps_figure(data["examples"], params.simulation.freqs_ghz),
               "spectra.png": spectra_figure(data["ell"], data, params.simulation.freqs_ghz),
               "coverage.png": coverage_figure(data["ell"], metrics)}
    run_params = {"separation": dataclasses.asdict(params.separation), "instrument": params.simulation.instrument,
                  "n_test": len(test), "device": device}
    tags = tracking.pipeline_tags(params_file) | {"train_run_id": str(config.get("mlflow_run_id"))}
    with tracking.run(EXPERIMENT, "separation-evaluate", params=run_params, tags=tags, root=root):
        write_json(metrics_path, metrics)
        with atomic_dir(plots_dir) as tmp:
            for name, fig in figures.items():
                fig.savefig(tmp / name, dpi=110)
        for name, fig in figures.items():
            mlflow.log_figure(fig, f"plots/{name}")
            plt.close(fig)
        scores = ("ell_max_1pct", "map_rmse_uK", "map_rmse_nomono_uK")
        mlflow.log_metrics({k: metrics[k] for k in ("coverage_68", "coverage_95", "mean_pixel_std_uK", *scores)}
                           | {f"ilc_{k}": metrics["ilc"][k] for k in scores})
        mlflow.log_artifact(str(metrics_path))
    return metrics
