"""The separation-data directory: build it once, open its streaming sets anywhere.

``dustcmb separation data`` writes (atomically) a small directory:

- ``cmb_bank.npz``: lensed TT spectra [µK_CMB² sr] and their cosmological parameters;
- ``splits.json``: real-patch indices of the validation and test halves, training size;
- ``normalisation.json``: per-channel offset and scale [µK_CMB] (see :mod:`.dataset`);
- ``manifest.json``: input paths, geometry, seed and the ``simulation`` parameters used.

The maps themselves are never written: :func:`open_datasets` rebuilds the three streaming sets
from this directory, the GAN sample file and the patch set. With ``simulation.train_fixed_sed`` the
training set is simulated with one SED everywhere and the held-out sets with the configured β and T_d
variations (the train/test sky-model mismatch test).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from dustcmb.config import Params, SimulationConfig
from dustcmb.errors import ConfigError, InputError
from dustcmb.patches import split
from dustcmb.seeding import Stream, numpy_rng
from dustcmb.simulation.cmb import CmbBank, camb_lmax, make_bank
from dustcmb.simulation.dataset import DustStack, Normalisation, SeparationDataset, fit_normalisation
from dustcmb.simulation.simulator import SkySimulator
from dustcmb.storage import atomic_dir

FILES = ("cmb_bank.npz", "splits.json", "normalisation.json", "manifest.json")


def open_inputs(params: Params, samples: Path, patches_dir: Path) -> tuple[DustStack, DustStack, dict]:
    """Check and open the GAN samples (train dust) and the real patches (val/test dust), and their meta."""
    geometry = params.patches
    meta_path = Path(patches_dir) / "meta.json"
    if not meta_path.is_file():
        raise InputError(f"{meta_path} not found; run `dustcmb patches` first")
    meta = json.loads(meta_path.read_text())
    if meta.get("npix") != geometry.npix or abs(meta.get("size_deg", -1) - geometry.size_deg) > 1e-9:
        raise InputError(f"{patches_dir} holds {meta.get('npix')}² patches of {meta.get('size_deg')}° but "
                         f"params say {geometry.npix}² of {geometry.size_deg}°; re-run `dustcmb patches`")
    real = DustStack(Path(patches_dir) / "patches.npy", geometry.npix, "patch set")
    if not Path(samples).is_file():
        raise InputError(f"GAN sample file {samples} not found; run `dustcmb gan sample` first or "
                         "pass --samples PATH")
    generated = DustStack(samples, geometry.npix, "GAN sample file")
    held = {name: split.indices(meta, name) for name in (split.VAL, split.TEST)}
    if any(index.size == 0 for index in held.values()):
        raise InputError(f"{patches_dir}: the split leaves {held['val'].size} val and {held['test'].size} test "
                         "patches; widen patches.split.val/test")
    return generated, real, meta


def train_sky(cfg: SimulationConfig) -> SimulationConfig:
    """The training set's sky model: ``cfg`` itself, or one SED everywhere if ``train_fixed_sed``."""
    return dataclasses.replace(cfg, beta_rms=0.0, temp_dust_rms_k=0.0) if cfg.train_fixed_sed else cfg


def build(params: Params, samples: Path, patches_dir: Path, out_dir: Path, progress: bool = True) -> dict:
    """Compute the bank, splits and normalisation and write ``out_dir`` atomically; returns the manifest."""
    cfg, geometry = params.simulation, params.patches
    generated, real, meta = open_inputs(params, samples, patches_dir)
    lmax = camb_lmax(geometry.npix, geometry.size_deg)
    bank = make_bank(cfg.n_spectra, lmax, numpy_rng(params.seed, Stream.CMB_BANK), progress)
    train = SeparationDataset(generated, np.arange(len(generated)), "train",
                              SkySimulator(bank, train_sky(cfg), geometry.npix, geometry.size_deg, params.seed))
    normalisation = fit_normalisation(train, cfg.norm_maps, progress)
    val, test = split.indices(meta, split.VAL), split.indices(meta, split.TEST)
    manifest = {
        "samples": str(samples), "patches": str(patches_dir), "npix": geometry.npix,
        "size_deg": geometry.size_deg, "seed": params.seed, "simulation": asdict(cfg), "camb_lmax": lmax,
        "n_train": len(generated), "n_val": int(val.size), "n_test": int(test.size),
        "split_scheme": meta["split_scheme"], "held_out": split.held_out(meta),
        "units": {"inputs": "µK_CMB per channel, then (x - input_offset_uk) / input_scale_uk",
                  "target": "CMB µK_CMB, then (x - target_offset_uk) / target_scale_uk",
                  "cmb_bank": "C_ell lensed TT [µK_CMB² sr], ell = 0..camb_lmax"},
    }
    with atomic_dir(out_dir) as tmp:
        bank.save(tmp / "cmb_bank.npz")
        (tmp / "splits.json").write_text(json.dumps(
            {"val": val.tolist(), "test": test.tolist(), "n_train": len(generated)}) + "\n")
        normalisation.save(tmp / "normalisation.json")
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def open_datasets(data_dir: str | Path, params: Params) -> dict[str, SeparationDataset]:
    """The ``train``, ``val`` and ``test`` streaming sets described by a separation-data directory.

    Fails with :class:`ConfigError` if ``params`` (seed, patch geometry or ``simulation``) differ from
    those the directory was built with, since its bank and normalisation would then be stale.
    """
    data_dir = Path(data_dir)
    missing = [name for name in FILES if not (data_dir / name).is_file()]
    if missing:
        raise InputError(f"{data_dir} lacks {', '.join(missing)}; run `dustcmb separation data`")
    manifest = json.loads((data_dir / "manifest.json").read_text())
    geometry = params.patches
    now = {"seed": params.seed, "npix": geometry.npix, "size_deg": geometry.size_deg,
           "simulation": json.loads(json.dumps(asdict(params.simulation)))}
    changed = sorted(k for k, v in now.items() if manifest[k] != v)
    if changed:
        raise ConfigError(f"{data_dir} was built with different {', '.join(changed)}; "
                          "re-run `dustcmb separation data`")
    generated, real, meta = open_inputs(params, Path(manifest["samples"]), Path(manifest["patches"]))
    splits = json.loads((data_dir / "splits.json").read_text())
    now_split = {name: split.indices(meta, name).tolist() for name in (split.VAL, split.TEST)}
    if splits["n_train"] != len(generated) or any(splits[k] != v for k, v in now_split.items()):
        raise InputError(f"the GAN samples or patches changed since {data_dir} was built; "
                         "re-run `dustcmb separation data`")
    bank, cfg = CmbBank.load(data_dir / "cmb_bank.npz"), params.simulation
    simulator = SkySimulator(bank, cfg, geometry.npix, geometry.size_deg, params.seed)
    train_simulator = SkySimulator(bank, train_sky(cfg), geometry.npix, geometry.size_deg, params.seed)
    normalisation = Normalisation.load(data_dir / "normalisation.json")
    draws = cfg.held_out_realisations
    return {"train": SeparationDataset(generated, np.arange(len(generated)), "train", train_simulator,
                                       normalisation),
            **{name: SeparationDataset(real, np.array(splits[name]), name, simulator, normalisation, draws)
               for name in (split.VAL, split.TEST)}}
