"""``dustcmb gan``: train the dust GAN and sample maps from it."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from dustcmb.cliutil import ParamsOption, load, resolve_device

DEFAULT_PATCHES = Path("data/patches")
DEFAULT_MODEL = Path("models/gan")
DEFAULT_CHECKPOINTS = Path("checkpoints/gan")
DEFAULT_SAMPLES = Path("data/gan_samples/samples.npy")
DEVICE_HELP = "auto | cpu | cuda; default: device in the parameter file."
THREADS_HELP = "CPU threads for torch (default: torch's choice); 1 is often faster on a busy shared machine."

def _set_threads(threads: int | None) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


gan_app = typer.Typer(help="The dust DCGAN: train it, sample maps from it.", no_args_is_help=True)


@gan_app.command("train")
def train_command(
    patches: Path = typer.Option(DEFAULT_PATCHES, help="Patch set (patches.npy + meta.json, MJy/sr)."),
    out: Path = typer.Option(DEFAULT_MODEL, help="Output folder: generator.pt, config.json, history.json."),
    checkpoints: Path = typer.Option(DEFAULT_CHECKPOINTS, help="Resumable checkpoint folder; keep it "
                                     "outside DVC outputs (DVC deletes those before a stage runs)."),
    resume: bool = typer.Option(False, "--resume", help="Continue a killed run from its last checkpoint."),
    device: str = typer.Option(None, help=DEVICE_HELP),
    threads: int = typer.Option(None, min=1, help=THREADS_HELP),
    params: Path = ParamsOption,
) -> None:
    """Train the generator and both discriminators; keep the state with the lowest Fréchet distance."""
    from dustcmb.gan.train import train

    p = load(params)
    device = resolve_device(device or p.device)
    _set_threads(threads)
    config = train(p, patches, out, checkpoints, device=device, resume=resume, params_file=params)
    Console(stderr=True).print(
        f"wrote {out}: best d_F {config['best_d_F']:.4g} at step {config['best_step']} "
        f"(step 0: {config['initial_d_F']:.4g}), {config['train_seconds']:.0f} s on {device}")


@gan_app.command("sample")
def sample_command(
    n: int = typer.Option(..., "-n", help="Number of maps to draw."),
    seed: int = typer.Option(None, help="Random seed; default: seed in the parameter file."),
    out: Path = typer.Option(DEFAULT_SAMPLES, help="Output .npy: float32 [n, N, N] in MJy/sr (353 GHz)."),
    model: Path = typer.Option(DEFAULT_MODEL, help="Trained generator folder (from `dustcmb gan train`)."),
    device: str = typer.Option(None, help=DEVICE_HELP),
    threads: int = typer.Option(None, min=1, help=THREADS_HELP),
    params: Path = ParamsOption,
) -> None:
    """Draw maps from the trained generator, in batches, into a memory-mapped .npy."""
    from dustcmb.gan.sample import sample_to_npy

    p = load(params)
    device = resolve_device(device or p.device)
    _set_threads(threads)
    seed = p.seed if seed is None else seed
    sample_to_npy(model, n, out, seed=seed, batch=p.gan.sample_batch, device=device,
                  symmetrise=p.gan.symmetrise_samples)
    Console(stderr=True).print(f"wrote {out}: {n} maps (MJy/sr), seed {seed}")
