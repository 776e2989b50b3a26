"""``dustcmb separation evaluate``: MC-dropout ResUNet vs classical baselines on the test split.

Conventions: docs/science.md#bayesian-resunet and #multi-frequency-skies.

For every test map (real dust + a fresh CMB): the MC-dropout passes (:mod:`dustcmb.separation.mc`)
give the estimate (their mean), a per-pixel standard deviation and quantiles of the passes' spectra;
three classical methods, run on the same observed channels after one shared beam deconvolution
(:func:`dustcmb.separation.ilc.beam_free`), give the baselines (:data:`BASELINES`): the pixel ILC
(:mod:`~dustcmb.separation.ilc`), the harmonic ILC (:mod:`~dustcmb.separation.hilc`) and the constrained
ILC nulling the simulation's dust SED (:mod:`~dustcmb.separation.cilc`). All spectra are ``C_ℓ``
[µK_CMB² sr] from :func:`dustcmb.stats.power_spectrum` at the true multipoles.

Figures of merit (``metrics/separation.json``):

- ``coverage_68_per_ell`` (``_95``): fraction of test maps whose true ``C_ℓ`` lies inside the
  central 68 % (95 %) interval of their passes' ``C_ℓ``; ``coverage_68`` is its mean over ℓ bins;
- ``centred``, ``calibrated``, ``calibrated_mc`` and ``calibrated_leakage``: the same per ℓ (and
  ``calibration_error_<level>``, the mean over ℓ of ``|coverage_ℓ − nominal|``) for the interval centred
  on the estimate, raw and after per-ℓ conformal factors fitted on validation maps that early stopping
  never scored, with the width model's width (the reported calibration, with its fitted exponents per ℓ,
  ``leak_exponent_<level>_per_ell`` and ``mc_exponent_<level>_per_ell``), the MC-dropout width alone or
  the dust-leakage width alone (:mod:`dustcmb.separation.calibration`); ``calibrated.by_brightness``:
  the reported calibration's coverage (``coverage_68``, ``coverage_95``: mean over maps and ℓ bins) and
  map count ``n`` in five groups of dust brightness, the calibration maps' quartiles (``upper_edges``,
  mean ``ln C_ℓ`` of the dust-dominated channel [ln(µK² sr)]) and a fifth group brighter than any of
  them; ``calibrated.within_range``: the reported calibration per ℓ on the ``n`` test maps of the first
  four groups, where its widths interpolate; ``calibrated.coverage_<level>_se_per_ell``: standard error
  of the reported coverage per ℓ with the dust map as the independent unit (its draws share their dust);
  ``pixel_coverage_68``: pixels within one MC σ of the truth;
- ``spectrum_ratio_median_per_ell``: median over maps of ``Ĉ_ℓ / C_ℓ`` (estimate vs true CMB), and
  ``spectrum_abs_error_median_per_ell`` the median of ``|Ĉ_ℓ / C_ℓ − 1|``;
- ``spectrum_bias_per_ell``: mean over maps of ``Ĉ_ℓ / C_ℓ − 1``, ``spectrum_bias_err_per_ell`` its
  standard error (sample std over maps / √n; 0 for a single map);
- ``residual_power_ratio_per_ell``: mean over maps of ``C_ℓ(estimate − truth) / C_ℓ(truth)``;
- ``ell_max_1pct``: the largest ℓ such that in every bin up to it the median over maps of
  ``|Ĉ_ℓ / C_ℓ − 1|`` is below 1 % (0 if the first bin already fails);
- ``ell_range_1pct``: ``[ℓ_lo, ℓ_hi]``, the widest run of consecutive bins in each of which the bias
  is consistent with 1 %: ``|bias| < 1 % + 2 × its standard error`` (:func:`ell_range_within`); one
  failing bin splits the range but cannot zero it; ``[0, 0]`` if no bin passes;
- ``map_rmse_uK``: root-mean-square pixel residual over all test maps [µK_CMB];
  ``map_rmse_nomono_uK`` the same after removing each residual's patch mean (the monopole, which
  the spectra ignore and which dominates the ILC residual: its dust leak is mostly a mean offset);
- the same spectrum and RMSE figures for every baseline under ``baselines.<name>`` (``ilc``, ``hilc``,
  ``cilc``); ``ilc`` repeats ``baselines.ilc`` for the command's summary line.
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
from dustcmb.evaluation.separation_plots import coverage_figure, maps_figure, residual_power_figure, spectra_figure
from dustcmb.separation import calibration
from dustcmb.separation.cilc import cilc_combine, dust_mixing
from dustcmb.separation.hilc import hilc_combine
from dustcmb.separation.ilc import beam_free, ilc_combine
from dustcmb.separation.inputs import network_inputs
from dustcmb.separation.mc import QUANTILES, load_model, mc_predict
from dustcmb.separation.train import EXPERIMENT
from dustcmb.simulation.store import open_datasets
from dustcmb.stats.power import power_spectrum
from dustcmb.storage import atomic_dir, write_json

TOLERANCE = 0.01  # fractional spectrum accuracy that defines ell_max_1pct and ell_range_1pct
N_SIGMA = 2.0  # a bin's bias is within TOLERANCE if |bias| < TOLERANCE + N_SIGMA × its standard error
BASELINES = {"ilc": "ILC", "hilc": "harmonic ILC", "cilc": "constrained ILC"}  # name: label
ESTIMATORS = ("est", *BASELINES)  # data-key suffixes: the ResUNet's MC mean, then the baselines
N_EXAMPLES = 2  # test maps shown in the map figure
CHUNK = 32  # test maps simulated and processed together


def ell_max_within(ell: np.ndarray, abs_error: np.ndarray, tol: float = TOLERANCE) -> float:
    """Largest ``ell[i]`` with ``abs_error[:i+1] < tol`` throughout; 0 if the first bin fails."""
    bad = np.flatnonzero(~(abs_error < tol))
    last = len(ell) if bad.size == 0 else bad[0]
    return float(ell[last - 1]) if last > 0 else 0.0


def ell_range_within(ell: np.ndarray, bias: np.ndarray, bias_err: np.ndarray, tol: float = TOLERANCE,
                     n_sigma: float = N_SIGMA) -> list[float]:
    """``[ℓ_lo, ℓ_hi]``: the widest run of consecutive bins whose bias is consistent with ``|bias| < tol``.

    A bin passes if ``|bias| < tol + n_sigma × bias_err`` (its mean fractional spectrum error is within
    ``tol`` up to ``n_sigma`` standard errors). Of equally wide runs the lowest in ℓ is returned;
    ``[0, 0]`` if no bin passes. Unlike :func:`ell_max_within`, one failing bin (ring 1, say) only
    splits the range.
    """
    ok = np.abs(np.asarray(bias)) < tol + n_sigma * np.asarray(bias_err)
    runs, start = [], None  # (first, last) bin of every run of passing bins
    for i, good in enumerate([*ok, False]):
        if good and start is None:
            start = i
        elif not good and start is not None:
            runs.append((start, i - 1))
            start = None
    if not runs:
        return [0.0, 0.0]
    first, last = max(runs, key=lambda run: (run[1] - run[0], -run[0]))
    return [float(ell[first]), float(ell[last])]


def residual_sums(est_uk: np.ndarray, true_uk: np.ndarray) -> np.ndarray:
    """Sums of squared residuals [µK²] of maps ``[n, N, N]``: as they are, and with each patch mean removed."""
    residual = est_uk - true_uk
    centred = residual - residual.mean(axis=(-2, -1), keepdims=True)
    return np.array([(residual**2).sum(), (centred**2).sum()])


def spectrum_scores(ell: np.ndarray, cl_est: np.ndarray, cl_true: np.ndarray, cl_residual: np.ndarray,
                    residual_sq: np.ndarray, n_pixels: int) -> dict:
    """Spectrum and map figures of one estimator (module docstring) from spectra ``[n, n_bins]``.

    ``cl_est``, ``cl_true`` and ``cl_residual`` are the per-map ``C_ℓ`` of the estimate, the true CMB
    and their difference; ``residual_sq`` the :func:`residual_sums` over all maps, ``n_pixels`` in all.
    """
    ratio = cl_est / cl_true
    abs_error = np.median(np.abs(ratio - 1.0), axis=0)
    rmse, rmse_nomono = np.sqrt(residual_sq / n_pixels)
    bias = (ratio - 1.0).mean(axis=0)
    n = len(ratio)
    bias_err = ratio.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.zeros_like(bias)
    return {"spectrum_ratio_median_per_ell": np.median(ratio, axis=0).tolist(),
            "spectrum_abs_error_median_per_ell": abs_error.tolist(), "ell_max_1pct": ell_max_within(ell, abs_error),
            "spectrum_bias_per_ell": bias.tolist(), "spectrum_bias_err_per_ell": bias_err.tolist(),
            "ell_range_1pct": ell_range_within(ell, bias, bias_err),
            "residual_power_ratio_per_ell": (cl_residual / cl_true).mean(axis=0).tolist(),
            "map_rmse_uK": float(rmse), "map_rmse_nomono_uK": float(rmse_nomono)}


def classical_estimates(channels_uk: np.ndarray, params: Params) -> dict[str, np.ndarray]:
    """Every baseline's CMB estimate ``[n, N, N]`` [µK_CMB] of observed channels ``[n, C, N, N]`` [µK_CMB].

    The beams are undone once and the three methods share the beam-free channels. The constrained ILC
    nulls the mean SED of ``params.simulation`` (β, T_d): the SED the dust was simulated with.
    """
    sim = params.simulation
    clean = beam_free(channels_uk, sim.preset.beam_fwhm_arcmin, params.patches.pixel_arcmin)
    mixing = dust_mixing(sim.freqs_ghz, sim.beta, sim.temp_dust_k)
    return {"ilc": ilc_combine(clean), "hilc": hilc_combine(clean), "cilc": cilc_combine(clean, mixing)}


def collect(model, test, params: Params, n_maps: int | None = None, start: int = 0) -> dict:
    """Run MC dropout and the classical baselines over ``n_maps`` maps of a set from ``start`` (default: all).

    Returns per-map spectra (``cl_true``, ``cl_quantiles``, ``cl_channels``, and ``cl_<e>`` of each
    estimate and ``clres_<e>`` of its residual for ``e`` in :data:`ESTIMATORS`), each item's ``dust_map``, residual sums
    ``sq_<e>``, the summed MC std and example maps. Maps are processed ``CHUNK`` at a time.
    """
    cfg = params.separation
    norm = test.normalisation
    keys = ("cl_true", "cl_quantiles", "cl_channels", "dust_map",
            *(f"{p}_{e}" for p in ("cl", "clres") for e in ESTIMATORS))
    out = {k: [] for k in keys} | {f"sq_{e}": np.zeros(2) for e in ESTIMATORS}
    out |= {"std_sum": 0.0, "pixels_in_68": 0, "examples": []}
    stop = len(test) if n_maps is None else min(start + n_maps, len(test))
    for first in tqdm(range(start, stop, CHUNK), desc="MC dropout + baselines", unit="chunk"):
        chunk = range(first, min(first + CHUNK, stop))
        items = [test.sample_uk(i) for i in chunk]
        out["dust_map"].append(np.array([test.dust_map(i) for i in chunk]))
        channels_uk = np.stack([c for c, _ in items])
        cmb_uk = np.stack([t for _, t in items]).astype(np.float64)
        classical = classical_estimates(channels_uk, params)
        inputs = torch.from_numpy(network_inputs(channels_uk, norm, params, prior=classical["cilc"]))
        pred = mc_predict(model, inputs, norm, cfg.mc_passes, cfg.mc_batch)
        estimates = {"est": pred.mean_uk} | classical
        maps = [cmb_uk, *(estimates[e] for e in ESTIMATORS), *(estimates[e] - cmb_uk for e in ESTIMATORS)]
        ell, spectra = power_spectrum(np.concatenate(maps), params.patches.size_deg)
        names = ["cl_true", *(f"cl_{e}" for e in ESTIMATORS), *(f"clres_{e}" for e in ESTIMATORS)]
        for key, part in zip(names, np.split(spectra, len(maps))):
            out[key].append(part)
        out["cl_quantiles"].append(pred.cl_quantiles_uk2)
        out["cl_channels"].append(power_spectrum(channels_uk, params.patches.size_deg)[1])
        for e in ESTIMATORS:
            out[f"sq_{e}"] += residual_sums(estimates[e], cmb_uk)
        out["std_sum"] += float(pred.std_uk.sum())
        out["pixels_in_68"] += int((np.abs(pred.mean_uk - cmb_uk) <= pred.std_uk).sum())
        for j in range(min(N_EXAMPLES - len(out["examples"]), len(items))):
            out["examples"].append({"channels_uk": channels_uk[j], "cmb_uk": cmb_uk[j], "mean_uk": pred.mean_uk[j],
                                    "std_uk": pred.std_uk[j]} | {f"{b}_uk": estimates[b][j] for b in BASELINES})
    return {k: np.concatenate(v) if k in keys else v for k, v in out.items()} | {"ell": ell}


@dataclasses.dataclass
class Calibration:
    """Fitted on calibration maps: per level, the :class:`~dustcmb.separation.calibration.WidthModel`
    (``models[level]``), the per-ℓ conformal factors of every width (``factors[section][level]``), and the
    maps' dust brightness (:func:`~dustcmb.separation.calibration.dust_brightness`) that groups test maps."""

    models: dict[str, calibration.WidthModel]
    factors: dict[str, dict[str, np.ndarray]]
    brightness: np.ndarray


def calibration_widths(data: dict, level: str, dust_channel: int,
                       model: calibration.WidthModel | None) -> dict[str, np.ndarray]:
    """The ``ln C_ℓ`` widths [n, n_bins] that per-ℓ factors scale, by metrics section: ``calibrated``
    (the width model's, the reported one; only with a ``model``), ``calibrated_mc`` (MC dropout's
    alone) and ``calibrated_leakage`` (dust leakage alone, from input channel ``dust_channel``); see
    :mod:`dustcmb.separation.calibration`."""
    mc = calibration.half_width(data["cl_quantiles"], level)
    leak = calibration.leakage_width(data["cl_channels"][:, dust_channel], data["cl_est"])
    widths = {"calibrated_mc": mc, "calibrated_leakage": leak}
    return widths if model is None else {"calibrated": model.width(leak, mc)} | widths


def calibration_metrics(data: dict, fitted: Calibration | None, dust_channel: int) -> dict:
    """Coverage per ℓ of the interval centred on the estimate, raw and with the fitted factors of
    each width (:func:`fit_calibration`). Without a calibration (no calibration maps) only the
    centred interval is reported.
    """
    cl_true, cl_est, q = data["cl_true"], data["cl_est"], data["cl_quantiles"]
    out = {"centred": {}, "calibrated": {}, "calibrated_mc": {}, "calibrated_leakage": {}}
    if fitted is not None:
        brightness = calibration.dust_brightness(data["cl_channels"][:, dust_channel])
        groups = calibration.brightness_groups(brightness, fitted.brightness)
        counts = np.bincount(groups, minlength=calibration.BRIGHTNESS_GROUPS)
        out["calibrated"]["by_brightness"] = {"upper_edges": calibration.group_edges(fitted.brightness).tolist(),
                                              "n": counts.tolist()}
        in_range = groups < calibration.BRIGHTNESS_GROUPS - 1  # no brighter than the brightest calibration map
        out["calibrated"]["within_range"] = {"n": int(in_range.sum())}
    for level in calibration.LEVELS:
        nominal = calibration.LEVELS[level][2]
        centred = calibration.coverage(cl_true, calibration.centred_interval(cl_est, q, level))
        out["centred"] |= {f"coverage_{level}_per_ell": centred.tolist(),
                           f"calibration_error_{level}": float(np.abs(centred - nominal).mean())}
        if fitted is None:
            continue
        model = fitted.models[level]
        # w ∝ d^(b/2) σ^(c/2): the exponents of the leakage and MC widths in the reported width
        out["calibrated"] |= {f"leak_exponent_{level}_per_ell": (model.coef[:, 1] / 2).tolist(),
                              f"mc_exponent_{level}_per_ell": (model.coef[:, 2] / 2).tolist()}
        for name, width in calibration_widths(data, level, dust_channel, model).items():
            factors = fitted.factors[name][level]
            cover = calibration.coverage(cl_true, calibration.calibrated_interval(cl_est, width, factors))
            out[name] |= {f"coverage_{level}_per_ell": cover.tolist(),
                          f"calibration_error_{level}": float(np.abs(cover - nominal).mean()),
                          f"factors_{level}_per_ell": factors.tolist()}
            if name == "calibrated":
                _reported_detail(out[name], data, calibration.calibrated_interval(cl_est, width, factors),
                                 groups, in_range, level)
    return out


def _reported_detail(section: dict, data: dict, interval: tuple[np.ndarray, np.ndarray], groups: np.ndarray,
                     in_range: np.ndarray, level: str) -> None:
    """Add to the reported calibration's ``section``: the dust-map clustered standard error of its
    coverage per ℓ (with test maps from at least two dust maps), its coverage by brightness group, and
    per ℓ on the test maps within the calibration maps' brightness (``within_range``: where the widths
    are interpolated, not extrapolated)."""
    cl_true, nominal = data["cl_true"], calibration.LEVELS[level][2]
    low, high = interval
    inside = (low <= cl_true) & (cl_true <= high)
    if len(np.unique(data["dust_map"])) > 1:
        error = calibration.clustered_standard_error(inside, data["dust_map"])
        section[f"coverage_{level}_se_per_ell"] = error.tolist()
    section["by_brightness"][f"coverage_{level}"] = calibration.coverage_by_group(
        cl_true, interval, groups, calibration.BRIGHTNESS_GROUPS)
    if in_range.any():
        cover = inside[in_range].mean(axis=0)
        section["within_range"] |= {f"coverage_{level}_per_ell": cover.tolist(),
                                    f"calibration_error_{level}": float(np.abs(cover - nominal).mean())}


def fit_calibration(data: dict, dust_channel: int) -> Calibration:
    """The width model and the per-ℓ conformal factors at 68 % and 95 % of every width of
    :func:`calibration_widths`, from :func:`collect` output on calibration maps."""
    models, factors = {}, {}
    for level in calibration.LEVELS:
        widths = calibration_widths(data, level, dust_channel, None)
        leak, mc = widths["calibrated_leakage"], widths["calibrated_mc"]
        models[level] = calibration.fit_width_model(data["cl_true"], data["cl_est"], leak, mc)
        widths["calibrated"] = models[level].width(leak, mc)
        for name, width in widths.items():
            factors.setdefault(name, {})[level] = calibration.conformal_factors(
                data["cl_true"], data["cl_est"], width, level)
    return Calibration(models, factors, calibration.dust_brightness(data["cl_channels"][:, dust_channel]))


def dust_channel(params: Params) -> int:
    """Index of the highest-frequency (most dust-dominated) input channel."""
    return int(np.argmax(params.simulation.freqs_ghz))


def metrics_from(data: dict, params: Params, n_pixels: int, fitted: Calibration | None = None) -> dict:
    """The ``metrics/separation.json`` content from :func:`collect`'s output (and the fitted calibration)."""
    ell, cl_true, q = data["ell"], data["cl_true"], data["cl_quantiles"]
    lo95, lo68, _, hi68, hi95 = (q[:, k] for k in range(len(QUANTILES)))
    cov68 = ((lo68 <= cl_true) & (cl_true <= hi68)).mean(axis=0)
    cov95 = ((lo95 <= cl_true) & (cl_true <= hi95)).mean(axis=0)

    def scores(e: str) -> dict:
        return spectrum_scores(ell, data[f"cl_{e}"], cl_true, data[f"clres_{e}"], data[f"sq_{e}"], n_pixels)

    baselines = {b: scores(b) for b in BASELINES}
    return {"n_test": int(len(cl_true)), "mc_passes": params.separation.mc_passes,
            "instrument": params.simulation.instrument, "ell": ell.tolist(),
            "coverage_68": float(cov68.mean()), "coverage_95": float(cov95.mean()),
            "coverage_68_per_ell": cov68.tolist(), "coverage_95_per_ell": cov95.tolist(),
            "calibration_error_68": float(np.abs(cov68 - 0.68).mean()),
            "calibration_error_95": float(np.abs(cov95 - 0.95).mean()),
            **calibration_metrics(data, fitted, dust_channel(params)),
            "pixel_coverage_68": data["pixels_in_68"] / n_pixels,
            **scores("est"), "mean_pixel_std_uK": data["std_sum"] / n_pixels,
            "baselines": baselines, "ilc": baselines["ilc"]}


def load_checked(model_dir: Path, data_dir: Path, test, params: Params, device: str) -> tuple[torch.nn.Module, dict]:
    """The trained ResUNet of ``model_dir`` and its config, checked against the data it will be run on."""
    model, config = load_model(model_dir, device)
    if config["normalisation"] != json.loads(json.dumps(dataclasses.asdict(test.normalisation))):
        raise InputError(f"{model_dir} was trained with another channel normalisation than {data_dir}; "
                         "re-run `dustcmb separation train` on this data")
    if model.npix != params.patches.npix:
        raise InputError(f"{model_dir} is for {model.npix}² maps but patches.npix={params.patches.npix}")
    return model, config


def evaluate(params: Params, data_dir: Path, model_dir: Path, metrics_path: Path, plots_dir: Path,
             device: str = "cpu", params_file: Path | None = None, root: Path | None = None) -> dict:
    """Evaluate the trained ResUNet and the classical baselines on the test split; write metrics and figures.

    Parameters
    ----------
    params : Params
        ``separation.mc_passes``/``mc_batch``, ``seed`` (dropout masks), ``simulation`` (beams, dust SED).
    data_dir, model_dir : Path
        From ``dustcmb separation data`` and ``dustcmb separation train``.
    metrics_path : Path
        JSON written atomically (see the module docstring for its keys).
    plots_dir : Path
        Replaced atomically by ``maps.png`` (Fig 6), ``spectra.png`` (Fig 7), ``coverage.png`` and
        ``residual_power.png`` (residual over CMB power per ℓ, every method).
    device : str
        ``cpu`` or ``cuda`` (already resolved).

    Returns
    -------
    dict
        The metrics.
    """
    sets = open_datasets(data_dir, params)
    test, val = sets["test"], sets["val"]
    model, config = load_checked(model_dir, data_dir, test, params, device)
    torch.manual_seed(params.seed)
    # calibration maps: validation items beyond those early stopping scored (other CMB + noise draws)
    start = min(params.separation.val_maps or len(val), len(val))
    spare = min(params.separation.calibration_maps, len(val) - start)
    fitted = fit_calibration(collect(model, val, params, spare, start), dust_channel(params)) if spare > 1 else None
    torch.manual_seed(params.seed)  # test masks independent of how many calibration maps came first
    data = collect(model, test, params)
    metrics = metrics_from(data, params, len(test) * params.patches.npix**2, fitted)
    metrics |= {"n_calibration": int(max(spare, 0)), "calibration_first_val_item": int(start),
                "dropout": list(model.dropout)}
    manifest = json.loads((Path(data_dir) / "manifest.json").read_text())
    metrics |= {"n_test_dust_maps": int(test.source_index.size), "realisations_per_map": test.realisations,
                "split_scheme": manifest["split_scheme"], "is_held_out": manifest["held_out"]}
    figures = {"maps.png": maps_figure(data["examples"], params.simulation.freqs_ghz),
               "spectra.png": spectra_figure(data["ell"], data, params.simulation.freqs_ghz, BASELINES),
               "coverage.png": coverage_figure(data["ell"], metrics),
               "residual_power.png": residual_power_figure(data["ell"], metrics, BASELINES)}
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
                           | {f"{b}_{k}": metrics["baselines"][b][k] for b in BASELINES for k in scores})
        mlflow.log_artifact(str(metrics_path))
    return metrics
