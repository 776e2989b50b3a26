"""One multi-frequency observation of a patch: CMB + scaled dust, beams, noise (docs/science.md#multi-frequency-skies).

For a 353 GHz dust map ``D`` [MJy/sr] the channel at frequency ``ν`` is, in µK_CMB,

    m_ν = beam_ν * (CMB + D · MBB(ν; β, T_d) · K_CMB/(MJy/sr)(ν) · 1e6) + noise_ν

with the CMB a non-periodic Gaussian realisation of a spectrum picked at random from the bank.
Everything random is drawn from ``SeedSequence([seed, split, index])`` (with the realisation number
appended for the second and later CMB + noise draws over the same dust map) spawned into independent
streams for the CMB, the β field, the noise and the T_d field, so a given (split, index, realisation)
always yields the same maps, and switching SED variations or noise on or off leaves the other
components unchanged. β and T_d vary independently, each a smooth Gaussian field with the correlation
length ``beta_corr_deg``.
"""

from __future__ import annotations

import math

import numpy as np

from dustcmb.config import SimulationConfig
from dustcmb.simulation.cmb import CmbBank
from dustcmb.simulation.fields import CroppedGaussianField
from dustcmb.simulation.instrument import FWHM_TO_SIGMA, apply_beam, white_noise_uk
from dustcmb.simulation.sed import dust_ukcmb

SPLIT_CODES = {"train": 0, "val": 1, "test": 2}


class SkySimulator:
    """Deterministic per-index multi-frequency patches.

    Parameters
    ----------
    bank : CmbBank
        Lensed TT spectra [µK_CMB² sr]; each realisation picks one uniformly.
    cfg : SimulationConfig
        Frequencies, SED, β field, instrument preset, CMB padding.
    npix, size_deg : int, float
        Patch geometry (must match the dust maps).
    seed : int
        Master seed from the parameters.
    """

    def __init__(self, bank: CmbBank, cfg: SimulationConfig, npix: int, size_deg: float, seed: int) -> None:
        self.bank = bank
        self.cfg = cfg
        self.npix = npix
        self.pixel_arcmin = size_deg * 60.0 / npix
        self.seed = seed
        self.field = CroppedGaussianField(npix, size_deg, cfg.cmb_pad)
        varying = cfg.beta_rms > 0 or cfg.temp_dust_rms_k > 0
        self._sed_amplitude = self._unit_sed_amplitude(cfg.beta_corr_deg) if varying else None
        self._cmb_amplitudes: dict[int, np.ndarray] = {}  # per bank entry, filled on first use

    @property
    def n_channels(self) -> int:
        """Number of frequency channels."""
        return len(self.cfg.freqs_ghz)

    def _unit_sed_amplitude(self, corr_deg: float) -> np.ndarray:
        """Fourier filter of a unit-variance field smoothed by a Gaussian of FWHM ``corr_deg``."""
        sigma_rad = math.radians(corr_deg) * FWHM_TO_SIGMA
        ell = np.linspace(0.0, float(self.field.mode_ell.max()) + 1.0, 4096)
        amplitude = self.field.amplitude(ell, np.exp(-(ell * sigma_rad) ** 2))
        return amplitude / math.sqrt(self.field.variance(amplitude))

    def rngs(self, split: str, index: int, realisation: int = 0) -> tuple[np.random.Generator, ...]:
        """Independent generators (CMB, β, noise, T_d) of one (split, index, realisation).

        Spawned children do not depend on how many are spawned, so the T_d stream, added last, left
        the other three (and every map made without T_d variations) unchanged.
        """
        words = [self.seed, SPLIT_CODES[split], int(index)] + ([int(realisation)] if realisation else [])
        return tuple(np.random.default_rng(s) for s in np.random.SeedSequence(words).spawn(4))

    def cmb_uk(self, rng: np.random.Generator) -> np.ndarray:
        """A CMB realisation [µK_CMB, N x N] of a spectrum drawn from the bank."""
        j = int(rng.integers(len(self.bank)))
        if j not in self._cmb_amplitudes:
            # float32 halves the cache (0.5 MB per spectrum at 256², pad 2); interpolation is the slow part
            amplitude = self.field.amplitude(self.bank.ell, self.bank.cl_uk2[j])
            self._cmb_amplitudes[j] = amplitude.astype(np.float32)
        return self.field.draw(self._cmb_amplitudes[j], rng)

    def beta(self, rng: np.random.Generator):
        """Dust spectral index: the fixed ``beta`` or a smooth Gaussian map with rms ``beta_rms``."""
        if self.cfg.beta_rms == 0:
            return self.cfg.beta
        return self.cfg.beta + self.cfg.beta_rms * self.field.draw(self._sed_amplitude, rng)

    def temp_dust_k(self, rng: np.random.Generator):
        """Dust temperature [K]: the fixed ``temp_dust_k`` or a smooth Gaussian map with rms ``temp_dust_rms_k``."""
        if self.cfg.temp_dust_rms_k == 0:
            return self.cfg.temp_dust_k
        return self.cfg.temp_dust_k + self.cfg.temp_dust_rms_k * self.field.draw(self._sed_amplitude, rng)

    def observe(self, dust_mjysr: np.ndarray, split: str, index: int,
                realisation: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Simulate the channels of one patch.

        Parameters
        ----------
        dust_mjysr : ndarray [N, N]
            353 GHz dust intensity [MJy/sr].
        split, index : str, int
            Seed words: the split name (train/val/test) and the map's index in its source file.
        realisation : int
            Which independent CMB + noise (+ β) draw over this dust map.

        Returns
        -------
        channels_uk : float32 [n_channels, N, N]
            Observed maps [µK_CMB], in the order of ``cfg.freqs_ghz``.
        cmb_uk : float32 [N, N]
            The true CMB [µK_CMB] (no beam, no noise): the separation target.
        """
        rng_cmb, rng_beta, rng_noise, rng_temp = self.rngs(split, index, realisation)
        cmb = self.cmb_uk(rng_cmb)
        beta, temp_k = self.beta(rng_beta), self.temp_dust_k(rng_temp)
        preset = self.cfg.preset
        dust_mjysr = dust_mjysr.astype(np.float64)
        channels = np.empty((self.n_channels, self.npix, self.npix), dtype=np.float32)
        for c, freq in enumerate(self.cfg.freqs_ghz):
            sky = cmb + dust_ukcmb(dust_mjysr, freq, beta, temp_k)
            sky = apply_beam(sky, preset.beam_fwhm_arcmin[c], self.pixel_arcmin)
            if preset.noise_uk_arcmin[c] > 0:
                sky += white_noise_uk(sky.shape, preset.noise_uk_arcmin[c], self.pixel_arcmin, rng_noise)
            channels[c] = sky
        return channels, cmb.astype(np.float32)
