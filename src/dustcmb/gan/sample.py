"""Maps from a generator: unit-domain batches for evaluation, and float32 MJy/sr maps streamed to ``.npy``.

Maps are generated in fixed-size batches and written into a memory-mapped ``.npy`` (a temporary file
renamed into place at the end), so memory stays at one batch however many maps are asked for.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from dustcmb.errors import InputError
from dustcmb.gan.models import Generator
from dustcmb.gan.symmetry import random_symmetry
from dustcmb.patches.normalise import from_unit
from dustcmb.seeding import Stream, seed_everything, torch_rng
from dustcmb.storage import atomic_file


@torch.no_grad()
def generate_unit(generator: Generator, z: torch.Tensor, batch: int,
                  symmetry_rng: torch.Generator | None = None, condition=None) -> np.ndarray:
    """Unit-domain maps [n, N, N] (float32) for latent vectors ``z`` [n, latent], BatchNorm in eval mode.

    A conditional generator (``gan.condition_latitude``) also takes ``condition`` [n], each map's
    ``ln csc|b|`` (:func:`dustcmb.gan.condition.slab_log_column`). With ``symmetry_rng`` each map is
    turned into a random one of the 8 orientations of the square (:func:`dustcmb.gan.symmetry.random_symmetry`;
    ``gan.symmetrise_samples``). The generator's train/eval mode is restored afterwards, so the trainer
    can call this mid-run.
    """
    was_training = generator.training
    generator.eval()
    device = next(generator.parameters()).device
    condition = None if condition is None else torch.as_tensor(condition, dtype=torch.float32)
    out = []
    for i in range(0, len(z), batch):
        c = None if condition is None else condition[i:i + batch].to(device)
        maps = generator(z[i:i + batch].to(device), c)[:, 0].cpu()
        out.append((maps if symmetry_rng is None else random_symmetry(maps, symmetry_rng)).numpy())
    generator.train(was_training)
    return np.concatenate(out)


def load_generator(model_dir: Path, device: str = "cpu") -> tuple[Generator, dict]:
    """The trained generator (eval mode, on ``device``) and its ``config.json``.

    The config holds ``npix``, ``size_deg``, ``latent_dim``, ``gen_channels``, ``gen_padding`` (absent
    from models trained before it existed, which used zero padding), ``gen_noise`` and ``gen_fullres``
    (absent: off), ``gen_noise_fullres`` (absent: on), ``gen_bandlimit`` (absent: off), ``gen_crop_px``
    (absent: 0), ``gen_crop_random`` (absent: off), ``gen_level_spread`` (absent: off),
    ``condition_latitude`` (absent: off) with ``condition_values``, the ``ln csc|b|`` of the patch
    grid's centres that sampling draws from, and the normalisation ``log_min``/``log_max`` that maps
    unit-domain outputs back to MJy/sr.
    """
    config_path, weights_path = model_dir / "config.json", model_dir / "generator.pt"
    for path in (config_path, weights_path):
        if not path.is_file():
            raise InputError(f"{path} not found; run `dustcmb gan train` first (or pass --model DIR)")
    config = json.loads(config_path.read_text())
    generator = Generator(config["npix"], config["latent_dim"], config["gen_channels"],
                          config.get("gen_padding", "zeros"), config.get("gen_noise", False),
                          config.get("gen_fullres", False), config.get("gen_noise_fullres", True),
                          config.get("gen_bandlimit", False), config.get("gen_crop_px", 0),
                          config.get("condition_latitude", False), config.get("gen_crop_random", False),
                          config.get("gen_level_spread", False))
    generator.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
    return generator.to(device).eval(), config


@torch.no_grad()
def sample_to_npy(model_dir: Path, n: int, out_path: Path, seed: int, batch: int = 256,
                  device: str = "cpu", symmetrise: bool = False) -> Path:
    """Write ``n`` generated maps, float32 [n, N, N] in MJy/sr, to ``out_path`` (atomically).

    Parameters
    ----------
    model_dir : Path
        Output folder of ``dustcmb gan train``.
    n : int
        Number of maps.
    out_path : Path
        Destination ``.npy``.
    seed : int
        Same seed, batch size and device -> identical maps (on CPU).
    batch : int
        Maps generated per forward pass (bounds memory).
    device : str
        ``cpu`` or ``cuda``.
    symmetrise : bool
        Each map in a random one of the 8 orientations of the square (``gan.symmetrise_samples``).

    A conditional generator draws each map at the latitude of a random centre of the patch grid
    (``condition_values`` of its config): the footprint the patches tile, with every split's share.
    """
    if n <= 0:
        raise InputError(f"-n {n}: ask for at least one map")
    generator, config = load_generator(model_dir, device)
    seed_everything(seed)
    rng = torch_rng(seed, Stream.GAN_SAMPLES)
    symmetry_rng = torch_rng(seed, Stream.GAN_SAMPLE_SYMMETRY) if symmetrise else None
    npix = config["npix"]
    values = (torch.tensor(config["condition_values"], dtype=torch.float32)
              if config.get("condition_latitude", False) else None)  # ln csc|b| of the grid's centres
    with atomic_file(out_path) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, npix, npix))
        for start in tqdm(range(0, n, batch), desc="gan sample", unit="batch"):
            size = min(batch, n - start)
            z = torch.randn(size, config["latent_dim"], generator=rng).to(device)
            condition = None
            if values is not None:
                condition = values[torch.randint(len(values), (size,), generator=rng)].to(device)
            unit = generator(z, condition)[:, 0].cpu()
            unit = (unit if symmetry_rng is None else random_symmetry(unit, symmetry_rng)).numpy()
            out[start:start + size] = from_unit(unit, config["log_min"], config["log_max"])
        out.flush()
        del out
    return out_path
