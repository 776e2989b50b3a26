"""What the ResUNet sees (docs/science.md#bayesian-resunet): normalised channels and, optionally, a prior.

The frequency channels [µK_CMB] enter the network in one of two normalisations
(``separation.input_norm``):

- ``global`` (the paper's): ``(x_c − offset_c) / scale_c`` with the training set's per-channel mean
  and standard deviation (:class:`~dustcmb.simulation.dataset.Normalisation`), the same for every map.
  A bright patch then reaches the network at hundreds of standard deviations and a faint one at a
  fraction of one.
- ``per_map``: each channel of each map minus its own mean, over its own standard deviation, so
  bright and faint patches look alike. The absolute level is lost; the prior channel keeps it.

With ``separation.prior: cilc`` the constrained-ILC estimate (:mod:`dustcmb.separation.cilc`: dust of
the mean SED nulled, beams deconvolved) is appended as one more channel, in the target's network units,
and the network's output is a correction added to it (:class:`~dustcmb.separation.resunet.ResUNet`
with ``prior_channel=True``): the linear combination that removes most of the dust is given, and the
network has to learn only what the combination misses (SED variations, noise, the ILC's leftovers).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from dustcmb.config import Params, SeparationConfig
from dustcmb.separation.cilc import cilc_cmb_uk, dust_mixing
from dustcmb.simulation.dataset import Normalisation, SeparationDataset

PRIORS = ("none", "cilc")
INPUT_NORMS = ("global", "per_map")


def n_inputs(n_channels: int, cfg: SeparationConfig) -> int:
    """Input channels of the network: the frequency channels, plus one for a prior."""
    return n_channels + (cfg.prior != "none")


def prior_uk(channels_uk: np.ndarray, params: Params) -> np.ndarray:
    """Constrained-ILC CMB [µK_CMB, ..., N, N] of channels ``[..., C, N, N]`` with the mean SED of ``params``."""
    sim = params.simulation
    mixing = dust_mixing(sim.freqs_ghz, sim.beta, sim.temp_dust_k)
    return cilc_cmb_uk(channels_uk, sim.preset.beam_fwhm_arcmin, params.patches.pixel_arcmin, mixing)


def network_inputs(channels_uk: np.ndarray, norm: Normalisation, params: Params,
                   prior: np.ndarray | None = None) -> np.ndarray:
    """Network inputs float32 ``[..., C (+1), N, N]`` from channels ``[..., C, N, N]`` [µK_CMB].

    Parameters
    ----------
    channels_uk : ndarray
        Observed channels [µK_CMB].
    norm : Normalisation
        The training set's per-channel and target normalisation.
    params : Params
        ``separation.input_norm`` and ``separation.prior`` (and the SED and beams for the prior).
    prior : ndarray [..., N, N] or None
        The prior's CMB estimate [µK_CMB] if already computed; computed here when needed and ``None``.
    """
    cfg = params.separation
    if cfg.input_norm == "global":
        x = norm.inputs_to_unit(channels_uk)
    else:
        mean = channels_uk.mean(axis=(-2, -1), keepdims=True)
        std = channels_uk.std(axis=(-2, -1), keepdims=True)
        x = (channels_uk - mean) / np.maximum(std, 1e-12)
    if cfg.prior == "cilc":
        estimate = prior_uk(channels_uk, params) if prior is None else prior
        x = np.concatenate([x, norm.target_to_unit(estimate)[..., None, :, :]], axis=-3)
    return np.asarray(x, dtype=np.float32)


class NetworkInputs(Dataset):
    """``(inputs, target)`` items of a :class:`SeparationDataset` in the form :func:`network_inputs` gives.

    Parameters
    ----------
    base : SeparationDataset
        The streaming set (with its normalisation).
    params : Params
        Input normalisation and prior.
    """

    def __init__(self, base: SeparationDataset, params: Params) -> None:
        self.base, self.params = base, params

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.__getitems__([i])[0]

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Items ``indices`` at once; a ``DataLoader`` fetches each batch this way.

        The maps are simulated one by one, but their inputs (beam deconvolution and constrained ILC
        of the prior) are computed on the stacked batch: at 64² that step takes 2.6x less time than
        map by map, with the same values to the refinement tolerance (the deconvolution's refinement
        stops when every map of the batch has converged, so no map gets fewer steps than alone).
        """
        samples = [self.base.sample_uk(i) for i in indices]
        channels_uk = np.stack([channels for channels, _ in samples])
        norm = self.base.normalisation
        inputs = torch.from_numpy(network_inputs(channels_uk, norm, self.params))
        targets = norm.target_to_unit(np.stack([cmb for _, cmb in samples]))[:, None].astype(np.float32)
        return list(zip(inputs, torch.from_numpy(targets)))
