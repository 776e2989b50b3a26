"""Figures of ``dustcmb separation evaluate``: paper Figs 6 and 7, coverage and residual power per ℓ (PNG, Agg)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

BANDS = (2.5, 16.0, 50.0, 84.0, 97.5)  # percentiles over test maps: 95 % band, 68 % band, median


def maps_figure(examples: list[dict], freqs_ghz) -> plt.Figure:
    """Fig 6: input channels, true CMB, MC-mean estimate, residual and per-pixel MC std [µK_CMB]."""
    n_cols = len(freqs_ghz) + 4
    fig, axes = plt.subplots(len(examples), n_cols, figsize=(2.3 * n_cols, 2.4 * len(examples)), squeeze=False)
    for row, ex in enumerate(examples):
        cmb_range = np.abs(ex["cmb_uk"]).max()
        panels = [(f"{f:g} GHz", c, "RdBu_r", None) for f, c in zip(freqs_ghz, ex["channels_uk"])]
        panels += [("true CMB", ex["cmb_uk"], "RdBu_r", cmb_range),
                   ("estimate", ex["mean_uk"], "RdBu_r", cmb_range),
                   ("residual", ex["mean_uk"] - ex["cmb_uk"], "RdBu_r", None),
                   ("MC std", ex["std_uk"], "viridis", None)]
        for ax, (title, image, cmap, vmax) in zip(axes[row], panels):
            if cmap == "RdBu_r":
                vmax = vmax or np.abs(image).max()
                shown = ax.imshow(image, cmap=cmap, vmin=-vmax, vmax=vmax, origin="upper")
            else:
                shown = ax.imshow(image, cmap=cmap, origin="upper")
            fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.03).ax.tick_params(labelsize=6)
            ax.set_title(title, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle("Test maps [µK_CMB]: inputs, truth, MC-dropout estimate, residual, per-pixel std")
    fig.tight_layout()
    return fig


def _band(ax, ell: np.ndarray, ratio: np.ndarray, color: str, label: str) -> None:
    p = np.percentile(ratio, BANDS, axis=0)
    ax.fill_between(ell, p[0], p[4], color=color, alpha=0.15, lw=0)
    ax.fill_between(ell, p[1], p[3], color=color, alpha=0.3, lw=0)
    ax.plot(ell, p[2], color=color, lw=1.5, label=label)


def spectra_figure(ell: np.ndarray, data: dict, freqs_ghz, baselines: dict[str, str] | None = None) -> plt.Figure:
    """Fig 7: contaminated and cleaned ``C_ℓ`` over the true CMB ``C_ℓ`` (median, 68 % and 95 % bands).

    ``baselines`` maps the classical methods' data keys (``cl_<name>``) to labels (default: the ILC
    alone); the first gets bands, the others their median only, so that the panel stays legible.
    """
    baselines = {"ilc": "ILC"} if baselines is None else baselines
    cl_true = data["cl_true"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = plt.cm.plasma(np.linspace(0.1, 0.8, len(freqs_ghz)))
    for c, (freq, color) in enumerate(zip(freqs_ghz, colors)):
        _band(left, ell, data["cl_channels"][:, c] / cl_true, color, f"{freq:g} GHz (CMB + dust)")
    left.set_yscale("log")
    left.set_title("contaminated")
    _band(right, ell, data["cl_est"] / cl_true, "C0", "ResUNet (MC mean)")
    for k, (name, label) in enumerate(baselines.items()):
        ratio = data[f"cl_{name}"] / cl_true
        if k == 0:
            _band(right, ell, ratio, "C1", label)
        else:
            right.plot(ell, np.median(ratio, axis=0), color=f"C{k + 1}", lw=1.2, ls="--", label=f"{label} (median)")
    right.axhspan(0.99, 1.01, color="grey", alpha=0.3, lw=0, label="±1 %")
    right.set_title("cleaned")
    for ax in (left, right):
        ax.axhline(1.0, color="k", lw=0.7)
        ax.set_xlabel("ℓ")
        ax.set_ylabel("C_ℓ / C_ℓ(true CMB)")
        ax.legend(fontsize=8)
    fig.suptitle("Test set: median over maps, 68 % and 95 % bands")
    fig.tight_layout()
    return fig


def _residual_power(ax, ell: np.ndarray, metrics: dict, baselines: dict[str, str]) -> None:
    """Residual power ratio of the ResUNet and every baseline on ``ax`` (log y)."""
    curves = [("ResUNet (MC mean)", metrics)]
    curves += [(label, metrics["baselines"][name]) for name, label in baselines.items()]
    for k, (label, scores) in enumerate(curves):
        ratio = np.asarray(scores["residual_power_ratio_per_ell"], dtype=float)
        shown = np.where(ratio > 0, ratio, np.nan)  # a perfect estimate (0) has no place on a log axis
        ax.plot(ell, shown, color=f"C{k}", marker=".", lw=1.2, label=label)
    ax.axhline(0.01, color="grey", ls=":", lw=0.8, label="1 % of the CMB")
    ax.set_yscale("log")
    ax.set_xlabel("ℓ")
    ax.set_ylabel("C_ℓ(residual) / C_ℓ(true CMB)")


def residual_power_figure(ell: np.ndarray, metrics: dict, baselines: dict[str, str]) -> plt.Figure:
    """Mean over test maps of ``C_ℓ(estimate − truth) / C_ℓ(truth)`` for the ResUNet and every baseline (log y)."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    _residual_power(ax, ell, metrics, baselines)
    ax.set_title(f"Residual power, mean over {metrics['n_test']} test maps")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def cases_figure(cases: dict[str, dict], baselines: dict[str, str]) -> plt.Figure:
    """One residual-power panel per sky/instrument case (``cases``: name -> separation metrics)."""
    n = len(cases)
    cols = min(n, 2)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 3.8 * rows), squeeze=False, sharey=True)
    for ax, (name, metrics) in zip(axes.flat, cases.items()):
        _residual_power(ax, np.asarray(metrics["ell"]), metrics, baselines)
        ax.set_title(name)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def coverage_figure(ell: np.ndarray, metrics: dict) -> plt.Figure:
    """Coverage per ℓ bin of the 68 % / 95 % intervals: raw MC passes, centred on the estimate, calibrated
    (width-model width, the reported one, and the MC-dropout and dust-leakage widths alone); and, when
    calibrated, the reported calibration's coverage in groups of dust brightness (``calibrated.by_brightness``).

    Error bars of the reported calibration are its clustered standard errors (the dust map as the
    unit, ``calibrated.coverage_<level>_se_per_ell``); the others' are binomial, ``√(p(1 − p)/n)`` over
    the ``n`` test maps (of the group), which understates the error of draws that share their dust.
    """
    by_brightness = metrics.get("calibrated", {}).get("by_brightness")
    fig, axes = plt.subplots(1, 3 if by_brightness else 2, figsize=(16 if by_brightness else 11, 4), sharey=True)
    n = metrics["n_test"]
    variants = [("raw (passes' quantiles)", metrics, "C7"), ("centred on the estimate", metrics["centred"], "C0"),
                ("calibrated: width model (reported)", metrics.get("calibrated", {}), "C3"),
                ("calibrated: MC width alone", metrics.get("calibrated_mc", {}), "C1"),
                ("calibrated: dust-leakage width alone", metrics.get("calibrated_leakage", {}), "C2")]
    for ax, level in zip(axes, ("68", "95")):
        for label, source, color in variants:
            key = f"coverage_{level}_per_ell"
            if key not in source:
                continue
            p = np.asarray(source[key])
            err = np.asarray(source.get(f"coverage_{level}_se_per_ell", np.sqrt(p * (1 - p) / n)))
            ax.errorbar(ell, p, yerr=err, color=color, marker=".", ms=4, lw=1, capsize=2, label=label)
        ax.axhline(int(level) / 100, color="k", ls="--", lw=0.8)
        ax.set_xlabel("ℓ")
        ax.set_title(f"{level} % interval")
    if by_brightness:
        _brightness_panel(axes[2], by_brightness)
    axes[0].set_ylabel("coverage (fraction of test maps)")
    axes[0].set_ylim(0, 1.02)
    # between the calibrated curves (near 0.95) and the raw ones (below 0.5), clear of both
    axes[1].legend(loc="center right", bbox_to_anchor=(1.0, 0.6), fontsize=8)
    fig.suptitle(f"Spectrum-interval coverage ({metrics['mc_passes']} MC passes, {n} test maps)")
    fig.tight_layout()
    return fig


def _brightness_panel(ax, groups: dict) -> None:
    """Calibrated coverage (mean over ℓ) per dust-brightness group, 68 % and 95 %, with map counts."""
    counts = np.asarray(groups["n"])
    labels = ["Q1", "Q2", "Q3", "Q4", "brighter"]
    x = np.arange(len(counts))
    for level, color in (("68", "C3"), ("95", "C4")):
        p = np.array([np.nan if v is None else v for v in groups[f"coverage_{level}"]], dtype=float)
        err = np.sqrt(p * (1 - p) / np.maximum(counts, 1))
        ax.errorbar(x, p, yerr=err, color=color, marker="o", ms=4, lw=1, capsize=2, label=f"{level} % calibrated")
        ax.axhline(int(level) / 100, color="k", ls="--", lw=0.8)
    ax.set_xticks(x, [f"{name}\nn={c}" for name, c in zip(labels, counts)], fontsize=8)
    ax.set_xlabel("dust brightness: quartiles of the calibration maps, and beyond them")
    ax.set_title("calibrated coverage by dust brightness")
    ax.legend(fontsize=8, loc="lower left")
