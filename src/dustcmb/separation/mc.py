"""Batched Monte-Carlo-dropout inference (docs/science.md#bayesian-resunet).

Every pass keeps dropout on and BatchNorm in eval mode (running statistics, never updated). Passes
are batched: each map is replicated along the batch dimension, and since dropout draws an
independent mask for every element of the batch, one forward of ``B`` replicas is ``B`` independent
passes. Only per-map summaries leave the device: the mean and standard deviation of the passes'
maps and quantiles of their spectra, so memory stays at one group of passes whatever their number.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dustcmb.errors import InputError
from dustcmb.separation.resunet import ResUNet
from dustcmb.simulation.dataset import Normalisation
from dustcmb.stats.power import power_spectrum

MODEL_NAME = "resunet.pt"  # state dict of the trained network, next to config.json
# 2.5, 16, 50, 84, 97.5 %: the 95 % and 68 % central intervals and the median
QUANTILES = (0.025, 0.16, 0.5, 0.84, 0.975)


def mc_mode(model: nn.Module) -> nn.Module:
    """Eval mode (BatchNorm uses and keeps its running statistics) with every dropout layer sampling."""
    model.eval()
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.train()
    return model


@dataclass
class McPrediction:
    """Summaries of the MC passes of ``n`` maps, in µK_CMB.

    Attributes
    ----------
    mean_uk, std_uk : ndarray [n, N, N]
        Per-pixel mean (the estimate) and standard deviation of the passes' CMB maps [µK_CMB].
    cl_quantiles_uk2 : ndarray [n, len(QUANTILES), n_bins]
        Quantiles over passes of each pass's ``C_ℓ`` [µK_CMB² sr].
    ell : ndarray [n_bins]
        Multipoles of the spectrum rings.
    """

    mean_uk: np.ndarray
    std_uk: np.ndarray
    cl_quantiles_uk2: np.ndarray
    ell: np.ndarray


@torch.no_grad()
def mc_predict(model: nn.Module, inputs_unit: torch.Tensor, normalisation: Normalisation, passes: int,
               batch: int) -> McPrediction:
    """MC-dropout passes of a set of maps, ``batch`` passes per forward.

    Parameters
    ----------
    model : ResUNet
        Trained network (put in :func:`mc_mode` here); its device is used.
    inputs_unit : Tensor [n, C, N, N]
        Normalised inputs (any device).
    normalisation : Normalisation
        Maps the network's output back to µK_CMB.
    passes : int
        Passes per map.
    batch : int
        Forward batch size. When ``batch >= passes`` several maps share a forward; ``batch=1`` is the
        sequential reference (one pass per forward).

    Returns
    -------
    McPrediction
    """
    mc_mode(model)
    device = next(model.parameters()).device
    maps_per_group = max(1, batch // passes)
    q = torch.tensor(QUANTILES, dtype=torch.float64, device=device)
    means, stds, quantiles, ell = [], [], [], None
    # NHWC layout: the CPU convolutions run the forward faster than in NCHW (2.01 vs 2.35 ms per pass in
    # benchmarks/bench_mc_dropout.py at 64² on 2 cores; same results
    # to float32 rounding); the parameters go back to the default layout before returning.
    model.to(memory_format=torch.channels_last)
    for start in range(0, len(inputs_unit), maps_per_group):
        group = inputs_unit[start:start + maps_per_group].to(device)
        replicas = group.repeat_interleave(passes, dim=0).contiguous(memory_format=torch.channels_last)
        out = torch.cat([model(replicas[i:i + batch])[0][:, 0] for i in range(0, len(replicas), batch)])
        cmb_uk = normalisation.target_to_uk(out.double()).view(len(group), passes, *out.shape[-2:])
        ell, cl = power_spectrum(cmb_uk, model.size_deg)
        means.append(cmb_uk.mean(dim=1).cpu())
        stds.append(cmb_uk.std(dim=1).cpu())
        quantiles.append(torch.quantile(cl, q, dim=1).movedim(0, 1).cpu())
    model.to(memory_format=torch.contiguous_format)
    return McPrediction(mean_uk=torch.cat(means).numpy(), std_uk=torch.cat(stds).numpy(),
                        cl_quantiles_uk2=torch.cat(quantiles).numpy(), ell=ell)


def load_model(model_dir: str | Path, device: str = "cpu") -> tuple[ResUNet, dict]:
    """Rebuild the trained ResUNet from ``resunet.pt`` (state dict) and ``config.json`` in ``model_dir``."""
    model_dir = Path(model_dir)
    paths = [model_dir / "config.json", model_dir / MODEL_NAME]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise InputError(f"{', '.join(missing)} not found; run `dustcmb separation train` first")
    config = json.loads(paths[0].read_text())
    model = ResUNet(**config["architecture"])
    model.load_state_dict(torch.load(paths[1], map_location="cpu", weights_only=True))
    return model.to(device), config
