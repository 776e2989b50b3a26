"""Non-periodic Gaussian random fields on a flat square patch.

A field drawn directly on the ``N x N`` patch grid with an FFT is periodic: its left and right
(top and bottom) edges are neighbours. The sky is not. :class:`CroppedGaussianField` therefore
draws on a periodic grid ``pad`` times larger per side (same pixel size) and keeps one ``N x N``
corner. The kept patch then sees modes down to ``ℓ = 2π / (pad · L)`` and has independent
opposite edges. What remains of the periodic grid is its lowest mode: super-patch power on scales
larger than ``pad · L`` is missing, which only affects the patch mean and gradient.

Normalisation follows :func:`dustcmb.stats.power_spectrum` (docs/science.md#power-spectrum): for the periodic grid of
``M`` pixels of side ``Δ`` radians, ``C = Δ² / M² · |F|²``. Filtering unit white noise ``w``
(``E|W_k|² = M²``) by ``sqrt(C_ℓ) / Δ`` gives ``E|F_k|² = M² C_ℓ / Δ²``, i.e. the estimator returns
``C_ℓ`` on the periodic grid. On the crop the expected estimate is ``C_ℓ`` convolved with the
square window's Fejér kernel (power leaks from large to small scales across the cut edges).
"""

from __future__ import annotations

import math

import numpy as np


class CroppedGaussianField:
    """Draw ``N x N`` crops of periodic Gaussian fields ``pad`` times larger per side.

    Parameters
    ----------
    npix : int
        Pixels per side of the patch.
    size_deg : float
        Side of the patch in degrees.
    pad : int
        Side of the periodic drawing grid in units of the patch side (1 = periodic patch).
    """

    def __init__(self, npix: int, size_deg: float, pad: int) -> None:
        if pad < 1:
            raise ValueError(f"pad must be >= 1, got {pad}")
        self.npix = npix
        self.pad = pad
        self.grid = npix * pad
        self.pixel_rad = math.radians(size_deg) / npix
        ky = np.fft.fftfreq(self.grid, 1.0 / self.grid)[:, None]
        kx = np.fft.rfftfreq(self.grid, 1.0 / self.grid)[None, :]
        # multipole of every rfft2 mode of the large grid: 2π|k| / (pad · L)
        self.mode_ell = (2.0 * math.pi / (self.grid * self.pixel_rad)) * np.hypot(ky, kx)
        weight = np.full(self.mode_ell.shape, 2.0)
        weight[:, 0] = 1.0
        weight[:, -1] = 1.0
        self._mode_weight = weight  # full-plane multiplicity of each half-plane mode

    def amplitude(self, ell: np.ndarray, cl: np.ndarray) -> np.ndarray:
        """Fourier filter ``sqrt(C_ℓ) / Δ`` on the large grid for a spectrum ``C_ℓ`` [unit² sr].

        ``C_ℓ`` is linearly interpolated at every mode's ℓ and taken as 0 beyond ``ell[-1]``; the
        mean mode is set to 0 (the field has zero ensemble mean).
        """
        mode_cl = np.interp(self.mode_ell, ell, cl, right=0.0)
        mode_cl[0, 0] = 0.0
        return np.sqrt(np.clip(mode_cl, 0.0, None)) / self.pixel_rad

    def variance(self, amplitude: np.ndarray) -> float:
        """Pixel variance [unit²] of fields drawn with ``amplitude``: ``Σ_k C_k / (M² Δ²)``."""
        return float(np.sum(self._mode_weight * amplitude**2) / self.grid**2)

    def draw(self, amplitude: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One ``N x N`` crop (float64, unit of ``sqrt(C_ℓ)``) of a field with the given filter."""
        white = rng.standard_normal((self.grid, self.grid))
        field = np.fft.irfft2(np.fft.rfft2(white) * amplitude, s=(self.grid, self.grid))
        return field[: self.npix, : self.npix]
