"""The 8 symmetries of the square (k·90° rotations, with or without a mirror flip) drawn per map, and
random circular shifts.

The GAN is trained against real patches in random orientations, so the distribution it learns to
match is invariant under these symmetries; one draw per map serves both the real batches of training
(:mod:`dustcmb.gan.step`) and, with ``gan.symmetrise_samples``, the generated maps
(:mod:`dustcmb.gan.sample`).
"""

from __future__ import annotations

import torch


def random_symmetry(maps: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Each map of ``maps`` [B, ..., N, N] turned by a random k·90° and mirrored with probability 1/2."""
    quarter = torch.randint(0, 4, (len(maps),), generator=rng).to(maps.device)
    flip = (torch.rand(len(maps), generator=rng) < 0.5).to(maps.device)
    out = torch.empty_like(maps)
    for k in range(4):
        out[quarter == k] = torch.rot90(maps[quarter == k], k, dims=(-2, -1))
    return torch.where(flip.view(-1, *[1] * (maps.dim() - 1)), out.flip(-1), out)


def random_roll(maps: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Each map of ``maps`` [B, C, N, N] shifted circularly by its own random offset along both axes.

    The patch borders then meet inside the map as a seam, where a convolution sees them with its
    whole field of view rather than through its edge padding. Differentiable (a permutation of pixels).
    """
    batch, channels, rows, cols = maps.shape
    shift = torch.stack([torch.randint(0, n, (batch,), generator=rng) for n in (rows, cols)]).to(maps.device)
    iy = (torch.arange(rows, device=maps.device) + shift[0, :, None]) % rows  # [B, N]
    ix = (torch.arange(cols, device=maps.device) + shift[1, :, None]) % cols
    out = maps.gather(-2, iy[:, None, :, None].expand(batch, channels, rows, cols))
    return out.gather(-1, ix[:, None, None, :].expand(batch, channels, rows, cols))
