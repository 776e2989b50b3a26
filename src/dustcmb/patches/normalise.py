"""The GAN's pixel transform (docs/science.md#patch-grid): natural log, then one affine map of the set to [-1, 1].

``u = 2 (ln I - log_min) / (log_max - log_min) - 1`` with ``log_min``/``log_max`` the natural-log range
of the whole patch set (stored in ``meta.json``), so generated maps map back to MJy/sr exactly.
"""

from __future__ import annotations

import numpy as np

from dustcmb.errors import InputError


def log_range(patches_mjysr: np.ndarray) -> tuple[float, float]:
    """Natural-log range ``(log_min, log_max)`` of a positive patch set in MJy/sr."""
    check_positive(patches_mjysr)
    return float(np.log(patches_mjysr.min())), float(np.log(patches_mjysr.max()))


def check_positive(patches_mjysr: np.ndarray) -> None:
    """Fail clearly if any pixel is non-finite or non-positive (it could not be logged)."""
    bad = ~np.isfinite(patches_mjysr) | (patches_mjysr <= 0)
    if bad.any():
        maps = np.unique(np.nonzero(bad)[0]) if bad.ndim == 3 else np.array([0])
        raise InputError(
            f"{int(bad.sum())} pixel(s) in {maps.size} patch(es) (first: {maps[:5].tolist()}) are "
            "non-finite or <= 0 MJy/sr and cannot be logged; check the input map for UNSEEN/NaN or "
            "negative values (e.g. an offset-subtracted map) in the patch region")


def to_unit(patches_mjysr: np.ndarray, log_min: float, log_max: float) -> np.ndarray:
    """MJy/sr -> [-1, 1] (float32)."""
    check_positive(patches_mjysr)
    logs = np.log(patches_mjysr.astype(np.float64))
    return (2.0 * (logs - log_min) / (log_max - log_min) - 1.0).astype(np.float32)


def from_unit(unit_maps: np.ndarray, log_min: float, log_max: float) -> np.ndarray:
    """[-1, 1] -> MJy/sr (float32); the exact inverse of :func:`to_unit`."""
    logs = (np.asarray(unit_maps, np.float64) + 1.0) * 0.5 * (log_max - log_min) + log_min
    return np.exp(logs).astype(np.float32)
