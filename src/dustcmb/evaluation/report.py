"""The README's results section, regenerated from ``metrics/gan.json`` and ``metrics/separation.json``.

The section lives between two HTML comment markers in README.md, so re-running ``dustcmb report``
after a new ``dvc repro`` replaces the numbers without touching the rest of the file. Its figures
are copied to ``docs/figures/`` (``plots/`` is a DVC output and not in git).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from dustcmb.errors import InputError
from dustcmb.evaluation.separation_plots import cases_figure
from dustcmb.storage import atomic_file

START, END = "<!-- results:start -->", "<!-- results:end -->"
CASES_START, CASES_END = "<!-- cases:start -->", "<!-- cases:end -->"
ABLATION_START, ABLATION_END = "<!-- ablation:start -->", "<!-- ablation:end -->"
TRANSFER_START, TRANSFER_END = "<!-- transfer:start -->", "<!-- transfer:end -->"
TUNING_START, TUNING_END = "<!-- tuning:start -->", "<!-- tuning:end -->"
CASES_FIGURE = "separation_cases.png"
FIGURES = {"plots/patches/splits.png": "splits.png", "plots/gan/samples.png": "gan_samples.png",
           "plots/gan/spectra.png": "gan_spectra.png", "plots/separation/spectra.png": "separation_spectra.png",
           "plots/separation/coverage.png": "separation_coverage.png"}

def _ell_range(bounds) -> str:
    return "none" if bounds[1] == 0 else f"{bounds[0]:.0f}–{bounds[1]:.0f}"


def _span(per_ell) -> str:
    return f"{min(per_ell):.3f}–{max(per_ell):.3f}" if max(per_ell) < 0.1 else f"{min(per_ell):.2f}–{max(per_ell):.2f}"


def _groups(coverages) -> str:
    return " / ".join("–" if c is None else f"{c:.2f}" for c in coverages)


def _errors(section: dict) -> str:
    return f"{section['calibration_error_68']:.3f} / {section['calibration_error_95']:.3f}"


def _exponents(section: dict) -> str:
    leak, mc = (np.median(section[f"{w}_exponent_68_per_ell"]) for w in ("leak", "mc"))
    return f"{leak:.2f} / {mc:.2f}"


GAN_ROWS = [  # (label, key, format)
    ("Fréchet distance d_F of log10 C_ℓ (lower is better)", "frechet_distance", "{:.3g}"),
    ("pixel-histogram intersection (paper: 0.94)", "histogram_intersection", "{:.3f}"),
    ("spectrum bins agreeing with the real set (95 %, both sets' errors)", "spectrum_in_band", "{:.2f}"),
    ("V0 thresholds agreeing with the real set (95 %, both sets' errors)", "minkowski_v0_in_band", "{:.2f}"),
    ("V1 thresholds agreeing with the real set (95 %, both sets' errors)", "minkowski_v1_in_band", "{:.2f}"),
    ("V2 thresholds agreeing with the real set (95 %, both sets' errors)", "minkowski_v2_in_band", "{:.2f}"),
    ("streak test: anisotropy bins agreeing with the real set (95 %)", "anisotropy_in_band", "{:.2f}"),
    ("frame test: border-strip bins agreeing with the real set (95 %)", "border_in_band", "{:.2f}"),
    ("grain test: power above 0.75 ℓ_Nyq over the real set's (1 = band-limited like the sky)",
     "grain_power_ratio", "{:.3g}"),
    ("nearest-neighbour ratio (≈1: no memorisation)", "nearest_neighbour_ratio", "{:.2f}"),
]
SEPARATION_ROWS = [  # (label, key, format: a str.format pattern or a callable)
    ("coverage of the 68 % interval (target 0.68; paper 0.93)", "coverage_68", "{:.3f}"),
    ("coverage of the 95 % interval (target 0.95)", "coverage_95", "{:.3f}"),
    ("mean over ℓ of abs(coverage − 0.68), raw passes", "calibration_error_68", "{:.3f}"),
    ("same, interval centred on the estimate", "centred.calibration_error_68", "{:.3f}"),
    ("same, after per-ℓ calibration with the width model (target ≤ 0.02)", "calibrated.calibration_error_68",
     "{:.3f}"),
    ("mean over ℓ of abs(coverage − 0.95), same calibration (target ≤ 0.02)", "calibrated.calibration_error_95",
     "{:.3f}"),
    ("68 % calibrated coverage, min–max over ℓ bins (target 0.65–0.71)", "calibrated.coverage_68_per_ell",
     _span),
    ("95 % calibrated coverage, min–max over ℓ bins (target 0.93–0.97)", "calibrated.coverage_95_per_ell",
     _span),
    ("68 % calibrated coverage by dust brightness: calibration quartiles Q1 / Q2 / Q3 / Q4 / brighter",
     "calibrated.by_brightness.coverage_68", _groups),
    ("95 % calibrated coverage, same groups", "calibrated.by_brightness.coverage_95", _groups),
    ("test maps in those groups", "calibrated.by_brightness.n", lambda n: " / ".join(map(str, n))),
    ("calibration error 68 % / 95 %, test maps within the calibration maps' brightness (Q1–Q4)",
     "calibrated.within_range", _errors),
    ("68 % calibrated coverage of those maps, min–max over ℓ bins", "calibrated.within_range.coverage_68_per_ell",
     _span),
    ("standard error of a bin's 68 % calibrated coverage, dust maps as the unit (min–max over ℓ)",
     "calibrated.coverage_68_se_per_ell", _span),
    ("same, 95 %", "calibrated.coverage_95_se_per_ell", _span),
    ("width model at 68 %: exponents of the leakage / MC widths (median over ℓ)", "calibrated", _exponents),
    ("calibration error 68 % / 95 %, MC-dropout width alone", "calibrated_mc", _errors),
    ("calibration error 68 % / 95 %, dust-leakage width alone", "calibrated_leakage", _errors),
    ("pixels within one MC σ of the truth (target 0.68)", "pixel_coverage_68", "{:.3f}"),
    ("ℓ range with mean spectrum bias within 1 % (2σ)", "ell_range_1pct", _ell_range),
    ("ℓ_max with median spectrum error < 1 %", "ell_max_1pct", "{:.0f}"),
    ("map RMSE [µK_CMB]", "map_rmse_uK", "{:.3g}"),
    ("map RMSE without the patch mean [µK_CMB]", "map_rmse_nomono_uK", "{:.3g}"),
]
SEPARATION_COLUMNS = {"ilc": "ILC", "hilc": "harmonic ILC", "cilc": "constrained ILC"}  # baselines.<name>: header


def _load(path: Path) -> dict:
    if not path.is_file():
        raise InputError(f"{path} not found; run `dvc repro` first")
    return json.loads(path.read_text())


def _cell(metrics: dict, key: str, fmt) -> str:
    value = metrics
    for part in key.split("."):  # dotted keys reach into nested sections (``calibrated.…``)
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return "–"
    return fmt(value) if callable(fmt) else fmt.format(value)


def _held_out_heading(gan: dict) -> str:
    """What the held-out table compares: which maps stand against the held-out patches."""
    held = gan["held_out"]
    drawn = (f"the conditional GAN draws {held['n_compared']} maps at those latitudes"
             if gan.get("condition_latitude") else
             f"the GAN, which takes no latitude, is judged on its {gan['n_generated']} training-region maps")
    return (f"**Against the held-out region** ({held['n_real']} validation + test patches; the training patches "
            f"and both baselines are drawn from the held-out patches' latitude rings, {held['n_compared']} maps "
            f"each; {drawn}):")


def results_markdown(gan: dict, separation: dict) -> str:
    """Markdown tables for the GAN (vs baselines) and the ResUNet (vs the classical ``baselines``)."""
    sky = "synthetic stand-in sky" if gan.get("sky_source") == "synthetic" else f"sky: {gan.get('sky_source')}"
    held = gan["held_out"]
    split = ("held-out sky regions" if gan["is_held_out"]
             else "the paper's random halves of overlapping patches: NOT held out")
    lines = [f"Quick-look profile ({gan['npix']}² patches, {sky}; regenerate with `dustcmb report`). "
             f"Split: {split}.", "",
             f"**GAN against baselines** ({gan['n_real']} training-region patches vs {gan['n_generated']} generated "
             f"maps, {gan['settings']['n_bootstrap']} bootstrap resamples):", "",
             "| statistic | GAN | Gaussian fields | log-normal fields |", "|---|---|---|---|"]
    for label, key, fmt in GAN_ROWS:
        columns = (gan, gan["baseline_gaussian"], gan["baseline_lognormal"])
        lines.append(f"| {label} | " + " | ".join(_cell(m, key, fmt) for m in columns) + " |")
    lines += ["", _held_out_heading(gan), "",
              "| statistic | GAN | training patches at those latitudes (floor) | Gaussian fields | log-normal fields |",
              "|---|---|---|---|---|"]
    for label, key, fmt in GAN_ROWS:
        columns = (held["gan"], held["real"], held["baseline_gaussian"], held["baseline_lognormal"])
        lines.append(f"| {label} | " + " | ".join(_cell(m, key, fmt) for m in columns) + " |")
    cal, sizes = gan["in_band_calibration"], gan["real_halves_sizes"]
    lines += ["", f"Floor: two sky-disjoint halves of the training region ({sizes[0]} and {sizes[1]} patches) give "
              f"d_F = {gan['frechet_distance_real_halves']:.3g}, or {gan['frechet_floor']:.3g} scaled to the "
              f"{gan['n_real']}-vs-{gan['n_generated']} comparison above. Calibration of the in-band test "
              f"(one half against the other, nominal 0.95): spectrum {cal['spectrum_in_band']:.2f}, "
              f"V0 {cal['minkowski_v0_in_band']:.2f}, V1 {cal['minkowski_v1_in_band']:.2f}, "
              f"V2 {cal['minkowski_v2_in_band']:.2f}, anisotropy {cal['anisotropy_in_band']:.2f}, "
              f"border {cal['border_in_band']:.2f}. Bands are block bootstraps over sky regions; under them "
              f"the real patches' pixel histogram intersects itself (two independent resamples) at "
              f"{gan['histogram_intersection_real']:.3f} ± {gan['histogram_intersection_real_std']:.3f}, "
              "the most a generator of exactly the real maps can expect.", "",
              f"**ResUNet against classical methods** ({separation['n_test']} test maps: "
              f"{separation['n_test_dust_maps']} test-region dust maps × {separation['realisations_per_map']} "
              f"CMB + noise draws, instrument `{separation['instrument']}`, {separation['mc_passes']} MC-dropout "
              "passes; the constrained ILC is given the simulation's dust SED):", "",
              "| figure of merit | ResUNet (MC dropout) | " + " | ".join(SEPARATION_COLUMNS.values()) + " |",
              "|---|---|" + "---|" * len(SEPARATION_COLUMNS)]
    baselines = separation.get("baselines", {})
    for label, key, fmt in SEPARATION_ROWS:
        cells = [_cell(separation, key, fmt)]
        cells += ["–" if "coverage" in key or "calibration" in key else _cell(baselines.get(name, {}), key, fmt)
                  for name in SEPARATION_COLUMNS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "![Patch footprints by split](docs/figures/splits.png)", "",
              "![Real patches, GAN samples and both baselines](docs/figures/gan_samples.png)", "",
              "![GAN spectra](docs/figures/gan_spectra.png)", "",
              "![Cleaned spectra](docs/figures/separation_spectra.png)", "",
              "![Spectrum-interval coverage per ℓ: raw, centred and calibrated](docs/figures/separation_coverage.png)"]
    return "\n".join(lines)


def mean_residual_ratio(ell, scores: dict, ell_min: float = 30.0) -> float:
    """Mean over the reported bins with ℓ > ``ell_min`` of one method's residual power over the CMB power."""
    ratio = np.asarray(scores["residual_power_ratio_per_ell"])
    return float(ratio[np.asarray(ell) > ell_min].mean())


def cases_markdown(cases: dict[str, dict]) -> str:
    """Three tables (map RMSE, residual power over ℓ > 30, the 1 %-bias ℓ range): one row per case, one
    column per method."""
    methods = {"ResUNet": None} | {label: name for name, label in SEPARATION_COLUMNS.items()}
    figures = [("map RMSE [µK_CMB]", lambda ell, s: f"{s['map_rmse_uK']:.3g}"),
               ("residual power / CMB power, mean over the bins with ℓ > 30",
                lambda ell, s: f"{mean_residual_ratio(ell, s):.2e}"),
               ("ℓ range where abs(mean spectrum bias) < 1 % (2σ)",
                lambda ell, s: _cell(s, "ell_range_1pct", _ell_range))]
    lines = []
    for title, value in figures:
        lines += [f"**{title}**", "", "| case | test maps | " + " | ".join(methods) + " |",
                  "|---|---|" + "---|" * len(methods)]
        for case, metrics in cases.items():
            scores = [metrics if name is None else metrics["baselines"][name] for name in methods.values()]
            lines.append(f"| {case} | {metrics['n_test']} | "
                         + " | ".join(value(metrics["ell"], s) for s in scores) + " |")
        lines.append("")
    return "\n".join(lines).rstrip()


def update_cases(readme: Path, cases_dir: Path, figures_dir: Path) -> str:
    """Replace the README's cases section with the table of every ``<case>.json`` in ``cases_dir``, and its figure."""
    paths = sorted(Path(cases_dir).glob("*.json"))
    if not paths:
        raise InputError(f"{cases_dir} holds no <case>.json separation metrics; see README, 'Sky cases'")
    cases = {p.stem: _load(p) for p in paths}
    section = cases_markdown(cases) + f"\n\n![Residual power by case](docs/figures/{CASES_FIGURE})"
    figures_dir.mkdir(parents=True, exist_ok=True)
    fig = cases_figure(cases, SEPARATION_COLUMNS)
    fig.savefig(figures_dir / CASES_FIGURE, dpi=110)
    plt.close(fig)
    replace_section(readme, CASES_START, CASES_END, section)
    return section


def _rates(metrics: dict) -> str:
    return ", ".join(f"{r:.3g}" for r in metrics["dropout"]) if "dropout" in metrics else "–"


def tuning_markdown(default: dict, tuned: dict) -> str:
    """The default and tuned dropout rates side by side on the same test maps: a summary table, then
    coverage per ℓ bin at 68 % and 95 %, raw (the passes' quantiles) and calibrated (width model)."""
    runs = {"default rates": default, "tuned rates": tuned}
    if default["ell"] != tuned["ell"] or default["n_test"] != tuned["n_test"]:
        raise InputError("the default and tuned metrics come from different test sets or ℓ bins; "
                         "evaluate both runs on the same `data/separation`")
    if not all("calibration_error_68" in m.get("calibrated", {}) for m in runs.values()):
        raise InputError("a metrics file has no calibrated section (no calibration maps); "
                         "raise separation.calibration_maps and evaluate again")
    rows = [("`separation.dropout` (outermost → innermost)", _rates),
            ("calibration error 68 % / 95 %, raw", _errors),
            ("calibration error 68 % / 95 %, calibrated (target ≤ 0.02)", lambda m: _errors(m["calibrated"])),
            ("calibrated coverage per ℓ, 68 % (target 0.65–0.71)",
             lambda m: _span(m["calibrated"]["coverage_68_per_ell"])),
            ("calibrated coverage per ℓ, 95 % (target 0.93–0.97)",
             lambda m: _span(m["calibrated"]["coverage_95_per_ell"])),
            ("width model at 68 %: exponents of the leakage / MC widths (median over ℓ)",
             lambda m: _exponents(m["calibrated"])),
            ("map RMSE [µK_CMB]", lambda m: f"{m['map_rmse_uK']:.3g}"),
            ("mean per-pixel MC standard deviation [µK_CMB]", lambda m: f"{m['mean_pixel_std_uK']:.3g}")]
    lines = [f"{default['n_test']} test maps, {default['mc_passes']} MC-dropout passes, instrument "
             f"`{default['instrument']}`; calibrated on {default.get('n_calibration', 0)} validation items.", "",
             "| | " + " | ".join(runs) + " |", "|---|---|---|"]
    lines += [f"| {label} | " + " | ".join(value(m) for m in runs.values()) + " |" for label, value in rows]
    for level in ("68", "95"):
        lines += ["", f"**coverage of the {level} % interval per ℓ bin**", "",
                  "| ℓ | default, raw | default, calibrated | tuned, raw | tuned, calibrated |",
                  "|---|---|---|---|---|"]
        key = f"coverage_{level}_per_ell"
        columns = [section[key] for m in runs.values() for section in (m, m["calibrated"])]
        lines += [f"| {ell:.0f} | " + " | ".join(f"{c[i]:.2f}" for c in columns) + " |"
                  for i, ell in enumerate(default["ell"])]
    return "\n".join(lines)


def update_tuning(readme: Path, default_path: Path, tuned_path: Path) -> str:
    """Replace the README's tuning section with :func:`tuning_markdown` of two separation metrics files."""
    section = tuning_markdown(_load(default_path), _load(tuned_path))
    replace_section(readme, TUNING_START, TUNING_END, section)
    return section


def replace_section(readme: Path, start: str, end: str, section: str) -> None:
    text = readme.read_text()
    if start not in text or end not in text:
        raise InputError(f"{readme} has no '{start}' ... '{end}' markers to fill")
    head, rest = text.split(start, 1)
    tail = rest.split(end, 1)[1]
    with atomic_file(readme) as tmp:
        tmp.write_text(f"{head}{start}\n{section}\n{end}{tail}")


def update_readme(readme: Path, gan_path: Path, separation_path: Path, figures_dir: Path) -> str:
    """Replace the results section of ``readme`` and copy the figures; return the new section."""
    section = results_markdown(_load(gan_path), _load(separation_path))
    figures_dir.mkdir(parents=True, exist_ok=True)
    for source, name in FIGURES.items():
        shutil.copyfile(_existing(readme.parent / source), figures_dir / name)
    replace_section(readme, START, END, section)
    return section


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise InputError(f"{path} not found; run `dvc repro` first")
    return path
