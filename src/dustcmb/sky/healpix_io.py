"""Read and write 353 GHz dust maps as HEALPix FITS, with the checks a real map needs.

A real map (e.g. Planck 2015 GNILC ``COM_CompMap_Dust-GNILC-F353_2048_R2.00.fits``) is validated:
it must be a HEALPix map in Galactic coordinates with finite values; NESTED ordering is converted to
RING; K_CMB (or µK_CMB) maps are converted to MJy/sr; it may be smoothed, then regraded to the
working nside. The pipeline's map is always RING, Galactic, float32, MJy/sr.
"""

from __future__ import annotations

import logging
from pathlib import Path

import healpy as hp
import numpy as np

from dustcmb.errors import InputError
from dustcmb.storage import atomic_file
from dustcmb.units import kcmb_to_mjysr

log = logging.getLogger(__name__)

# The project's one K_CMB -> MJy/sr convention (monochromatic dB/dT at 353 GHz, 296.65 MJy/sr per K),
# the same factor the SED uses to go back to K_CMB, so a K_CMB map round-trips exactly.
MJYSR_PER_KCMB_353 = float(kcmb_to_mjysr(353.0))

_UNIT_FACTORS = {  # map unit (lower case, spaces removed) -> factor to MJy/sr at 353 GHz
    "mjy/sr": 1.0, "mjysr-1": 1.0, "mjy/sr^-1": 1.0, "mjy.sr-1": 1.0,
    "k_cmb": MJYSR_PER_KCMB_353, "kcmb": MJYSR_PER_KCMB_353, "k": MJYSR_PER_KCMB_353,
    "uk_cmb": 1e-6 * MJYSR_PER_KCMB_353, "ukcmb": 1e-6 * MJYSR_PER_KCMB_353,
}


def _unit_factor(unit: str | None, path: Path) -> float:
    key = (unit or "").strip().lower().replace(" ", "")
    if key not in _UNIT_FACTORS:
        raise InputError(f"{path}: unknown map unit TUNIT1={unit!r}; expected MJy/sr or K_CMB "
                         "(set the TUNIT1 header keyword)")
    return _UNIT_FACTORS[key]


def _coordsys(header: dict, path: Path) -> str:
    coord = str(header.get("COORDSYS", "")).strip().upper()[:1]
    if coord not in ("G", "C", "E"):
        raise InputError(f"{path}: header has no usable COORDSYS ({header.get('COORDSYS')!r}); "
                         "set COORDSYS='GALACTIC' (or C/E to have it rotated to Galactic)")
    return coord


def read_dust_map(path: str | Path, nside: int, smoothing_fwhm_arcmin: float = 0.0) -> np.ndarray:
    """Read, validate and convert a real 353 GHz dust map.

    Parameters
    ----------
    path : str or Path
        HEALPix FITS file (first column is used).
    nside : int
        Working nside; the map is regraded (averaged) down to it, never up.
    smoothing_fwhm_arcmin : float
        Gaussian smoothing applied before regrading (0 = none).

    Returns
    -------
    numpy.ndarray, float64 [12 nside²]
        RING, Galactic, MJy/sr.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"sky map {path} not found; put the FITS file there (see README, "
                         "'Using the Planck map') or set sky.source: synthetic")
    try:
        hpmap, header = hp.read_map(path, field=0, h=True, dtype=np.float64)
    except Exception as err:  # healpy/astropy raise many types for a non-HEALPix file
        raise InputError(f"{path} is not a readable HEALPix map ({type(err).__name__}: {err})") from err
    header = dict(header)
    coord = _coordsys(header, path)
    bad = ~np.isfinite(hpmap) | (hpmap == hp.UNSEEN)
    if bad.any():
        raise InputError(f"{path}: {int(bad.sum())} of {hpmap.size} pixels are NaN/inf/UNSEEN; "
                         "the dust map must be full-sky and finite (inpaint masked pixels first)")
    hpmap = hpmap * _unit_factor(header.get("TUNIT1"), path)
    if coord != "G":
        log.info("rotating %s from %s to Galactic coordinates", path, coord)
        hpmap = hp.Rotator(coord=[coord, "G"]).rotate_map_alms(hpmap)
    if smoothing_fwhm_arcmin > 0:
        hpmap = hp.smoothing(hpmap, fwhm=np.radians(smoothing_fwhm_arcmin / 60.0))
    nside_in = hp.get_nside(hpmap)
    if nside_in < nside:
        raise InputError(f"{path} has nside {nside_in} < sky.nside {nside}; upgrading adds no "
                         f"information — set sky.nside <= {nside_in}")
    return hp.ud_grade(hpmap, nside) if nside_in > nside else hpmap


def write_dust_map(path: str | Path, hpmap: np.ndarray, description: str) -> None:
    """Write a RING, Galactic, MJy/sr map as float32 FITS, atomically."""
    with atomic_file(path) as tmp:
        hp.write_map(str(tmp), hpmap.astype(np.float32), nest=False, coord="G",
                     column_names=["I_353"], column_units="MJy/sr", overwrite=True,
                     extra_header=[("FREQ", "353 GHz"), ("CONTENT", description[:68])])


def load_sky(path: str | Path) -> np.ndarray:
    """Load the pipeline's own sky map (written by :func:`write_dust_map`) as float64."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"sky map {path} not found; run `dustcmb sky` first (or `dvc repro sky`)")
    try:
        return hp.read_map(path, dtype=np.float64)
    except Exception as err:
        raise InputError(f"{path} is not a readable HEALPix map ({type(err).__name__}: {err})") from err
