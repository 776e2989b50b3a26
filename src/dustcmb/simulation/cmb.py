"""The CMB: a bank of lensed TT spectra from ``camb`` for ΛCDM parameters from the Planck posterior.

Parameters are drawn from the Planck 2015 TT+lowP posterior (docs/science.md#multi-frequency-skies) approximated by
independent Gaussians with the published means and 1σ errors (the real posterior has correlations,
notably τ–A_s; ignoring them slightly widens the spread of spectra, which is harmless for training
data). τ is clipped at 0.01 so that camb never sees an unphysical optical depth. Spectra are lensed
``C_ℓ^TT`` (not ``D_ℓ``) in µK_CMB² for ℓ = 0 … lmax, computed with camb's default accuracy and
``lens_potential_accuracy = 1`` (non-linear lensing); lower ``AccuracyBoost`` gives wrong spectra.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dustcmb.errors import InputError

# name: (mean, 1σ) — Planck 2015 TT+lowP (approx., docs/science.md#multi-frequency-skies)
PLANCK2015_TT_LOWP = {
    "ombh2": (0.02222, 0.00023),
    "omch2": (0.1197, 0.0022),
    "H0": (67.31, 0.96),
    "tau": (0.078, 0.019),
    "ln10As": (3.089, 0.036),
    "ns": (0.9655, 0.0062),
}
TAU_MIN = 0.01


def camb_lmax(npix: int, size_deg: float) -> int:
    """Highest multipole a patch grid holds: the FFT corner ``√2 · π / Δ``, plus a small margin.

    The square grid has modes up to √2 times the Nyquist ℓ (2304 → 3259 for 256 px over 20°); the
    spectrum must cover them or the field loses power anisotropically in the Fourier corners.
    """
    nyquist = 180.0 / (size_deg / npix)
    return int(math.ceil(math.sqrt(2.0) * nyquist)) + 10


def draw_cosmologies(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``n`` parameter sets from :data:`PLANCK2015_TT_LOWP` (independent Gaussians, τ ≥ 0.01)."""
    draws = {name: rng.normal(mean, sigma, n) for name, (mean, sigma) in PLANCK2015_TT_LOWP.items()}
    draws["tau"] = np.maximum(draws["tau"], TAU_MIN)
    return draws


def lensed_tt_uk2(cosmology: dict[str, float], lmax: int) -> np.ndarray:
    """Lensed ``C_ℓ^TT`` [µK_CMB² sr] for ℓ = 0 … lmax from camb.

    Parameters
    ----------
    cosmology : dict
        ``ombh2``, ``omch2``, ``H0`` [km/s/Mpc], ``tau``, ``ln10As`` (ln 10¹⁰A_s), ``ns``.
    lmax : int
        Highest multipole returned.
    """
    import camb

    pars = camb.set_params(
        ombh2=cosmology["ombh2"], omch2=cosmology["omch2"], H0=cosmology["H0"], tau=cosmology["tau"],
        As=math.exp(cosmology["ln10As"]) * 1e-10, ns=cosmology["ns"], lmax=lmax,
        lens_potential_accuracy=1, WantTensors=False)
    results = camb.get_results(pars)
    cl = results.get_lensed_scalar_cls(lmax=lmax, CMB_unit="muK", raw_cl=True)[:, 0]
    return np.asarray(cl[: lmax + 1], dtype=np.float64)


@dataclass(frozen=True)
class CmbBank:
    """Lensed TT spectra ``cl_uk2[j, ℓ]`` [µK_CMB² sr], ℓ = 0 … lmax, and their parameters."""

    cl_uk2: np.ndarray
    cosmology: dict[str, np.ndarray]

    @property
    def ell(self) -> np.ndarray:
        """Integer multipoles 0 … lmax."""
        return np.arange(self.cl_uk2.shape[1], dtype=np.float64)

    def __len__(self) -> int:
        return self.cl_uk2.shape[0]

    def save(self, path: str | Path) -> None:
        """Write an ``.npz`` (``ell``, ``cl_uk2``, one array per cosmological parameter)."""
        np.savez(path, ell=self.ell, cl_uk2=self.cl_uk2, **self.cosmology)

    @classmethod
    def load(cls, path: str | Path) -> CmbBank:
        """Read a bank written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"CMB spectrum bank {path} not found; run `dustcmb separation data`")
        with np.load(path) as data:
            return cls(cl_uk2=data["cl_uk2"], cosmology={k: data[k] for k in PLANCK2015_TT_LOWP})


def make_bank(n: int, lmax: int, rng: np.random.Generator, progress: bool = True) -> CmbBank:
    """Draw ``n`` cosmologies and compute their lensed TT spectra (about a second each)."""
    draws = draw_cosmologies(n, rng)
    cls = [lensed_tt_uk2({k: float(v[j]) for k, v in draws.items()}, lmax)
           for j in tqdm(range(n), desc="camb spectra", unit="spec", disable=not progress)]
    return CmbBank(cl_uk2=np.stack(cls), cosmology=draws)
