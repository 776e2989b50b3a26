"""Build the patch set from a sky map, and read/write it (``patches.npy`` + ``meta.json``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dustcmb.config import SplitConfig
from dustcmb.errors import InputError
from dustcmb.patches.cutter import bandlimit, check_finite, check_resolution, cut_patches, gnomonic_lonlat
from dustcmb.patches.grid import patch_centres
from dustcmb.patches.normalise import log_range
from dustcmb.patches.split import TRAIN, paper_split, region_split
from dustcmb.storage import atomic_dir

META_KEYS = ("lon_deg", "lat_deg", "size_deg", "npix", "pixel_arcmin", "log_min", "log_max", "split")


def split_labels(lon_deg: np.ndarray, lat_deg: np.ndarray, size_deg: float, split: SplitConfig,
                 seed: int) -> np.ndarray:
    """One label per patch (``train``/``val``/``test``/``dropped``) under ``split.scheme``."""
    if split.scheme == "paper":
        return paper_split(lon_deg.size, seed)
    return region_split(lon_deg, lat_deg, size_deg, split.val, split.test)


def make_patches(hpmap: np.ndarray, npix: int, size_deg: float, step_deg: float, lat_min_deg: float,
                 split: SplitConfig, seed: int, chunk: int = 64,
                 progress: bool = True) -> tuple[np.ndarray, dict]:
    """Cut the grid of gnomonic patches from a 353 GHz map in MJy/sr and label their splits.

    Returns
    -------
    patches : numpy.ndarray, float32 [n, npix, npix]
        MJy/sr, row 0 north, column 0 east.
    meta : dict
        Grid and normalisation metadata (see :data:`META_KEYS`), the split of every patch and the
        lowest |b| actually sampled (``min_abs_lat_deg``: the patch corners sag below the edge
        midpoints). The unit-domain range ``log_min``/``log_max`` is that of the GAN's training
        patches, so it carries nothing of the held-out sky.
    """
    import healpy as hp

    nside = hp.get_nside(hpmap)
    check_resolution(nside, npix, size_deg)
    check_finite(hpmap)
    lmax_patch = int(180.0 / (size_deg / npix))
    lon, lat = patch_centres(step_deg, lat_min_deg)
    patches = cut_patches(bandlimit(hpmap, lmax_patch), lon, lat, npix, size_deg, chunk, progress)
    labels = split_labels(lon, lat, size_deg, split, seed)
    log_min, log_max = log_range(patches[labels == TRAIN] if split.scheme == "regions" else patches)
    low = np.argmin(np.abs(lat))
    corner_lat = gnomonic_lonlat(lon[low], lat[low], npix, size_deg)[1]
    meta = {
        "lon_deg": lon.tolist(), "lat_deg": lat.tolist(), "size_deg": size_deg, "npix": npix,
        "pixel_arcmin": size_deg * 60.0 / npix, "log_min": log_min, "log_max": log_max,
        "n_patches": int(lon.size), "step_deg": step_deg, "lat_min_deg": lat_min_deg,
        "min_abs_lat_deg": float(np.abs(corner_lat).min()), "map_nside": int(nside),
        "bandlimit_lmax": lmax_patch, "unit": "MJy/sr", "frequency_ghz": 353.0,
        "orientation": "gnomonic; row 0 = north edge, column 0 = east edge (as healpy.gnomview)",
        "split": labels.tolist(), "split_scheme": split.scheme,
        "split_counts": {name: int((labels == name).sum()) for name in ("train", "val", "test", "dropped")},
    }
    return patches, meta


def write_patches(out_dir: str | Path, patches: np.ndarray, meta: dict) -> None:
    """Write ``patches.npy`` and ``meta.json`` into ``out_dir`` as one atomic directory swap."""
    with atomic_dir(out_dir) as tmp:
        np.save(tmp / "patches.npy", patches.astype(np.float32))
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")


def load_patches(patch_dir: str | Path, mmap: bool = False) -> tuple[np.ndarray, dict]:
    """Read a patch set written by :func:`write_patches`.

    Parameters
    ----------
    patch_dir : str or Path
        Directory holding ``patches.npy`` and ``meta.json``.
    mmap : bool
        Memory-map the array instead of reading it.
    """
    patch_dir = Path(patch_dir)
    files = [patch_dir / "patches.npy", patch_dir / "meta.json"]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise InputError(f"missing {', '.join(missing)}; run `dustcmb patches` first")
    try:
        meta = json.loads(files[1].read_text())
        patches = np.load(files[0], mmap_mode="r" if mmap else None)
    except (ValueError, OSError) as err:
        raise InputError(f"corrupt patch set in {patch_dir}: {err}; re-run `dustcmb patches`") from err
    absent = [k for k in META_KEYS if k not in meta]
    if absent or patches.shape != (len(meta["lon_deg"]), meta["npix"], meta["npix"]):
        raise InputError(f"{patch_dir}: meta.json lacks {absent} or does not match patches.npy "
                         f"{patches.shape}; re-run `dustcmb patches`")
    return patches, meta
