"""Figures of the GAN evaluation, after the paper's Figs 1–5, plus the artefact tests and a memorisation/latent figure.

Each figure says what it shows in its title and axes (units included) and carries a "synthetic sky"
label when the patches come from the offline stand-in rather than the Planck map. Inputs are the
:class:`dustcmb.evaluation.gan.MapSet` s (real first, then GAN, then baselines) and the arrays that
:func:`dustcmb.evaluation.gan.compute_metrics` returns for plotting.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np

from dustcmb.evaluation.artefacts import WEDGE_HALF_WIDTH_DEG, WEDGES
from dustcmb.evaluation.baselines import BASELINES
from dustcmb.stats.borders import BORDER_DEPTHS_PX
from dustcmb.stats.power import dl_from_cl
from dustcmb.storage import atomic_dir

COLOURS = {"real": "black", "gan": "tab:orange", "baseline_gaussian": "tab:blue",
           "baseline_lognormal": "tab:green"}
N_SHOWN = 6  # maps per row of the sample grid
SYNTHETIC_NOTE = "SYNTHETIC SKY: offline stand-in, not Planck"
UNIT_LABEL = "u = scaled ln $I_{353}$ (unit domain)"


def write_figures(plots_dir: Path, sets: list, figures: dict, synthetic: bool) -> list[Path]:
    """Draw every figure into ``plots_dir`` (replaced atomically); return the final PNG paths."""
    makers = {"samples": samples_figure, "pixel_pdf": _pixel_pdf, "spectra": _spectra,
              "power_slices": _power_slices, "minkowski": _minkowski, "anisotropy": _anisotropy,
              "border": _border, "memorisation": _memorisation}
    with atomic_dir(plots_dir) as tmp:
        for name, maker in makers.items():
            fig = maker(sets, figures | {"synthetic": synthetic})
            fig.savefig(tmp / f"{name}.png", dpi=110)
            plt.close(fig)
    return [plots_dir / f"{name}.png" for name in makers]


def _title(fig, text: str, figures: dict) -> None:
    meta = figures["meta"]
    sky = f"353 GHz dust ({SYNTHETIC_NOTE})" if figures["synthetic"] else "353 GHz dust"
    fig.suptitle(f"{text}\n{sky}, {len(figures['nn']['real'])} patches of "
                 f"{meta['size_deg']:g}°×{meta['size_deg']:g}° at {meta['npix']}² px", fontsize=11)


def samples_figure(sets: list, figures: dict):
    """Fig 1: maps spread evenly through each set (the real set runs through latitude), unit domain."""
    shown = np.linspace(0, len(sets[0].unit) - 1, N_SHOWN).astype(int)
    fig, axes = plt.subplots(len(sets), N_SHOWN, figsize=(1.9 * N_SHOWN + 1.2, 2.0 * len(sets) + 0.9),
                             squeeze=False, layout="constrained")
    for row, mapset in enumerate(sets):
        for col, index in enumerate(shown):
            ax = axes[row, col]
            image = ax.imshow(mapset.unit[index], vmin=-1, vmax=1, cmap="inferno", origin="upper")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row, 0].set_ylabel(mapset.label, fontsize=10)
    fig.colorbar(image, ax=axes, shrink=0.8, label=UNIT_LABEL)
    _title(fig, "Sample maps: real patches, GAN and baselines (north up)", figures)
    return fig


def _band(ax, x, result, name, label, marker=None):
    """Mean line and 95 % bootstrap band of a BootstrapResult; real on top, baselines dashed."""
    low, high = result.bands[result.percentiles.index(2.5)], result.bands[result.percentiles.index(97.5)]
    on_top = 3 if name == "real" else 2
    ax.fill_between(x, low, high, color=COLOURS[name], alpha=0.3, lw=0, zorder=on_top)
    ax.plot(x, result.mean, "--" if name in BASELINES else "-", color=COLOURS[name], lw=1.5,
            label=label, zorder=on_top, marker=marker, ms=4)


def _entries(result, index):
    """The entries ``index`` of a flattened BootstrapResult (one wedge, one border statistic)."""
    return dataclasses.replace(result, mean=result.mean[index], std=result.std[index],
                               bands=result.bands[:, index], replicates=result.replicates[:, index])


def _pixel_pdf(sets: list, figures: dict):
    """Fig 2: pixel PDF of the unit-domain maps, linear and log axes, bootstrap bands."""
    meta, scores = figures["meta"], figures["scores"]
    bins = figures["means"]["real"]["pdf"].mean.size
    centres = np.linspace(-1, 1, bins + 1)[:-1] + 1.0 / bins
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), layout="constrained")
    for ax, scale in zip(axes, ("linear", "log")):
        for mapset in sets:
            label = mapset.label
            if mapset.name in scores:
                s = scores[mapset.name]
                hi, hi_std = 100 * s["histogram_intersection"], 100 * s["histogram_intersection_std"]
                label += f" (HI {hi:.1f} ± {hi_std:.1f} %)"
            _band(ax, centres, figures["means"][mapset.name]["pdf"], mapset.name, label)
        ax.set_yscale(scale)
        ax.set_xlabel(f"{UNIT_LABEL}\n(u = −1 ↔ {np.exp(meta['log_min']):.3g} MJy/sr, "
                      f"u = +1 ↔ {np.exp(meta['log_max']):.3g} MJy/sr)")
        ax.set_ylabel("pixel probability density [per unit u]")
        ax.set_title(f"{scale} scale, {bins} bins on [−1, 1]")
    axes[1].set_ylim(bottom=1e-4)
    axes[0].legend(fontsize=8, title="mean, 95 % bootstrap band; HI = histogram intersection with real",
                   title_fontsize=8)
    _title(fig, "Pixel distribution", figures)
    return fig


def _log_dl(ell: np.ndarray, cl: np.ndarray) -> np.ndarray:
    return np.log10(dl_from_cl(ell, cl))


def _spectra(sets: list, figures: dict):
    """Fig 3: D_ℓ of the maps in MJy/sr: mean of log10 and 68/95 % spread of individual maps."""
    ell, scores = figures["ell"], figures["scores"]
    fig, (ax, ratio) = plt.subplots(2, 1, figsize=(8, 7.5), sharex=True, height_ratios=(3, 1.3),
                                    layout="constrained")
    real_mean = _log_dl(ell, 10 ** figures["means"]["real"]["log_cl"].mean)
    for mapset in sets:
        colour = COLOURS[mapset.name]
        log_dl = _log_dl(ell, mapset.cl)
        mean = log_dl.mean(0)
        label = mapset.label + (f" ($d_F$ = {scores[mapset.name]['frechet_distance']:.3g})"
                                if mapset.name in scores else "")
        if mapset.name in ("real", "gan"):
            for low, high, alpha in ((2.5, 97.5, 0.15), (16, 84, 0.3)):
                lo, hi = np.percentile(log_dl, (low, high), axis=0)
                ax.fill_between(ell, 10**lo, 10**hi, color=colour, alpha=alpha, lw=0)
        style = "-" if mapset.name in ("real", "gan") else "--"
        ax.plot(ell, 10**mean, style, color=colour, lw=1.6, label=label)
        ratio.plot(ell, 10 ** (mean - real_mean), style, color=colour, lw=1.4)
    ax.set_yscale("log")
    ratio.set_xscale("log")
    ratio.set_yscale("log")
    ratio.set_xticks([t for t in (20, 50, 100, 200, 500, 1000, 2000) if ell[0] <= t <= ell[-1]])
    ratio.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ratio.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ratio.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ratio.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ratio.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_ylabel(r"$D_\ell = \ell(\ell+1)C_\ell/2\pi$  [(MJy/sr)$^2$]")
    ax.legend(fontsize=8, title="geometric mean over maps; bands: 68 % and 95 % of maps (real, GAN)",
              title_fontsize=8)
    ratio.axhline(1.0, color="grey", lw=0.8)
    ratio.set_ylabel("geometric mean / real")
    ratio.set_xlabel(r"multipole $\ell$")
    _title(fig, "Angular power spectra of the maps in MJy/sr (flat sky)", figures)
    return fig


def _power_slices(sets: list, figures: dict):
    """Fig 4: distribution over maps of D_ℓ at three multipoles."""
    ell, scores = figures["ell"], figures["scores"]
    fig, axes = plt.subplots(1, len(figures["slices"]), figsize=(14, 4.6), layout="constrained")
    for ax, j in zip(np.atleast_1d(axes), figures["slices"]):
        values = {s.name: _log_dl(ell[j], s.cl[:, j]) for s in sets}
        edges = np.linspace(min(v.min() for v in values.values()), max(v.max() for v in values.values()), 31)
        for mapset in sets:
            label = mapset.label
            if mapset.name in scores:
                label += f" (HI {100 * scores[mapset.name]['power_slices'][f'ell_{ell[j]:.0f}']:.0f} %)"
            kind = "stepfilled" if mapset.name == "real" else "step"
            ax.hist(values[mapset.name], bins=edges, histtype=kind, density=True, lw=1.5,
                    color=COLOURS[mapset.name], alpha=0.35 if kind == "stepfilled" else 1.0, label=label)
        ax.set_xlabel(rf"$\log_{{10}} D_\ell$ at $\ell$ = {ell[j]:.0f}  [$D_\ell$ in (MJy/sr)$^2$]")
        ax.set_ylabel("probability density [per dex]")
        ax.set_title(rf"$\ell$ = {ell[j]:.0f}")
        ax.legend(fontsize=7)
    _title(fig, "Power at three multipoles, distribution over maps", figures)
    return fig


def _minkowski(sets: list, figures: dict):
    """Fig 5: V0, V1, V2 of the unit-domain maps with 95 % bootstrap bands of the set mean."""
    nu, scores = figures["thresholds"], figures["scores"]
    names = ("$V_0$ (area fraction)", "$V_1$ (boundary length / 4A)  [1/px]", "$V_2$ (Euler char. / A)  [1/px²]")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8), layout="constrained")
    for k, (ax, name) in enumerate(zip(axes, names)):
        for mapset in sets:
            label = mapset.label
            if mapset.name in scores:
                label += f" ({100 * scores[mapset.name][f'minkowski_v{k}_in_band']:.0f} % in real band)"
            _band(ax, nu, figures["means"][mapset.name][f"v{k}"], mapset.name, label)
        ax.set_xlabel(rf"threshold $\nu$ in {UNIT_LABEL}")
        ax.set_ylabel(name)
        ax.legend(fontsize=7)
    axes[0].set_title("mean over maps, 95 % bootstrap band", fontsize=9)
    _title(fig, "Minkowski functionals of the excursion sets {u > ν}", figures)
    return fig


def _artefact_panels(sets: list, figures: dict, key: str, panels: list[tuple[str, float, slice]],
                     ticks: list[str], xlabel: str, title: str):
    """One panel per (y label, null value, entries of the flattened statistic): set means per bin, 95 % bands."""
    scores, x = figures["scores"], np.arange(len(ticks))
    cols = min(len(panels), 2)
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 4.8 * rows), layout="constrained", squeeze=False)
    axes = axes.ravel()
    for ax, (name, null, index) in zip(axes, panels):
        for mapset in sets:
            label = mapset.label
            if mapset.name in scores:
                label += f" ({100 * scores[mapset.name][f'{key}_in_band']:.0f} % of all bins in real band)"
            _band(ax, x, _entries(figures["means"][mapset.name][key], index), mapset.name, label, marker="o")
        ax.axhline(null, color="grey", lw=0.8)
        ax.set_xticks(x, ticks)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(name)
        ax.legend(fontsize=7)
    axes[0].set_title("mean over maps, 95 % bootstrap band", fontsize=9)
    _title(fig, title, figures)
    return fig


def _anisotropy(sets: list, figures: dict):
    """Power in wedges about each axis and each diagonal over the isotropic expectation, per ℓ band."""
    ticks = [f"{low:.0f}–{high:.0f}" for low, high in figures["anisotropy_bands"]]
    panels = [(f"power ±{WEDGE_HALF_WIDTH_DEG:g}° about the {wedge} / isotropic", 1.0,
               slice(k, None, len(WEDGES))) for k, wedge in enumerate(WEDGES)]  # entries [band, wedge]
    return _artefact_panels(sets, figures, "anisotropy", panels, ticks,
                            r"band of multipoles $\ell$ (u maps; streaks raise the wedge at right angles to them)",
                            "Streak test: anisotropy of the 2-D power spectrum (1 = isotropic)")


def _border(sets: list, figures: dict):
    """Border strips against the interior: rms gradient ratio and mean level offset per depth."""
    depths = (0, *BORDER_DEPTHS_PX)
    ticks = [f"{a}" if b == a + 1 else f"{a}–{b - 1}" for a, b in zip(depths[:-1], depths[1:])]
    n = len(ticks)  # entries [statistic, strip]
    panels = [("rms gradient in the strip / in the interior", 1.0, slice(0, n)),
              ("mean level of the strip − of the interior  [u]", 0.0, slice(n, 2 * n))]
    return _artefact_panels(sets, figures, "border", panels, ticks,
                            f"strip depth from the nearest edge [px] (interior: ≥ {BORDER_DEPTHS_PX[-1]} px)",
                            "Frame test: border strips against the interior, pixel space (u maps)")


def _memorisation(sets: list, figures: dict):
    """Nearest-neighbour distances to the real set, and spectral steps along latent paths."""
    nn, scores, latent = figures["nn"], figures["scores"], figures["latent"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8), layout="constrained")
    edges = np.linspace(0, max(v.max() for v in nn.values()) * 1.02, 50)
    for mapset in sets:
        label = ("real → other real (leave-one-out)" if mapset.name == "real" else
                 f"{mapset.label} → real (ratio of medians {scores[mapset.name]['nearest_neighbour_ratio']:.2f})")
        left.hist(nn[mapset.name], bins=edges, histtype="step", lw=1.5, color=COLOURS[mapset.name], label=label)
    left.set_xlabel("rms pixel difference to the nearest real map, best of 8 rotations/flips  [u]")
    left.set_ylabel("number of maps")
    left.set_title("memorisation: ratio ≈ 1 none, ≪ 1 copies of training maps", fontsize=9)
    left.legend(fontsize=7)
    steps = figures["latent_steps"]
    for i, path in enumerate(steps):
        right.plot(np.arange(1, steps.shape[1] + 1), path, color=COLOURS["gan"], lw=1, alpha=0.7,
                   label=None if i else "GAN, one line per path")
    right.axhline(latent["real_pair_spread"], color="black", ls="--",
                  label=f"median between two real maps ({latent['real_pair_spread']:.2f} dex)")
    right.set_yscale("log")
    right.set_xlabel("step along a straight latent path $z_a \\to z_b$")
    right.set_ylabel(r"rms over $\ell$ of $\Delta\log_{10} C_\ell$ per step  [dex]")
    right.set_title(f"latent smoothness: {steps.shape[0]} paths, largest step = "
                    f"{latent['latent_step_ratio']:.2f} × real spread", fontsize=9)
    right.legend(fontsize=8)
    _title(fig, "Memorisation and latent-space smoothness of the GAN", figures)
    return fig
