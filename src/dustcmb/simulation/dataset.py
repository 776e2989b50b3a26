"""Streaming train/val/test sets for the separation network.

Nothing large is held in memory: each item reads one 353 GHz dust map from disk and simulates its
channels on the fly (:class:`~dustcmb.simulation.simulator.SkySimulator`), deterministically per index.
Dust maps are read with a positioned file read per item (:class:`DustStack`) rather than through a
long-lived memory map, whose touched pages would stay in the process's resident set and grow it to
the file size (12.6 GB for 48 000 maps of 256²).

Normalisation: every channel and the target are mapped by ``u = (x_µK - offset) / scale`` with the
per-channel mean and standard deviation of the *training* set (pixels of ``norm_maps`` maps evenly
spaced through it), stored once in ``normalisation.json`` and applied unchanged to val/test.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from dustcmb.errors import InputError
from dustcmb.patches.normalise import check_positive
from dustcmb.simulation.simulator import SkySimulator


class DustStack:
    """Read-one-map-at-a-time view of a float32 ``.npy`` stack ``[n, N, N]`` of dust in MJy/sr.

    The header is checked once with ``np.load(mmap_mode="r")``; each :meth:`read` then does one
    positioned read, so memory stays at one map whatever the file size, also in DataLoader workers.
    """

    def __init__(self, path: str | Path, npix: int, what: str) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{what} {self.path} not found")
        try:
            view = np.load(self.path, mmap_mode="r")
        except (ValueError, OSError) as err:
            raise InputError(f"{what} {self.path} is not a readable .npy file: {err}") from err
        if view.ndim != 3 or view.shape[1:] != (npix, npix) or view.dtype != np.float32:
            raise InputError(f"{what} {self.path}: expected float32 [n, {npix}, {npix}] (patches.npix), "
                             f"got {view.dtype} {list(view.shape)}")
        if not view.flags.c_contiguous:
            raise InputError(f"{what} {self.path} is stored in Fortran order; save it C-ordered")
        self.n, self.npix, self._offset = view.shape[0], npix, view.offset
        del view

    def __len__(self) -> int:
        return self.n

    def read(self, index: int) -> np.ndarray:
        """Map ``index`` [MJy/sr] as float32 [N, N]; fails clearly on non-finite or ≤ 0 pixels."""
        count = self.npix * self.npix
        data = np.fromfile(self.path, dtype=np.float32, count=count, offset=self._offset + 4 * count * index)
        dust = data.reshape(self.npix, self.npix)
        try:
            check_positive(dust)
        except InputError as err:
            raise InputError(f"{self.path} map {index}: {err}") from err
        return dust


@dataclass(frozen=True)
class Normalisation:
    """Per-channel affine map µK_CMB → network units, ``u = (x - offset) / scale``."""

    freqs_ghz: tuple[float, ...]
    input_offset_uk: tuple[float, ...]
    input_scale_uk: tuple[float, ...]
    target_offset_uk: float
    target_scale_uk: float

    def inputs_to_unit(self, channels_uk):
        """[..., C, N, N] µK_CMB → network inputs (numpy or torch)."""
        offset, scale = (np.asarray(v, np.float32)[:, None, None] for v in (self.input_offset_uk,
                                                                            self.input_scale_uk))
        if isinstance(channels_uk, torch.Tensor):
            offset, scale = (torch.as_tensor(v, device=channels_uk.device) for v in (offset, scale))
        return (channels_uk - offset) / scale

    def target_to_unit(self, cmb_uk):
        """CMB map(s) [µK_CMB] → network target units."""
        return (cmb_uk - self.target_offset_uk) / self.target_scale_uk

    def target_to_uk(self, target):
        """Network output → CMB [µK_CMB] (numpy or torch): the inverse of :meth:`target_to_unit`."""
        return target * self.target_scale_uk + self.target_offset_uk

    def save(self, path: str | Path) -> None:
        """Write as JSON (the caller provides an atomic path)."""
        Path(path).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Normalisation:
        """Read a JSON written by :meth:`save`."""
        data = json.loads(Path(path).read_text())
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


class SeparationDataset(Dataset):
    """Multi-frequency patches simulated on the fly from a dust stack.

    Parameters
    ----------
    dust : DustStack
        353 GHz dust maps [MJy/sr] (GAN samples for train, real patches for val/test).
    source_index : ndarray of int
        Which maps of ``dust`` form this set, in order; also the seed index of each item.
    split : str
        ``train``, ``val`` or ``test`` (seed word: the same map gets different CMB per split).
    simulator : SkySimulator
        Physics of one observation.
    normalisation : Normalisation or None
        Needed by ``__getitem__``; ``None`` only while fitting it with :func:`fit_normalisation`.
    realisations : int
        Independent CMB + noise draws over each dust map: item ``i`` is map ``i % n`` in draw ``i // n``,
        so the first ``n`` items are one pass over the dust.
    """

    def __init__(self, dust: DustStack, source_index: np.ndarray, split: str, simulator: SkySimulator,
                 normalisation: Normalisation | None = None, realisations: int = 1) -> None:
        self.dust = dust
        self.source_index = np.asarray(source_index, dtype=np.int64)
        self.split = split
        self.simulator = simulator
        self.normalisation = normalisation
        self.realisations = realisations

    def __len__(self) -> int:
        return self.source_index.size * self.realisations

    def dust_map(self, i: int) -> int:
        """Index into ``dust`` of item ``i``'s dust map (items that share it share their dust sky)."""
        return int(self.source_index[int(i) % self.source_index.size])

    def sample_uk(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Item ``i`` in physical units: channels [C, N, N] and CMB [N, N], float32 µK_CMB."""
        draw = int(i) // self.source_index.size
        src = self.dust_map(i)
        return self.simulator.observe(self.dust.read(src), self.split, src, draw)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(inputs [C, N, N], target [1, N, N])`` float32 in network units.

        Undo with ``normalisation.target_to_uk`` (and ``inputs_to_unit`` for the forward map).
        """
        if self.normalisation is None:
            raise RuntimeError("SeparationDataset needs a Normalisation before items can be served")
        channels_uk, cmb_uk = self.sample_uk(i)
        inputs = self.normalisation.inputs_to_unit(channels_uk).astype(np.float32)
        target = self.normalisation.target_to_unit(cmb_uk).astype(np.float32)
        return torch.from_numpy(inputs), torch.from_numpy(target[None])


def fit_normalisation(dataset: SeparationDataset, n_maps: int, progress: bool = True) -> Normalisation:
    """Per-channel mean and standard deviation [µK_CMB] over ``n_maps`` maps spread through ``dataset``."""
    picks = np.unique(np.linspace(0, len(dataset) - 1, min(n_maps, len(dataset))).round().astype(int))
    n_rows = dataset.simulator.n_channels + 1
    total, total_sq, count = np.zeros(n_rows), np.zeros(n_rows), 0
    for i in tqdm(picks, desc=f"normalisation ({dataset.split})", unit="map", disable=not progress):
        channels_uk, cmb_uk = dataset.sample_uk(int(i))
        rows = np.concatenate([channels_uk, cmb_uk[None]]).reshape(n_rows, -1).astype(np.float64)
        total += rows.sum(axis=1)
        total_sq += (rows**2).sum(axis=1)
        count += rows.shape[1]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    if np.any(std <= 0):
        raise InputError(f"training maps have zero variance in some channel (std {std.tolist()} µK); "
                         "check the GAN samples")
    return Normalisation(
        freqs_ghz=tuple(float(f) for f in dataset.simulator.cfg.freqs_ghz),
        input_offset_uk=tuple(mean[:-1].tolist()), input_scale_uk=tuple(std[:-1].tolist()),
        target_offset_uk=float(mean[-1]), target_scale_uk=float(std[-1]))
