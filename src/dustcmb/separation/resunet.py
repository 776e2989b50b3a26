"""The Bayesian ResUNet (docs/science.md#bayesian-resunet, paper Table 2): a pure ``nn.Module``.

Input: the normalised multi-frequency patch ``[B, C, N, N]``; output: the normalised CMB map
``[B, 1, N, N]`` and, as a second head, its flat-sky ``D_ℓ = ℓ(ℓ+1)C_ℓ/2π`` ``[B, n_bins]`` from
:func:`dustcmb.stats.power_spectrum` (in network units², i.e. µK² / ``target_scale_uk``²).

Depth follows the input size: stride-2 encoder blocks halve the map until it is 1×1, so there are
``ceil(log2 N)`` of them (8 at 256², 6 at 64², 5 at 32²). Encoder block ``k`` (0-based) sits at level
``min(k // 2, len(dropout) - 1)``: every other block doubles the features (``base_channels · 2^level``)
and takes the next dropout rate (paper: 0.05, 0.10, 0.20, 0.30); past the last rate the features
stop doubling. The decoder mirrors the encoder: each block upsamples bilinearly to the size of the
matching encoder block's input, concatenates that input (the skip; the network input itself for
the outermost block) and applies the same rate. Dropout follows every convolution, so MC dropout
(:mod:`dustcmb.separation.mc`) samples the whole network.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dustcmb.stats.power import dl_from_cl, power_spectrum


def n_blocks(npix: int) -> int:
    """Number of stride-2 encoder blocks that take an ``npix`` map down to 1×1: ``ceil(log2 npix)``."""
    return max(1, math.ceil(math.log2(npix)))


class Dropout(nn.Dropout):
    """Dropout with 16-bit random thresholds: the same layer as :class:`torch.nn.Dropout`, drawn faster.

    ``F.dropout`` draws one 32-bit random number per element, and on the CPU those draws, not the
    convolutions, take most of an MC-dropout forward. Here one 64-bit draw decides four elements: it
    is viewed as four ``int16`` values ``r`` and an element is dropped when ``r < -2^15 + k``,
    ``k = round(p · 2^16)``, so the drop probability is ``p' = k / 2^16`` (within 8e-6 of ``p``) and the
    kept elements are scaled by ``1 / (1 - p')``, which keeps the layer unbiased.
    ``benchmarks/bench_mc_dropout.py`` measures the forward with both.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        k = round(self.p * 2**16)
        bits = torch.empty_like(x, dtype=torch.int16)  # x's layout, so the masked multiply streams
        flat = bits.as_strided((bits.numel(),), (1,))  # empty_like of a dense tensor is dense
        if flat.numel() % 4 == 0:
            flat.view(torch.int64).random_(-2**63, None)  # every bit uniform (the default leaves the top one 0)
        else:
            flat.random_(-2**15, 2**15)
        return (x * (2**16 / (2**16 - k))).masked_fill_(bits < k - 2**15, 0.0)


def _conv(in_ch: int, out_ch: int, rate: float, kernel: int = 3, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2), Dropout(rate)]


class EncoderBlock(nn.Module):
    """[BN → ReLU] → conv 3×3 /2 → Dropout → BN → ReLU → conv 3×3 → Dropout, + strided 1×1 residual.

    The leading BN → ReLU is skipped in the first block, which sees the normalised input directly.
    """

    def __init__(self, in_ch: int, out_ch: int, rate: float, first: bool) -> None:
        super().__init__()
        pre = [] if first else [nn.BatchNorm2d(in_ch), nn.ReLU()]
        self.body = nn.Sequential(*pre, *_conv(in_ch, out_ch, rate, stride=2), nn.BatchNorm2d(out_ch),
                                  nn.ReLU(), *_conv(out_ch, out_ch, rate))
        self.shortcut = nn.Sequential(*_conv(in_ch, out_ch, rate, kernel=1, stride=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class DecoderBlock(nn.Module):
    """Bilinear upsample → concat skip → (BN → ReLU → conv 3×3 → Dropout) × 2, + 1×1 residual."""

    def __init__(self, in_ch: int, skip_ch: int, out_ch: int, rate: float) -> None:
        super().__init__()
        cat = in_ch + skip_ch
        self.body = nn.Sequential(nn.BatchNorm2d(cat), nn.ReLU(), *_conv(cat, out_ch, rate),
                                  nn.BatchNorm2d(out_ch), nn.ReLU(), *_conv(out_ch, out_ch, rate))
        self.shortcut = nn.Sequential(*_conv(cat, out_ch, rate, kernel=1))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        x = torch.cat([x, skip], dim=1)
        return self.body(x) + self.shortcut(x)


class ResUNet(nn.Module):
    """Residual U-Net with dropout after every convolution and a power-spectrum head.

    Parameters
    ----------
    npix : int
        Map side in pixels (any size ≥ 2; the depth is :func:`n_blocks`).
    size_deg : float
        Patch side [deg], for the spectrum head's multipoles.
    in_channels : int
        Frequency channels of the input.
    base_channels : int
        Features of the first two encoder blocks.
    dropout : sequence of float
        Dropout rate per level, outermost first.
    prior_channel : bool
        The last input channel is a CMB estimate in target units (:mod:`dustcmb.separation.inputs`):
        the output is that channel plus the network's correction, whose head starts at zero, so an
        untrained network returns the estimate unchanged.
    """

    def __init__(self, npix: int, size_deg: float, in_channels: int = 3, base_channels: int = 16,
                 dropout: tuple[float, ...] = (0.05, 0.10, 0.20, 0.30), prior_channel: bool = False) -> None:
        super().__init__()
        self.npix, self.size_deg = npix, size_deg
        self.in_channels, self.base_channels, self.dropout = in_channels, base_channels, tuple(dropout)
        self.prior_channel = prior_channel
        levels = [min(k // 2, len(self.dropout) - 1) for k in range(n_blocks(npix))]
        widths = [in_channels] + [base_channels * 2**level for level in levels]
        rates = [self.dropout[level] for level in levels]
        self.encoder = nn.ModuleList(EncoderBlock(widths[k], widths[k + 1], rates[k], first=k == 0)
                                     for k in range(len(levels)))
        # decoder[k] undoes encoder[k]: from widths[k+1] features back to widths[k] (base at the top)
        outs = [base_channels] + widths[1:-1]
        self.decoder = nn.ModuleList(DecoderBlock(widths[k + 1] if k == len(levels) - 1 else outs[k + 1],
                                                  widths[k], outs[k], rates[k]) for k in range(len(levels)))
        self.head = nn.Conv2d(base_channels, 1, kernel_size=1)
        if prior_channel:
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def config(self) -> dict:
        """Constructor arguments, for rebuilding the network from a saved state dict."""
        return {"npix": self.npix, "size_deg": self.size_deg, "in_channels": self.in_channels,
                "base_channels": self.base_channels, "dropout": list(self.dropout),
                "prior_channel": self.prior_channel}

    def spectrum(self, maps: torch.Tensor) -> torch.Tensor:
        """``D_ℓ`` [(map unit)²] of maps ``[B, 1, N, N]`` at the bins of :func:`power_spectrum`: ``[B, n_bins]``."""
        ell, cl = power_spectrum(maps[:, 0], self.size_deg)
        return dl_from_cl(ell, cl)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised inputs ``[B, C, N, N]`` → (CMB map ``[B, 1, N, N]``, its ``D_ℓ`` ``[B, n_bins]``)."""
        prior = x[:, -1:] if self.prior_channel else None
        skips = []
        for block in self.encoder:
            skips.append(x)
            x = block(x)
        for block, skip in zip(reversed(self.decoder), reversed(skips)):
            x = block(x, skip)
        cmb = self.head(x) if prior is None else self.head(x) + prior
        return cmb, self.spectrum(cmb)
