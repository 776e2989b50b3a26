"""The evaluation commands: ``dustcmb gan evaluate`` (GAN against the real patches and two baselines),
``dustcmb separation evaluate`` (ResUNet against the ILC), ``dustcmb ablate`` (the GAN recipe ablation),
``dustcmb transfer`` (GAN dust against real dust as the ResUNet's training set) and ``dustcmb report``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from dustcmb.cliutil import ParamsOption, load, resolve_device
from dustcmb.separation.cli import DEFAULT_MODEL as SEPARATION_MODEL
from dustcmb.simulation.cli import DEFAULT_SEPARATION

DEVICE_HELP = "auto | cpu | cuda (generation and nearest-neighbour distances); default: device in the parameter file."
SEPARATION_DEVICE_HELP = "auto | cpu | cuda (MC-dropout passes); default: device in the parameter file."


def gan_evaluate_command(
    patches: Path = typer.Option(Path("data/patches"), help="Real patch set (patches.npy + meta.json, MJy/sr)."),
    model: Path = typer.Option(Path("models/gan"), help="Trained generator folder (from `dustcmb gan train`)."),
    metrics: Path = typer.Option(Path("metrics/gan.json"), help="Output metrics (JSON)."),
    plots: Path = typer.Option(Path("plots/gan"), help="Output folder of the figures (PNG), replaced as a whole."),
    device: str = typer.Option(None, help=DEVICE_HELP),
    params: Path = ParamsOption,
) -> None:
    """Histogram intersection, spectra, Minkowski functionals and memorisation: GAN vs baselines."""
    from dustcmb.evaluation.baselines import BASELINES
    from dustcmb.evaluation.gan import evaluate

    p = load(params)
    device = resolve_device(device or p.device)
    result = evaluate(p, patches, model, metrics, plots, device=device, params_file=params)
    console = Console(stderr=True)
    console.print(f"wrote {metrics} and {plots}/ ({'synthetic sky' if p.sky.source == 'synthetic' else p.sky.source})")
    for name, row in {"GAN": result, **{label: result[key] for key, label in BASELINES.items()}}.items():
        console.print(f"{name:>20}: d_F {row['frechet_distance']:.3g}, HI {100 * row['histogram_intersection']:.1f} "
                      f"± {100 * row['histogram_intersection_std']:.1f} %, Minkowski in band "
                      f"{row['minkowski_v0_in_band']:.2f}/{row['minkowski_v1_in_band']:.2f}/"
                      f"{row['minkowski_v2_in_band']:.2f}, NN ratio {row['nearest_neighbour_ratio']:.2f}",
                      soft_wrap=True)


def separation_evaluate_command(
    data: Path = typer.Option(DEFAULT_SEPARATION, help="Separation data (from `dustcmb separation data`)."),
    model: Path = typer.Option(SEPARATION_MODEL, help="Trained ResUNet folder (from `dustcmb separation train`)."),
    metrics: Path = typer.Option(Path("metrics/separation.json"), help="Output metrics JSON."),
    plots: Path = typer.Option(Path("plots/separation"), help="Output folder for the PNG figures."),
    device: str = typer.Option(None, help=SEPARATION_DEVICE_HELP),
    params: Path = ParamsOption,
) -> None:
    """MC-dropout posterior on the test maps, coverage per ℓ, ILC baseline, Figs 6-7."""
    from dustcmb.evaluation.separation import evaluate

    p = load(params)
    device = resolve_device(device or p.device)
    result = evaluate(p, data, model, metrics, plots, device=device, params_file=params)
    ilc = result["ilc"]
    Console(stderr=True).print(
        f"wrote {metrics}, {plots}: coverage 68 % {result['coverage_68']:.3f}, 95 % {result['coverage_95']:.3f}; "
        f"ℓ_max(1 %) ResUNet {result['ell_max_1pct']:.0f} / ILC {ilc['ell_max_1pct']:.0f}; "
        f"map RMSE ResUNet {result['map_rmse_uK']:.3g} µK / ILC {ilc['map_rmse_uK']:.3g} µK "
        f"(monopole removed: {result['map_rmse_nomono_uK']:.3g} / {ilc['map_rmse_nomono_uK']:.3g} µK)")


def report_command(
    readme: Path = typer.Option(Path("README.md"), help="File whose results section is replaced."),
    gan_metrics: Path = typer.Option(Path("metrics/gan.json"), help="From `dustcmb gan evaluate`."),
    separation_metrics: Path = typer.Option(Path("metrics/separation.json"),
                                            help="From `dustcmb separation evaluate`."),
    figures: Path = typer.Option(Path("docs/figures"), help="Where the two README figures are copied."),
    cases: Path = typer.Option(None, help="Folder of <case>.json separation metrics: fill the README's sky-case "
                                          "table instead (see README, 'Sky cases')."),
    tuned: Path = typer.Option(None, help="Separation metrics of a run with tuned dropout rates: fill the README's "
                                          "tuning table (default rates: --separation-metrics) instead."),
    params: Path = ParamsOption,
) -> None:
    """Regenerate the README's results tables and figures from the metrics files."""
    from dustcmb.evaluation.report import update_cases, update_readme, update_tuning

    load(params)
    if cases is not None:
        section = update_cases(readme, cases, figures)
    elif tuned is not None:
        section = update_tuning(readme, separation_metrics, tuned)
    else:
        section = update_readme(readme, gan_metrics, separation_metrics, figures)
    Console(stderr=True).print(f"updated {readme} ({len(section.splitlines())} lines) and {figures}/")


def ablate_command(
    out: Path = typer.Option(Path("runs/gan_ablation"), help="Folder of the runs and summary.json (resumable)."),
    variants: str = typer.Option("", help="Comma-separated variant names; default: every one in "
                                          "dustcmb.evaluation.ablation.VARIANTS."),
    seeds: int = typer.Option(3, min=1, help="Training seeds per variant: seed, seed + 1, ..."),
    first_seed: int = typer.Option(0, min=0, help="Start at this seed index (e.g. a second process on "
                                                  "the later seeds; use its own DVC_ROOT for MLflow)."),
    patches: Path = typer.Option(Path("data/patches"), help="Patch set (`dvc repro patches`)."),
    readme: Path = typer.Option(None, help="Also fill this file's <!-- ablation:start/end --> table."),
    device: str = typer.Option(None, help=DEVICE_HELP),
    params: Path = ParamsOption,
) -> None:
    """GAN recipe ablation: train and evaluate each variant over seeds; mean ± std on the training and
    held-out regions."""
    from dustcmb.evaluation.ablation import VARIANTS, ablation_markdown, run_ablation
    from dustcmb.evaluation.report import ABLATION_END, ABLATION_START, replace_section

    p = load(params)
    device = resolve_device(device or p.device)
    names = [v.strip() for v in variants.split(",") if v.strip()] or list(VARIANTS)
    summary = run_ablation(p, patches, out, names, seeds, device=device, first_seed=first_seed)
    table = ablation_markdown(summary)
    if readme is not None:
        replace_section(readme, ABLATION_START, ABLATION_END, table)
    Console(stderr=True).print(f"wrote {out}/summary.json\n{table}", soft_wrap=True)


def transfer_command(
    out: Path = typer.Option(Path("runs/transfer"), help="Folder of the oracle's data and model and of "
                                                         "transfer.json (resumable)."),
    patches: Path = typer.Option(Path("data/patches"), help="Patch set; its train region is the oracle's dust."),
    gan_data: Path = typer.Option(DEFAULT_SEPARATION, help="The pipeline's separation data (GAN dust)."),
    gan_model: Path = typer.Option(SEPARATION_MODEL, help="The ResUNet trained on it (`dvc repro`)."),
    readme: Path = typer.Option(None, help="Also fill this file's <!-- transfer:start/end --> table."),
    device: str = typer.Option(None, help=SEPARATION_DEVICE_HELP),
    params: Path = ParamsOption,
) -> None:
    """Transfer test: the ResUNet trained on GAN dust against the same ResUNet trained on real
    train-region dust, both on the held-out real sky; writes transfer_rmse_ratio."""
    from dustcmb.evaluation.report import TRANSFER_END, TRANSFER_START, replace_section
    from dustcmb.evaluation.transfer import run_transfer, transfer_markdown

    p = load(params)
    device = resolve_device(device or p.device)
    result = run_transfer(p, patches, gan_data, gan_model, out, device=device)
    table = transfer_markdown(result)
    if readme is not None:
        replace_section(readme, TRANSFER_START, TRANSFER_END, table)
    Console(stderr=True).print(f"wrote {out}/transfer.json and {out}/figures/transfer.png\n{table}", soft_wrap=True)
